//! Activations: `exp` and `erf` as branch-free polynomials, and the model's activation
//! functions applied in place (the epilogue of `fc1`'s matrix product).
//!
//! Written as plain loops so that the compiler vectorizes them; [`per_isa!`] compiles them
//! again for AVX-512 and AVX2. quick_gelu, the one the CLIP checkpoints use, has a
//! hand-written AVX-512 version in `x86/avx512.rs`.

use super::dispatch::{per_isa, Isa};
#[cfg(target_arch = "x86_64")]
use super::x86::avx512;
use crate::config::Activation;

/// An activation, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    Model(Activation),
}

/// `e^x` for f32 to within 2 ulp (Cephes' `expf` polynomial), branch-free so it vectorizes.
/// Inputs are clamped to the range where the result is a normal number.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * z + r + 1.0;
    y * f32::from_bits((((n as i32) + 127) << 23) as u32)
}

/// `erf(x)` as a rational polynomial on [-4, 4] (the one Eigen uses for float), a few ulp.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_1e-3;
    p = p * x2 + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_2e-3;
    q = q * x2 + -1.426_474e-2;
    p / q
}

#[inline(always)]
fn act_one(act: Activation, x: f32) -> f32 {
    match act {
        Activation::QuickGelu => x / (1.0 + exp(-1.702 * x)),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let y = 0.797_884_6 * (x + 0.044_715 * x * x * x);
            0.5 * x * (2.0 - 2.0 / (1.0 + exp(2.0 * y)))
        }
        Activation::Relu => x.max(0.0),
    }
}

/// Applies `act` in place.
pub fn activate(act: Act, xs: &mut [f32]) {
    match (act, Isa::current()) {
        #[cfg(target_arch = "x86_64")]
        (Act::Model(Activation::QuickGelu), Isa::Avx512 | Isa::Avx512Bf16) => {
            // SAFETY: `Isa::current` returns an AVX-512 tier only on CPUs with AVX-512 F.
            let tail = unsafe { avx512::quick_gelu(xs) };
            for x in tail {
                *x = act_one(Activation::QuickGelu, *x);
            }
        }
        _ => activate_generic(act, xs),
    }
}

per_isa! {
    fn activate_generic(act: Act, xs: &mut [f32]) {
        let Act::Model(a) = act else { return };
        match a {
            Activation::QuickGelu => xs.iter_mut().for_each(|x| *x = act_one(Activation::QuickGelu, *x)),
            Activation::Gelu => xs.iter_mut().for_each(|x| *x = act_one(Activation::Gelu, *x)),
            Activation::GeluTanh => xs.iter_mut().for_each(|x| *x = act_one(Activation::GeluTanh, *x)),
            Activation::Relu => xs.iter_mut().for_each(|x| *x = act_one(Activation::Relu, *x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf64(x: f64) -> f64 {
        // Maclaurin series; exact to ~1e-10 on [-4, 4] in f64.
        let mut term = x;
        let mut total = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            total += term / (2 * n + 1) as f64;
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_two_ulp() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                ((got - want) / want).abs() < 2.5e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn erf_is_accurate() {
        assert!((erf(5.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
        for i in -400..=400 {
            let x = i as f32 / 100.0;
            let want = erf64(x as f64);
            let got = erf(x) as f64;
            assert!((got - want).abs() < 1e-6, "erf({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn activations_match_their_definitions() {
        let xs: Vec<f32> = (-3000..3000).map(|i| i as f32 / 97.0).collect();
        for act in [
            Activation::QuickGelu,
            Activation::Gelu,
            Activation::GeluTanh,
            Activation::Relu,
        ] {
            let mut ys = xs.clone();
            activate(Act::Model(act), &mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                let x64 = x as f64;
                let want = match act {
                    Activation::QuickGelu => x64 / (1.0 + (-1.702 * x64).exp()),
                    Activation::Gelu => {
                        0.5 * x64 * (1.0 + erf64((x64 / 2f64.sqrt()).clamp(-5.0, 5.0)))
                    }
                    Activation::GeluTanh => {
                        let k = (2.0 / std::f64::consts::PI).sqrt();
                        0.5 * x64 * (1.0 + (k * (x64 + 0.044715 * x64.powi(3))).tanh())
                    }
                    Activation::Relu => x64.max(0.0),
                };
                assert!(
                    (y as f64 - want).abs() <= 2e-6 * want.abs().max(1.0),
                    "{act:?}({x}) = {y}, want {want}"
                );
            }
        }
    }
}

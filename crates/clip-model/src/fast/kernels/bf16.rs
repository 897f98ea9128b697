//! bf16 packing: f32 values rounded to bf16 and stored two to a `u32` word, the operand
//! layout of the bf16 dot products (`vdpbf16ps` multiplies and adds one such pair per lane).

use super::dispatch::{per_isa, Isa};
#[cfg(target_arch = "x86_64")]
use super::x86::avx512bf16;

/// Round-to-nearest-even conversion to bf16 (NaN stays NaN), as `vcvtne2ps2bf16` does.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if x.is_nan() {
        return (b >> 16) | 0x40;
    }
    (b + 0x7fff + ((b >> 16) & 1)) >> 16
}

/// Packs each row of `k` f32 values as `k / 2` (rounded up) words of two bf16, rounding to
/// nearest even.
pub fn to_bf16_pairs(src: &[f32], k: usize, dst: &mut [u32]) {
    if k > 0 {
        to_bf16_rows(src, k, src.len() / k, k, dst);
    }
}

/// [`to_bf16_pairs`] of `rows` rows of `k` values that start `stride` values apart in `src`
/// (a head's slice of the fused q/k/v rows, say), packed densely into `dst`. One call for
/// many short rows: dispatching per row cost more than converting them.
pub fn to_bf16_rows(src: &[f32], stride: usize, rows: usize, k: usize, dst: &mut [u32]) {
    let k2 = k.div_ceil(2);
    assert!(
        rows == 0 || src.len() >= (rows - 1) * stride + k,
        "bf16 source size"
    );
    assert!(dst.len() >= rows * k2, "bf16 destination size");
    match Isa::current() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512Bf16` only on CPUs with AVX-512 F and BF16; the asserts bound
        // every row.
        Isa::Avx512Bf16 => unsafe { avx512bf16::to_bf16_rows(src, stride, rows, k, dst) },
        _ => to_bf16_rows_generic(src, stride, rows, k, dst),
    }
}

per_isa! {
    fn to_bf16_rows_generic(src: &[f32], stride: usize, rows: usize, k: usize, dst: &mut [u32]) {
        let k2 = k.div_ceil(2);
        for r in 0..rows {
            let row = &src[r * stride..r * stride + k];
            let d = &mut dst[r * k2..(r + 1) * k2];
            let pairs = row.chunks_exact(2);
            let odd = pairs.remainder().first().copied();
            for (p, d) in pairs.zip(d.iter_mut()) {
                *d = bf16_bits(p[0]) | (bf16_bits(p[1]) << 16);
            }
            if let Some(v) = odd {
                d[k2 - 1] = bf16_bits(v);
            }
        }
    }
}

per_isa! {
    /// Words holding `lo[i]` (low half) and `hi[i]` (high half, 0 without `hi`) as bf16.
    pub fn interleave_bf16(lo: &[f32], hi: Option<&[f32]>, dst: &mut [u32]) {
        match hi {
            Some(hi) => {
                for ((d, &l), &h) in dst.iter_mut().zip(lo).zip(hi) {
                    *d = bf16_bits(l) | (bf16_bits(h) << 16);
                }
            }
            None => {
                for (d, &l) in dst.iter_mut().zip(lo) {
                    *d = bf16_bits(l);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_packing_is_the_same_on_every_path() {
        // Ties, values near powers of two, signs; rows shorter than, between and past the
        // 16- and 32-value chunks, odd lengths, strided rows.
        for k in [1usize, 7, 16, 17, 31, 32, 33, 64, 71] {
            let (rows, stride) = (3, k + 5);
            let src: Vec<f32> = (0..rows * stride)
                .map(|i| {
                    let sign = if i % 3 == 0 {
                        -1.0
                    } else {
                        3.0f32.powi(i as i32 % 9 - 4)
                    };
                    (1.0 + (i % 17) as f32 / 256.0) * sign
                })
                .collect();
            let mut fast = vec![7u32; rows * k.div_ceil(2)];
            let mut plain = fast.clone();
            to_bf16_rows(&src, stride, rows, k, &mut fast);
            to_bf16_rows_generic(&src, stride, rows, k, &mut plain);
            assert_eq!(fast, plain, "k {k}");
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
    }
}

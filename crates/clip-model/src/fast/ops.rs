//! Element-wise and row-wise kernels of the fast path: layer norm, activations, attention.
//!
//! Written as plain loops over fixed-width chunks so that the compiler vectorizes them; the
//! `per_isa!` wrapper compiles each one again for AVX-512 and AVX2 and calls the one for the
//! CPU's [`Isa`] (the default x86-64 target only allows SSE2).

use rayon::prelude::*;

use super::dispatch::{per_isa, Isa, SendPtr};
use crate::config::Activation;

/// Lanes of the chunked accumulators: one AVX-512 vector.
const L: usize = 16;

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
    #[cfg(target_arch = "x86_64")]
    if act == Act::Model(Activation::QuickGelu)
        && matches!(Isa::current(), Isa::Avx512 | Isa::Avx512Bf16)
    {
        // SAFETY: `Isa::current` returns an AVX-512 tier only on CPUs with AVX-512 F.
        return unsafe { x86::quick_gelu(xs) };
    }
    activate_generic(act, xs)
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

#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; L];
    let chunks = xs.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

per_isa! {
    fn layer_norm_rows(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
        let c = w.len();
        for (row, o) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
            let mean = sum(row) / c as f32;
            let mut acc = [0f32; L];
            let chunks = row.chunks_exact(L);
            let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
            for ch in chunks {
                for i in 0..L {
                    let d = ch[i] - mean;
                    acc[i] += d * d;
                }
            }
            let var = (acc.iter().sum::<f32>() + tail) / c as f32;
            let rstd = 1.0 / (var + eps).sqrt();
            for (((o, &v), &w), &b) in o.iter_mut().zip(row).zip(w).zip(b) {
                *o = (v - mean) * rstd * w + b;
            }
        }
    }
}

/// Layer norm over the last dimension (`w.len()` values) of each row of `x`, into `out`.
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let c = w.len();
    let rows = x.len() / c;
    if x.len() < 1 << 16 {
        // Not worth waking the pool.
        return layer_norm_rows(x, w, b, eps, out);
    }
    let per = rows.div_ceil(rayon::current_num_threads()).max(1) * c;
    x.par_chunks(per)
        .zip(out.par_chunks_mut(per))
        .for_each(|(x, o)| layer_norm_rows(x, w, b, eps, o));
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
    #[cfg(target_arch = "x86_64")]
    if Isa::current() == Isa::Avx512Bf16 {
        // SAFETY: `Isa::Avx512Bf16` only on CPUs with AVX-512 F and BF16; the asserts bound
        // every row.
        return unsafe { x86_bf16::to_bf16_rows(src, stride, rows, k, dst) };
    }
    to_bf16_rows_generic(src, stride, rows, k, dst)
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
                *d = super::gemm::bf16_bits(p[0]) | (super::gemm::bf16_bits(p[1]) << 16);
            }
            if let Some(v) = odd {
                d[k2 - 1] = super::gemm::bf16_bits(v);
            }
        }
    }
}

per_isa! {
    /// Words holding `lo[i]` (low half) and `hi[i]` (high half, 0 without `hi`) as bf16.
    fn interleave_bf16(lo: &[f32], hi: Option<&[f32]>, dst: &mut [u32]) {
        match hi {
            Some(hi) => {
                for ((d, &l), &h) in dst.iter_mut().zip(lo).zip(hi) {
                    *d = super::gemm::bf16_bits(l) | (super::gemm::bf16_bits(h) << 16);
                }
            }
            None => {
                for (d, &l) in dst.iter_mut().zip(lo) {
                    *d = super::gemm::bf16_bits(l);
                }
            }
        }
    }
}

/// Softmax of each of the `rows` rows of `t` values of `s` (row stride `ld`) after scaling;
/// with `causal`, row `i` covers positions `0..=i` and the rest become 0.
fn softmax_rows(s: &mut [f32], rows: usize, t: usize, ld: usize, scale: f32, causal: bool) {
    #[cfg(target_arch = "x86_64")]
    if matches!(Isa::current(), Isa::Avx512 | Isa::Avx512Bf16) {
        // SAFETY: `Isa::current` returns an AVX-512 tier only on CPUs with AVX-512 F.
        return unsafe { x86::softmax_rows(s, rows, t, ld, scale, causal) };
    }
    softmax_rows_generic(s, rows, t, ld, scale, causal)
}

per_isa! {
    fn softmax_rows_generic(s: &mut [f32], rows: usize, t: usize, ld: usize, scale: f32, causal: bool) {
        for i in 0..rows {
            let row = &mut s[i * ld..i * ld + t];
            let n = if causal { i + 1 } else { t };
            let (live, masked) = row.split_at_mut(n);
            let mut max = f32::NEG_INFINITY;
            for v in live.iter_mut() {
                *v *= scale;
                max = max.max(*v);
            }
            live.iter_mut().for_each(|v| *v = exp(*v - max));
            let inv = 1.0 / sum(live);
            live.iter_mut().for_each(|v| *v *= inv);
            masked.iter_mut().for_each(|v| *v = 0.0);
        }
    }
}

/// One head of one sequence: `qkv` rows hold `[q | k | v]` of width `3 * c`; the head's
/// output (`t` rows of `d` values) goes to `out` with row stride `c`. `buf` holds `d * t`
/// values for k transposed and `t * t` for the scores; both products run on the GEMM's
/// register tiles.
#[allow(clippy::too_many_arguments)]
fn attention_head(
    qkv: &[f32],
    t: usize,
    c: usize,
    h: usize,
    d: usize,
    causal: bool,
    scale: f32,
    buf: &mut Buffers,
    out: &mut [f32],
) {
    let row = 3 * c;
    let kt = transposed_keys(qkv, c, h, d, t, &mut buf.kt);
    // scores = q · kᵀ, then softmax, then out = scores · v.
    let scores = sized(&mut buf.scores, t * t);
    super::gemm::small_matmul(&qkv[h * d..], row, t, kt, t, d, t, scores, t);
    softmax_rows(scores, t, t, t, scale, causal);
    let v = &qkv[2 * c + h * d..];
    super::gemm::small_matmul(scores, t, t, v, row, t, d, &mut out[h * d..], c);
}

/// [`attention_head`] with both products on bf16 pairs (the bf16 path's precision).
#[allow(clippy::too_many_arguments)]
fn attention_head_bf16(
    qkv: &[f32],
    t: usize,
    c: usize,
    h: usize,
    d: usize,
    causal: bool,
    scale: f32,
    buf: &mut Buffers,
    out: &mut [f32],
) {
    let row = 3 * c;
    let (d2, t2) = (d.div_ceil(2), t.div_ceil(2));
    // q as pairs along the head dimension: t rows of d2 words.
    let q = sized(&mut buf.q2, t * d2);
    to_bf16_rows(&qkv[h * d..], row, t, d, q);
    // kᵀ as pairs along the head dimension: d2 rows of t words.
    let pairs = sized(&mut buf.pairs, t * d2);
    to_bf16_rows(&qkv[c + h * d..], row, t, d, pairs);
    let kt = sized(&mut buf.kt2, d2 * t);
    for (j, kp) in pairs.chunks_exact(d2).enumerate() {
        for (p, &w) in kp.iter().enumerate() {
            kt[p * t + j] = w;
        }
    }
    let scores = sized(&mut buf.scores, t * t);
    super::gemm::small_matmul_bf16(q, d2, t, kt, t, d2, t, scores, t);
    softmax_rows(scores, t, t, t, scale, causal);
    // Probabilities as pairs along positions; v as pairs of consecutive positions.
    let p2 = sized(&mut buf.p2, t * t2);
    to_bf16_pairs(scores, t, p2);
    let v2 = sized(&mut buf.v2, t2 * d);
    for (pair, dst) in v2.chunks_exact_mut(d).enumerate() {
        let lo = &qkv[2 * pair * row + 2 * c + h * d..][..d];
        let hi = (2 * pair + 1 < t).then(|| &qkv[(2 * pair + 1) * row + 2 * c + h * d..][..d]);
        interleave_bf16(lo, hi, dst);
    }
    super::gemm::small_matmul_bf16(p2, t2, t, v2, d, t2, d, &mut out[h * d..], c);
}

/// Attention for the one query row `q_row` of a head (the last layer, where only the pooled
/// token's output is used): `out` gets that row's `d` values.
#[allow(clippy::too_many_arguments)]
fn attention_one_row(
    qkv: &[f32],
    t: usize,
    c: usize,
    h: usize,
    d: usize,
    causal: bool,
    scale: f32,
    q_row: usize,
    buf: &mut Buffers,
    out: &mut [f32],
) {
    let row = 3 * c;
    // Causal attention sees positions up to its own.
    let n = if causal { q_row + 1 } else { t };
    let kt = transposed_keys(qkv, c, h, d, n, &mut buf.kt);
    let scores = sized(&mut buf.scores, n);
    let q = &qkv[q_row * row + h * d..][..d];
    super::gemm::small_matmul(q, d, 1, kt, n, d, n, scores, n);
    softmax_rows(scores, 1, n, n, scale, false);
    let v = &qkv[2 * c + h * d..];
    super::gemm::small_matmul(scores, n, 1, v, row, n, d, &mut out[h * d..][..d], d);
}

/// Head `h`'s keys of positions `0..n` transposed (`d` rows of `n`), so that the scores are a
/// plain product.
fn transposed_keys<'a>(
    qkv: &[f32],
    c: usize,
    h: usize,
    d: usize,
    n: usize,
    buf: &'a mut Vec<f32>,
) -> &'a mut [f32] {
    let kt = sized(buf, d * n);
    for j in 0..n {
        let k = &qkv[j * 3 * c + c + h * d..][..d];
        for (dd, &v) in k.iter().enumerate() {
            kt[dd * n + j] = v;
        }
    }
    kt
}

/// Per-task buffers of the attention kernels.
#[derive(Default)]
struct Buffers {
    kt: Vec<f32>,
    scores: Vec<f32>,
    q2: Vec<u32>,
    kt2: Vec<u32>,
    p2: Vec<u32>,
    v2: Vec<u32>,
    pairs: Vec<u32>,
}

/// The first `len` values of `v`, growing it if needed (contents unspecified: every user
/// overwrites them).
pub(super) fn sized<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Runs `f(qkv rows of sequence s, s, h, buffers, output rows of sequence s)` for every
/// sequence `s` and head `h`, one rayon task each; sequence `s` owns `rows_out` rows of `c`
/// values of `out`, and the task of head `h` writes only their columns `h·d..(h+1)·d`.
#[allow(clippy::too_many_arguments)]
fn for_each_head(
    qkv: &[f32],
    b: usize,
    t: usize,
    c: usize,
    heads: usize,
    out: &mut [f32],
    rows_out: usize,
    f: impl Fn(&[f32], usize, usize, &mut Buffers, &mut [f32]) + Sync + Send,
) {
    assert!(
        qkv.len() >= b * t * 3 * c && out.len() >= b * rows_out * c,
        "attention sizes"
    );
    let ptr = SendPtr::new(out);
    (0..b * heads)
        .into_par_iter()
        .for_each_init(Buffers::default, |buf, task| {
            let (s, h) = (task / heads, task % heads);
            let seq = &qkv[s * t * 3 * c..(s + 1) * t * 3 * c];
            let len = rows_out * c;
            // SAFETY: the slice is sequence s's output rows, inside `out` (asserted); tasks
            // of the same sequence share it but each writes only its own head's columns.
            let o = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(s * len), len) };
            f(seq, s, h, buf, o);
        });
}

/// Multi-head self-attention of `b` sequences of `t` positions from fused `qkv`
/// (`[b * t, 3 * c]`) into `out` (`[b * t, c]`), one task per sequence and head; with `bf16`,
/// the two products take bf16 operands.
pub fn attention(
    qkv: &[f32],
    b: usize,
    t: usize,
    heads: usize,
    causal: bool,
    bf16: bool,
    out: &mut [f32],
) {
    let c = out.len() / (b * t);
    let d = c / heads;
    let scale = (d as f32).powf(-0.5);
    let head = if bf16 {
        attention_head_bf16
    } else {
        attention_head
    };
    for_each_head(qkv, b, t, c, heads, out, t, |seq, _, h, buf, o| {
        head(seq, t, c, h, d, causal, scale, buf, o)
    });
}

/// [`attention`] for one query row per sequence, `q_rows[s]` of sequence `s`, into `out`
/// (`[b, c]`: one row per sequence).
pub fn attention_rows(
    qkv: &[f32],
    t: usize,
    heads: usize,
    causal: bool,
    q_rows: &[usize],
    out: &mut [f32],
) {
    let b = q_rows.len();
    let c = out.len() / b;
    let d = c / heads;
    let scale = (d as f32).powf(-0.5);
    for_each_head(qkv, b, t, c, heads, out, 1, |seq, s, h, buf, o| {
        attention_one_row(seq, t, c, h, d, causal, scale, q_rows[s], buf, o)
    });
}

/// Hand-vectorized kernels where the compiler's version was slow: the quick_gelu epilogue of
/// `fc1` (7 % of a batch on the bf16 path before this; the division was the cost).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)] // intrinsics throughout; the pointers come from slices
mod x86 {
    use std::arch::x86_64::*;

    /// `e^x` for 16 lanes: Cephes' polynomial (as [`super::exp`]), scaled with `vscalefps`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn exp16(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
            _mm512_set1_ps(88.0),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(
            _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
            _mm512_set1_ps(1.0),
        );
        _mm512_scalef_ps(y, n)
    }

    /// `x · sigmoid(1.702 x)` in place; the reciprocal is `vrcp14ps` plus one Newton step
    /// (relative error about 2^-28, below f32's).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn quick_gelu(xs: &mut [f32]) {
        let one = _mm512_set1_ps(1.0);
        let two = _mm512_set1_ps(2.0);
        let k = _mm512_set1_ps(-1.702);
        let mut chunks = xs.chunks_exact_mut(16);
        for c in &mut chunks {
            let x = _mm512_loadu_ps(c.as_ptr());
            let d = _mm512_add_ps(one, exp16(_mm512_mul_ps(x, k)));
            let r = _mm512_rcp14_ps(d);
            let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, two));
            _mm512_storeu_ps(c.as_mut_ptr(), _mm512_mul_ps(x, r));
        }
        for x in chunks.into_remainder() {
            *x = super::act_one(crate::config::Activation::QuickGelu, *x);
        }
    }

    /// [`super::softmax_rows`] on whole vectors (the compiler's version ran the max reduction
    /// and the row tails one value at a time; rows are short, 50 for ViT-B/32).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn softmax_rows(
        s: &mut [f32],
        rows: usize,
        t: usize,
        ld: usize,
        scale: f32,
        causal: bool,
    ) {
        assert!(rows == 0 || s.len() >= (rows - 1) * ld + t, "scores size");
        let mask = |j: usize, n: usize| -> __mmask16 {
            let left = n - j;
            if left >= 16 {
                0xffff
            } else {
                ((1u32 << left) - 1) as u16
            }
        };
        let vscale = _mm512_set1_ps(scale);
        for i in 0..rows {
            let row = s.as_mut_ptr().add(i * ld);
            let n = if causal { i + 1 } else { t };
            let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
            for j in (0..n).step_by(16) {
                let m = mask(j, n);
                let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row.add(j)), vscale);
                max = _mm512_mask_max_ps(max, m, max, v);
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
            let mut sum = _mm512_setzero_ps();
            for j in (0..n).step_by(16) {
                let m = mask(j, n);
                let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row.add(j)), vscale);
                let e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(v, max)));
                sum = _mm512_add_ps(sum, e);
                _mm512_mask_storeu_ps(row.add(j), m, e);
            }
            let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
            for j in (0..n).step_by(16) {
                let m = mask(j, n);
                let e = _mm512_maskz_loadu_ps(m, row.add(j));
                _mm512_mask_storeu_ps(row.add(j), m, _mm512_mul_ps(e, inv));
            }
            for j in n..t {
                *row.add(j) = 0.0;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)]
mod x86_bf16 {
    use std::arch::x86_64::*;

    /// [`super::to_bf16_rows`] with `vcvtne2ps2bf16`, 32 values a store; the tail of a row
    /// uses masked loads (zeros past the end, so an odd last pair gets a zero high half).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn to_bf16_rows(src: &[f32], stride: usize, rows: usize, k: usize, dst: &mut [u32]) {
        let k2 = k.div_ceil(2);
        let mask = |n: usize| -> __mmask16 {
            if n >= 16 {
                0xffff
            } else {
                ((1u32 << n) - 1) as u16
            }
        };
        for r in 0..rows {
            let row = src.as_ptr().add(r * stride);
            let d = dst.as_mut_ptr().add(r * k2);
            let mut i = 0;
            while i + 32 <= k {
                let lo = _mm512_loadu_ps(row.add(i));
                let hi = _mm512_loadu_ps(row.add(i + 16));
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(d.add(i / 2).cast(), v);
                i += 32;
            }
            if i < k {
                let n = k - i;
                let lo = _mm512_maskz_loadu_ps(mask(n), row.add(i));
                let hi = _mm512_maskz_loadu_ps(mask(n.saturating_sub(16)), row.add(i + 16));
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_mask_storeu_epi32(d.add(i / 2).cast(), mask(n.div_ceil(2)), v);
            }
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

    #[test]
    fn softmax_paths_agree() {
        for (t, causal) in [(50, false), (77, true), (1, true), (17, false), (33, true)] {
            let ld = t + 3;
            let s: Vec<f32> = (0..t * ld)
                .map(|i| ((i * 37) % 101) as f32 / 7.0 - 6.0)
                .collect();
            let (mut fast, mut plain) = (s.clone(), s.clone());
            softmax_rows(&mut fast, t, t, ld, 0.125, causal);
            softmax_rows_generic(&mut plain, t, t, ld, 0.125, causal);
            for i in 0..t {
                let row = &fast[i * ld..i * ld + t];
                let total: f32 = row.iter().sum();
                assert!((total - 1.0).abs() < 1e-5, "t {t} row {i}: sum {total}");
                for (a, b) in row.iter().zip(&plain[i * ld..i * ld + t]) {
                    assert!((a - b).abs() <= 1e-6, "t {t} row {i}: {a} vs {b}");
                }
            }
        }
    }

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
        assert_eq!(super::super::gemm::bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(super::super::gemm::bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(super::super::gemm::bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
    }
}

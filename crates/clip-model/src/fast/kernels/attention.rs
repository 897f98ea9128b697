//! Multi-head self-attention read in place from the fused q/k/v rows: per sequence and head,
//! scores = q·kᵀ, a softmax per row, then scores·v, both products on the GEMM's register
//! tiles ([`small_matmul`]).

use rayon::prelude::*;

use super::act::exp;
use super::bf16::{interleave_bf16, to_bf16_pairs, to_bf16_rows};
use super::dispatch::{per_isa, Isa, SendPtr};
use super::gemm::{small_matmul, small_matmul_bf16};
use super::norm::sum;
#[cfg(target_arch = "x86_64")]
use super::x86::avx512;

/// Softmax of each of the `rows` rows of `t` values of `s` (row stride `ld`) after scaling;
/// with `causal`, row `i` covers positions `0..=i` and the rest become 0.
fn softmax_rows(s: &mut [f32], rows: usize, t: usize, ld: usize, scale: f32, causal: bool) {
    match Isa::current() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::current` returns an AVX-512 tier only on CPUs with AVX-512 F.
        Isa::Avx512 | Isa::Avx512Bf16 => unsafe {
            avx512::softmax_rows(s, rows, t, ld, scale, causal)
        },
        _ => softmax_rows_generic(s, rows, t, ld, scale, causal),
    }
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

/// The sizes of one attention call, and its mask and score scale: what every head task
/// shares.
struct AttnShape {
    /// Positions per sequence.
    t: usize,
    /// Values per position: `heads · d`.
    c: usize,
    /// Values per head.
    d: usize,
    heads: usize,
    causal: bool,
    /// `d^-0.5`, applied to the scores.
    scale: f32,
}

impl AttnShape {
    fn new(t: usize, c: usize, heads: usize, causal: bool) -> AttnShape {
        let d = c / heads;
        let scale = (d as f32).powf(-0.5);
        AttnShape {
            t,
            c,
            d,
            heads,
            causal,
            scale,
        }
    }
}

/// One head of one sequence: `qkv` rows hold `[q | k | v]` of width `3 * c`; the head's
/// output (`t` rows of `d` values) goes to `out` with row stride `c`. `buf` holds `d * t`
/// values for k transposed and `t * t` for the scores; both products run on the GEMM's
/// register tiles.
fn attention_head(qkv: &[f32], shape: &AttnShape, h: usize, buf: &mut Buffers, out: &mut [f32]) {
    let (t, c, d) = (shape.t, shape.c, shape.d);
    let row = 3 * c;
    let kt = transposed_keys(qkv, c, h, d, t, &mut buf.kt);
    // scores = q · kᵀ, then softmax, then out = scores · v.
    let scores = sized(&mut buf.scores, t * t);
    small_matmul((&qkv[h * d..], row), (kt, t), (scores, t), t, d, t);
    softmax_rows(scores, t, t, t, shape.scale, shape.causal);
    let v = &qkv[2 * c + h * d..];
    small_matmul((scores, t), (v, row), (&mut out[h * d..], c), t, t, d);
}

/// [`attention_head`] with both products on bf16 pairs (the bf16 path's precision).
fn attention_head_bf16(
    qkv: &[f32],
    shape: &AttnShape,
    h: usize,
    buf: &mut Buffers,
    out: &mut [f32],
) {
    let (t, c, d) = (shape.t, shape.c, shape.d);
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
    small_matmul_bf16((q, d2), (kt, t), (scores, t), t, d2, t);
    softmax_rows(scores, t, t, t, shape.scale, shape.causal);
    // Probabilities as pairs along positions; v as pairs of consecutive positions.
    let p2 = sized(&mut buf.p2, t * t2);
    to_bf16_pairs(scores, t, p2);
    let v2 = sized(&mut buf.v2, t2 * d);
    for (pair, dst) in v2.chunks_exact_mut(d).enumerate() {
        let lo = &qkv[2 * pair * row + 2 * c + h * d..][..d];
        let hi = (2 * pair + 1 < t).then(|| &qkv[(2 * pair + 1) * row + 2 * c + h * d..][..d]);
        interleave_bf16(lo, hi, dst);
    }
    small_matmul_bf16((p2, t2), (v2, d), (&mut out[h * d..], c), t, t2, d);
}

/// Attention for the one query row `q_row` of a head (the last layer, where only the pooled
/// token's output is used): `out` gets that row's `d` values.
fn attention_one_row(
    qkv: &[f32],
    shape: &AttnShape,
    h: usize,
    q_row: usize,
    buf: &mut Buffers,
    out: &mut [f32],
) {
    let (t, c, d) = (shape.t, shape.c, shape.d);
    let row = 3 * c;
    // Causal attention sees positions up to its own.
    let n = if shape.causal { q_row + 1 } else { t };
    let kt = transposed_keys(qkv, c, h, d, n, &mut buf.kt);
    let scores = sized(&mut buf.scores, n);
    let q = &qkv[q_row * row + h * d..][..d];
    small_matmul((q, d), (kt, n), (scores, n), 1, d, n);
    softmax_rows(scores, 1, n, n, shape.scale, false);
    let v = &qkv[2 * c + h * d..];
    small_matmul((scores, n), (v, row), (&mut out[h * d..][..d], d), 1, n, d);
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
pub fn sized<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Runs `f(qkv rows of sequence s, s, h, buffers, output rows of sequence s)` for each of
/// the `b` sequences `s` in `qkv` and each head `h`, one rayon task each; sequence `s` owns
/// `rows_out` rows of `c` values of `out`, and the task of head `h` writes only their columns
/// `h·d..(h+1)·d`.
fn for_each_head(
    qkv: &[f32],
    b: usize,
    shape: &AttnShape,
    out: &mut [f32],
    rows_out: usize,
    f: impl Fn(&[f32], usize, usize, &mut Buffers, &mut [f32]) + Sync + Send,
) {
    let (t, c, heads) = (shape.t, shape.c, shape.heads);
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
    let shape = AttnShape::new(t, out.len() / (b * t), heads, causal);
    let head = if bf16 {
        attention_head_bf16
    } else {
        attention_head
    };
    for_each_head(qkv, b, &shape, out, t, |seq, _, h, buf, o| {
        head(seq, &shape, h, buf, o)
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
    let shape = AttnShape::new(t, out.len() / b, heads, causal);
    for_each_head(qkv, b, &shape, out, 1, |seq, s, h, buf, o| {
        attention_one_row(seq, &shape, h, q_rows[s], buf, o)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

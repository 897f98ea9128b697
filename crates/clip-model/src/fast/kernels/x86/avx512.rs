//! AVX-512 F kernels, for [`Isa::Avx512`] and up: the f32 register tile, and the kernels
//! where the compiler's own vectorization was slow: the quick_gelu epilogue of `fc1` (7 % of
//! a batch on the bf16 path before this; the division was the cost) and softmax rows.
//!
//! [`Isa::Avx512`]: crate::fast::kernels::dispatch::Isa::Avx512

// Intrinsics throughout; the pointers come from slices whose sizes the callers check.
#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::tile::{Tile, NR};
use super::{col_masks, tile_body, PREFETCH};

/// f32 tile: `rows` ≤ 12 rows of A (row stride `lda`) times one packed panel.
#[target_feature(enable = "avx512f")]
pub unsafe fn tile_f32(t: Tile<'_, f32>) {
    let (a, lda, b, ldb, kc) = (t.a, t.lda, t.b, t.ldb, t.depth);
    let (c, ldc, rows, cols, load, bias) = (t.c, t.ldc, t.rows, t.cols, t.load, t.bias);
    // B may be an unpadded matrix (attention), so its loads are masked to `cols` too.
    let (k0, k1) = col_masks(cols);
    tile_body!(rows, c, ldc, cols, load, bias, |acc0, acc1, R| {
        // Masked loads are slow on some cores (measured: 2x on this Zen), so packed
        // panels (zero-padded to NR) use plain ones.
        if ldb == NR && cols == NR {
            for kk in 0..kc {
                let bk = b.add(kk * NR);
                // The weights stream from memory on their first use: fetch ahead.
                _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR).cast());
                _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR + 16).cast());
                let w0 = _mm512_loadu_ps(bk);
                let w1 = _mm512_loadu_ps(bk.add(16));
                for r in 0..R {
                    let av = _mm512_set1_ps(*a.add(r * lda + kk));
                    acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
                }
            }
        } else {
            for kk in 0..kc {
                let bk = b.add(kk * ldb);
                let w0 = _mm512_maskz_loadu_ps(k0, bk);
                let w1 = _mm512_maskz_loadu_ps(k1, bk.add(16));
                for r in 0..R {
                    let av = _mm512_set1_ps(*a.add(r * lda + kk));
                    acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
                }
            }
        }
    })
}

/// `e^x` for 16 lanes: Cephes' polynomial (as `act::exp`), scaled with `vscalefps`.
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
/// (relative error about 2^-28, below f32's). Returns the last `xs.len() % 16` values,
/// untouched, for the caller's scalar loop.
#[target_feature(enable = "avx512f")]
pub unsafe fn quick_gelu(xs: &mut [f32]) -> &mut [f32] {
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
    chunks.into_remainder()
}

/// `attention::softmax_rows` on whole vectors (the compiler's version ran the max reduction
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

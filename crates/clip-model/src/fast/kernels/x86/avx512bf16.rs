//! AVX512-BF16 kernels, for [`Isa::Avx512Bf16`]: the bf16 register tile (`vdpbf16ps`) and
//! the packing of f32 rows into bf16 pairs (`vcvtne2ps2bf16`).
//!
//! [`Isa::Avx512Bf16`]: crate::fast::kernels::dispatch::Isa::Avx512Bf16

// Intrinsics throughout; the pointers come from slices whose sizes the callers check.
#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::super::tile::{Tile, NR};
use super::{col_masks, tile_body, PREFETCH};

/// bf16 tile: A and the panel hold bf16 pairs; products accumulate in f32.
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn tile_bf16(t: Tile<'_, u32>) {
    let (a, lda, b, ldb, kc) = (t.a, t.lda, t.b, t.ldb, t.depth);
    let (c, ldc, rows, cols, load, bias) = (t.c, t.ldc, t.rows, t.cols, t.load, t.bias);
    let (k0, k1) = col_masks(cols);
    tile_body!(rows, c, ldc, cols, load, bias, |acc0, acc1, R| {
        // As in `tile_f32`: plain loads from packed panels, masked ones otherwise.
        if ldb == NR && cols == NR {
            for kk in 0..kc {
                let bk = b.add(kk * NR);
                _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR).cast());
                _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR + 16).cast());
                let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bk.cast()));
                let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bk.add(16).cast()));
                for r in 0..R {
                    let av: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*a.add(r * lda + kk) as i32));
                    acc0[r] = _mm512_dpbf16_ps(acc0[r], av, w0);
                    acc1[r] = _mm512_dpbf16_ps(acc1[r], av, w1);
                }
            }
        } else {
            for kk in 0..kc {
                let bk = b.add(kk * ldb);
                let w0: __m512bh = std::mem::transmute(_mm512_maskz_loadu_epi32(k0, bk.cast()));
                let w1: __m512bh =
                    std::mem::transmute(_mm512_maskz_loadu_epi32(k1, bk.add(16).cast()));
                for r in 0..R {
                    let av: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*a.add(r * lda + kk) as i32));
                    acc0[r] = _mm512_dpbf16_ps(acc0[r], av, w0);
                    acc1[r] = _mm512_dpbf16_ps(acc1[r], av, w1);
                }
            }
        }
    })
}

/// `bf16::to_bf16_rows` with `vcvtne2ps2bf16`, 32 values a store; the tail of a row
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

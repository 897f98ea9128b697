//! Hand-written x86-64 kernels, one file per instruction set (as qdrant keeps
//! `simple_avx.rs`, `simple_avx512.rs`, …): every function in a file is compiled for that
//! file's `#[target_feature]` and runs only under the matching [`Isa`] tier, so the safety
//! argument of each call ("this tier has these features") is checked against one file, and
//! a new instruction set (AVX512-VNNI for int8, say) is one new file and one `Isa` variant.
//!
//! The files use only [`tile`] (the register tile's shape and arguments) and this module's
//! shared tile helpers, never the modules that call them: they are leaves of the kernels'
//! dependency graph.
//!
//! [`Isa`]: super::dispatch::Isa
//! [`tile`]: super::tile

pub mod avx512;
pub mod avx512bf16;

use std::arch::x86_64::__mmask16;

use super::tile::{MR, NR};

/// Loads the C tile (or the bias) into accumulators, runs `body`, stores the tile.
macro_rules! tile_body {
    ($rows:expr, $c:expr, $ldc:expr, $cols:expr, $load:expr, $bias:expr, |$acc0:ident, $acc1:ident, $R:ident| $body:block) => {{
        let (m0, m1) = col_masks($cols);
        macro_rules! run {
                    ($n:literal) => {{
                        const $R: usize = $n;
                        let mut $acc0 = [_mm512_setzero_ps(); $R];
                        let mut $acc1 = [_mm512_setzero_ps(); $R];
                        let (b0, b1) = match $bias {
                            Some(b) => (
                                _mm512_maskz_loadu_ps(m0, b.as_ptr()),
                                _mm512_maskz_loadu_ps(m1, b.as_ptr().add(16.min(b.len()))),
                            ),
                            None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
                        };
                        for r in 0..$R {
                            let cr = $c.add(r * $ldc);
                            if $load {
                                $acc0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), b0);
                                $acc1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr.add(16)), b1);
                            } else {
                                $acc0[r] = b0;
                                $acc1[r] = b1;
                            }
                        }
                        $body
                        for r in 0..$R {
                            let cr = $c.add(r * $ldc);
                            _mm512_mask_storeu_ps(cr, m0, $acc0[r]);
                            _mm512_mask_storeu_ps(cr.add(16), m1, $acc1[r]);
                        }
                    }};
                }
        match $rows {
            12 => run!(12),
            11 => run!(11),
            10 => run!(10),
            9 => run!(9),
            8 => run!(8),
            7 => run!(7),
            6 => run!(6),
            5 => run!(5),
            4 => run!(4),
            3 => run!(3),
            2 => run!(2),
            1 => run!(1),
            _ => unreachable!("tile of {} rows", $rows),
        }
    }};
}
use tile_body;

const _: () = assert!(MR == 12 && NR == 32);

/// Lane masks of the two 16-column halves of a tile `cols` wide.
#[inline(always)]
fn col_masks(cols: usize) -> (__mmask16, __mmask16) {
    let half = |n: usize| -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as u16
        }
    };
    (half(cols), half(cols.saturating_sub(16)))
}

/// How many k steps ahead the weight panel is prefetched (a prefetch never faults, so
/// running past the panel's end is harmless).
const PREFETCH: usize = 64;

//! Layer norm, and the lane-chunked row sum it shares with softmax.
//!
//! Plain loops over fixed-width chunks so that the compiler vectorizes them; [`per_isa!`]
//! compiles them again for AVX-512 and AVX2.

use rayon::prelude::*;

use super::dispatch::per_isa;

/// Lanes of the chunked accumulators: one AVX-512 vector.
const L: usize = 16;

/// The sum of `xs`, accumulated in [`L`] lanes (a vector each) and then across them.
#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
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

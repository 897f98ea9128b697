//! Vector math on embeddings, in one place: unit length, cosine similarity (one pair or a
//! matrix), softmax. The dot product itself is `clip_index`'s (the index searches with it
//! and knows nothing of this crate); the softmax is the model's score head's.

use clip_index::search::dot;
use rayon::prelude::*;

/// A copy of `v` scaled to unit length (unchanged if it is all zeros).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    clip_index::search::normalized(v)
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(&normalized(a), &normalized(b))
}

/// Softmax of a row of logits (computed stably in `f64`).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    clip_model::head::softmax(logits)
}

/// `scores[i][j]`: cosine similarity of row `i` of `a` and row `j` of `b`, on all cores.
pub fn cosine_matrix(a: &[Vec<f32>], b: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let b: Vec<Vec<f32>> = b.iter().map(|v| normalized(v)).collect();
    a.par_iter()
        .map(|row| {
            let row = normalized(row);
            b.iter()
                .map(|col| row.iter().zip(col).map(|(x, y)| x * y).sum())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_orders() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
        let big = softmax(&[1000.0, 0.0]);
        assert!((big[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn normalized_handles_zero() {
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(normalized(&[3.0, 4.0]), vec![0.6, 0.8]);
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
    }
}

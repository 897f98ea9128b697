//! How the similarity of an image and a text becomes a score: CLIP scales the cosine and takes
//! a softmax over the candidates; SigLIP adds a learned bias and takes a sigmoid per pair.
//! The parameters are read from the checkpoint once, here, with one default.

use candle_core::{DType, Tensor};
use candle_nn::{Init, VarBuilder};

/// transformers' `logit_scale_init_value`, `ln(1 / 0.07)`: what a model with random weights
/// (or one about to be trained) starts from. A checkpoint always stores its own.
const LOGIT_SCALE_INIT: f64 = 2.6592;

/// The `logit_scale` parameter of a `CLIPModel` checkpoint (a scalar; a new variable with
/// [`LOGIT_SCALE_INIT`] when `vb` builds a model from scratch).
pub(crate) fn logit_scale(vb: &VarBuilder) -> candle_core::Result<Tensor> {
    vb.get_with_hints((), "logit_scale", Init::Const(LOGIT_SCALE_INIT))
}

/// How logits become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    /// A softmax over the candidates (CLIP): the probabilities of one image sum to 1.
    Softmax,
    /// A sigmoid per pair (SigLIP): each candidate is judged on its own.
    Sigmoid,
}

/// Turns cosine similarities into logits and probabilities: `logit = exp(logit_scale) · cos +
/// logit_bias`, then [`ScoreKind`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreHead {
    /// The stored `logit_scale`: the natural log of the multiplier of cosines.
    pub logit_scale: f32,
    /// The stored `logit_bias` (SigLIP); 0 for CLIP.
    pub logit_bias: f32,
    /// How logits become probabilities.
    pub kind: ScoreKind,
}

impl ScoreHead {
    /// CLIP's head: the checkpoint's `logit_scale`, no bias, softmax.
    pub(crate) fn clip(vb: &VarBuilder) -> candle_core::Result<ScoreHead> {
        Ok(ScoreHead {
            logit_scale: logit_scale(vb)?.to_dtype(DType::F32)?.to_scalar::<f32>()?,
            logit_bias: 0.0,
            kind: ScoreKind::Softmax,
        })
    }

    /// The multiplier of cosines, `exp(logit_scale)` (100 for OpenAI's models).
    pub fn scale(&self) -> f32 {
        self.logit_scale.exp()
    }

    /// The logit of one cosine similarity.
    pub fn logit(&self, cosine: f32) -> f32 {
        self.scale() * cosine + self.logit_bias
    }

    /// The probabilities of one row of logits (one image against its candidates).
    pub fn probabilities(&self, logits: &[f32]) -> Vec<f32> {
        match self.kind {
            ScoreKind::Softmax => softmax(logits),
            ScoreKind::Sigmoid => logits
                .iter()
                .map(|&l| (1.0 / (1.0 + (-f64::from(l)).exp())) as f32)
                .collect(),
        }
    }
}

/// Softmax of a row of logits (computed stably in `f64`).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_score_as_their_families_do() {
        let clip = ScoreHead {
            logit_scale: 100f32.ln(),
            logit_bias: 0.0,
            kind: ScoreKind::Softmax,
        };
        assert!((clip.logit(0.25) - 25.0).abs() < 1e-4);
        let p = clip.probabilities(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1] && p[1] > p[0]);
        let siglip = ScoreHead {
            logit_scale: 10f32.ln(),
            logit_bias: -5.0,
            kind: ScoreKind::Sigmoid,
        };
        assert!((siglip.logit(0.5) - 0.0).abs() < 1e-5);
        assert_eq!(siglip.probabilities(&[0.0, 0.0]), vec![0.5, 0.5]);
    }
}

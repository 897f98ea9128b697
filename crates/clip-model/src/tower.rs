//! One trait per tower, so that [`crate::Engine`] can pair an image tower and a text tower of
//! any family and any backend: a fast CLIP text tower with a candle ResNet image tower, or
//! Chinese-CLIP's BERT text tower with CLIP's vision tower.
//!
//! Both take the plain buffers the engine has checked against the configuration and return
//! unnormalized features, one `Vec` per input.

use crate::error::ModelError;

/// An image tower with its projection into the shared space.
pub trait ImageTower: Send + Sync + std::fmt::Debug {
    /// Features of `batch` images given as channel-major pixels (`batch · channels · size ·
    /// size` values).
    fn image_features(&self, pixels: &[f32], batch: usize) -> Result<Vec<Vec<f32>>, ModelError>;
}

/// A text tower with its projection into the shared space.
pub trait TextTower: Send + Sync + std::fmt::Debug {
    /// Features of `batch` rows of token ids (`ids.len() / batch` a row), row `i` pooled at
    /// position `pool[i]` (CLIP: its end-of-text token).
    fn text_features(
        &self,
        ids: &[u32],
        batch: usize,
        pool: &[usize],
    ) -> Result<Vec<Vec<f32>>, ModelError>;
}

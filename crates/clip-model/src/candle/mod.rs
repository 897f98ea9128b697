//! The candle ports, one module per family in candle-transformers' layout: one struct per
//! upstream module, weights read under the checkpoint's own key names.
//!
//! This is the path GPUs run, the one training will differentiate through, and the reference
//! the CPU fast path ([`crate::fast`]) is checked against; it is not a second-class copy.

pub mod clip;

use candle_core::{DType, Tensor};

use crate::error::ModelError;

/// The rows of a `[batch, dim]` tensor, for the tensor-free tower traits.
fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>, ModelError> {
    Ok(t.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

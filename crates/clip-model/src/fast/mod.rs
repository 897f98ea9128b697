//! The CPU fast path: the towers of [`crate::candle`], laid out for speed.
//!
//! Each family composes its towers (`clip.rs`) from shared blocks (`blocks.rs`), reading the
//! weights under the checkpoint's names as the candle port does, with these differences in
//! structure (not in results):
//! - q, k and v projections are fused into one `[3·hidden, hidden]` matrix;
//! - weights are packed once at load into the GEMM's panel layout ([`kernels::Packed`]), in f32 or,
//!   with [`Precision::Bf16`], in bf16 for the CPU's bf16 dot-product instructions;
//! - bias, residual add and activation are applied inside the GEMM while the tile is hot;
//! - attention reads q, k, v in place from the fused projection (no head transposes), and the
//!   causal text attention skips the masked half instead of adding `-inf`.
//!
//! Activations stay f32 everywhere; on the bf16 path only the operands of the large matrix
//! products are rounded to bf16, products accumulate in f32.

#[doc(hidden)]
pub mod kernels;

mod blocks;
pub mod clip;

pub use clip::{FastClipText, FastClipVision};
use kernels::Format;

/// Number format of the weights in the large matrix products.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// Full f32, the reference's numbers.
    #[default]
    F32,
    /// bf16 weights and matrix-product inputs with f32 accumulation (AVX512-BF16 where the CPU
    /// has it, emulated otherwise); about half the memory and twice the speed.
    Bf16,
}

impl Precision {
    fn format(self) -> Format {
        match self {
            Precision::F32 => Format::F32,
            Precision::Bf16 => Format::Bf16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(format!(
                "unknown precision {other:?} (expected f32 or bf16)"
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

//! The CPU kernels of the fast path: products against packed weights, layer norm, activations
//! and attention, each in plain Rust and, where that was slow, hand-written for x86-64.
//!
//! Dependencies point one way: each module uses only modules listed above it.
//!
//! ```text
//! dispatch   Isa (detected once), per_isa!, SendPtr
//! tile       the MR x NR register tile: Tile, TileFn, the plain-Rust tile
//! x86/*      hand-written kernels, one file per instruction set   uses tile
//! bf16       bf16 rounding, packing into pairs                    uses dispatch, x86
//! act        exp, erf, activations (Act)                          uses dispatch, x86
//! norm       row sums, layer norm                                 uses dispatch
//! gemm       Packed weights, matmul, small_matmul                 uses dispatch, tile, x86,
//!                                                                      bf16, act
//! attention  softmax rows, attention, attention_rows              uses dispatch, x86, bf16,
//!                                                                      act, norm, gemm
//! ```
//!
//! The layers in `fast/mod.rs` use what this module re-exports. `x86/` holds one file per
//! instruction set rather than one per concern (see `x86/mod.rs`): a file's functions all share
//! its `#[target_feature]` and its `Isa` tier, and the files stay leaves of the graph.

mod act;
mod attention;
mod bf16;
mod dispatch;
mod gemm;
mod norm;
mod tile;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use act::Act;
pub use attention::{attention, attention_rows, sized};
pub use gemm::{matmul, Format, Out, Packed};
pub use norm::layer_norm;

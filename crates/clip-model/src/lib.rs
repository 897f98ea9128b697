//! CLIP's vision and text towers on [candle](https://github.com/huggingface/candle), configured
//! and loaded from a Hugging Face checkpoint directory.
//!
//! This is the only crate of the workspace that sees the tensor library. Besides the candle
//! ports in [`candle`], it offers [`Engine`], a tensor-free API over plain `f32`/`u32`
//! buffers that the rest of the workspace uses.
//!
//! A checkpoint directory holds `config.json` and one of `model.safetensors`,
//! `model.safetensors.index.json` (sharded) or `pytorch_model.bin`. Weights stored in f16 or
//! bf16 are converted to f32 when loaded.

pub mod arch;
pub mod candle;
pub mod checkpoint;
pub mod config;
mod device;
mod engine;
pub mod error;
pub mod fast;
pub mod head;
pub mod tower;

pub use candle::clip::ClipModel;
pub use checkpoint::{find_weights, shard_names, FileStamp, WeightsFiles, WEIGHTS_FILE_NAMES};
pub use config::{Activation, ClipConfig, Family, ModelConfig, TextConfig, VisionConfig};
pub use device::DeviceKind;
pub use engine::{Backend, Engine, EngineOptions, LoadedTowers};
pub use error::ModelError;
pub use fast::{FastClipText, FastClipVision, Precision};
pub use head::{ScoreHead, ScoreKind};
pub use tower::{ImageTower, TextTower};

/// Sets the number of compute threads of the CPU paths. Call it once, before the first model
/// call; later calls, or a pool already started, are an error.
pub fn set_threads(n: usize) -> Result<(), ModelError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| ModelError::Threads {
            threads: n,
            detail: e.to_string(),
        })
}

/// The number of compute threads of the CPU paths.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

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
pub mod error;
pub mod fast;
pub mod head;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use candle::clip::ClipModel;
pub use checkpoint::{find_weights, shard_names, WeightsFiles, WEIGHTS_FILE_NAMES};
pub use config::{Activation, ClipConfig, Family, ModelConfig, TextConfig, VisionConfig};
pub use error::ModelError;
pub use fast::{FastClipText, FastClipVision, Precision};
pub use head::{ScoreHead, ScoreKind};

/// How an [`Engine`] is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Where the model runs.
    pub device: DeviceKind,
    /// Number format of the large matrix products (CPU fast path only).
    pub precision: Precision,
    /// Which implementation computes on the CPU; GPUs always use [`Backend::Candle`].
    pub backend: Backend,
}

/// Which implementation of the towers computes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// The CPU fast path ([`fast`]): packed weights, our own kernels, f32 or bf16. The CPU
    /// default.
    #[default]
    Fast,
    /// The candle port ([`candle`]): what GPUs run, and on the CPU the reference the fast path
    /// is checked against.
    Candle,
}

impl EngineOptions {
    /// Defaults for `device`: fast path on the CPU, f32.
    pub fn new(device: DeviceKind) -> EngineOptions {
        EngineOptions {
            device,
            ..EngineOptions::default()
        }
    }

    /// The backend that computes: the one asked for on the CPU, candle on a GPU.
    pub fn effective_backend(&self) -> Backend {
        match self.device {
            DeviceKind::Cpu => self.backend,
            DeviceKind::Cuda(_) | DeviceKind::Metal(_) => Backend::Candle,
        }
    }
}

/// Sets the number of compute threads of the CPU paths. Call it once, before the first model
/// call; later calls, or a pool already started, are an error.
pub fn set_threads(n: usize) -> Result<(), ModelError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| ModelError::Input(format!("cannot use {n} threads: {e}")))
}

/// The number of compute threads of the CPU paths.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

impl From<DeviceKind> for EngineOptions {
    fn from(device: DeviceKind) -> EngineOptions {
        EngineOptions::new(device)
    }
}

#[derive(Debug, Clone)]
enum Towers {
    Candle(Box<ClipModel>, Device),
    Fast(Arc<(FastClipVision, FastClipText)>),
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// An NVIDIA GPU by ordinal (needs the `cuda` feature).
    Cuda(usize),
    /// An Apple GPU by ordinal (needs the `metal` feature).
    Metal(usize),
}

impl FromStr for DeviceKind {
    type Err = ModelError;

    /// Parses `cpu`, `cuda`, `cuda:N`, `metal`, `metal:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelError::Device {
            device: s.to_string(),
            detail: "expected cpu, cuda, cuda:N, metal or metal:N".into(),
        };
        let (kind, index) = match s.split_once(':') {
            Some((k, i)) => (k, i.parse::<usize>().map_err(|_| bad())?),
            None => (s, 0),
        };
        match kind {
            "cpu" if !s.contains(':') => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(index)),
            "metal" => Ok(DeviceKind::Metal(index)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Cpu => write!(f, "cpu"),
            DeviceKind::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceKind::Metal(i) => write!(f, "metal:{i}"),
        }
    }
}

impl DeviceKind {
    fn device(self) -> Result<Device, ModelError> {
        let unavailable = |e: candle_core::Error| ModelError::Device {
            device: self.to_string(),
            detail: e.to_string(),
        };
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda(i) => Device::new_cuda(i).map_err(unavailable),
            DeviceKind::Metal(i) => Device::new_metal(i).map_err(unavailable),
        }
    }
}

/// A loaded model with a tensor-free interface.
#[derive(Debug, Clone)]
pub struct Engine {
    towers: Towers,
    config: ClipConfig,
    head: ScoreHead,
    options: EngineOptions,
}

impl Engine {
    /// Loads `config.json` and the weights from a checkpoint directory onto `device`.
    pub fn load(dir: &Path, device: DeviceKind) -> Result<Engine, ModelError> {
        Self::load_with(dir, &EngineOptions::new(device))
    }

    /// Loads a checkpoint directory with the given options.
    pub fn load_with(dir: &Path, options: &EngineOptions) -> Result<Engine, ModelError> {
        let ModelConfig::Clip(config) = checkpoint::read_config(dir)?;
        let weights = find_weights(dir)?;
        Self::from_files_with(&config, &weights, options)
    }

    /// Builds the model from a configuration and weights files.
    pub fn from_files(
        config: &ClipConfig,
        weights: &WeightsFiles,
        device: DeviceKind,
    ) -> Result<Engine, ModelError> {
        Self::from_files_with(config, weights, &EngineOptions::new(device))
    }

    /// Builds the model from a configuration and weights files with the given options.
    pub fn from_files_with(
        config: &ClipConfig,
        weights: &WeightsFiles,
        options: &EngineOptions,
    ) -> Result<Engine, ModelError> {
        let device = options.device.device()?;
        let vb = weights.open(&device)?;
        Self::build(vb, config, options).map_err(|e| ModelError::Weights {
            path: weights.shown(),
            detail: e.to_string(),
        })
    }

    /// A model of the given architecture with random weights, for benchmarks and tests: the
    /// compute is that of the real model, the outputs mean nothing.
    pub fn random(config: &ClipConfig, options: &EngineOptions) -> Result<Engine, ModelError> {
        config.validate("random weights")?;
        let device = options.device.device()?;
        let vars = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        Ok(Self::build(vb, config, options)?)
    }

    fn build(
        vb: VarBuilder,
        config: &ClipConfig,
        options: &EngineOptions,
    ) -> candle_core::Result<Engine> {
        let head = ScoreHead::clip(&vb)?;
        let backend = options.effective_backend();
        if backend != Backend::Fast && options.precision != Precision::F32 {
            candle_core::bail!(
                "precision {} is only available on the CPU fast path (device {}{})",
                options.precision,
                options.device,
                if options.backend == Backend::Candle {
                    ", candle backend"
                } else {
                    ""
                }
            );
        }
        let towers = match backend {
            Backend::Fast => Towers::Fast(Arc::new((
                FastClipVision::new(vb.clone(), config, options.precision)?,
                FastClipText::new(vb, config, options.precision)?,
            ))),
            Backend::Candle => {
                let device = vb.device().clone();
                Towers::Candle(Box::new(ClipModel::new(vb, config)?), device)
            }
        };
        Ok(Engine {
            towers,
            config: config.clone(),
            head,
            options: *options,
        })
    }

    /// The checkpoint's configuration.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Size of the embeddings.
    pub fn embedding_dim(&self) -> usize {
        self.config.projection_dim
    }

    /// The stored `logit_scale` (natural log of the similarity multiplier).
    pub fn logit_scale(&self) -> f32 {
        self.head.logit_scale
    }

    /// How similarities become scores.
    pub fn head(&self) -> &ScoreHead {
        &self.head
    }

    /// Unnormalized image features for `batch` images given as channel-major pixels
    /// (`batch * channels * size * size` values), one `Vec` per image.
    pub fn image_features(
        &self,
        pixels: &[f32],
        batch: usize,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let v = &self.config.vision_config;
        let per_image = v.num_channels * v.image_size * v.image_size;
        if batch == 0 {
            return Ok(Vec::new());
        }
        if pixels.len() != batch * per_image {
            return Err(ModelError::Input(format!(
                "{} pixel values for {batch} images of {}x{}x{} (expected {})",
                pixels.len(),
                v.num_channels,
                v.image_size,
                v.image_size,
                batch * per_image
            )));
        }
        let dim = self.embedding_dim();
        match &self.towers {
            Towers::Fast(m) => Ok(chunks(m.0.features(pixels, batch), dim)),
            Towers::Candle(m, device) => {
                let shape = (batch, v.num_channels, v.image_size, v.image_size);
                let t = Tensor::from_slice(pixels, shape, device)?;
                rows(&m.image_features(&t)?)
            }
        }
    }

    /// Unnormalized text features for `batch` rows of `context` token ids, reading each row at
    /// its end-of-text position `eot[i]`.
    pub fn text_features(
        &self,
        ids: &[u32],
        batch: usize,
        eot: &[usize],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        let t = &self.config.text_config;
        if !ids.len().is_multiple_of(batch) || eot.len() != batch {
            return Err(ModelError::Input(format!(
                "{} ids and {} end positions for a batch of {batch}",
                ids.len(),
                eot.len()
            )));
        }
        let context = ids.len() / batch;
        if context > t.max_position_embeddings {
            return Err(ModelError::Input(format!(
                "context of {context} tokens is longer than the model's {}",
                t.max_position_embeddings
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= t.vocab_size) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                t.vocab_size
            )));
        }
        if let Some(&bad) = eot.iter().find(|&&p| p >= context) {
            return Err(ModelError::Input(format!(
                "end-of-text position {bad} is outside the context of {context}"
            )));
        }
        let dim = self.embedding_dim();
        match &self.towers {
            Towers::Fast(m) => Ok(chunks(m.1.features(ids, batch, eot), dim)),
            Towers::Candle(m, device) => {
                let tensor = Tensor::from_slice(ids, (batch, context), device)?;
                rows(&m.text_features(&tensor, eot)?)
            }
        }
    }
}

fn chunks(flat: Vec<f32>, dim: usize) -> Vec<Vec<f32>> {
    flat.chunks_exact(dim).map(<[f32]>::to_vec).collect()
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>, ModelError> {
    Ok(t.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        assert_eq!("cuda:2".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(2));
        assert_eq!("metal".parse::<DeviceKind>().unwrap(), DeviceKind::Metal(0));
        assert!("gpu".parse::<DeviceKind>().is_err());
        assert!("cpu:1".parse::<DeviceKind>().is_err());
        assert!("cuda:x".parse::<DeviceKind>().is_err());
    }

    #[test]
    fn missing_files_are_named() {
        let dir = std::env::temp_dir().join(format!("clip-model-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = Engine::load(&dir, DeviceKind::Cpu).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        let e = Engine::load(&dir, DeviceKind::Cpu).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("pytorch_model.bin"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

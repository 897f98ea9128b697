//! [`Engine`]: a loaded model behind a tensor-free API over `f32`/`u32` buffers, the seam the
//! rest of the workspace uses. It holds one [`ImageTower`] and one [`TextTower`], picked by
//! family and backend in one place ([`Engine::build`]), and the [`ScoreHead`] read from the
//! same checkpoint, so callers never see which implementation computes.

use std::path::Path;
use std::sync::Arc;

use candle_core::DType;
use candle_nn::VarBuilder;

use crate::candle::clip::{ClipTextModelWithProjection, ClipVisionModelWithProjection};
use crate::checkpoint::{self, find_weights, WeightsFiles};
use crate::config::{ClipConfig, ModelConfig};
use crate::device::DeviceKind;
use crate::error::ModelError;
use crate::fast::{FastClipText, FastClipVision, Precision};
use crate::head::ScoreHead;
use crate::tower::{ImageTower, TextTower};

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
    /// The CPU fast path ([`crate::fast`]): packed weights, our own kernels, f32 or bf16. The CPU
    /// default.
    #[default]
    Fast,
    /// The candle port ([`crate::candle`]): what GPUs run, and on the CPU the reference the fast path
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

impl From<DeviceKind> for EngineOptions {
    fn from(device: DeviceKind) -> EngineOptions {
        EngineOptions::new(device)
    }
}

/// A loaded model with a tensor-free interface.
#[derive(Debug, Clone)]
pub struct Engine {
    image: Arc<dyn ImageTower>,
    text: Arc<dyn TextTower>,
    head: ScoreHead,
    config: ModelConfig,
    options: EngineOptions,
}

impl Engine {
    /// Loads `config.json` and the weights from a checkpoint directory onto `device`.
    pub fn load(dir: &Path, device: DeviceKind) -> Result<Engine, ModelError> {
        Self::load_with(dir, &EngineOptions::new(device))
    }

    /// Loads a checkpoint directory with the given options.
    pub fn load_with(dir: &Path, options: &EngineOptions) -> Result<Engine, ModelError> {
        let config = checkpoint::read_config(dir)?;
        let weights = find_weights(dir)?;
        Self::from_files_with(config, &weights, options)
    }

    /// Builds the model from a configuration and weights files.
    pub fn from_files(
        config: impl Into<ModelConfig>,
        weights: &WeightsFiles,
        device: DeviceKind,
    ) -> Result<Engine, ModelError> {
        Self::from_files_with(config, weights, &EngineOptions::new(device))
    }

    /// Builds the model from a configuration and weights files with the given options.
    pub fn from_files_with(
        config: impl Into<ModelConfig>,
        weights: &WeightsFiles,
        options: &EngineOptions,
    ) -> Result<Engine, ModelError> {
        let device = options.device.device()?;
        let vb = weights.open(&device)?;
        Self::build(vb, config.into(), options).map_err(|e| ModelError::Weights {
            path: weights.shown(),
            detail: e.to_string(),
        })
    }

    /// A model of the given architecture with random weights, for benchmarks and tests: the
    /// compute is that of the real model, the outputs mean nothing.
    pub fn random(
        config: impl Into<ModelConfig>,
        options: &EngineOptions,
    ) -> Result<Engine, ModelError> {
        let config = config.into();
        config.validate("random weights")?;
        let device = options.device.device()?;
        let vars = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        Ok(Self::build(vb, config, options)?)
    }

    /// The family's towers on the backend the options call for, and its score head.
    fn build(
        vb: VarBuilder,
        config: ModelConfig,
        options: &EngineOptions,
    ) -> candle_core::Result<Engine> {
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
        let precision = options.precision;
        let (image, text, head) = match &config {
            ModelConfig::Clip(c) => {
                let (image, text): (Arc<dyn ImageTower>, Arc<dyn TextTower>) = match backend {
                    Backend::Fast => (
                        Arc::new(FastClipVision::new(vb.clone(), c, precision)?),
                        Arc::new(FastClipText::new(vb.clone(), c, precision)?),
                    ),
                    Backend::Candle => (
                        Arc::new(ClipVisionModelWithProjection::new(vb.clone(), c)?),
                        Arc::new(ClipTextModelWithProjection::new(vb.clone(), c)?),
                    ),
                };
                (image, text, ScoreHead::clip(&vb)?)
            }
        };
        Ok(Engine {
            image,
            text,
            head,
            config,
            options: *options,
        })
    }

    /// The checkpoint's configuration.
    pub fn config(&self) -> &ClipConfig {
        match &self.config {
            ModelConfig::Clip(c) => c,
        }
    }

    /// The checkpoint's configuration, with its family.
    pub fn model_config(&self) -> &ModelConfig {
        &self.config
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Size of the embeddings.
    pub fn embedding_dim(&self) -> usize {
        self.config().projection_dim
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
        let v = &self.config().vision_config;
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
        self.image.image_features(pixels, batch)
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
        let t = &self.config().text_config;
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
        self.text.text_features(ids, batch, eot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path().to_path_buf();
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

//! [`Engine`]: a loaded model behind a tensor-free API over `f32`/`u32` buffers, the seam the
//! rest of the workspace uses. It holds one [`ImageTower`] and one [`TextTower`], picked by
//! family and backend in one place (`image_tower`, `text_tower`) and each read from the
//! memory-mapped checkpoint when it is first used, and the [`ScoreHead`] read from the same
//! checkpoint, so callers never see which implementation computes.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::DType;
use candle_nn::VarBuilder;

use crate::candle::clip::{ClipTextModelWithProjection, ClipVisionModelWithProjection};
use crate::checkpoint::{self, find_weights, FileStamp, WeightsFiles};
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

/// A loaded model with a tensor-free interface. Loading reads the configuration and the score
/// head and maps the weights files; each tower is read from them when it is first used (only
/// its own tensors), so that a text query never reads the image tower, and an engine used for
/// nothing reads no tower. Clones share the towers.
#[derive(Debug, Clone)]
pub struct Engine {
    towers: Arc<Towers>,
    head: ScoreHead,
    config: ModelConfig,
    options: EngineOptions,
    fingerprint: Option<String>,
}

/// Which towers an engine has read from its checkpoint so far ([`Engine::loaded_towers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadedTowers {
    /// The image tower.
    pub image: bool,
    /// The text tower.
    pub text: bool,
}

/// The towers of an engine, each built on first use from the mapped checkpoint, which is
/// released once both are built.
struct Towers {
    /// The checkpoint (`None` once both towers are built); its lock is held while one is built.
    source: Mutex<Option<VarBuilder<'static>>>,
    /// The weights files, as quoted in errors and logs.
    shown: String,
    /// The weights files and how they were when loaded (`None` for random weights): a tower
    /// is built only from the files the fingerprint was taken of.
    files: Option<(WeightsFiles, Vec<FileStamp>)>,
    config: ModelConfig,
    options: EngineOptions,
    image: OnceLock<Arc<dyn ImageTower>>,
    text: OnceLock<Arc<dyn TextTower>>,
}

impl std::fmt::Debug for Towers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let not_loaded: &dyn std::fmt::Debug = &"(not loaded)";
        f.debug_struct("Towers")
            .field("weights", &self.shown)
            .field("image", self.image.get().map_or(not_loaded, |t| t))
            .field("text", self.text.get().map_or(not_loaded, |t| t))
            .finish()
    }
}

impl Towers {
    /// The tower in `cell`, built by `build` from the checkpoint if it is not yet.
    fn get<'a, T: ?Sized>(
        &'a self,
        cell: &'a OnceLock<Arc<T>>,
        what: &str,
        build: impl FnOnce(
            VarBuilder<'static>,
            &ModelConfig,
            &EngineOptions,
        ) -> candle_core::Result<Arc<T>>,
    ) -> Result<&'a Arc<T>, ModelError> {
        if let Some(tower) = cell.get() {
            return Ok(tower);
        }
        let mut source = self.source.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tower) = cell.get() {
            return Ok(tower);
        }
        let vb = source
            .clone()
            .expect("the checkpoint is kept until both towers are built");
        // Towers are read long after loading (a scan walks its folders first): files written
        // since would give vectors the index records under the old fingerprint.
        if let Some((_, stamp)) = &self.files {
            if stamp.iter().any(FileStamp::written_in_place) {
                return Err(ModelError::Weights {
                    path: self.shown.clone(),
                    detail: format!(
                        "changed on disk since the model was loaded (before its {what} tower \
                         was read)"
                    ),
                });
            }
        }
        let start = std::time::Instant::now();
        let tower = build(vb, &self.config, &self.options).map_err(|e| ModelError::Weights {
            path: self.shown.clone(),
            detail: e.to_string(),
        })?;
        tracing::info!(
            "loaded the {what} tower from {} in {:.2} s",
            self.shown,
            start.elapsed().as_secs_f64()
        );
        let tower = cell.get_or_init(|| tower);
        if self.image.get().is_some() && self.text.get().is_some() {
            *source = None; // unmaps the files
        }
        Ok(tower)
    }

    fn image(&self) -> Result<&Arc<dyn ImageTower>, ModelError> {
        self.get(&self.image, "image", image_tower)
    }

    fn text(&self) -> Result<&Arc<dyn TextTower>, ModelError> {
        self.get(&self.text, "text", text_tower)
    }
}

/// Refuses options no backend offers, before anything is read.
fn check_options(options: &EngineOptions) -> candle_core::Result<()> {
    if options.effective_backend() != Backend::Fast && options.precision != Precision::F32 {
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
    Ok(())
}

/// The family's image tower on the backend the options call for.
fn image_tower(
    vb: VarBuilder<'static>,
    config: &ModelConfig,
    options: &EngineOptions,
) -> candle_core::Result<Arc<dyn ImageTower>> {
    Ok(match (config, options.effective_backend()) {
        (ModelConfig::Clip(c), Backend::Fast) => {
            Arc::new(FastClipVision::new(vb, c, options.precision)?)
        }
        (ModelConfig::Clip(c), Backend::Candle) => {
            Arc::new(ClipVisionModelWithProjection::new(vb, c)?)
        }
    })
}

/// The family's text tower on the backend the options call for.
fn text_tower(
    vb: VarBuilder<'static>,
    config: &ModelConfig,
    options: &EngineOptions,
) -> candle_core::Result<Arc<dyn TextTower>> {
    Ok(match (config, options.effective_backend()) {
        (ModelConfig::Clip(c), Backend::Fast) => {
            Arc::new(FastClipText::new(vb, c, options.precision)?)
        }
        (ModelConfig::Clip(c), Backend::Candle) => {
            Arc::new(ClipTextModelWithProjection::new(vb, c)?)
        }
    })
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

    /// Builds the model from a configuration and weights files with the given options: the
    /// files are mapped and fingerprinted ([`WeightsFiles::fingerprint`]), the score head is
    /// read; the towers are read on first use.
    pub fn from_files_with(
        config: impl Into<ModelConfig>,
        weights: &WeightsFiles,
        options: &EngineOptions,
    ) -> Result<Engine, ModelError> {
        let weights_error = |e: candle_core::Error| ModelError::Weights {
            path: weights.shown(),
            detail: e.to_string(),
        };
        check_options(options).map_err(weights_error)?;
        let device = options.device.device()?;
        let stamp = weights.stamp()?;
        let fingerprint = weights.fingerprint()?;
        let vb = weights.open(&device)?;
        let head = ScoreHead::clip(&vb).map_err(weights_error)?;
        Ok(Self::new(
            vb,
            config.into(),
            options,
            head,
            weights.shown(),
            Some((fingerprint, weights.clone(), stamp)),
        ))
    }

    /// A model of the given architecture with random weights, for benchmarks and tests: the
    /// compute is that of the real model, the outputs mean nothing. Both towers are built at
    /// once.
    pub fn random(
        config: impl Into<ModelConfig>,
        options: &EngineOptions,
    ) -> Result<Engine, ModelError> {
        let config = config.into();
        config.validate("random weights")?;
        check_options(options)?;
        let device = options.device.device()?;
        let vars = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        let head = ScoreHead::clip(&vb)?;
        let engine = Self::new(vb, config, options, head, "random weights".into(), None);
        engine.load_towers()?;
        Ok(engine)
    }

    fn new(
        vb: VarBuilder<'static>,
        config: ModelConfig,
        options: &EngineOptions,
        head: ScoreHead,
        shown: String,
        files: Option<(String, WeightsFiles, Vec<FileStamp>)>,
    ) -> Engine {
        let (fingerprint, files) = match files {
            Some((fingerprint, weights, stamp)) => (Some(fingerprint), Some((weights, stamp))),
            None => (None, None),
        };
        Engine {
            towers: Arc::new(Towers {
                source: Mutex::new(Some(vb)),
                shown,
                files,
                config: config.clone(),
                options: *options,
                image: OnceLock::new(),
                text: OnceLock::new(),
            }),
            head,
            config,
            options: *options,
            fingerprint,
        }
    }

    /// Reads both towers now, rather than on first use (for timing the model alone, or to
    /// find a damaged checkpoint before anything else is done).
    pub fn load_towers(&self) -> Result<(), ModelError> {
        self.load_image_tower()?;
        self.load_text_tower()
    }

    /// Reads the image tower now, rather than on first use.
    pub fn load_image_tower(&self) -> Result<(), ModelError> {
        self.towers.image().map(|_| ())
    }

    /// Reads the text tower now, rather than on first use.
    pub fn load_text_tower(&self) -> Result<(), ModelError> {
        self.towers.text().map(|_| ())
    }

    /// Which towers have been read from the checkpoint so far.
    pub fn loaded_towers(&self) -> LoadedTowers {
        LoadedTowers {
            image: self.towers.image.get().is_some(),
            text: self.towers.text.get().is_some(),
        }
    }

    /// The fingerprint of the weights' content taken when they were loaded
    /// ([`WeightsFiles::fingerprint`]); `None` for random weights.
    pub fn weights_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// The weights files and how they were when loaded ([`WeightsFiles::stamp`]); `None` for
    /// random weights.
    pub fn weights_files(&self) -> Option<(&WeightsFiles, &[FileStamp])> {
        self.towers
            .files
            .as_ref()
            .map(|(files, stamp)| (files, stamp.as_slice()))
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
        self.towers.image()?.image_features(pixels, batch)
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
        self.towers.text()?.text_features(ids, batch, eot)
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

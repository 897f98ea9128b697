//! CLIP in Rust: load a checkpoint, embed images and text into one space, compare them.
//!
//! The API follows OpenAI's Python package:
//!
//! ```python
//! model, preprocess = clip.load("ViT-B/32", device="cpu")
//! image = preprocess(Image.open("cat.jpg")).unsqueeze(0)
//! text = clip.tokenize(["a cat", "a dog"])
//! logits_per_image, _ = model(image, text)
//! ```
//!
//! ```no_run
//! use clip::{Clip, Device};
//! # fn main() -> Result<(), clip::ClipError> {
//! let model = Clip::load("ViT-B/32", Device::Cpu)?;
//! let image = model.load_image("cat.jpg".as_ref())?;
//! let texts = model.tokenize_all(&["a cat", "a dog"], false)?;
//! let image_features = model.encode_image(&[image])?;
//! let text_features = model.encode_text(&texts)?;
//! let logits_per_image = model.logits(&image_features, &text_features);
//! let probs = clip::softmax(&logits_per_image[0]);
//! # Ok(()) }
//! ```
//!
//! Results equal those of transformers / open_clip on the same checkpoint: the preprocessing
//! reproduces Pillow's resampling bit for bit, the tokenizer reproduces open_clip's ids, and
//! the towers match within float rounding (see the README for the figures).

pub mod batch;
pub mod dataset;
pub mod env;
pub mod error;
pub mod eval;
pub mod hub;
pub mod identity;
pub mod photos;
pub mod vector;
pub mod walk;
pub mod zeroshot;

use std::path::{Path, PathBuf};

pub use clip_model::arch::{architecture, ARCHITECTURES};
pub use clip_model::Backend;
pub use clip_model::{
    set_threads, threads, ClipConfig, DeviceKind as Device, Engine, EngineOptions, LoadedTowers,
    Precision,
};
pub use clip_preprocess::image::decode::{MAX_DECODE_BYTES, MAX_MEGAPIXELS};
pub use clip_preprocess::image::{DecodeLimits, DecodedImage, Pixels, PreprocessConfig};
pub use clip_preprocess::text::{Tokenizer, Tokens, DEFAULT_CONTEXT_LENGTH};
pub use error::{ClipError, Fault};
pub use hub::{DownloadProgress, NoProgress, ResolveOptions, DEFAULT_MODEL, KNOWN_MODELS};
pub use identity::ModelId;
pub use vector::{cosine, normalized, softmax};
pub use zeroshot::{ClassifierOptions, Templates};

/// How many items go through the model at once by default.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Reads, decodes and preprocesses an image file without a model. An image that only a pixel
/// budget lets in ([`DecodeLimits::with_max_megapixels`]) may be decoded at a reduced size
/// that still covers the resize ([`clip_preprocess::image::decode_reduced`]).
pub fn load_image(
    path: &Path,
    config: &PreprocessConfig,
    limits: &DecodeLimits,
) -> Result<Pixels, ClipError> {
    let img = clip_preprocess::image::open_reduced(path, limits, config.decode_at_least())?;
    Ok(clip_preprocess::image::preprocess(&img, config))
}

/// Decodes and preprocesses an in-memory image file without a model (reduced as
/// [`load_image`] says); `name` is quoted in
/// errors.
pub fn load_image_bytes(
    bytes: &[u8],
    name: &str,
    config: &PreprocessConfig,
    limits: &DecodeLimits,
) -> Result<Pixels, ClipError> {
    let img =
        clip_preprocess::image::decode_reduced(bytes, name, limits, config.decode_at_least())?;
    Ok(clip_preprocess::image::preprocess(&img, config))
}

/// A loaded CLIP model with its preprocessing and tokenizer.
#[derive(Debug, Clone)]
pub struct Clip {
    engine: Engine,
    preprocess: PreprocessConfig,
    limits: DecodeLimits,
    dir: PathBuf,
    name: String,
    batch_size: usize,
    /// The weights' fingerprint in the model's identity, once taken ([`Clip::identity`]).
    weights_fingerprint: std::sync::OnceLock<String>,
}

impl Clip {
    /// Loads a model by name: a local checkpoint directory, a Hugging Face repo id
    /// (`openai/clip-vit-base-patch32`, `org/name@revision`), or one of OpenAI's names
    /// (`ViT-B/32`, `ViT-B/16`, `ViT-L/14`, `ViT-L/14@336px`). Hub models come from the
    /// Hugging Face cache, and are downloaded into it when missing (see [`hub`]).
    pub fn load(model: &str, device: Device) -> Result<Clip, ClipError> {
        Self::load_with(model, device, &ResolveOptions::from_env(), &mut NoProgress)
    }

    /// [`Clip::load`] with explicit engine options (a [`Device`], or [`EngineOptions`] for the
    /// precision too), cache, endpoint and offline mode, reporting download progress to
    /// `progress`.
    pub fn load_with(
        model: &str,
        engine: impl Into<EngineOptions>,
        options: &ResolveOptions,
        progress: &mut dyn DownloadProgress,
    ) -> Result<Clip, ClipError> {
        let dir = hub::resolve(model, options, progress)?;
        let mut clip = Self::from_dir(&dir, engine)?;
        clip.name = model.to_string();
        Ok(clip)
    }

    /// A model of a named architecture ([`ARCHITECTURES`]) with random weights and OpenAI's
    /// preprocessing: real compute, meaningless outputs. For benchmarks and tests; needs no
    /// download.
    pub fn random(arch: &str, engine: impl Into<EngineOptions>) -> Result<Clip, ClipError> {
        let config = architecture(arch)?;
        let engine = Engine::random(&config, &engine.into())?;
        let size = config.vision_config.image_size as u32;
        Ok(Clip {
            engine,
            preprocess: PreprocessConfig::openai(size),
            limits: DecodeLimits::default(),
            dir: PathBuf::new(),
            name: arch.to_string(),
            batch_size: DEFAULT_BATCH_SIZE,
            weights_fingerprint: std::sync::OnceLock::new(),
        })
    }

    /// Loads the checkpoint in `dir` (`config.json`, weights, `preprocessor_config.json`).
    pub fn from_dir(dir: &Path, engine: impl Into<EngineOptions>) -> Result<Clip, ClipError> {
        let engine = Engine::load_with(dir, &engine.into())?;
        let pre_path = dir.join("preprocessor_config.json");
        let image_size = engine.config().vision_config.image_size as u32;
        let preprocess = match std::fs::read_to_string(&pre_path) {
            Ok(json) => PreprocessConfig::from_hf_json(&json, &pre_path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    "{} is missing; using OpenAI's preprocessing at {image_size} pixels",
                    pre_path.display()
                );
                PreprocessConfig::openai(image_size)
            }
            Err(error) => {
                return Err(ClipError::Io {
                    path: pre_path.display().to_string(),
                    error,
                })
            }
        };
        match preprocess.output_size() {
            Some((h, w)) if h == image_size && w == image_size => {}
            other => {
                return Err(ClipError::PreprocessMismatch {
                    path: pre_path.display().to_string(),
                    got: other.map_or("variable-size".into(), |(h, w)| format!("{w}x{h}")),
                    expected: format!("{image_size}x{image_size}"),
                })
            }
        }
        Ok(Clip {
            engine,
            preprocess,
            limits: DecodeLimits::default(),
            dir: dir.to_path_buf(),
            name: dir.display().to_string(),
            batch_size: DEFAULT_BATCH_SIZE,
            weights_fingerprint: std::sync::OnceLock::new(),
        })
    }

    /// Sets how many images or texts go through the model at once.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How many images or texts go through the model at once.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Which towers have been read from the checkpoint so far: loading reads none, each is
    /// read when it is first used (a text query needs only the text tower).
    pub fn loaded_towers(&self) -> LoadedTowers {
        self.engine.loaded_towers()
    }

    /// Reads both towers now rather than on first use (to time the model alone, or to find a
    /// damaged checkpoint before anything else is done).
    pub fn load_towers(&self) -> Result<(), ClipError> {
        Ok(self.engine.load_towers()?)
    }

    /// Reads the image tower now rather than on first use.
    pub fn load_image_tower(&self) -> Result<(), ClipError> {
        Ok(self.engine.load_image_tower()?)
    }

    /// Reads the text tower now rather than on first use.
    pub fn load_text_tower(&self) -> Result<(), ClipError> {
        Ok(self.engine.load_text_tower()?)
    }

    /// Sets the limits applied when decoding images.
    pub fn with_decode_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits applied when decoding images ([`DecodeLimits::default`] unless set).
    pub fn decode_limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// The name the model was loaded by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint's configuration.
    pub fn config(&self) -> &ClipConfig {
        self.engine.config()
    }

    /// The image preprocessing read from the checkpoint.
    pub fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    /// Size of the embeddings.
    pub fn embedding_dim(&self) -> usize {
        self.engine.embedding_dim()
    }

    /// The model's context length in tokens.
    pub fn context_length(&self) -> usize {
        self.config().text_config.max_position_embeddings
    }

    /// The multiplier of cosine similarities in logits: `exp(logit_scale)` (100 for OpenAI's
    /// models).
    pub fn logit_scale(&self) -> f32 {
        self.engine.logit_scale().exp()
    }

    /// Turns decoded pixels into the model's input (resize, crop, normalize).
    pub fn preprocess(&self, image: &DecodedImage) -> Pixels {
        clip_preprocess::image::preprocess(image, &self.preprocess)
    }

    /// Reads, decodes and preprocesses an image file.
    pub fn load_image(&self, path: &Path) -> Result<Pixels, ClipError> {
        load_image(path, &self.preprocess, &self.limits)
    }

    /// Decodes and preprocesses an in-memory image file; `name` is quoted in errors.
    pub fn load_image_bytes(&self, bytes: &[u8], name: &str) -> Result<Pixels, ClipError> {
        load_image_bytes(bytes, name, &self.preprocess, &self.limits)
    }

    /// Tokenizes one text to the model's context length; too long is an error unless
    /// `truncate`.
    pub fn tokenize(&self, text: &str, truncate: bool) -> Result<Tokens, ClipError> {
        Ok(Tokenizer::openai().tokenize(text, self.context_length(), truncate)?)
    }

    /// Tokenizes several texts.
    pub fn tokenize_all<S: AsRef<str>>(
        &self,
        texts: &[S],
        truncate: bool,
    ) -> Result<Vec<Tokens>, ClipError> {
        texts
            .iter()
            .map(|t| self.tokenize(t.as_ref(), truncate))
            .collect()
    }

    /// Image features (not normalized), one per image, computed in batches.
    pub fn encode_image(&self, images: &[Pixels]) -> Result<Vec<Vec<f32>>, ClipError> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch_size) {
            let mut data = Vec::with_capacity(chunk.iter().map(|p| p.data.len()).sum());
            for p in chunk {
                data.extend_from_slice(&p.data);
            }
            out.extend(self.engine.image_features(&data, chunk.len())?);
        }
        Ok(out)
    }

    /// Text features (not normalized), one per text, computed in batches.
    pub fn encode_text(&self, texts: &[Tokens]) -> Result<Vec<Vec<f32>>, ClipError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size) {
            let mut ids = Vec::with_capacity(chunk.iter().map(|t| t.ids.len()).sum());
            let mut eot = Vec::with_capacity(chunk.len());
            for t in chunk {
                ids.extend_from_slice(&t.ids);
                eot.push(t.eot_position);
            }
            out.extend(self.engine.text_features(&ids, chunk.len(), &eot)?);
        }
        Ok(out)
    }

    /// `logits[i][j] = logit_scale * cos(image i, text j)`, as CLIP's `logits_per_image`.
    pub fn logits(&self, image_features: &[Vec<f32>], text_features: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let scale = self.logit_scale();
        vector::cosine_matrix(image_features, text_features)
            .into_iter()
            .map(|row| row.into_iter().map(|c| scale * c).collect())
            .collect()
    }

    /// Ranks the labels for each image: the softmax over the labels of the logits against the
    /// label features, most likely first (labels of equal probability keep their order).
    pub fn classify(
        &self,
        image_features: &[Vec<f32>],
        label_features: &[Vec<f32>],
    ) -> Vec<Vec<Prediction>> {
        let scale = self.logit_scale();
        vector::cosine_matrix(image_features, label_features)
            .into_iter()
            .map(|cosines| {
                let logits: Vec<f32> = cosines.iter().map(|c| scale * c).collect();
                let probs = self.engine.head().probabilities(&logits);
                let mut ranked: Vec<Prediction> = cosines
                    .into_iter()
                    .zip(logits.into_iter().zip(probs))
                    .enumerate()
                    .map(|(index, (cosine, (logit, probability)))| Prediction {
                        index,
                        probability,
                        logit,
                        cosine,
                    })
                    .collect();
                ranked.sort_by(|a, b| b.probability.total_cmp(&a.probability));
                ranked
            })
            .collect()
    }
}

/// One label's score for an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Position of the label in the list given to [`Clip::classify`].
    pub index: usize,
    /// Softmax probability among the labels.
    pub probability: f32,
    /// `logit_scale * cosine(image, label)`.
    pub logit: f32,
    /// Cosine similarity of the image and label embeddings.
    pub cosine: f32,
}

/// 64-bit FNV-1a of `bytes`, continuing from `h` (start from [`FNV_OFFSET`]): stable names and
/// fingerprints, not security.
pub(crate) fn fnv1a(bytes: &[u8], h: u64) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// FNV-1a's starting value.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

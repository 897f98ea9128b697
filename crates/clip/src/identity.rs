//! One identity per model: the photo index records it and refuses vectors of another.
//! (The label cache keys its entries by the checkpoint's files, see `zeroshot`.)
//!
//! The identity's fingerprint covers the configuration and the weights' content (sampled, so
//! it is taken at every load in milliseconds: `clip_model::WeightsFiles::fingerprint`), so a
//! checkpoint overwritten in place by a fine-tuned one of the same size is another model.
//! Versions before it fingerprinted the weight files' sizes only; an index that recorded such
//! a [`legacy fingerprint`](ModelId::legacy_fingerprint) is still opened with its model, and
//! records the new fingerprint from its next scan on (`photos::Scan::open`).

use std::path::Path;

use crate::{fnv1a, Clip, FNV_OFFSET};

/// What identifies a model's embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// The name to load it again by, from anywhere: a checkpoint folder given by a relative
    /// path (`-m ./model`) is made absolute.
    pub name: String,
    /// A fingerprint of the configuration and the weights' content (`config.json`'s bytes,
    /// and every tensor's name, type, shape and sampled values; not where the files lie, nor
    /// how they are sharded), 32 hex digits. For random weights: of the architecture's name,
    /// as [`legacy_fingerprint`](ModelId::legacy_fingerprint).
    pub fingerprint: String,
    /// What versions before the content fingerprint recorded: of the configuration and the
    /// weight files' sizes only, 16 hex digits. An index that recorded it was made by this
    /// model, or by one of the same configuration and file sizes.
    pub legacy_fingerprint: String,
    /// A fingerprint of the image preprocessing, 16 hex digits.
    pub preprocess: String,
    /// The embedding size.
    pub dim: usize,
}

impl Clip {
    /// This model's identity (computed each call: it reads the checkpoint's config; the
    /// weights' fingerprint was taken when they were loaded).
    pub fn identity(&self) -> ModelId {
        let legacy = format!("{:016x}", self.legacy_fingerprint());
        let fingerprint = match self.engine.weights_fingerprint() {
            Some(weights) => {
                let mut h = blake3::Hasher::new();
                h.update(b"clip model fingerprint 1\0");
                h.update(&(self.embedding_dim() as u64).to_le_bytes());
                // A config that cannot be read now counts as empty, as in the legacy one.
                let config = std::fs::read(self.dir.join("config.json")).unwrap_or_default();
                h.update(&(config.len() as u64).to_le_bytes());
                h.update(&config);
                h.update(weights.as_bytes());
                h.finalize().to_hex()[..32].to_string()
            }
            None => legacy.clone(),
        };
        let pre = fnv1a(
            format!("{:?}", self.preprocess_config()).as_bytes(),
            FNV_OFFSET,
        );
        ModelId {
            name: self.reload_name(),
            fingerprint,
            legacy_fingerprint: legacy,
            preprocess: format!("{pre:016x}"),
            dim: self.embedding_dim(),
        }
    }

    /// The fingerprint of versions before the content one: the embedding size, the config's
    /// bytes and the weight files' sizes (or the architecture's name, for random weights).
    /// Kept as it was, bit for bit, so that indexes made by those versions keep opening.
    fn legacy_fingerprint(&self) -> u64 {
        let mut h = fnv1a(self.embedding_dim().to_string().as_bytes(), FNV_OFFSET);
        if self.dir.as_os_str().is_empty() {
            h = fnv1a(format!("random {}", self.name).as_bytes(), h);
        } else {
            if let Ok(config) = std::fs::read(self.dir.join("config.json")) {
                h = fnv1a(&config, h);
            }
            if let Ok(weights) = clip_model::find_weights(&self.dir) {
                for p in weights.paths() {
                    let size = std::fs::metadata(p).map_or(0, |m| m.len());
                    h = fnv1a(&size.to_le_bytes(), h);
                }
            }
        }
        h
    }

    /// The model's name for reloading it later from anywhere: a checkpoint folder given by a
    /// relative path becomes absolute.
    fn reload_name(&self) -> String {
        let given = Path::new(&self.name);
        match (given.canonicalize(), self.dir.canonicalize()) {
            (Ok(named), Ok(dir)) if named == dir => named
                .to_str()
                .map_or_else(|| self.name.clone(), String::from),
            _ => self.name.clone(),
        }
    }
}

//! One identity per model, shared by everything that keeps a model's outputs: the photo
//! index records it and refuses vectors of another; the label cache keys its entries by it.

use std::path::Path;

use crate::{fnv1a, Clip, FNV_OFFSET};

/// What identifies a model's embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// The name to load it again by, from anywhere: a checkpoint folder given by a relative
    /// path (`-m ./model`) is made absolute.
    pub name: String,
    /// A fingerprint of the configuration and weights (the weight files' sizes; not where
    /// they lie), 16 hex digits.
    pub fingerprint: String,
    /// A fingerprint of the image preprocessing, 16 hex digits.
    pub preprocess: String,
    /// The embedding size.
    pub dim: usize,
}

impl Clip {
    /// This model's identity (computed each call: it reads the checkpoint's config).
    pub fn identity(&self) -> ModelId {
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
        let pre = fnv1a(
            format!("{:?}", self.preprocess_config()).as_bytes(),
            FNV_OFFSET,
        );
        ModelId {
            name: self.reload_name(),
            fingerprint: format!("{h:016x}"),
            preprocess: format!("{pre:016x}"),
            dim: self.embedding_dim(),
        }
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

//! One identity per model: the photo index records it and refuses vectors of another.
//! (The label cache keys its entries by the checkpoint's files, see `zeroshot`.)
//!
//! The identity's fingerprint covers the configuration and every byte of the weights
//! (`clip_model::WeightsFiles::content_digest`, by tensor name, so re-sharding or other
//! metadata keep it), so a checkpoint overwritten in place by a fine-tuned one of the same
//! size, or edited anywhere, is another model. Reading a whole checkpoint takes a second or
//! two, so the digest is kept in the cache folder (`weights/`) with the files' stamps
//! (`clip_model::FileStamp`: size, times, inode) and taken again only when they change; where
//! it cannot be taken the sampled fingerprint of the load stands in (which an index of the
//! digest then refuses: the files are not as they were).
//! Versions before it fingerprinted the weight files' sizes only; an index that recorded such
//! a [`legacy fingerprint`](ModelId::legacy_fingerprint) is still opened with its model, and
//! records the new fingerprint from its next scan on (`photos::Scan::open`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clip_model::{FileStamp, WeightsFiles};
use serde::{Deserialize, Serialize};

use crate::zeroshot::write_atomically;
use crate::{env, fnv1a, Clip, ClipError, FNV_OFFSET};

/// What identifies a model's embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// The name to load it again by, from anywhere: a checkpoint folder given by a relative
    /// path (`-m ./model`) is made absolute.
    pub name: String,
    /// A fingerprint of the configuration and the weights' content (`config.json`'s bytes,
    /// and every tensor's name, type, shape and values; not where the files lie, nor how they
    /// are sharded), 32 hex digits. For random weights: of the architecture's name,
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
    /// weights' digest is taken once per model, from the cache while the files are as they
    /// were when it was kept).
    pub fn identity(&self) -> ModelId {
        let legacy = format!("{:016x}", self.legacy_fingerprint());
        let fingerprint = match self.weights_fingerprint() {
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

    /// The weights' part of the fingerprint: their content digest, from the cache when the
    /// files are as they were when it was taken, else taken now (and kept); the sampled
    /// fingerprint of the load where that fails (a warning says why). `None` for random
    /// weights. Taken once per model.
    fn weights_fingerprint(&self) -> Option<String> {
        let (files, stamp) = self.engine.weights_files()?;
        let sampled = self.engine.weights_fingerprint()?;
        let digest = self.weights_fingerprint.get_or_init(|| {
            match weights_digest(files, stamp, env::cache_home().map(|c| c.join("weights"))) {
                Ok(digest) => digest,
                Err(e) => {
                    tracing::warn!("{e}; the model is told by samples of its weights instead");
                    sampled.to_string()
                }
            }
        });
        Some(digest.clone())
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

/// A content digest kept in the cache, with the stamps of the files it was taken of.
#[derive(Serialize, Deserialize)]
struct KeptDigest {
    stamp: Vec<FileStamp>,
    digest: String,
}

/// The content digest of `files`, which were as `stamp` says when the model was loaded: kept
/// in `cache` (a file per checkpoint) and taken again when the stamps differ. A digest is
/// only given for the files as loaded: if they change while it is taken, that is an error.
fn weights_digest(
    files: &WeightsFiles,
    stamp: &[FileStamp],
    cache: Option<PathBuf>,
) -> Result<String, ClipError> {
    let key = {
        let mut h = blake3::Hasher::new();
        for p in files.paths() {
            h.update(p.as_os_str().as_encoded_bytes());
            h.update(&[0]);
        }
        h.finalize().to_hex()[..32].to_string()
    };
    let kept_at = cache.map(|c| c.join(format!("{key}.json")));
    if let Some(kept) = kept_at
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<KeptDigest>(&b).ok())
    {
        if kept.stamp == stamp {
            return Ok(kept.digest);
        }
    }
    let start = std::time::Instant::now();
    let digest = files.content_digest()?;
    if files.stamp()? != stamp {
        return Err(clip_model::ModelError::Weights {
            path: files.paths()[0].display().to_string(),
            detail: "changed on disk since the model was loaded".into(),
        }
        .into());
    }
    tracing::info!(
        "took the digest of {} in {:.2} s",
        files.paths()[0].display(),
        start.elapsed().as_secs_f64()
    );
    if let Some(path) = kept_at {
        let kept = KeptDigest {
            stamp: stamp.to_vec(),
            digest: digest.clone(),
        };
        // Only a cache: a digest that cannot be kept is taken again next time.
        let bytes = serde_json::to_vec(&kept).unwrap_or_default();
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| write_atomically(&path, |f| f.write_all(&bytes)));
        if let Err(e) = written {
            tracing::info!("cannot keep the weights' digest in {}: {e}", path.display());
        }
    }
    Ok(digest)
}

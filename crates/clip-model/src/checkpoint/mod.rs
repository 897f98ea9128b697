//! What a checkpoint directory holds and how its tensors are read: the config, the weights
//! files, and the key map that presents a foreign naming scheme under the names the ports use.
//!
//! Both backends read weights under Hugging Face `CLIPModel` keys. A checkpoint that stores
//! the same tensors under other names (open_clip, OpenAI's archives) is mapped onto those keys
//! here, at load time, so a new layout costs a key map and neither backend changes.

mod fingerprint;
mod keymap;
#[cfg(test)]
mod renamed;

pub use fingerprint::FileStamp;
use keymap::{mapped, KeyMap};

/// Every layout other than transformers' own, in the order they are tried; a new layout is one
/// entry here (and its module above).
const FOREIGN_LAYOUTS: &[&dyn KeyMap] = &[
    #[cfg(test)]
    &renamed::Renamed,
];

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::ModelConfig;
use crate::error::ModelError;

/// The weights files found in a checkpoint directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsFiles {
    /// One or more safetensors files (several when sharded).
    Safetensors(Vec<PathBuf>),
    /// A PyTorch pickle (`pytorch_model.bin`).
    Pth(PathBuf),
}

/// The weights file names a checkpoint directory may hold, in order of preference.
pub const WEIGHTS_FILE_NAMES: [&str; 3] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
];

impl WeightsFiles {
    /// Every file the weights consist of.
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            WeightsFiles::Safetensors(files) => files,
            WeightsFiles::Pth(path) => std::slice::from_ref(path),
        }
    }

    /// The files, as quoted in errors.
    pub(crate) fn shown(&self) -> String {
        self.paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The tensors of the files, read under the names the ports use (through the key map the
    /// checkpoint's keys call for), converted to f32 on `device`.
    pub(crate) fn open(&self, device: &Device) -> Result<VarBuilder<'static>, ModelError> {
        let vb = match self {
            // SAFETY: the files are mapped read-only; like every mmap-based loader we rely on
            // them not being truncated or rewritten while the model is loaded.
            WeightsFiles::Safetensors(files) => unsafe {
                VarBuilder::from_mmaped_safetensors(files, DType::F32, device)
            },
            WeightsFiles::Pth(path) => VarBuilder::from_pth(path, DType::F32, device),
        };
        let vb = vb.map_err(|e| ModelError::Weights {
            path: self.shown(),
            detail: e.to_string(),
        })?;
        Ok(mapped(vb, FOREIGN_LAYOUTS))
    }
}

/// The shard files a `model.safetensors.index.json` names, sorted and without repeats.
pub fn shard_names(index: &Path) -> Result<Vec<String>, ModelError> {
    let invalid = |detail: String| ModelError::Weights {
        path: index.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(index).map_err(|e| invalid(e.to_string()))?;
    let parsed: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let mut shards: Vec<String> = parsed["weight_map"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    shards.sort_unstable();
    shards.dedup();
    if shards.is_empty() {
        return Err(invalid("no weight_map entries".into()));
    }
    Ok(shards)
}

/// Finds the weights in `dir`, preferring safetensors. The files of a sharded checkpoint are
/// those its index names; they are not checked to exist.
pub fn find_weights(dir: &Path) -> Result<WeightsFiles, ModelError> {
    let [single, index, pth] = WEIGHTS_FILE_NAMES.map(|f| dir.join(f));
    if single.is_file() {
        return Ok(WeightsFiles::Safetensors(vec![single]));
    }
    if index.is_file() {
        let shards = shard_names(&index)?;
        return Ok(WeightsFiles::Safetensors(
            shards.iter().map(|f| dir.join(f)).collect(),
        ));
    }
    if pth.is_file() {
        return Ok(WeightsFiles::Pth(pth));
    }
    Err(ModelError::MissingFile {
        dir: dir.display().to_string(),
        what: "weights",
        tried: WEIGHTS_FILE_NAMES.join(", "),
    })
}

/// Reads and validates `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<ModelConfig, ModelError> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            dir: dir.display().to_string(),
            what: "model config",
            tried: "config.json".into(),
        });
    }
    let shown = path.display().to_string();
    let json = std::fs::read_to_string(&path).map_err(|e| ModelError::Config {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    ModelConfig::from_json(&json, &shown)
}

//! Model configuration, read from a checkpoint's `config.json`.
//!
//! `model_type` names the family; each family has its own config type (only CLIP for now), and
//! [`ModelConfig`] is the one place that tells them apart, so that a checkpoint of a family we
//! cannot build is refused by name instead of being misread as CLIP. The towers of every
//! family share [`EncoderConfig`]: transformers names the encoder numbers alike everywhere.

mod clip;
mod encoder;

pub use clip::{ClipConfig, TextConfig, TextDefaults, VisionConfig, VisionDefaults};
pub use encoder::{Activation, EncoderConfig, EncoderDefaults};

use serde::Deserialize;

use crate::error::ModelError;

/// A model family, by the `model_type` of its `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// transformers' `CLIPModel` (`"clip"`); also what a config without `model_type` is.
    Clip,
}

impl Family {
    /// Every family this build can load.
    pub const ALL: [Family; 1] = [Family::Clip];

    /// The `model_type` value of the family.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Clip => "clip",
        }
    }

    /// The family of a `model_type` value, if it is one this build can load.
    pub fn from_model_type(model_type: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.model_type() == model_type)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

/// A checkpoint's configuration, by family.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// A CLIP model.
    Clip(ClipConfig),
}

impl ModelConfig {
    /// Parses and validates a `config.json`; `source_name` is quoted in errors. The family is
    /// `model_type`'s, CLIP when it is absent.
    pub fn from_json(json: &str, source_name: &str) -> Result<ModelConfig, ModelError> {
        let invalid = |e: serde_json::Error| ModelError::Config {
            path: source_name.to_string(),
            detail: e.to_string(),
        };
        #[derive(Deserialize)]
        struct Tag {
            #[serde(default)]
            model_type: Option<String>,
        }
        let tag: Tag = serde_json::from_str(json).map_err(invalid)?;
        let family = match tag.model_type {
            None => Family::Clip,
            Some(model_type) => Family::from_model_type(&model_type).ok_or_else(|| {
                ModelError::UnsupportedFamily {
                    path: source_name.to_string(),
                    model_type,
                    known: Family::ALL.map(Family::model_type).join(", "),
                }
            })?,
        };
        let config = match family {
            Family::Clip => ModelConfig::Clip(serde_json::from_str(json).map_err(invalid)?),
        };
        config.validate(source_name)?;
        Ok(config)
    }

    /// The family.
    pub fn family(&self) -> Family {
        match self {
            ModelConfig::Clip(_) => Family::Clip,
        }
    }

    /// Checks that the numbers describe a buildable model.
    pub fn validate(&self, source_name: &str) -> Result<(), ModelError> {
        match self {
            ModelConfig::Clip(c) => c.validate(source_name),
        }
    }
}

impl From<ClipConfig> for ModelConfig {
    fn from(config: ClipConfig) -> Self {
        ModelConfig::Clip(config)
    }
}

impl From<&ClipConfig> for ModelConfig {
    fn from(config: &ClipConfig) -> Self {
        ModelConfig::Clip(config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_type_picks_the_family() {
        for json in ["{}", r#"{"model_type": "clip"}"#] {
            let c = ModelConfig::from_json(json, "c.json").unwrap();
            assert_eq!(c.family(), Family::Clip);
        }
        let e = ModelConfig::from_json(r#"{"model_type": "bert"}"#, "m/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m/config.json") && e.contains("\"bert\"") && e.contains("clip"),
            "{e}"
        );
    }
}

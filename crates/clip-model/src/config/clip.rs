//! CLIP's configuration, read from a Hugging Face `config.json` (`CLIPConfig`).
//!
//! Every architectural number comes from the file; the per-field defaults are those of
//! transformers' `CLIPTextConfig` / `CLIPVisionConfig` / `CLIPConfig`, used only when a field
//! is absent, as transformers does.

use serde::Deserialize;

use super::encoder::{check_bound, EncoderConfig, EncoderDefaults};
use super::{Activation, ModelConfig};
use crate::error::ModelError;

/// The text tower's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TextConfig {
    /// The encoder's sizes (`hidden_size`, `num_hidden_layers`, ...).
    #[serde(flatten)]
    pub encoder: EncoderConfig<TextDefaults>,
    /// Token vocabulary size (49408 for CLIP's BPE).
    #[serde(default = "TextDefaults::vocab_size")]
    pub vocab_size: usize,
    /// Context length in tokens (77).
    #[serde(default = "TextDefaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
}

/// The vision tower's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VisionConfig {
    /// The encoder's sizes (`hidden_size`, `num_hidden_layers`, ...).
    #[serde(flatten)]
    pub encoder: EncoderConfig<VisionDefaults>,
    /// Input channels (3).
    #[serde(default = "VisionDefaults::num_channels")]
    pub num_channels: usize,
    /// Input side length in pixels.
    #[serde(default = "VisionDefaults::image_size")]
    pub image_size: usize,
    /// Patch side length in pixels.
    #[serde(default = "VisionDefaults::patch_size")]
    pub patch_size: usize,
}

/// A whole CLIP model's configuration (`config.json` of a `CLIPModel`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipConfig {
    /// Text tower.
    #[serde(default)]
    pub text_config: TextConfig,
    /// Vision tower.
    #[serde(default)]
    pub vision_config: VisionConfig,
    /// Size of the shared embedding space.
    #[serde(default = "ClipConfig::default_projection_dim")]
    pub projection_dim: usize,
}

/// transformers' `CLIPTextConfig` defaults: ViT-B/32's text tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDefaults;

impl EncoderDefaults for TextDefaults {
    const HIDDEN_SIZE: usize = 512;
    const INTERMEDIATE_SIZE: usize = 2048;
    const NUM_HIDDEN_LAYERS: usize = 12;
    const NUM_ATTENTION_HEADS: usize = 8;
    const HIDDEN_ACT: &'static str = "quick_gelu";
    const LAYER_NORM_EPS: f64 = 1e-5;
}

impl TextDefaults {
    /// CLIP's BPE vocabulary.
    fn vocab_size() -> usize {
        49408
    }
    /// CLIP's context length.
    fn max_position_embeddings() -> usize {
        77
    }
}

/// transformers' `CLIPVisionConfig` defaults: ViT-B/32's vision tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisionDefaults;

impl EncoderDefaults for VisionDefaults {
    const HIDDEN_SIZE: usize = 768;
    const INTERMEDIATE_SIZE: usize = 3072;
    const NUM_HIDDEN_LAYERS: usize = 12;
    const NUM_ATTENTION_HEADS: usize = 12;
    const HIDDEN_ACT: &'static str = "quick_gelu";
    const LAYER_NORM_EPS: f64 = 1e-5;
}

impl VisionDefaults {
    /// RGB.
    fn num_channels() -> usize {
        3
    }
    fn image_size() -> usize {
        224
    }
    fn patch_size() -> usize {
        32
    }
}

impl Default for TextConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults deserialize")
    }
}

impl Default for VisionConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults deserialize")
    }
}

impl ClipConfig {
    /// transformers' `CLIPConfig` default.
    fn default_projection_dim() -> usize {
        512
    }

    /// Parses and validates a `config.json`; `source_name` is quoted in errors. A config of
    /// another family (`model_type`) is an error.
    pub fn from_json(json: &str, source_name: &str) -> Result<ClipConfig, ModelError> {
        match ModelConfig::from_json(json, source_name)? {
            ModelConfig::Clip(config) => Ok(config),
        }
    }

    /// Checks that the numbers describe a buildable model.
    pub fn validate(&self, source_name: &str) -> Result<(), ModelError> {
        self.check().map_err(|detail| ModelError::Config {
            path: source_name.to_string(),
            detail,
        })
    }

    fn check(&self) -> Result<(), String> {
        let t = &self.text_config;
        let v = &self.vision_config;
        t.encoder.check("text_config")?;
        v.encoder.check("vision_config")?;
        // Bounds far above any real CLIP, so that sizes computed from them cannot overflow.
        for (name, value, max) in [
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
                1 << 16,
            ),
            ("text_config.vocab_size", t.vocab_size, 1 << 24),
            ("vision_config.patch_size", v.patch_size, 1 << 14),
            ("vision_config.image_size", v.image_size, 1 << 14),
            ("projection_dim", self.projection_dim, 1 << 16),
        ] {
            check_bound(name, value, max)?;
        }
        if v.num_channels != 3 {
            return Err(format!(
                "vision_config.num_channels = {} is not supported (images are RGB: 3)",
                v.num_channels
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "vision_config.image_size = {} is not a multiple of patch_size = {}",
                v.image_size, v.patch_size
            ));
        }
        Ok(())
    }

    /// The text tower's activation.
    pub fn text_activation(&self) -> Activation {
        self.text_config.encoder.activation()
    }

    /// The vision tower's activation.
    pub fn vision_activation(&self) -> Activation {
        self.vision_config.encoder.activation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_vit_b_32() {
        let c = ClipConfig::from_json("{}", "x").unwrap();
        assert_eq!(c.vision_config.patch_size, 32);
        assert_eq!(c.vision_config.encoder.hidden_size, 768);
        assert_eq!(c.text_config.encoder.hidden_size, 512);
        assert_eq!(c.projection_dim, 512);
        assert_eq!(c.text_activation(), Activation::QuickGelu);
    }

    #[test]
    fn errors_name_file_and_value() {
        let e = ClipConfig::from_json(
            r#"{"vision_config": {"hidden_act": "swish"}}"#,
            "m/config.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("m/config.json") && e.contains("\"swish\""),
            "{e}"
        );
        let e = ClipConfig::from_json(
            r#"{"text_config": {"hidden_size": 10, "num_attention_heads": 3}}"#,
            "c.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hidden_size = 10"), "{e}");
        let e = ClipConfig::from_json(r#"{"model_type": "siglip"}"#, "c.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("siglip"), "{e}");
        let e = ClipConfig::from_json("{", "c.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.json"), "{e}");
        for (json, needle) in [
            (
                r#"{"vision_config": {"image_size": 8589934592, "patch_size": 1}}"#,
                "image_size = 8589934592",
            ),
            (r#"{"vision_config": {"patch_size": 0}}"#, "patch_size = 0"),
            (
                r#"{"text_config": {"num_attention_heads": 0}}"#,
                "num_attention_heads = 0",
            ),
            (
                r#"{"vision_config": {"num_channels": 1}}"#,
                "num_channels = 1",
            ),
            (
                r#"{"text_config": {"layer_norm_eps": -1e-5}}"#,
                "layer_norm_eps = -0.00001",
            ),
            (
                r#"{"vision_config": {"image_size": 100}}"#,
                "not a multiple of patch_size",
            ),
        ] {
            let e = ClipConfig::from_json(json, "c.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}

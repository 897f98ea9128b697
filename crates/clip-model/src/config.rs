//! Model configuration, read from a Hugging Face `config.json`.
//!
//! Every architectural number comes from the file; the per-field defaults are those of
//! transformers' `CLIPTextConfig` / `CLIPVisionConfig` / `CLIPConfig`, used only when a field
//! is absent, as transformers does.

use serde::Deserialize;

use crate::error::ModelError;

/// The activation between the two MLP layers (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `quick_gelu`: `x * sigmoid(1.702 x)`, OpenAI's original models.
    QuickGelu,
    /// `gelu`: exact GELU with `erf`, LAION / open_clip models.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation of GELU.
    GeluTanh,
    /// `relu`.
    Relu,
}

impl Activation {
    /// Parses transformers' activation name.
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name {
            "quick_gelu" => Activation::QuickGelu,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            _ => return None,
        })
    }
}

/// The text tower's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TextConfig {
    /// Token vocabulary size (49408 for CLIP's BPE).
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[serde(default = "d_text_hidden")]
    pub hidden_size: usize,
    /// Width of the MLP.
    #[serde(default = "d_text_mlp")]
    pub intermediate_size: usize,
    /// Number of transformer layers.
    #[serde(default = "d_twelve")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(default = "d_eight")]
    pub num_attention_heads: usize,
    /// Context length in tokens (77).
    #[serde(default = "d_context")]
    pub max_position_embeddings: usize,
    /// Activation name, e.g. `quick_gelu`.
    #[serde(default = "d_act")]
    pub hidden_act: String,
    /// Layer norm epsilon.
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
}

/// The vision tower's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VisionConfig {
    /// Width of the residual stream.
    #[serde(default = "d_vision_hidden")]
    pub hidden_size: usize,
    /// Width of the MLP.
    #[serde(default = "d_vision_mlp")]
    pub intermediate_size: usize,
    /// Number of transformer layers.
    #[serde(default = "d_twelve")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(default = "d_twelve")]
    pub num_attention_heads: usize,
    /// Input channels (3).
    #[serde(default = "d_three")]
    pub num_channels: usize,
    /// Input side length in pixels.
    #[serde(default = "d_image")]
    pub image_size: usize,
    /// Patch side length in pixels.
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    /// Activation name.
    #[serde(default = "d_act")]
    pub hidden_act: String,
    /// Layer norm epsilon.
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
}

/// A whole CLIP model's configuration (`config.json` of a `CLIPModel`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipConfig {
    /// Text tower.
    #[serde(default = "d_text")]
    pub text_config: TextConfig,
    /// Vision tower.
    #[serde(default = "d_vision")]
    pub vision_config: VisionConfig,
    /// Size of the shared embedding space.
    #[serde(default = "d_projection")]
    pub projection_dim: usize,
    /// `model_type`, when present; must be `clip`.
    #[serde(default)]
    pub model_type: Option<String>,
}

fn d_vocab() -> usize {
    49408
}
fn d_text_hidden() -> usize {
    512
}
fn d_text_mlp() -> usize {
    2048
}
fn d_vision_hidden() -> usize {
    768
}
fn d_vision_mlp() -> usize {
    3072
}
fn d_twelve() -> usize {
    12
}
fn d_eight() -> usize {
    8
}
fn d_three() -> usize {
    3
}
fn d_context() -> usize {
    77
}
fn d_image() -> usize {
    224
}
fn d_patch() -> usize {
    32
}
fn d_projection() -> usize {
    512
}
fn d_act() -> String {
    "quick_gelu".into()
}
fn d_eps() -> f64 {
    1e-5
}
fn d_text() -> TextConfig {
    serde_json::from_str("{}").expect("defaults deserialize")
}
fn d_vision() -> VisionConfig {
    serde_json::from_str("{}").expect("defaults deserialize")
}

impl ClipConfig {
    /// Parses and validates a `config.json`; `source_name` is quoted in errors.
    pub fn from_json(json: &str, source_name: &str) -> Result<ClipConfig, ModelError> {
        let config: ClipConfig = serde_json::from_str(json).map_err(|e| ModelError::Config {
            path: source_name.to_string(),
            detail: e.to_string(),
        })?;
        config.validate(source_name)?;
        Ok(config)
    }

    /// Checks that the numbers describe a buildable model.
    pub fn validate(&self, source_name: &str) -> Result<(), ModelError> {
        let bad = |detail: String| ModelError::Config {
            path: source_name.to_string(),
            detail,
        };
        if let Some(t) = &self.model_type {
            if t != "clip" {
                return Err(bad(format!(
                    "model_type is {t:?}; only \"clip\" checkpoints are supported"
                )));
            }
        }
        let t = &self.text_config;
        let v = &self.vision_config;
        for (what, act) in [
            ("text_config.hidden_act", &t.hidden_act),
            ("vision_config.hidden_act", &v.hidden_act),
        ] {
            if Activation::from_name(act).is_none() {
                return Err(bad(format!(
                    "{what} = {act:?} is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)"
                )));
            }
        }
        // Bounds far above any real CLIP, so that sizes computed from them cannot overflow.
        let bounded = [
            ("text_config.hidden_size", t.hidden_size, 1 << 16),
            (
                "text_config.intermediate_size",
                t.intermediate_size,
                1 << 18,
            ),
            (
                "text_config.num_hidden_layers",
                t.num_hidden_layers,
                1 << 10,
            ),
            (
                "text_config.num_attention_heads",
                t.num_attention_heads,
                1 << 12,
            ),
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
                1 << 16,
            ),
            ("text_config.vocab_size", t.vocab_size, 1 << 24),
            ("vision_config.hidden_size", v.hidden_size, 1 << 16),
            (
                "vision_config.intermediate_size",
                v.intermediate_size,
                1 << 18,
            ),
            (
                "vision_config.num_hidden_layers",
                v.num_hidden_layers,
                1 << 10,
            ),
            (
                "vision_config.num_attention_heads",
                v.num_attention_heads,
                1 << 12,
            ),
            ("vision_config.patch_size", v.patch_size, 1 << 14),
            ("vision_config.image_size", v.image_size, 1 << 14),
            ("projection_dim", self.projection_dim, 1 << 16),
        ];
        for (name, value, max) in bounded {
            if value == 0 || value > max {
                return Err(bad(format!("{name} = {value} is outside 1..={max}")));
            }
        }
        if v.num_channels != 3 {
            return Err(bad(format!(
                "vision_config.num_channels = {} is not supported (images are RGB: 3)",
                v.num_channels
            )));
        }
        for (name, eps) in [
            ("text_config.layer_norm_eps", t.layer_norm_eps),
            ("vision_config.layer_norm_eps", v.layer_norm_eps),
        ] {
            if !(eps.is_finite() && eps > 0.0) {
                return Err(bad(format!("{name} = {eps} must be a positive number")));
            }
        }
        if !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(bad(format!(
                "text_config.hidden_size = {} is not divisible by num_attention_heads = {}",
                t.hidden_size, t.num_attention_heads
            )));
        }
        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return Err(bad(format!(
                "vision_config.hidden_size = {} is not divisible by num_attention_heads = {}",
                v.hidden_size, v.num_attention_heads
            )));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return Err(bad(format!(
                "vision_config.image_size = {} is not a multiple of patch_size = {}",
                v.image_size, v.patch_size
            )));
        }
        Ok(())
    }

    /// The text tower's activation.
    pub fn text_activation(&self) -> Activation {
        Activation::from_name(&self.text_config.hidden_act).unwrap_or(Activation::QuickGelu)
    }

    /// The vision tower's activation.
    pub fn vision_activation(&self) -> Activation {
        Activation::from_name(&self.vision_config.hidden_act).unwrap_or(Activation::QuickGelu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_vit_b_32() {
        let c = ClipConfig::from_json("{}", "x").unwrap();
        assert_eq!(c.vision_config.patch_size, 32);
        assert_eq!(c.vision_config.hidden_size, 768);
        assert_eq!(c.text_config.hidden_size, 512);
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

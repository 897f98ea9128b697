//! The architectures of OpenAI's released CLIP models, by the names `clip.load` uses, for
//! building models with random weights (benchmarks, tests). Loading a checkpoint never uses
//! these: its own `config.json` says what it is.

use crate::config::ClipConfig;
use crate::error::ModelError;

/// Names accepted by [`architecture`].
pub const ARCHITECTURES: [&str; 4] = ["ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px"];

/// The configuration of a named architecture (`ViT-B/32`, `ViT-B/16`, `ViT-L/14`,
/// `ViT-L/14@336px`), as in the `config.json` of the matching `openai/clip-vit-*` checkpoint.
pub fn architecture(name: &str) -> Result<ClipConfig, ModelError> {
    ClipConfig::from_json(&architecture_json(name)?.to_string(), name)
}

/// The `config.json` of a named architecture ([`architecture`]), as a checkpoint of it holds.
pub fn architecture_json(name: &str) -> Result<serde_json::Value, ModelError> {
    // (text hidden, text heads, vision hidden, vision layers, vision heads, patch, image)
    let (th, theads, vh, vl, vheads, patch, image) = match name {
        "ViT-B/32" => (512, 8, 768, 12, 12, 32, 224),
        "ViT-B/16" => (512, 8, 768, 12, 12, 16, 224),
        "ViT-L/14" => (768, 12, 1024, 24, 16, 14, 224),
        "ViT-L/14@336px" => (768, 12, 1024, 24, 16, 14, 336),
        other => {
            return Err(ModelError::Config {
                path: "architecture name".into(),
                detail: format!(
                    "unknown architecture {other:?} (known: {})",
                    ARCHITECTURES.join(", ")
                ),
            })
        }
    };
    Ok(serde_json::json!({
        "model_type": "clip",
        "projection_dim": th,
        "text_config": {
            "hidden_size": th, "intermediate_size": 4 * th, "num_attention_heads": theads,
            "num_hidden_layers": 12, "max_position_embeddings": 77, "vocab_size": 49408,
            "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5
        },
        "vision_config": {
            "hidden_size": vh, "intermediate_size": 4 * vh, "num_attention_heads": vheads,
            "num_hidden_layers": vl, "patch_size": patch, "image_size": image,
            "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_their_sizes() {
        let c = architecture("ViT-L/14@336px").unwrap();
        assert_eq!(c.vision_config.image_size, 336);
        assert_eq!(c.vision_config.encoder.num_hidden_layers, 24);
        assert_eq!(c.projection_dim, 768);
        let e = architecture("ViT-X").unwrap_err().to_string();
        assert!(e.contains("\"ViT-X\"") && e.contains("ViT-B/32"), "{e}");
    }
}

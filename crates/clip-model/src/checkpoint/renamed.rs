//! A throwaway layout that proves the key-map seam: every key under `renamed.`, and
//! `pre_layrnorm` spelled `pre_layernorm`. It exists only in tests; a family that only renames
//! keys costs what this file costs, plus its line in `FOREIGN_LAYOUTS` (`checkpoint/mod.rs`).

use candle_nn::VarBuilder;

use super::keymap::KeyMap;

#[derive(Debug)]
pub(crate) struct Renamed;

impl KeyMap for Renamed {
    fn matches(&self, checkpoint: &VarBuilder) -> bool {
        checkpoint.contains_tensor("renamed.logit_scale")
    }

    fn key(&self, name: &str) -> String {
        format!("renamed.{}", name.replace("pre_layrnorm", "pre_layernorm"))
    }
}

#[test]
fn a_layout_that_only_renames_keys_loads_through_its_key_map() {
    use crate::{Backend, DeviceKind, Engine, EngineOptions};
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/tiny-openai");
    let tmp = clip_test_support::temp_dir();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(fixture.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .tensors();
    let renamed = tensors.into_iter().map(|(k, v)| (Renamed.key(&k), v));
    let written = dir.join("model.safetensors");
    safetensors::serialize_to_file(renamed, None, &written).unwrap();
    let written = std::fs::read(&written).unwrap();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&written)
        .unwrap()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    assert!(names.iter().all(|k| k.starts_with("renamed.")), "{names:?}");
    assert!(names.contains(&"renamed.vision_model.pre_layernorm.weight".to_string()));

    let pixels: Vec<f32> = (0..2 * 3 * 224 * 224usize)
        .map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let ids: Vec<u32> = (0..3 * 77usize)
        .map(|i| ((i * 31) % 49408) as u32)
        .collect();
    let eot = [76, 5, 0];
    for backend in [Backend::Fast, Backend::Candle] {
        let options = EngineOptions {
            backend,
            ..EngineOptions::new(DeviceKind::Cpu)
        };
        let ours = Engine::load_with(&dir, &options).unwrap();
        let original = Engine::load_with(&fixture, &options).unwrap();
        let image = |e: &Engine| e.image_features(&pixels, 2).unwrap();
        let text = |e: &Engine| e.text_features(&ids, 3, &eot).unwrap();
        assert_eq!(image(&ours), image(&original), "{backend:?}");
        assert_eq!(text(&ours), text(&original), "{backend:?}");
        assert_eq!(ours.logit_scale(), original.logit_scale());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

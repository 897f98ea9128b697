//! Loading: each tower is read from the checkpoint on first use, and only its own tensors;
//! the weights' fingerprint follows their content.

use std::path::Path;

use clip_model::{DeviceKind, Engine, LoadedTowers};
use clip_test_support::{fine_tune_in_place, temp_dir, Goldens};
use safetensors::SafeTensors;

use crate::{ids, model_dir};

/// `tiny-openai`'s checkpoint in `to`, with the tensors `keep` accepts and each value changed
/// by `change` (`f32` tensors only).
fn rewrite(to: &Path, keep: impl Fn(&str) -> bool, change: impl Fn(&str, f32) -> f32) {
    let from = model_dir("tiny-openai");
    std::fs::copy(from.join("config.json"), to.join("config.json")).unwrap();
    let bytes = std::fs::read(from.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        if !keep(&name) {
            continue;
        }
        let data = if view.dtype() == safetensors::Dtype::F32 {
            view.data()
                .chunks_exact(4)
                .flat_map(|c| {
                    change(&name, f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()
                })
                .collect()
        } else {
            view.data().to_vec()
        };
        tensors.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            let view = safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap();
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &to.join("model.safetensors")).unwrap();
}

#[test]
fn a_tower_is_read_on_first_use_and_only_its_own_tensors() {
    let g = Goldens::load("models/tiny-openai/goldens.safetensors");
    let (ids, rows, eot) = ids(&g);
    let full = Engine::load(&model_dir("tiny-openai"), DeviceKind::Cpu).unwrap();
    assert_eq!(full.loaded_towers(), LoadedTowers::default());
    let expected = full.text_features(&ids, rows, &eot).unwrap();
    assert_eq!(
        full.loaded_towers(),
        LoadedTowers {
            image: false,
            text: true
        }
    );
    // A checkpoint without the vision tower's tensors serves text as well.
    let tmp = temp_dir();
    let vision =
        |name: &str| name.starts_with("vision_model.") || name == "visual_projection.weight";
    rewrite(tmp.path(), |n| !vision(n), |_, x| x);
    let text_only = Engine::load(tmp.path(), DeviceKind::Cpu).unwrap();
    assert_eq!(text_only.text_features(&ids, rows, &eot).unwrap(), expected);
    let v = &full.config().vision_config;
    let size = v.num_channels * v.image_size * v.image_size;
    let e = text_only
        .image_features(&vec![0.0; size], 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("vision_model") && e.contains("model.safetensors"),
        "{e}"
    );
    assert!(!text_only.loaded_towers().image);
}

#[test]
fn the_fingerprint_follows_the_weights_content() {
    let fingerprint = |dir: &Path| {
        Engine::load(dir, DeviceKind::Cpu)
            .unwrap()
            .weights_fingerprint()
            .unwrap()
            .to_string()
    };
    let original = fingerprint(&model_dir("tiny-openai"));
    let tmp = temp_dir();
    rewrite(tmp.path(), |_| true, |_, x| x);
    assert_eq!(fingerprint(tmp.path()), original, "a copy keeps it");
    // Fine-tuned: same names, shapes and file size, other values.
    let before = std::fs::metadata(tmp.path().join("model.safetensors"))
        .unwrap()
        .len();
    rewrite(
        tmp.path(),
        |_| true,
        |name, x| {
            if name.contains("layer_norm") {
                x * 1.01
            } else {
                x
            }
        },
    );
    let after = std::fs::metadata(tmp.path().join("model.safetensors"))
        .unwrap()
        .len();
    assert_eq!(before, after);
    assert_ne!(fingerprint(tmp.path()), original);
}

#[test]
fn a_tower_is_not_read_from_weights_written_since_the_load() {
    let g = Goldens::load("models/tiny-openai/goldens.safetensors");
    let (ids, rows, eot) = ids(&g);
    let expected = Engine::load(&model_dir("tiny-openai"), DeviceKind::Cpu)
        .unwrap()
        .text_features(&ids, rows, &eot)
        .unwrap();
    let tmp = temp_dir();
    rewrite(tmp.path(), |_| true, |_, x| x);
    // Replaced by another file (saved beside it and renamed over it): the mapping still holds
    // the weights loaded, which are what the engine gives.
    let engine = Engine::load(tmp.path(), DeviceKind::Cpu).unwrap();
    let other = temp_dir();
    rewrite(other.path(), |_| true, |_, x| x * 1.5);
    std::fs::rename(
        other.path().join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    assert_eq!(engine.text_features(&ids, rows, &eot).unwrap(), expected);
    // Written in place (a fine-tune saved into the folder while a scan walks its photos): the
    // tower read now would not be the weights fingerprinted at the load, so it is refused.
    let engine = Engine::load(tmp.path(), DeviceKind::Cpu).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fine_tune_in_place(&tmp.path().join("model.safetensors"), 0.01);
    let e = engine
        .text_features(&ids, rows, &eot)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("changed on disk since the model was loaded") && e.contains("model.safetensors"),
        "{e}"
    );
    assert!(!engine.loaded_towers().text);
}

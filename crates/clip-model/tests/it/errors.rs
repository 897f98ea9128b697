//! Bad inputs, options and weight files are typed errors that say what is wrong.

use clip_model::{Backend, DeviceKind, Engine, EngineOptions, LoadedTowers, ModelError, Precision};
use clip_test_support::temp_dir;

use crate::model_dir;

#[test]
fn bad_inputs_are_typed_errors() {
    let engine = Engine::load(&model_dir("tiny-pth"), DeviceKind::Cpu).unwrap();
    let e = engine.image_features(&[0.0; 10], 1).unwrap_err();
    assert!(matches!(e, ModelError::Input(_)), "{e}");
    let e = engine.text_features(&[1, 2000, 999], 1, &[2]).unwrap_err();
    assert!(e.to_string().contains("2000"), "{e}");
    let e = engine.text_features(&[998, 999], 1, &[5]).unwrap_err();
    assert!(e.to_string().contains("position 5"), "{e}");
    assert!(engine.image_features(&[], 0).unwrap().is_empty());
    // Refused before any tower was read.
    assert_eq!(engine.loaded_towers(), LoadedTowers::default());
    assert!(format!("{engine:?}").contains("(not loaded)"));
    // Debug output summarizes; it does not dump the weights.
    engine.load_towers().unwrap();
    let shown = format!("{engine:?}");
    assert!(shown.len() < 4000 && shown.contains("FastClip"), "{shown}");
}

#[test]
fn bf16_needs_the_fast_path() {
    let options = EngineOptions {
        precision: Precision::Bf16,
        backend: Backend::Candle,
        ..EngineOptions::new(DeviceKind::Cpu)
    };
    let e = Engine::load_with(&model_dir("tiny-pth"), &options)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bf16") && e.contains("fast path"), "{e}");
}

#[test]
fn corrupt_weights_are_reported_with_the_path() {
    let tmp = temp_dir();
    let dir = tmp.path();
    std::fs::copy(
        model_dir("tiny-pth").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
    let e = Engine::load(dir, DeviceKind::Cpu).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
    // A valid file that lacks tensors names the missing one, when the tower is read.
    let laion = std::fs::read(model_dir("tiny-laion").join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), laion).unwrap();
    let engine = Engine::load(dir, DeviceKind::Cpu).unwrap();
    let e = engine.load_towers().unwrap_err().to_string();
    assert!(
        e.contains("cannot load weights") && e.contains("model.safetensors"),
        "{e}"
    );
    tmp.close().unwrap();
}

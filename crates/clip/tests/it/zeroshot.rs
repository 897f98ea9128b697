//! Zero-shot classifiers: template ensembles against the Python reference, and their cache.

use clip::{Clip, Device};
use clip_test_support::{fixture, fixture_json, max_abs_diff, temp_dir};

/// A template ensemble's class embeddings equal those open_clip's method gives with
/// transformers on the same checkpoint (`fixtures/zeroshot/ensemble.json`).
#[test]
fn template_ensembles_match_the_python_reference() {
    let golden = fixture_json("zeroshot/ensemble.json");
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let classes: Vec<String> = serde_json::from_value(golden["classes"].clone()).unwrap();
    let templates = clip::Templates::builtin(golden["templates"].as_str().unwrap()).unwrap();
    let ours = model
        .zero_shot_classifier(&classes, &templates, false)
        .unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(golden["class_embeddings"].clone()).unwrap();
    assert_eq!(ours.len(), want.len());
    for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
        let d = max_abs_diff(a, b);
        assert!(d <= 1e-5, "class {i}: max abs diff {d:e}");
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "class {i}: norm {norm}");
    }
    // Without templates, a class is its name's own (normalized) embedding.
    let plain = model
        .zero_shot_classifier(&["cat"], &clip::Templates::none(), false)
        .unwrap();
    let direct = model
        .encode_text(&model.tokenize_all(&["cat"], false).unwrap())
        .unwrap();
    assert!(max_abs_diff(&plain[0], &clip::normalized(&direct[0])) <= 1e-6);
}

/// The classifier cache returns what was computed, misses on other templates, and survives a
/// corrupt entry.
#[test]
fn classifier_cache_hits_misses_and_repairs() {
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let templates = clip::Templates::builtin("cifar10").unwrap();
    let classes = ["cat", "dog"];
    let cached = clip::ClassifierOptions {
        truncate: false,
        cache_dir: Some(cache.to_path_buf()),
    };
    let (first, hit) = model
        .zero_shot_classifier_with(&classes, &templates, &cached, &mut |_| {})
        .unwrap();
    assert!(!hit);
    let (second, hit) = model
        .zero_shot_classifier_with(&classes, &templates, &cached, &mut |_| {})
        .unwrap();
    assert!(hit);
    assert_eq!(first, second);
    let (_, hit) = model
        .zero_shot_classifier_with(&classes, &clip::Templates::none(), &cached, &mut |_| {})
        .unwrap();
    assert!(!hit, "other templates are another entry");
    let files: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        std::fs::write(f, b"CLIPZS1\ngarbage").unwrap();
    }
    let (repaired, hit) = model
        .zero_shot_classifier_with(&classes, &templates, &cached, &mut |_| {})
        .unwrap();
    assert!(!hit);
    assert_eq!(repaired, first);
    let (_, hit) = model
        .zero_shot_classifier_with(&classes, &templates, &cached, &mut |_| {})
        .unwrap();
    assert!(hit, "the repaired entry is used");
    cache_dir.close().unwrap();
}

//! Image files and texts through `Clip` against the reference's goldens, classification,
//! and what loading a checkpoint refuses.

use std::path::Path;

use clip::{Clip, ClipError, Device, NoProgress};
use clip_test_support::{assert_features, fixture, fixture_json, temp_dir, Goldens};

use crate::offline_options;

/// Image files through decoding, preprocessing and the model, against the reference pipeline
/// (Pillow + torchvision + transformers). Lossless files match to float rounding; JPEGs
/// (different decoders) to cosine >= 0.9999.
fn end_to_end(model: &str) {
    let clip = Clip::from_dir(&fixture(format!("models/{model}")), Device::Cpu).unwrap();
    let g = Goldens::model(model);
    let mut checked = 0;
    for key in g.keys().iter().filter(|k| k.starts_with("file:")) {
        let rel = &key["file:".len()..];
        let pixels = clip.load_image(&fixture(rel)).unwrap();
        let ours = clip.encode_image(&[pixels]).unwrap().remove(0);
        let reference = g.f32s(key);
        let cos = clip::cosine(&ours, &reference);
        let lossless = !(rel.ends_with(".jpg") || rel.contains("lossy"));
        assert!(cos >= 0.9999, "{model} {rel}: cosine {cos}");
        if lossless {
            assert_features(&format!("{model} {rel}"), &[&ours], &[&reference]);
        }
        checked += 1;
    }
    assert!(checked >= 20, "{model}: only {checked} files");
}

#[test]
fn image_files_embed_like_the_reference_openai_style() {
    end_to_end("tiny-openai");
}

#[test]
fn image_files_embed_like_the_reference_laion_style() {
    end_to_end("tiny-laion");
}

#[test]
fn openai_style_image_tower_matches_transformers_on_reference_pixels() {
    // The reference's own 8-bit crops, normalized (bit-exact, see clip-preprocess tests).
    let clip = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let pre = Goldens::load("preprocess/goldens.safetensors");
    let g = Goldens::model("tiny-openai");
    let meta = fixture_json("models/tiny-openai/goldens.json");
    let pixels: Vec<clip::Pixels> = meta["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let (shape, data) = pre.u8s(&format!("openai224:{}", f.as_str().unwrap()));
            let rgb = clip_rgb(shape, data);
            clip_preprocess_normalize(&rgb, clip.preprocess_config())
        })
        .collect();
    let ours = clip.encode_image(&pixels).unwrap();
    let reference = g.rows("image_embeds");
    assert_features("tiny-openai image", &ours, &reference);
    // Logits against the reference's prompts, through our tokenizer.
    let prompts: Vec<&str> = meta["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let tokens = clip.tokenize_all(&prompts, false).unwrap();
    let texts = clip.encode_text(&tokens).unwrap();
    let logits = clip.logits(&ours, &texts);
    let reference = g.rows("logits_per_image");
    for (a, b) in logits.iter().flatten().zip(reference.iter().flatten()) {
        assert!((a - b).abs() <= 1e-3, "logit {a} vs {b}");
    }
}

fn clip_rgb(shape: Vec<usize>, data: Vec<u8>) -> clip_preprocess::image::Rgb8 {
    clip_preprocess::image::Rgb8 {
        height: shape[0] as u32,
        width: shape[1] as u32,
        data,
    }
}

fn clip_preprocess_normalize(
    rgb: &clip_preprocess::image::Rgb8,
    cfg: &clip::PreprocessConfig,
) -> clip::Pixels {
    clip_preprocess::image::transform::normalize(rgb, cfg)
}

#[test]
fn classify_ranks_labels_by_probability() {
    let clip = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let labels: Vec<String> = ["cat", "dog", "car"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let tokens = clip.tokenize_all(&labels, false).unwrap();
    let text = clip.encode_text(&tokens).unwrap();
    let image = clip
        .encode_image(&[clip.load_image(&fixture("photos/chelsea.png")).unwrap()])
        .unwrap();
    let ranked = clip.classify(&image, &text).remove(0);
    let total: f32 = ranked.iter().map(|p| p.probability).sum();
    assert!((total - 1.0).abs() < 1e-5);
    assert!(ranked
        .windows(2)
        .all(|w| w[0].probability >= w[1].probability));
    let logits = clip.logits(&image, &text);
    let probs = clip::softmax(&logits[0]);
    for p in &ranked {
        assert!((probs[p.index] - p.probability).abs() < 1e-7);
        assert_eq!(logits[0][p.index], p.logit);
    }
    assert!((clip.logit_scale() - 100.0).abs() < 1e-3);
    // Equal labels tie: they keep their order, whichever rank they share.
    let tied = vec![
        text[1].clone(),
        text[0].clone(),
        text[1].clone(),
        text[0].clone(),
    ];
    let ranked = clip.classify(&image, &tied).remove(0);
    let order: Vec<usize> = ranked.iter().map(|p| p.index).collect();
    assert!(order == [0, 2, 1, 3] || order == [1, 3, 0, 2], "{order:?}");
    assert_eq!(ranked[0].probability, ranked[1].probability);
}

#[test]
fn loading_errors_are_clear() {
    let e = Clip::from_dir(Path::new("/no/such/model"), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/no/such/model") && e.contains("config.json"),
        "{e}"
    );
    let unused = temp_dir();
    let e = clip::hub::resolve(
        "./not-a-dir",
        &offline_options(unused.path()),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(e, ClipError::ModelNotFound { .. }), "{e}");
    // A preprocessing that does not produce the model's input size is refused at load.
    let tmp = temp_dir();
    let dir = tmp.path();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("models/tiny-laion").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("preprocessor_config.json"),
        r#"{"crop_size": 80, "size": 80}"#,
    )
    .unwrap();
    let e = Clip::from_dir(dir, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("80x80") && e.contains("64x64"), "{e}");
    // Without a preprocessor config, OpenAI's preprocessing at the model's size is used.
    std::fs::remove_file(dir.join("preprocessor_config.json")).unwrap();
    let clip = Clip::from_dir(dir, Device::Cpu).unwrap();
    assert_eq!(
        clip.preprocess_config(),
        &clip::PreprocessConfig::openai(64)
    );
}

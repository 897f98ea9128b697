//! Features against transformers' on each tiny checkpoint, on both paths and in bf16, and the
//! fast path against the candle port at sizes past its blocking edges.

use candle_core::Device;
use clip_model::{Backend, ClipConfig, ClipModel, DeviceKind, Engine, EngineOptions, Precision};
use clip_test_support::{assert_features, cosine, temp_dir, Goldens};

use crate::{ids, model_dir, pixels};

fn normalized(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// The bf16 path's bound: cosine ≥ 0.999 row by row.
fn assert_close(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>]) {
    assert_eq!(ours.len(), reference.len(), "{what}: row count");
    let worst = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| cosine(a, b))
        .fold(1f32, f32::min);
    eprintln!("{what}: min cosine {worst}");
    assert!(worst >= 0.999, "{what}: cosine {worst}");
}

fn logits(engine: &Engine, images: &[Vec<f32>], texts: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let scale = engine.logit_scale().exp();
    images
        .iter()
        .map(|i| {
            let i = normalized(i);
            texts
                .iter()
                .map(|t| {
                    scale
                        * normalized(t)
                            .iter()
                            .zip(&i)
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                })
                .collect()
        })
        .collect()
}

fn check_model(name: &str) {
    check_model_with(name, &EngineOptions::new(DeviceKind::Cpu));
    let reference = EngineOptions {
        backend: Backend::Candle,
        ..EngineOptions::new(DeviceKind::Cpu)
    };
    check_model_with(name, &reference);
}

fn check_model_with(name: &str, options: &EngineOptions) {
    let engine = Engine::load_with(&model_dir(name), options).unwrap();
    let name = &format!(
        "{name} ({})",
        if options.backend == Backend::Candle {
            "reference"
        } else {
            "fast"
        }
    );
    let g = Goldens::model(name.split(' ').next().unwrap());
    let (pixels, n) = pixels(&g);
    let images = engine.image_features(&pixels, n).unwrap();
    assert_features(&format!("{name} image"), &images, &g.rows("image_embeds"));
    let (ids, rows, eot) = ids(&g);
    let texts = engine.text_features(&ids, rows, &eot).unwrap();
    assert_features(&format!("{name} text"), &texts, &g.rows("text_embeds"));
    let ours = logits(&engine, &images, &texts);
    for (a, b) in ours
        .iter()
        .flatten()
        .zip(g.rows("logits_per_image").iter().flatten())
    {
        assert!((a - b).abs() <= 1e-3, "{name} logits: {a} vs {b}");
    }
}

#[test]
fn laion_style_gelu_f16_checkpoint_matches_transformers() {
    check_model("tiny-laion");
}

#[test]
fn pytorch_bin_checkpoint_matches_transformers() {
    check_model("tiny-pth");
}

#[test]
fn openai_style_quick_gelu_text_tower_matches_transformers() {
    // (Its image side is checked from real photos in the `clip` crate's tests.)
    for backend in [Backend::Fast, Backend::Candle] {
        let options = EngineOptions {
            backend,
            ..EngineOptions::new(DeviceKind::Cpu)
        };
        let engine = Engine::load_with(&model_dir("tiny-openai"), &options).unwrap();
        let g = Goldens::model("tiny-openai");
        let (ids, rows, eot) = ids(&g);
        let texts = engine.text_features(&ids, rows, &eot).unwrap();
        assert_features("tiny-openai text", &texts, &g.rows("text_embeds"));
    }
}

/// The bf16 path stays close to the reference: per-row cosine of the features.
#[test]
fn bf16_features_stay_close_to_transformers() {
    for name in ["tiny-laion", "tiny-pth", "tiny-openai"] {
        let options = EngineOptions {
            precision: Precision::Bf16,
            ..EngineOptions::new(DeviceKind::Cpu)
        };
        let engine = Engine::load_with(&model_dir(name), &options).unwrap();
        let g = Goldens::model(name);
        let (ids, rows, eot) = ids(&g);
        let mut checks = vec![(
            "text",
            engine.text_features(&ids, rows, &eot).unwrap(),
            g.rows("text_embeds"),
        )];
        if name != "tiny-openai" {
            let (pixels, n) = pixels(&g);
            checks.push((
                "image",
                engine.image_features(&pixels, n).unwrap(),
                g.rows("image_embeds"),
            ));
        }
        for (what, ours, reference) in checks {
            let mut worst = 1f32;
            let mut differs = false;
            for (a, b) in ours.iter().zip(&reference) {
                worst = worst.min(cosine(a, b));
                differs |= a.iter().zip(b).any(|(x, y)| (x - y).abs() > 1e-6);
            }
            eprintln!("{name} {what} bf16: min cosine {worst}");
            assert!(worst >= 0.999, "{name} {what} bf16: cosine {worst}");
            assert!(
                differs,
                "{name} {what}: bf16 gave f32's numbers; is it used?"
            );
        }
    }
}

/// Sizes past every blocking edge of the fast path's matrix product (K > 256, N not a
/// multiple of 32, more than 120 rows): the fast path against the candle port on the same
/// random weights.
#[test]
fn fast_path_matches_the_candle_port_at_awkward_sizes() {
    let json = r#"{"projection_dim": 40,
        "text_config": {"hidden_size": 96, "intermediate_size": 300, "num_attention_heads": 3,
                        "num_hidden_layers": 2, "vocab_size": 1000, "hidden_act": "gelu"},
        "vision_config": {"hidden_size": 80, "intermediate_size": 520, "num_attention_heads": 5,
                          "num_hidden_layers": 2, "image_size": 64, "patch_size": 16}}"#;
    let config = ClipConfig::from_json(json, "test").unwrap();
    let vars = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&vars, candle_core::DType::F32, &Device::Cpu);
    ClipModel::new(vb, &config).unwrap();
    let tmp = temp_dir();
    let dir = tmp.path();
    vars.save(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
    let fast = Engine::load(dir, DeviceKind::Cpu).unwrap();
    let reference = EngineOptions {
        backend: Backend::Candle,
        ..EngineOptions::new(DeviceKind::Cpu)
    };
    let reference = Engine::load_with(dir, &reference).unwrap();
    let bf16 = EngineOptions {
        precision: Precision::Bf16,
        ..EngineOptions::new(DeviceKind::Cpu)
    };
    let bf16 = Engine::load_with(dir, &bf16).unwrap();
    tmp.close().unwrap();

    let batch = 9; // 9 * 17 = 153 rows of vision tokens
    let pixels: Vec<f32> = (0..batch * 3 * 64 * 64)
        .map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let want = reference.image_features(&pixels, batch).unwrap();
    assert_features(
        "awkward image",
        &fast.image_features(&pixels, batch).unwrap(),
        &want,
    );
    assert_close(
        "awkward image bf16",
        &bf16.image_features(&pixels, batch).unwrap(),
        &want,
    );
    let rows = 5;
    let ids: Vec<u32> = (0..rows * 77).map(|i| ((i * 31) % 1000) as u32).collect();
    let eot = [76, 3, 40, 0, 75];
    let want = reference.text_features(&ids, rows, &eot).unwrap();
    assert_features(
        "awkward text",
        &fast.text_features(&ids, rows, &eot).unwrap(),
        &want,
    );
    assert_close(
        "awkward text bf16",
        &bf16.text_features(&ids, rows, &eot).unwrap(),
        &want,
    );
}

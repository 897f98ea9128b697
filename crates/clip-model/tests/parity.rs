//! Model-only parity with transformers' `CLIPModel` on the tiny checkpoints in `fixtures/models`
//! (made by `fixtures/generate.py`): the same pixels and token ids in, the same features out.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use clip_model::{
    Backend, ClipConfig, ClipModel, DeviceKind, Engine, EngineOptions, ModelError, Precision,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models")
}

struct Goldens(HashMap<String, Tensor>);

impl Goldens {
    fn load(model: &str) -> Goldens {
        let path = fixtures().join(model).join("goldens.safetensors");
        Goldens(
            candle_core::safetensors::load(&path, &Device::Cpu).unwrap_or_else(|e| {
                panic!(
                    "cannot read {}: {e}; run fixtures/generate.py",
                    path.display()
                )
            }),
        )
    }
    fn f32s(&self, key: &str) -> Vec<Vec<f32>> {
        self.0[key].to_vec2::<f32>().unwrap()
    }
    fn flat_f32(&self, key: &str) -> (Vec<f32>, usize) {
        let t = &self.0[key];
        (
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            t.dim(0).unwrap(),
        )
    }
    fn ids(&self) -> (Vec<u32>, usize, Vec<usize>) {
        let t = &self.0["input_ids"];
        let rows = t.dim(0).unwrap();
        let ids: Vec<u32> = t
            .flatten_all()
            .unwrap()
            .to_vec1::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as u32)
            .collect();
        let eot = self.0["eot_positions"]
            .to_vec1::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as usize)
            .collect();
        (ids, rows, eot)
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Features within 1e-4 absolute and cosine >= 0.99999, row by row.
fn assert_features(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>]) {
    assert_eq!(ours.len(), reference.len(), "{what}: row count");
    let (mut worst_diff, mut worst_cos) = (0f32, 1f32);
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}[{i}]: dimension");
        let max = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let cos = cosine(a, b);
        assert!(max <= 1e-4, "{what}[{i}]: max abs diff {max:e}");
        assert!(cos >= 0.99999, "{what}[{i}]: cosine {cos}");
        worst_diff = worst_diff.max(max);
        worst_cos = worst_cos.min(cos);
    }
    eprintln!("{what}: max abs diff {worst_diff:e}, min cosine {worst_cos}");
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
    let engine = Engine::load_with(&fixtures().join(name), options).unwrap();
    let name = &format!(
        "{name} ({})",
        if options.backend == Backend::Candle {
            "reference"
        } else {
            "fast"
        }
    );
    let g = Goldens::load(name.split(' ').next().unwrap());
    let (pixels, n) = g.flat_f32("pixel_values");
    let images = engine.image_features(&pixels, n).unwrap();
    assert_features(&format!("{name} image"), &images, &g.f32s("image_embeds"));
    let (ids, rows, eot) = g.ids();
    let texts = engine.text_features(&ids, rows, &eot).unwrap();
    assert_features(&format!("{name} text"), &texts, &g.f32s("text_embeds"));
    let ours = logits(&engine, &images, &texts);
    for (a, b) in ours
        .iter()
        .flatten()
        .zip(g.f32s("logits_per_image").iter().flatten())
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
        let engine = Engine::load_with(&fixtures().join("tiny-openai"), &options).unwrap();
        let g = Goldens::load("tiny-openai");
        let (ids, rows, eot) = g.ids();
        let texts = engine.text_features(&ids, rows, &eot).unwrap();
        assert_features("tiny-openai text", &texts, &g.f32s("text_embeds"));
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
        let engine = Engine::load_with(&fixtures().join(name), &options).unwrap();
        let g = Goldens::load(name);
        let (ids, rows, eot) = g.ids();
        let mut checks = vec![(
            "text",
            engine.text_features(&ids, rows, &eot).unwrap(),
            g.f32s("text_embeds"),
        )];
        if name != "tiny-openai" {
            let (pixels, n) = g.flat_f32("pixel_values");
            checks.push((
                "image",
                engine.image_features(&pixels, n).unwrap(),
                g.f32s("image_embeds"),
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
    let dir = std::env::temp_dir().join(format!("clip-model-awkward-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    vars.save(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
    let fast = Engine::load(&dir, DeviceKind::Cpu).unwrap();
    let reference = EngineOptions {
        backend: Backend::Candle,
        ..EngineOptions::new(DeviceKind::Cpu)
    };
    let reference = Engine::load_with(&dir, &reference).unwrap();
    let bf16 = EngineOptions {
        precision: Precision::Bf16,
        ..EngineOptions::new(DeviceKind::Cpu)
    };
    let bf16 = Engine::load_with(&dir, &bf16).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

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

#[test]
fn batch_invariance() {
    let engine = Engine::load(&fixtures().join("tiny-laion"), DeviceKind::Cpu).unwrap();
    let g = Goldens::load("tiny-laion");
    let (pixels, n) = g.flat_f32("pixel_values");
    let batch = engine.image_features(&pixels, n).unwrap();
    let per = pixels.len() / n;
    for (i, row) in batch.iter().enumerate() {
        let alone = engine
            .image_features(&pixels[i * per..(i + 1) * per], 1)
            .unwrap();
        assert!(cosine(&alone[0], row) >= 0.99999, "image {i}");
    }
    // Texts of different lengths: alone vs. together (the batch is cut at the longest).
    let (ids, rows, eot) = g.ids();
    let ctx = ids.len() / rows;
    let together = engine.text_features(&ids, rows, &eot).unwrap();
    for i in 0..rows {
        let alone = engine
            .text_features(&ids[i * ctx..(i + 1) * ctx], 1, &eot[i..=i])
            .unwrap();
        assert!(cosine(&alone[0], &together[i]) >= 0.99999, "text {i}");
    }
}

#[test]
fn padding_after_the_end_token_changes_nothing() {
    let engine = Engine::load(&fixtures().join("tiny-pth"), DeviceKind::Cpu).unwrap();
    let g = Goldens::load("tiny-pth");
    let (mut ids, rows, eot) = g.ids();
    let ctx = ids.len() / rows;
    let before = engine.text_features(&ids, rows, &eot).unwrap();
    for (r, &e) in eot.iter().enumerate() {
        for id in &mut ids[r * ctx + e + 1..(r + 1) * ctx] {
            *id = 7;
        }
    }
    let after = engine.text_features(&ids, rows, &eot).unwrap();
    assert_eq!(before, after);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let engine = Engine::load(&fixtures().join("tiny-pth"), DeviceKind::Cpu).unwrap();
    let e = engine.image_features(&[0.0; 10], 1).unwrap_err();
    assert!(matches!(e, ModelError::Input(_)), "{e}");
    let e = engine.text_features(&[1, 2000, 999], 1, &[2]).unwrap_err();
    assert!(e.to_string().contains("2000"), "{e}");
    let e = engine.text_features(&[998, 999], 1, &[5]).unwrap_err();
    assert!(e.to_string().contains("position 5"), "{e}");
    assert!(engine.image_features(&[], 0).unwrap().is_empty());
    // Debug output summarizes; it does not dump the weights.
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
    let e = Engine::load_with(&fixtures().join("tiny-pth"), &options)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bf16") && e.contains("fast path"), "{e}");
}

#[test]
fn corrupt_weights_are_reported_with_the_path() {
    let dir = std::env::temp_dir().join(format!("clip-model-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures().join("tiny-pth/config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
    let e = Engine::load(&dir, DeviceKind::Cpu).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
    // A valid file that lacks tensors names the missing one.
    let laion = std::fs::read(fixtures().join("tiny-laion/model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), laion).unwrap();
    let e = Engine::load(&dir, DeviceKind::Cpu).unwrap_err().to_string();
    assert!(e.contains("cannot load weights"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One engine used from many threads at once, including from inside the rayon pool (where
/// work stealing can run one product while another waits on the same thread), gives the
/// results it gives alone.
#[test]
fn concurrent_calls_give_the_same_features() {
    use rayon::prelude::*;
    for precision in [Precision::F32, Precision::Bf16] {
        let options = EngineOptions {
            precision,
            ..EngineOptions::new(DeviceKind::Cpu)
        };
        let engine = Engine::load_with(&fixtures().join("tiny-laion"), &options).unwrap();
        let g = Goldens::load("tiny-laion");
        let (pixels, n) = g.flat_f32("pixel_values");
        let (ids, rows, eot) = g.ids();
        let images = engine.image_features(&pixels, n).unwrap();
        let texts = engine.text_features(&ids, rows, &eot).unwrap();
        let results: Vec<_> = (0..16)
            .into_par_iter()
            .map(|i| {
                if i % 2 == 0 {
                    engine.image_features(&pixels, n).unwrap()
                } else {
                    engine.text_features(&ids, rows, &eot).unwrap()
                }
            })
            .collect();
        for (i, r) in results.iter().enumerate() {
            let want = if i % 2 == 0 { &images } else { &texts };
            assert_eq!(r, want, "{precision} call {i}");
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| engine.image_features(&pixels, n).unwrap()))
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), images, "{precision} thread");
            }
        });
    }
}

//! End-to-end tests of the library: image files and texts through `Clip` against the Python
//! reference's goldens, and model resolution through a loopback hub.

use std::path::{Path, PathBuf};

use clip::{Clip, ClipError, Device, DownloadProgress, NoProgress, ResolveOptions};
use clip_test_support::hub_server::{self, HubServer};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn goldens(model: &str) -> safetensors_map::Map {
    safetensors_map::load(
        &fixtures()
            .join("models")
            .join(model)
            .join("goldens.safetensors"),
    )
}

/// A minimal reader of the f32/i64 tensors in a goldens file (the library has no tensor type).
mod safetensors_map {
    use std::collections::HashMap;
    use std::path::Path;

    pub struct Map(pub HashMap<String, (Vec<usize>, String, Vec<u8>)>);

    pub fn load(path: &Path) -> Map {
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| panic!("{}: {e}; run fixtures/generate.py", path.display()));
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let data = &bytes[8 + n..];
        let mut out = HashMap::new();
        for (k, v) in header.as_object().unwrap() {
            if k == "__metadata__" {
                continue;
            }
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let off = v["data_offsets"].as_array().unwrap();
            let (a, b) = (
                off[0].as_u64().unwrap() as usize,
                off[1].as_u64().unwrap() as usize,
            );
            out.insert(
                k.clone(),
                (
                    shape,
                    v["dtype"].as_str().unwrap().to_string(),
                    data[a..b].to_vec(),
                ),
            );
        }
        Map(out)
    }

    impl Map {
        pub fn f32s(&self, key: &str) -> Vec<f32> {
            let (_, dtype, data) = &self.0[key];
            assert_eq!(dtype, "F32", "{key}");
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        }
        pub fn rows(&self, key: &str) -> Vec<Vec<f32>> {
            let dim = *self.0[key].0.last().unwrap();
            self.f32s(key).chunks(dim).map(<[f32]>::to_vec).collect()
        }
        pub fn u8s(&self, key: &str) -> (Vec<usize>, Vec<u8>) {
            let (shape, dtype, data) = &self.0[key];
            assert_eq!(dtype, "U8", "{key}");
            (shape.clone(), data.clone())
        }
        pub fn keys(&self) -> impl Iterator<Item = &String> {
            self.0.keys()
        }
    }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Image files through decoding, preprocessing and the model, against the reference pipeline
/// (Pillow + torchvision + transformers). Lossless files match to float rounding; JPEGs
/// (different decoders) to cosine >= 0.9999.
fn end_to_end(model: &str) {
    let clip = Clip::from_dir(&fixtures().join("models").join(model), Device::Cpu).unwrap();
    let g = goldens(model);
    let mut checked = 0;
    let mut keys: Vec<&String> = g.keys().filter(|k| k.starts_with("file:")).collect();
    keys.sort();
    for key in keys {
        let rel = &key["file:".len()..];
        let pixels = clip.load_image(&fixtures().join(rel)).unwrap();
        let ours = clip.encode_image(&[pixels]).unwrap().remove(0);
        let reference = g.f32s(key);
        let cos = clip::cosine(&ours, &reference);
        let lossless = !(rel.ends_with(".jpg") || rel.contains("lossy"));
        assert!(cos >= 0.9999, "{model} {rel}: cosine {cos}");
        if lossless {
            assert!(
                max_abs(&ours, &reference) <= 1e-4,
                "{model} {rel}: {}",
                max_abs(&ours, &reference)
            );
            assert!(cos >= 0.99999, "{model} {rel}: cosine {cos}");
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
    let clip = Clip::from_dir(&fixtures().join("models/tiny-openai"), Device::Cpu).unwrap();
    let pre = safetensors_map::load(&fixtures().join("preprocess/goldens.safetensors"));
    let g = goldens("tiny-openai");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("models/tiny-openai/goldens.json")).unwrap(),
    )
    .unwrap();
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
    for (a, b) in ours.iter().zip(&reference) {
        assert!(max_abs(a, b) <= 1e-4, "{}", max_abs(a, b));
        assert!(clip::cosine(a, b) >= 0.99999);
    }
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
    let clip = Clip::from_dir(&fixtures().join("models/tiny-openai"), Device::Cpu).unwrap();
    let labels: Vec<String> = ["cat", "dog", "car"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let tokens = clip.tokenize_all(&labels, false).unwrap();
    let text = clip.encode_text(&tokens).unwrap();
    let image = clip
        .encode_image(&[clip
            .load_image(&fixtures().join("photos/chelsea.png"))
            .unwrap()])
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
    let e = clip::hub::resolve(
        "./not-a-dir",
        &offline_options(&tmp("unused")),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(matches!(e, ClipError::ModelNotFound { .. }), "{e}");
    // A preprocessing that does not produce the model's input size is refused at load.
    let dir = tmp("mismatch");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("models/tiny-laion").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("preprocessor_config.json"),
        r#"{"crop_size": 80, "size": 80}"#,
    )
    .unwrap();
    let e = Clip::from_dir(&dir, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("80x80") && e.contains("64x64"), "{e}");
    // Without a preprocessor config, OpenAI's preprocessing at the model's size is used.
    std::fs::remove_file(dir.join("preprocessor_config.json")).unwrap();
    let clip = Clip::from_dir(&dir, Device::Cpu).unwrap();
    assert_eq!(
        clip.preprocess_config(),
        &clip::PreprocessConfig::openai(64)
    );
}

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-facade-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Default)]
struct Counting {
    files: Vec<String>,
    bytes: u64,
    finished: usize,
}

impl DownloadProgress for Counting {
    fn start(&mut self, file: &str, _size: u64) {
        self.files.push(file.to_string());
    }
    fn advance(&mut self, bytes: u64) {
        self.bytes += bytes;
    }
    fn finish(&mut self) {
        self.finished += 1;
    }
}

fn offline_options(cache: &Path) -> ResolveOptions {
    ResolveOptions {
        cache: cache.to_path_buf(),
        endpoint: "http://127.0.0.1:9".into(),
        offline: true,
        token: None,
    }
}

#[test]
fn hub_models_download_into_the_cache_then_load_offline() {
    let cache = tmp("hub");
    let server = HubServer::start("org/tiny-clip", &fixtures().join("models/tiny-laion"));
    let mut progress = Counting::default();
    let opts = ResolveOptions {
        cache: cache.clone(),
        endpoint: server.endpoint(),
        offline: false,
        token: Some("hf_test_token".into()),
    };
    let clip = Clip::load_with("org/tiny-clip", Device::Cpu, &opts, &mut progress).unwrap();
    assert_eq!(
        server.authorization().as_deref(),
        Some("Bearer hf_test_token")
    );
    assert_eq!(clip.name(), "org/tiny-clip");
    assert!(
        progress.files.contains(&"model.safetensors".to_string()),
        "{:?}",
        progress.files
    );
    assert!(
        progress.bytes >= 1_000_000,
        "{} bytes reported",
        progress.bytes
    );
    let snapshot = cache.join(format!(
        "models--org--tiny-clip/snapshots/{}",
        hub_server::COMMIT
    ));
    assert_eq!(clip.dir(), snapshot);
    for f in [
        "config.json",
        "preprocessor_config.json",
        "model.safetensors",
    ] {
        assert!(snapshot.join(f).is_file(), "{f} not cached");
    }
    let refs = std::fs::read_to_string(cache.join("models--org--tiny-clip/refs/main")).unwrap();
    assert_eq!(refs.trim(), hub_server::COMMIT);
    let online = clip
        .encode_image(&[clip
            .load_image(&fixtures().join("photos/horse.png"))
            .unwrap()])
        .unwrap();

    // With the server gone and downloads forbidden, the cache alone serves the model.
    let served = server.requests();
    drop(server);
    let again = Clip::load_with(
        "org/tiny-clip",
        Device::Cpu,
        &offline_options(&cache),
        &mut NoProgress,
    )
    .unwrap();
    let offline = again
        .encode_image(&[again
            .load_image(&fixtures().join("photos/horse.png"))
            .unwrap()])
        .unwrap();
    assert_eq!(online, offline);
    assert!(served >= 3);

    // Not cached and offline: the error says what was tried and how to place files by hand.
    let e = Clip::load_with(
        "org/other",
        Device::Cpu,
        &offline_options(&cache),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("HF_HUB_OFFLINE") && e.contains("models--org--other"),
        "{e}"
    );
    assert!(e.contains("by hand"), "{e}");
}

#[test]
fn hub_falls_back_to_pytorch_weights_and_reports_missing_repos() {
    let cache = tmp("hub-pth");
    let server = HubServer::start("org/tiny-pth", &fixtures().join("models/tiny-pth"));
    let mut progress = Counting::default();
    let opts = ResolveOptions {
        cache: cache.clone(),
        endpoint: server.endpoint(),
        offline: false,
        token: None,
    };
    let clip = Clip::load_with("org/tiny-pth", Device::Cpu, &opts, &mut progress).unwrap();
    assert!(clip.dir().join("pytorch_model.bin").is_file());
    let e = Clip::load_with("org/missing", Device::Cpu, &opts, &mut progress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("org/missing/resolve/main/config.json"), "{e}");
}

/// Splits a checkpoint's tensors over two safetensors shards with an index, as
/// transformers' `save_pretrained(max_shard_size=...)` does.
fn write_sharded(from: &Path, to: &Path) {
    let bytes = std::fs::read(from.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [first, second].into_iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let views: Vec<(String, safetensors::tensor::TensorView)> = part
            .iter()
            .map(|n| (n.clone(), st.tensor(n).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &to.join(&file)).unwrap();
        for n in part {
            weight_map.insert(n.clone(), serde_json::Value::String(file.clone()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(to.join("model.safetensors.index.json"), index.to_string()).unwrap();
    for f in ["config.json", "preprocessor_config.json"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn sharded_checkpoints_download_every_shard_at_any_revision() {
    let sharded = tmp("sharded-src");
    let whole = fixtures().join("models/tiny-laion");
    write_sharded(&whole, &sharded);
    let direct = Clip::from_dir(&sharded, Device::Cpu).unwrap();
    let reference = Clip::from_dir(&whole, Device::Cpu).unwrap();
    let horse = fixtures().join("photos/horse.png");
    let embed = |c: &Clip| c.encode_image(&[c.load_image(&horse).unwrap()]).unwrap();
    assert_eq!(embed(&direct), embed(&reference));

    let cache = tmp("hub-sharded");
    let server = HubServer::start("org/sharded", &sharded);
    let opts = ResolveOptions {
        cache: cache.clone(),
        endpoint: server.endpoint(),
        offline: false,
        token: None,
    };
    let mut progress = Counting::default();
    let clip = Clip::load_with("org/sharded@v1.0", Device::Cpu, &opts, &mut progress).unwrap();
    assert!(progress
        .files
        .iter()
        .any(|f| f == "model-00002-of-00002.safetensors"));
    assert_eq!(embed(&clip), embed(&reference));
    let refs = cache.join("models--org--sharded/refs/v1.0");
    assert_eq!(
        std::fs::read_to_string(refs).unwrap().trim(),
        hub_server::COMMIT
    );

    // A snapshot that lost a shard is incomplete: offline it is reported, online refetched.
    std::fs::remove_file(clip.dir().join("model-00002-of-00002.safetensors")).unwrap();
    let e = Clip::load_with(
        "org/sharded@v1.0",
        Device::Cpu,
        &offline_options(&cache),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("HF_HUB_OFFLINE"), "{e}");
    let again = Clip::load_with("org/sharded@v1.0", Device::Cpu, &opts, &mut NoProgress).unwrap();
    assert_eq!(embed(&again), embed(&reference));
}

/// A template ensemble's class embeddings equal those open_clip's method gives with
/// transformers on the same checkpoint (`fixtures/zeroshot/ensemble.json`).
#[test]
fn template_ensembles_match_the_python_reference() {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("zeroshot/ensemble.json")).unwrap(),
    )
    .unwrap();
    let model = Clip::from_dir(&fixtures().join("models/tiny-openai"), Device::Cpu).unwrap();
    let classes: Vec<String> = serde_json::from_value(golden["classes"].clone()).unwrap();
    let templates = clip::Templates::builtin(golden["templates"].as_str().unwrap()).unwrap();
    let ours = model
        .zero_shot_classifier(&classes, &templates, false)
        .unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(golden["class_embeddings"].clone()).unwrap();
    assert_eq!(ours.len(), want.len());
    for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
        let d = max_abs(a, b);
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
    assert!(max_abs(&plain[0], &clip::normalized(&direct[0])) <= 1e-6);
}

/// The classifier cache returns what was computed, misses on other templates, and survives a
/// corrupt entry.
#[test]
fn classifier_cache_hits_misses_and_repairs() {
    let cache = tmp("classifier-cache");
    let model = Clip::from_dir(&fixtures().join("models/tiny-openai"), Device::Cpu).unwrap();
    let templates = clip::Templates::builtin("cifar10").unwrap();
    let classes = ["cat", "dog"];
    let (first, hit) = model
        .zero_shot_classifier_cached(&classes, &templates, false, &cache)
        .unwrap();
    assert!(!hit);
    let (second, hit) = model
        .zero_shot_classifier_cached(&classes, &templates, false, &cache)
        .unwrap();
    assert!(hit);
    assert_eq!(first, second);
    let (_, hit) = model
        .zero_shot_classifier_cached(&classes, &clip::Templates::none(), false, &cache)
        .unwrap();
    assert!(!hit, "other templates are another entry");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        std::fs::write(f, b"CLIPZS1\ngarbage").unwrap();
    }
    let (repaired, hit) = model
        .zero_shot_classifier_cached(&classes, &templates, false, &cache)
        .unwrap();
    assert!(!hit);
    assert_eq!(repaired, first);
    let (_, hit) = model
        .zero_shot_classifier_cached(&classes, &templates, false, &cache)
        .unwrap();
    assert!(hit, "the repaired entry is used");
    std::fs::remove_dir_all(&cache).unwrap();
}

/// The evaluation goldens: an independent reference's embeddings and metrics
/// (fixtures/generate.py --only eval).
fn eval_goldens() -> serde_json::Value {
    let path = fixtures().join("eval/goldens.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run fixtures/generate.py", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn indices(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Top-1, top-5, mean per-class recall and the confusion matrix equal the reference's.
fn assert_accuracy(what: &str, ours: &clip::eval::Accuracy, reference: &serde_json::Value) {
    let close = |a: f64, key: &str| {
        let b = reference[key].as_f64().unwrap();
        assert!(
            (a - b).abs() < 1e-12,
            "{what} {key}: ours {a}, reference {b}"
        );
    };
    close(ours.top1, "top1");
    close(ours.top5, "top5");
    close(ours.mean_per_class_recall, "mean_per_class_recall");
    let confusion: Vec<Vec<usize>> = reference["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(indices)
        .collect();
    assert_eq!(ours.confusion, confusion, "{what} confusion matrix");
}

#[test]
fn eval_metrics_match_the_reference_on_its_embeddings() {
    let g = eval_goldens();
    let labels = strings(&g["labels"]);
    let classes = rows(&g["class_embeddings"]);
    let (test_x, test_t) = (rows(&g["test"]["features"]), indices(&g["test"]["targets"]));
    let (train_x, train_t) = (
        rows(&g["train"]["features"]),
        indices(&g["train"]["targets"]),
    );
    // Zero-shot: probabilities (softmax of logit_scale * cosine) and accuracies.
    let cos = clip::eval::cosine_matrix(&test_x, &classes);
    let scale = g["logit_scale"].as_f64().unwrap() as f32;
    for (row, want) in cos.iter().zip(rows(&g["zero_shot"]["probabilities"])) {
        let logits: Vec<f32> = row.iter().map(|c| scale * c).collect();
        let probs = clip::softmax(&logits);
        assert!(max_abs(&probs, &want) < 1e-5, "{probs:?} vs {want:?}");
    }
    let zs = clip::eval::accuracy(&cos, &test_t, &labels);
    assert_accuracy("zero-shot", &zs, &g["zero_shot"]);
    // Linear probe against scikit-learn's LogisticRegression.
    let c = g["linear_probe"]["C"].as_f64().unwrap();
    let opts = clip::eval::probe::ProbeOptions {
        c,
        ..Default::default()
    };
    let probe =
        clip::eval::probe::LinearProbe::fit(&train_x, &train_t, labels.len(), &opts).unwrap();
    assert!(probe.converged, "{probe:?}");
    assert_eq!(probe.classes, indices(&g["linear_probe"]["classes"]));
    let scores = probe.scores(&test_x);
    for (row, want) in scores.iter().zip(rows(&g["linear_probe"]["probabilities"])) {
        let present: Vec<f32> = probe.classes.iter().map(|&c| row[c]).collect();
        let probs = clip::softmax(&present);
        assert!(max_abs(&probs, &want) < 1e-4, "{probs:?} vs {want:?}");
    }
    // Two classes: scikit-learn's binary model.
    let pick = |x: &[Vec<f32>], t: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) {
        x.iter()
            .zip(t)
            .filter(|(_, &t)| t < 2)
            .map(|(x, &t)| (x.clone(), t))
            .unzip()
    };
    let (bx, bt) = pick(&train_x, &train_t);
    let (qx, _) = pick(&test_x, &test_t);
    let binary = clip::eval::probe::LinearProbe::fit(&bx, &bt, labels.len(), &opts).unwrap();
    assert!(binary.converged);
    let want = rows(&g["linear_probe_binary"]["probabilities"]);
    assert_eq!(want.len(), qx.len());
    for (row, want) in binary.scores(&qx).iter().zip(want) {
        let probs = clip::softmax(&row[..2]);
        assert!(max_abs(&probs, &want) < 1e-4, "{probs:?} vs {want:?}");
    }
    let report =
        clip::eval::probe::linear_probe((&train_x, &train_t), (&test_x, &test_t), &labels, &opts)
            .unwrap();
    assert_accuracy("linear probe", &report.accuracy, &g["linear_probe"]);
    // Retrieval recall@k both ways.
    let r = &g["retrieval"];
    let recall = clip::eval::retrieval_recall(
        &rows(&r["image_features"]),
        &rows(&r["text_features"]),
        &indices(&r["caption_image"]),
        &[1, 5, 10],
    );
    for (ours, want) in recall.iter().zip(r["recall"].as_array().unwrap()) {
        assert_eq!(ours.k as u64, want["k"].as_u64().unwrap());
        for (a, key) in [
            (ours.text_to_image, "text_to_image"),
            (ours.image_to_text, "image_to_text"),
        ] {
            let b = want[key].as_f64().unwrap();
            assert!((a - b).abs() < 1e-12, "recall@{} {key}: {a} vs {b}", ours.k);
        }
    }
}

#[test]
fn eval_on_an_image_folder_matches_the_reference_end_to_end() {
    use clip::dataset::{match_labels, read_captions, read_mapping, ImageFolder};
    let g = eval_goldens();
    let root = fixtures().join("eval");
    let clip = Clip::from_dir(&fixtures().join("models/tiny-openai"), Device::Cpu).unwrap();
    let test = ImageFolder::open(&root.join("imagefolder/test")).unwrap();
    let mapping_path = root.join("imagefolder/mapping.txt");
    let mapping = read_mapping(&mapping_path).unwrap();
    let classes = match_labels(
        &test.folder_names(),
        None,
        Some((&mapping, &mapping_path)),
        "-",
    )
    .unwrap();
    assert_eq!(classes.labels, strings(&g["labels"]));
    let templates = clip::Templates::new(
        clip::zeroshot::parse_list(&std::fs::read_to_string(root.join("templates.txt")).unwrap()),
        "templates.txt",
    )
    .unwrap();
    let mut built = 0;
    let classifier = clip
        .zero_shot_classifier_progress(&classes.labels, &templates, false, &mut |n| built += n)
        .unwrap();
    assert_eq!(built, 6);
    let mut done = 0;
    let (zs, images) = clip
        .evaluate_zero_shot(&test, &classes, &classifier, &mut |n| done += n)
        .unwrap();
    assert_eq!(done, 16, "15 images and the unreadable one");
    assert_eq!(images.failed.len(), 1);
    assert!(
        images.failed[0].path.ends_with("broken.png"),
        "{:?}",
        images.failed
    );
    assert_accuracy("zero-shot", &zs, &g["zero_shot"]);
    let empty = &zs.per_class[classes.labels.iter().position(|l| l == "unicorn").unwrap()];
    assert_eq!((empty.support, empty.recall), (0, None));
    // Linear probe on the train split, matched to the same labels by the mapping.
    let train = ImageFolder::open(&root.join("imagefolder/train")).unwrap();
    let train_classes = match_labels(
        &train.folder_names(),
        Some(&classes.labels),
        Some((&mapping, &mapping_path)),
        "-",
    )
    .unwrap();
    let train_x = clip
        .encode_image_folder(&train, &train_classes, &mut |_| {})
        .unwrap();
    let opts = clip::eval::probe::ProbeOptions {
        c: g["linear_probe"]["C"].as_f64().unwrap(),
        ..Default::default()
    };
    let probe = clip::eval::probe::linear_probe(
        (&train_x.features, &train_x.targets),
        (&images.features, &images.targets),
        &classes.labels,
        &opts,
    )
    .unwrap();
    assert_accuracy("linear probe", &probe.accuracy, &g["linear_probe"]);
    // Retrieval from the caption file; the unreadable image drops out with its caption.
    let captions = read_captions(&root.join("captions.csv"), None).unwrap();
    let r = clip
        .evaluate_retrieval(&captions, &[1, 5, 10], false, &mut |_| {})
        .unwrap();
    assert_eq!(r.failed.len(), 1);
    assert_eq!(
        (r.images as u64, r.captions as u64),
        (
            g["retrieval"]["images"].as_u64().unwrap(),
            g["retrieval"]["captions"].as_u64().unwrap()
        )
    );
    for (ours, want) in r
        .recall
        .iter()
        .zip(g["retrieval"]["recall"].as_array().unwrap())
    {
        assert_eq!(ours.text_to_image, want["text_to_image"].as_f64().unwrap());
        assert_eq!(ours.image_to_text, want["image_to_text"].as_f64().unwrap());
    }
}

#[test]
fn library_scans_and_searches() {
    use clip::library::{load_vectors, Index, QueryTerm, ScanOptions, ScanProgress};
    let dir = tmp("library");
    let lib = dir.join("photos");
    std::fs::create_dir_all(&lib).unwrap();
    for f in ["chelsea.png", "horse.png", "rocket.jpg"] {
        std::fs::copy(fixtures().join("photos").join(f), lib.join(f)).unwrap();
    }
    let clip = Clip::from_dir(&fixtures().join("models/tiny-openai"), Device::Cpu)
        .unwrap()
        .with_batch_size(2);
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let mut events = Vec::new();
    let report = clip
        .update_index(
            &mut index,
            std::slice::from_ref(&lib),
            &ScanOptions::default(),
            &mut |p| events.push(p),
        )
        .unwrap();
    assert_eq!((report.files, report.embedded), (3, 3));
    assert_eq!(
        events,
        [
            ScanProgress::Planned {
                files: 3,
                to_read: 3
            },
            ScanProgress::Done(2),
            ScanProgress::Done(1)
        ]
    );
    // Stored vectors are the unit embeddings of the files.
    let vectors = load_vectors(&index).unwrap();
    // Decoding in a pool of its own gives the same index.
    let mut own_pool = Index::open(&dir.join("own-pool.sqlite"), &clip.index_info()).unwrap();
    let options = ScanOptions {
        decode_threads: Some(1),
        ..Default::default()
    };
    let report = clip
        .update_index(
            &mut own_pool,
            std::slice::from_ref(&lib),
            &options,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((report.files, report.embedded), (3, 3));
    assert_eq!(own_pool.embeddings().unwrap(), index.embeddings().unwrap());
    let horse = lib.join("horse.png").canonicalize().unwrap();
    let row = vectors.find(horse.to_str().unwrap()).unwrap();
    let embed_file = |p: &Path| {
        clip.encode_image(&[clip.load_image(p).unwrap()])
            .unwrap()
            .remove(0)
    };
    let image_query = |p: &Path, index: &Index| {
        clip.query_vector(
            &[(QueryTerm::Image(p.to_path_buf()), 1.0)],
            Some(index),
            false,
        )
        .unwrap()
    };
    let direct = embed_file(&horse);
    assert!(max_abs(vectors.vector(row), &clip::normalized(&direct)) < 1e-6);
    // An image query finds itself first, with similarity 1.
    let q = image_query(&horse, &index);
    let hits = vectors.top_k(&q, 3);
    assert_eq!(hits[0].index, row);
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    // Weighted terms: the normalized weighted sum of the unit embeddings.
    let text = clip
        .encode_text(&[clip.tokenize("a horse", false).unwrap()])
        .unwrap()
        .remove(0);
    let q = clip
        .query_vector(
            &[
                (QueryTerm::Text("a horse".into()), 1.0),
                (QueryTerm::Image(horse), -0.5),
            ],
            Some(&index),
            false,
        )
        .unwrap();
    let manual: Vec<f32> = clip::normalized(&text)
        .iter()
        .zip(clip::normalized(&direct))
        .map(|(t, i)| t - 0.5 * i)
        .collect();
    assert!(max_abs(&q, &clip::normalized(&manual)) < 1e-5);
    let rescan = |index: &mut Index| {
        clip.update_index(
            index,
            std::slice::from_ref(&lib),
            &ScanOptions::default(),
            &mut |_| {},
        )
        .unwrap()
    };
    // A rerun reads nothing.
    let again = rescan(&mut index);
    assert_eq!((again.unchanged, again.embedded), (3, 0));
    // A file that could not be read last time is read again although it did not change (a
    // permission fixed); one that could not be decoded waits for a change.
    let files = index.files().unwrap();
    let failed = |name: &str, hash: Option<clip::library::Hash>| {
        let path = lib.join(name).canonicalize().unwrap();
        let path = path.to_str().unwrap().to_string();
        let state = &files[&path];
        clip::library::Change::Failed {
            path,
            size: state.size,
            mtime_ns: state.mtime_ns,
            hash,
            error: "earlier failure".into(),
        }
    };
    index
        .apply(&[
            failed("chelsea.png", None),
            failed("rocket.jpg", Some([7; 32])),
        ])
        .unwrap();
    let third = rescan(&mut index);
    assert_eq!(
        (third.unchanged, third.reused, third.failed_before),
        (1, 1, 1),
        "{third:?}"
    );
    // Identical new files in one scan, in one batch or across batches (batches of 2 in name
    // order: [a-twin, b-twin], [bad-a, bad-b], [z-twin]): one is decoded, the others reuse its
    // vector or share its failure.
    let mut twin = std::fs::read(fixtures().join("photos/coins.png")).unwrap();
    twin.extend_from_slice(b"new bytes");
    for name in ["a-twin.png", "b-twin.png", "z-twin.png"] {
        std::fs::write(lib.join(name), &twin).unwrap();
    }
    // A JPEG by its first bytes that cannot be decoded.
    let broken = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 and then nothing of use";
    std::fs::write(lib.join("bad-a.jpg"), broken).unwrap();
    std::fs::write(lib.join("bad-b.jpg"), broken).unwrap();
    let fourth = rescan(&mut index);
    assert_eq!((fourth.embedded, fourth.reused), (1, 2), "{fourth:?}");
    let mut failed: Vec<&str> = fourth.failed.iter().map(|f| f.path.as_str()).collect();
    failed.sort();
    assert_eq!(failed.len(), 2);
    assert!(failed[0].ends_with("bad-a.jpg") && failed[1].ends_with("bad-b.jpg"));
    let copies = fourth
        .failed
        .iter()
        .filter(|f| f.error.contains("same content as"));
    assert_eq!(copies.count(), 1, "{fourth:?}");
    let vectors = load_vectors(&index).unwrap();
    let at = |name: &str| {
        let p = lib.join(name).canonicalize().unwrap();
        vectors
            .vector(vectors.find(p.to_str().unwrap()).unwrap())
            .to_vec()
    };
    assert_eq!(at("a-twin.png"), at("b-twin.png"));
    assert_eq!(at("a-twin.png"), at("z-twin.png"));
    // An image query for an indexed file that changed since is embedded afresh, not taken
    // from the index.
    let horse = lib.join("horse.png");
    std::fs::copy(fixtures().join("photos/rocket.jpg"), &horse).unwrap();
    let fresh = clip::normalized(&embed_file(&horse));
    assert!(max_abs(&image_query(&horse, &index), &fresh) < 1e-6);
}

#[test]
fn a_scan_does_not_read_files_too_big_to_be_images() {
    use clip::library::{Index, ScanOptions};
    let dir = tmp("library-big");
    let lib = dir.join("photos");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(fixtures().join("photos/horse.png"), lib.join("horse.png")).unwrap();
    std::fs::copy(fixtures().join("photos/rocket.jpg"), lib.join("rocket.jpg")).unwrap();
    let small = std::fs::metadata(lib.join("horse.png")).unwrap().len();
    let clip = Clip::from_dir(&fixtures().join("models/tiny-openai"), Device::Cpu)
        .unwrap()
        .with_decode_limits(clip::DecodeLimits {
            max_alloc_bytes: small,
            ..Default::default()
        });
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let report = clip
        .update_index(&mut index, &[lib], &ScanOptions::default(), &mut |_| {})
        .unwrap();
    // The small file is read (its pixels are over the limit too, so it fails decoding); the
    // big one is refused by its size.
    let rocket = report
        .failed
        .iter()
        .find(|f| f.path.ends_with("rocket.jpg"));
    let error = &rocket.unwrap().error;
    assert!(error.contains("bytes is over the decode limit"), "{error}");
    let horse = report.failed.iter().find(|f| f.path.ends_with("horse.png"));
    assert!(!horse.unwrap().error.contains("bytes is over"), "{horse:?}");
}

//! Model resolution through a loopback hub: download, cache, offline use, PyTorch weights
//! and sharded checkpoints.

use std::path::Path;

use clip::{Clip, Device, DownloadProgress, NoProgress, ResolveOptions};
use clip_test_support::hub_server::{self, HubServer};
use clip_test_support::{fixture, temp_dir};

use crate::offline_options;

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

#[test]
fn hub_models_download_into_the_cache_then_load_offline() {
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let server = HubServer::start("org/tiny-clip", &fixture("models/tiny-laion"));
    let mut progress = Counting::default();
    let opts = ResolveOptions {
        cache: cache.to_path_buf(),
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
        .encode_image(&[clip.load_image(&fixture("photos/horse.png")).unwrap()])
        .unwrap();

    // With the server gone and downloads forbidden, the cache alone serves the model.
    let served = server.requests();
    drop(server);
    let again = Clip::load_with(
        "org/tiny-clip",
        Device::Cpu,
        &offline_options(cache),
        &mut NoProgress,
    )
    .unwrap();
    let offline = again
        .encode_image(&[again.load_image(&fixture("photos/horse.png")).unwrap()])
        .unwrap();
    assert_eq!(online, offline);
    assert!(served >= 3);

    // Not cached and offline: the error says what was tried and how to place files by hand.
    let e = Clip::load_with(
        "org/other",
        Device::Cpu,
        &offline_options(cache),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("HF_HUB_OFFLINE") && e.contains("models--org--other"),
        "{e}"
    );
    // Where the files are, and no advice for a command line (the CLI's hint gives that).
    assert!(e.contains("/org/other/tree/main"), "{e}");
    assert!(!e.contains("--model"), "{e}");
}

#[test]
fn hub_falls_back_to_pytorch_weights_and_reports_missing_repos() {
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let server = HubServer::start("org/tiny-pth", &fixture("models/tiny-pth"));
    let mut progress = Counting::default();
    let opts = ResolveOptions {
        cache: cache.to_path_buf(),
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
    let sharded_dir = temp_dir();
    let sharded = sharded_dir.path();
    let whole = fixture("models/tiny-laion");
    write_sharded(&whole, sharded);
    let direct = Clip::from_dir(sharded, Device::Cpu).unwrap();
    let reference = Clip::from_dir(&whole, Device::Cpu).unwrap();
    let horse = fixture("photos/horse.png");
    let embed = |c: &Clip| c.encode_image(&[c.load_image(&horse).unwrap()]).unwrap();
    assert_eq!(embed(&direct), embed(&reference));

    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let server = HubServer::start("org/sharded", sharded);
    let opts = ResolveOptions {
        cache: cache.to_path_buf(),
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
        &offline_options(cache),
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("HF_HUB_OFFLINE"), "{e}");
    let again = Clip::load_with("org/sharded@v1.0", Device::Cpu, &opts, &mut NoProgress).unwrap();
    assert_eq!(embed(&again), embed(&reference));
}

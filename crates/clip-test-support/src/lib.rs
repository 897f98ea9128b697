//! What the workspace's test binaries share, so that each of them holds only its tests:
//!
//! - [`fixtures`], [`fixture`], [`fixture_json`]: the committed fixtures in `/fixtures`, made by
//!   `fixtures/generate.py`; a missing one fails the test and names that script.
//! - [`temp_dir`]: a fresh folder, removed when dropped (also when the test panics).
//! - [`HubServer`]: a checkpoint folder served on loopback in the Hugging Face hub's URL
//!   layout, so that downloads are tested without a network.
//! - [`Goldens`]: the reference's tensors in a `goldens.safetensors` file.
//! - [`assert_features`]: our features against the reference's, with the tolerance every f32
//!   parity test states ([`MAX_ABS_DIFF`], [`MIN_COSINE`]).
//! - [`copy_model`], [`fine_tune_in_place`]: a checkpoint to change, and the change a
//!   fine-tune into the same folder makes (same size, other values).
//!
//! A dev-dependency only (`publish = false`). It depends on no crate of the workspace, so each
//! of them can use it without a cycle.

pub mod hub_server;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo};

pub use hub_server::HubServer;
pub use tempfile::TempDir;

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// `fixtures/{rel}`, which must exist: a missing fixture fails here, saying how to make it,
/// rather than as an odd error deep in the code under test.
pub fn fixture(rel: impl AsRef<Path>) -> PathBuf {
    let path = fixtures().join(rel);
    assert!(
        path.exists(),
        "fixture {} is missing; run fixtures/generate.py",
        path.display()
    );
    path
}

/// The JSON file `fixtures/{rel}`.
pub fn fixture_json(rel: impl AsRef<Path>) -> serde_json::Value {
    let path = fixture(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run fixtures/generate.py to rewrite it",
            path.display()
        )
    })
}

/// A new, empty folder under the system's temporary folder; it and its contents are removed
/// when the value is dropped (use [`TempDir::close`] where the removal itself is checked).
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("clip-test-")
        .tempdir()
        .expect("create a temporary folder")
}

/// Writes at `to` (its folders made) a copy of the fixture photo `horse.png` with `tag` after
/// its end: other bytes and content hash, the same picture (decoders ignore what follows).
pub fn distinct_png(to: &Path, tag: &str) {
    let mut bytes = std::fs::read(fixture("photos/horse.png")).unwrap();
    bytes.extend_from_slice(tag.as_bytes());
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(to, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", to.display()));
}

/// A copy of the checkpoint folder `fixtures/models/{name}` (its files, not its subfolders)
/// in `to`, created, for a test that changes it.
pub fn copy_model(name: &str, to: &Path) {
    let from = fixture(Path::new("models").join(name));
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Rewrites the safetensors file at `path` in place as a fine-tune into the same folder does:
/// the same tensors, names, shapes, header and file size, every f32 value scaled by
/// `1 + by`. (Nothing may have the file mapped meanwhile.)
pub fn fine_tune_in_place(path: &Path, by: f32) {
    let mut bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let (header, metadata) =
        SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = 8 + header;
    let before = bytes.len();
    for info in metadata.tensors().values() {
        if info.dtype != Dtype::F32 {
            continue;
        }
        let (from, to) = info.data_offsets;
        for c in bytes[start + from..start + to].chunks_exact_mut(4) {
            let x = f32::from_le_bytes(c.try_into().unwrap()) * (1.0 + by);
            c.copy_from_slice(&x.to_le_bytes());
        }
    }
    assert_eq!(bytes.len(), before);
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The most features may differ from the reference's, per value (f32 paths).
pub const MAX_ABS_DIFF: f32 = 1e-4;
/// The least cosine similarity of a row of features with the reference's (f32 paths).
pub const MIN_COSINE: f32 = 0.99999;

/// Features within [`MAX_ABS_DIFF`] absolute and [`MIN_COSINE`] cosine, row by row; prints the
/// worst of both, to see how much room is left.
pub fn assert_features<A: AsRef<[f32]>, B: AsRef<[f32]>>(what: &str, ours: &[A], reference: &[B]) {
    assert_eq!(ours.len(), reference.len(), "{what}: row count");
    let (mut worst_diff, mut worst_cos) = (0f32, 1f32);
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        let (a, b) = (a.as_ref(), b.as_ref());
        assert_eq!(a.len(), b.len(), "{what}[{i}]: dimension");
        let max = max_abs_diff(a, b);
        let cos = cosine(a, b);
        assert!(max <= MAX_ABS_DIFF, "{what}[{i}]: max abs diff {max:e}");
        assert!(cos >= MIN_COSINE, "{what}[{i}]: cosine {cos}");
        worst_diff = worst_diff.max(max);
        worst_cos = worst_cos.min(cos);
    }
    eprintln!("{what}: max abs diff {worst_diff:e}, min cosine {worst_cos}");
}

/// The largest absolute difference between two vectors, value by value.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Cosine similarity, computed here rather than by the code under test.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// A `goldens.safetensors` file: the reference's inputs and outputs, by name. Reading a tensor
/// checks its type; a missing file or name fails the test, naming the file.
pub struct Goldens {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Where the tensor data starts in `bytes` (after the length and the JSON header).
    data_start: usize,
    metadata: Metadata,
}

impl Goldens {
    /// `fixtures/{rel}`.
    pub fn load(rel: impl AsRef<Path>) -> Goldens {
        let path = fixture(rel);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let (header, metadata) = SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run fixtures/generate.py to rewrite it",
                path.display()
            )
        });
        Goldens {
            path,
            bytes,
            data_start: 8 + header,
            metadata,
        }
    }

    /// The goldens of the checkpoint `fixtures/models/{name}`.
    pub fn model(name: &str) -> Goldens {
        Goldens::load(Path::new("models").join(name).join("goldens.safetensors"))
    }

    /// The tensor names, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.tensors().into_keys().collect();
        keys.sort();
        keys
    }

    /// The shape of tensor `key`.
    pub fn shape(&self, key: &str) -> Vec<usize> {
        self.info(key).shape.clone()
    }

    /// Tensor `key`, which must hold `u8`s: its shape and values.
    pub fn u8s(&self, key: &str) -> (Vec<usize>, Vec<u8>) {
        (self.shape(key), self.data(key, Dtype::U8).to_vec())
    }

    /// Tensor `key`, which must hold `f32`s, flattened.
    pub fn f32s(&self, key: &str) -> Vec<f32> {
        let data = self.data(key, Dtype::F32);
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// Tensor `key`, which must be a matrix of `f32`s, as its rows.
    pub fn rows(&self, key: &str) -> Vec<Vec<f32>> {
        let shape = self.shape(key);
        assert_eq!(
            shape.len(),
            2,
            "{key} in {}: shape {shape:?}",
            self.path.display()
        );
        self.f32s(key)
            .chunks(shape[1])
            .map(<[f32]>::to_vec)
            .collect()
    }

    /// Tensor `key`, which must hold `i64`s, flattened.
    pub fn i64s(&self, key: &str) -> Vec<i64> {
        let data = self.data(key, Dtype::I64);
        data.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn tensors(&self) -> HashMap<String, &TensorInfo> {
        self.metadata.tensors()
    }

    fn info(&self, key: &str) -> &TensorInfo {
        self.metadata
            .info(key)
            .unwrap_or_else(|| panic!("no tensor {key} in {}", self.path.display()))
    }

    fn data(&self, key: &str, dtype: Dtype) -> &[u8] {
        let info = self.info(key);
        assert_eq!(info.dtype, dtype, "{key} in {}", self.path.display());
        let (start, end) = info.data_offsets;
        &self.bytes[self.data_start + start..self.data_start + end]
    }
}

impl fmt::Debug for Goldens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Goldens")
            .field("path", &self.path)
            .field("tensors", &self.tensors().len())
            .finish()
    }
}

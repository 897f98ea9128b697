//! A fingerprint of a checkpoint's weights by their content, cheap enough to take at every
//! load: two checkpoints of the same size but other values (a model fine-tuned into the same
//! folder, a new revision of a hub repository) get different fingerprints, while the same
//! tensors copied, moved, re-sharded or saved with other metadata keep theirs.
//!
//! Safetensors files are read through a memory map, and only in part: every tensor's name,
//! type and shape, its values whole when it is small ([`WHOLE`] bytes at most) and otherwise
//! [`WINDOWS`] windows of [`WINDOW`] bytes spread evenly from its first byte to its last.
//! Training changes (nearly) every value of a tensor it touches, so this sees any tensor that
//! was trained, or replaced, among the hundreds of a checkpoint, from about 1 MB read for
//! ViT-B/32 (`docs/speed.md` has the time). A PyTorch pickle (`pytorch_model.bin`, a zip
//! archive whose layout depends on how it was written) is fingerprinted as a file: its size,
//! and its bytes whole up to 1 MiB, else [`FILE_WINDOWS`] windows spread over it.
//!
//! The scheme is part of every index's identity: changing it changes every fingerprint, so it
//! is versioned ([`SCHEME`]) and must not change without a migration.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::WeightsFiles;
use crate::error::ModelError;

/// Named in the hash, so that another scheme can never give the same fingerprints.
const SCHEME: &[u8] = b"clip weights fingerprint 1\0";
/// Tensors of at most this many bytes are hashed whole.
const WHOLE: usize = 8 * 1024;
/// How many windows of a larger tensor are hashed.
const WINDOWS: usize = 8;
/// The size of a window, in bytes.
const WINDOW: usize = 512;
/// Files (other than safetensors) of at most this many bytes are hashed whole.
const FILE_WHOLE: u64 = 1 << 20;
/// How many windows of a larger file are hashed.
const FILE_WINDOWS: u64 = 256;
/// The size of a file window, in bytes.
const FILE_WINDOW: u64 = 4096;

impl WeightsFiles {
    /// A fingerprint of the weights' content (see the module documentation), 32 hex digits.
    pub fn fingerprint(&self) -> Result<String, ModelError> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(SCHEME);
        match self {
            WeightsFiles::Safetensors(files) => safetensors(files, &mut hasher)?,
            WeightsFiles::Pth(path) => {
                file_samples(path, &mut hasher).map_err(|e| ModelError::Weights {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?
            }
        }
        let hash = hasher.finalize();
        Ok(hash.as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }
}

/// Hashes the tensors of every file, in name order, whichever file holds them.
fn safetensors(
    files: &[std::path::PathBuf],
    hasher: &mut blake3::Hasher,
) -> Result<(), ModelError> {
    let invalid = |path: &Path, detail: String| ModelError::Weights {
        path: path.display().to_string(),
        detail,
    };
    let mut maps = Vec::with_capacity(files.len());
    for path in files {
        let file = std::fs::File::open(path).map_err(|e| invalid(path, e.to_string()))?;
        // SAFETY: mapped read-only, and read only while mapped here; as every mmap-based
        // loader (the model's own, `WeightsFiles::open`), we rely on the file not being
        // truncated meanwhile.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| invalid(path, e.to_string()))?;
        // Only samples are read: without read-ahead, a checkpoint not in the page cache is
        // read a few pages per tensor rather than nearly whole. Only a hint.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        maps.push((path, map));
    }
    let mut tensors = Vec::new();
    for (path, map) in &maps {
        let st = safetensors::SafeTensors::deserialize(map)
            .map_err(|e| invalid(path, format!("not a safetensors file: {e}")))?;
        tensors.extend(st.tensors());
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in &tensors {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(format!("{:?}", view.dtype()).as_bytes());
        hasher.update(&[0]);
        for &d in view.shape() {
            hasher.update(&(d as u64).to_le_bytes());
        }
        let data = view.data();
        hasher.update(&(data.len() as u64).to_le_bytes());
        if data.len() <= WHOLE {
            hasher.update(data);
        } else {
            let last = data.len() - WINDOW;
            for i in 0..WINDOWS {
                let at = i * last / (WINDOWS - 1);
                hasher.update(&data[at..at + WINDOW]);
            }
        }
    }
    Ok(())
}

/// Hashes a file's size and bytes: whole when small, else windows spread over it.
fn file_samples(path: &Path, hasher: &mut blake3::Hasher) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    hasher.update(&len.to_le_bytes());
    if len <= FILE_WHOLE {
        std::io::copy(&mut file, hasher)?;
        return Ok(());
    }
    let last = len - FILE_WINDOW;
    let mut window = vec![0u8; FILE_WINDOW as usize];
    for i in 0..FILE_WINDOWS {
        file.seek(SeekFrom::Start(i * last / (FILE_WINDOWS - 1)))?;
        file.read_exact(&mut window)?;
        hasher.update(&window);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{Dtype, TensorView};

    /// A safetensors file of the named f32 tensors.
    fn write(path: &Path, tensors: &[(&str, Vec<f32>)], metadata: Option<(&str, &str)>) {
        let bytes: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .zip(&bytes)
            .map(|((name, v), b)| {
                let view = TensorView::new(Dtype::F32, vec![v.len()], b).unwrap();
                (name.to_string(), view)
            })
            .collect();
        let metadata = metadata.map(|(k, v)| [(k.to_string(), v.to_string())].into());
        safetensors::serialize_to_file(views, metadata, path).unwrap();
    }

    fn fingerprint(files: &[&Path]) -> String {
        WeightsFiles::Safetensors(files.iter().map(|p| p.to_path_buf()).collect())
            .fingerprint()
            .unwrap()
    }

    #[test]
    fn values_count_where_files_and_metadata_do_not() {
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path();
        let big: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        let small = vec![0.5f32; 10];
        let a = dir.join("a.safetensors");
        write(&a, &[("w", big.clone()), ("b", small.clone())], None);
        let fp = fingerprint(&[&a]);
        assert_eq!(fp.len(), 32);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()), "{fp}");
        // The same tensors elsewhere, with other metadata, or split over two files.
        let moved = dir.join("moved.safetensors");
        write(
            &moved,
            &[("b", small.clone()), ("w", big.clone())],
            Some(("format", "pt")),
        );
        assert_eq!(fingerprint(&[&moved]), fp);
        let (s1, s2) = (dir.join("s1.safetensors"), dir.join("s2.safetensors"));
        write(&s1, &[("w", big.clone())], None);
        write(&s2, &[("b", small.clone())], None);
        assert_eq!(fingerprint(&[&s1, &s2]), fp);
        // Other values of the same size: every value trained, or one of a small tensor.
        let trained: Vec<f32> = big.iter().map(|x| x + 1e-3).collect();
        write(&a, &[("w", trained), ("b", small.clone())], None);
        assert_ne!(fingerprint(&[&a]), fp);
        let mut bias = small.clone();
        bias[3] = 0.25;
        write(&a, &[("w", big.clone()), ("b", bias)], None);
        assert_ne!(fingerprint(&[&a]), fp);
        // A tensor renamed.
        write(&a, &[("w", big), ("c", small)], None);
        assert_ne!(fingerprint(&[&a]), fp);
    }

    #[test]
    fn other_files_are_sampled_with_their_size() {
        let tmp = clip_test_support::temp_dir();
        let path = tmp.path().join("pytorch_model.bin");
        let pth = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            WeightsFiles::Pth(path.clone()).fingerprint().unwrap()
        };
        let mut bytes = vec![7u8; 3 << 20];
        let fp = pth(&bytes);
        // The last byte is in the last window.
        *bytes.last_mut().unwrap() = 8;
        assert_ne!(pth(&bytes), fp);
        assert_ne!(pth(&bytes[1..]), fp);
        assert_ne!(pth(&[1, 2, 3]), pth(&[1, 2, 4]));
    }

    #[test]
    fn unreadable_files_are_named() {
        let tmp = clip_test_support::temp_dir();
        let path = tmp.path().join("model.safetensors");
        std::fs::write(&path, b"garbage").unwrap();
        let e = fingerprint_err(&path);
        assert!(
            e.contains("model.safetensors") && e.contains("not a safetensors file"),
            "{e}"
        );
        let e = fingerprint_err(&tmp.path().join("missing.safetensors"));
        assert!(e.contains("missing.safetensors"), "{e}");
    }

    fn fingerprint_err(path: &Path) -> String {
        WeightsFiles::Safetensors(vec![path.to_path_buf()])
            .fingerprint()
            .unwrap_err()
            .to_string()
    }
}

//! A fingerprint of a checkpoint's weights by their content, cheap enough to take at every
//! load: two checkpoints of the same size but other values (a model fine-tuned into the same
//! folder, a new revision of a hub repository) get different fingerprints, while the same
//! tensors copied, moved, re-sharded or saved with other metadata keep theirs.
//!
//! Safetensors files are read with plain reads, and only in part: every tensor's name,
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

/// The most header bytes a safetensors file may have (as the `safetensors` crate allows).
const MAX_HEADER: u64 = 100_000_000;

/// Hashes the tensors of every file, in name order, whichever file holds them.
fn safetensors(
    files: &[std::path::PathBuf],
    hasher: &mut blake3::Hasher,
) -> Result<(), ModelError> {
    let mut tensors = Vec::new();
    for path in files {
        tensors.extend(samples(path).map_err(|detail| ModelError::Weights {
            path: path.display().to_string(),
            detail,
        })?);
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, info, samples) in &tensors {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        // The type's name, as the `safetensors` crate spells it (`F32`, `BF16`).
        hasher.update(format!("{:?}", info.dtype).as_bytes());
        hasher.update(&[0]);
        for &d in &info.shape {
            hasher.update(&(d as u64).to_le_bytes());
        }
        let (start, end) = info.data_offsets;
        hasher.update(&((end - start) as u64).to_le_bytes());
        hasher.update(samples);
    }
    Ok(())
}

/// Each tensor of a safetensors file, with the bytes of it that are hashed: all of them for a
/// small one, else its windows, one after another. The file is read with plain reads (not
/// mapped: nothing of it stays in the process's memory), in the order it lies.
fn samples(path: &Path) -> Result<Vec<(String, safetensors::tensor::TensorInfo, Vec<u8>)>, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let not_safetensors = |detail: &str| format!("not a safetensors file: {detail}");
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .map_err(|_| not_safetensors("shorter than its header"))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || 8 + n > len {
        return Err(not_safetensors(&format!(
            "a header of {n} bytes in a file of {len}"
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| not_safetensors(&e.to_string()))?;
    if 8 + n + metadata.data_len() as u64 != len {
        return Err(not_safetensors(&format!(
            "{len} bytes, but the header describes {}",
            8 + n + metadata.data_len() as u64
        )));
    }
    let mut tensors: Vec<(String, safetensors::tensor::TensorInfo)> = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.clone()))
        .collect();
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    let mut out = Vec::with_capacity(tensors.len());
    for (name, info) in tensors {
        let (start, end) = info.data_offsets;
        let at = 8 + n + start as u64;
        let size = end - start;
        let mut bytes = Vec::with_capacity(size.min(WINDOWS * WINDOW));
        let mut read = |offset: u64, len: usize| -> Result<(), String> {
            let from = bytes.len();
            bytes.resize(from + len, 0);
            file.seek(SeekFrom::Start(at + offset))
                .and_then(|_| file.read_exact(&mut bytes[from..]))
                .map_err(|e| e.to_string())
        };
        if size <= WHOLE {
            read(0, size)?;
        } else {
            let last = size - WINDOW;
            for i in 0..WINDOWS {
                read((i * last / (WINDOWS - 1)) as u64, WINDOW)?;
            }
        }
        out.push((name, info, bytes));
    }
    Ok(out)
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

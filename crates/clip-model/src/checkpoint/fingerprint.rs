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
//! [`WeightsFiles::content_digest`] hashes every byte of every tensor (the same way: by name,
//! whatever the files and their metadata), which reads the whole checkpoint: the photo index
//! keys a model by it, computed once per change of the files ([`WeightsFiles::stamp`] says
//! when they changed) and kept by the caller, so that no edit of the weights, however small,
//! goes unnoticed. [`WeightsFiles::fingerprint`], the sampled one, costs milliseconds at every
//! load and stands in where the digest cannot be taken.
//!
//! The scheme is part of every index's identity: changing it changes every fingerprint, so it
//! is versioned ([`SCHEME`]) and must not change without a migration.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::WeightsFiles;
use crate::error::ModelError;

/// Named in the hash, so that another scheme can never give the same fingerprints.
const SCHEME: &[u8] = b"clip weights fingerprint 1\0";
/// Named in the hash of [`WeightsFiles::content_digest`].
const DIGEST_SCHEME: &[u8] = b"clip weights digest 1\0";
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

/// What a file looked like on disk: any write to it changes this (on Unix the inode's change
/// time, which no tool can set back, is part of it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Inode change time, nanoseconds since the epoch (0 where there is none).
    pub ctime_ns: i128,
    /// Device and inode (0 where there are none): a file replaced by another is another.
    pub inode: (u64, u64),
}

impl FileStamp {
    /// Whether the file was written since this stamp, in place: the same file (device and
    /// inode) with another size or times. A mapping of it sees the new bytes then; a file
    /// replaced by another, or removed, leaves a mapping of the old one as it was.
    pub fn written_in_place(&self) -> bool {
        FileStamp::of(&self.path).is_ok_and(|now| now.inode == self.inode && now != *self)
    }

    fn of(path: &Path) -> std::io::Result<FileStamp> {
        let meta = std::fs::metadata(path)?;
        let mtime_ns = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        #[cfg(unix)]
        let (ctime_ns, inode) = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
                (meta.dev(), meta.ino()),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode) = (0, (0, 0));
        Ok(FileStamp {
            path: path.to_path_buf(),
            len: meta.len(),
            mtime_ns,
            ctime_ns,
            inode,
        })
    }
}

impl WeightsFiles {
    /// Each weights file's [`FileStamp`] now: equal stamps, unchanged files.
    pub fn stamp(&self) -> Result<Vec<FileStamp>, ModelError> {
        self.paths()
            .iter()
            .map(|p| {
                FileStamp::of(p).map_err(|e| ModelError::Weights {
                    path: p.display().to_string(),
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    /// A digest of every byte of the weights (see the module documentation), 32 hex digits:
    /// reads the whole checkpoint.
    pub fn content_digest(&self) -> Result<String, ModelError> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(DIGEST_SCHEME);
        match self {
            WeightsFiles::Safetensors(files) => {
                let mut tensors = Vec::new();
                for path in files {
                    let digests = tensor_digests(path).map_err(|detail| ModelError::Weights {
                        path: path.display().to_string(),
                        detail,
                    })?;
                    tensors.extend(digests);
                }
                tensors.sort_by(|a, b| a.0.cmp(&b.0));
                for (name, info, digest) in &tensors {
                    hash_tensor(&mut hasher, name, info, digest.as_bytes());
                }
            }
            WeightsFiles::Pth(path) => {
                std::fs::File::open(path)
                    .and_then(|mut f| std::io::copy(&mut f, &mut hasher))
                    .map_err(|e| ModelError::Weights {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })?;
            }
        }
        Ok(hex16(hasher.finalize()))
    }

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
        Ok(hex16(hasher.finalize()))
    }
}

/// The first 16 bytes of a hash, in hex.
fn hex16(hash: blake3::Hash) -> String {
    hash.to_hex()[..32].to_string()
}

/// Hashes one tensor: its name, type, shape, size and `bytes` (samples of its values, or a
/// digest of them all).
fn hash_tensor(
    hasher: &mut blake3::Hasher,
    name: &str,
    info: &safetensors::tensor::TensorInfo,
    bytes: &[u8],
) {
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
    hasher.update(bytes);
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
        hash_tensor(hasher, name, info, samples);
    }
    Ok(())
}

/// A tensor of a safetensors file: its name, what the header says of it, and bytes of it (or
/// a digest of them).
type Tensor<T> = (String, safetensors::tensor::TensorInfo, T);

/// Each tensor of a safetensors file with a digest of all its bytes, read in the order they
/// lie, a block at a time.
fn tensor_digests(path: &Path) -> Result<Vec<Tensor<blake3::Hash>>, String> {
    let (mut file, data_start, tensors) = tensors_of(path)?;
    file.seek(SeekFrom::Start(data_start))
        .map_err(|e| e.to_string())?;
    let mut file = std::io::BufReader::with_capacity(1 << 20, file);
    let mut at = 0usize;
    let mut out = Vec::with_capacity(tensors.len());
    for (name, info) in tensors {
        let (start, end) = info.data_offsets;
        // Bytes between tensors (the header allows gaps) are no tensor's.
        if start > at {
            std::io::copy(
                &mut (&mut file).take((start - at) as u64),
                &mut std::io::sink(),
            )
            .map_err(|e| e.to_string())?;
        }
        let mut hasher = blake3::Hasher::new();
        let copied = std::io::copy(&mut (&mut file).take((end - start) as u64), &mut hasher)
            .map_err(|e| e.to_string())?;
        if copied != (end - start) as u64 {
            return Err(format!("{name} is cut short: the file ends within it"));
        }
        at = end.max(at);
        out.push((name, info, hasher.finalize()));
    }
    Ok(out)
}

/// A safetensors file opened, where its tensors' bytes start, and its tensors (by where their
/// bytes lie).
type Header = (
    std::fs::File,
    u64,
    Vec<(String, safetensors::tensor::TensorInfo)>,
);

/// The tensors a safetensors file's header lists, in the order their bytes lie, with the
/// file and where their bytes start; the header is checked against the file's size.
fn tensors_of(path: &Path) -> Result<Header, String> {
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
    Ok((file, 8 + n, tensors))
}

/// Each tensor of a safetensors file, with the bytes of it that are hashed: all of them for a
/// small one, else its windows, one after another. The file is read with plain reads (not
/// mapped: nothing of it stays in the process's memory), in the order it lies.
fn samples(path: &Path) -> Result<Vec<Tensor<Vec<u8>>>, String> {
    let (mut file, data_start, tensors) = tensors_of(path)?;
    let mut out = Vec::with_capacity(tensors.len());
    for (name, info) in tensors {
        let (start, end) = info.data_offsets;
        let at = data_start + start as u64;
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

    /// A big tensor `w` and a small one `b`, written in `dir` as `a.safetensors`, and the same
    /// tensors in other files: in another order with metadata, and split over two files.
    /// Returns the tensors, `a`'s path, and the other layouts' files.
    #[allow(clippy::type_complexity)]
    fn layouts(dir: &Path) -> (Vec<f32>, Vec<f32>, PathBuf, [Vec<PathBuf>; 2]) {
        let big: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        let small = vec![0.5f32; 10];
        let a = dir.join("a.safetensors");
        write(&a, &[("w", big.clone()), ("b", small.clone())], None);
        let moved = dir.join("moved.safetensors");
        write(
            &moved,
            &[("b", small.clone()), ("w", big.clone())],
            Some(("format", "pt")),
        );
        let (s1, s2) = (dir.join("s1.safetensors"), dir.join("s2.safetensors"));
        write(&s1, &[("w", big.clone())], None);
        write(&s2, &[("b", small.clone())], None);
        (big, small, a, [vec![moved], vec![s1, s2]])
    }

    fn refs(files: &[PathBuf]) -> Vec<&Path> {
        files.iter().map(|p| p.as_path()).collect()
    }

    #[test]
    fn values_count_where_files_and_metadata_do_not() {
        let tmp = clip_test_support::temp_dir();
        let (big, small, a, others) = layouts(tmp.path());
        let fp = fingerprint(&[&a]);
        assert_eq!(fp.len(), 32);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()), "{fp}");
        // The same tensors elsewhere, with other metadata, or split over two files.
        for files in &others {
            assert_eq!(fingerprint(&refs(files)), fp, "{files:?}");
        }
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

    fn digest(files: &[&Path]) -> String {
        WeightsFiles::Safetensors(files.iter().map(|p| p.to_path_buf()).collect())
            .content_digest()
            .unwrap()
    }

    #[test]
    fn the_digest_sees_every_value_and_not_files_or_metadata() {
        let tmp = clip_test_support::temp_dir();
        let (big, small, a, others) = layouts(tmp.path());
        let (fp, d) = (fingerprint(&[&a]), digest(&[&a]));
        assert_eq!(d.len(), 32);
        assert_ne!(d, fp, "two schemes, two hashes");
        // The same tensors elsewhere, with other metadata, or split over two files.
        for files in &others {
            assert_eq!(digest(&refs(files)), d, "{files:?}");
        }
        // A thousand values in the middle of the big tensor, between the samples' windows:
        // the sampled fingerprint cannot see it, the digest does.
        let mut edited = big.clone();
        for x in &mut edited[30_000..31_000] {
            *x = -*x;
        }
        write(&a, &[("w", edited), ("b", small.clone())], None);
        assert_eq!(fingerprint(&[&a]), fp);
        assert_ne!(digest(&[&a]), d);
    }

    #[test]
    fn a_stamp_tells_a_file_written_in_place_from_one_replaced() {
        let tmp = clip_test_support::temp_dir();
        let path = tmp.path().join("model.safetensors");
        write(&path, &[("w", vec![1.0; 100])], None);
        let files = WeightsFiles::Safetensors(vec![path.clone()]);
        let stamp = files.stamp().unwrap();
        assert_eq!(files.stamp().unwrap(), stamp);
        assert!(!stamp[0].written_in_place());
        // Written in place, same size: the same inode with other times.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
            .unwrap();
        assert!(stamp[0].written_in_place());
        assert_ne!(files.stamp().unwrap(), stamp);
        // Replaced by another file (a rename over it) or removed: a mapping of the old one is
        // as it was.
        let stamp = files.stamp().unwrap();
        let other = tmp.path().join("new.safetensors");
        write(&other, &[("w", vec![2.0; 100])], None);
        std::fs::rename(&other, &path).unwrap();
        assert!(!stamp[0].written_in_place());
        std::fs::remove_file(&path).unwrap();
        assert!(!stamp[0].written_in_place());
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

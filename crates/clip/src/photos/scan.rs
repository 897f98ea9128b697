//! Scans: the folders' image files compared with the index, new and changed files read,
//! decoded and embedded, gone files removed under the guard.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use clip_index::content_hash;
use rayon::prelude::*;

use super::{is_under, mtime_ns, Change, FileState, Hash, Index, DEFAULT_MAX_DELETE_SHARE};
use crate::batch::Failure;
use crate::{normalized, Clip, ClipError, Pixels};

/// How a scan may change the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanOptions {
    /// Delete whatever is gone, however much.
    pub allow_mass_delete: bool,
    /// The share of the indexed files under the roots a scan may delete without
    /// `allow_mass_delete`.
    pub max_delete_share: f64,
    /// Threads of a pool of their own for reading and decoding files. `None`: decode on the
    /// compute pool, shared with the model (best when the model has every core: decoding
    /// fills its gaps); `Some(n)` suits a model given fewer threads than there are cores.
    pub decode_threads: Option<usize>,
    /// Record the roots as folders of the index (rescanned by a scan given none). `false`
    /// brings the files under them up to date without that: for a subfolder of a root, say.
    pub add_roots: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            allow_mass_delete: false,
            max_delete_share: DEFAULT_MAX_DELETE_SHARE,
            decode_threads: None,
            add_roots: true,
        }
    }
}

/// What a scan found and did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ScanReport {
    /// Image files under the roots.
    pub files: usize,
    /// Unchanged since the last scan (not read).
    pub unchanged: usize,
    /// Embedded by the model.
    pub embedded: usize,
    /// Given the vector of identical content already indexed (renames, copies).
    pub reused: usize,
    /// Failed in this scan (recorded in the index).
    pub failed: Vec<Failure>,
    /// Not looked at: subfolders and files that could not be listed or examined (what is
    /// indexed there is kept as it is) and paths that are not valid UTF-8.
    pub skipped: Vec<Failure>,
    /// Known failures not retried because the files did not change.
    pub failed_before: usize,
    /// Removed from the index because they are gone.
    pub removed: usize,
}

/// Progress of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanProgress {
    /// The walk is done: `files` image files, `to_read` new or changed.
    Planned {
        /// Image files found.
        files: usize,
        /// Files to read.
        to_read: usize,
    },
    /// This many more files were read (and embedded, reused or failed) and committed.
    Done(usize),
}

/// A file to read, with what the walk saw.
struct Pending {
    path: String,
    size: u64,
    mtime_ns: i64,
}

/// A file after the worker threads: pixels to embed, a known vector, or a failure.
enum Prepared {
    Embed(Pending, Hash, Pixels),
    Reuse(Pending, Hash),
    Fail(Pending, Option<Hash>, String),
}

/// The index's file rows, by path, in path order.
type Known = std::collections::BTreeMap<String, FileState>;

/// What the walk of the roots found, before anything is read.
#[derive(Default)]
struct Walked {
    report: ScanReport,
    /// Indexed paths to keep: the files found, and those where the walk could not look
    /// (folders that could not be listed, entries that could not be examined).
    seen: HashSet<String>,
    /// New and changed files.
    pending: Vec<Pending>,
}

impl Walked {
    /// Notes that `path` (a file or a folder) could not be looked at, and keeps the rows of
    /// what is indexed there.
    fn keep(&mut self, known: &Known, path: &str, error: &str) {
        // The rows at or under `path` sort together, from `path` on: a range, not a pass
        // over the index per entry (a folder without execute permission gives one per file).
        let kept: Vec<&String> = known
            .range::<str, _>((std::ops::Bound::Included(path), std::ops::Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(path))
            .filter(|k| k.as_str() == path || is_under(k, path))
            .collect();
        let kept_note = match kept.len() {
            0 => String::new(),
            1 => "; the 1 file indexed there is kept as it is".to_string(),
            n => format!("; the {n} files indexed there are kept as they are"),
        };
        self.report.skipped.push(Failure {
            path: path.to_string(),
            error: format!("cannot read {path}: {error}{kept_note}"),
        });
        self.seen.extend(kept.into_iter().cloned());
    }

    /// Compares one root's listing with the index's rows.
    fn add(&mut self, known: &Known, listing: crate::walk::Listing) {
        for (path, error) in listing.unlisted {
            // What is there is unknown: keep what is indexed there, as if seen.
            let path = path.to_string_lossy().into_owned();
            self.keep(known, &path, &error.to_string());
        }
        for (path, meta) in listing.files {
            let Some(text) = path.to_str() else {
                self.report.skipped.push(Failure {
                    path: path.to_string_lossy().into_owned(),
                    error: format!(
                        "skipping {}: the path is not valid UTF-8",
                        path.to_string_lossy()
                    ),
                });
                continue;
            };
            self.report.files += 1;
            let (size, mtime) = (meta.len(), mtime_ns(&meta));
            self.seen.insert(text.to_string());
            match known.get(text) {
                // A file that could not even be read (no hash: permissions, I/O) is tried
                // again every scan, since fixing that does not change its size or time.
                Some(k) if k.size == size && k.mtime_ns == mtime && k.hash.is_some() => {
                    if k.error.is_some() {
                        self.report.failed_before += 1;
                    } else {
                        self.report.unchanged += 1;
                    }
                }
                _ => self.pending.push(Pending {
                    path: text.to_string(),
                    size,
                    mtime_ns: mtime,
                }),
            }
        }
    }
}

/// The roots as absolute paths; a root that is not a folder is refused before anything is
/// read or deleted ([`Clip::update_index`] checks this first; call it to check earlier).
pub fn canonical_roots(roots: &[PathBuf]) -> Result<Vec<String>, ClipError> {
    roots
        .iter()
        .map(|r| {
            let c = r
                .canonicalize()
                .ok()
                .filter(|c| c.is_dir())
                .ok_or_else(|| ClipError::Dataset {
                    path: r.display().to_string(),
                    detail: if r.exists() {
                        "not a folder (clip index takes folders of photos); nothing was changed"
                    } else {
                        "library root is unavailable (no such folder); nothing was changed"
                    }
                    .into(),
                })?;
            c.to_str()
                .map(String::from)
                .ok_or_else(|| ClipError::Dataset {
                    path: r.display().to_string(),
                    detail: "the path is not valid UTF-8".into(),
                })
        })
        .collect()
}

impl Clip {
    /// Brings `index` up to date with the image files under `roots` (see the module
    /// documentation). `progress` hears of the plan and of each committed batch.
    pub fn update_index(
        &self,
        index: &mut Index,
        roots: &[PathBuf],
        options: &ScanOptions,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ScanReport, ClipError> {
        let mut roots = canonical_roots(roots)?;
        // A root inside another is walked with it: drop it, so no file is seen twice.
        roots.sort();
        roots.dedup();
        let all = roots.clone();
        roots.retain(|r| !all.iter().any(|o| o != r && clip_index::is_under(r, o)));
        let known: Known = index.files()?.into_iter().collect();
        let mut walked = Walked::default();
        for root in &roots {
            let listing = crate::walk::image_files_listing(Path::new(root))?;
            walked.add(&known, listing);
        }
        let Walked {
            mut report,
            seen,
            pending,
        } = walked;
        // Decide before any work whether this scan may delete what it did not see.
        let removals = clip_index::plan_removals(
            known.keys().map(String::as_str),
            &roots,
            &seen,
            options.max_delete_share,
            options.allow_mass_delete,
        )?;
        progress(ScanProgress::Planned {
            files: report.files,
            to_read: pending.len(),
        });
        // Before anything is embedded: a run stopped halfway is resumed by `clip index`.
        if options.add_roots {
            index.add_roots(&roots)?;
        }
        let vectors = index.vector_hashes()?;
        let pool = match options.decode_threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .thread_name(|i| format!("clip-decode-{i}"))
                    .build()
                    .map_err(|e| ClipError::DecodeThreads {
                        threads: n,
                        detail: e.to_string(),
                    })?,
            ),
            None => None,
        };
        self.embed_pending(
            index,
            pending,
            &vectors,
            pool.as_ref(),
            &mut report,
            progress,
        )?;
        report.removed = removals.len();
        index.finish_scan(&removals)?;
        Ok(report)
    }

    /// Reads, hashes and decodes the pending files on worker threads (`pool`, or the compute
    /// pool), one batch ahead of the model, and commits each batch.
    fn embed_pending(
        &self,
        index: &mut Index,
        pending: Vec<Pending>,
        vectors: &HashSet<Hash>,
        pool: Option<&rayon::ThreadPool>,
        report: &mut ScanReport,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<(), ClipError> {
        let batch = self.batch_size;
        let mut batches: Vec<Vec<Pending>> = Vec::new();
        let mut it = pending.into_iter().peekable();
        while it.peek().is_some() {
            batches.push(it.by_ref().take(batch).collect());
        }
        // Content first met in this scan: by which file, and the decoding error if it failed.
        // An identical file (a copy) is not decoded or embedded again.
        let first: Mutex<HashMap<Hash, (String, Option<String>)>> = Mutex::default();
        let claims = || {
            first
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        // Reads, hashes and decodes one file (its bytes freed once it is decoded), unless it
        // is a copy of a file met earlier in the scan: that one's outcome is known once its
        // batch is decoded.
        let prepare = |p: Pending| -> Result<Prepared, (Pending, Hash)> {
            // Not even read (a video named .jpg could be gigabytes); tried again each scan.
            let size =
                clip_preprocess::image::decode::check_file_size(p.size, &p.path, &self.limits);
            if let Err(e) = size {
                let error = e.to_string();
                return Ok(Prepared::Fail(p, None, error));
            }
            let (bytes, hash) = match read_image_file(&p.path) {
                Ok(FileRead::Image(bytes, hash)) => (bytes, hash),
                // Not an image by its first bytes: it waits for a change, like other files
                // that cannot be decoded.
                Ok(FileRead::NotImage(head, hash)) => {
                    let error = self
                        .load_image_bytes(&head, &p.path)
                        .err()
                        .map_or_else(|| format!("{}: not an image", p.path), |e| e.to_string());
                    return Ok(Prepared::Fail(p, Some(hash), error));
                }
                Err(e) => {
                    let error = format!("cannot read {}: {e}", p.path);
                    return Ok(Prepared::Fail(p, None, error));
                }
            };
            if vectors.contains(&hash) {
                return Ok(Prepared::Reuse(p, hash));
            }
            {
                let mut claims = claims();
                if claims.contains_key(&hash) {
                    return Err((p, hash));
                }
                claims.insert(hash, (p.path.clone(), None));
            }
            match self.load_image_bytes(&bytes, &p.path) {
                Ok(pixels) => Ok(Prepared::Embed(p, hash, pixels)),
                Err(e) => {
                    let error = e.to_string();
                    claims().insert(hash, (p.path.clone(), Some(error.clone())));
                    Ok(Prepared::Fail(p, Some(hash), error))
                }
            }
        };
        std::thread::scope(|scope| -> Result<(), ClipError> {
            // One prepared batch waits while the model runs on the previous one.
            let (tx, rx) = mpsc::sync_channel::<Vec<Prepared>>(1);
            let worker = scope.spawn(move || {
                for b in batches {
                    let done: Vec<_> = in_pool(pool, || b.into_par_iter().map(prepare).collect());
                    let mut prepared = Vec::with_capacity(done.len());
                    let mut copies = Vec::new();
                    for item in done {
                        match item {
                            Ok(item) => prepared.push(item),
                            Err(copy) => copies.push(copy),
                        }
                    }
                    // The first of each copy was decoded in this batch or an earlier one.
                    let claims = claims();
                    for (p, hash) in copies {
                        prepared.push(match claims.get(&hash) {
                            Some((_, None)) => Prepared::Reuse(p, hash),
                            Some((original, Some(error))) => {
                                let error =
                                    format!("{}: same content as {original}; {error}", p.path);
                                Prepared::Fail(p, Some(hash), error)
                            }
                            // Cannot happen (a copy's original is claimed first); if it
                            // did, the file is tried again by the next scan.
                            None => {
                                let error = format!("{}: not indexed, try again", p.path);
                                Prepared::Fail(p, None, error)
                            }
                        });
                    }
                    drop(claims);
                    if tx.send(prepared).is_err() {
                        return; // the model side stopped on an error
                    }
                }
            });
            for prepared in rx {
                let count = prepared.len();
                let mut changes = Vec::with_capacity(count);
                let mut to_embed = Vec::new();
                for item in prepared {
                    match item {
                        Prepared::Reuse(p, hash) => {
                            report.reused += 1;
                            changes.push(Change::Reused {
                                path: p.path,
                                size: p.size,
                                mtime_ns: p.mtime_ns,
                                hash,
                            });
                        }
                        Prepared::Fail(p, hash, error) => {
                            report.failed.push(Failure {
                                path: p.path.clone(),
                                error: error.clone(),
                            });
                            changes.push(Change::Failed {
                                path: p.path,
                                size: p.size,
                                mtime_ns: p.mtime_ns,
                                hash,
                                error,
                            });
                        }
                        Prepared::Embed(p, hash, pixels) => to_embed.push((p, hash, pixels)),
                    }
                }
                let (meta, pixels): (Vec<(Pending, Hash)>, Vec<Pixels>) =
                    to_embed.into_iter().map(|(p, h, px)| ((p, h), px)).unzip();
                let features = self.encode_image(&pixels)?;
                report.embedded += features.len();
                for ((p, hash), f) in meta.into_iter().zip(features) {
                    changes.push(Change::Embedded {
                        path: p.path,
                        size: p.size,
                        mtime_ns: p.mtime_ns,
                        hash,
                        embedding: normalized(&f),
                    });
                }
                index.apply(&changes)?;
                progress(ScanProgress::Done(count));
            }
            worker.join().expect("the decoding thread does not panic");
            Ok(())
        })
    }
}

/// A file read for a scan.
enum FileRead {
    /// The whole file, which starts like a supported image, and its [`content_hash`].
    Image(Vec<u8>, Hash),
    /// The first bytes of a file that does not, and the hash of the whole file, read in
    /// pieces rather than held (it may be a video of gigabytes).
    NotImage(Vec<u8>, Hash),
}

fn read_image_file(path: &str) -> std::io::Result<FileRead> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    (&mut file).take(64).read_to_end(&mut bytes)?;
    if clip_preprocess::image::decode::sniff(&bytes).is_none() {
        let hash = clip_index::content_hash_stream(&bytes, &mut file)?;
        return Ok(FileRead::NotImage(bytes, hash));
    }
    file.read_to_end(&mut bytes)?;
    let hash = content_hash(&bytes);
    Ok(FileRead::Image(bytes, hash))
}

/// Runs `work` in `pool`, or where it is called from.
fn in_pool<R: Send>(pool: Option<&rayon::ThreadPool>, work: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> FileState {
        FileState {
            size: 1,
            mtime_ns: 1,
            hash: Some([7; 32]),
            error: None,
        }
    }

    #[test]
    fn files_under_a_folder_that_cannot_be_listed_are_kept() {
        let tmp = clip_test_support::temp_dir();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(&root).unwrap();
        let r = root.to_str().unwrap().to_string();
        let known: Known = ["a/x.jpg", "a/deep/y.jpg", "ab/z.jpg"]
            .into_iter()
            .map(|p| (format!("{r}/{p}"), row()))
            .collect();
        let mut walked = Walked::default();
        walked.add(
            &known,
            crate::walk::Listing {
                files: Vec::new(),
                unlisted: vec![(root.join("a"), "Permission denied (os error 13)".into())],
            },
        );
        let mut seen: Vec<&str> = walked.seen.iter().map(String::as_str).collect();
        seen.sort();
        assert_eq!(seen, [format!("{r}/a/deep/y.jpg"), format!("{r}/a/x.jpg")]);
        assert_eq!(
            walked.report.skipped,
            [Failure {
                path: format!("{r}/a"),
                error: format!(
                    "cannot read {r}/a: Permission denied (os error 13); \
                     the 2 files indexed there are kept as they are"
                ),
            }]
        );
        assert!(walked.pending.is_empty());
        // So the removal plan drops only what was really seen to be gone.
        let removals = clip_index::plan_removals(
            known.keys().map(String::as_str),
            std::slice::from_ref(&r),
            &walked.seen,
            DEFAULT_MAX_DELETE_SHARE,
            true,
        )
        .unwrap();
        assert_eq!(removals, [format!("{r}/ab/z.jpg")]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn paths_not_in_utf8_are_reported() {
        use std::os::unix::ffi::OsStrExt;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(b"/r/caf\xe9.jpg"));
        let mut walked = Walked::default();
        walked.add(
            &Known::new(),
            crate::walk::Listing {
                // Any metadata: the path is refused before it is looked at.
                files: vec![(path, std::fs::metadata(std::env::temp_dir()).unwrap())],
                unlisted: Vec::new(),
            },
        );
        assert_eq!(walked.report.files, 0);
        assert_eq!(walked.report.skipped.len(), 1);
        assert_eq!(walked.report.skipped[0].path, "/r/caf\u{fffd}.jpg");
        assert!(walked.report.skipped[0].error.contains("not valid UTF-8"));
    }
}

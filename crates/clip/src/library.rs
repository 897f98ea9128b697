//! A photo library indexed for search: scans folders into a [`clip_index::Index`], embedding
//! only new and changed files, and searches it by text, image or both.
//!
//! A scan walks the roots, compares each image file's size and modification time with the
//! index, and reads only the files that differ. A file whose content (blake3) is already
//! indexed (a rename, a copy) reuses its vector; the others are decoded on worker threads
//! while the model embeds the previous batch, and each batch is committed in one transaction,
//! so an interrupted scan loses at most a batch. Files that cannot be decoded are recorded with
//! the reason and retried only when they change (files that could not be read at all, every
//! scan). Files gone from the roots are
//! dropped after the complete scan, under the guard of [`clip_index::plan_removals`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::UNIX_EPOCH;

use clip_index::content_hash;
use rayon::prelude::*;

use crate::eval::Failure;
use crate::{fnv1a, normalized, Clip, ClipError, Pixels, FNV_OFFSET};

pub use clip_index::search::dot;
pub use clip_index::{
    is_under, Change, Hash, Hit, Index, IndexError, IndexInfo, Status, Vectors, WriteLock,
    DEFAULT_MAX_DELETE_SHARE,
};

/// Where the index lives by default: `$CLIP_INDEX`, else `$XDG_DATA_HOME/clip/index.sqlite`,
/// else `~/.local/share/clip/index.sqlite`.
pub fn default_index_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var("CLIP_INDEX") {
        return Some(PathBuf::from(p));
    }
    let data = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("clip").join("index.sqlite"))
}

impl Clip {
    /// What identifies this model's image vectors in an index: its name, a fingerprint of its
    /// configuration and weights (the files' sizes; not where they lie), and one of its
    /// preprocessing.
    pub fn index_info(&self) -> IndexInfo {
        let mut h = fnv1a(self.embedding_dim().to_string().as_bytes(), FNV_OFFSET);
        if self.dir.as_os_str().is_empty() {
            h = fnv1a(format!("random {}", self.name).as_bytes(), h);
        } else {
            if let Ok(config) = std::fs::read(self.dir.join("config.json")) {
                h = fnv1a(&config, h);
            }
            if let Ok(weights) = clip_model::find_weights(&self.dir) {
                for p in weights.paths() {
                    let size = std::fs::metadata(p).map_or(0, |m| m.len());
                    h = fnv1a(&size.to_le_bytes(), h);
                }
            }
        }
        let pre = fnv1a(
            format!("{:?}", self.preprocess_config()).as_bytes(),
            FNV_OFFSET,
        );
        IndexInfo {
            model: self.name.clone(),
            fingerprint: format!("{h:016x}"),
            preprocess: format!("{pre:016x}"),
            dim: self.embedding_dim(),
        }
    }
}

/// How a scan may change the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanOptions {
    /// Delete whatever is gone, however much.
    pub allow_mass_delete: bool,
    /// The share of the indexed files under the roots a scan may delete without
    /// `allow_mass_delete`.
    pub max_delete_share: f64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            allow_mass_delete: false,
            max_delete_share: DEFAULT_MAX_DELETE_SHARE,
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

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
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
                    detail: "library root is unavailable (not a folder); nothing was changed"
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
        roots.retain(|r| !all.iter().any(|o| clip_index::is_under(r, o)));
        let known = index.files()?;
        let mut report = ScanReport::default();
        let mut seen = HashSet::new();
        let mut pending = Vec::new();
        for root in &roots {
            for path in crate::dataset::image_files(Path::new(root))? {
                let Some(text) = path.to_str() else {
                    tracing::warn!("skipping {}: the path is not valid UTF-8", path.display());
                    continue;
                };
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue; // gone since the walk
                };
                report.files += 1;
                let (size, mtime) = (meta.len(), mtime_ns(&meta));
                seen.insert(text.to_string());
                match known.get(text) {
                    // A file that could not even be read (no hash: permissions, I/O) is tried
                    // again every scan, since fixing that does not change its size or time.
                    Some(k) if k.size == size && k.mtime_ns == mtime && k.hash.is_some() => {
                        if k.error.is_some() {
                            report.failed_before += 1;
                        } else {
                            report.unchanged += 1;
                        }
                    }
                    _ => pending.push(Pending {
                        path: text.to_string(),
                        size,
                        mtime_ns: mtime,
                    }),
                }
            }
        }
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
        let vectors = index.vector_hashes()?;
        self.embed_pending(index, pending, &vectors, &mut report, progress)?;
        report.removed = removals.len();
        index.finish_scan(&removals, &roots)?;
        Ok(report)
    }

    /// Reads, hashes and decodes the pending files on worker threads, one batch ahead of the
    /// model, and commits each batch.
    fn embed_pending(
        &self,
        index: &mut Index,
        pending: Vec<Pending>,
        vectors: &HashSet<Hash>,
        report: &mut ScanReport,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<(), ClipError> {
        let batch = self.batch_size;
        let mut batches: Vec<Vec<Pending>> = Vec::new();
        let mut it = pending.into_iter().peekable();
        while it.peek().is_some() {
            batches.push(it.by_ref().take(batch).collect());
        }
        let prepare = |p: Pending| -> Prepared {
            let bytes = match std::fs::read(&p.path) {
                Ok(b) => b,
                Err(e) => {
                    let error = format!("cannot read {}: {e}", p.path);
                    return Prepared::Fail(p, None, error);
                }
            };
            let hash = content_hash(&bytes);
            if vectors.contains(&hash) {
                return Prepared::Reuse(p, hash);
            }
            match self.load_image_bytes(&bytes, &p.path) {
                Ok(pixels) => Prepared::Embed(p, hash, pixels),
                Err(e) => {
                    let error = e.to_string();
                    Prepared::Fail(p, Some(hash), error)
                }
            }
        };
        std::thread::scope(|scope| -> Result<(), ClipError> {
            // One prepared batch waits while the model runs on the previous one.
            let (tx, rx) = mpsc::sync_channel::<Vec<Prepared>>(1);
            let worker = scope.spawn(move || {
                for b in batches {
                    let prepared: Vec<Prepared> = b.into_par_iter().map(prepare).collect();
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

/// One part of a search query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryTerm {
    /// A text, embedded by the text tower.
    Text(String),
    /// An image file, embedded by the vision tower (or taken from the index when it is there).
    Image(PathBuf),
}

impl Clip {
    /// The query vector of weighted terms: the sum of each term's unit embedding times its
    /// weight (negative weights push results away from a term), normalized.
    pub fn query_vector(
        &self,
        terms: &[(QueryTerm, f32)],
        index: Option<&Vectors>,
        truncate: bool,
    ) -> Result<Vec<f32>, ClipError> {
        let mut q = vec![0f32; self.embedding_dim()];
        for (term, weight) in terms {
            let e = match term {
                QueryTerm::Text(t) => {
                    let tokens = self.tokenize(t, truncate)?;
                    self.encode_text(&[tokens])?.remove(0)
                }
                QueryTerm::Image(path) => {
                    let stored = path
                        .canonicalize()
                        .ok()
                        .and_then(|c| c.to_str().map(String::from))
                        .and_then(|c| index.and_then(|v| v.find(&c).map(|i| v.vector(i).to_vec())));
                    match stored {
                        Some(v) => v,
                        None => self.encode_image(&[self.load_image(path)?])?.remove(0),
                    }
                }
            };
            for (a, b) in q.iter_mut().zip(normalized(&e)) {
                *a += weight * b;
            }
        }
        let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm < 1e-4 {
            return Err(ClipError::Query {
                detail: "the terms cancel out (e.g. \"cat -cat\"), leaving nothing to look for"
                    .into(),
            });
        }
        Ok(normalized(&q))
    }
}

/// Loads every vector of an index for searching.
pub fn load_vectors(index: &Index) -> Result<Vectors, ClipError> {
    Ok(Vectors::new(index.embeddings()?, index.info().dim))
}

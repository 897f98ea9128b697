//! Scans: the folders' image files compared with the index, new and changed files read,
//! decoded and embedded, gone files removed under the guard.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use clip_index::content_hash;
use rayon::prelude::*;

use super::{is_under, mtime_ns, Change, FileState, Hash, Index, DEFAULT_MAX_DELETE_SHARE};
use crate::batch::Failure;
use crate::walk::Excludes;
use crate::{normalized, Clip, ClipError, DecodeLimits, Pixels};

/// How a scan may change the index.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanOptions {
    /// Delete whatever is gone, and drop whatever the exclusions leave out, however much.
    pub allow_mass_delete: bool,
    /// The share of the indexed files under the roots a scan may delete (or its exclusions
    /// drop) without `allow_mass_delete`.
    pub max_delete_share: f64,
    /// Threads of a pool of their own for reading and decoding files. `None`: decode on the
    /// compute pool, shared with the model (best when the model has every core: decoding
    /// fills its gaps); `Some(n)` suits a model given fewer threads than there are cores.
    pub decode_threads: Option<usize>,
    /// Record the roots as folders of the index (rescanned by a scan given none). `false`
    /// brings the files under them up to date without that: for a subfolder of a root, say.
    pub add_roots: bool,
    /// Patterns of folders and files to leave out, added to the index's exclusions (kept for
    /// later scans; the syntax is [`Excludes`](crate::walk::Excludes)'). A path to a folder
    /// or file is resolved first ([`resolve_pattern`](crate::walk::resolve_pattern): relative
    /// to the working folder when it names nothing under the roots); a folder of the index
    /// itself is refused ([`ClipError::ExcludeRoot`]). What is indexed there is dropped by
    /// this scan, under the guard of [`clip_index::check_exclusions`].
    pub exclude: Vec<String>,
    /// Patterns to take out of the index's exclusions: as stored, or a path that names a
    /// stored one ([`find_pattern`](crate::walk::find_pattern): the absolute path of a
    /// folder `forget` left out, given relative to the working folder or not).
    pub unexclude: Vec<String>,
    /// Turns the default exclusions ([`DEFAULT_EXCLUDES`](crate::walk::DEFAULT_EXCLUDES)) on
    /// or off for this index, this scan and later ones; `None` leaves them as they are (on,
    /// unless turned off).
    pub default_excludes: Option<bool>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            allow_mass_delete: false,
            max_delete_share: DEFAULT_MAX_DELETE_SHARE,
            decode_threads: None,
            add_roots: true,
            exclude: Vec::new(),
            unexclude: Vec::new(),
            default_excludes: None,
        }
    }
}

/// What a scan found and did. Each image file found counts once in `unchanged`,
/// `failed_before`, `embedded`, `moved`, `reused` or `failed`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ScanReport {
    /// Image files under the roots (without those left out by the exclusions).
    pub files: usize,
    /// Unchanged since the last scan: not read, or read and found with the content indexed
    /// for it (a file only touched: a new modification time, the same bytes).
    pub unchanged: usize,
    /// Embedded by the model.
    pub embedded: usize,
    /// Renamed or moved: the content of a file gone from its old path, found at a new one
    /// (its vector is reused, the old path dropped without counting as removed).
    pub moved: usize,
    /// Given the vector of identical content already indexed or kept from a removed file
    /// (copies, files moved out of the folders and back), without a file gone to pair with.
    pub reused: usize,
    /// Failed in this scan (recorded in the index).
    pub failed: Vec<Failure>,
    /// Not looked at: subfolders and files that could not be listed or examined (what is
    /// indexed there is kept as it is), paths that are not valid UTF-8, and symbolic links
    /// named like images whose target does not exist.
    pub skipped: Vec<Failure>,
    /// Known failures not retried because the files did not change.
    pub failed_before: usize,
    /// Removed from the index because they are gone (moved files not counted).
    pub removed: usize,
    /// Removed from the index because the exclusions now leave them out.
    pub excluded: usize,
    /// Folders and files the exclusions left out of the walk (each counted once, not what
    /// a folder holds).
    pub left_out: usize,
    /// Files not read because their extension is not an image's, by extension in lower case
    /// without the dot (`""` for none): `{"heic": 120, "mov": 30}`.
    pub skipped_by_extension: BTreeMap<String, usize>,
    /// Failures (in `failed`) of images over the decode limits that a larger pixel budget
    /// would let in ([`ImageError::budget_helps`](clip_preprocess::ImageError::budget_helps)).
    pub too_large: usize,
    /// Patterns of [`ScanOptions::exclude`] given as paths, each with what the index keeps
    /// ([`resolve_pattern`](crate::walk::resolve_pattern)): (as given, as kept).
    pub excludes_resolved: Vec<(String, String)>,
    /// Patterns this scan added to the exclusions (as kept) that left out nothing: no folder
    /// or file met under the roots, no indexed file. A mistyped pattern, or a path outside
    /// the folders.
    pub excludes_unmatched: Vec<String>,
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
    /// The content hash the index holds for this path, if any.
    indexed: Option<Hash>,
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

    /// Compares one root's listing with the index's rows. Known failures are read again
    /// when `retry_failed` (the decode limits were raised).
    fn add(&mut self, known: &Known, listing: crate::walk::Listing, retry_failed: bool) {
        self.report.left_out += listing.left_out;
        for (ext, n) in listing.other_files {
            *self.report.skipped_by_extension.entry(ext).or_default() += n;
        }
        for (path, error) in listing.unlisted {
            // What is there is unknown: keep what is indexed there, as if seen.
            let path = path.to_string_lossy().into_owned();
            self.keep(known, &path, &error.to_string());
        }
        // A link to nothing is not a photo now: reported, and what is indexed at its path
        // goes as gone (under the guard).
        for (path, target) in listing.dangling {
            let path = path.to_string_lossy().into_owned();
            self.report.skipped.push(Failure {
                error: format!(
                    "skipping {path}: a symbolic link to {}, which does not exist",
                    target.display()
                ),
                path,
            });
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
                Some(k)
                    if k.size == size
                        && k.mtime_ns == mtime
                        && k.hash.is_some()
                        && !(retry_failed && k.error.is_some()) =>
                {
                    if k.error.is_some() {
                        self.report.failed_before += 1;
                    } else {
                        self.report.unchanged += 1;
                    }
                }
                k => self.pending.push(Pending {
                    path: text.to_string(),
                    size,
                    mtime_ns: mtime,
                    indexed: k.and_then(|k| k.hash.filter(|_| k.error.is_none())),
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
                        "not a folder (folders of photos are expected); nothing was changed"
                    } else {
                        "folder unavailable (no such folder); nothing was changed"
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
        let index_roots = index.roots()?;
        // A folder's base: the outermost folder of the index (or of this scan) holding it,
        // which the exclusions' relative patterns start from.
        let base_of = |r: &String| {
            index_roots
                .iter()
                .chain(&roots)
                .filter(|o| *o == r || is_under(r, o))
                .min_by_key(|o| o.len())
                .unwrap_or(r)
                .clone()
        };
        let bases: Vec<String> = roots.iter().map(base_of).collect();
        // The exclusions: checked before anything is read, stored once the scan may go on.
        let plan = plan_exclusions(index, options, &roots, &index_roots)?;
        let excludes = &plan.excludes;
        // A folder the exclusions leave out is refused (also one given with a folder above
        // it): what it holds would be dropped again by the next scan of the folder above. A
        // folder of the index inside another is walked with it (a rescan of the index's
        // folders must not stop at one that an earlier version let in).
        let nested_index_root = |r: &String| !roots.contains(r) && index_roots.contains(r);
        for root in all.iter().filter(|r| !nested_index_root(r)) {
            let base = base_of(root);
            if let Some(pattern) = excludes.covering(&base, root) {
                return Err(ClipError::ExcludedFolder {
                    folder: root.clone(),
                    pattern: pattern.to_string(),
                    root: base,
                    default: crate::walk::is_default_exclude(pattern)
                        && !plan.patterns.iter().any(|p| p == pattern),
                });
            }
        }
        // Failures recorded under smaller decode limits are tried again.
        let limits = limits_key(&self.limits);
        let retry_failed = limits_grew(index.setting(LIMITS_SETTING)?.as_deref(), &self.limits);
        let known: Known = index.files()?.into_iter().collect();
        let mut walked = Walked::default();
        let mut used: HashSet<String> = HashSet::new();
        for (root, base) in roots.iter().zip(&bases) {
            let listing =
                crate::walk::image_files_listing_in(Path::new(base), Path::new(root), excludes)?;
            used.extend(listing.left_out_by.keys().cloned());
            walked.add(&known, listing, retry_failed);
        }
        let Walked {
            mut report,
            mut seen,
            pending,
        } = walked;
        // Indexed files the exclusions now leave out: dropped, under a guard of their own
        // (a pattern such as `*` would empty the index).
        let root_of = |p: &str| roots.iter().position(|r| is_under(p, r));
        let mut excluded: Vec<String> = Vec::new();
        let mut total = 0;
        for p in known.keys() {
            let Some(r) = root_of(p) else { continue };
            total += 1;
            if let Some(pattern) = excludes.covering(&bases[r], p) {
                used.insert(pattern.to_string());
                excluded.push(p.clone());
            }
        }
        clip_index::check_exclusions(
            excluded.len(),
            total,
            &roots,
            options.max_delete_share,
            options.allow_mass_delete,
        )?;
        let excluded_set: HashSet<&str> = excluded.iter().map(String::as_str).collect();
        let indexed: Vec<&str> = known
            .keys()
            .map(String::as_str)
            .filter(|p| !excluded_set.contains(p))
            .collect();
        let gone: Vec<&str> = indexed
            .iter()
            .copied()
            .filter(|p| root_of(p).is_some() && !seen.contains(*p))
            .collect();
        // Decide before any work whether this scan may delete what it did not see, counting
        // a gone file as moved when a new file has its size (a folder renamed is no mass
        // deletion); once the files are read, the moves are known and this is decided again.
        let mut presumed = seen.clone();
        presumed.extend(presumed_moves(&gone, &known, &pending));
        clip_index::plan_removals(
            indexed.iter().copied(),
            &roots,
            &presumed,
            options.max_delete_share,
            options.allow_mass_delete,
        )?;
        drop(presumed);
        plan.store(index)?;
        report.excludes_resolved = plan.resolved.clone();
        report.excludes_unmatched = plan
            .added
            .iter()
            .filter(|p| !used.contains(*p))
            .cloned()
            .collect();
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
        let outcomes = self.embed_pending(
            index,
            pending,
            &vectors,
            pool.as_ref(),
            &mut report,
            progress,
        )?;
        // A gone file whose content turned up at a new path moved: its old row goes with
        // it, and it is neither reused nor removed.
        let moves = find_moves(&gone, &known, &outcomes);
        report.moved = moves.reused;
        report.reused -= moves.reused;
        seen.extend(moves.paths.iter().cloned());
        let removals = clip_index::plan_removals(
            indexed.iter().copied(),
            &roots,
            &seen,
            options.max_delete_share,
            options.allow_mass_delete,
        )?;
        report.removed = removals.len();
        report.excluded = excluded.len();
        let mut dropped = removals;
        dropped.extend(moves.paths);
        dropped.extend(excluded);
        if index_roots
            .iter()
            .all(|r| roots.iter().any(|s| r == s || is_under(r, s)))
        {
            index.set_setting(LIMITS_SETTING, &limits)?;
        }
        index.finish_scan(&dropped)?;
        Ok(report)
    }

    /// Reads, hashes and decodes the pending files on worker threads (`pool`, or the compute
    /// pool), one batch ahead of the model, and commits each batch. Returns the content hash
    /// of each file read that reused a vector (`true`) or failed (`false`).
    fn embed_pending(
        &self,
        index: &mut Index,
        pending: Vec<Pending>,
        vectors: &HashSet<Hash>,
        pool: Option<&rayon::ThreadPool>,
        report: &mut ScanReport,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<Vec<(Hash, bool)>, ClipError> {
        let mut outcomes = Vec::new();
        let batch = self.batch_size;
        let mut batches: Vec<Vec<Pending>> = Vec::new();
        let mut it = pending.into_iter().peekable();
        while it.peek().is_some() {
            batches.push(it.by_ref().take(batch).collect());
        }
        // Content first met in this scan: by which file, and the decoding error if it failed
        // (and whether it was over the decode limits). An identical file (a copy) is not
        // decoded or embedded again.
        type Outcome = Option<(String, bool)>;
        let first: Mutex<HashMap<Hash, (String, Outcome)>> = Mutex::default();
        let too_large = &std::sync::atomic::AtomicUsize::new(0);
        // Only what a larger pixel budget would let in counts: the hint offers one.
        let over_limits = |e: &ClipError| {
            let over = matches!(e, ClipError::Image(e) if e.budget_helps());
            if over {
                too_large.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            over
        };
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
                let e = ClipError::from(e);
                over_limits(&e);
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
                    let over = over_limits(&e);
                    let error = e.to_string();
                    claims().insert(hash, (p.path.clone(), Some((error.clone(), over))));
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
                            Some((original, Some((error, over)))) => {
                                if *over {
                                    too_large.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
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
                            // The content indexed for this very path: a file only touched.
                            if p.indexed == Some(hash) {
                                report.unchanged += 1;
                            } else {
                                report.reused += 1;
                                outcomes.push((hash, true));
                            }
                            changes.push(Change::Reused {
                                path: p.path,
                                size: p.size,
                                mtime_ns: p.mtime_ns,
                                hash,
                            });
                        }
                        Prepared::Fail(p, hash, error) => {
                            if let Some(h) = hash {
                                outcomes.push((h, false));
                            }
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
            report.too_large += too_large.load(std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })?;
        Ok(outcomes)
    }
}

/// The setting under which an index keeps the decode limits of its last complete scan.
const LIMITS_SETTING: &str = "decode_limits";

/// `limits` as kept in the index: the sides and the pixel budget.
fn limits_key(limits: &DecodeLimits) -> String {
    format!(
        "{} {} {} {}",
        limits.max_width, limits.max_height, limits.max_pixels, limits.max_alloc_bytes
    )
}

/// Whether `limits` allow something that the limits `kept` (of the last scan; the defaults
/// when none were kept) did not.
fn limits_grew(kept: Option<&str>, limits: &DecodeLimits) -> bool {
    let default = DecodeLimits::default();
    let before: Vec<u64> = match kept {
        Some(k) => k.split(' ').filter_map(|v| v.parse().ok()).collect(),
        None => Vec::new(),
    };
    let before = match before[..] {
        [w, h, p, a] => [w, h, p, a],
        _ => [
            default.max_width.into(),
            default.max_height.into(),
            default.max_pixels,
            default.max_alloc_bytes,
        ],
    };
    let now = [
        limits.max_width.into(),
        limits.max_height.into(),
        limits.max_pixels,
        limits.max_alloc_bytes,
    ];
    now.iter().zip(before).any(|(n, b)| *n > b)
}

/// The exclusions of a scan: what it leaves out, and the change to store.
struct ExclusionPlan {
    /// What the scan leaves out.
    excludes: Excludes,
    /// The index's patterns after the change.
    patterns: Vec<String>,
    /// Patterns to add, as kept (resolved), not stored before.
    added: Vec<String>,
    /// Stored patterns to take out.
    removed: Vec<String>,
    /// The default exclusions on or off, when that changes.
    defaults: Option<bool>,
    /// Patterns given as paths: (as given, as kept).
    resolved: Vec<(String, String)>,
}

impl ExclusionPlan {
    /// Stores the change in the index.
    fn store(&self, index: &mut Index) -> Result<(), ClipError> {
        if !self.added.is_empty() || !self.removed.is_empty() || self.defaults.is_some() {
            index.update_exclusions(&self.added, &self.removed, self.defaults)?;
        }
        Ok(())
    }
}

/// Checks the exclusions `options` add and take out (patterns given as paths resolved, a
/// folder of the index or of the scan refused, a pattern to take out found among those
/// stored) and returns what the scan leaves out, without storing anything yet.
fn plan_exclusions(
    index: &Index,
    options: &ScanOptions,
    roots: &[String],
    index_roots: &[String],
) -> Result<ExclusionPlan, ClipError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let stored = index.exclusions()?;
    let all_roots: Vec<String> = roots.iter().chain(index_roots).cloned().collect();
    let mut added = Vec::new();
    let mut resolved = Vec::new();
    for given in &options.exclude {
        let kept = crate::walk::resolve_pattern(given, &all_roots, &cwd);
        Excludes::check(&kept)?;
        let path = kept.trim_end_matches('/');
        if let Some(root) = all_roots.iter().find(|r| r.as_str() == path) {
            return Err(ClipError::ExcludeRoot {
                pattern: given.clone(),
                root: root.clone(),
            });
        }
        if kept != *given {
            resolved.push((given.clone(), kept.clone()));
        }
        if !stored.patterns.contains(&kept) && !added.contains(&kept) {
            added.push(kept);
        }
    }
    let mut removed: Vec<String> = Vec::new();
    for given in &options.unexclude {
        if added.contains(given) {
            continue;
        }
        match crate::walk::find_pattern(given, &stored.patterns, &cwd) {
            Some(p) => removed.push(p.clone()),
            None if crate::walk::is_default_exclude(given) => {
                return Err(ClipError::DefaultExclusion {
                    pattern: given.clone(),
                })
            }
            None => {
                return Err(ClipError::NotExcluded {
                    pattern: given.clone(),
                    patterns: stored.patterns.clone(),
                })
            }
        }
    }
    // Taking out and adding the same pattern in one scan: it stays.
    removed.retain(|p| !options.exclude.contains(p) && !added.contains(p));
    let patterns: Vec<String> = stored
        .patterns
        .iter()
        .filter(|p| !removed.contains(p))
        .chain(&added)
        .cloned()
        .collect();
    let defaults = options.default_excludes.filter(|d| *d != stored.defaults);
    let excludes = Excludes::new(&patterns, defaults.unwrap_or(stored.defaults))?;
    Ok(ExclusionPlan {
        excludes,
        patterns,
        added,
        removed,
        defaults,
        resolved,
    })
}

/// Gone files that may have moved: as many of each size as there are new files of that
/// size. Only for the guard before the files are read; [`find_moves`] finds the real ones.
fn presumed_moves(gone: &[&str], known: &Known, pending: &[Pending]) -> Vec<String> {
    let mut sizes: HashMap<u64, usize> = HashMap::new();
    for p in pending {
        *sizes.entry(p.size).or_default() += 1;
    }
    let mut out = Vec::new();
    for g in gone {
        if let Some(n) = known.get(*g).and_then(|k| sizes.get_mut(&k.size)) {
            if *n > 0 {
                *n -= 1;
                out.push(g.to_string());
            }
        }
    }
    out
}

/// The moves a scan found.
#[derive(Debug, Default, PartialEq)]
struct Moves {
    /// The old paths of the files moved, whose rows are to go.
    paths: Vec<String>,
    /// How many of them reused their vector (the others are failures that moved).
    reused: usize,
}

/// Pairs the gone files with the files read in this scan (`outcomes`: content hash, and
/// whether it reused a vector or failed) by content: each gone file with at most one.
fn find_moves(gone: &[&str], known: &Known, outcomes: &[(Hash, bool)]) -> Moves {
    let mut by_hash: HashMap<Hash, Vec<&str>> = HashMap::new();
    for g in gone.iter().rev() {
        if let Some(h) = known.get(*g).and_then(|k| k.hash) {
            by_hash.entry(h).or_default().push(g);
        }
    }
    let mut moves = Moves::default();
    for (hash, reused) in outcomes {
        if let Some(old) = by_hash.get_mut(hash).and_then(Vec::pop) {
            moves.paths.push(old.to_string());
            moves.reused += usize::from(*reused);
        }
    }
    moves
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
                unlisted: vec![(root.join("a"), "Permission denied (os error 13)".into())],
                ..Default::default()
            },
            false,
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
                ..Default::default()
            },
            false,
        );
        assert_eq!(walked.report.files, 0);
        assert_eq!(walked.report.skipped.len(), 1);
        assert_eq!(walked.report.skipped[0].path, "/r/caf\u{fffd}.jpg");
        assert!(walked.report.skipped[0].error.contains("not valid UTF-8"));
    }

    #[test]
    fn moves_pair_each_gone_file_once_by_content() {
        let state = |size: u64, hash: u8| FileState {
            size,
            mtime_ns: 1,
            hash: Some([hash; 32]),
            error: None,
        };
        let known: Known = [
            ("/r/a.jpg", state(10, 1)),
            ("/r/b.jpg", state(10, 1)),
            ("/r/c.jpg", state(20, 2)),
            ("/r/d.jpg", state(30, 3)),
        ]
        .into_iter()
        .map(|(p, s)| (p.to_string(), s))
        .collect();
        let gone = ["/r/a.jpg", "/r/b.jpg", "/r/c.jpg", "/r/d.jpg"];
        // Three copies of a's content, one of c's that failed; d's content is not met.
        let outcomes = [
            ([1; 32], true),
            ([1; 32], true),
            ([1; 32], true),
            ([2; 32], false),
        ];
        let moves = find_moves(&gone, &known, &outcomes);
        assert_eq!(moves.reused, 2);
        assert_eq!(moves.paths, ["/r/a.jpg", "/r/b.jpg", "/r/c.jpg"]);
        // Before reading, sizes alone: at most one gone file per new file of that size.
        let pending = |size| Pending {
            path: String::new(),
            size,
            mtime_ns: 0,
            indexed: None,
        };
        let presumed = presumed_moves(&gone, &known, &[pending(10), pending(30), pending(5)]);
        assert_eq!(presumed, ["/r/a.jpg", "/r/d.jpg"]);
    }

    #[test]
    fn failures_are_retried_when_the_decode_limits_grow() {
        let default = DecodeLimits::default();
        let budget = default.with_max_megapixels(100.0);
        assert!(!limits_grew(None, &default));
        assert!(limits_grew(None, &budget));
        assert!(!limits_grew(Some(&limits_key(&budget)), &budget));
        // Back from a budget of as many pixels: nothing new can be read.
        assert!(!limits_grew(Some(&limits_key(&budget)), &default));
        // From a smaller budget, a 60-megapixel square can.
        let small = default.with_max_megapixels(50.0);
        assert!(limits_grew(Some(&limits_key(&small)), &default));
        assert!(!limits_grew(Some("garbage"), &default));
    }
}

//! Near-duplicate photos, reported so that a person can choose which to keep.
//!
//! A group is a set of photos every two of which are at least a threshold similar (complete
//! linkage, [`Vectors::near_duplicates`]): a burst in which each shot looks like the next does
//! not become one group whose first and last shots differ. Each group names a representative,
//! the photo most similar to the others, and gives each member its similarity to it, its size,
//! resolution (read from the file's header) and modification time; members with the same
//! content (the stored blake3 hash) are marked identical. Names of one file (a symbolic link
//! to a photo, or a hard link) are one member with its other names listed, never copies.
//!
//! Folders are looked up in an index ([`split_folders`]): those under its folders are compared
//! from it, others (and those its exclusions leave out) are embedded into an index in memory
//! ([`Index::in_memory`], seeded with what the index already holds there, [`seed`]) so that
//! comparing them adds nothing to the search index. Patterns to leave out for one run are
//! applied to the photos compared ([`find_duplicates_except`]), never stored.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::{
    canonical_roots, dot, is_at_or_under, is_under, mtime_ns, Change, Hash, Index, Vectors,
};
use crate::batch::Failure;
use crate::walk::Excludes;
use crate::ClipError;

/// A group of near-duplicate photos.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicateGroup {
    /// The least similarity (cosine of the embeddings) between two photos of the group: at
    /// least the threshold.
    pub min_similarity: f32,
    /// The photos: the representative first, then by similarity to it, most similar first
    /// (equal ones in path order).
    pub members: Vec<Member>,
}

/// One photo of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// The file (of its names, the first that is no link).
    pub path: String,
    /// Whether this is the group's representative: the photo with the highest summed
    /// similarity to the others (the first in path order among equals).
    pub representative: bool,
    /// Cosine similarity to the representative (1 for the representative).
    pub similarity: f32,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Width in pixels, upright (EXIF orientation applied); `None` when the header cannot be
    /// read.
    pub width: Option<u32>,
    /// Height in pixels, upright; `None` when the header cannot be read.
    pub height: Option<u32>,
    /// Modification time, RFC 3339 in UTC to the second (`None` where the system has none).
    pub modified: Option<String>,
    /// An earlier member of the group with the same content (byte for byte), if any. Never
    /// set for a file changed since it was indexed (its stored hash is of the old content).
    pub identical_to: Option<String>,
    /// Whether the file's size or modification time differ from the index's: its similarity
    /// is that of the content indexed then (`clip duplicates --no-scan` compares the index as
    /// it is).
    pub changed_since_indexed: bool,
    /// Other names of this same file among the photos compared: symbolic links to it, hard
    /// links. Removing a name frees nothing while another remains.
    pub links: Vec<String>,
}

/// What [`find_duplicates`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Duplicates {
    /// How many photos were compared.
    pub compared: usize,
    /// The groups, in the order of their first photo's path.
    pub groups: Vec<DuplicateGroup>,
    /// Photos left out because they cannot be looked at now (gone since they were indexed).
    pub skipped: Vec<Failure>,
}

/// Refuses a threshold that is not a similarity above 0 and at most 1.
pub fn check_threshold(threshold: f32) -> Result<f32, ClipError> {
    if threshold > 0.0 && threshold <= 1.0 {
        Ok(threshold)
    } else {
        Err(ClipError::Threshold { value: threshold })
    }
}

/// Folders to look for duplicates in, split by where their photos' vectors come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folders {
    /// At or under a folder of the index, and not left out by its exclusions: its photos are
    /// (brought up to date and) compared from the index. Absolute, links resolved.
    pub indexed: Vec<PathBuf>,
    /// Anywhere else: embedded for this run only (absolute, links resolved).
    pub elsewhere: Vec<PathBuf>,
    /// The folders of `elsewhere` that lie under a folder of the index, with the exclusion
    /// that leaves each out.
    pub left_out: Vec<(PathBuf, String)>,
}

/// Splits `folders` into those at or under a folder of `index` and the others; a folder
/// under one of the index's folders that its exclusions leave out (a NAS's `@eaDir`, a
/// folder `forget` dropped) counts as elsewhere, so that comparing it never adds it to the
/// index. Each must be a folder ([`canonical_roots`] refuses others before anything is done).
pub fn split_folders(index: Option<&Index>, folders: &[PathBuf]) -> Result<Folders, ClipError> {
    let canonical = canonical_roots(folders)?;
    let (roots, excludes) = match index {
        Some(index) => {
            let stored = index.exclusions()?;
            (
                index.roots()?,
                Excludes::new(&stored.patterns, stored.defaults)?,
            )
        }
        None => (Vec::new(), Excludes::none()),
    };
    let mut split = Folders::default();
    for folder in canonical {
        // The outermost folder of the index holding it: where the exclusions start from.
        let root = roots
            .iter()
            .filter(|r| is_at_or_under(&folder, r))
            .min_by_key(|r| r.len());
        let path = PathBuf::from(&folder);
        match root.map(|r| excludes.covering(r, &folder)) {
            Some(None) => split.indexed.push(path),
            Some(Some(pattern)) => {
                split.left_out.push((path.clone(), pattern.to_string()));
                split.elsewhere.push(path);
            }
            None => split.elsewhere.push(path),
        }
    }
    Ok(split)
}

impl Folders {
    /// Refuses folders outside the index at `index` ([`ClipError::NotIndexed`]), for a run
    /// that may only read the index.
    pub fn indexed_only(&self, index: &Path) -> Result<(), ClipError> {
        match self.elsewhere.first() {
            None => Ok(()),
            Some(folder) => Err(ClipError::NotIndexed {
                folder: folder.display().to_string(),
                index: index.display().to_string(),
                left_out_by: self
                    .left_out
                    .iter()
                    .find(|(f, _)| f == folder)
                    .map(|(_, p)| p.clone()),
            }),
        }
    }
}

/// Patterns to leave out of one run ([`find_duplicates_except`]), checked, each a path
/// resolved as [`resolve_pattern`](crate::walk::resolve_pattern) resolves one (relative to
/// the working folder when it names nothing under `folders`, the folders compared). Returns
/// the patterns as resolved, and what they leave out.
pub fn run_excludes(
    patterns: &[String],
    folders: &[PathBuf],
) -> Result<(Vec<String>, Excludes), ClipError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let folders: Vec<String> = folders
        .iter()
        .filter_map(|f| f.to_str().map(String::from))
        .collect();
    let resolved: Vec<String> = patterns
        .iter()
        .map(|p| crate::walk::resolve_pattern(p, &folders, &cwd))
        .collect();
    let excludes = Excludes::new(&resolved, false)?;
    Ok((resolved, excludes))
}

/// Copies into `into` the rows of `from` at or under `folders` (each file's size, time, hash,
/// vector or failure), so that a scan of `into` reads only what `from` does not hold up to
/// date. Returns how many files were copied. Both must hold the same model's vectors.
pub fn seed(into: &mut Index, from: &Index, folders: &[PathBuf]) -> Result<usize, ClipError> {
    let folders: Vec<&str> = folders.iter().filter_map(|f| f.to_str()).collect();
    let under = |p: &str| folders.iter().any(|f| is_at_or_under(p, f));
    let files = from.files()?;
    let vectors = from.vectors()?;
    let mut changes = Vec::new();
    for (path, state) in files.into_iter().filter(|(p, _)| under(p)) {
        let change = match (&state.error, state.hash, vectors.find(&path)) {
            (None, Some(hash), Some(row)) => Change::Embedded {
                path,
                size: state.size,
                mtime_ns: state.mtime_ns,
                hash,
                embedding: vectors.vector(row).to_vec(),
            },
            (Some(error), hash, _) => Change::Failed {
                path,
                size: state.size,
                mtime_ns: state.mtime_ns,
                hash,
                error: error.clone(),
            },
            // A row without its vector: left for the scan to read.
            _ => continue,
        };
        changes.push(change);
    }
    into.apply(&changes)?;
    Ok(changes.len())
}

/// One photo to compare: where it is, and how the index saw it.
struct Photo {
    path: String,
    indexed: Option<Indexed>,
}

/// A file as the index last saw it: size, modification time, content hash.
#[derive(Clone, Copy)]
struct Indexed {
    size: u64,
    mtime_ns: i64,
    hash: Option<Hash>,
}

/// Groups of near-duplicate photos (every two at least `threshold` similar) among the photos
/// of each index at or under its folders (all of its photos when the list is empty). A path
/// in several indexes is taken from the first. Members are looked at on disk (size, time,
/// header, which names are one file); those that cannot be are left out and reported in
/// [`Duplicates::skipped`], and a group left with one file is dropped.
pub fn find_duplicates(
    sources: &[(&Index, &[PathBuf])],
    threshold: f32,
) -> Result<Duplicates, ClipError> {
    find_duplicates_except(sources, threshold, &Excludes::none())
}

/// [`find_duplicates`] without the photos `except` leaves out, for this run only (the
/// indexes are not changed): its relative patterns are matched from each folder compared
/// (from each of an index's folders when its list is empty).
pub fn find_duplicates_except(
    sources: &[(&Index, &[PathBuf])],
    threshold: f32,
    except: &Excludes,
) -> Result<Duplicates, ClipError> {
    let threshold = check_threshold(threshold)?;
    let mut photos: Vec<Photo> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut parts: Vec<(Vectors, Vec<usize>)> = Vec::new();
    let mut dim = None;
    for (index, folders) in sources {
        let folders: Vec<&str> = folders.iter().filter_map(|f| f.to_str()).collect();
        let bases: Vec<String> = if folders.is_empty() {
            index.roots()?
        } else {
            folders.iter().map(|f| f.to_string()).collect()
        };
        let left_out = |path: &str| {
            bases
                .iter()
                .any(|b| is_under(path, b) && except.covers(b, path))
        };
        let vectors = index.vectors()?;
        if *dim.get_or_insert(vectors.dim()) != vectors.dim() {
            return Err(clip_index::IndexError::Dimension {
                path: index.path().display().to_string(),
                got: vectors.dim(),
                dim: dim.unwrap_or_default(),
            }
            .into());
        }
        let files = index.files()?;
        let mut rows = Vec::new();
        for row in 0..vectors.len() {
            let path = vectors.path(row);
            let wanted = folders.is_empty() || folders.iter().any(|f| is_at_or_under(path, f));
            if wanted && !left_out(path) && seen.insert(path.to_string()) {
                rows.push(row);
                photos.push(Photo {
                    path: path.to_string(),
                    indexed: files.get(path).map(|f| Indexed {
                        size: f.size,
                        mtime_ns: f.mtime_ns,
                        hash: f.hash,
                    }),
                });
            }
        }
        parts.push((vectors, rows));
    }
    // One index's vectors are used in place; several are gathered into one set, in path
    // order (as the photos are).
    let (vectors, rows) = if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        let dim = dim.unwrap_or(0);
        let mut all: Vec<(&str, &[f32])> = parts
            .iter()
            .flat_map(|(v, rows)| rows.iter().map(move |&r| (v.path(r), v.vector(r))))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        let paths: Vec<String> = all.iter().map(|(p, _)| p.to_string()).collect();
        let mut data = Vec::with_capacity(all.len() * dim);
        for (_, v) in &all {
            data.extend_from_slice(v);
        }
        drop(all);
        drop(parts);
        photos.sort_by(|a, b| a.path.cmp(&b.path));
        let n = paths.len();
        (Vectors::from_flat(paths, dim, data), (0..n).collect())
    };
    // Row of `vectors` → its photo.
    let photo_of: HashMap<usize, usize> = rows.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    let groups = vectors.near_duplicates(Some(&rows), threshold);
    let described: Vec<(Option<DuplicateGroup>, Vec<Failure>)> = groups
        .par_iter()
        .map(|g| {
            let members: Vec<(usize, &Photo)> =
                g.iter().map(|r| (*r, &photos[photo_of[r]])).collect();
            describe(&vectors, &members)
        })
        .collect();
    let mut out = Duplicates {
        compared: rows.len(),
        ..Duplicates::default()
    };
    for (group, skipped) in described {
        out.groups.extend(group);
        out.skipped.extend(skipped);
    }
    Ok(out)
}

/// What identifies a file whatever its name: device and inode (hard links and the targets of
/// symbolic links share them).
#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata, _path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// What identifies a file whatever its name: its path with links resolved.
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata, path: &Path) -> FileId {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// A group's members as files: names of one file merged, details read from disk.
fn describe(vectors: &Vectors, rows: &[(usize, &Photo)]) -> (Option<DuplicateGroup>, Vec<Failure>) {
    let mut skipped = Vec::new();
    // The distinct files, in path order of their first name: (row, names, metadata).
    let mut files: Vec<(usize, Vec<&str>, std::fs::Metadata)> = Vec::new();
    let mut file_of: HashMap<FileId, usize> = HashMap::new();
    for &(row, photo) in rows {
        let path = Path::new(&photo.path);
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                skipped.push(Failure {
                    path: photo.path.clone(),
                    error: format!("{}: indexed, but cannot be looked at now: {e}", photo.path),
                });
                continue;
            }
        };
        match file_of.entry(file_id(&meta, path)) {
            std::collections::hash_map::Entry::Occupied(f) => files[*f.get()].1.push(&photo.path),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(files.len());
                files.push((row, vec![&photo.path], meta));
            }
        }
    }
    if files.len() < 2 {
        return (None, skipped);
    }
    // The representative: the highest summed similarity to the others (sums within 1e-5,
    // as those of identical photos added in another order, count as equal: the first wins).
    let n = files.len();
    let vector = |i: usize| vectors.vector(files[i].0);
    let mut total = vec![0f32; n];
    let mut min_similarity = 1f32;
    for i in 0..n {
        for j in i + 1..n {
            // Rounding can put two unit vectors' dot product a hair above 1.
            let s = dot(vector(i), vector(j)).min(1.0);
            total[i] += s;
            total[j] += s;
            min_similarity = min_similarity.min(s);
        }
    }
    let rep = (0..n).fold(0, |best, i| {
        if total[i] > total[best] + 1e-5 {
            i
        } else {
            best
        }
    });
    let to_rep: Vec<f32> = (0..n)
        .map(|i| {
            if i == rep {
                1.0
            } else {
                dot(vector(rep), vector(i)).min(1.0)
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        (b == rep)
            .cmp(&(a == rep))
            .then(to_rep[b].total_cmp(&to_rep[a]))
            .then(a.cmp(&b))
    });
    let indexed_as: HashMap<&str, Option<Indexed>> = rows
        .iter()
        .map(|(_, p)| (p.path.as_str(), p.indexed))
        .collect();
    let mut members: Vec<Member> = Vec::with_capacity(n);
    let mut first_with: HashMap<Hash, String> = HashMap::new();
    for &i in &order {
        let (_, names, meta) = &files[i];
        // The name to show: the first that is no link (nor behind one), else the first.
        let main = names
            .iter()
            .position(|p| Path::new(p).canonicalize().is_ok_and(|c| c == Path::new(p)))
            .unwrap_or(0);
        let path = names[main].to_string();
        let links: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != main)
            .map(|(_, p)| p.to_string())
            .collect();
        // The stored hash holds for the file only while its size and time are as indexed.
        let indexed = indexed_as.get(path.as_str()).copied().flatten();
        let changed_since_indexed =
            indexed.is_some_and(|i| i.size != meta.len() || i.mtime_ns != mtime_ns(meta));
        let hash = indexed
            .and_then(|i| i.hash)
            .filter(|_| !changed_since_indexed);
        let identical_to = match hash {
            Some(h) => match first_with.get(&h) {
                Some(first) => Some(first.clone()),
                None => {
                    first_with.insert(h, path.clone());
                    None
                }
            },
            None => None,
        };
        let (width, height) = match clip_preprocess::image::decode::dimensions(Path::new(&path)) {
            Ok((w, h)) => (Some(w), Some(h)),
            Err(_) => (None, None),
        };
        members.push(Member {
            representative: i == rep,
            similarity: to_rep[i],
            bytes: meta.len(),
            width,
            height,
            modified: meta
                .modified()
                .ok()
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            identical_to,
            changed_since_indexed,
            links,
            path,
        });
    }
    (
        Some(DuplicateGroup {
            min_similarity,
            members,
        }),
        skipped,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_similarities_above_0_up_to_1() {
        assert_eq!(check_threshold(0.95).unwrap(), 0.95);
        assert_eq!(check_threshold(1.0).unwrap(), 1.0);
        for bad in [0.0, -0.5, 1.01, f32::NAN] {
            let e = check_threshold(bad).unwrap_err();
            assert!(e.to_string().contains("above 0 and at most 1"), "{e}");
        }
    }
}

//! A photo library indexed for search: scans folders into a [`clip_index::Index`], embedding
//! only new and changed files, and searches it by text, image or both.
//!
//! A scan walks the roots, leaving out what the index's exclusions name
//! ([`crate::walk::Excludes`]: the default NAS, recycle and tool folders, the patterns of
//! [`ScanOptions::exclude`] and the subfolders [`Index::forget`] dropped), compares each image
//! file's size and modification time with the index, and reads only the files that differ. A
//! file whose content (blake3) is already indexed, kept from a removed file, or met earlier in
//! the scan (a rename, a copy), reuses its vector (a gone file whose content turns up at a new
//! path counts as moved, and the mass-delete guard does not count it); the others are
//! decoded on worker threads while the model embeds the previous batch, and each batch is
//! committed in one transaction, so an interrupted scan loses at most a batch. Files that
//! cannot be decoded are recorded with the reason and retried only when they change (files
//! that could not be read at all, every scan). Files gone from the roots are dropped after
//! the complete scan, under the guard of [`clip_index::plan_removals`]; a subfolder or file
//! that cannot be looked at is reported, and what is indexed there is kept.
//!
//! [`scan`](Clip::update_index) brings an index up to date with its folders, [`Query`] turns
//! a query's words, images and weights into a query vector, and [`open_for_search`] opens an
//! index with the model that made it.

mod query;
mod scan;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::{env, Clip, ClipError};

pub use clip_index::search::dot;
pub use clip_index::{
    is_under, Change, Exclusions, FileState, Forgotten, Hash, Hit, Index, IndexError, IndexInfo,
    Status, Vectors, WriteLock, DEFAULT_MAX_DELETE_SHARE, KEEP_REMOVED_DAYS,
};
pub use query::{Query, QueryTerm};
pub use scan::{canonical_roots, ScanOptions, ScanProgress, ScanReport};

/// Where the index lives by default: `$CLIP_INDEX`, else `$XDG_DATA_HOME/clip/index.sqlite`,
/// else `~/.local/share/clip/index.sqlite`.
pub fn default_index_path() -> Option<PathBuf> {
    if let Some(p) = env::get(env::CLIP_INDEX) {
        return Some(PathBuf::from(p));
    }
    let data = env::get(env::XDG_DATA_HOME)
        .map(PathBuf::from)
        .or_else(|| env::get(env::HOME).map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("clip").join("index.sqlite"))
}

impl Clip {
    /// What identifies this model's image vectors in an index: its [`identity`](Clip::identity).
    pub fn index_info(&self) -> IndexInfo {
        let id = self.identity();
        IndexInfo {
            model: id.name,
            fingerprint: id.fingerprint,
            preprocess: id.preprocess,
            dim: id.dim,
        }
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Loads every vector of an index for searching.
pub fn load_vectors(index: &Index) -> Result<Vectors, ClipError> {
    Ok(index.vectors()?)
}

/// Opens the index at `path`, which must exist: to change it (`writable`) or to read it
/// (read-only, so an index in a folder the user cannot write is searchable).
pub fn open_existing(path: &Path, writable: bool) -> Result<Index, ClipError> {
    if !path.is_file() {
        return Err(ClipError::NoIndex {
            path: path.display().to_string(),
        });
    }
    let index = if writable {
        Index::open_existing(path)
    } else {
        Index::open_read_only(path)
    };
    Ok(index?)
}

/// Opens the index at `path` for a scan: `None` when there is none yet, or when the file is
/// blank (a first run killed before it made anything; a writer's open rolls back what the
/// kill left, after which it is seen as blank and made into an index).
pub fn open_for_scan(path: &Path) -> Result<Option<Index>, ClipError> {
    if !path.is_file() {
        return Ok(None);
    }
    match Index::open_existing(path) {
        Ok(index) => Ok(Some(index)),
        Err(_) if Index::is_blank(path) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The model to use with an index: `given`, else the one `index` was built with, else
/// [`crate::DEFAULT_MODEL`].
pub fn model_for(index: Option<&Index>, given: Option<&str>) -> String {
    match (given, index) {
        (Some(name), _) => name.to_string(),
        (None, Some(index)) => index.info().model.clone(),
        (None, None) => crate::DEFAULT_MODEL.to_string(),
    }
}

/// Refuses `model` for the index at `path` when the index holds another model's vectors
/// ([`IndexError::ModelMismatch`], naming both).
pub fn ensure_compatible(index: &Index, model: &Clip, path: &Path) -> Result<(), ClipError> {
    let info = model.index_info();
    if index.info().compatible(&info) {
        return Ok(());
    }
    Err(IndexError::mismatch(path, index.info(), &info).into())
}

/// Opens the index at `path` read-only with the model to search it: `model` when given,
/// else the one that built the index, loaded by `load` (which decides the device, the
/// download progress and the like). A model of other vectors is refused.
pub fn open_for_search(
    path: &Path,
    model: Option<&str>,
    load: impl FnOnce(&str) -> Result<Clip, ClipError>,
) -> Result<(Index, Clip), ClipError> {
    let index = open_existing(path, false)?;
    let clip = load(&model_for(Some(&index), model))?;
    ensure_compatible(&index, &clip, path)?;
    Ok((index, clip))
}

/// Checks the folders a scan is given before anything is created or locked: each must be a
/// folder. The error for one that is not says whether the index has it
/// ([`ClipError::RootUnavailable`]), since then dropping it may be what the user wants.
pub fn check_roots(index: Option<&Index>, folders: &[PathBuf]) -> Result<(), ClipError> {
    let Err(e) = canonical_roots(folders) else {
        return Ok(());
    };
    let missing = folders.iter().find(|f| !f.is_dir()).unwrap_or(&folders[0]);
    let absolute = std::path::absolute(missing).unwrap_or_else(|_| missing.clone());
    let indexed = match index {
        Some(index) => index
            .status()?
            .roots
            .iter()
            .any(|r| Path::new(r) == absolute),
        None => false,
    };
    if !indexed {
        return Err(e);
    }
    Err(ClipError::RootUnavailable {
        path: missing.display().to_string(),
        detail: e.to_string(),
    })
}

/// The folders a scan of the index at `path` covers: `folders` when given, else the ones
/// `index` (the one there, if any) was built from.
pub fn scan_roots(
    path: &Path,
    index: Option<&Index>,
    folders: &[PathBuf],
) -> Result<Vec<PathBuf>, ClipError> {
    if !folders.is_empty() {
        return Ok(folders.to_vec());
    }
    let roots = match index {
        Some(i) => i.status()?.roots,
        None => Vec::new(),
    };
    if roots.is_empty() {
        return Err(ClipError::NoFolders {
            index: path.display().to_string(),
        });
    }
    Ok(roots.into_iter().map(PathBuf::from).collect())
}

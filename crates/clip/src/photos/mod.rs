//! A photo library indexed for search: scans folders into a [`clip_index::Index`], embedding
//! only new and changed files, and searches it by text, image or both.
//!
//! A scan walks the roots, leaving out what the index's exclusions name
//! ([`crate::walk::Excludes`]: the default NAS, recycle and tool folders, the patterns of
//! [`ScanOptions::exclude`] and the subfolders [`Index::forget`] dropped; a subfolder of an
//! indexed folder is walked with the exclusions of the folder above it, and a folder the
//! exclusions leave out is refused as a folder to scan, [`ClipError::ExcludedFolder`], so
//! that no scan indexes what the next one drops), compares each image
//! file's size and modification time with the index, and reads only the files that differ. A
//! file whose content (blake3) is already indexed, kept from a removed file, or met earlier in
//! the scan (a rename, a copy), reuses its vector (a gone file whose content turns up at a new
//! path counts as moved, and the mass-delete guard does not count it); the others are
//! decoded on worker threads while the model embeds the previous batch, and each batch is
//! committed in one transaction, so an interrupted scan loses at most a batch. Files that
//! cannot be decoded are recorded with the reason and retried only when they change (files
//! that could not be read at all, every scan). Files gone from the roots are dropped after
//! the complete scan, under the guard of [`clip_index::plan_removals`], and so are files new
//! exclusions leave out, under the same share ([`clip_index::check_exclusions`]); a subfolder
//! or file that cannot be looked at is reported, and what is indexed there is kept.
//!
//! [`Scan`] sets up a scan of an index (the folders, the write lock, the model, the check that
//! it made the index's vectors) and runs it ([`Clip::update_index`]), [`Query`] turns a
//! query's words, images and weights into a query vector, [`open_for_search`] opens an index
//! with the model that made it, and [`duplicates`] finds groups of near-duplicate photos.
//! Scans and searches read no model tower they do not need: a scan that finds nothing new to
//! embed reads none, a text query only the text tower.

pub mod duplicates;
mod query;
mod scan;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::{env, Clip, ClipError, ModelId};

pub use clip_index::search::dot;
pub use clip_index::{
    content_hash, is_at_or_under, is_under, Change, Exclusions, FileState, Forgotten, Hash, Hit,
    Index, IndexError, IndexInfo, Refusal, Status, Vectors, WriteLock, DEFAULT_MAX_DELETE_SHARE,
    KEEP_REMOVED_DAYS,
};
pub use query::{search, Query, QueryTerm, QueryVector, SearchResults};
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
        Self::index_info_of(self.identity())
    }

    fn index_info_of(id: ModelId) -> IndexInfo {
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

/// Drops `folder` (a folder or file, of the index or under one of its folders) from the index
/// at `path`, under its write lock: its files' rows, its vectors, and, for what lies under a
/// folder of the index, an exclusion so later scans leave it out ([`Index::forget`]). The
/// path is taken as the index records paths: absolute, and canonical when it still exists.
/// Returns the path as recorded and what was dropped; a path under which the index holds
/// nothing, and which is none of its folders, is refused ([`ClipError::NothingToForget`]).
pub fn forget(path: &Path, folder: &Path) -> Result<(String, Forgotten), ClipError> {
    let mut index = open_existing(path, true)?;
    let _lock = WriteLock::acquire(path)?;
    let io = |error| ClipError::Io {
        path: folder.display().to_string(),
        error,
    };
    let absolute = folder
        .canonicalize()
        .or_else(|_| std::path::absolute(folder))
        .map_err(io)?;
    let text = absolute
        .to_str()
        .ok_or_else(|| ClipError::Dataset {
            path: absolute.display().to_string(),
            detail: "the path is not valid UTF-8, and the index records paths in UTF-8".into(),
        })?
        .to_string();
    let roots = index.roots()?;
    // What is not indexed is taken only if it is a folder of the index, or lies under one and
    // exists (an empty folder to keep out of later scans); a typo is refused.
    let known = roots
        .iter()
        .any(|r| *r == text || (is_under(&text, r) && absolute.exists()))
        || index.files()?.keys().any(|p| is_at_or_under(p, &text));
    if !known {
        return Err(ClipError::NothingToForget {
            folder: text,
            index: path.display().to_string(),
            roots,
        });
    }
    let forgotten = index.forget(&text)?;
    Ok((text, forgotten))
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

/// How the model an index recorded relates to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelMatch {
    /// The same model: the index recorded its fingerprint.
    Same,
    /// The index was made before fingerprints covered the weights' content, by a model of the
    /// same configuration, weight file sizes and preprocessing: taken as the same when it
    /// gives the vectors the index holds ([`ensure_compatible`] checks a few photos), and
    /// worth recording the content fingerprint for ([`Index::set_fingerprint`]).
    Legacy,
    /// Another model, or other preprocessing or size: its vectors do not mix with the index's.
    Other,
}

/// How the model that made `index` relates to `model` ([`ModelMatch`]).
pub fn model_match(index: &Index, model: &ModelId) -> ModelMatch {
    let recorded = index.info();
    let same_rest = recorded.preprocess == model.preprocess && recorded.dim == model.dim;
    if !same_rest {
        ModelMatch::Other
    } else if recorded.fingerprint == model.fingerprint {
        ModelMatch::Same
    } else if recorded.fingerprint == model.legacy_fingerprint {
        ModelMatch::Legacy
    } else {
        ModelMatch::Other
    }
}

/// Refuses `model` for the index at `path` when the index holds another model's vectors
/// ([`IndexError::ModelMismatch`], naming both); an index made before fingerprints covered
/// the weights' content is taken as made by the model of its legacy fingerprint
/// ([`ModelMatch::Legacy`]). Returns how they match.
pub fn ensure_compatible(
    index: &Index,
    model: &Clip,
    path: &Path,
) -> Result<ModelMatch, ClipError> {
    let id = model.identity();
    match model_match(index, &id) {
        ModelMatch::Legacy if !gives_the_indexed_vectors(index, model)? => {
            Err(IndexError::mismatch(path, index.info(), &Clip::index_info_of(id)).into())
        }
        ModelMatch::Other => {
            Err(IndexError::mismatch(path, index.info(), &Clip::index_info_of(id)).into())
        }
        matched => Ok(matched),
    }
}

/// How many photos [`gives_the_indexed_vectors`] embeds again.
const LEGACY_CHECKS: usize = 3;

/// The least cosine between a vector an index holds and the model's vector for the same
/// unchanged photo for the model to count as the index's: another precision or backend
/// stays above it, a fine-tuned model falls below.
const LEGACY_MIN_COSINE: f32 = 0.995;

/// Whether `model` gives the vectors `index` holds, for the first [`LEGACY_CHECKS`] photos (in
/// path order) unchanged since they were indexed that can be read: a legacy fingerprint names
/// a model only by its configuration and file sizes, which a fine-tune in place keeps. `true`
/// when no photo can be checked (nothing tells the models apart then).
fn gives_the_indexed_vectors(index: &Index, model: &Clip) -> Result<bool, ClipError> {
    let mut paths: Vec<String> = index
        .files()?
        .into_iter()
        .filter(|(_, f)| f.error.is_none())
        .map(|(p, _)| p)
        .collect();
    paths.sort();
    let mut checked = 0;
    for path in paths.iter().map(Path::new) {
        if checked == LEGACY_CHECKS {
            break;
        }
        let Some(stored) = query::stored_embedding(index, path)? else {
            continue;
        };
        let Ok(pixels) = model.load_image(path) else {
            continue;
        };
        let got = model.encode_image(&[pixels])?;
        let cosine = crate::cosine(&got[0], &stored);
        if cosine < LEGACY_MIN_COSINE {
            tracing::info!(
                "{}: cosine {cosine:.4} between the indexed vector and this model's",
                path.display()
            );
            return Ok(false);
        }
        checked += 1;
    }
    Ok(true)
}

/// Opens the index at `path` read-only with the model to search it: `model` when given,
/// else the one that built the index, loaded by `load` (which decides the device, the
/// download progress and the like). A model of other vectors is refused. The model's towers
/// are read when the query needs them: a text, the text tower; an image the index holds
/// unchanged, none ([`Clip::query_vector`]).
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

/// A scan of the index at a path, set up by [`Scan::open`] and run by [`Scan::run`]: the
/// index, the model of its vectors, the folders it covers, and the index's write lock, held
/// until the scan is dropped.
#[derive(Debug)]
pub struct Scan {
    index: Index,
    model: Clip,
    folders: Vec<PathBuf>,
    lock: WriteLock,
}

impl Scan {
    /// Sets up a scan of the index at `path`, creating it when there is none: of `folders`
    /// (empty: those indexed before), with the model named `model` (`None`: the index's, else
    /// [`crate::DEFAULT_MODEL`]) loaded by `load`.
    ///
    /// In this order: the folders are checked ([`check_roots`]) before anything is created or
    /// locked; the write lock is taken; the model is loaded (its towers are not read: a scan
    /// reads the image tower only when a file is to be embedded, so a scan that finds nothing
    /// new reads none); a model of other vectors is refused ([`ensure_compatible`]), and an
    /// index made before fingerprints covered the weights' content records the content
    /// fingerprint from now on. A new index is created with the model's identity once the
    /// image tower has been read (it will be needed), so a damaged checkpoint leaves no index.
    pub fn open(
        path: &Path,
        folders: &[PathBuf],
        model: Option<&str>,
        load: impl FnOnce(&str) -> Result<Clip, ClipError>,
    ) -> Result<Scan, ClipError> {
        let existing = open_for_scan(path)?;
        let folders = scan_roots(path, existing.as_ref(), folders)?;
        // Before the index file is created: a wrong folder leaves nothing behind.
        check_roots(existing.as_ref(), &folders)?;
        let lock = WriteLock::acquire(path)?;
        let model = load(&model_for(existing.as_ref(), model))?;
        // The index opened above is used as it is (opening checks the file, which reads all
        // of it); only a new one is created here.
        let index = match existing {
            Some(mut index) => {
                if ensure_compatible(&index, &model, path)? == ModelMatch::Legacy {
                    index.set_fingerprint(&model.identity().fingerprint)?;
                }
                index
            }
            None => {
                model.load_image_tower()?;
                Index::open(path, &model.index_info())?
            }
        };
        Ok(Scan {
            index,
            model,
            folders,
            lock,
        })
    }

    /// Brings the index up to date with its folders ([`Clip::update_index`]).
    pub fn run(
        &mut self,
        options: &ScanOptions,
        progress: &mut dyn FnMut(ScanProgress),
    ) -> Result<ScanReport, ClipError> {
        self.model
            .update_index(&mut self.index, &self.folders, options, progress)
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The model of the index's vectors.
    pub fn model(&self) -> &Clip {
        &self.model
    }

    /// The folders the scan covers.
    pub fn folders(&self) -> &[PathBuf] {
        &self.folders
    }

    /// The model and the index, the write lock released.
    pub fn into_parts(self) -> (Clip, Index) {
        drop(self.lock);
        (self.model, self.index)
    }
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
        Some(index) => index.roots()?.iter().any(|r| Path::new(r) == absolute),
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
        Some(i) => i.roots()?,
        None => Vec::new(),
    };
    if roots.is_empty() {
        return Err(ClipError::NoFolders {
            index: path.display().to_string(),
        });
    }
    Ok(roots.into_iter().map(PathBuf::from).collect())
}

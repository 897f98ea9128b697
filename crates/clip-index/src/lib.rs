//! The photo index: a single SQLite file of image files and their embeddings, updated
//! incrementally, and exact top-k search over it.
//!
//! The index knows nothing of models or images: the caller embeds, the index stores
//! ([`Index`], [`Change`]), decides what a scan may delete ([`plan_removals`]) and searches
//! ([`Vectors`]). Every index records which model made its vectors ([`IndexInfo`]) and refuses
//! others.

pub mod error;
pub mod search;
pub mod store;

pub use error::{IndexError, Refusal};
pub use search::{Hit, Vectors};
pub use store::{
    content_hash, content_hash_stream, Change, Exclusions, FileState, Forgotten, Hash, Index,
    IndexInfo, Status, WriteLock, KEEP_REMOVED_DAYS,
};

/// By default a scan may delete at most this share of the files it had under its roots.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;

/// Refuses ([`IndexError::Refused`], [`Refusal::Excluded`]) exclusions that would drop
/// `excluded` of the `total` files indexed under `roots` when that is more than `max_share`
/// of them (and at least 10), unless `allow_mass_delete`: the guard of [`plan_removals`] for
/// files left out rather than gone (a pattern such as `*` empties the index as surely).
pub fn check_exclusions(
    excluded: usize,
    total: usize,
    roots: &[String],
    max_share: f64,
    allow_mass_delete: bool,
) -> Result<(), IndexError> {
    if allow_mass_delete || excluded < 10 || excluded as f64 <= max_share * total as f64 {
        return Ok(());
    }
    Err(IndexError::Refused {
        reason: Refusal::Excluded {
            excluded,
            total,
            roots: roots.join(", "),
            percent: 100.0 * excluded as f64 / total.max(1) as f64,
        },
    })
}

/// Whether `path` lies under the folder `root` (both absolute, as strings): `/a/lib/x.jpg` is
/// under `/a/lib` but `/a/lib2/x.jpg` is not; everything is under `/`.
pub fn is_under(path: &str, root: &str) -> bool {
    let sep = std::path::MAIN_SEPARATOR;
    match path.strip_prefix(root) {
        Some(rest) => root.ends_with(sep) || rest.starts_with(sep),
        None => false,
    }
}

/// Whether `path` is `root` itself or lies under it ([`is_under`]).
pub fn is_at_or_under(path: &str, root: &str) -> bool {
    path == root || is_under(path, root)
}

/// Where a file gone from under `root` may be out of reach rather than deleted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Unreachable {
    /// A folder on its way is a link to a missing target (a drive not mounted).
    DanglingLink(std::path::PathBuf),
    /// The nearest folder that still exists is empty (as an unmounted mount point is).
    EmptyFolder(std::path::PathBuf),
}

fn unreachable(file: &str, root: &str) -> Option<Unreachable> {
    let root = std::path::Path::new(root);
    let mut dir = std::path::Path::new(file).parent()?;
    while dir.starts_with(root) && dir != root {
        match std::fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() && std::fs::metadata(dir).is_err() => {
                return Some(Unreachable::DanglingLink(dir.to_path_buf()));
            }
            Ok(meta) if meta.is_dir() => {
                let empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
                return empty.then(|| Unreachable::EmptyFolder(dir.to_path_buf()));
            }
            _ => dir = dir.parent()?,
        }
    }
    None
}

/// The files under `roots` that a complete scan did not see (`seen`), which are to be deleted.
/// Refuses ([`IndexError::Refused`]) when a root is not a folder any more (unmounted,
/// renamed), and, unless `allow_mass_delete`: when a root with indexed files shows no image;
/// when files would go from behind a link to a missing target, or 10 or more from a folder
/// that is now empty (an unmounted drive below the root); or when more than `max_share` of
/// the files the index had under the roots would go (and at least 10).
pub fn plan_removals<'a>(
    indexed: impl IntoIterator<Item = &'a str>,
    roots: &[String],
    seen: &std::collections::HashSet<String>,
    max_share: f64,
    allow_mass_delete: bool,
) -> Result<Vec<String>, IndexError> {
    for root in roots {
        if !std::path::Path::new(root).is_dir() {
            return Err(IndexError::Refused {
                reason: Refusal::RootUnavailable { root: root.clone() },
            });
        }
    }
    let root_of = |p: &str| roots.iter().position(|r| is_under(p, r));
    let mut total = 0usize;
    let mut gone = Vec::new();
    // Per root: files indexed under it, and how many of them are still there.
    let mut per_root = vec![(0usize, 0usize); roots.len()];
    for p in indexed {
        if let Some(r) = root_of(p) {
            total += 1;
            per_root[r].0 += 1;
            if seen.contains(p) {
                per_root[r].1 += 1;
            } else {
                gone.push(p.to_string());
            }
        }
    }
    gone.sort();
    if allow_mass_delete {
        return Ok(gone);
    }
    if let Some(r) = (0..roots.len()).find(|&r| per_root[r].0 > 0 && per_root[r].1 == 0) {
        return Err(IndexError::Refused {
            reason: Refusal::RootEmpty {
                root: roots[r].clone(),
                indexed: per_root[r].0,
            },
        });
    }
    // Files behind a dangling link are never dropped silently; files of a folder now empty
    // only when a few went (deleting a folder's last photos is ordinary, a whole drive of
    // them vanishing is not).
    let mut from_empty: std::collections::HashMap<std::path::PathBuf, usize> = Default::default();
    let mut by_folder: std::collections::HashMap<&std::path::Path, Option<Unreachable>> =
        Default::default();
    for p in &gone {
        let folder = std::path::Path::new(p)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        let root = &roots[root_of(p).expect("gone files are under a root")];
        let why = by_folder
            .entry(folder)
            .or_insert_with(|| unreachable(p, root))
            .clone();
        match why {
            Some(Unreachable::DanglingLink(link)) => {
                return Err(IndexError::Refused {
                    reason: Refusal::DanglingLink {
                        file: p.to_string(),
                        link: link.display().to_string(),
                    },
                })
            }
            Some(Unreachable::EmptyFolder(dir)) => *from_empty.entry(dir).or_default() += 1,
            None => {}
        }
    }
    if let Some((dir, n)) = from_empty.iter().filter(|(_, &n)| n >= 10).min() {
        return Err(IndexError::Refused {
            reason: Refusal::FolderEmptied {
                folder: dir.display().to_string(),
                files: *n,
            },
        });
    }
    if gone.len() >= 10 && gone.len() as f64 > max_share * total as f64 {
        return Err(IndexError::Refused {
            reason: Refusal::TooMany {
                gone: gone.len(),
                total,
                roots: roots.join(", "),
                percent: 100.0 * gone.len() as f64 / total as f64,
            },
        });
    }
    Ok(gone)
}

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

pub use error::IndexError;
pub use search::{Hit, Vectors};
pub use store::{content_hash, Change, FileState, Hash, Index, IndexInfo, Status, WriteLock};

/// By default a scan may delete at most this share of the files it had under its roots.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;

/// The files under `roots` that a complete scan did not see (`seen`), which are to be deleted.
/// Refuses ([`IndexError::Refused`]) when a root is not a folder any more (unmounted,
/// renamed), and, unless `allow_mass_delete`, when a root with indexed files shows no image,
/// or when more than `max_share` of the files the index had under the roots would go (and at
/// least 10).
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
                detail: format!(
                    "library root {root} is unavailable (not a folder); nothing was deleted"
                ),
            });
        }
    }
    let root_of = |p: &str| {
        roots.iter().position(|r| {
            p.strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with(std::path::MAIN_SEPARATOR))
        })
    };
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
    let seen_under = |r: usize| seen.iter().any(|p| root_of(p) == Some(r));
    if let Some(r) = (0..roots.len()).find(|&r| per_root[r].0 > 0 && !seen_under(r)) {
        if !allow_mass_delete {
            return Err(IndexError::Refused {
                detail: format!(
                    "library root {} has no images now but {} are indexed under it (unmounted?); \
                     nothing was deleted. If they are really gone, run again with --allow-mass-delete",
                    roots[r], per_root[r].0
                ),
            });
        }
    }
    if !allow_mass_delete && gone.len() >= 10 && gone.len() as f64 > max_share * total as f64 {
        return Err(IndexError::Refused {
            detail: format!(
                "this scan would remove {} of the {total} indexed files under {} ({:.0} %); nothing was deleted. \
                 If they are really gone, run again with --allow-mass-delete",
                gone.len(),
                roots.join(", "),
                100.0 * gone.len() as f64 / total as f64
            ),
        });
    }
    Ok(gone)
}

//! The index's error type: each variant quotes the index file and what went wrong.

/// Anything that can go wrong opening, updating or searching an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// SQLite failed.
    #[error("index {path}: {error}")]
    Sqlite {
        /// The index file.
        path: String,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        error: std::io::Error,
    },
    /// The index holds embeddings of another model, preprocessing or size.
    #[error(
        "index {path} was built with model {index_model} ({index_detail}), not {model} ({detail})"
    )]
    ModelMismatch {
        /// The index file.
        path: String,
        /// The model the index was built with.
        index_model: String,
        /// Its fingerprints and dimension.
        index_detail: String,
        /// The model asked for.
        model: String,
        /// Its fingerprints and dimension.
        detail: String,
    },
    /// Another process is updating the index.
    #[error("index {path} is being updated by another process (lock file {lock})")]
    Busy {
        /// The index file.
        path: String,
        /// The lock file held.
        lock: String,
    },
    /// The file is not an index of ours, or it is damaged.
    #[error("index {path} is unusable: {detail}")]
    Corrupt {
        /// The index file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The index was written by a newer version of the program, in a schema this one cannot
    /// read; it is left as it is.
    #[error(
        "index {path} has schema version {found}; this version of clip reads 1 to {supported}"
    )]
    NewerSchema {
        /// The index file.
        path: String,
        /// The schema version the file records.
        found: u32,
        /// The newest schema this program reads.
        supported: u32,
    },
    /// The file is an SQLite file with nothing in it: what a first indexing run killed before
    /// it made anything leaves. Indexing into it makes it an index.
    #[error("index {path} is empty: a first indexing run stopped before it made anything")]
    Blank {
        /// The index file.
        path: String,
    },
    /// A scan would delete too much, or its root is gone; nothing was deleted.
    #[error("{reason}; nothing was deleted")]
    Refused {
        /// What was refused and why.
        reason: Refusal,
    },
    /// A vector of the wrong size was given.
    #[error("index {path}: a vector of {got} values for an index of dimension {dim}")]
    Dimension {
        /// The index file.
        path: String,
        /// The size given.
        got: usize,
        /// The index's dimension.
        dim: usize,
    },
}

/// Why a scan's removals were refused ([`crate::plan_removals`]): each looks like a missing
/// disk rather than photos deleted on purpose. Callers word the way out (the CLI's
/// `--allow-mass-delete`); [`Refusal::can_override`] says whether there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A root is not a folder any more (unmounted, renamed).
    #[error("library root {root} is unavailable (not a folder)")]
    RootUnavailable {
        /// The root.
        root: String,
    },
    /// A root with indexed files shows no image now.
    #[error(
        "library root {root} has no images now but {indexed} are indexed under it (unmounted?)"
    )]
    RootEmpty {
        /// The root.
        root: String,
        /// Files indexed under it.
        indexed: usize,
    },
    /// Files would go from behind a link to a missing target.
    #[error("{file} and others are gone, but {link} is a link to a missing folder")]
    DanglingLink {
        /// One of the files.
        file: String,
        /// The link.
        link: String,
    },
    /// Ten or more files would go from a folder that is now empty.
    #[error(
        "{files} indexed files are gone from {folder}, which is now empty (an unmounted drive?)"
    )]
    FolderEmptied {
        /// The folder.
        folder: String,
        /// How many files would go.
        files: usize,
    },
    /// More than the allowed share of the files under the roots would go.
    #[error(
        "this scan would remove {gone} of the {total} indexed files under {roots} ({percent:.0} %)"
    )]
    TooMany {
        /// Files that would go.
        gone: usize,
        /// Files indexed under the roots.
        total: usize,
        /// The roots, comma-separated.
        roots: String,
        /// `gone` as a percentage of `total`.
        percent: f64,
    },
    /// The exclusions would drop more than the allowed share of the files under the roots.
    #[error(
        "the exclusions would drop {excluded} of the {total} indexed files under {roots} \
         ({percent:.0} %)"
    )]
    Excluded {
        /// Files the exclusions leave out.
        excluded: usize,
        /// Files indexed under the roots.
        total: usize,
        /// The roots, comma-separated.
        roots: String,
        /// `excluded` as a percentage of `total`.
        percent: f64,
    },
}

impl Refusal {
    /// Whether the caller may go ahead anyway, saying the files are really gone (all but a
    /// root that is not a folder, which no scan can read).
    pub fn can_override(&self) -> bool {
        !matches!(self, Refusal::RootUnavailable { .. })
    }
}

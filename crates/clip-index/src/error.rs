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
    /// A scan would delete too much, or its root is gone.
    #[error("{detail}")]
    Refused {
        /// What was refused and why.
        detail: String,
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

impl IndexError {
    /// The refusal of vectors made as `wanted` says by the index at `path`, made as `existing`.
    pub fn mismatch(
        path: &std::path::Path,
        existing: &crate::IndexInfo,
        wanted: &crate::IndexInfo,
    ) -> IndexError {
        IndexError::ModelMismatch {
            path: path.display().to_string(),
            index_model: existing.model.clone(),
            index_detail: existing.describe(),
            model: wanted.model.clone(),
            detail: wanted.describe(),
        }
    }
}

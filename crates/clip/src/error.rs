//! The library's error type: every failure a caller can see, each quoting the path or value.

pub use clip_model::ModelError;
pub use clip_preprocess::{ConfigError, ImageError, TokenizeError};

/// Anything that can go wrong between a model name, an image or a text, and an embedding.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The model name resolves to nothing loadable.
    #[error("model {model:?} not found: {hint}")]
    ModelNotFound {
        /// What the caller asked for.
        model: String,
        /// What was tried and what to do.
        hint: String,
    },
    /// The checkpoint could not be loaded or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// `preprocessor_config.json` is invalid.
    #[error(transparent)]
    PreprocessConfig(#[from] ConfigError),
    /// The preprocessing does not produce what the vision tower takes.
    #[error("{path}: the preprocessing yields {got} images but the model takes {expected}")]
    PreprocessMismatch {
        /// The preprocessor config.
        path: String,
        /// What it produces, e.g. `224x224`.
        got: String,
        /// What the model wants.
        expected: String,
    },
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A text could not be tokenized.
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// Prompt templates are unusable.
    #[error("invalid templates in {source_name}: {detail}")]
    Templates {
        /// Where they came from (a file, a name, the command line).
        source_name: String,
        /// What is wrong.
        detail: String,
    },
    /// A dataset, mapping or caption file is unusable.
    #[error("{path}: {detail}")]
    Dataset {
        /// The folder or file (or where the labels came from).
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A search query is unusable.
    #[error("invalid query: {detail}")]
    Query {
        /// What is wrong.
        detail: String,
    },
    /// The photo index failed or refused (boxed: its errors are large).
    #[error(transparent)]
    Index(Box<clip_index::IndexError>),
    /// A file or folder could not be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file or folder.
        path: String,
        /// The system's error.
        error: std::io::Error,
    },
    /// The decoding threads of a scan could not be started.
    #[error("cannot start {threads} decoding threads: {detail}")]
    DecodeThreads {
        /// How many were asked for.
        threads: usize,
        /// The system's error.
        detail: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        error: std::io::Error,
    },
}

impl From<clip_index::IndexError> for ClipError {
    fn from(e: clip_index::IndexError) -> Self {
        ClipError::Index(Box::new(e))
    }
}

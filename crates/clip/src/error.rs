//! The library's error type: every failure a caller can see, each quoting the path or value.

pub use clip_model::ModelError;
pub use clip_preprocess::{ConfigError, ImageError, TokenizeError};

/// Anything that can go wrong between a model name, an image or a text, and an embedding.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The model name resolves to nothing loadable.
    #[error("model {model:?} not found: {detail}")]
    ModelNotFound {
        /// What the caller asked for.
        model: String,
        /// What was tried, and where the model's files are.
        detail: String,
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
    /// Labels are unusable.
    #[error("{detail}")]
    Labels {
        /// What is wrong, quoting the spec.
        detail: String,
    },
    /// A template set name is neither a file nor a built-in set.
    #[error(
        "unknown template set {name:?}: not a file, and the built-in sets are {builtin} (or none)"
    )]
    UnknownTemplates {
        /// The name given.
        name: String,
        /// The built-in sets, comma-separated.
        builtin: String,
    },
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
    /// A pattern of folders or files to leave out of scans is unusable.
    #[error("invalid exclusion pattern {pattern:?}: {detail}")]
    Exclude {
        /// The pattern as given.
        pattern: String,
        /// What is wrong.
        detail: String,
    },
    /// A pattern to take out of an index's exclusions is not among them.
    #[error("{pattern:?} is not among the index's exclusions ({})", listed(.patterns))]
    NotExcluded {
        /// The pattern as given.
        pattern: String,
        /// The index's own patterns.
        patterns: Vec<String>,
    },
    /// A pattern to take out of an index's exclusions is one of the defaults, which go
    /// together.
    #[error("{pattern:?} is a default exclusion; the defaults are turned off all together")]
    DefaultExclusion {
        /// The pattern as given.
        pattern: String,
    },
    /// An exclusion names a folder of the index itself (exclusions leave out what is inside
    /// a folder; a folder itself is dropped another way).
    #[error(
        "{pattern:?} is the folder {root} of the index itself, which exclusions never leave out"
    )]
    ExcludeRoot {
        /// The pattern as given.
        pattern: String,
        /// The folder of the index.
        root: String,
    },
    /// A folder given to scan lies where the index's exclusions leave it out: scanning it
    /// would index what the next scan of the folder above drops again.
    #[error(
        "{folder} is left out by the {kind} {pattern:?} of the index's folder {root}; \
         nothing was changed",
        kind = if *.default { "default exclusion" } else { "exclusion" }
    )]
    ExcludedFolder {
        /// The folder given, absolute.
        folder: String,
        /// The pattern that leaves it out.
        pattern: String,
        /// The folder of the index (or of the scan) it lies in.
        root: String,
        /// Whether the pattern is a default exclusion.
        default: bool,
    },
    /// A search query is unusable.
    #[error("invalid query: {detail}")]
    Query {
        /// What is wrong.
        detail: String,
    },
    /// A zero-shot classifier's computation was stopped by its caller (Ctrl-C) between two
    /// model calls; the classes done are kept in the cache for the next run when it has one.
    #[error("{}", interrupted(*.done, *.total, kept_in.as_deref()))]
    Interrupted {
        /// Classes whose label embeddings were done.
        done: usize,
        /// Classes asked for.
        total: usize,
        /// The cache file that keeps them; `None` when nothing is kept (no cache).
        kept_in: Option<String>,
    },
    /// There is no index file where one was expected.
    #[error("{}", no_index(path))]
    NoIndex {
        /// Where it was looked for.
        path: String,
    },
    /// A scan was asked to rescan the index's folders, and the index has none.
    #[error("no folders given, and the index {index} has none yet")]
    NoFolders {
        /// The index file.
        index: String,
    },
    /// A similarity threshold outside (0, 1].
    #[error(
        "threshold {value} is not a similarity above 0 and at most 1 (near-identical photos \
         score about 0.95 and more)"
    )]
    Threshold {
        /// The value given.
        value: f32,
    },
    /// A folder was to be read from the index alone, and the index has no folder holding it
    /// (or its exclusions leave it out).
    #[error(
        "{folder} is not in the index {index} ({})",
        match .left_out_by {
            Some(pattern) => format!("its exclusion {pattern:?} leaves it out"),
            None => "not at or under one of its folders".to_string(),
        }
    )]
    NotIndexed {
        /// The folder, absolute.
        folder: String,
        /// The index file.
        index: String,
        /// The exclusion that leaves it out, when it lies under a folder of the index.
        left_out_by: Option<String>,
    },
    /// A folder or file to drop from an index that holds nothing there and is none of its
    /// folders.
    #[error(
        "the index {index} has nothing under {folder} (its folders: {})",
        if .roots.is_empty() { "none".to_string() } else { .roots.join(", ") }
    )]
    NothingToForget {
        /// The folder, absolute.
        folder: String,
        /// The index file.
        index: String,
        /// The index's folders.
        roots: Vec<String>,
    },
    /// The index file fails SQLite's integrity check.
    #[error("the index {path} is damaged (integrity check: {integrity})")]
    IndexDamaged {
        /// The index file.
        path: String,
        /// What the check reported.
        integrity: String,
    },
    /// A folder the index holds photos of is not there (a missing disk, or gone for good).
    #[error("{detail}")]
    RootUnavailable {
        /// The folder as given.
        path: String,
        /// Why it cannot be scanned.
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

/// What [`ClipError::Interrupted`] says.
fn interrupted(done: usize, total: usize, kept_in: Option<&str>) -> String {
    match kept_in {
        Some(file) => {
            format!("interrupted: kept the label embeddings of {done} of {total} classes in {file}")
        }
        None => format!(
            "interrupted after the label embeddings of {done} of {total} classes (nothing is \
             kept without a cache)"
        ),
    }
}

/// What [`ClipError::NoIndex`] says: a folder given where the index file belongs is named as
/// one.
fn no_index(path: &str) -> String {
    if std::path::Path::new(path).is_dir() {
        format!("{path} is a folder, not an index file")
    } else {
        format!("no index at {path}")
    }
}

impl From<clip_index::IndexError> for ClipError {
    fn from(e: clip_index::IndexError) -> Self {
        ClipError::Index(Box::new(e))
    }
}

/// Whose fault a failure is: what a server answers (4xx, 5xx), what a program's exit code and
/// log level say. (meilisearch's `FaultSource`, reduced to what callers act on.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The input is wrong: a model name, a file, a text, a query, an option. Fix the input.
    User,
    /// The system failed: a disk, a lock held by another process, a device, a damaged file
    /// written earlier. Retrying or fixing the machine may help.
    Runtime,
    /// A broken contract inside the program: a caller passed what the API rules out.
    Bug,
}

impl ClipError {
    /// Whose fault this is. Exhaustive over every variant of every error it wraps, so a new
    /// variant cannot be forgotten.
    pub fn fault(&self) -> Fault {
        use clip_index::IndexError as I;
        match self {
            ClipError::ModelNotFound { .. }
            | ClipError::PreprocessConfig(
                ConfigError::Json { .. } | ConfigError::Unsupported { .. },
            )
            | ClipError::PreprocessMismatch { .. }
            | ClipError::Tokenize(TokenizeError::TooLong { .. })
            | ClipError::Labels { .. }
            | ClipError::UnknownTemplates { .. }
            | ClipError::Templates { .. }
            | ClipError::Dataset { .. }
            | ClipError::Exclude { .. }
            | ClipError::NotExcluded { .. }
            | ClipError::DefaultExclusion { .. }
            | ClipError::ExcludeRoot { .. }
            | ClipError::ExcludedFolder { .. }
            | ClipError::Query { .. }
            | ClipError::NoIndex { .. }
            | ClipError::NoFolders { .. }
            | ClipError::Threshold { .. }
            | ClipError::NotIndexed { .. }
            | ClipError::NothingToForget { .. }
            | ClipError::RootUnavailable { .. }
            | ClipError::Interrupted { .. } => Fault::User,
            ClipError::Model(e) => match e {
                ModelError::Config { .. }
                | ModelError::UnsupportedFamily { .. }
                | ModelError::MissingFile { .. }
                | ModelError::Weights { .. }
                | ModelError::Device { .. } => Fault::User,
                ModelError::Input(_) => Fault::Bug,
                ModelError::Threads { .. } | ModelError::Compute(_) => Fault::Runtime,
            },
            ClipError::Image(e) => match e {
                ImageError::Io { error, .. } => io_fault(error),
                ImageError::FileTooLarge { .. }
                | ImageError::Empty { .. }
                | ImageError::UnsupportedFormat { .. }
                | ImageError::UnsupportedColor { .. }
                | ImageError::Malformed { .. }
                | ImageError::TooLarge { .. }
                | ImageError::DecoderPanicked { .. } => Fault::User,
            },
            ClipError::Index(e) => match e.as_ref() {
                I::ModelMismatch { .. } | I::Refused { .. } => Fault::User,
                I::Sqlite { .. }
                | I::Io { .. }
                | I::Busy { .. }
                | I::Corrupt { .. }
                | I::Blank { .. }
                | I::NewerSchema { .. } => Fault::Runtime,
                I::Dimension { .. } => Fault::Bug,
            },
            ClipError::IndexDamaged { .. } => Fault::Runtime,
            // A context too small for the start and end tokens is set by the program.
            ClipError::Tokenize(TokenizeError::ContextTooSmall(_)) => Fault::Bug,
            ClipError::Io { error, .. } => io_fault(error),
            ClipError::Write { .. } | ClipError::DecodeThreads { .. } => Fault::Runtime,
        }
    }

    /// A stable, machine-readable name of the failure (`snake_case`), for JSON error bodies
    /// and scripts: unlike the message, it does not change with the wording.
    pub fn code(&self) -> &'static str {
        use clip_index::IndexError as I;
        match self {
            ClipError::ModelNotFound { .. } => "model_not_found",
            ClipError::Model(ModelError::Device { .. }) => "device_unavailable",
            ClipError::Model(ModelError::Input(_)) => "invalid_model_input",
            ClipError::Model(ModelError::Compute(_)) => "compute_failed",
            ClipError::Model(ModelError::Threads { .. }) => "threads_unavailable",
            ClipError::Model(_) => "invalid_checkpoint",
            ClipError::PreprocessConfig(_) | ClipError::PreprocessMismatch { .. } => {
                "invalid_preprocess_config"
            }
            ClipError::Image(ImageError::Io { .. }) => "image_unreadable",
            ClipError::Image(ImageError::FileTooLarge { .. } | ImageError::TooLarge { .. }) => {
                "image_too_large"
            }
            ClipError::Image(_) => "invalid_image",
            ClipError::Tokenize(TokenizeError::TooLong { .. }) => "text_too_long",
            ClipError::Tokenize(_) => "invalid_text",
            ClipError::Labels { .. } => "invalid_labels",
            ClipError::Templates { .. } | ClipError::UnknownTemplates { .. } => "invalid_templates",
            ClipError::Dataset { .. } => "invalid_dataset",
            ClipError::Exclude { .. } => "invalid_exclude",
            ClipError::NotExcluded { .. } => "not_excluded",
            ClipError::DefaultExclusion { .. } => "default_exclusion",
            ClipError::ExcludeRoot { .. } => "exclude_root",
            ClipError::ExcludedFolder { .. } => "excluded_folder",
            ClipError::Query { .. } => "invalid_query",
            ClipError::NoIndex { .. } => "no_index",
            ClipError::Interrupted { .. } => "interrupted",
            ClipError::IndexDamaged { .. } => "index_corrupt",
            ClipError::NoFolders { .. } => "no_folders",
            ClipError::Threshold { .. } => "invalid_threshold",
            ClipError::NotIndexed { .. } => "not_indexed",
            ClipError::NothingToForget { .. } => "nothing_to_forget",
            ClipError::RootUnavailable { .. } => "folder_unavailable",
            ClipError::Index(e) => match e.as_ref() {
                I::ModelMismatch { .. } => "index_model_mismatch",
                I::Refused { .. } => "scan_refused",
                I::Busy { .. } => "index_busy",
                I::Corrupt { .. } => "index_corrupt",
                I::Blank { .. } => "index_blank",
                I::NewerSchema { .. } => "index_newer_schema",
                I::Sqlite { .. } | I::Io { .. } => "index_failed",
                I::Dimension { .. } => "index_dimension",
            },
            ClipError::Write { .. } => "write_failed",
            ClipError::DecodeThreads { .. } => "threads_unavailable",
            ClipError::Io { .. } => "read_failed",
        }
    }
}

/// Patterns for a message: comma-separated, or "it has none of its own".
fn listed(patterns: &[String]) -> String {
    if patterns.is_empty() {
        "it has none of its own".to_string()
    } else {
        patterns.join(", ")
    }
}

/// A file the user named that is missing or not theirs to read is their mistake; any other
/// I/O failure is the system's.
fn io_fault(error: &std::io::Error) -> Fault {
    match error.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Fault::User,
        _ => Fault::Runtime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_and_codes() {
        let e = ClipError::Query { detail: "x".into() };
        assert_eq!((e.fault(), e.code()), (Fault::User, "invalid_query"));
        let e = ClipError::from(clip_index::IndexError::Busy {
            path: "i".into(),
            lock: "l".into(),
        });
        assert_eq!((e.fault(), e.code()), (Fault::Runtime, "index_busy"));
        let e = ClipError::Model(ModelError::Input("3 values for 2".into()));
        assert_eq!(e.fault(), Fault::Bug);
    }
}

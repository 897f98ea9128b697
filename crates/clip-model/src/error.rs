//! Typed errors of the model crate.

/// Loading or running a model failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `config.json` is unreadable, invalid, or describes an unsupported model.
    #[error("invalid model config {path}: {detail}")]
    Config {
        /// The config file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// `config.json` names a model family (`model_type`) this build cannot load.
    #[error(
        "{path}: model_type {model_type:?} is not a supported model family (supported: {known})"
    )]
    UnsupportedFamily {
        /// The config file.
        path: String,
        /// The `model_type` value.
        model_type: String,
        /// The families that are supported, comma-separated.
        known: String,
    },
    /// A file the model needs is not in the directory.
    #[error("{dir} has no {what} (looked for {tried})")]
    MissingFile {
        /// The model directory.
        dir: String,
        /// What was looked for, in words.
        what: &'static str,
        /// The file names tried.
        tried: String,
    },
    /// A weights file is corrupt, or lacks a tensor, or has one of the wrong shape.
    #[error("cannot load weights from {path}: {detail}")]
    Weights {
        /// The weights file(s).
        path: String,
        /// The loader's explanation (names the tensor).
        detail: String,
    },
    /// The compute threads could not be set up (the pool already runs, or the system refused
    /// to start threads).
    #[error("cannot use {threads} threads: {detail}")]
    Threads {
        /// How many were asked for.
        threads: usize,
        /// Why not.
        detail: String,
    },
    /// The requested compute device is not available in this build or on this machine.
    #[error("device {device} is not available: {detail}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why.
        detail: String,
    },
    /// The caller's input does not fit the model.
    #[error("invalid model input: {0}")]
    Input(String),
    /// The tensor library failed while computing.
    #[error("model computation failed: {0}")]
    Compute(candle_core::Error),
}

// Not `#[from]`: that would also make the error its `source`, and printing the chain would
// repeat the message.
impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        ModelError::Compute(e)
    }
}

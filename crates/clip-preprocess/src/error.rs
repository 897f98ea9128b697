//! Typed errors of this crate. Each names the input (file path or caller-given label) and the
//! offending value.

/// An image could not be turned into pixels.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read from disk.
    #[error("cannot read image {source_name}: {error}")]
    Io {
        /// Path or label of the input.
        source_name: String,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The file is bigger than any image the decode limits allow; it was not read.
    #[error(
        "{source_name}: file of {bytes} bytes is over the decode limit ({limit} bytes); not reading it"
    )]
    FileTooLarge {
        /// Path of the input.
        source_name: String,
        /// The file's size.
        bytes: u64,
        /// The largest file read.
        limit: u64,
    },
    /// The input has no bytes at all.
    #[error("{source_name}: empty file (0 bytes), not an image")]
    Empty {
        /// Path or label of the input.
        source_name: String,
    },
    /// The bytes are not one of the supported image formats.
    #[error(
        "{source_name}: not a supported image (JPEG, PNG, WebP, GIF, BMP or TIFF); the content {detected}"
    )]
    UnsupportedFormat {
        /// Path or label of the input.
        source_name: String,
        /// What the first bytes look like, e.g. "starts with `<html`".
        detected: String,
    },
    /// The image's pixel format is one we do not decode.
    #[error("{source_name}: unsupported {format} pixel format {color}")]
    UnsupportedColor {
        /// Path or label of the input.
        source_name: String,
        /// Container format, e.g. "PNG".
        format: String,
        /// The pixel format as the decoder named it.
        color: String,
    },
    /// The file claims a supported format but is truncated or corrupt.
    #[error("{source_name}: malformed {format} image: {detail}")]
    Malformed {
        /// Path or label of the input.
        source_name: String,
        /// Container format, e.g. "JPEG".
        format: String,
        /// The decoder's explanation.
        detail: String,
    },
    /// The header announces more pixels than the decode limits allow, or a decode that
    /// needs more memory than a decode may take; nothing was allocated.
    #[error(
        "{source_name}: {what} is over the decode limit ({limit}); refusing to decode it",
        what = image_size(*.width, *.height)
    )]
    TooLarge {
        /// Path or label of the input.
        source_name: String,
        /// Width from the header (0 when the decoder refused the header before giving it).
        width: u32,
        /// Height from the header.
        height: u32,
        /// The limit that was exceeded, in words.
        limit: String,
        /// Whether a larger pixel budget (`DecodeLimits::with_max_megapixels`, up to
        /// `MAX_MEGAPIXELS`) would let it in: false for an image whose decode needs more than
        /// the memory cap of a decode (`MAX_DECODE_BYTES`) whatever the budget.
        budget_helps: bool,
    },
    /// The decoder panicked on this input; the panic was caught.
    #[error(
        "{source_name}: the {format} decoder failed unexpectedly on this file (caught a panic)"
    )]
    DecoderPanicked {
        /// Path or label of the input.
        source_name: String,
        /// Container format.
        format: String,
    },
}

/// "image of WxH pixels", or "the image's header" when the size was not read.
fn image_size(width: u32, height: u32) -> String {
    if width == 0 || height == 0 {
        "the image's header".to_string()
    } else {
        format!("image of {width}x{height} pixels")
    }
}

/// Text could not be tokenized.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenizeError {
    /// The text needs more tokens than the context holds and truncation was not asked for.
    #[error("text needs {tokens} tokens but the context length is {context_length}: {preview:?}")]
    TooLong {
        /// Tokens needed, including start and end markers.
        tokens: usize,
        /// The model's context length.
        context_length: usize,
        /// The start of the text.
        preview: String,
    },
    /// A context length too small to hold the start and end markers.
    #[error("context length {0} is too small: it must hold at least the start and end tokens (2)")]
    ContextTooSmall(usize),
}

/// A preprocessing configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON is not valid or has a field of the wrong type.
    #[error("invalid preprocessor config {source_name}: {error}")]
    Json {
        /// Path or label of the config.
        source_name: String,
        /// The parser's error.
        error: serde_json::Error,
    },
    /// A field has a value we cannot honour.
    #[error("preprocessor config {source_name}: {field} = {value} is not supported ({reason})")]
    Unsupported {
        /// Path or label of the config.
        source_name: String,
        /// The field's name.
        field: &'static str,
        /// The field's value.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

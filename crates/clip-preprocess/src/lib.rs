//! Image decoding and CLIP preprocessing, and the CLIP BPE tokenizer, without any tensor
//! library: everything here produces plain `Vec`s that match the Python reference exactly.
//!
//! - [`image`]: decode a file (format sniffed, limits enforced, EXIF orientation applied),
//!   then resize / crop / normalize exactly as OpenAI's `preprocess` does.
//! - [`text`]: open_clip's text cleaning and OpenAI's byte-level BPE tokenizer.
pub mod error;
pub mod image;
pub mod text;

pub use error::{ConfigError, ImageError, TokenizeError};

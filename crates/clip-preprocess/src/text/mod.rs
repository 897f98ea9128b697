//! Text side of CLIP: ftfy-compatible cleaning and the BPE tokenizer.
pub mod ftfy;
mod generated;
pub mod tokenizer;

pub use tokenizer::{Tokenizer, Tokens, DEFAULT_CONTEXT_LENGTH};

//! Parity with the Python reference (Pillow + torchvision preprocessing, open_clip's tokenizer)
//! on the committed fixtures, and the bad-input checklist (empty, truncated, renamed, oversized, odd-mode files) for
//! decoding. Goldens come from `fixtures/generate.py`. The tests that measure allocations are
//! in `tests/alloc.rs`, a binary of their own.

#[path = "../common/mod.rs"]
mod common;

mod decode;
mod preprocess;
mod tokenizer;

//! Model-only parity with transformers' `CLIPModel` on the tiny checkpoints in `fixtures/models`
//! (made by `fixtures/generate.py`): the same pixels and token ids in, the same features out.

mod errors;
mod invariance;
mod loading;
mod parity;

use std::path::PathBuf;

use clip_test_support::{fixture, Goldens};

/// The checkpoint folder `fixtures/models/{name}`.
fn model_dir(name: &str) -> PathBuf {
    fixture(format!("models/{name}"))
}

/// The goldens' `pixel_values`, flattened, and the number of images.
fn pixels(g: &Goldens) -> (Vec<f32>, usize) {
    (g.f32s("pixel_values"), g.shape("pixel_values")[0])
}

/// The goldens' token ids (`input_ids`), the number of texts and each text's end position.
fn ids(g: &Goldens) -> (Vec<u32>, usize, Vec<usize>) {
    let rows = g.shape("input_ids")[0];
    let ids = g.i64s("input_ids").into_iter().map(|v| v as u32).collect();
    let eot = g
        .i64s("eot_positions")
        .into_iter()
        .map(|v| v as usize)
        .collect();
    (ids, rows, eot)
}

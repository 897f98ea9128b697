//! Times the Pillow-exact resize on a photo, alone and within the whole CLIP preprocessing.
//!
//! ```text
//! cargo run --release -p clip-preprocess --example resize_speed [-- IMAGE]
//! ```
//!
//! Decodes the image once (default `fixtures/photos/hubble_deep_field.jpg`), then prints the
//! median milliseconds per image of `resize_region` for the center crop of
//! `PreprocessConfig::openai(224)`, and of `preprocess` (resize, crop, normalize).

use std::path::PathBuf;
use std::time::Instant;

use clip_preprocess::image::resample::{self, Region};
use clip_preprocess::image::transform::shortest_edge_size;
use clip_preprocess::image::{self, preprocess, DecodeLimits, PreprocessConfig};

/// Median of `runs` timings of `f` (after a warm-up call), in milliseconds per call; each
/// timing averages `inner` calls.
fn median_ms(runs: usize, inner: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..inner {
                f();
            }
            start.elapsed().as_secs_f64() * 1e3 / inner as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() {
    let path = std::env::args_os().nth(1).map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/photos/hubble_deep_field.jpg")
        },
        PathBuf::from,
    );
    let img = image::open(&path, &DecodeLimits::default()).expect("decode");
    let cfg = PreprocessConfig::openai(224);
    let (rw, rh) = shortest_edge_size(img.width, img.height, 224);
    let (rw, rh) = (rw as usize, rh as usize);
    // torchvision's center crop: round((size - 224) / 2), ties to even.
    let origin = |size: usize| ((size - 224) as f64 / 2.0).round_ties_even() as usize;
    let region = Region {
        x: origin(rw),
        y: origin(rh),
        width: 224,
        height: 224,
    };
    let channels = img.mode.channels();
    println!(
        "{}: {}x{} {:?} -> {rw}x{rh}, crop {}x{} at ({}, {})",
        path.display(),
        img.width,
        img.height,
        img.mode,
        region.width,
        region.height,
        region.x,
        region.y
    );
    let resize_ms = median_ms(31, 10, || {
        let out = resample::resize_region(
            &img.data,
            img.width as usize,
            img.height as usize,
            channels,
            (rw, rh),
            region,
            cfg.filter,
        );
        std::hint::black_box(out);
    });
    let preprocess_ms = median_ms(31, 10, || {
        std::hint::black_box(preprocess(std::hint::black_box(&img), &cfg));
    });
    let decode_ms = median_ms(5, 2, || {
        std::hint::black_box(image::open(&path, &DecodeLimits::default()).expect("decode"));
    });
    println!("resize_region:     {resize_ms:.3} ms/image");
    println!("preprocess:        {preprocess_ms:.3} ms/image");
    println!("open (read+decode): {decode_ms:.3} ms/image");
}

//! Times the linear probe's fit on random clustered features.
//!
//! ```text
//! cargo run --release -p clip --example probe_speed [-- IMAGES DIM CLASSES [sweep]]
//! ```
//!
//! Defaults: 10,000 images of 512 dimensions in 100 classes. With `sweep`, also times the
//! choice of C on a validation split (`choose_c`, 19 warm-started fits).

use std::time::Instant;

use clip::eval::probe::{choose_c, LinearProbe, ProbeOptions};

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (n, d, k) = (arg(1, 10_000), arg(2, 512), arg(3, 100));
    // A deterministic pseudo-random stream (xorshift), centres per class plus noise.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres: Vec<Vec<f32>> = (0..k).map(|_| (0..d).map(|_| next()).collect()).collect();
    let targets: Vec<usize> = (0..n).map(|i| i % k).collect();
    let features: Vec<Vec<f32>> = targets
        .iter()
        .map(|&t| centres[t].iter().map(|c| c + 2.0 * next()).collect())
        .collect();
    let start = Instant::now();
    let probe = LinearProbe::fit(&features, &targets, k, &ProbeOptions::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} images x {d} dims, {k} classes: {secs:.2} s, {} iterations ({:.1} ms each), converged {}",
        probe.iterations,
        secs * 1e3 / probe.iterations.max(1) as f64,
        probe.converged
    );
    if std::env::args().nth(4).as_deref() == Some("sweep") {
        let start = Instant::now();
        let (c, tried) = choose_c(&features, &targets, k, &ProbeOptions::default()).unwrap();
        println!(
            "choosing C: {:.2} s for {} values, chose {c:e}",
            start.elapsed().as_secs_f64(),
            tried.len()
        );
    }
}

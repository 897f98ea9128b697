//! Times exact top-10 search over random unit vectors.
//!
//! ```text
//! cargo run --release -p clip-index --example search_speed [-- COUNT DIM]
//! ```
use std::time::Instant;

use clip_index::Vectors;

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).map_or(d, |a| a.parse().unwrap());
    let (n, dim) = (arg(1, 1_000_000), arg(2, 512));
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let data: Vec<f32> = (0..n * dim).map(|_| next()).collect();
    let paths = (0..n).map(|i| i.to_string()).collect();
    let v = Vectors::from_flat(paths, dim, data);
    let q: Vec<f32> = (0..dim).map(|_| next()).collect();
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let hits = v.top_k(&q, 10);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(hits.len(), 10);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{n} x {dim}: top-10 median {:.2} ms (min {:.2}, max {:.2})",
        times[10], times[0], times[20]
    );
}

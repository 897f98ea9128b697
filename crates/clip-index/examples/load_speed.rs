//! Times writing N random vectors into an index file and reading them all back (what
//! `clip search` does before it searches).
//!
//! ```text
//! cargo run --release -p clip-index --example load_speed [-- COUNT DIM]
//! ```
use std::time::Instant;

use clip_index::{Change, Index, IndexInfo};

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).map_or(d, |a| a.parse().unwrap());
    let (n, dim) = (arg(1, 100_000), arg(2, 512));
    let dir = std::env::temp_dir().join(format!("clip-load-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.sqlite");
    let info = IndexInfo {
        model: "random".into(),
        fingerprint: "0".into(),
        preprocess: "0".into(),
        dim,
    };
    let mut index = Index::open(&path, &info).unwrap();
    let start = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|&i| {
                let mut hash = [0u8; 32];
                hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Change::Embedded {
                    path: format!("/photos/{i:08}.jpg"),
                    size: 1,
                    mtime_ns: 1,
                    hash,
                    embedding: (0..dim)
                        .map(|j| ((i * 31 + j * 7) % 97) as f32 - 48.0)
                        .collect(),
                }
            })
            .collect();
        index.apply(&changes).unwrap();
    }
    println!(
        "{n} vectors written in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let v = index.vectors().unwrap();
    println!(
        "{} read back and normalized in {:.3} s",
        v.len(),
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let hits = v.top_k(v.vector(0), 10);
    println!(
        "searched in {:.1} ms ({} hits)",
        start.elapsed().as_secs_f64() * 1e3,
        hits.len()
    );
    drop(index);
    let start = Instant::now();
    let reopened = Index::open_existing(&path).unwrap();
    println!(
        "reopened (with its quick_check) in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}

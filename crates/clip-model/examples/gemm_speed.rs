//! GFLOP/s of the fast path's matrix product at CLIP's shapes: `cargo run --release --example gemm_speed`.
use clip_model::fast::kernels::{matmul, Act, Format, Out, Packed};

fn main() {
    for &(m, k, n) in &[
        (1600, 768, 2304),
        (1600, 768, 3072),
        (1600, 3072, 768),
        (50, 768, 2304),
        (50, 3072, 768),
        (2464, 512, 1536),
        (8, 512, 1536),
    ] {
        for format in [Format::F32, Format::Bf16] {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
                .collect();
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
                .collect();
            let p = Packed::new(&w, n, k, Some(vec![0.1; n]), format);
            let mut c = vec![0f32; m * n];
            matmul(&a, m, &p, &mut c, Out::Set, Act::None);
            let reps = (2e10 / (2.0 * (m * n * k) as f64)).max(3.0) as usize;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                matmul(&a, m, &p, &mut c, Out::Set, Act::None);
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{m:>5}x{k:>5}x{n:>5} {format:?}: {:>7.1} GFLOP/s ({:.2} ms)",
                2.0 * (m * n * k) as f64 / s / 1e9,
                s * 1e3
            );
        }
    }
}

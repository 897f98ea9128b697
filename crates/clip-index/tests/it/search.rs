//! Exact top-k search against brute force.

use clip_index::Vectors;

#[test]
fn search_equals_brute_force() {
    // Deterministic pseudo-random vectors, with a duplicate to make a tie.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let dim = 77;
    let mut items: Vec<(String, Vec<f32>)> = (0..3000)
        .map(|i| (format!("/p/{i:05}.jpg"), (0..dim).map(|_| next()).collect()))
        .collect();
    items[2000].1 = items[10].1.clone();
    let vectors = Vectors::new(items.clone(), dim);
    let query: Vec<f32> = items[10].1.iter().map(|x| x * 3.0).collect();
    let hits = vectors.top_k(&query, 25);
    // Brute force in f64 on the original vectors.
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let mut reference: Vec<(usize, f64)> = items
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let d: f64 = v
                .iter()
                .zip(&query)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            (i, d / norm(v) / norm(&query))
        })
        .collect();
    reference.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<usize> = hits.iter().map(|h| h.index).collect();
    let want: Vec<usize> = reference[..25].iter().map(|r| r.0).collect();
    assert_eq!(got, want);
    assert_eq!(&got[..2], [10, 2000], "the tie keeps path order");
    for (h, r) in hits.iter().zip(&reference) {
        assert!((f64::from(h.score) - r.1).abs() < 1e-5);
    }
}

//! What must not change the features: batching, padding after the end token, concurrency.

use clip_model::{DeviceKind, Engine, EngineOptions, Precision};
use clip_test_support::{cosine, Goldens};

use crate::{ids, model_dir, pixels};

#[test]
fn batch_invariance() {
    let engine = Engine::load(&model_dir("tiny-laion"), DeviceKind::Cpu).unwrap();
    let g = Goldens::model("tiny-laion");
    let (pixels, n) = pixels(&g);
    let batch = engine.image_features(&pixels, n).unwrap();
    let per = pixels.len() / n;
    for (i, row) in batch.iter().enumerate() {
        let alone = engine
            .image_features(&pixels[i * per..(i + 1) * per], 1)
            .unwrap();
        assert!(cosine(&alone[0], row) >= 0.99999, "image {i}");
    }
    // Texts of different lengths: alone vs. together (the batch is cut at the longest).
    let (ids, rows, eot) = ids(&g);
    let ctx = ids.len() / rows;
    let together = engine.text_features(&ids, rows, &eot).unwrap();
    for i in 0..rows {
        let alone = engine
            .text_features(&ids[i * ctx..(i + 1) * ctx], 1, &eot[i..=i])
            .unwrap();
        assert!(cosine(&alone[0], &together[i]) >= 0.99999, "text {i}");
    }
}

#[test]
fn padding_after_the_end_token_changes_nothing() {
    let engine = Engine::load(&model_dir("tiny-pth"), DeviceKind::Cpu).unwrap();
    let g = Goldens::model("tiny-pth");
    let (mut ids, rows, eot) = ids(&g);
    let ctx = ids.len() / rows;
    let before = engine.text_features(&ids, rows, &eot).unwrap();
    for (r, &e) in eot.iter().enumerate() {
        for id in &mut ids[r * ctx + e + 1..(r + 1) * ctx] {
            *id = 7;
        }
    }
    let after = engine.text_features(&ids, rows, &eot).unwrap();
    assert_eq!(before, after);
}

/// One engine used from many threads at once, including from inside the rayon pool (where
/// work stealing can run one product while another waits on the same thread), gives the
/// results it gives alone.
#[test]
fn concurrent_calls_give_the_same_features() {
    use rayon::prelude::*;
    for precision in [Precision::F32, Precision::Bf16] {
        let options = EngineOptions {
            precision,
            ..EngineOptions::new(DeviceKind::Cpu)
        };
        let engine = Engine::load_with(&model_dir("tiny-laion"), &options).unwrap();
        let g = Goldens::model("tiny-laion");
        let (pixels, n) = pixels(&g);
        let (ids, rows, eot) = ids(&g);
        let images = engine.image_features(&pixels, n).unwrap();
        let texts = engine.text_features(&ids, rows, &eot).unwrap();
        let results: Vec<_> = (0..16)
            .into_par_iter()
            .map(|i| {
                if i % 2 == 0 {
                    engine.image_features(&pixels, n).unwrap()
                } else {
                    engine.text_features(&ids, rows, &eot).unwrap()
                }
            })
            .collect();
        for (i, r) in results.iter().enumerate() {
            let want = if i % 2 == 0 { &images } else { &texts };
            assert_eq!(r, want, "{precision} call {i}");
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| engine.image_features(&pixels, n).unwrap()))
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), images, "{precision} thread");
            }
        });
    }
}

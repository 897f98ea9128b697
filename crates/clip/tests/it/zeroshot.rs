//! Zero-shot classifiers: template ensembles against the Python reference, and their cache.

use clip::{Clip, Device};
use clip_test_support::{fixture, fixture_json, max_abs_diff, temp_dir};

/// A template ensemble's class embeddings equal those open_clip's method gives with
/// transformers on the same checkpoint (`fixtures/zeroshot/ensemble.json`).
#[test]
fn template_ensembles_match_the_python_reference() {
    let golden = fixture_json("zeroshot/ensemble.json");
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let classes: Vec<String> = serde_json::from_value(golden["classes"].clone()).unwrap();
    let templates = clip::Templates::builtin(golden["templates"].as_str().unwrap()).unwrap();
    let ours = model
        .zero_shot_classifier(&classes, &templates, false)
        .unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(golden["class_embeddings"].clone()).unwrap();
    assert_eq!(ours.len(), want.len());
    for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
        let d = max_abs_diff(a, b);
        assert!(d <= 1e-5, "class {i}: max abs diff {d:e}");
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "class {i}: norm {norm}");
    }
    // Without templates, a class is its name's own (normalized) embedding.
    let plain = model
        .zero_shot_classifier(&["cat"], &clip::Templates::none(), false)
        .unwrap();
    let direct = model
        .encode_text(&model.tokenize_all(&["cat"], false).unwrap())
        .unwrap();
    assert!(max_abs_diff(&plain[0], &clip::normalized(&direct[0])) <= 1e-6);
}

/// The classifier cache returns what was computed, misses on other templates, and survives a
/// corrupt entry.
#[test]
fn classifier_cache_hits_misses_and_repairs() {
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let templates = clip::Templates::builtin("cifar10").unwrap();
    let classes = ["cat", "dog"];
    let cached = clip::ClassifierOptions {
        cache_dir: Some(cache.to_path_buf()),
        ..Default::default()
    };
    let build = |templates: &clip::Templates| {
        model
            .zero_shot_classifier_with(&classes, templates, &cached, &mut |_| {})
            .unwrap()
    };
    let first = build(&templates);
    assert_eq!((first.cached, first.warnings.len()), (0, 0));
    let second = build(&templates);
    assert_eq!(second.cached, 2);
    assert_eq!(first.rows, second.rows);
    assert_eq!(
        build(&clip::Templates::none()).cached,
        0,
        "other templates are another entry"
    );
    let files = files_in(cache);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        std::fs::write(f, b"CLIPZS1\ngarbage").unwrap();
    }
    let repaired = build(&templates);
    assert_eq!(repaired.cached, 0);
    assert_eq!(repaired.rows, first.rows);
    assert_eq!(build(&templates).cached, 2, "the repaired entry is used");
    cache_dir.close().unwrap();
}

/// A cache entry damaged on disk (bytes overwritten inside its rows, as the user trial did,
/// or cut short) is never used: the call warns naming the file, computes the rows again and
/// rewrites the file, which the next call reads. An entry of the earlier format, without a
/// checksum, is computed again once, without a warning; the file name (the key) is the same.
#[test]
fn a_damaged_cache_entry_is_noticed_and_rewritten() {
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let templates = clip::Templates::builtin("cifar10").unwrap();
    let classes = ["cat", "dog", "horse"];
    let options = clip::ClassifierOptions {
        cache_dir: Some(cache.to_path_buf()),
        ..Default::default()
    };
    let build = || {
        model
            .zero_shot_classifier_with(&classes, &templates, &options, &mut |_| {})
            .unwrap()
    };
    let fresh = build();
    let files = files_in(cache);
    assert_eq!(files.len(), 1);
    let file = &files[0];
    let good = std::fs::read(file).unwrap();
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 3] = [
        ("rows overwritten", |b| {
            let at = b.len() - 32 - 40;
            b[at..at + 8].copy_from_slice(&[0x7f; 8]);
        }),
        ("cut short", |b| b.truncate(b.len() - 100)),
        ("checksum overwritten", |b| *b.last_mut().unwrap() ^= 1),
    ];
    for (what, damage) in damages {
        let mut bytes = good.clone();
        damage(&mut bytes);
        std::fs::write(file, &bytes).unwrap();
        let entries = clip::zeroshot::cache_entries(cache).unwrap();
        assert!(
            entries[0]
                .problem
                .as_deref()
                .unwrap_or("")
                .starts_with("damaged"),
            "{what}: {entries:?}"
        );
        let repaired = build();
        assert_eq!(repaired.cached, 0, "{what}");
        assert_eq!(repaired.rows, fresh.rows, "{what}");
        assert_eq!(
            repaired.warnings.len(),
            1,
            "{what}: {:?}",
            repaired.warnings
        );
        let w = &repaired.warnings[0];
        assert!(
            w.contains(file.to_str().unwrap()) && w.contains("damaged") && w.contains("rewrote"),
            "{what}: {w}"
        );
        assert_eq!(std::fs::read(file).unwrap(), good, "{what}: rewritten");
        let again = build();
        assert_eq!((again.cached, again.warnings.len()), (3, 0), "{what}");
    }
    // The earlier format: the same file without the checksum, under the same name.
    let mut old = good.clone();
    old.truncate(old.len() - 32);
    old[..8].copy_from_slice(b"CLIPZS1\n");
    std::fs::write(file, &old).unwrap();
    let entries = clip::zeroshot::cache_entries(cache).unwrap();
    assert!(
        entries[0]
            .problem
            .as_deref()
            .unwrap_or("")
            .contains("earlier version"),
        "{entries:?}"
    );
    assert_eq!(entries[0].classes, 3, "the old entry's key is still read");
    let upgraded = build();
    assert_eq!((upgraded.cached, upgraded.warnings.len()), (0, 0));
    assert_eq!(upgraded.rows, fresh.rows);
    assert_eq!(files_in(cache), files, "the same file name");
    assert_eq!(std::fs::read(file).unwrap(), good);
    assert_eq!(build().cached, 3);
}

fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// A computation stopped partway (here by a panic after the second class, as Ctrl-C stops a
/// run) keeps the classes done in the cache; the next run computes only the rest, and gets
/// the rows a run from scratch gets.
#[test]
fn an_interrupted_classifier_is_continued() {
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    // One class per model call, so each class is kept as it is done.
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu)
        .unwrap()
        .with_batch_size(1);
    let templates = clip::Templates::none();
    let classes = ["cat", "dog", "horse", "bird"];
    let options = clip::ClassifierOptions {
        cache_dir: Some(cache.to_path_buf()),
        ..Default::default()
    };
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut done = 0;
        model.zero_shot_classifier_with(&classes, &templates, &options, &mut |n| {
            done += n;
            assert!(done < 2, "interrupted");
        })
    }));
    assert!(stopped.is_err());
    let files = files_in(cache);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_str().unwrap().ends_with(".classifier.partial"));
    let entries = clip::zeroshot::cache_entries(cache).unwrap();
    assert_eq!((entries[0].partial, entries[0].classes), (Some(2), 4));
    // A row half written when the run was killed is dropped.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&files[0], bytes).unwrap();

    let mut steps = Vec::new();
    let resumed = model
        .zero_shot_classifier_with(&classes, &templates, &options, &mut |n| steps.push(n))
        .unwrap();
    assert_eq!(resumed.cached, 2);
    assert_eq!(steps, [2, 1, 1], "the classes kept, then one per call");
    let fresh = model
        .zero_shot_classifier(&classes, &templates, false)
        .unwrap();
    for (a, b) in resumed.rows.iter().zip(&fresh) {
        assert!(max_abs_diff(a, b) <= 1e-6);
    }
    let files = files_in(cache);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].to_str().unwrap().ends_with(".classifier"),
        "the partial file is gone"
    );
    let again = model
        .zero_shot_classifier_with(&classes, &templates, &options, &mut |_| {})
        .unwrap();
    assert_eq!((again.cached, again.rows), (4, resumed.rows));
    assert_eq!(clip::zeroshot::clear_cache(cache).unwrap().0, 1);
}

/// `options.stop` (what Ctrl-C sets in the CLI) stops the computation before the next model
/// call: the call fails with `Interrupted`, saying how many classes are kept and where; the
/// next call continues. A row of the partial file damaged on disk is not used: the rows before
/// it are kept, the rest computed again, with a warning naming the file.
#[test]
fn a_stopped_classifier_says_what_it_kept_and_damaged_rows_are_computed_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu)
        .unwrap()
        .with_batch_size(1);
    let templates = clip::Templates::none();
    let classes = ["cat", "dog", "horse", "bird", "fish"];
    let stop = Arc::new(AtomicBool::new(false));
    let options = clip::ClassifierOptions {
        cache_dir: Some(cache.to_path_buf()),
        stop: Some(stop.clone()),
        ..Default::default()
    };
    let mut done = 0;
    let e = model
        .zero_shot_classifier_with(&classes, &templates, &options, &mut |n| {
            done += n;
            if done == 3 {
                stop.store(true, Ordering::SeqCst);
            }
        })
        .unwrap_err();
    let partial = files_in(cache).pop().unwrap();
    assert!(partial.to_str().unwrap().ends_with(".classifier.partial"));
    match &e {
        clip::ClipError::Interrupted {
            done,
            total,
            kept_in,
        } => {
            assert_eq!((*done, *total), (3, 5));
            assert_eq!(kept_in.as_deref(), partial.to_str());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.code(), "interrupted");
    assert!(e
        .to_string()
        .starts_with("interrupted: kept the label embeddings of 3 of 5 classes in "));
    // Damage the second row's values: the first is kept, the rest computed again.
    let mut bytes = std::fs::read(&partial).unwrap();
    // Each row: its values, then a 32-byte checksum.
    let row = model.embedding_dim() * 4 + 32;
    let header = bytes.len() - 3 * row;
    bytes[header + row + 4] ^= 0x40;
    std::fs::write(&partial, &bytes).unwrap();
    let entries = clip::zeroshot::cache_entries(cache).unwrap();
    assert_eq!(entries[0].partial, Some(1));
    assert!(entries[0]
        .problem
        .as_deref()
        .unwrap()
        .starts_with("damaged after 1 classes"));
    stop.store(false, Ordering::SeqCst);
    let mut steps = Vec::new();
    let resumed = model
        .zero_shot_classifier_with(&classes, &templates, &options, &mut |n| steps.push(n))
        .unwrap();
    assert_eq!(resumed.cached, 1);
    assert_eq!(steps, [1, 1, 1, 1, 1]);
    assert_eq!(resumed.warnings.len(), 1, "{:?}", resumed.warnings);
    assert!(
        resumed.warnings[0].contains(partial.to_str().unwrap())
            && resumed.warnings[0].contains("damaged after 1 classes"),
        "{:?}",
        resumed.warnings
    );
    let fresh = model
        .zero_shot_classifier(&classes, &templates, false)
        .unwrap();
    for (a, b) in resumed.rows.iter().zip(&fresh) {
        assert!(max_abs_diff(a, b) <= 1e-6);
    }
    // Without a cache nothing is kept, and the error says so.
    stop.store(true, Ordering::SeqCst);
    let no_cache = clip::ClassifierOptions {
        stop: Some(stop.clone()),
        ..Default::default()
    };
    let e = model
        .zero_shot_classifier_with(&classes, &templates, &no_cache, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            e,
            clip::ClipError::Interrupted {
                done: 0,
                total: 5,
                kept_in: None
            }
        ),
        "{e:?}"
    );
}

/// A cache that cannot be written (its folder cannot be made here; a full disk fails the same
/// way, see the unit test of the atomic write) gives the classifier all the same, with a
/// warning, and leaves no file behind.
#[test]
fn an_unwritable_cache_warns_and_leaves_nothing() {
    let tmp = temp_dir();
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let model = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let options = clip::ClassifierOptions {
        cache_dir: Some(blocker.join("cache")),
        ..Default::default()
    };
    let c = model
        .zero_shot_classifier_with(
            &["cat", "dog"],
            &clip::Templates::none(),
            &options,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(c.rows.len(), 2);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("cannot keep the label embeddings")
            && c.warnings[0].contains("a-file"),
        "{:?}",
        c.warnings
    );
    assert_eq!(files_in(tmp.path()), [blocker]);
}

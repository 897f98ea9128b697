//! What an index knows of its model, and what of the model its users read: a same-size swap
//! of the weights is another model, an index of an earlier version keeps opening, and scans
//! and searches read only the towers they need (counted by `Clip::loaded_towers`).

use std::path::{Path, PathBuf};

use clip::photos::{
    ensure_compatible, model_match, open_for_search, Index, IndexError, IndexInfo, ModelMatch,
    Query, Scan, ScanOptions,
};
use clip::{Clip, ClipError, Device, LoadedTowers};
use clip_test_support::{copy_model, fine_tune_in_place, fixture, temp_dir};

const NONE: LoadedTowers = LoadedTowers {
    image: false,
    text: false,
};

/// A folder of three photos in `dir`.
fn photos(dir: &Path) -> PathBuf {
    let lib = dir.join("photos");
    std::fs::create_dir_all(&lib).unwrap();
    for f in ["chelsea.png", "horse.png", "rocket.jpg"] {
        std::fs::copy(fixture("photos").join(f), lib.join(f)).unwrap();
    }
    lib
}

fn load(name: &str) -> Result<Clip, ClipError> {
    Clip::load(name, Device::Cpu)
}

/// Scans `index` over `folders` (none: its own) with `model`, returning the model used and
/// the report.
fn scan(
    index: &Path,
    folders: &[PathBuf],
    model: Option<&str>,
) -> Result<(Clip, clip::photos::ScanReport), ClipError> {
    let mut scan = Scan::open(index, folders, model, load)?;
    let report = scan.run(&ScanOptions::default(), &mut |_| {})?;
    let (model, _) = scan.into_parts();
    Ok((model, report))
}

fn is_mismatch(e: &ClipError) -> bool {
    matches!(e, ClipError::Index(e) if matches!(e.as_ref(), IndexError::ModelMismatch { .. }))
}

#[test]
fn weights_swapped_in_place_for_the_same_size_are_another_model() {
    let tmp = temp_dir();
    let model_dir = tmp.path().join("model");
    copy_model("tiny-openai", &model_dir);
    let model = model_dir.to_str().unwrap();
    let lib = photos(tmp.path());
    let index = tmp.path().join("index.sqlite");
    let (before, report) = scan(&index, std::slice::from_ref(&lib), Some(model)).unwrap();
    assert_eq!(report.embedded, 3);
    let id = before.identity();
    assert_eq!(id.fingerprint.len(), 32);
    drop(before);
    // Fine-tuned into the same folder: same names, shapes and sizes, other values.
    let weights = model_dir.join("model.safetensors");
    let size = std::fs::metadata(&weights).unwrap().len();
    fine_tune_in_place(&weights, 1e-3);
    assert_eq!(std::fs::metadata(&weights).unwrap().len(), size);
    let after = load(model).unwrap().identity();
    assert_eq!(
        after.legacy_fingerprint, id.legacy_fingerprint,
        "the sizes-only fingerprint cannot tell them apart"
    );
    assert_ne!(after.fingerprint, id.fingerprint);
    // Refused by a scan (the index's model by default) and by a search, naming the index.
    let e = scan(&index, &[], None).unwrap_err();
    assert!(is_mismatch(&e), "{e}");
    assert!(
        e.to_string().contains(index.to_str().unwrap()) && e.to_string().contains(&id.fingerprint),
        "{e}"
    );
    let e = open_for_search(&index, None, load).unwrap_err();
    assert!(is_mismatch(&e), "{e}");
    // Nothing was written: with the old weights back, the index takes them.
    copy_model("tiny-openai", &model_dir);
    let (restored, report) = scan(&index, &[], None).unwrap();
    assert_eq!(restored.identity().fingerprint, id.fingerprint);
    assert_eq!((report.unchanged, report.embedded), (3, 0));
}

#[test]
fn an_index_of_the_sizes_only_fingerprint_opens_and_is_upgraded_by_a_scan() {
    let tmp = temp_dir();
    let lib = photos(tmp.path());
    let path = tmp.path().join("index.sqlite");
    let model = fixture("models/tiny-openai");
    let clip = Clip::from_dir(&model, Device::Cpu).unwrap();
    let id = clip.identity();
    // The fingerprint earlier versions recorded, as they computed it: FNV-1a of the
    // dimension, config.json and the weight files' sizes.
    let fnv = |bytes: &[u8], h: u64| {
        bytes
            .iter()
            .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    };
    let mut h = fnv(id.dim.to_string().as_bytes(), 0xcbf2_9ce4_8422_2325);
    h = fnv(&std::fs::read(model.join("config.json")).unwrap(), h);
    let size = std::fs::metadata(model.join("model.safetensors"))
        .unwrap()
        .len();
    h = fnv(&size.to_le_bytes(), h);
    assert_eq!(id.legacy_fingerprint, format!("{h:016x}"));
    // An index as those versions wrote it.
    let old = IndexInfo {
        fingerprint: id.legacy_fingerprint.clone(),
        ..clip.index_info()
    };
    let mut index = Index::open(&path, &old).unwrap();
    let report = clip
        .update_index(
            &mut index,
            std::slice::from_ref(&lib),
            &ScanOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(report.embedded, 3);
    drop(index);
    assert_eq!(
        model_match(&Index::open_existing(&path).unwrap(), &id),
        ModelMatch::Legacy
    );
    // The sizes-only fingerprint cannot tell a fine-tune in place from its model; the photos'
    // vectors can: a few are embedded again, and a model that gives others is refused.
    let tuned_dir = tmp.path().join("tuned");
    copy_model("tiny-openai", &tuned_dir);
    fine_tune_in_place(&tuned_dir.join("model.safetensors"), 0.5);
    let tuned = Clip::from_dir(&tuned_dir, Device::Cpu).unwrap();
    let existing = Index::open_read_only(&path).unwrap();
    assert_eq!(
        model_match(&existing, &tuned.identity()),
        ModelMatch::Legacy
    );
    let e = ensure_compatible(&existing, &tuned, &path).unwrap_err();
    assert!(is_mismatch(&e), "{e}");
    assert_eq!(
        ensure_compatible(&existing, &clip, &path).unwrap(),
        ModelMatch::Legacy
    );
    drop(existing);
    // Searched with its model as it is (read-only: not upgraded).
    let (index, _) = open_for_search(&path, Some(model.to_str().unwrap()), load).unwrap();
    assert_eq!(index.info().fingerprint, id.legacy_fingerprint);
    drop(index);
    // A scan takes it and records the content fingerprint, keeping every vector.
    let (_, report) = scan(&path, &[], Some(model.to_str().unwrap())).unwrap();
    assert_eq!(report.unchanged, 3);
    let index = Index::open_existing(&path).unwrap();
    assert_eq!(index.info().fingerprint, id.fingerprint);
    assert_eq!(model_match(&index, &id), ModelMatch::Same);
    assert_eq!(index.embeddings().unwrap().len(), 3);
    // Another model is still refused.
    let other = Clip::from_dir(&fixture("models/tiny-laion"), Device::Cpu).unwrap();
    assert_eq!(model_match(&index, &other.identity()), ModelMatch::Other);
}

#[test]
fn searches_and_scans_read_only_the_towers_they_need() {
    let tmp = temp_dir();
    let lib = photos(tmp.path());
    let path = tmp.path().join("index.sqlite");
    let model = fixture("models/tiny-openai");
    let model = model.to_str().unwrap();
    // A new index: the image tower is read before the index is made; no text tower.
    let (clip, report) = scan(&path, std::slice::from_ref(&lib), Some(model)).unwrap();
    assert_eq!(report.embedded, 3);
    assert_eq!(
        clip.loaded_towers(),
        LoadedTowers {
            image: true,
            text: false
        }
    );
    // Loading reads no tower.
    assert_eq!(load(model).unwrap().loaded_towers(), NONE);
    // A scan that finds nothing new reads none; nor does one that only reuses a vector (a
    // copy of an indexed photo).
    let (clip, report) = scan(&path, &[], None).unwrap();
    assert_eq!((report.unchanged, report.embedded), (3, 0));
    assert_eq!(clip.loaded_towers(), NONE);
    std::fs::copy(lib.join("horse.png"), lib.join("horse-copy.png")).unwrap();
    let (clip, report) = scan(&path, &[], None).unwrap();
    assert_eq!((report.reused, report.embedded), (1, 0));
    assert_eq!(clip.loaded_towers(), NONE);
    // A new photo reads the image tower only.
    std::fs::copy(fixture("photos/coins.png"), lib.join("coins.png")).unwrap();
    let (clip, report) = scan(&path, &[], None).unwrap();
    assert_eq!(report.embedded, 1);
    assert_eq!(
        clip.loaded_towers(),
        LoadedTowers {
            image: true,
            text: false
        }
    );
    let search = |texts: &[&str], images: &[PathBuf]| {
        let (index, clip) = open_for_search(&path, None, load).unwrap();
        assert_eq!(clip.loaded_towers(), NONE);
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let query = Query::parse(&texts, images, &[]).unwrap();
        let q = clip
            .query_vector(query.terms(), Some(&index), false)
            .unwrap();
        assert_eq!(q.len(), clip.embedding_dim());
        clip.loaded_towers()
    };
    // A text: the text tower only.
    assert_eq!(
        search(&["a horse -people"], &[]),
        LoadedTowers {
            image: false,
            text: true
        }
    );
    // An indexed photo, unchanged: no tower.
    assert_eq!(search(&[], &[lib.join("horse.png")]), NONE);
    // A photo not in the index: the image tower.
    let outside = fixture("photos/camera.png");
    assert_eq!(
        search(&[], &[outside]),
        LoadedTowers {
            image: true,
            text: false
        }
    );
}

//! Photo library scans into an index, and queries of it.

use std::path::Path;

use clip::{Clip, Device};
use clip_test_support::{fixture, max_abs_diff, temp_dir};

#[test]
fn library_scans_and_searches() {
    use clip::photos::{load_vectors, Index, QueryTerm, ScanOptions, ScanProgress};
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    std::fs::create_dir_all(&lib).unwrap();
    for f in ["chelsea.png", "horse.png", "rocket.jpg"] {
        std::fs::copy(fixture("photos").join(f), lib.join(f)).unwrap();
    }
    let clip = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu)
        .unwrap()
        .with_batch_size(2);
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let mut events = Vec::new();
    let report = clip
        .update_index(
            &mut index,
            std::slice::from_ref(&lib),
            &ScanOptions::default(),
            &mut |p| events.push(p),
        )
        .unwrap();
    assert_eq!((report.files, report.embedded), (3, 3));
    assert_eq!(
        events,
        [
            ScanProgress::Planned {
                files: 3,
                to_read: 3
            },
            ScanProgress::Done(2),
            ScanProgress::Done(1)
        ]
    );
    // Stored vectors are the unit embeddings of the files.
    let vectors = load_vectors(&index).unwrap();
    // Decoding in a pool of its own gives the same index.
    let mut own_pool = Index::open(&dir.join("own-pool.sqlite"), &clip.index_info()).unwrap();
    let options = ScanOptions {
        decode_threads: Some(1),
        ..Default::default()
    };
    let report = clip
        .update_index(
            &mut own_pool,
            std::slice::from_ref(&lib),
            &options,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((report.files, report.embedded), (3, 3));
    assert_eq!(own_pool.embeddings().unwrap(), index.embeddings().unwrap());
    let horse = lib.join("horse.png").canonicalize().unwrap();
    let row = vectors.find(horse.to_str().unwrap()).unwrap();
    let embed_file = |p: &Path| {
        clip.encode_image(&[clip.load_image(p).unwrap()])
            .unwrap()
            .remove(0)
    };
    let image_query = |p: &Path, index: &Index| {
        clip.query_vector(
            &[(QueryTerm::Image(p.to_path_buf()), 1.0)],
            Some(index),
            false,
        )
        .unwrap()
    };
    let direct = embed_file(&horse);
    assert!(max_abs_diff(vectors.vector(row), &clip::normalized(&direct)) < 1e-6);
    // An image query finds itself first, with similarity 1.
    let q = image_query(&horse, &index);
    let hits = vectors.top_k(&q, 3);
    assert_eq!(hits[0].index, row);
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    // Weighted terms: the normalized weighted sum of the unit embeddings.
    let text = clip
        .encode_text(&[clip.tokenize("a horse", false).unwrap()])
        .unwrap()
        .remove(0);
    let q = clip
        .query_vector(
            &[
                (QueryTerm::Text("a horse".into()), 1.0),
                (QueryTerm::Image(horse), -0.5),
            ],
            Some(&index),
            false,
        )
        .unwrap();
    let manual: Vec<f32> = clip::normalized(&text)
        .iter()
        .zip(clip::normalized(&direct))
        .map(|(t, i)| t - 0.5 * i)
        .collect();
    assert!(max_abs_diff(&q, &clip::normalized(&manual)) < 1e-5);
    let rescan = |index: &mut Index| {
        clip.update_index(
            index,
            std::slice::from_ref(&lib),
            &ScanOptions::default(),
            &mut |_| {},
        )
        .unwrap()
    };
    // A rerun reads nothing.
    let again = rescan(&mut index);
    assert_eq!((again.unchanged, again.embedded), (3, 0));
    // A file that could not be read last time is read again although it did not change (a
    // permission fixed); one that could not be decoded waits for a change.
    let files = index.files().unwrap();
    let failed = |name: &str, hash: Option<clip::photos::Hash>| {
        let path = lib.join(name).canonicalize().unwrap();
        let path = path.to_str().unwrap().to_string();
        let state = &files[&path];
        clip::photos::Change::Failed {
            path,
            size: state.size,
            mtime_ns: state.mtime_ns,
            hash,
            error: "earlier failure".into(),
        }
    };
    index
        .apply(&[
            failed("chelsea.png", None),
            failed("rocket.jpg", Some([7; 32])),
        ])
        .unwrap();
    let third = rescan(&mut index);
    assert_eq!(
        (third.unchanged, third.reused, third.failed_before),
        (1, 1, 1),
        "{third:?}"
    );
    // Identical new files in one scan, in one batch or across batches (batches of 2 in name
    // order: [a-twin, b-twin], [bad-a, bad-b], [z-twin]): one is decoded, the others reuse its
    // vector or share its failure.
    let mut twin = std::fs::read(fixture("photos/coins.png")).unwrap();
    twin.extend_from_slice(b"new bytes");
    for name in ["a-twin.png", "b-twin.png", "z-twin.png"] {
        std::fs::write(lib.join(name), &twin).unwrap();
    }
    // A JPEG by its first bytes that cannot be decoded.
    let broken = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 and then nothing of use";
    std::fs::write(lib.join("bad-a.jpg"), broken).unwrap();
    std::fs::write(lib.join("bad-b.jpg"), broken).unwrap();
    let fourth = rescan(&mut index);
    assert_eq!((fourth.embedded, fourth.reused), (1, 2), "{fourth:?}");
    let mut failed: Vec<&str> = fourth.failed.iter().map(|f| f.path.as_str()).collect();
    failed.sort();
    assert_eq!(failed.len(), 2);
    assert!(failed[0].ends_with("bad-a.jpg") && failed[1].ends_with("bad-b.jpg"));
    let copies = fourth
        .failed
        .iter()
        .filter(|f| f.error.contains("same content as"));
    assert_eq!(copies.count(), 1, "{fourth:?}");
    let vectors = load_vectors(&index).unwrap();
    let at = |name: &str| {
        let p = lib.join(name).canonicalize().unwrap();
        vectors
            .vector(vectors.find(p.to_str().unwrap()).unwrap())
            .to_vec()
    };
    assert_eq!(at("a-twin.png"), at("b-twin.png"));
    assert_eq!(at("a-twin.png"), at("z-twin.png"));
    // An image query for an indexed file that changed since is embedded afresh, not taken
    // from the index.
    let horse = lib.join("horse.png");
    std::fs::copy(fixture("photos/rocket.jpg"), &horse).unwrap();
    let fresh = clip::normalized(&embed_file(&horse));
    assert!(max_abs_diff(&image_query(&horse, &index), &fresh) < 1e-6);
}

#[test]
fn a_scan_does_not_read_files_too_big_to_be_images() {
    use clip::photos::{Index, ScanOptions};
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(fixture("photos/horse.png"), lib.join("horse.png")).unwrap();
    std::fs::copy(fixture("photos/rocket.jpg"), lib.join("rocket.jpg")).unwrap();
    let small = std::fs::metadata(lib.join("horse.png")).unwrap().len();
    let clip = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu)
        .unwrap()
        .with_decode_limits(clip::DecodeLimits {
            max_alloc_bytes: small,
            ..Default::default()
        });
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let report = clip
        .update_index(&mut index, &[lib], &ScanOptions::default(), &mut |_| {})
        .unwrap();
    // The small file is read (its pixels are over the limit too, so it fails decoding); the
    // big one is refused by its size.
    let rocket = report
        .failed
        .iter()
        .find(|f| f.path.ends_with("rocket.jpg"));
    let error = &rocket.unwrap().error;
    assert!(error.contains("bytes is over the decode limit"), "{error}");
    let horse = report.failed.iter().find(|f| f.path.ends_with("horse.png"));
    assert!(!horse.unwrap().error.contains("bytes is over"), "{horse:?}");
}

//! Rows in, rows out: changes, reopening with another model, damaged and read-only files.

use clip_index::{content_hash, Change, Index, IndexError, IndexInfo};
use clip_test_support::temp_dir;

use crate::{embedded, info};

#[test]
fn changes_are_stored_and_refused_for_another_model() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let path = dir.join("sub/index.sqlite");
    let mut index = Index::open(&path, &info("A", 2)).unwrap();
    index
        .apply(&[
            embedded("/p/a.jpg", b"aaa", vec![1.0, 0.0]),
            embedded("/p/b.jpg", b"bbb", vec![0.0, 1.0]),
            Change::Failed {
                path: "/p/bad.jpg".into(),
                size: 3,
                mtime_ns: 9,
                hash: None,
                error: "not an image".into(),
            },
        ])
        .unwrap();
    // A copy of a.jpg reuses its vector.
    assert!(index.has_vector(&content_hash(b"aaa")).unwrap());
    index
        .apply(&[Change::Reused {
            path: "/p/copy.jpg".into(),
            size: 3,
            mtime_ns: 8,
            hash: content_hash(b"aaa"),
        }])
        .unwrap();
    // Embedded files in path order, failures left out; vectors() normalizes them.
    assert_eq!(
        index.embeddings().unwrap(),
        [
            ("/p/a.jpg".to_string(), vec![1.0, 0.0]),
            ("/p/b.jpg".to_string(), vec![0.0, 1.0]),
            ("/p/copy.jpg".to_string(), vec![1.0, 0.0]),
        ]
    );
    index
        .apply(&[embedded("/a/long.jpg", b"long", vec![3.0, 4.0])])
        .unwrap();
    let v = index.vectors().unwrap();
    assert_eq!(v.len(), 4);
    assert_eq!((v.path(0), v.vector(0)), ("/a/long.jpg", &[0.6, 0.8][..]));
    assert_eq!((v.path(3), v.vector(3)), ("/p/copy.jpg", &[1.0, 0.0][..]));
    index.forget("/a").unwrap();
    // One file can be forgotten too.
    index
        .apply(&[embedded("/q/one.jpg", b"one", vec![0.6, 0.8])])
        .unwrap();
    assert_eq!(index.forget("/q/one.jpg").unwrap().files, 1);
    let files = index.files().unwrap();
    assert_eq!(files.len(), 4);
    assert_eq!(files["/p/bad.jpg"].error.as_deref(), Some("not an image"));
    assert_eq!(
        index.embedding_of("/p/copy.jpg").unwrap(),
        Some(vec![1.0, 0.0])
    );
    let status = index.status().unwrap();
    assert_eq!((status.indexed, status.vectors), (3, 2));
    assert_eq!(
        status.failed,
        [("/p/bad.jpg".into(), "not an image".into())]
    );
    // A wrong-size vector is refused and nothing of its transaction is kept.
    let e = index
        .apply(&[
            embedded("/p/c.jpg", b"ccc", vec![1.0, 1.0]),
            embedded("/p/d.jpg", b"ddd", vec![1.0]),
        ])
        .unwrap_err();
    assert!(
        matches!(e, IndexError::Dimension { got: 1, dim: 2, .. }),
        "{e}"
    );
    assert!(!index.files().unwrap().contains_key("/p/c.jpg"));
    drop(index);
    // Reopened with the same model: the rows are there. With another: refused, naming both.
    let index = Index::open(&path, &info("A", 2)).unwrap();
    assert_eq!(index.embeddings().unwrap().len(), 3);
    let e = Index::open(&path, &info("B", 2)).unwrap_err().to_string();
    assert!(e.contains("model A") && e.contains("not B"), "{e}");
    let e = Index::open(
        &path,
        &IndexInfo {
            dim: 3,
            ..info("A", 2)
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("2 dimensions"), "{e}");
    let other_pre = IndexInfo {
        preprocess: "other".into(),
        ..info("A", 2)
    };
    let e = Index::open(&path, &other_pre).unwrap_err().to_string();
    assert!(
        e.contains("preprocessing pre") && e.contains("preprocessing other"),
        "{e}"
    );
    assert_eq!(Index::open_existing(&path).unwrap().info(), &info("A", 2));
    assert_eq!(index.integrity_check().unwrap(), "ok");
    drop(index);
    // A new fingerprint of the same model is recorded for good, rows kept.
    let mut index = Index::open_existing(&path).unwrap();
    index.set_fingerprint("fp-A-content").unwrap();
    assert_eq!(index.info().fingerprint, "fp-A-content");
    drop(index);
    let upgraded = IndexInfo {
        fingerprint: "fp-A-content".into(),
        ..info("A", 2)
    };
    let index = Index::open(&path, &upgraded).unwrap();
    assert_eq!(index.embeddings().unwrap().len(), 3);
    assert!(Index::open(&path, &info("A", 2)).is_err());
}

#[test]
fn damaged_files_are_reported() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let path = dir.join("junk.sqlite");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let e = Index::open(&path, &info("A", 2)).unwrap_err().to_string();
    assert!(
        e.contains("junk.sqlite") && e.contains("not an SQLite database"),
        "{e}"
    );
    let e = Index::open_existing(&dir.join("none.sqlite"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.sqlite"), "{e}");
}

#[test]
fn read_only_opening_reads_and_never_writes() {
    let tmp = temp_dir();
    let dir = tmp.path();
    // Characters that mean something in an SQLite URI.
    let path = dir.join("my index %20?#.sqlite");
    let mut index = Index::open(&path, &info("A", 2)).unwrap();
    index
        .apply(&[embedded("/p/a.jpg", b"aaa", vec![1.0, 0.0])])
        .unwrap();
    drop(index);
    let mut reader = Index::open_read_only(&path).unwrap();
    assert_eq!(reader.info().model, "A");
    assert_eq!(reader.embeddings().unwrap().len(), 1);
    assert_eq!(reader.integrity_check().unwrap(), "ok");
    assert!(reader
        .apply(&[embedded("/p/b.jpg", b"bbb", vec![0.0, 1.0])])
        .is_err());
    // Nothing is created for a missing index, and a file that is no database is named so.
    let missing = dir.join("missing.sqlite");
    assert!(Index::open_read_only(&missing).is_err());
    assert!(!missing.exists());
    let text = dir.join("notes.sqlite");
    std::fs::write(&text, "not a database at all, just some text to read").unwrap();
    let e = Index::open_read_only(&text).unwrap_err().to_string();
    assert!(e.contains("not an SQLite database"), "{e}");
}

#[test]
fn an_index_in_memory_works_and_writes_nothing() {
    let before: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut index = Index::in_memory(&info("A", 2)).unwrap();
    index
        .apply(&[
            embedded("/p/a.jpg", b"aaa", vec![1.0, 0.0]),
            embedded("/p/b.jpg", b"bbb", vec![0.0, 1.0]),
        ])
        .unwrap();
    index.add_roots(&["/p".into()]).unwrap();
    index.finish_scan(&[]).unwrap();
    assert_eq!(index.vectors().unwrap().len(), 2);
    let status = index.status().unwrap();
    assert_eq!((status.indexed, status.roots), (2, vec!["/p".to_string()]));
    assert_eq!(index.path().to_str(), Some(":memory:"));
    // Another in-memory index is another index.
    assert!(Index::in_memory(&info("A", 2))
        .unwrap()
        .files()
        .unwrap()
        .is_empty());
    drop(index);
    let after: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "nothing written in the working folder");
}

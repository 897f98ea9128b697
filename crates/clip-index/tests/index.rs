//! The index file: creation, model checks, changes, scans, locking, damage, search.

use std::collections::HashSet;
use std::path::PathBuf;

use clip_index::{
    content_hash, is_under, plan_removals, Change, Index, IndexError, IndexInfo, Vectors, WriteLock,
};

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-index-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn info(model: &str, dim: usize) -> IndexInfo {
    IndexInfo {
        model: model.into(),
        fingerprint: format!("fp-{model}"),
        preprocess: "pre".into(),
        dim,
    }
}

fn embedded(path: &str, content: &[u8], v: Vec<f32>) -> Change {
    Change::Embedded {
        path: path.into(),
        size: content.len() as u64,
        mtime_ns: 7,
        hash: content_hash(content),
        embedding: v,
    }
}

#[test]
fn changes_are_stored_and_refused_for_another_model() {
    let dir = tmp("changes");
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
    assert_eq!(index.forget("/q/one.jpg").unwrap(), 1);
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
}

#[test]
fn a_finished_scan_drops_missing_files_and_unused_vectors() {
    let dir = tmp("scan");
    let mut index = Index::open(&dir.join("i.sqlite"), &info("A", 2)).unwrap();
    index
        .apply(&[
            embedded("/p/a.jpg", b"aaa", vec![1.0, 0.0]),
            embedded("/p/b.jpg", b"bbb", vec![0.0, 1.0]),
        ])
        .unwrap();
    index.add_roots(&["/p".into()]).unwrap();
    index.finish_scan(&["/p/b.jpg".into()]).unwrap();
    let status = index.status().unwrap();
    assert_eq!((status.indexed, status.vectors), (1, 1));
    assert_eq!(status.roots, ["/p"]);
    assert!(status.last_scan.is_some());
    // Forgetting a folder drops its files, its root and the vectors only they used.
    assert_eq!(index.forget("/p").unwrap(), 1);
    let status = index.status().unwrap();
    assert_eq!(
        (status.indexed, status.vectors, status.roots.len()),
        (0, 0, 0)
    );
}

#[test]
fn removals_need_a_present_root_and_a_modest_share() {
    let dir = tmp("removals");
    let root = dir.join("lib");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.display().to_string();
    let files: Vec<String> = (0..20).map(|i| format!("{root}/{i}.jpg")).collect();
    let other = format!("{root}-other/x.jpg"); // a sibling folder with the same prefix
    let indexed: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .chain([other.as_str()])
        .collect();
    let roots = vec![root.clone()];
    let mut seen: HashSet<String> = files[..15].iter().cloned().collect();
    let gone = plan_removals(indexed.iter().copied(), &roots, &seen, 0.5, false).unwrap();
    assert_eq!(gone.len(), 5);
    assert!(!gone.contains(&other));
    seen = files[..1].iter().cloned().collect();
    let e = plan_removals(indexed.iter().copied(), &roots, &seen, 0.5, false).unwrap_err();
    assert!(
        e.to_string().contains("19 of the 20") && e.to_string().contains("--allow-mass-delete"),
        "{e}"
    );
    seen.clear();
    assert_eq!(
        plan_removals(indexed.iter().copied(), &roots, &seen, 0.5, true)
            .unwrap()
            .len(),
        20
    );
    // A root that shows nothing at all is suspect even for a few files.
    let few: Vec<&str> = files[..3].iter().map(String::as_str).collect();
    let e = plan_removals(few.iter().copied(), &roots, &seen, 0.5, false).unwrap_err();
    assert!(e.to_string().contains("has no images now"), "{e}");
    let missing = vec![format!("{root}/gone")];
    let e = plan_removals(indexed.iter().copied(), &missing, &seen, 0.5, true).unwrap_err();
    assert!(e.to_string().contains("unavailable"), "{e}");
}

#[test]
fn one_writer_at_a_time() {
    let dir = tmp("lock");
    let path = dir.join("i.sqlite");
    let first = WriteLock::acquire(&path).unwrap();
    let e = WriteLock::acquire(&path).unwrap_err();
    assert!(matches!(e, IndexError::Busy { .. }), "{e}");
    assert!(e.to_string().contains("another process"), "{e}");
    // The same index through a link, or a path with `..`, is the same lock.
    #[cfg(unix)]
    {
        std::fs::write(&path, b"").unwrap();
        let link = dir.join("link.sqlite");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = WriteLock::acquire(&link).unwrap_err();
        assert!(matches!(e, IndexError::Busy { .. }), "{e}");
    }
    // A link to an index that does not exist yet is that index's lock.
    #[cfg(unix)]
    {
        let ahead = dir.join("ahead.sqlite");
        std::os::unix::fs::symlink(dir.join("new.sqlite"), &ahead).unwrap();
        let held = WriteLock::acquire(&ahead).unwrap();
        assert!(WriteLock::acquire(&dir.join("new.sqlite")).is_err());
        drop(held);
    }
    let roundabout = dir.join("sub/../i.sqlite");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    assert!(WriteLock::acquire(&roundabout).is_err());
    drop(first);
    WriteLock::acquire(&path).unwrap();
}

#[test]
fn damaged_files_are_reported() {
    let dir = tmp("damaged");
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

#[test]
fn paths_are_under_roots_by_whole_components() {
    assert!(is_under("/a/lib/x.jpg", "/a/lib"));
    assert!(!is_under("/a/lib2/x.jpg", "/a/lib"));
    assert!(!is_under("/a/lib", "/a/lib"));
    assert!(is_under("/gone.jpg", "/"));
}

#[cfg(unix)]
#[test]
fn files_behind_a_missing_link_or_in_an_emptied_folder_are_not_deleted() {
    let dir = tmp("unreachable");
    let root = dir.join("lib");
    std::fs::create_dir_all(root.join("kept")).unwrap();
    std::fs::create_dir_all(root.join("emptied")).unwrap();
    std::fs::write(root.join("kept/a.jpg"), "a").unwrap();
    let drive = dir.join("drive");
    std::fs::create_dir_all(&drive).unwrap();
    std::os::unix::fs::symlink(&drive, root.join("usb")).unwrap();
    let root_s = root.display().to_string();
    let kept = format!("{root_s}/kept/a.jpg");
    let seen: HashSet<String> = [kept.clone()].into();
    let roots = vec![root_s.clone()];
    let plan = |files: &[String], allow: bool| {
        let indexed: Vec<&str> = files
            .iter()
            .map(String::as_str)
            .chain([kept.as_str()])
            .collect();
        plan_removals(indexed, &roots, &seen, 0.9, allow)
    };
    // A file on the linked drive while the drive is there but the file was deleted: removed.
    let on_drive = vec![format!("{root_s}/usb/p.jpg")];
    assert_eq!(plan(&on_drive, false).unwrap(), on_drive);
    // The drive gone (dangling link): refused.
    std::fs::remove_dir_all(&drive).unwrap();
    let e = plan(&on_drive, false).unwrap_err().to_string();
    assert!(e.contains("link to a missing folder"), "{e}");
    assert_eq!(plan(&on_drive, true).unwrap(), on_drive);
    // A folder left empty by many files at once (an unmounted mount point looks like this):
    // refused; a folder's last photo or two deleted: ordinary.
    let emptied: Vec<String> = (0..10)
        .map(|i| format!("{root_s}/emptied/q{i}.jpg"))
        .collect();
    let e = plan(&emptied, false).unwrap_err().to_string();
    assert!(
        e.contains("10 indexed files are gone") && e.contains("now empty"),
        "{e}"
    );
    assert_eq!(plan(&emptied[..2], false).unwrap(), emptied[..2]);
    // A folder removed altogether is an ordinary deletion.
    let removed = vec![format!("{root_s}/old/r.jpg")];
    assert_eq!(plan(&removed, false).unwrap(), removed);
}

#[test]
fn read_only_opening_reads_and_never_writes() {
    let dir = tmp("read-only");
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

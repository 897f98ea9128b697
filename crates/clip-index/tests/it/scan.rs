//! The end of a scan: what is dropped, and the guard that refuses removals that look like a
//! missing disk rather than deleted photos.

use std::collections::HashSet;

use clip_index::{
    check_exclusions, content_hash, is_at_or_under, is_under, plan_removals, Change, Exclusions,
    Index, IndexError, Refusal,
};
use clip_test_support::temp_dir;

use crate::{embedded, info};

#[test]
fn a_finished_scan_drops_missing_files_and_unused_vectors() {
    let tmp = temp_dir();
    let dir = tmp.path();
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
    // b.jpg's vector is kept for reuse, not counted as the index's.
    assert_eq!((status.indexed, status.vectors, status.kept), (1, 1, 1));
    assert_eq!(status.roots, ["/p"]);
    assert!(status.last_scan.is_some());
    // Forgetting a folder drops its files, its root and the vectors only they used.
    assert_eq!(index.forget("/p").unwrap().files, 1);
    let status = index.status().unwrap();
    assert_eq!(
        (status.indexed, status.vectors, status.roots.len()),
        (0, 0, 0)
    );
    assert!(!index.has_vector(&content_hash(b"aaa")).unwrap());
}

#[test]
fn vectors_of_removed_files_are_kept_for_reuse_then_dropped() {
    let tmp = temp_dir();
    let mut index = Index::open(&tmp.path().join("i.sqlite"), &info("A", 2)).unwrap();
    let (a, b) = (content_hash(b"aaa"), content_hash(b"bbb"));
    index
        .apply(&[
            embedded("/p/a.jpg", b"aaa", vec![1.0, 0.0]),
            embedded("/p/sub/b.jpg", b"bbb", vec![0.0, 1.0]),
        ])
        .unwrap();
    // The subfolder moved out of the folders: its file is dropped, its vector kept.
    let day = 86_400;
    let t0 = 1_700_000_000;
    index.finish_scan_at(&["/p/sub/b.jpg".into()], t0).unwrap();
    assert!(index.vector_hashes().unwrap().contains(&b));
    assert_eq!(index.status().unwrap().kept, 1);
    assert_eq!(index.embeddings().unwrap().len(), 1);
    // Back ten days later: reused, in use again (no longer kept for reuse).
    index
        .apply(&[Change::Reused {
            path: "/p/sub/b.jpg".into(),
            size: 3,
            mtime_ns: 7,
            hash: b,
        }])
        .unwrap();
    index.finish_scan_at(&[], t0 + 10 * day).unwrap();
    let status = index.status().unwrap();
    assert_eq!((status.indexed, status.vectors, status.kept), (2, 2, 0));
    assert_eq!(
        index.embedding_of("/p/sub/b.jpg").unwrap(),
        Some(vec![0.0, 1.0])
    );
    // Gone again: kept for KEEP_REMOVED_DAYS, then the next complete scan drops it.
    index
        .finish_scan_at(&["/p/sub/b.jpg".into()], t0 + 20 * day)
        .unwrap();
    let keep = clip_index::KEEP_REMOVED_DAYS * day;
    index.finish_scan_at(&[], t0 + 20 * day + keep).unwrap();
    assert!(index.vector_hashes().unwrap().contains(&b));
    index.finish_scan_at(&[], t0 + 20 * day + keep + 1).unwrap();
    assert_eq!(
        index.vector_hashes().unwrap(),
        HashSet::from([a]),
        "dropped after {} days",
        clip_index::KEEP_REMOVED_DAYS
    );
    assert_eq!(index.status().unwrap().kept, 0);
}

#[test]
fn a_subfolder_forgotten_stays_out_and_exclusions_are_stored() {
    let tmp = temp_dir();
    let path = tmp.path().join("i.sqlite");
    let mut index = Index::open(&path, &info("A", 2)).unwrap();
    index
        .apply(&[
            embedded("/p/a.jpg", b"aaa", vec![1.0, 0.0]),
            embedded("/p/junk/b.jpg", b"bbb", vec![0.0, 1.0]),
            embedded("/q/c.jpg", b"ccc", vec![0.0, 1.0]),
        ])
        .unwrap();
    index.add_roots(&["/p".into(), "/q".into()]).unwrap();
    assert_eq!(index.exclusions().unwrap(), Exclusions::default());
    // A folder inside a root: dropped, and recorded so that scans leave it out.
    let f = index.forget("/p/junk").unwrap();
    assert_eq!((f.files, f.excluded), (1, true));
    assert!(!index.has_vector(&content_hash(b"bbb")).unwrap());
    // A root: dropped from the roots, nothing to exclude.
    let f = index.forget("/q").unwrap();
    assert_eq!((f.files, f.excluded), (1, false));
    index
        .update_exclusions(&["@eaDir".into(), "2019/tmp".into()], &[], Some(false))
        .unwrap();
    let expected = Exclusions {
        defaults: false,
        patterns: vec!["/p/junk".into(), "@eaDir".into(), "2019/tmp".into()],
    };
    assert_eq!(index.exclusions().unwrap(), expected);
    // Kept across reopening, read-only too, and shown by status.
    drop(index);
    let read = Index::open_read_only(&path).unwrap();
    assert_eq!(read.status().unwrap().exclusions, expected);
    drop(read);
    let mut index = Index::open_existing(&path).unwrap();
    index
        .update_exclusions(&[], &["/p/junk".into(), "not-there".into()], Some(true))
        .unwrap();
    assert_eq!(
        index.exclusions().unwrap(),
        Exclusions {
            defaults: true,
            patterns: vec!["@eaDir".into(), "2019/tmp".into()],
        }
    );
    // The caller's settings.
    assert_eq!(index.setting("limits").unwrap(), None);
    index.set_setting("limits", "16384").unwrap();
    assert_eq!(index.setting("limits").unwrap().as_deref(), Some("16384"));
}

#[test]
fn an_index_of_schema_1_opens_and_is_migrated() {
    let tmp = temp_dir();
    let path = tmp.path().join("v1.sqlite");
    // What version 1 made, as it made it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE vectors (hash BLOB PRIMARY KEY, embedding BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE files (
             path TEXT PRIMARY KEY,
             size INTEGER NOT NULL,
             mtime_ns INTEGER NOT NULL,
             hash BLOB,
             error TEXT,
             updated INTEGER NOT NULL
         );
         CREATE INDEX files_hash ON files (hash);
         CREATE TABLE roots (path TEXT PRIMARY KEY, added INTEGER NOT NULL);
         INSERT INTO meta VALUES ('schema', '1'), ('model', 'A'), ('fingerprint', 'fp-A'),
             ('preprocess', 'pre'), ('dim', '2'), ('created', '1700000000');
         INSERT INTO roots VALUES ('/p', 1700000000);",
    )
    .unwrap();
    let a = content_hash(b"aaa");
    let blob: Vec<u8> = [1.0f32, 0.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    conn.execute(
        "INSERT INTO vectors VALUES (?1, ?2)",
        rusqlite::params![a.as_slice(), blob],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO files VALUES ('/p/a.jpg', 3, 7, ?1, NULL, 1700000000)",
        [a.as_slice()],
    )
    .unwrap();
    drop(conn);
    // Read-only, it is read as it is (and left at version 1).
    let read = Index::open_read_only(&path).unwrap();
    let status = read.status().unwrap();
    assert_eq!((status.indexed, status.vectors, status.kept), (1, 1, 0));
    assert_eq!(status.exclusions, Exclusions::default());
    assert_eq!(
        read.embeddings().unwrap(),
        [("/p/a.jpg".into(), vec![1.0, 0.0])]
    );
    drop(read);
    let schema = |path: &std::path::Path| -> String {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(schema(&path), "1");
    // Opened to change it: migrated, everything kept, and the new parts work.
    let mut index = Index::open(&path, &info("A", 2)).unwrap();
    assert_eq!(schema(&path), "2");
    assert_eq!(index.status().unwrap().roots, ["/p"]);
    assert_eq!(
        index.embedding_of("/p/a.jpg").unwrap(),
        Some(vec![1.0, 0.0])
    );
    index.finish_scan(&["/p/a.jpg".into()]).unwrap();
    assert_eq!(index.status().unwrap().kept, 1);
    index
        .update_exclusions(&["@eaDir".into()], &[], None)
        .unwrap();
    assert_eq!(index.integrity_check().unwrap(), "ok");
    drop(index);
    // Opened again: nothing to migrate.
    let index = Index::open_existing(&path).unwrap();
    assert_eq!(index.exclusions().unwrap().patterns, ["@eaDir"]);
    drop(index);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE meta SET value = '3' WHERE key = 'schema'", [])
        .unwrap();
    // A schema from a newer program is no damage: a typed error of its own, and the file is
    // left as it is, for reading and writing alike.
    for err in [
        Index::open_existing(&path).unwrap_err(),
        Index::open_read_only(&path).unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                clip_index::IndexError::NewerSchema {
                    found: 3,
                    supported: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("schema version 3"), "{err}");
    }
}

#[test]
fn removals_need_a_present_root_and_a_modest_share() {
    let tmp = temp_dir();
    let dir = tmp.path();
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
    // The refusal is typed: it says what would go and that the caller may override it (the
    // CLI words that as --allow-mass-delete; the index names no flag).
    assert!(e.to_string().contains("19 of the 20"), "{e}");
    match &e {
        IndexError::Refused { reason } => {
            assert!(
                matches!(
                    reason,
                    Refusal::TooMany {
                        gone: 19,
                        total: 20,
                        ..
                    }
                ),
                "{reason:?}"
            );
            assert!(reason.can_override());
        }
        other => panic!("not a refusal: {other:?}"),
    }
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
    assert!(
        matches!(&e, IndexError::Refused { reason } if !reason.can_override()),
        "{e:?}"
    );
}

#[test]
fn exclusions_that_drop_most_of_the_index_need_the_same_override() {
    let roots = vec!["/lib".to_string()];
    // 13 of 13: what `--exclude '*'` does; refused, typed, and overridable.
    let e = check_exclusions(13, 13, &roots, 0.5, false).unwrap_err();
    assert!(
        e.to_string()
            .contains("the exclusions would drop 13 of the 13 indexed files under /lib (100 %)"),
        "{e}"
    );
    assert!(
        matches!(&e, IndexError::Refused { reason: r @ Refusal::Excluded { excluded: 13, .. } } if r.can_override()),
        "{e:?}"
    );
    assert!(check_exclusions(13, 13, &roots, 0.5, true).is_ok());
    // Half or less, or fewer than 10, as for files gone.
    assert!(check_exclusions(10, 20, &roots, 0.5, false).is_ok());
    assert!(check_exclusions(9, 9, &roots, 0.5, false).is_ok());
    assert!(check_exclusions(11, 20, &roots, 0.5, false).is_err());
}

#[test]
fn paths_are_under_roots_by_whole_components() {
    assert!(is_under("/a/lib/x.jpg", "/a/lib"));
    assert!(!is_under("/a/lib2/x.jpg", "/a/lib"));
    assert!(!is_under("/a/lib", "/a/lib"));
    assert!(is_under("/gone.jpg", "/"));
    // At or under: the root itself too, by whole components still.
    assert!(is_at_or_under("/a/lib", "/a/lib") && is_at_or_under("/a/lib/x.jpg", "/a/lib"));
    assert!(!is_at_or_under("/a/lib2", "/a/lib"));
}

#[cfg(unix)]
#[test]
fn files_behind_a_missing_link_or_in_an_emptied_folder_are_not_deleted() {
    let tmp = temp_dir();
    let dir = tmp.path();
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

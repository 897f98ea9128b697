//! The end of a scan: what is dropped, and the guard that refuses removals that look like a
//! missing disk rather than deleted photos.

use std::collections::HashSet;

use clip_index::{is_under, plan_removals, Index, IndexError, Refusal};
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
fn paths_are_under_roots_by_whole_components() {
    assert!(is_under("/a/lib/x.jpg", "/a/lib"));
    assert!(!is_under("/a/lib2/x.jpg", "/a/lib"));
    assert!(!is_under("/a/lib", "/a/lib"));
    assert!(is_under("/gone.jpg", "/"));
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

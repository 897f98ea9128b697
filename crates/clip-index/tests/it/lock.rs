//! The write lock: one writer per index, however its path is spelled.

use clip_index::{IndexError, WriteLock};
use clip_test_support::temp_dir;

#[test]
fn one_writer_at_a_time() {
    let tmp = temp_dir();
    let dir = tmp.path();
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

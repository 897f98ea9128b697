//! Walking folders for image files: name order, hidden entries skipped, links followed to
//! each folder once, and entries that cannot be examined reported instead of failing the
//! walk (scans must not conclude that photos are gone because one folder is unreadable).
//! Used by the photo index's scans, by datasets and by the CLI's folder arguments.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use crate::ClipError;

/// File extensions taken as images when walking folders (a file named explicitly is always
/// read; its format comes from its content).
pub const IMAGE_EXTENSIONS: [&str; 11] = [
    "jpg", "jpeg", "jfif", "png", "webp", "gif", "bmp", "tif", "tiff", "ppm", "pgm",
];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension().is_some_and(|e| {
        IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
    })
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

pub(crate) fn read_dir_sorted(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !is_hidden(&path) {
            entries.push(path);
        }
    }
    entries.sort();
    Ok(entries)
}

/// The error kind the walk gives an entry named like an image that is no regular file.
const SPECIAL_FILE: std::io::ErrorKind = std::io::ErrorKind::InvalidInput;

/// A folder's entries, in name order, without hidden ones, each with its metadata (links
/// followed), or why that could not be read.
type Lister = dyn Fn(&Path) -> std::io::Result<Vec<(PathBuf, std::io::Result<Metadata>)>>;

fn list_entries(dir: &Path) -> std::io::Result<Vec<(PathBuf, std::io::Result<Metadata>)>> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p);
            (p, meta)
        })
        .collect())
}

/// Walks `dir` for image files, in name order, skipping hidden files and folders, following
/// symbolic links to each folder once. A subfolder that cannot be listed, an entry whose
/// kind cannot be known (a folder without execute permission lists names it cannot `stat`),
/// or one named like an image that is no regular file (a FIFO, a device) goes to `unlisted`,
/// which decides whether the walk goes on; `dir` itself must be listed.
/// Entries gone since they were listed, and links to nothing, are left out. Each file comes
/// with the metadata the walk read.
fn walk_images(
    dir: &Path,
    list: &Lister,
    unlisted: &mut dyn FnMut(&Path, std::io::Error) -> Result<(), ClipError>,
) -> Result<Vec<(PathBuf, Metadata)>, ClipError> {
    fn walk(
        dir: &Path,
        is_root: bool,
        list: &Lister,
        visited: &mut std::collections::HashSet<PathBuf>,
        out: &mut Vec<(PathBuf, Metadata)>,
        unlisted: &mut dyn FnMut(&Path, std::io::Error) -> Result<(), ClipError>,
    ) -> Result<(), ClipError> {
        if !visited.insert(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())) {
            return Ok(());
        }
        let entries = match list(dir) {
            Ok(entries) => entries,
            Err(error) if !is_root => return unlisted(dir, error),
            Err(error) => {
                return Err(ClipError::Io {
                    path: dir.display().to_string(),
                    error,
                })
            }
        };
        for (path, meta) in entries {
            match meta {
                Ok(m) if m.is_dir() => walk(&path, false, list, visited, out, unlisted)?,
                Ok(_) if !has_image_extension(&path) => {}
                Ok(m) if m.is_file() => out.push((path, m)),
                // A FIFO, socket or device: reading one could block or never end.
                Ok(_) => unlisted(
                    &path,
                    std::io::Error::new(
                        SPECIAL_FILE,
                        "not a regular file (a FIFO, socket or device)",
                    ),
                )?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => unlisted(&path, error)?,
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(
        dir,
        true,
        list,
        &mut std::collections::HashSet::new(),
        &mut out,
        unlisted,
    )?;
    Ok(out)
}

/// The image files under `dir`, recursively, in name order; hidden files and folders are
/// skipped, and so are FIFOs and devices. Symbolic links are followed, each folder once (a
/// link loop ends there). A folder that cannot be listed, or an entry that cannot be
/// examined, is an error.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, ClipError> {
    let files = walk_images(dir, &list_entries, &mut |folder, error| {
        // A FIFO or device named like an image is not one: left out like other non-images.
        if error.kind() == SPECIAL_FILE {
            return Ok(());
        }
        Err(ClipError::Io {
            path: folder.display().to_string(),
            error,
        })
    })?;
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// What [`image_files_listing`] found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The image files, in name order, with their metadata as the walk read it.
    pub files: Vec<(PathBuf, Metadata)>,
    /// Subfolders that could not be listed, and entries whose kind could not be known
    /// (permissions, I/O errors), with the reason: what they hold is unknown.
    pub unlisted: Vec<(PathBuf, String)>,
}

/// Like [`image_files`], but a subfolder that cannot be listed (or an entry that cannot be
/// examined) is noted and the walk goes on
/// (the folder `dir` itself must be listed). For scans that must not fail, or conclude files
/// are gone, because of one unreadable folder.
pub fn image_files_listing(dir: &Path) -> Result<Listing, ClipError> {
    listing_with(dir, &list_entries)
}

fn listing_with(dir: &Path, list: &Lister) -> Result<Listing, ClipError> {
    let mut unlisted = Vec::new();
    let files = walk_images(dir, list, &mut |folder, error| {
        unlisted.push((folder.to_path_buf(), error.to_string()));
        Ok(())
    })?;
    Ok(Listing { files, unlisted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_cannot_be_listed_is_noted_and_the_walk_goes_on() {
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path().to_path_buf();
        for f in ["a/1.jpg", "b/2.png", "b/c/3.jpg", "d/4.jpg", "notes.txt"] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        // Root lists everything; here it is simulated for folder b (as for a user without
        // permission, which a test running as root cannot be denied).
        let b = dir.join("b");
        let root = dir.clone();
        let deny = move |d: &Path| {
            if d == dir.join("b") {
                Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
            } else {
                list_entries(d)
            }
        };
        let paths = |l: &Listing| -> Vec<PathBuf> { l.files.iter().map(|f| f.0.clone()).collect() };
        let listing = listing_with(&root, &deny).unwrap();
        assert_eq!(
            paths(&listing),
            [root.join("a/1.jpg"), root.join("d/4.jpg")]
        );
        assert_eq!(listing.unlisted.len(), 1);
        assert_eq!(listing.unlisted[0].0, b);
        assert!(listing.unlisted[0].1.contains("ermission denied"));
        // The plain walk stops there, naming the folder.
        let err = walk_images(&root, &deny, &mut |folder, error| {
            Err(ClipError::Io {
                path: folder.display().to_string(),
                error,
            })
        })
        .unwrap_err();
        assert!(err.to_string().contains(&b.display().to_string()), "{err}");
        // The root itself must be listed.
        let none = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(listing_with(&root, &none).is_err());
        assert_eq!(image_files_listing(&root).unwrap().files.len(), 4);
        // A folder listed but not searchable (no execute permission) gives names without
        // kinds: noted, not taken as gone. An entry gone since it was listed is left out.
        let top = root.clone();
        let blind = move |d: &Path| {
            let mut entries = list_entries(d)?;
            if d == top.join("d") {
                for e in &mut entries {
                    e.1 = Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
                }
            }
            if d == top {
                let gone = Err(std::io::Error::from(std::io::ErrorKind::NotFound));
                entries.push((top.join("gone.jpg"), gone));
            }
            Ok(entries)
        };
        let listing = listing_with(&root, &blind).unwrap();
        assert_eq!(
            paths(&listing),
            [
                root.join("a/1.jpg"),
                root.join("b/2.png"),
                root.join("b/c/3.jpg")
            ]
        );
        let unlisted: Vec<&PathBuf> = listing.unlisted.iter().map(|u| &u.0).collect();
        assert_eq!(unlisted, [&root.join("d/4.jpg")]);
        // A FIFO named like an image is noted, never opened; one named otherwise is ignored.
        #[cfg(unix)]
        {
            for name in ["pipe.jpg", "pipe.txt"] {
                let made = std::process::Command::new("mkfifo")
                    .arg(root.join(name))
                    .status()
                    .unwrap();
                assert!(made.success());
            }
            let listing = image_files_listing(&root).unwrap();
            assert_eq!(image_files(&root).unwrap(), paths(&listing));
            assert_eq!(listing.files.len(), 4);
            assert_eq!(listing.unlisted.len(), 1);
            assert_eq!(listing.unlisted[0].0, root.join("pipe.jpg"));
            assert!(listing.unlisted[0].1.contains("not a regular file"));
        }
    }
}

//! Walking folders for image files: name order, hidden entries skipped, links followed to
//! each folder once, and entries that cannot be examined reported instead of failing the
//! walk (scans must not conclude that photos are gone because one folder is unreadable).
//! Scans also leave out what their [`Excludes`] name (NAS thumbnail folders, recycle bins,
//! folders given to `--exclude` or `--forget`), and count the files whose extension is not an
//! image's. Used by the photo index's scans, by datasets and by the CLI's folder arguments.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::ClipError;

/// File extensions taken as images when walking folders: those of the formats the decoder
/// reads, the one list both use (a file named explicitly is always read; its format comes
/// from its content).
pub use clip_preprocess::image::IMAGE_EXTENSIONS;

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(clip_preprocess::image::is_image_extension)
}

/// The folders every scan leaves out unless told not to: NAS thumbnail and recycle folders
/// (Synology's `@eaDir`, `#recycle`, `#snapshot`; QNAP's `@Recycle`, `@Recently-Snapshot`),
/// system folders (Windows' `$RECYCLE.BIN` and `System Volume Information`, `lost+found`),
/// archive leftovers (`__MACOSX`) and software folders full of sample images
/// (`node_modules`, `site-packages`). Matched against each folder's and file's name, in any
/// case. Hidden entries (`.thumbnails`, `.Trash-1000`, `.git`) are always left out.
pub const DEFAULT_EXCLUDES: [&str; 11] = [
    "@eaDir",
    "#recycle",
    "#snapshot",
    "@Recycle",
    "@Recently-Snapshot",
    "$RECYCLE.BIN",
    "System Volume Information",
    "lost+found",
    "__MACOSX",
    "node_modules",
    "site-packages",
];

/// What a scan leaves out: patterns, each one of three kinds.
/// - An absolute path (starting with `/`), taken literally: that folder or file and
///   everything under it (what `clip index --forget` records for a folder inside a root).
/// - A pattern with a `/` inside: a glob matched against paths relative to the root
///   (`2019/tmp`, `**/cache`, `raw/*.tif`).
/// - Any other: a glob matched against the name of every folder and file (`@eaDir`,
///   `*.thumb.jpg`, `Backup*`).
///
/// In globs `*` and `?` do not cross a `/`, `**` does, `[abc]` and `{a,b}` are classes and
/// alternatives, `\` escapes. A trailing `/` and a leading `./` are ignored. The root itself
/// is never left out.
#[derive(Debug, Clone)]
pub struct Excludes {
    names: GlobSet,
    relative: GlobSet,
    absolute: Vec<String>,
}

impl Default for Excludes {
    fn default() -> Self {
        Excludes::none()
    }
}

impl Excludes {
    /// Leaves nothing out.
    pub fn none() -> Excludes {
        Excludes {
            names: GlobSet::empty(),
            relative: GlobSet::empty(),
            absolute: Vec::new(),
        }
    }

    /// `patterns`, and [`DEFAULT_EXCLUDES`] when `defaults`. A pattern that is not a valid
    /// glob is refused ([`ClipError::Exclude`], naming it).
    pub fn new(patterns: &[String], defaults: bool) -> Result<Excludes, ClipError> {
        let mut names = GlobSetBuilder::new();
        let mut relative = GlobSetBuilder::new();
        let mut absolute = Vec::new();
        let defaults = DEFAULT_EXCLUDES
            .iter()
            .filter(|_| defaults)
            .map(|p| (p.to_string(), true));
        for (pattern, any_case) in patterns.iter().map(|p| (p.clone(), false)).chain(defaults) {
            match Self::kind(&pattern)? {
                Kind::Absolute(path) => absolute.push(path),
                Kind::Name(glob) => {
                    names.add(Self::glob(&pattern, glob, any_case)?);
                }
                Kind::Relative(glob) => {
                    relative.add(Self::glob(&pattern, glob, any_case)?);
                }
            }
        }
        let build = |set: GlobSetBuilder| {
            set.build().map_err(|e| ClipError::Exclude {
                pattern: patterns.join(" "),
                detail: e.to_string(),
            })
        };
        Ok(Excludes {
            names: build(names)?,
            relative: build(relative)?,
            absolute,
        })
    }

    /// Checks one pattern, as [`Excludes::new`] would take it.
    pub fn check(pattern: &str) -> Result<(), ClipError> {
        Self::new(&[pattern.to_string()], false).map(drop)
    }

    fn kind(pattern: &str) -> Result<Kind<'_>, ClipError> {
        let bad = |detail: &str| ClipError::Exclude {
            pattern: pattern.to_string(),
            detail: detail.to_string(),
        };
        if pattern.starts_with('/') {
            let path = pattern.trim_end_matches('/');
            return Ok(Kind::Absolute(
                if path.is_empty() { "/" } else { path }.to_string(),
            ));
        }
        let glob = pattern.strip_prefix("./").unwrap_or(pattern);
        let glob = glob.trim_end_matches('/');
        if glob.is_empty() {
            return Err(bad("empty"));
        }
        if glob.split('/').any(|c| c == "..") {
            return Err(bad(
                "`..` leads out of the folders scanned; give a folder outside them as an \
                 absolute path",
            ));
        }
        Ok(if glob.contains('/') {
            Kind::Relative(glob)
        } else {
            Kind::Name(glob)
        })
    }

    fn glob(pattern: &str, glob: &str, any_case: bool) -> Result<globset::Glob, ClipError> {
        GlobBuilder::new(glob)
            .literal_separator(true)
            .backslash_escape(true)
            .case_insensitive(any_case)
            .build()
            .map_err(|e| ClipError::Exclude {
                pattern: pattern.to_string(),
                detail: e.kind().to_string(),
            })
    }

    /// Whether the entry `path` (absolute), found `relative` to the root of the walk, is
    /// left out itself (its folders were looked at on the way down).
    fn entry(&self, path: &Path, relative: &str) -> bool {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        self.names.is_match(name)
            || self.relative.is_match(relative)
            || self.absolute.iter().any(|a| path == Path::new(a))
    }

    /// Whether `path` (absolute, under the folder `root`) is left out: it or a folder on the
    /// way to it from `root`. For the files an index holds.
    pub fn covers(&self, root: &str, path: &str) -> bool {
        // An absolute path counts inside the root only, as in the walk: a folder left out
        // of one root and indexed as a root of its own is walked.
        if self
            .absolute
            .iter()
            .any(|a| clip_index::is_under(a, root) && (path == a || clip_index::is_under(path, a)))
        {
            return true;
        }
        let Some(rest) = path.strip_prefix(root) else {
            return false;
        };
        let relative = rest.trim_start_matches(std::path::MAIN_SEPARATOR);
        if relative.is_empty() || rest.len() == relative.len() && !root.ends_with('/') {
            return false; // the root itself, or a sibling that only shares its prefix
        }
        let mut end = 0;
        for component in relative.split('/') {
            end += component.len();
            if self.names.is_match(component) || self.relative.is_match(&relative[..end]) {
                return true;
            }
            end += 1;
        }
        false
    }
}

/// How a pattern is matched.
enum Kind<'a> {
    Absolute(String),
    Name(&'a str),
    Relative(&'a str),
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

/// What a walk met besides image files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    /// Files whose extension is not an image's, by extension in lower case (`""`: none).
    other: BTreeMap<String, usize>,
    /// Folders and files left out by the [`Excludes`].
    left_out: usize,
}

/// Walks `dir` for image files, in name order, skipping hidden files and folders and what
/// `exclude` names, following symbolic links to each folder once. A subfolder that cannot be
/// listed, an entry whose kind cannot be known (a folder without execute permission lists
/// names it cannot `stat`), or one named like an image that is no regular file (a FIFO, a
/// device) goes to `unlisted`, which decides whether the walk goes on; `dir` itself must be
/// listed. Entries gone since they were listed, and links to nothing, are left out. Each file
/// comes with the metadata the walk read.
fn walk_images(
    dir: &Path,
    list: &Lister,
    exclude: &Excludes,
    tally: &mut Tally,
    unlisted: &mut dyn FnMut(&Path, std::io::Error) -> Result<(), ClipError>,
) -> Result<Vec<(PathBuf, Metadata)>, ClipError> {
    struct Walk<'a> {
        list: &'a Lister,
        exclude: &'a Excludes,
        visited: std::collections::HashSet<PathBuf>,
        out: Vec<(PathBuf, Metadata)>,
        tally: &'a mut Tally,
        unlisted: &'a mut dyn FnMut(&Path, std::io::Error) -> Result<(), ClipError>,
    }
    impl Walk<'_> {
        /// Walks `dir`, which is `relative` to the root ("" for the root).
        fn walk(&mut self, dir: &Path, relative: &str) -> Result<(), ClipError> {
            let is_root = relative.is_empty();
            if !self
                .visited
                .insert(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()))
            {
                return Ok(());
            }
            let entries = match (self.list)(dir) {
                Ok(entries) => entries,
                Err(error) if !is_root => return (self.unlisted)(dir, error),
                Err(error) => {
                    return Err(ClipError::Io {
                        path: dir.display().to_string(),
                        error,
                    })
                }
            };
            for (path, meta) in entries {
                let name = path.file_name().map(|n| n.to_string_lossy());
                let name = name.as_deref().unwrap_or("");
                let rel = if is_root {
                    name.to_string()
                } else {
                    format!("{relative}/{name}")
                };
                if self.exclude.entry(&path, &rel) {
                    self.tally.left_out += 1;
                    continue;
                }
                match meta {
                    Ok(m) if m.is_dir() => self.walk(&path, &rel)?,
                    Ok(m) if !has_image_extension(&path) => {
                        if m.is_file() {
                            let ext = path.extension().map_or(String::new(), |e| {
                                e.to_string_lossy().to_ascii_lowercase()
                            });
                            *self.tally.other.entry(ext).or_default() += 1;
                        }
                    }
                    Ok(m) if m.is_file() => self.out.push((path, m)),
                    // A FIFO, socket or device: reading one could block or never end.
                    Ok(_) => (self.unlisted)(
                        &path,
                        std::io::Error::new(
                            SPECIAL_FILE,
                            "not a regular file (a FIFO, socket or device)",
                        ),
                    )?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => (self.unlisted)(&path, error)?,
                }
            }
            Ok(())
        }
    }
    let mut walk = Walk {
        list,
        exclude,
        visited: Default::default(),
        out: Vec::new(),
        tally,
        unlisted,
    };
    walk.walk(dir, "")?;
    Ok(walk.out)
}

/// The image files under `dir`, recursively, in name order; hidden files and folders are
/// skipped, and so are FIFOs and devices. Symbolic links are followed, each folder once (a
/// link loop ends there). A folder that cannot be listed, or an entry that cannot be
/// examined, is an error.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, ClipError> {
    let mut tally = Tally::default();
    let none = Excludes::none();
    let files = walk_images(
        dir,
        &list_entries,
        &none,
        &mut tally,
        &mut |folder, error| {
            // A FIFO or device named like an image is not one: left out like other non-images.
            if error.kind() == SPECIAL_FILE {
                return Ok(());
            }
            Err(ClipError::Io {
                path: folder.display().to_string(),
                error,
            })
        },
    )?;
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
    /// Files left out for their extension (not an image's), counted by extension in lower
    /// case, without the dot (`""` for files without one).
    pub other_files: BTreeMap<String, usize>,
    /// Folders and files left out by the exclusions (each counts once, not what it holds).
    pub left_out: usize,
}

/// Like [`image_files`], but without what `exclude` names, and a subfolder that cannot be
/// listed (or an entry that cannot be examined) is noted and the walk goes on (the folder
/// `dir` itself must be listed). For scans that must not fail, or conclude files are gone,
/// because of one unreadable folder.
pub fn image_files_listing(dir: &Path, exclude: &Excludes) -> Result<Listing, ClipError> {
    listing_with(dir, &list_entries, exclude)
}

fn listing_with(dir: &Path, list: &Lister, exclude: &Excludes) -> Result<Listing, ClipError> {
    let mut unlisted = Vec::new();
    let mut tally = Tally::default();
    let files = walk_images(dir, list, exclude, &mut tally, &mut |folder, error| {
        unlisted.push((folder.to_path_buf(), error.to_string()));
        Ok(())
    })?;
    Ok(Listing {
        files,
        unlisted,
        other_files: tally.other,
        left_out: tally.left_out,
    })
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
        let listing = listing_with(&root, &deny, &Excludes::none()).unwrap();
        assert_eq!(
            paths(&listing),
            [root.join("a/1.jpg"), root.join("d/4.jpg")]
        );
        assert_eq!(listing.unlisted.len(), 1);
        assert_eq!(listing.unlisted[0].0, b);
        assert!(listing.unlisted[0].1.contains("ermission denied"));
        // The plain walk stops there, naming the folder.
        let err = walk_images(
            &root,
            &deny,
            &Excludes::none(),
            &mut Tally::default(),
            &mut |folder, error| {
                Err(ClipError::Io {
                    path: folder.display().to_string(),
                    error,
                })
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains(&b.display().to_string()), "{err}");
        // The root itself must be listed.
        let none = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(listing_with(&root, &none, &Excludes::none()).is_err());
        assert_eq!(
            image_files_listing(&root, &Excludes::none())
                .unwrap()
                .files
                .len(),
            4
        );
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
        let listing = listing_with(&root, &blind, &Excludes::none()).unwrap();
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
            let listing = image_files_listing(&root, &Excludes::none()).unwrap();
            assert_eq!(image_files(&root).unwrap(), paths(&listing));
            assert_eq!(listing.files.len(), 4);
            assert_eq!(listing.unlisted.len(), 1);
            assert_eq!(listing.unlisted[0].0, root.join("pipe.jpg"));
            assert!(listing.unlisted[0].1.contains("not a regular file"));
        }
    }

    #[test]
    fn exclusions_leave_out_by_name_relative_path_and_absolute_path() {
        let tmp = clip_test_support::temp_dir();
        let root = tmp.path().canonicalize().unwrap();
        for f in [
            "a/1.jpg",
            "@eaDir/1.jpg/SYNOPHOTO_THUMB_M.jpg",
            "a/@EADIR/2.jpg",
            "#recycle/old.jpg",
            "2019/tmp/t.jpg",
            "2019/keep/k.jpg",
            "b/c.thumb.jpg",
            "b/d.jpg",
            "forgotten/f.jpg",
            "node_modules/pkg/logo.png",
            "IMG_1.HEIC",
            "IMG_2.heic",
            "IMG_3.MOV",
            "README",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let forgotten = root.join("forgotten").to_str().unwrap().to_string();
        let patterns = vec![
            "2019/tmp/".to_string(),
            "*.thumb.jpg".to_string(),
            forgotten.clone(),
        ];
        let excludes = Excludes::new(&patterns, true).unwrap();
        let listing = image_files_listing(&root, &excludes).unwrap();
        let files: Vec<PathBuf> = listing.files.iter().map(|f| f.0.clone()).collect();
        assert_eq!(
            files,
            [
                root.join("2019/keep/k.jpg"),
                root.join("a/1.jpg"),
                root.join("b/d.jpg")
            ]
        );
        // #recycle, @eaDir, a/@EADIR, 2019/tmp, b/c.thumb.jpg, forgotten, node_modules.
        assert_eq!(listing.left_out, 7);
        let other: Vec<(&str, usize)> = listing
            .other_files
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(other, [("", 1), ("heic", 2), ("mov", 1)]);
        // Without the defaults, the NAS folders come back; user patterns match in their case.
        let listing = image_files_listing(&root, &Excludes::new(&patterns, false).unwrap());
        assert_eq!(listing.unwrap().files.len(), 7);
        let upper = Excludes::new(&["@EADIR".to_string()], false).unwrap();
        assert_eq!(image_files_listing(&root, &upper).unwrap().files.len(), 9);
        // The same rules for the paths an index holds.
        let r = root.to_str().unwrap();
        let covered = |rel: &str| excludes.covers(r, &format!("{r}/{rel}"));
        assert!(covered("@eaDir/1.jpg/SYNOPHOTO_THUMB_M.jpg"));
        assert!(covered("a/@EADIR/2.jpg"));
        assert!(covered("2019/tmp/t.jpg"));
        assert!(covered("forgotten/f.jpg") && covered("forgotten"));
        assert!(!covered("2019/keep/k.jpg") && !covered("a/1.jpg"));
        assert!(!excludes.covers(r, r), "the root itself is never left out");
        // Nor is a left-out folder indexed as a root of its own.
        assert!(!excludes.covers(&forgotten, &format!("{forgotten}/f.jpg")));
        let alone = image_files_listing(&root.join("forgotten"), &excludes).unwrap();
        assert_eq!(alone.files.len(), 1);
        assert!(!excludes.covers(r, &format!("{r}-other/2019/tmp/t.jpg")));
        assert!(!excludes.covers(&format!("{r}/2019"), &format!("{r}/2019/tmp/x.jpg")));
        // Bad patterns are refused, naming the pattern.
        for bad in ["[a", "", "../up", "a/{b"] {
            let e = Excludes::check(bad).unwrap_err();
            assert!(
                matches!(&e, ClipError::Exclude { pattern, .. } if pattern == bad),
                "{bad}: {e}"
            );
        }
    }
}

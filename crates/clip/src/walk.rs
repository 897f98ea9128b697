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
/// Globs match in any case (`*.PNG` leaves out `a.png`; photo folders copied from Windows
/// or macOS do not keep case apart); absolute paths are compared as they are. In globs `*`
/// and `?` do not cross a `/`, `**` does, `[abc]` and `{a,b}` are classes and alternatives,
/// `\` escapes. A trailing `/` and a leading `./` are ignored. The root itself is never left
/// out.
#[derive(Debug, Clone)]
pub struct Excludes {
    names: GlobSet,
    /// The pattern of each glob of `names`, by its position.
    name_patterns: Vec<String>,
    relative: GlobSet,
    /// The pattern of each glob of `relative`, by its position.
    relative_patterns: Vec<String>,
    /// (path, pattern as given).
    absolute: Vec<(String, String)>,
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
            name_patterns: Vec::new(),
            relative: GlobSet::empty(),
            relative_patterns: Vec::new(),
            absolute: Vec::new(),
        }
    }

    /// `patterns`, and [`DEFAULT_EXCLUDES`] when `defaults`. A pattern that is not a valid
    /// glob is refused ([`ClipError::Exclude`], naming it).
    pub fn new(patterns: &[String], defaults: bool) -> Result<Excludes, ClipError> {
        let mut names = GlobSetBuilder::new();
        let mut relative = GlobSetBuilder::new();
        let mut out = Excludes::none();
        let defaults = DEFAULT_EXCLUDES
            .iter()
            .filter(|_| defaults)
            .map(|p| p.to_string());
        for pattern in patterns.iter().cloned().chain(defaults) {
            match Self::kind(&pattern)? {
                Kind::Absolute(path) => out.absolute.push((path, pattern)),
                Kind::Name(glob) => {
                    names.add(Self::glob(&pattern, glob)?);
                    out.name_patterns.push(pattern.clone());
                }
                Kind::Relative(glob) => {
                    relative.add(Self::glob(&pattern, glob)?);
                    out.relative_patterns.push(pattern.clone());
                }
            }
        }
        let build = |set: GlobSetBuilder| {
            set.build().map_err(|e| ClipError::Exclude {
                pattern: patterns.join(" "),
                detail: e.to_string(),
            })
        };
        out.names = build(names)?;
        out.relative = build(relative)?;
        Ok(out)
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

    fn glob(pattern: &str, glob: &str) -> Result<globset::Glob, ClipError> {
        GlobBuilder::new(glob)
            .literal_separator(true)
            .backslash_escape(true)
            .case_insensitive(true)
            .build()
            .map_err(|e| ClipError::Exclude {
                pattern: pattern.to_string(),
                detail: e.kind().to_string(),
            })
    }

    /// The pattern that leaves out the name `name` or the path `relative` (to the root), if
    /// any.
    fn glob_match(&self, name: &str, relative: &str) -> Option<&str> {
        // `is_match` first: most entries match nothing, and `matches` allocates.
        if self.names.is_match(name) {
            let i = self.names.matches(name)[0];
            return Some(&self.name_patterns[i]);
        }
        if self.relative.is_match(relative) {
            let i = self.relative.matches(relative)[0];
            return Some(&self.relative_patterns[i]);
        }
        None
    }

    /// The pattern that leaves out the entry `path` (absolute), found `relative` to the root
    /// of the walk, itself (its folders were looked at on the way down), if any.
    fn entry(&self, path: &Path, relative: &str) -> Option<&str> {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        self.glob_match(name, relative).or_else(|| {
            self.absolute
                .iter()
                .find(|(a, _)| path == Path::new(a))
                .map(|(_, p)| p.as_str())
        })
    }

    /// Whether `path` (absolute, under the folder `root`) is left out: it or a folder on the
    /// way to it from `root`. For the files an index holds.
    pub fn covers(&self, root: &str, path: &str) -> bool {
        self.covering(root, path).is_some()
    }

    /// The pattern that leaves out `path` (absolute, under the folder `root`), or a folder
    /// on the way to it from `root`, if any: the first met going down from `root`.
    pub fn covering(&self, root: &str, path: &str) -> Option<&str> {
        // An absolute path counts inside the root only, as in the walk: a folder left out
        // of one root and indexed as a root of its own is walked.
        if let Some((_, pattern)) = self.absolute.iter().find(|(a, _)| {
            clip_index::is_under(a, root) && (path == a || clip_index::is_under(path, a))
        }) {
            return Some(pattern);
        }
        let rest = path.strip_prefix(root)?;
        let relative = rest.trim_start_matches(std::path::MAIN_SEPARATOR);
        if relative.is_empty() || rest.len() == relative.len() && !root.ends_with('/') {
            return None; // the root itself, or a sibling that only shares its prefix
        }
        let mut end = 0;
        for component in relative.split('/') {
            end += component.len();
            if let Some(pattern) = self.glob_match(component, &relative[..end]) {
                return Some(pattern);
            }
            end += 1;
        }
        None
    }
}

/// Whether `pattern` is one of [`DEFAULT_EXCLUDES`] (in any case).
pub fn is_default_exclude(pattern: &str) -> bool {
    DEFAULT_EXCLUDES
        .iter()
        .any(|d| d.eq_ignore_ascii_case(pattern.trim_end_matches('/')))
}

/// A pattern as a person gave it (to `clip index --exclude`), as an index keeps it. A path
/// that exists is taken as that folder or file, absolute and canonical (links resolved, as
/// the index's folders are): an absolute path; or a relative one with a `/` inside (or
/// `..`) that names nothing under the `roots` but exists relative to `cwd` (so
/// `photos/2019/tmp`, typed in the folder above the library, means that folder, while
/// `2019/tmp` found under a root stays a pattern relative to each root). Globs (`*`, `?`,
/// `[`, `{`) and names without a `/` are kept as given.
pub fn resolve_pattern(pattern: &str, roots: &[String], cwd: &Path) -> String {
    let canonical = |p: &Path| {
        p.canonicalize()
            .ok()
            .and_then(|c| c.to_str().map(String::from))
    };
    if pattern.starts_with('/') {
        return canonical(Path::new(pattern)).unwrap_or_else(|| pattern.to_string());
    }
    let glob = pattern.strip_prefix("./").unwrap_or(pattern);
    let glob = glob.trim_end_matches('/');
    let is_glob = glob.contains(['*', '?', '[', '{', '\\']);
    let path_like = glob.contains('/') || glob == "..";
    if is_glob || !path_like {
        return pattern.to_string();
    }
    let under_a_root = !glob.split('/').any(|c| c == "..")
        && roots.iter().any(|r| Path::new(r).join(glob).exists());
    if under_a_root {
        return pattern.to_string();
    }
    canonical(&cwd.join(glob)).unwrap_or_else(|| pattern.to_string())
}

/// The pattern among `stored` that `given` names: `given` itself, or the path it names
/// (relative to `cwd`, made canonical, or absolute when it no longer exists), as
/// [`resolve_pattern`] and `clip index --forget` record paths.
pub fn find_pattern<'a>(given: &str, stored: &'a [String], cwd: &Path) -> Option<&'a String> {
    let path = cwd.join(given);
    let mut candidates = vec![given.to_string(), given.trim_end_matches('/').to_string()];
    if let Some(c) = path
        .canonicalize()
        .ok()
        .and_then(|c| c.to_str().map(String::from))
    {
        candidates.push(c);
    }
    if let Some(a) = std::path::absolute(&path)
        .ok()
        .and_then(|a| a.to_str().map(|a| a.trim_end_matches('/').to_string()))
    {
        candidates.push(a);
    }
    // Globs match in any case, so a glob is found in any case too (`*.png` takes out `*.PNG`);
    // absolute paths match exactly.
    candidates
        .iter()
        .find_map(|c| stored.iter().find(|s| *s == c))
        .or_else(|| {
            stored
                .iter()
                .find(|s| !s.starts_with('/') && s.eq_ignore_ascii_case(given))
        })
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
    /// The same, by the pattern that left each out.
    left_out_by: BTreeMap<String, usize>,
    /// Symbolic links named like images whose target does not exist, with the target.
    dangling: Vec<(PathBuf, PathBuf)>,
}

/// Walks `dir` for image files, in name order, skipping hidden files and folders and what
/// `exclude` names, following symbolic links to each folder once. A subfolder that cannot be
/// listed, an entry whose kind cannot be known (a folder without execute permission lists
/// names it cannot `stat`), or one named like an image that is no regular file (a FIFO, a
/// device) goes to `unlisted`, which decides whether the walk goes on; `dir` itself must be
/// listed. Entries gone since they were listed are left out, and so are links to nothing
/// (those named like images noted in the tally). Each file comes with the metadata the walk
/// read. `prefix` is the path of `dir` relative to the folder the exclusions' relative
/// patterns start from ("" for `dir` itself).
fn walk_images(
    dir: &Path,
    prefix: &str,
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
        /// Walks `dir`, which is `relative` to the base of the exclusions ("" for the base).
        fn walk(&mut self, dir: &Path, relative: &str, is_root: bool) -> Result<(), ClipError> {
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
                let rel = if relative.is_empty() {
                    name.to_string()
                } else {
                    format!("{relative}/{name}")
                };
                if let Some(pattern) = self.exclude.entry(&path, &rel) {
                    self.tally.left_out += 1;
                    *self
                        .tally
                        .left_out_by
                        .entry(pattern.to_string())
                        .or_default() += 1;
                    continue;
                }
                match meta {
                    Ok(m) if m.is_dir() => self.walk(&path, &rel, false)?,
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
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Gone since it was listed, or a link to nothing.
                        if has_image_extension(&path) {
                            if let Ok(target) = std::fs::read_link(&path) {
                                self.tally.dangling.push((path, target));
                            }
                        }
                    }
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
    walk.walk(dir, prefix, true)?;
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
        "",
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
    /// The same, by the pattern that left each out.
    pub left_out_by: BTreeMap<String, usize>,
    /// Symbolic links named like images whose target does not exist, with the target.
    pub dangling: Vec<(PathBuf, PathBuf)>,
}

/// Like [`image_files`], but without what `exclude` names, and a subfolder that cannot be
/// listed (or an entry that cannot be examined) is noted and the walk goes on (the folder
/// `dir` itself must be listed). For scans that must not fail, or conclude files are gone,
/// because of one unreadable folder.
pub fn image_files_listing(dir: &Path, exclude: &Excludes) -> Result<Listing, ClipError> {
    listing_with(dir, "", &list_entries, exclude)
}

/// [`image_files_listing`] of `dir`, a folder at or under `base`, with the exclusions'
/// relative patterns matched from `base`: a subfolder of an indexed folder is walked with
/// the indexed folder's exclusions (`2019/tmp` leaves out `tmp` in a walk of `2019`).
pub fn image_files_listing_in(
    base: &Path,
    dir: &Path,
    exclude: &Excludes,
) -> Result<Listing, ClipError> {
    let prefix = dir
        .strip_prefix(base)
        .ok()
        .and_then(|p| p.to_str())
        .unwrap_or("");
    listing_with(dir, prefix, &list_entries, exclude)
}

fn listing_with(
    dir: &Path,
    prefix: &str,
    list: &Lister,
    exclude: &Excludes,
) -> Result<Listing, ClipError> {
    let mut unlisted = Vec::new();
    let mut tally = Tally::default();
    let files = walk_images(
        dir,
        prefix,
        list,
        exclude,
        &mut tally,
        &mut |folder, error| {
            unlisted.push((folder.to_path_buf(), error.to_string()));
            Ok(())
        },
    )?;
    Ok(Listing {
        files,
        unlisted,
        other_files: tally.other,
        left_out: tally.left_out,
        left_out_by: tally.left_out_by,
        dangling: tally.dangling,
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
        let listing = listing_with(&root, "", &deny, &Excludes::none()).unwrap();
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
            "",
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
        assert!(listing_with(&root, "", &none, &Excludes::none()).is_err());
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
        let listing = listing_with(&root, "", &blind, &Excludes::none()).unwrap();
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
        // Each pattern's share of what was left out.
        let by: Vec<(&str, usize)> = listing
            .left_out_by
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            by,
            [
                ("#recycle", 1),
                ("*.thumb.jpg", 1),
                (forgotten.as_str(), 1),
                ("2019/tmp/", 1),
                ("@eaDir", 2),
                ("node_modules", 1)
            ]
        );
        // Without the defaults, the NAS folders come back; user patterns match in any case
        // too, as the defaults do.
        let listing = image_files_listing(&root, &Excludes::new(&patterns, false).unwrap());
        assert_eq!(listing.unwrap().files.len(), 7);
        let upper = Excludes::new(&["@EADIR".to_string()], false).unwrap();
        assert_eq!(image_files_listing(&root, &upper).unwrap().files.len(), 8);
        let shouting = Excludes::new(
            &["*.JPG".to_string(), "NODE_MODULES/PKG".to_string()],
            false,
        );
        let listing = image_files_listing(&root, &shouting.unwrap()).unwrap();
        assert!(listing.files.is_empty(), "{:?}", listing.files);
        // The same rules for the paths an index holds.
        let r = root.to_str().unwrap();
        let covered = |rel: &str| excludes.covers(r, &format!("{r}/{rel}"));
        assert!(covered("@eaDir/1.jpg/SYNOPHOTO_THUMB_M.jpg"));
        assert!(covered("a/@EADIR/2.jpg"));
        assert!(covered("2019/tmp/t.jpg"));
        assert!(covered("forgotten/f.jpg") && covered("forgotten"));
        assert_eq!(
            excludes.covering(r, &format!("{r}/a/@EADIR/2.jpg")),
            Some("@eaDir")
        );
        assert_eq!(
            excludes.covering(r, &format!("{r}/2019/tmp/t.jpg")),
            Some("2019/tmp/")
        );
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

    #[test]
    fn a_subfolder_is_walked_with_the_exclusions_of_the_folder_above() {
        let tmp = clip_test_support::temp_dir();
        let root = tmp.path().canonicalize().unwrap();
        for f in ["2019/tmp/t.jpg", "2019/keep/k.jpg", "2019/trip/1.jpg"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let trip = root.join("2019/trip").to_str().unwrap().to_string();
        let excludes = Excludes::new(&["2019/tmp".to_string(), trip.clone()], true).unwrap();
        // Walked alone, `2019` would know nothing of `2019/tmp`; walked in its root, it does.
        let alone = image_files_listing(&root.join("2019"), &excludes).unwrap();
        assert_eq!(alone.files.len(), 2);
        let within = image_files_listing_in(&root, &root.join("2019"), &excludes).unwrap();
        let files: Vec<PathBuf> = within.files.iter().map(|f| f.0.clone()).collect();
        assert_eq!(files, [root.join("2019/keep/k.jpg")]);
        assert_eq!(within.left_out, 2);
        // And the folder itself is covered, seen from the root.
        let r = root.to_str().unwrap();
        assert_eq!(excludes.covering(r, &trip), Some(trip.as_str()));
        assert!(excludes.covers(r, &format!("{r}/2019/tmp")));
        assert!(is_default_exclude("@EADIR") && !is_default_exclude("tmp"));
    }

    #[cfg(unix)]
    #[test]
    fn links_to_nothing_named_like_images_are_noted() {
        let tmp = clip_test_support::temp_dir();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::write(root.join("real.jpg"), b"x").unwrap();
        std::os::unix::fs::symlink(root.join("gone.jpg"), root.join("dangling.jpg")).unwrap();
        std::os::unix::fs::symlink(root.join("gone.txt"), root.join("dangling.txt")).unwrap();
        let listing = image_files_listing(&root, &Excludes::none()).unwrap();
        assert_eq!(listing.files.len(), 1);
        assert_eq!(
            listing.dangling,
            [(root.join("dangling.jpg"), root.join("gone.jpg"))]
        );
        assert!(listing.unlisted.is_empty());
        // The plain walk leaves them out, as before.
        assert_eq!(image_files(&root).unwrap(), [root.join("real.jpg")]);
    }

    #[test]
    fn patterns_given_as_paths_are_resolved_like_folders() {
        let tmp = clip_test_support::temp_dir();
        let top = tmp.path().canonicalize().unwrap();
        let root = top.join("nas/photo");
        for d in ["2019/tmp", "2020"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let roots = [root.to_str().unwrap().to_string()];
        let abs = |p: &str| top.join(p).to_str().unwrap().to_string();
        // A path relative to the working folder, naming nothing under the roots: made
        // absolute (from the folder above, and from inside the library with `..`).
        assert_eq!(
            resolve_pattern("nas/photo/2019", &roots, &top),
            abs("nas/photo/2019")
        );
        assert_eq!(
            resolve_pattern("../2020/", &roots, &root.join("2019")),
            abs("nas/photo/2020")
        );
        // A path under a root stays a pattern relative to each root.
        assert_eq!(resolve_pattern("2019/tmp", &roots, &root), "2019/tmp");
        // Names, globs, absolute paths of nothing, and paths of nothing stay as given.
        for kept in [
            "photo",
            "2019",
            "*/tmp",
            "nas/photo/*",
            "/etc/nothing-here",
            "x/y",
        ] {
            assert_eq!(resolve_pattern(kept, &roots, &top), kept);
        }
        // An absolute path is made canonical.
        let dotted = format!("{}/nas/./photo/2020/", top.display());
        assert_eq!(
            resolve_pattern(&dotted, &roots, &top),
            abs("nas/photo/2020")
        );
        // Taking a pattern out finds it as stored, however the path is given.
        let stored = vec!["tmp".to_string(), abs("nas/photo/2019")];
        assert_eq!(find_pattern("tmp", &stored, &top), Some(&stored[0]));
        assert_eq!(
            find_pattern("nas/photo/2019", &stored, &top),
            Some(&stored[1])
        );
        assert_eq!(find_pattern("2019/", &stored, &root), Some(&stored[1]));
        assert_eq!(find_pattern("2020", &stored, &root), None);
        // A glob in any case, as it matches; an absolute path only as it is.
        assert_eq!(find_pattern("TMP", &stored, &top), Some(&stored[0]));
        let upper = abs("nas/photo/2019").to_uppercase();
        assert_eq!(find_pattern(&upper, &stored, &top), None);
    }
}

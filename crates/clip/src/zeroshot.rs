//! Zero-shot classifiers from class names and prompt templates, as in the CLIP paper: each
//! class is the mean of the L2-normalized text embeddings of its prompts, normalized again
//! (what open_clip's `build_zero_shot_classifier` computes).
//!
//! The built-in class lists and template sets are the ones the CLIP authors published
//! (`data/zeroshot/*.txt`, made by `tools/zeroshot/gen_lists.py`; each file names its source).

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{env, fnv1a, normalized, Clip, ClipError, FNV_OFFSET};

/// The built-in lists: for each name, its classes and its templates.
macro_rules! builtin_lists {
    ($($name:literal),* $(,)?) => {
        /// Names of the built-in class lists and template sets: ImageNet-1k (the 80 templates
        /// of the paper's prompt-engineering notebook) and the datasets of OpenAI's
        /// `data/prompts.md` (FER2013, whose classes are synonym lists, is left out).
        pub const BUILTIN: &[&str] = &[$($name),*];
        const LISTS: &[(&str, &str, &str)] = &[$((
            $name,
            include_str!(concat!("../data/zeroshot/", $name, ".classes.txt")),
            include_str!(concat!("../data/zeroshot/", $name, ".templates.txt")),
        )),*];
    };
}

builtin_lists!(
    "imagenet",
    "cifar10",
    "cifar100",
    "birdsnap",
    "caltech101",
    "clevr_counts",
    "country211",
    "dtd",
    "eurosat",
    "fgvc_aircraft",
    "flowers102",
    "food101",
    "gtsrb",
    "hateful_memes",
    "kinetics700",
    "kitti",
    "mnist",
    "oxford_pets",
    "pcam",
    "resisc45",
    "sst2",
    "stanford_cars",
    "stl10",
    "sun397",
    "ucf101",
    "voc2007",
);

fn builtin_text(name: &str, kind: &str) -> Option<&'static str> {
    let &(_, classes, templates) = LISTS.iter().find(|(n, _, _)| *n == name)?;
    match kind {
        "classes" => Some(classes),
        "templates" => Some(templates),
        _ => None,
    }
}

/// The entries of a list file: one a line, trimmed; a `#` at the start of a line or after a
/// space or tab starts a comment ("cat  # the animal" is "cat"; "C#" stays whole), and `\#`
/// is a `#` that does not ("C \# minor" is "C # minor"); blank lines are skipped (a
/// byte-order mark at the start is dropped).
pub fn parse_list(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .map(strip_comment)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `line` without its `#` comment (from a `#` at its start or after whitespace), with each
/// `\#` read as a `#` that starts no comment.
pub(crate) fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut previous = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'#') {
            chars.next();
            out.push('#');
            previous = Some('#');
            continue;
        }
        if c == '#' && previous.is_none_or(char::is_whitespace) {
            break;
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

/// A built-in class list (`imagenet`, `cifar10`, `cifar100`), with the CLIP authors' names.
pub fn builtin_classes(name: &str) -> Option<Vec<String>> {
    builtin_text(&name.to_ascii_lowercase(), "classes").map(parse_list)
}

/// Prompt templates: `{}` in each is replaced by the class name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates(Vec<String>);

impl Templates {
    /// The class name as it is (one template, `{}`).
    pub fn none() -> Templates {
        Templates(vec!["{}".into()])
    }

    /// Templates from a list; each must contain `{}`.
    pub fn new(templates: Vec<String>, source: &str) -> Result<Templates, ClipError> {
        if templates.is_empty() {
            return Err(ClipError::Templates {
                source_name: source.into(),
                detail: "no templates".into(),
            });
        }
        if let Some(bad) = templates.iter().find(|t| !t.contains("{}")) {
            return Err(ClipError::Templates {
                source_name: source.into(),
                detail: format!("template {bad:?} has no {{}} for the class name"),
            });
        }
        Ok(Templates(templates))
    }

    /// A built-in set (`imagenet`: the 80 templates of the paper, `cifar10`, `cifar100`).
    pub fn builtin(name: &str) -> Option<Templates> {
        builtin_text(&name.to_ascii_lowercase(), "templates").map(|t| Templates(parse_list(t)))
    }

    /// The templates.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The prompts of one class.
    pub fn prompts(&self, class: &str) -> Vec<String> {
        self.0.iter().map(|t| t.replace("{}", class)).collect()
    }
}

/// How [`Clip::zero_shot_classifier_with`] works.
#[derive(Debug, Clone, Default)]
pub struct ClassifierOptions {
    /// Cut prompts longer than the context instead of failing.
    pub truncate: bool,
    /// Where to keep classifiers between runs ([`default_cache_dir`]); `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// Set (by a Ctrl-C handler, say) to stop the computation between two model calls: the
    /// classes done are kept in the cache, and the call fails with
    /// [`ClipError::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
}

/// Labels as a user gives them, parsed: what [`Labels::parse`] made of the spec, and what
/// looked wrong but is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// The labels, in the order given.
    pub labels: Vec<String>,
    /// Things worth a warning: a label given twice, a single label.
    pub warnings: Vec<String>,
}

impl Labels {
    /// Reads labels from a spec: a file with one label per line (read by [`parse_list`]: ` #`
    /// starts a comment, `\#` is a `#`), a built-in class list (`imagenet`, `cifar10`, …), or
    /// a comma-separated list. A label given twice is a warning, except in a built-in list
    /// (ImageNet's, as published, names "missile" and "sunglasses" twice). A name that
    /// looks like a file (a label-file extension, or a path into an existing folder) but is
    /// not one is refused rather than read as one label; "AC/DC" is a label.
    pub fn parse(spec: &str) -> Result<Labels, ClipError> {
        let invalid = |detail: String| ClipError::Labels { detail };
        let path = Path::new(spec);
        if path.is_dir() {
            return Err(invalid(format!("label file {spec} is a directory")));
        }
        let builtin = !path.is_file() && builtin_classes(spec).is_some();
        let labels: Vec<String> = if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|error| ClipError::Io {
                path: spec.to_string(),
                error,
            })?;
            parse_list(&text)
        } else if let Some(classes) = builtin_classes(spec) {
            classes
        } else {
            let has_extension = [".txt", ".csv", ".lst", ".labels"]
                .iter()
                .any(|ext| spec.to_ascii_lowercase().ends_with(ext));
            let in_existing_dir = spec.contains(std::path::MAIN_SEPARATOR)
                && path
                    .parent()
                    .is_some_and(|p| !p.as_os_str().is_empty() && p.is_dir());
            if !spec.contains(',') && (has_extension || in_existing_dir) {
                return Err(invalid(format!(
                    "label file {spec} does not exist (labels given in place are comma-separated, like \"cat,dog\")"
                )));
            }
            spec.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        };
        if labels.is_empty() {
            return Err(invalid(format!("no labels in {spec:?}")));
        }
        let mut warnings = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut twice: Vec<&str> = Vec::new();
        for l in &labels {
            if !seen.insert(l.as_str()) && !twice.contains(&l.as_str()) {
                twice.push(l);
            }
        }
        // A built-in list's duplicates are its authors' (ImageNet's "missile" and
        // "sunglasses" name two classes each): nothing the user can fix, documented instead.
        if !twice.is_empty() && !builtin {
            let names = twice.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>();
            let (names, are) = match names.len() {
                1 => (names[0].clone(), "is"),
                _ => (names.join(", "), "are"),
            };
            warnings.push(format!(
                "{names} {are} given more than once: each copy is scored and shown on its own, \
                 with the same probability, so together they take a larger share than one label"
            ));
        }
        if labels.len() == 1 {
            warnings.push(format!(
                "only one label ({:?}): its probability is always 1",
                labels[0]
            ));
        }
        Ok(Labels { labels, warnings })
    }
}

impl Templates {
    /// The templates a user asks for: `single` (one template), else `spec` (a file with one
    /// per line, a built-in set's name, or `none`), else the built-in set of `labels_spec`
    /// when that names a built-in class list (the paper's method), else none.
    pub fn parse(
        single: Option<&str>,
        spec: Option<&str>,
        labels_spec: Option<&str>,
    ) -> Result<Templates, ClipError> {
        if let Some(t) = single {
            return Templates::new(vec![t.to_string()], "--template");
        }
        let Some(spec) = spec else {
            let builtin = labels_spec
                .filter(|l| !Path::new(l).exists())
                .and_then(Templates::builtin);
            return Ok(builtin.unwrap_or_else(Templates::none));
        };
        let path = Path::new(spec);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|error| ClipError::Io {
                path: spec.to_string(),
                error,
            })?;
            return Templates::new(parse_list(&text), spec);
        }
        if spec.eq_ignore_ascii_case("none") {
            return Ok(Templates::none());
        }
        Templates::builtin(spec).ok_or_else(|| ClipError::UnknownTemplates {
            name: spec.to_string(),
            builtin: BUILTIN.join(", "),
        })
    }
}

impl Clip {
    /// The zero-shot classifier of `classes` with `templates`: one unit-length embedding per
    /// class, the renormalized mean of its prompts' normalized text embeddings. Pass the result
    /// to [`Clip::classify`] as the label features.
    pub fn zero_shot_classifier<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        truncate: bool,
    ) -> Result<Vec<Vec<f32>>, ClipError> {
        let mut out = Vec::with_capacity(classes.len());
        self.compute_classifier(classes, templates, truncate, None, &mut |rows| {
            out.extend_from_slice(rows)
        })?;
        Ok(out)
    }

    /// Computes the classifier rows of `classes`, a few classes per model call (about a batch
    /// of prompts), handing each call's rows to `done` as they come. Before each call, `stop`
    /// is looked at: when it is set, the computation ends there (`Ok(false)`).
    fn compute_classifier<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        truncate: bool,
        stop: Option<&AtomicBool>,
        done: &mut dyn FnMut(&[Vec<f32>]),
    ) -> Result<bool, ClipError> {
        let per_class = templates.as_slice().len();
        // Whole classes per call, about a batch of prompts each.
        let classes_per_call = (self.batch_size / per_class).max(1);
        for group in classes.chunks(classes_per_call) {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Ok(false);
            }
            let prompts: Vec<String> = group
                .iter()
                .flat_map(|c| templates.prompts(c.as_ref()))
                .collect();
            let tokens = self.tokenize_all(&prompts, truncate)?;
            let features = self.encode_text(&tokens)?;
            let rows: Vec<Vec<f32>> = features
                .chunks(per_class)
                .map(|group| {
                    let mut mean = vec![0f32; group[0].len()];
                    for f in group {
                        for (m, v) in mean.iter_mut().zip(normalized(f)) {
                            *m += v;
                        }
                    }
                    for m in &mut mean {
                        *m /= per_class as f32;
                    }
                    normalized(&mean)
                })
                .collect();
            done(&rows);
        }
        Ok(true)
    }
}

/// Where [`Clip::zero_shot_classifier_with`] keeps class embeddings by default:
/// `$CLIP_CACHE_DIR`, else `$XDG_CACHE_HOME/clip`, else `~/.cache/clip`; then `classifiers`.
pub fn default_cache_dir() -> Option<PathBuf> {
    Some(env::cache_home()?.join("classifiers"))
}

/// The magic of a classifier file: the key, the rows, and a blake3 checksum of all that
/// before it, so damage is noticed (version 1 files, without the checksum, are computed again
/// once).
const MAGIC: &[u8; 8] = b"CLIPZS2\n";
/// The magic of the files of earlier versions: the same layout, without the checksum.
const MAGIC_V1: &[u8; 8] = b"CLIPZS1\n";
/// The length of a blake3 checksum.
const CHECKSUM: usize = 32;

/// Separates the classes, and the templates, inside a cache key.
const KEY_SEP: char = '\u{1f}';

fn u32_at(b: &[u8], i: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize)
}

/// A cache file's key and the bytes after it (the checksum included); `None` if it is not a
/// cache file of this version or the one before.
fn split_key(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .or_else(|| bytes.strip_prefix(MAGIC_V1))?;
    let key_len = u32_at(rest, 0)?;
    Some((rest.get(4..4 + key_len)?, &rest[4 + key_len..]))
}

/// What a classifier file holds for a key.
#[derive(Debug, PartialEq)]
enum Cached {
    /// The rows, checked against the file's checksum.
    Rows(Vec<Vec<f32>>),
    /// No file (or none that can be read).
    Missing,
    /// The file of another key whose name is the same (a hash collision): replaced.
    OtherKey,
    /// A file of an earlier version, without a checksum: computed again once.
    Old,
    /// A damaged file, and what is wrong with it.
    Damaged(String),
}

/// Checks a classifier file's bytes against its checksum: why it is damaged, if it is.
fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(MAGIC_V1) {
        return Ok(());
    }
    if !bytes.starts_with(MAGIC) {
        return Err("not a classifier file".into());
    }
    let Some(body_len) = bytes.len().checked_sub(CHECKSUM) else {
        return Err("cut short".into());
    };
    if blake3::hash(&bytes[..body_len]).as_bytes() != &bytes[body_len..] {
        return Err("its checksum does not match its content".into());
    }
    Ok(())
}

fn read_cached(path: &Path, key: &str) -> Cached {
    // A file that cannot be read (none yet, or its folder is a file) is computed; writing it
    // then says what is wrong, if anything.
    let Ok(bytes) = std::fs::read(path) else {
        return Cached::Missing;
    };
    if let Err(why) = check(&bytes) {
        return Cached::Damaged(why);
    }
    if bytes.starts_with(MAGIC_V1) {
        return Cached::Old;
    }
    let Some((stored_key, body)) = split_key(&bytes[..bytes.len() - CHECKSUM]) else {
        return Cached::Damaged("its header is cut short".into());
    };
    if stored_key != key.as_bytes() {
        return Cached::OtherKey;
    }
    let (Some(rows), Some(dim)) = (u32_at(body, 0), u32_at(body, 4)) else {
        return Cached::Damaged("its header is cut short".into());
    };
    let data = &body[8.min(body.len())..];
    if rows == 0 || dim == 0 || Some(data.len()) != rows.checked_mul(dim * 4) {
        return Cached::Damaged(format!(
            "{} bytes of embeddings for {rows} classes of {dim} values",
            data.len()
        ));
    }
    Cached::Rows(
        data.chunks_exact(dim * 4)
            .map(|row| {
                row.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
            .collect(),
    )
}

fn write_cached(path: &Path, key: &str, rows: &[Vec<f32>]) -> std::io::Result<()> {
    let dim = rows.first().map_or(0, Vec::len);
    let mut bytes =
        Vec::with_capacity(MAGIC.len() + 12 + key.len() + rows.len() * dim * 4 + CHECKSUM);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    for v in rows.iter().flatten() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let checksum = blake3::hash(&bytes);
    bytes.extend_from_slice(checksum.as_bytes());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomically(path, |f| f.write_all(&bytes))
}

/// Writes a file through a temporary file beside it, renamed into place, so that a reader
/// never sees half a file; on any failure (a full disk included) the temporary file is
/// removed and `path` is left as it was.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        write(&mut file)?;
        // A full disk may only show when the data is written out.
        file.sync_data()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The magic of a classifier being computed: rows are appended as they are computed, each
/// followed by a blake3 checksum of its number and values, so an interrupted computation goes
/// on where it stopped and a damaged row is computed again rather than used.
const PARTIAL_MAGIC: &[u8; 8] = b"CLIPZP2\n";

/// The file of the classifier at `path` while it is computed.
fn partial_path(path: &Path) -> PathBuf {
    path.with_extension("classifier.partial")
}

fn partial_header(key: &str, dim: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PARTIAL_MAGIC.len() + 8 + key.len());
    bytes.extend_from_slice(PARTIAL_MAGIC);
    bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    bytes
}

/// The checksum of row `index` of a partial file.
fn row_checksum(index: usize, values: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(&(index as u64).to_le_bytes());
    h.update(values);
    h.finalize()
}

/// What a partial file holds.
#[derive(Debug)]
struct Partial<'a> {
    /// Its key.
    key: &'a [u8],
    /// The embedding size.
    dim: usize,
    /// The rows done, each checked against its checksum.
    rows: Vec<Vec<f32>>,
    /// Whether whole rows follow the good ones whose checksum does not match (damage, as
    /// opposed to the last row cut short by an interruption, which is dropped silently).
    damaged: bool,
}

/// The key and the good rows of a partial file: those before the first row that is cut
/// short (by an interruption) or whose checksum does not match; `None` if it is not one.
fn split_partial(bytes: &[u8]) -> Option<Partial<'_>> {
    let rest = bytes.strip_prefix(PARTIAL_MAGIC)?;
    let key_len = u32_at(rest, 0)?;
    let key = rest.get(4..4 + key_len)?;
    let dim = u32_at(rest, 4 + key_len)?;
    let data = rest.get(8 + key_len..)?;
    if dim == 0 {
        return None;
    }
    let mut rows = Vec::new();
    let mut damaged = false;
    for (i, record) in data.chunks_exact(dim * 4 + CHECKSUM).enumerate() {
        let (values, checksum) = record.split_at(dim * 4);
        if row_checksum(i, values).as_bytes() != checksum {
            damaged = true;
            break;
        }
        rows.push(
            values
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        );
    }
    Some(Partial {
        key,
        dim,
        rows,
        damaged,
    })
}

/// Progress kept on disk while a classifier is computed: the rows done so far, appended to
/// the partial file as they come. Holds the file's lock, so two runs computing the same
/// classifier do not write into each other's file (the second keeps its rows in memory).
struct PartialFile {
    path: PathBuf,
    file: std::fs::File,
    /// Rows in the file.
    rows: usize,
}

/// A partial file opened by [`PartialFile::open`], with the rows it held.
type Opened = (PartialFile, Vec<Vec<f32>>, Option<String>);

impl PartialFile {
    /// Opens the partial file of `key` for appending, after the good `rows` it holds for it
    /// (read here, at most `max`); a stale one is started afresh, a damaged one is cut before
    /// its first damaged row (and a warning says so). `Ok(None)` when another run holds it.
    fn open(path: PathBuf, key: &str, dim: usize, max: usize) -> std::io::Result<Option<Opened>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let header = partial_header(key, dim);
        let (mut rows, mut warning) = match split_partial(&bytes) {
            Some(p) if p.key == key.as_bytes() && p.dim == dim => {
                let warning = p.damaged.then(|| {
                    format!(
                        "{} (the label embeddings of an interrupted run) is damaged after {} \
                         classes; the rest is computed again",
                        path.display(),
                        p.rows.len()
                    )
                });
                (p.rows, warning)
            }
            _ => (Vec::new(), None),
        };
        if rows.len() > max {
            rows.truncate(max);
            warning = None;
        }
        // Cut what follows the good rows (a row half written when the run was stopped).
        file.set_len((header.len() + rows.len() * (dim * 4 + CHECKSUM)) as u64)?;
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.seek(std::io::SeekFrom::End(0))?;
        let n = rows.len();
        Ok(Some((
            PartialFile {
                path,
                file,
                rows: n,
            },
            rows,
            warning,
        )))
    }

    fn append(&mut self, rows: &[Vec<f32>]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let start = bytes.len();
            bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
            let checksum = row_checksum(self.rows + i, &bytes[start..]);
            bytes.extend_from_slice(checksum.as_bytes());
        }
        self.file.write_all(&bytes)?;
        self.rows += rows.len();
        Ok(())
    }

    /// Deletes the file (the classifier is complete, or the progress cannot be kept).
    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Clip {
    /// What identifies a classifier: the checkpoint (folder, weights files' sizes and
    /// modification times, so a checkpoint rewritten in place is noticed), how the engine
    /// computes, and the classes and templates. Stricter than [`Clip::identity`] (which the
    /// index uses, and which must not change when a model folder moves); the format is kept
    /// as it is so caches made by earlier versions stay valid.
    fn classifier_key<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        truncate: bool,
    ) -> Option<String> {
        if self.dir.as_os_str().is_empty() {
            return None; // random weights: nothing to key on
        }
        let dir = self.dir.canonicalize().ok()?;
        // The files the loader reads (every shard of a sharded checkpoint) and the config.
        let weights = clip_model::find_weights(&dir).ok()?;
        let mut files = String::new();
        for path in weights.paths().iter().chain([&dir.join("config.json")]) {
            let meta = std::fs::metadata(path).ok()?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            files.push_str(&format!("{}:{}:{modified};", path.display(), meta.len()));
        }
        let o = self.engine.options();
        let sep = KEY_SEP.to_string();
        Some(format!(
            "model={}|files={files}|precision={}|reference={}|truncate={truncate}|context={}|classes={}|templates={}",
            dir.display(),
            o.precision,
            o.backend == clip_model::Backend::Candle,
            self.context_length(),
            classes.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(&sep),
            templates.as_slice().join(&sep),
        ))
    }

    /// [`Clip::zero_shot_classifier`] with options: kept in `options.cache_dir` between runs
    /// when given (see [`default_cache_dir`]): a second call with the same checkpoint, engine
    /// options, classes and templates reads the file instead of running the text tower. While
    /// the classes are computed, each model call's rows are appended to a partial file beside
    /// it, so a run that is interrupted (Ctrl-C, a crash, `options.stop`) or fails is
    /// continued by the next from where it stopped. Both files carry blake3 checksums: a
    /// damaged entry (or a damaged row of a partial file) is never used but computed again and
    /// rewritten, with a warning in [`Classifier::warnings`] naming the file; an entry of an
    /// earlier version (without checksum) is computed again once. A failure to write the
    /// cache does not fail the call: it is told in the warnings and nothing is left behind.
    /// `progress` is called with the number of classes done, those read from an interrupted
    /// run first (the 1000 ImageNet classes with 80 templates are 80,000 prompts). When
    /// `options.stop` is set the call fails with [`ClipError::Interrupted`], saying how many
    /// classes are kept for the next call.
    pub fn zero_shot_classifier_with<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        options: &ClassifierOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Classifier, ClipError> {
        let truncate = options.truncate;
        let stop = options.stop.as_deref();
        let stopped = || stop.is_some_and(|s| s.load(Ordering::SeqCst));
        let total = classes.len();
        let computed = |rows: Vec<Vec<f32>>, cached: usize, warnings: Vec<String>| Classifier {
            rows,
            cached,
            warnings,
        };
        let key = options
            .cache_dir
            .as_deref()
            .and_then(|dir| Some((dir, self.classifier_key(classes, templates, truncate)?)));
        let Some((cache_dir, key)) = key else {
            let mut rows = Vec::with_capacity(total);
            let complete =
                self.compute_classifier(classes, templates, truncate, stop, &mut |done| {
                    rows.extend_from_slice(done);
                    progress(done.len());
                })?;
            if !complete || stopped() {
                return Err(ClipError::Interrupted {
                    done: rows.len(),
                    total,
                    kept_in: None,
                });
            }
            return Ok(computed(rows, 0, Vec::new()));
        };
        let path = cache_dir.join(format!(
            "{:016x}.classifier",
            fnv1a(key.as_bytes(), FNV_OFFSET)
        ));
        let dim = self.embedding_dim();
        let mut warnings = Vec::new();
        let mut damaged = None;
        match read_cached(&path, &key) {
            Cached::Rows(rows) if rows.len() == total && rows[0].len() == dim => {
                return Ok(computed(rows, total, Vec::new()))
            }
            Cached::Rows(rows) => {
                damaged = Some(format!(
                    "{} classes of {} values where {total} of {dim} belong",
                    rows.len(),
                    rows[0].len()
                ))
            }
            Cached::Damaged(why) => damaged = Some(why),
            Cached::Old => tracing::info!(
                "{} was written by an earlier version (without a checksum): computing it again",
                path.display()
            ),
            Cached::Missing | Cached::OtherKey => {}
        }
        // The progress is kept when it can be; when it cannot (a read-only or full disk),
        // the final write below fails too and says so.
        let (mut partial, mut rows) = match PartialFile::open(partial_path(&path), &key, dim, total)
        {
            Ok(Some((file, rows, warning))) => {
                warnings.extend(warning);
                (Some(file), rows)
            }
            Ok(None) => (None, Vec::new()),
            Err(e) => {
                tracing::debug!("cannot keep progress in {}: {e}", path.display());
                let _ = std::fs::remove_file(partial_path(&path));
                (None, Vec::new())
            }
        };
        let resumed = rows.len();
        if resumed > 0 {
            progress(resumed);
        }
        let complete = self.compute_classifier(
            &classes[resumed..],
            templates,
            truncate,
            stop,
            &mut |done| {
                rows.extend_from_slice(done);
                if let Some(file) = partial.as_mut() {
                    if let Err(e) = file.append(done) {
                        tracing::debug!("cannot keep progress in {}: {e}", file.path.display());
                        if let Some(file) = partial.take() {
                            file.remove();
                        }
                    }
                }
                progress(done.len());
            },
        )?;
        if !complete {
            return Err(ClipError::Interrupted {
                done: rows.len(),
                total,
                kept_in: partial.map(|file| file.path.display().to_string()),
            });
        }
        let written = write_cached(&path, &key, &rows);
        if let Some(why) = damaged {
            let rewritten = if written.is_ok() {
                " and rewrote the file"
            } else {
                ""
            };
            warnings.push(format!(
                "the label embeddings cached in {} were damaged ({why}): computed them \
                 again{rewritten}",
                path.display()
            ));
        }
        if let Err(e) = &written {
            warnings.push(format!(
                "cannot keep the label embeddings in {} ({e}); they were computed, not cached",
                path.display()
            ));
        }
        if let Some(file) = partial {
            file.remove();
        }
        // Stopped while the last classes were computed: they are all kept, and the caller
        // still asked to stop.
        if stopped() {
            return Err(ClipError::Interrupted {
                done: total,
                total,
                kept_in: written.is_ok().then(|| path.display().to_string()),
            });
        }
        Ok(computed(rows, resumed, warnings))
    }
}

/// A zero-shot classifier made by [`Clip::zero_shot_classifier_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    /// One unit-length embedding per class, in the order of the classes.
    pub rows: Vec<Vec<f32>>,
    /// How many classes were read from the cache: all of them when the classifier was
    /// there, some when an interrupted computation was continued, else none.
    pub cached: usize,
    /// What went wrong with the cache without failing the call (such as a full disk), for
    /// the caller to pass on as warnings.
    pub warnings: Vec<String>,
}

/// One classifier in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The checkpoint folder it was computed with (empty if the file is unreadable).
    pub model: String,
    /// How many classes and templates it holds (0 if unreadable).
    pub classes: usize,
    /// How many templates were ensembled.
    pub templates: usize,
    /// The first few class names.
    pub sample: Vec<String>,
    /// For a classifier whose computation was interrupted (a `.classifier.partial` file, which
    /// the next run that needs it continues), how many classes are done.
    pub partial: Option<usize>,
    /// Why the entry cannot be used as it is (damaged, unreadable, or written by an earlier
    /// version); the next run that needs it computes it again (for a partial file, what
    /// follows its good rows). `None` for a good entry.
    pub problem: Option<String>,
}

/// The classifiers kept in `cache_dir` (see [`default_cache_dir`]), in file name order. A
/// missing folder is an empty cache.
pub fn cache_entries(cache_dir: &Path) -> Result<Vec<CacheEntry>, ClipError> {
    let read = match std::fs::read_dir(cache_dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(ClipError::Io {
                path: cache_dir.display().to_string(),
                error,
            })
        }
    };
    let mut paths: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "classifier" || e == "partial")
        })
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            let content = std::fs::read(&path).unwrap_or_default();
            let is_partial = path.extension().is_some_and(|e| e == "partial");
            let (key, partial, problem) = if is_partial {
                match split_partial(&content) {
                    Some(p) => (
                        String::from_utf8(p.key.to_vec()).ok(),
                        Some(p.rows.len()),
                        p.damaged.then(|| {
                            format!(
                                "damaged after {} classes: those are kept, the rest computed again",
                                p.rows.len()
                            )
                        }),
                    ),
                    None => (
                        None,
                        Some(0),
                        Some("not a classifier file: computed afresh".to_string()),
                    ),
                }
            } else {
                let problem = match check(&content) {
                    Err(why) => Some(format!("damaged: {why}")),
                    Ok(()) if content.starts_with(MAGIC_V1) => {
                        Some("written by an earlier version, without a checksum".to_string())
                    }
                    Ok(()) => None,
                };
                let key = split_key(&content).and_then(|(k, _)| String::from_utf8(k.to_vec()).ok());
                (key, None, problem)
            };
            let field = |name: &str| {
                key.as_deref().and_then(|k| {
                    k.split('|')
                        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                        .map(str::to_string)
                })
            };
            let classes: Vec<String> = field("classes")
                .map(|c| c.split(KEY_SEP).map(String::from).collect())
                .unwrap_or_default();
            CacheEntry {
                path,
                bytes,
                model: field("model").unwrap_or_default(),
                classes: classes.len(),
                templates: field("templates").map_or(0, |t| t.split(KEY_SEP).count()),
                sample: classes.into_iter().take(3).collect(),
                problem: problem.or_else(|| key.is_none().then(|| "unreadable".to_string())),
                partial,
            }
        })
        .collect())
}

/// Deletes every cached classifier in `cache_dir` (those partly computed too); returns how
/// many files and bytes.
pub fn clear_cache(cache_dir: &Path) -> Result<(usize, u64), ClipError> {
    let mut removed = (0, 0);
    for entry in cache_entries(cache_dir)? {
        std::fs::remove_file(&entry.path).map_err(|error| ClipError::Io {
            path: entry.path.display().to_string(),
            error,
        })?;
        removed.0 += 1;
        removed.1 += entry.bytes;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lists_have_the_published_sizes() {
        assert_eq!(builtin_classes("imagenet").unwrap().len(), 1000);
        assert_eq!(builtin_classes("CIFAR10").unwrap().len(), 10);
        assert_eq!(builtin_classes("cifar100").unwrap().len(), 100);
        assert_eq!(Templates::builtin("imagenet").unwrap().as_slice().len(), 80);
        assert_eq!(Templates::builtin("cifar10").unwrap().as_slice().len(), 18);
        assert_eq!(builtin_classes("sun397").unwrap().len(), 397);
        assert_eq!(Templates::builtin("ucf101").unwrap().as_slice().len(), 48);
        assert!(builtin_classes("fer2013").is_none());
        assert_eq!(BUILTIN.len(), 26);
        for name in BUILTIN {
            for t in Templates::builtin(name).unwrap().as_slice() {
                assert!(t.contains("{}"), "{name}: {t}");
            }
            // Every line of the file is an entry: no class is lost as a comment or blank.
            let text = builtin_text(name, "classes").unwrap();
            let lines = text.lines().filter(|l| !l.starts_with("# ")).count();
            assert_eq!(builtin_classes(name).unwrap().len(), lines, "{name}");
        }
        assert_eq!(builtin_classes("imagenet").unwrap()[0], "tench");
    }

    #[test]
    fn templates_need_a_placeholder() {
        let t = Templates::new(vec!["a photo of a {}.".into()], "x").unwrap();
        assert_eq!(t.prompts("cat"), ["a photo of a cat."]);
        let e = Templates::new(vec!["a photo".into()], "t.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.txt") && e.contains("\"a photo\""), "{e}");
        assert!(Templates::new(vec![], "t.txt").is_err());
        assert_eq!(Templates::none().prompts("dog"), ["dog"]);
        assert_eq!(parse_list("# c\n a \n\nb\n"), ["a", "b"]);
        assert_eq!(
            parse_list("cat  # the animal\nC#\nsharp\t#x\n#\n a#b #c"),
            ["cat", "C#", "sharp", "a#b"]
        );
        assert_eq!(
            parse_list("\\# hashtag\nsay \\#1 # why\nback\\slash\n"),
            ["# hashtag", "say #1", "back\\slash"]
        );
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    /// A write that fails partway (as on a full disk) leaves neither the temporary file nor a
    /// changed target; one that succeeds leaves only the target.
    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let tmp = clip_test_support::temp_dir();
        let target = tmp.path().join("x.classifier");
        std::fs::write(&target, b"old").unwrap();
        let e = write_atomically(&target, |f| {
            f.write_all(b"half of it")?;
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        })
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        let names = || {
            let mut v: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(), ["x.classifier"]);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        write_atomically(&target, |f| f.write_all(b"new")).unwrap();
        assert_eq!(names(), ["x.classifier"]);
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // Where the folder is gone, nothing is made.
        let gone = tmp.path().join("gone/x.classifier");
        assert!(write_atomically(&gone, |f| f.write_all(b"x")).is_err());
        assert_eq!(names(), ["x.classifier"]);
    }
}

#[cfg(test)]
mod spec_tests {
    use super::*;

    #[test]
    fn labels_from_list_and_file() {
        assert_eq!(
            Labels::parse("cat, dog ,,car").unwrap().labels,
            ["cat", "dog", "car"]
        );
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path().to_path_buf();
        let f = dir.join("labels.txt");
        std::fs::write(&f, "# animals\ncat\n\n a dog \n").unwrap();
        assert_eq!(
            Labels::parse(f.to_str().unwrap()).unwrap().labels,
            ["cat", "a dog"]
        );
        let e = Labels::parse("missing.txt").unwrap_err().to_string();
        assert!(
            e.contains("missing.txt") && e.contains("does not exist"),
            "{e}"
        );
        assert!(Labels::parse(" , ").is_err());
        assert_eq!(Labels::parse("a,a").unwrap().warnings.len(), 1);
        let w = Labels::parse("a,b,a,b,a").unwrap().warnings;
        assert_eq!(
            w,
            [
                "\"a\", \"b\" are given more than once: each copy is scored and shown on its \
                 own, with the same probability, so together they take a larger share than one \
                 label"
            ]
        );
        // A built-in list's duplicates are its authors': no warning the user cannot act on.
        let imagenet = Labels::parse("imagenet").unwrap();
        assert_eq!(imagenet.labels.len(), 1000);
        assert_eq!(imagenet.warnings, Vec::<String>::new());
        std::fs::write(&f, "cat # a comment\ndog\n").unwrap();
        assert_eq!(
            Labels::parse(f.to_str().unwrap()).unwrap().labels,
            ["cat", "dog"]
        );
        // `\#` keeps a " #" in a label; the same names in a file of one's own are warned of.
        std::fs::write(&f, "C \\# minor  # the key\nmissile\nmissile\n").unwrap();
        let parsed = Labels::parse(f.to_str().unwrap()).unwrap();
        assert_eq!(parsed.labels, ["C # minor", "missile", "missile"]);
        assert_eq!(parsed.warnings.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn templates_default_to_a_builtin_lists_set() {
        assert_eq!(
            Templates::parse(None, None, Some("cifar10")).unwrap(),
            Templates::builtin("cifar10").unwrap()
        );
        assert_eq!(
            Templates::parse(None, None, Some("cat,dog")).unwrap(),
            Templates::none()
        );
        assert_eq!(
            Templates::parse(Some("a {}."), Some("imagenet"), None)
                .unwrap()
                .as_slice(),
            ["a {}."]
        );
        let e = Templates::parse(None, Some("nope"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("imagenet"), "{e}");
    }
}

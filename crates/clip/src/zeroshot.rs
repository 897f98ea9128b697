//! Zero-shot classifiers from class names and prompt templates, as in the CLIP paper: each
//! class is the mean of the L2-normalized text embeddings of its prompts, normalized again
//! (what open_clip's `build_zero_shot_classifier` computes).
//!
//! The built-in class lists and template sets are the ones the CLIP authors published
//! (`data/zeroshot/*.txt`, made by `tools/zeroshot/gen_lists.py`; each file names its source).

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

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
/// space or tab starts a comment ("cat  # the animal" is "cat"; "C#" stays whole); blank
/// lines are skipped (a byte-order mark at the start is dropped).
pub fn parse_list(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .map(|l| strip_comment(l).trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// `line` without its `#` comment: from a `#` at its start or after whitespace.
pub(crate) fn strip_comment(line: &str) -> &str {
    let mut previous = None;
    for (i, c) in line.char_indices() {
        if c == '#' && previous.is_none_or(char::is_whitespace) {
            return &line[..i];
        }
        previous = Some(c);
    }
    line
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassifierOptions {
    /// Cut prompts longer than the context instead of failing.
    pub truncate: bool,
    /// Where to keep classifiers between runs ([`default_cache_dir`]); `None`: no cache.
    pub cache_dir: Option<PathBuf>,
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
    /// Reads labels from a spec: a file with one label per line (`#` starts a comment), a
    /// built-in class list (`imagenet`, `cifar10`, …), or a comma-separated list. A name that
    /// looks like a file (a label-file extension, or a path into an existing folder) but is
    /// not one is refused rather than read as one label; "AC/DC" is a label.
    pub fn parse(spec: &str) -> Result<Labels, ClipError> {
        let invalid = |detail: String| ClipError::Labels { detail };
        let path = Path::new(spec);
        if path.is_dir() {
            return Err(invalid(format!("label file {spec} is a directory")));
        }
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
        if !twice.is_empty() {
            let names = twice.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>();
            let (names, are) = match names.len() {
                1 => (names[0].clone(), "is"),
                _ => (names.join(", "), "are"),
            };
            let whose = if builtin_classes(spec).is_some() && !path.is_file() {
                format!(" in the built-in {spec} list (as its authors published it)")
            } else {
                String::new()
            };
            warnings.push(format!(
                "{names} {are} given more than once{whose}: the copies share a probability, and \
                 the first of them always wins"
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
        self.compute_classifier(classes, templates, truncate, &mut |rows| {
            out.extend_from_slice(rows)
        })?;
        Ok(out)
    }

    /// Computes the classifier rows of `classes`, a few classes per model call (about a batch
    /// of prompts), handing each call's rows to `done` as they come.
    fn compute_classifier<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        truncate: bool,
        done: &mut dyn FnMut(&[Vec<f32>]),
    ) -> Result<(), ClipError> {
        let per_class = templates.as_slice().len();
        // Whole classes per call, about a batch of prompts each.
        let classes_per_call = (self.batch_size / per_class).max(1);
        for group in classes.chunks(classes_per_call) {
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
        Ok(())
    }
}

/// Where [`Clip::zero_shot_classifier_with`] keeps class embeddings by default:
/// `$CLIP_CACHE_DIR`, else `$XDG_CACHE_HOME/clip`, else `~/.cache/clip`; then `classifiers`.
pub fn default_cache_dir() -> Option<PathBuf> {
    // An empty variable counts as unset (as XDG says), never as the current folder.
    let base = env::get(env::CLIP_CACHE_DIR)
        .map(PathBuf::from)
        .or_else(|| env::get(env::XDG_CACHE_HOME).map(|d| PathBuf::from(d).join("clip")))
        .or_else(|| env::get(env::HOME).map(|h| PathBuf::from(h).join(".cache/clip")))?;
    Some(base.join("classifiers"))
}

const MAGIC: &[u8; 8] = b"CLIPZS1\n";

/// Separates the classes, and the templates, inside a cache key.
const KEY_SEP: char = '\u{1f}';

fn u32_at(b: &[u8], i: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize)
}

/// A cache file's key and the bytes after it; `None` if it is not a cache file.
fn split_key(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let key_len = u32_at(rest, 0)?;
    Some((rest.get(4..4 + key_len)?, &rest[4 + key_len..]))
}

fn read_cached(path: &Path, key: &str) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).ok()?;
    let (stored_key, body) = split_key(&bytes)?;
    if stored_key != key.as_bytes() {
        return None;
    }
    let (rows, dim) = (u32_at(body, 0)?, u32_at(body, 4)?);
    let data = body.get(8..)?;
    if rows == 0 || dim == 0 || data.len() != rows * dim * 4 {
        return None;
    }
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(values.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

fn write_cached(path: &Path, key: &str, rows: &[Vec<f32>]) -> std::io::Result<()> {
    let dim = rows.first().map_or(0, Vec::len);
    let mut bytes = Vec::with_capacity(MAGIC.len() + 12 + key.len() + rows.len() * dim * 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    for v in rows.iter().flatten() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomically(path, |f| f.write_all(&bytes))
}

/// Writes a file through a temporary file beside it, renamed into place, so that a reader
/// never sees half a file; on any failure (a full disk included) the temporary file is
/// removed and `path` is left as it was.
fn write_atomically(
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

/// The magic of a classifier being computed: rows are appended as they are computed, so an
/// interrupted computation goes on where it stopped.
const PARTIAL_MAGIC: &[u8; 8] = b"CLIPZP1\n";

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

/// What a partial file holds: its key, the embedding size, and the rows done.
type Partial<'a> = (&'a [u8], usize, Vec<Vec<f32>>);

/// The key and the whole rows of a partial file (a row cut short by an interruption is left
/// out); `None` if it is not one.
fn split_partial(bytes: &[u8]) -> Option<Partial<'_>> {
    let rest = bytes.strip_prefix(PARTIAL_MAGIC)?;
    let key_len = u32_at(rest, 0)?;
    let key = rest.get(4..4 + key_len)?;
    let dim = u32_at(rest, 4 + key_len)?;
    let data = rest.get(8 + key_len..)?;
    if dim == 0 {
        return None;
    }
    let rows = data
        .chunks_exact(dim * 4)
        .map(|row| {
            row.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
        .collect();
    Some((key, dim, rows))
}

/// Progress kept on disk while a classifier is computed: the rows done so far, appended to
/// the partial file as they come. Holds the file's lock, so two runs computing the same
/// classifier do not write into each other's file (the second keeps its rows in memory).
struct PartialFile {
    path: PathBuf,
    file: std::fs::File,
}

impl PartialFile {
    /// Opens the partial file of `key` for appending, after the `rows` it holds for it (read
    /// here, at most `max`); a stale or corrupt one is started afresh. `Ok(None)` when another
    /// run holds it.
    fn open(
        path: PathBuf,
        key: &str,
        dim: usize,
        max: usize,
    ) -> std::io::Result<Option<(PartialFile, Vec<Vec<f32>>)>> {
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
        let mut rows = match split_partial(&bytes) {
            Some((k, d, rows)) if k == key.as_bytes() && d == dim => rows,
            _ => Vec::new(),
        };
        rows.truncate(max);
        // Cut what follows the whole rows (a row half written when the run was stopped).
        file.set_len((header.len() + rows.len() * dim * 4) as u64)?;
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.seek(std::io::SeekFrom::End(0))?;
        Ok(Some((PartialFile { path, file }, rows)))
    }

    fn append(&mut self, rows: &[Vec<f32>]) -> std::io::Result<()> {
        let bytes: Vec<u8> = rows
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        self.file.write_all(&bytes)
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
    /// it, so a run that is interrupted (Ctrl-C, a crash) or fails is continued by the next
    /// from where it stopped. An unreadable, stale or corrupt entry is recomputed and
    /// rewritten; a failure to write the cache does not fail the call: it is told in
    /// [`Classifier::warnings`] and nothing is left behind. `progress` is called with the
    /// number of classes done, those read from an interrupted run first (the 1000 ImageNet
    /// classes with 80 templates are 80,000 prompts).
    pub fn zero_shot_classifier_with<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        options: &ClassifierOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Classifier, ClipError> {
        let truncate = options.truncate;
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
            let mut rows = Vec::with_capacity(classes.len());
            self.compute_classifier(classes, templates, truncate, &mut |done| {
                rows.extend_from_slice(done);
                progress(done.len());
            })?;
            return Ok(computed(rows, 0, Vec::new()));
        };
        let path = cache_dir.join(format!(
            "{:016x}.classifier",
            fnv1a(key.as_bytes(), FNV_OFFSET)
        ));
        let dim = self.embedding_dim();
        if let Some(rows) = read_cached(&path, &key) {
            if rows.len() == classes.len() && rows[0].len() == dim {
                return Ok(computed(rows, classes.len(), Vec::new()));
            }
        }
        // The progress is kept when it can be; when it cannot (a read-only or full disk),
        // the final write below fails too and says so.
        let (mut partial, mut rows) =
            match PartialFile::open(partial_path(&path), &key, dim, classes.len()) {
                Ok(Some((file, rows))) => (Some(file), rows),
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
        self.compute_classifier(&classes[resumed..], templates, truncate, &mut |done| {
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
        })?;
        let mut warnings = Vec::new();
        if let Err(e) = write_cached(&path, &key, &rows) {
            warnings.push(format!(
                "cannot keep the label embeddings in {} ({e}); they were computed, not cached",
                path.display()
            ));
        }
        if let Some(file) = partial {
            file.remove();
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
            let (key, partial) = if is_partial {
                match split_partial(&content) {
                    Some((k, _, rows)) => (String::from_utf8(k.to_vec()).ok(), Some(rows.len())),
                    None => (None, Some(0)),
                }
            } else {
                let key = split_key(&content).and_then(|(k, _)| String::from_utf8(k.to_vec()).ok());
                (key, None)
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
                "\"a\", \"b\" are given more than once: the copies share a probability, and the \
              first of them always wins"
            ]
        );
        let w = Labels::parse("imagenet").unwrap().warnings;
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("\"missile\", \"sunglasses\" are given more than once in the built-in imagenet list"),
            "{w:?}"
        );
        std::fs::write(&f, "cat # a comment\ndog\n").unwrap();
        assert_eq!(
            Labels::parse(f.to_str().unwrap()).unwrap().labels,
            ["cat", "dog"]
        );
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

//! Zero-shot classifiers from class names and prompt templates, as in the CLIP paper: each
//! class is the mean of the L2-normalized text embeddings of its prompts, normalized again
//! (what open_clip's `build_zero_shot_classifier` computes).
//!
//! The built-in class lists and template sets are the ones the CLIP authors published
//! (`data/zeroshot/*.txt`, made by `tools/zeroshot/gen_lists.py`; each file names its source).

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

/// The entries of a list file: one a line, blank lines and `#` comments skipped, trimmed (a
/// byte-order mark at the start is dropped).
pub fn parse_list(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
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
                    "label file {spec} does not exist (pass a comma-separated list like \"cat,dog\" or an existing file)"
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
        if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
            warnings.push(format!(
                "label {dup:?} is given more than once: its copies share its probability, and ties go to the first"
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
        self.compute_classifier(classes, templates, truncate, &mut |_| {})
    }

    fn compute_classifier<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        truncate: bool,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, ClipError> {
        let per_class = templates.as_slice().len();
        // Whole classes per call, about a batch of prompts each.
        let classes_per_call = (self.batch_size / per_class).max(1);
        let mut out = Vec::with_capacity(classes.len());
        for group in classes.chunks(classes_per_call) {
            let prompts: Vec<String> = group
                .iter()
                .flat_map(|c| templates.prompts(c.as_ref()))
                .collect();
            let tokens = self.tokenize_all(&prompts, truncate)?;
            let features = self.encode_text(&tokens)?;
            out.extend(features.chunks(per_class).map(|group| {
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
            }));
            progress(group.len());
        }
        Ok(out)
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
    // Written aside and renamed, so a reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)
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
    /// options, classes and templates reads the file instead of running the text tower. An
    /// unreadable, stale or corrupt entry is recomputed and rewritten; a failure to write is
    /// only logged. `progress` is called with the number of classes computed after each model
    /// call (the 1000 ImageNet classes with 80 templates are 80,000 prompts). Returns the
    /// classifier and whether it was read from the cache.
    pub fn zero_shot_classifier_with<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        options: &ClassifierOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<Vec<f32>>, bool), ClipError> {
        let truncate = options.truncate;
        let compute = |progress: &mut dyn FnMut(usize)| {
            self.compute_classifier(classes, templates, truncate, progress)
        };
        let Some(cache_dir) = options.cache_dir.as_deref() else {
            return Ok((compute(progress)?, false));
        };
        let Some(key) = self.classifier_key(classes, templates, truncate) else {
            return Ok((compute(progress)?, false));
        };
        let path = cache_dir.join(format!(
            "{:016x}.classifier",
            fnv1a(key.as_bytes(), FNV_OFFSET)
        ));
        if let Some(rows) = read_cached(&path, &key) {
            if rows.len() == classes.len() && rows[0].len() == self.embedding_dim() {
                return Ok((rows, true));
            }
        }
        let rows = compute(progress)?;
        if let Err(e) = write_cached(&path, &key, &rows) {
            tracing::warn!("cannot cache the classifier in {}: {e}", path.display());
        }
        Ok((rows, false))
    }
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
        .filter(|p| p.extension().is_some_and(|e| e == "classifier"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            let key = std::fs::read(&path)
                .ok()
                .and_then(|b| String::from_utf8(split_key(&b)?.0.to_vec()).ok());
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
            }
        })
        .collect())
}

/// Deletes every cached classifier in `cache_dir`; returns how many files and bytes.
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

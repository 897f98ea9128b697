//! Finding a model: a local directory, a Hugging Face repo id, or one of OpenAI's short names,
//! resolved through the Hugging Face cache layout and downloaded into it when missing.
//!
//! The cache is the one Python's `huggingface_hub` uses, so a model a user already downloaded
//! with transformers or open_clip is found offline:
//! `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub`; inside it `models--org--name/refs/<revision>` names a snapshot
//! `models--org--name/snapshots/<commit>/` holding the files. Downloads go to
//! `$HF_ENDPOINT` (default `https://huggingface.co`) with the token from `$HF_TOKEN` or the
//! cache's `token` file; `HF_HUB_OFFLINE=1` forbids them.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use clip_model::arch::ARCHITECTURES;
use clip_model::{shard_names, WEIGHTS_FILE_NAMES};

use crate::env;
use crate::error::ClipError;

/// OpenAI's model names as `clip.load` accepts them, with their Hugging Face repos. The names
/// are those of [`clip_model::arch::ARCHITECTURES`], in its order, so a name that can be
/// downloaded can also be built with random weights (`clip bench`).
pub const KNOWN_MODELS: &[(&str, &str); 4] = &[
    (ARCHITECTURES[0], "openai/clip-vit-base-patch32"),
    (ARCHITECTURES[1], "openai/clip-vit-base-patch16"),
    (ARCHITECTURES[2], "openai/clip-vit-large-patch14"),
    (ARCHITECTURES[3], "openai/clip-vit-large-patch14-336"),
];

// Every architecture has its repo.
const _: () = assert!(KNOWN_MODELS.len() == ARCHITECTURES.len());

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = KNOWN_MODELS[0].0;

/// Files every checkpoint needs, besides its weights.
const CONFIG_FILES: &[&str] = &["config.json", "preprocessor_config.json"];

/// How a model name was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A directory on disk.
    Dir(PathBuf),
    /// A repository on the Hugging Face hub.
    Hub {
        /// `org/name`.
        repo: String,
        /// Branch, tag or commit (`main` unless given as `org/name@rev`).
        revision: String,
    },
}

impl ModelSpec {
    /// Parses what a user typed: a short name (`ViT-B/32`), an existing directory, or a repo id
    /// (`org/name`, optionally `org/name@revision`).
    pub fn parse(model: &str) -> Result<ModelSpec, ClipError> {
        if let Some((_, repo)) = KNOWN_MODELS
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(model))
        {
            return Ok(ModelSpec::Hub {
                repo: (*repo).to_string(),
                revision: "main".into(),
            });
        }
        let path = Path::new(model);
        if path.is_dir() {
            return Ok(ModelSpec::Dir(path.to_path_buf()));
        }
        let looks_like_path = model.starts_with('.')
            || model.starts_with('/')
            || model.starts_with('~')
            || model.contains('\\')
            || model.matches('/').count() > 1;
        let (repo, revision) = match model.split_once('@') {
            Some((r, rev)) if !rev.is_empty() => (r, rev),
            _ => (model, "main"),
        };
        let valid_repo = {
            let mut parts = repo.split('/');
            let (org, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            parts.next().is_none()
                && [org, name].iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                })
        };
        if looks_like_path || !valid_repo {
            return Err(ClipError::ModelNotFound {
                model: model.to_string(),
                detail: format!(
                    "it is not a directory, not a Hugging Face repo id (org/name) and not one of {}",
                    known_names()
                ),
            });
        }
        Ok(ModelSpec::Hub {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }
}

fn known_names() -> String {
    KNOWN_MODELS
        .iter()
        .map(|(s, _)| *s)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Hugging Face home: `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    env::path(env::HF_HOME).unwrap_or_else(|| {
        env::path(env::XDG_CACHE_HOME)
            .unwrap_or_else(|| {
                env::path(env::HOME)
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(".cache")
            })
            .join("huggingface")
    })
}

/// Where the hub cache lives, as `huggingface_hub` reads it: `$HF_HUB_CACHE` (or the older
/// `$HUGGINGFACE_HUB_CACHE`), else `<hf_home>/hub`.
pub fn cache_dir() -> PathBuf {
    env::path(env::HF_HUB_CACHE)
        .or_else(|| env::path(env::HUGGINGFACE_HUB_CACHE))
        .unwrap_or_else(|| hf_home().join("hub"))
}

/// The access token: `$HF_TOKEN` (or the older `$HUGGING_FACE_HUB_TOKEN`), else the file
/// `$HF_TOKEN_PATH`, else `<hf_home>/token` (what `huggingface-cli login` writes).
pub fn token() -> Option<String> {
    if let Some(t) = env::text(env::HF_TOKEN).or_else(|| env::text(env::HUGGING_FACE_HUB_TOKEN)) {
        return Some(t);
    }
    let path = env::path(env::HF_TOKEN_PATH).unwrap_or_else(|| hf_home().join("token"));
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The hub's address (`$HF_ENDPOINT`, default `https://huggingface.co`).
pub fn endpoint() -> String {
    env::text(env::HF_ENDPOINT)
        .map(|v| v.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "https://huggingface.co".into())
}

/// Whether `HF_HUB_OFFLINE` forbids downloads.
pub fn offline_from_env() -> bool {
    env::flag(env::HF_HUB_OFFLINE)
}

/// The folder of `repo` inside the cache.
pub fn repo_cache_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// The cached snapshot folder of `repo` at `revision`, if the cache knows the revision.
pub fn cached_snapshot(cache: &Path, repo: &str, revision: &str) -> Option<PathBuf> {
    let dir = repo_cache_dir(cache, repo);
    let commit = if revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()) {
        revision.to_string()
    } else {
        std::fs::read_to_string(dir.join("refs").join(revision))
            .ok()?
            .trim()
            .to_string()
    };
    let snapshot = dir.join("snapshots").join(commit);
    snapshot.is_dir().then_some(snapshot)
}

/// Whether a directory holds a loadable checkpoint: a config and the weights that loading
/// would pick (for a sharded checkpoint, its index and every shard it names).
pub fn is_complete(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && clip_model::find_weights(dir).is_ok_and(|w| w.paths().iter().all(|p| p.is_file()))
}

/// Receives download progress, file by file. The CLI draws a progress bar with it.
pub trait DownloadProgress: Send {
    /// A download of `file` (`size` bytes) starts.
    fn start(&mut self, file: &str, size: u64);
    /// `bytes` more bytes arrived.
    fn advance(&mut self, bytes: u64);
    /// The file is complete.
    fn finish(&mut self);
}

/// Ignores progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl DownloadProgress for NoProgress {
    fn start(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

struct ProgressAdapter<'a>(&'a mut dyn DownloadProgress);

impl hf_hub::api::Progress for ProgressAdapter<'_> {
    fn init(&mut self, size: usize, filename: &str) {
        self.0.start(filename, size as u64);
    }
    fn update(&mut self, size: usize) {
        self.0.advance(size as u64);
    }
    fn finish(&mut self) {
        self.0.finish();
    }
}

/// Where models come from: the cache, the hub address, and whether downloads are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOptions {
    /// The hub cache (default: [`cache_dir`]).
    pub cache: PathBuf,
    /// The hub address (default: [`endpoint`]).
    pub endpoint: String,
    /// Forbid downloads (default: `HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Access token for gated or private repos (default: [`token`]).
    pub token: Option<String>,
}

impl ResolveOptions {
    /// Options from the environment (`HF_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT`,
    /// `HF_HUB_OFFLINE`, `HF_TOKEN`, `HF_TOKEN_PATH`).
    pub fn from_env() -> Self {
        ResolveOptions {
            cache: cache_dir(),
            endpoint: endpoint(),
            offline: offline_from_env(),
            token: token(),
        }
    }
}

/// Returns a local directory holding the checkpoint `model`, downloading it when needed.
/// Download progress goes to `progress`.
pub fn resolve(
    model: &str,
    opts: &ResolveOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<PathBuf, ClipError> {
    match ModelSpec::parse(model)? {
        ModelSpec::Dir(dir) => Ok(dir),
        ModelSpec::Hub { repo, revision } => {
            if let Some(snapshot) = cached_snapshot(&opts.cache, &repo, &revision) {
                if is_complete(&snapshot) {
                    return Ok(snapshot);
                }
            }
            if opts.offline {
                return Err(not_available(
                    model,
                    &repo,
                    &revision,
                    opts,
                    "downloads are disabled (HF_HUB_OFFLINE is set)".into(),
                ));
            }
            download(&repo, &revision, opts, progress)
                .map_err(|reason| not_available(model, &repo, &revision, opts, reason))
        }
    }
}

fn not_available(
    model: &str,
    repo: &str,
    revision: &str,
    opts: &ResolveOptions,
    reason: String,
) -> ClipError {
    let cached = repo_cache_dir(&opts.cache, repo);
    ClipError::ModelNotFound {
        model: model.to_string(),
        detail: format!(
            "not in the cache ({}) and {reason}; its files (config.json, \
             preprocessor_config.json and model.safetensors or pytorch_model.bin) are at \
             {}/{repo}/tree/{revision}",
            cached.display(),
            opts.endpoint
        ),
    }
}

fn is_not_found(e: &ApiError) -> bool {
    match e {
        ApiError::RequestError(inner) => {
            matches!(
                **inner,
                ureq::Error::Status(404, _) | ureq::Error::Status(401, _)
            )
        }
        _ => false,
    }
}

fn download(
    repo: &str,
    revision: &str,
    opts: &ResolveOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<PathBuf, String> {
    // The token is set explicitly: hf-hub would otherwise look for it beside the cache folder,
    // which is not where Python keeps it when HF_HUB_CACHE is set.
    let api = ApiBuilder::from_cache(Cache::new(opts.cache.clone()))
        .with_endpoint(opts.endpoint.clone())
        .with_token(opts.token.clone())
        .with_progress(false)
        .with_retries(2)
        .build()
        .map_err(|e| format!("the HTTP client failed: {e}"))?;
    let hub = api.repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        revision.to_string(),
    ));
    let fetch = |file: &str, progress: &mut dyn DownloadProgress| {
        hub.download_with_progress(file, ProgressAdapter(progress))
    };
    let url = |file: &str| format!("{}/{repo}/resolve/{revision}/{file}", opts.endpoint);
    let mut dir = None;
    for file in CONFIG_FILES {
        match fetch(file, progress) {
            Ok(path) => dir = path.parent().map(Path::to_path_buf),
            // A checkpoint without preprocessor_config.json still loads (OpenAI defaults).
            Err(e) if *file == "preprocessor_config.json" && is_not_found(&e) => {}
            Err(e) => return Err(format!("downloading {} failed: {e}", url(file))),
        }
    }
    for file in &WEIGHTS_FILE_NAMES {
        match fetch(file, progress) {
            Ok(path) => {
                if *file == "model.safetensors.index.json" {
                    download_shards(&path, &hub, progress, &url)?;
                }
                return Ok(path
                    .parent()
                    .map(Path::to_path_buf)
                    .or(dir)
                    .unwrap_or_default());
            }
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(format!("downloading {} failed: {e}", url(file))),
        }
    }
    Err(format!(
        "{} has none of {}",
        url(""),
        WEIGHTS_FILE_NAMES.join(", ")
    ))
}

fn download_shards(
    index: &Path,
    hub: &hf_hub::api::sync::ApiRepo,
    progress: &mut dyn DownloadProgress,
    url: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    for shard in shard_names(index).map_err(|e| e.to_string())? {
        hub.download_with_progress(&shard, ProgressAdapter(progress))
            .map_err(|e| format!("downloading {} failed: {e}", url(&shard)))?;
    }
    Ok(())
}

/// A model found in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// `org/name`.
    pub repo: String,
    /// `main` when the cache's `refs/main` names the snapshot, else the snapshot's commit.
    pub revision: String,
    /// The snapshot folder.
    pub path: PathBuf,
    /// Whether config and weights are all there.
    pub complete: bool,
}

impl CachedModel {
    /// What to pass as `--model` to load exactly this snapshot.
    pub fn model_arg(&self) -> String {
        if self.revision == "main" {
            self.repo.clone()
        } else {
            format!("{}@{}", self.repo, self.revision)
        }
    }
}

/// The CLIP checkpoints in the cache: every `models--*` folder whose snapshot (that of
/// `refs/main`, else the most recently written one) has a `config.json` with
/// `"model_type": "clip"`.
pub fn cached_models(cache: &Path) -> Vec<CachedModel> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(folder) = name.strip_prefix("models--") else {
            continue;
        };
        let repo = folder.replacen("--", "/", 1);
        let found = match cached_snapshot(cache, &repo, "main") {
            Some(path) => Some((path, "main".to_string())),
            None => newest_snapshot(&entry.path().join("snapshots")),
        };
        let Some((path, revision)) = found else {
            continue;
        };
        let is_clip = std::fs::read_to_string(path.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["model_type"] == "clip");
        if is_clip {
            out.push(CachedModel {
                repo,
                revision,
                complete: is_complete(&path),
                path,
            });
        }
    }
    out.sort_by(|a, b| a.repo.cmp(&b.repo));
    out
}

/// The most recently modified snapshot folder, with its name (the commit).
fn newest_snapshot(snapshots: &Path) -> Option<(PathBuf, String)> {
    std::fs::read_dir(snapshots)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((
                modified,
                e.path(),
                e.file_name().to_string_lossy().to_string(),
            ))
        })
        .max_by_key(|(modified, _, _)| *modified)
        .map(|(_, path, name)| (path, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_openais_with_their_repos() {
        // A reordering of ARCHITECTURES must not send a name to another repo.
        for (name, repo) in KNOWN_MODELS {
            let size = match *name {
                "ViT-B/32" => "base-patch32",
                "ViT-B/16" => "base-patch16",
                "ViT-L/14" => "large-patch14",
                "ViT-L/14@336px" => "large-patch14-336",
                other => panic!("unexpected name {other}"),
            };
            assert_eq!(*repo, format!("openai/clip-vit-{size}"));
        }
        assert_eq!(DEFAULT_MODEL, "ViT-B/32");
    }

    #[test]
    fn parses_names() {
        assert_eq!(
            ModelSpec::parse("ViT-B/32").unwrap(),
            ModelSpec::Hub {
                repo: "openai/clip-vit-base-patch32".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("vit-l/14@336px").unwrap(),
            ModelSpec::Hub {
                repo: "openai/clip-vit-large-patch14-336".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("laion/CLIP-ViT-B-32-laion2B-s34B-b79K@v1.0").unwrap(),
            ModelSpec::Hub {
                repo: "laion/CLIP-ViT-B-32-laion2B-s34B-b79K".into(),
                revision: "v1.0".into()
            }
        );
        for bad in [
            "./missing-dir",
            "/no/such/dir",
            "a/b/c",
            "justaname",
            "org/na me",
        ] {
            let e = ModelSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn finds_snapshots_by_ref_or_commit() {
        let tmp = clip_test_support::temp_dir();
        let cache = tmp.path().to_path_buf();
        let repo = repo_cache_dir(&cache, "org/model");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();
        let snap = repo.join("snapshots").join(commit);
        assert_eq!(
            cached_snapshot(&cache, "org/model", "main"),
            Some(snap.clone())
        );
        assert_eq!(
            cached_snapshot(&cache, "org/model", commit),
            Some(snap.clone())
        );
        assert_eq!(cached_snapshot(&cache, "org/model", "v2"), None);
        assert!(!is_complete(&snap));
        std::fs::write(snap.join("config.json"), r#"{"model_type": "clip"}"#).unwrap();
        std::fs::write(snap.join("model.safetensors"), b"").unwrap();
        assert!(is_complete(&snap));
        let listed = cached_models(&cache);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].model_arg(), "org/model");
        // Without refs/main the snapshot is listed by its commit, which loads it.
        std::fs::remove_file(repo.join("refs/main")).unwrap();
        let listed = cached_models(&cache);
        assert_eq!(listed[0].model_arg(), format!("org/model@{commit}"));
        assert_eq!(
            cached_snapshot(&cache, "org/model", commit),
            Some(snap.clone())
        );
        // A sharded checkpoint is complete only with every shard.
        std::fs::remove_file(snap.join("model.safetensors")).unwrap();
        std::fs::write(
            snap.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#,
        )
        .unwrap();
        std::fs::write(snap.join("model-00001-of-00002.safetensors"), b"").unwrap();
        assert!(!is_complete(&snap));
        std::fs::write(snap.join("model-00002-of-00002.safetensors"), b"").unwrap();
        assert!(is_complete(&snap));
        std::fs::remove_dir_all(&cache).unwrap();
    }
}

//! `clip index` and `clip search`: the photo index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clip::library::{
    default_index_path, is_under, load_vectors, Index, IndexError, QueryTerm, ScanOptions,
    ScanProgress, WriteLock,
};
use serde_json::json;

use crate::cli::{DuplicatesArgs, IndexArgs, ModelArgs, ScanArgs, SearchArgs};
use crate::output;

/// The index path: `--index`/`CLIP_INDEX`, else the default.
fn index_path(arg: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match arg {
        Some(p) => Ok(p.clone()),
        None => default_index_path()
            .context("no index location: pass --index, or set CLIP_INDEX or HOME"),
    }
}

/// Opens an index that must exist, to change it (`writable`) or to read it.
fn open_existing(path: &Path, writable: bool) -> anyhow::Result<Index> {
    if !path.is_file() {
        bail!(
            "no index at {}: build one with `clip index FOLDER` (or pass --index)",
            path.display()
        );
    }
    let index = if writable {
        Index::open_existing(path)
    } else {
        Index::open_read_only(path)
    }
    .map_err(clip::ClipError::from)?;
    if let Some(w) = index.warning() {
        eprintln!("warning: {w}");
    }
    Ok(index)
}

/// The model to use with an existing index: the one it was built with, unless `--model` was
/// given.
fn model_for(index: Option<&Index>, args: &ModelArgs, model_given: bool) -> ModelArgs {
    let mut args = args.clone();
    if let (Some(index), false) = (index, model_given) {
        args.model = index.info().model.clone();
    }
    args
}

/// Refuses an index whose vectors `model` did not make, naming both models and what to do.
fn ensure_compatible(index: &Index, model: &clip::Clip, path: &Path) -> anyhow::Result<()> {
    let info = model.index_info();
    if index.info().compatible(&info) {
        return Ok(());
    }
    bail!(
        "{}\nhint: search it with --model {:?}, or rebuild it for this model: \
         delete {} and run clip index again (or use another --index)",
        IndexError::mismatch(path, index.info(), &info),
        index.info().model,
        path.display()
    )
}

pub fn index(args: &IndexArgs, model_given: bool) -> anyhow::Result<ExitCode> {
    let path = index_path(&args.index)?;
    if args.status {
        return status(&path, args.json);
    }
    if let Some(folder) = &args.forget {
        return forget(&path, folder, args.json);
    }
    let (model, _index, report) = scan(
        &path,
        &args.folders,
        &args.model,
        model_given,
        scan_options(&args.scan),
    )?;
    let mut out = output::stdout();
    if args.json {
        output::json_line(
            &mut out,
            &json!({"index": path.display().to_string(), "model": model.name(), "scan": report}),
        )?;
    } else {
        writeln!(
            out,
            "{}: {} images; {} embedded, {} reused (renamed or copied), {} unchanged, {} failed{}, {} removed{}",
            path.display(),
            report.files,
            report.embedded,
            report.reused,
            report.unchanged,
            report.failed.len(),
            if report.failed_before > 0 {
                format!(" ({} known failures not retried)", report.failed_before)
            } else {
                String::new()
            },
            report.removed,
            if report.skipped.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} skipped (unreadable folders or files, paths not in UTF-8)",
                    report.skipped.len()
                )
            }
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// What the scan flags ask for.
fn scan_options(args: &ScanArgs) -> ScanOptions {
    ScanOptions {
        allow_mass_delete: args.allow_mass_delete,
        decode_threads: args.decode_threads.map(|n| n as usize),
        ..Default::default()
    }
}

/// Brings the index at `path` up to date with `folders` (default: the folders indexed
/// before), under the write lock, with a progress bar; returns the model, the index and what
/// the scan did. Failures are reported on stderr as warnings.
fn scan(
    path: &Path,
    folders: &[PathBuf],
    model_args: &ModelArgs,
    model_given: bool,
    options: ScanOptions,
) -> anyhow::Result<(clip::Clip, Index, clip::library::ScanReport)> {
    // A blank file (a first run killed before it made anything) is made into an index. It is
    // seen as blank once a writer has opened it (which rolls back what the kill left).
    let existing = if path.is_file() {
        match Index::open_existing(path) {
            Ok(index) => Some(index),
            Err(_) if Index::is_blank(path) => None,
            Err(e) => return Err(clip::ClipError::from(e).into()),
        }
    } else {
        None
    };
    let folders: Vec<PathBuf> = if folders.is_empty() {
        let roots = match &existing {
            Some(i) => i.status().map_err(clip::ClipError::from)?.roots,
            None => Vec::new(),
        };
        if roots.is_empty() {
            bail!(
                "no folders to index: name one, e.g. `clip index ~/Pictures` (index {})",
                path.display()
            );
        }
        roots.into_iter().map(PathBuf::from).collect()
    } else {
        folders.to_vec()
    };
    // Before the index file is created: a wrong folder leaves nothing behind.
    if let Err(e) = clip::library::canonical_roots(&folders) {
        let missing = folders.iter().find(|f| !f.is_dir()).unwrap_or(&folders[0]);
        // The --forget hint only for a folder the index has.
        let absolute = std::path::absolute(missing).unwrap_or_else(|_| missing.clone());
        let indexed = match &existing {
            Some(index) => index
                .status()
                .map_err(clip::ClipError::from)?
                .roots
                .iter()
                .any(|r| Path::new(r) == absolute),
            None => false,
        };
        if !indexed {
            bail!("{e}");
        }
        bail!(
            "{e}\nhint: if it is gone for good, `clip index --forget {:?}` drops it from the index",
            missing.display().to_string()
        );
    }
    let _lock = WriteLock::acquire(path).map_err(clip::ClipError::from)?;
    let model_args = model_for(existing.as_ref(), model_args, model_given);
    let model = output::load_model(&model_args)?;
    // The index opened above is used as it is (opening checks the file, which reads all of
    // it); only a new one is created here.
    let mut index = match existing {
        Some(index) => {
            ensure_compatible(&index, &model, path)?;
            index
        }
        None => Index::open(path, &model.index_info()).map_err(clip::ClipError::from)?,
    };
    // A spinner while the folders are walked, then a bar over the files to read.
    let walk = output::spinner(model_args.quiet, "looking for new and changed files");
    let bar = output::bar(0, true, "indexing");
    let report = model.update_index(&mut index, &folders, &options, &mut |p| match p {
        ScanProgress::Planned { to_read, .. } => {
            walk.finish_and_clear();
            if !model_args.quiet && to_read > 0 {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_length(to_read as u64);
        }
        ScanProgress::Done(n) => bar.inc(n as u64),
    });
    walk.finish_and_clear();
    bar.finish_and_clear();
    let report = report?;
    for f in report.skipped.iter().chain(&report.failed) {
        eprintln!("warning: {}", f.error);
    }
    Ok((model, index, report))
}

pub fn duplicates(args: &DuplicatesArgs, model_given: bool) -> anyhow::Result<ExitCode> {
    if !(args.threshold > 0.0 && args.threshold <= 1.0) {
        bail!(
            "--threshold {} is not a similarity between 0 and 1 (near-identical photos score about 0.95 and more)",
            args.threshold
        );
    }
    let path = index_path(&args.index)?;
    let (_model, index, _report) = scan(
        &path,
        &args.folders,
        &args.model,
        model_given,
        scan_options(&args.scan),
    )?;
    let vectors = load_vectors(&index)?;
    let roots: Vec<String> = args
        .folders
        .iter()
        .filter_map(|f| f.canonicalize().ok())
        .filter_map(|f| f.to_str().map(String::from))
        .collect();
    let under = |p: &str| roots.is_empty() || roots.iter().any(|r| is_under(p, r));
    let rows: Vec<usize> = (0..vectors.len())
        .filter(|&i| under(vectors.path(i)))
        .collect();
    let groups = vectors.near_duplicates(Some(&rows), args.threshold);
    let mut out = output::stdout();
    for (n, g) in groups.iter().enumerate() {
        // The least similar pair, so a group's spread is visible.
        let mut min = 1f32;
        for (i, &a) in g.iter().enumerate() {
            for &b in &g[i + 1..] {
                min = min.min(clip::library::dot(vectors.vector(a), vectors.vector(b)));
            }
        }
        let paths: Vec<&str> = g.iter().map(|&i| vectors.path(i)).collect();
        if args.json {
            output::json_line(&mut out, &json!({"paths": paths, "min_score": min}))?;
        } else {
            if n > 0 {
                writeln!(out)?;
            }
            writeln!(out, "# {} images, similarity >= {min:.4}", g.len())?;
            for p in paths {
                writeln!(out, "{p}")?;
            }
        }
    }
    out.flush()?;
    Ok(if groups.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn forget(path: &Path, folder: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let mut index = open_existing(path, true)?;
    let _lock = WriteLock::acquire(path).map_err(clip::ClipError::from)?;
    // As recorded: absolute, and canonical when it still exists.
    let folder = folder
        .canonicalize()
        .or_else(|_| std::path::absolute(folder))
        .with_context(|| format!("cannot make {} absolute", folder.display()))?;
    let text = folder
        .to_str()
        .context("the folder's path is not valid UTF-8")?;
    let roots = index.status().map_err(clip::ClipError::from)?.roots;
    let dropped = index.forget(text).map_err(clip::ClipError::from)?;
    if dropped == 0 && !roots.iter().any(|r| r == text) {
        bail!(
            "the index {} has nothing under {text} (its folders: {})",
            path.display(),
            roots.join(", ")
        );
    }
    let mut out = output::stdout();
    if as_json {
        output::json_line(&mut out, &json!({"forgot": text, "files": dropped}))?;
    } else {
        writeln!(
            out,
            "dropped {text} from {}: {dropped} indexed file{}",
            path.display(),
            if dropped == 1 { "" } else { "s" }
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn status(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let index = open_existing(path, false)?;
    let s = index.status().map_err(clip::ClipError::from)?;
    let integrity = index.integrity_check().map_err(clip::ClipError::from)?;
    let mut out = output::stdout();
    if as_json {
        output::json_line(
            &mut out,
            &json!({
                "index": path.display().to_string(),
                "model": s.info.model,
                "fingerprint": s.info.fingerprint,
                "preprocess": s.info.preprocess,
                "dim": s.info.dim,
                "indexed": s.indexed,
                "vectors": s.vectors,
                "bytes": s.bytes,
                "last_scan": s.last_scan,
                "roots": s.roots,
                "integrity": integrity,
                "failed": s.failed.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
            }),
        )?;
    } else {
        writeln!(out, "index     {}", path.display())?;
        writeln!(out, "model     {} ({})", s.info.model, s.info.describe())?;
        writeln!(out, "folders   {}", s.roots.join(", "))?;
        writeln!(
            out,
            "images    {} indexed ({} distinct), {} failed",
            s.indexed,
            s.vectors,
            s.failed.len()
        )?;
        for (p, e) in &s.failed {
            // Decoder errors already name the file.
            if e.starts_with(p.as_str()) {
                writeln!(out, "  failed  {e}")?;
            } else {
                writeln!(out, "  failed  {p}: {e}")?;
            }
        }
        writeln!(out, "integrity {integrity}")?;
    }
    out.flush()?;
    if integrity != "ok" {
        eprintln!(
            "error: the index {} is damaged (integrity check: {integrity})\nhint: delete it and run \
             `clip index` with its folders again; the photos are untouched",
            path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits a text into its positive part and its `-word` terms.
fn split_negatives(text: &str) -> (String, Vec<String>) {
    let mut positive = Vec::new();
    let mut negative = Vec::new();
    for word in text.split_whitespace() {
        match word.strip_prefix('-') {
            Some(w) if !w.is_empty() => negative.push(w.to_string()),
            _ => positive.push(word),
        }
    }
    (positive.join(" "), negative)
}

pub fn search(args: &SearchArgs, model_given: bool) -> anyhow::Result<ExitCode> {
    let path = index_path(&args.index)?;
    let index = open_existing(&path, false)?;
    if let Some(w) = args.weights.iter().find(|w| !w.is_finite()) {
        bail!("--weights: {w} is not a number");
    }
    if let Some(m) = args.min_score.filter(|m| !m.is_finite()) {
        bail!("--min-score: {m} is not a number");
    }
    let n_terms = args.text.len() + args.image.len();
    if !args.weights.is_empty() && args.weights.len() != n_terms {
        bail!(
            "{} weights for {n_terms} query terms (texts then images)",
            args.weights.len()
        );
    }
    let weight = |i: usize| args.weights.get(i).copied().unwrap_or(1.0);
    let mut terms = Vec::new();
    for (i, t) in args.text.iter().enumerate() {
        let (positive, negatives) = split_negatives(t);
        if !positive.is_empty() {
            terms.push((QueryTerm::Text(positive), weight(i)));
        }
        for n in negatives {
            terms.push((QueryTerm::Text(n), -weight(i)));
        }
    }
    for (j, p) in args.image.iter().enumerate() {
        terms.push((QueryTerm::Image(p.clone()), weight(args.text.len() + j)));
    }
    if terms.is_empty() {
        bail!("the query has nothing to look for");
    }
    let model = output::load_model(&model_for(Some(&index), &args.model, model_given))?;
    ensure_compatible(&index, &model, &path)?;
    let query = model.query_vector(&terms, Some(&index), args.truncate)?;
    let vectors = load_vectors(&index)?;
    let hits: Vec<_> = vectors
        .top_k(&query, args.top_k as usize)
        .into_iter()
        .filter(|h| args.min_score.is_none_or(|m| h.score >= m))
        .collect();
    let mut out = output::stdout();
    for h in &hits {
        let p = vectors.path(h.index);
        if args.json {
            output::json_line(&mut out, &json!({"path": p, "score": h.score}))?;
        } else if args.null {
            write!(out, "{p}\0")?;
        } else if args.paths {
            if p.contains('\n') {
                eprintln!("warning: {p:?} holds a newline, which splits it in two lines here; --null keeps it whole");
            }
            writeln!(out, "{p}")?;
        } else {
            writeln!(out, "{:.4}  {p}", h.score)?;
        }
    }
    out.flush()?;
    if hits.is_empty() {
        if vectors.is_empty() {
            eprintln!("the index {} holds no images", path.display());
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_words_are_negative_terms() {
        assert_eq!(
            split_negatives("beach -people  at dusk -"),
            ("beach at dusk -".to_string(), vec!["people".to_string()])
        );
    }
}

//! `clip index`: bring the photo index up to date with its folders, show it, or drop a folder.
//! The index-opening rules live in `clip::photos`; this module parses, calls and prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clip::photos::{self, default_index_path, Index, ScanOptions};
use serde_json::json;

use crate::cli::{IndexArgs, ModelArgs, ScanArgs};
use crate::output;

/// The index path: `--index`/`CLIP_INDEX`, else the default.
pub fn index_path(arg: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match arg {
        Some(p) => Ok(p.clone()),
        None => default_index_path()
            .context("no index location: pass --index, or set CLIP_INDEX or HOME"),
    }
}

/// Prints what opening the index noticed (changes it cannot read, for one).
pub fn warn_about(index: &Index) {
    if let Some(w) = index.warning() {
        eprintln!("warning: {w}");
    }
}

pub fn run(args: &IndexArgs) -> anyhow::Result<ExitCode> {
    let path = index_path(&args.index)?;
    if args.status {
        return status(&path, args.json);
    }
    if let Some(folder) = &args.forget {
        return forget(&path, folder, args.json);
    }
    let options = ScanOptions {
        exclude: args.excludes.exclude.clone(),
        unexclude: args.excludes.no_exclude.clone(),
        default_excludes: if args.excludes.no_default_excludes {
            Some(false)
        } else if args.excludes.default_excludes {
            Some(true)
        } else {
            None
        },
        ..scan_options(&args.scan)
    };
    let (model, _index, report) = scan(&path, &args.folders, &args.model, options)?;
    let mut out = output::stdout();
    if args.json {
        output::json_line(
            &mut out,
            &json!({"index": path.display().to_string(), "model": model.name(), "scan": report}),
        )?;
    } else {
        write_summary(&mut out, &path, &report)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The scan's counts, for people: a line of what happened to the image files, then a line
/// each for files skipped for their extension and for what the exclusions left out, when
/// there are any.
pub fn write_summary(
    out: &mut impl Write,
    path: &Path,
    report: &photos::ScanReport,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}: {} images; {} embedded, {} moved, {} reused (copies, or back again), {} unchanged, \
         {} failed{}, {} removed{}",
        path.display(),
        report.files,
        report.embedded,
        report.moved,
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
                "; {} skipped (unreadable folders or files, links to nothing, paths not in \
                 UTF-8)",
                report.skipped.len()
            )
        }
    )?;
    if !report.skipped_by_extension.is_empty() {
        let total: usize = report.skipped_by_extension.values().sum();
        let mut by_count: Vec<(&String, &usize)> = report.skipped_by_extension.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let named: Vec<String> = by_count
            .iter()
            .map(|(ext, n)| match ext.as_str() {
                "" => format!("{n} without one"),
                ext => format!("{n} .{ext}"),
            })
            .collect();
        writeln!(
            out,
            "  not images by their extension, not read: {total} file{} ({})",
            if total == 1 { "" } else { "s" },
            named.join(", ")
        )?;
    }
    if report.left_out > 0 || report.excluded > 0 {
        writeln!(
            out,
            "  left out by the exclusions (clip index --status lists them): {} folder{} or \
             file{}{}",
            report.left_out,
            if report.left_out == 1 { "" } else { "s" },
            if report.left_out == 1 { "" } else { "s" },
            match report.excluded {
                0 => String::new(),
                1 => "; 1 indexed file dropped".to_string(),
                n => format!("; {n} indexed files dropped"),
            }
        )?;
    }
    Ok(())
}

/// What the scan flags shared by `clip index` and `clip duplicates` ask for.
pub fn scan_options(args: &ScanArgs) -> ScanOptions {
    ScanOptions {
        allow_mass_delete: args.allow_mass_delete,
        decode_threads: args.decode_threads.map(|n| n as usize),
        ..Default::default()
    }
}

/// Brings the index at `path` up to date with `folders` (default: the folders indexed
/// before), under the write lock, with a progress bar; returns the model, the index and what
/// the scan did. Failures are reported on stderr as warnings. The model's towers are read
/// only if a file is to be embedded ([`photos::Scan`]).
pub fn scan(
    path: &Path,
    folders: &[PathBuf],
    model_args: &ModelArgs,
    options: ScanOptions,
) -> anyhow::Result<(clip::Clip, Index, photos::ScanReport)> {
    let mut scan = photos::Scan::open(path, folders, model_args.model.as_deref(), |name| {
        output::load_named(model_args, name)
    })?;
    let report = output::with_scan_progress(
        model_args.quiet,
        "looking for new and changed files",
        "indexing",
        |progress| scan.run(&options, progress),
    )?;
    for (given, kept) in &report.excludes_resolved {
        eprintln!("note: --exclude {given} is the path {kept}; the index keeps that");
    }
    for pattern in &report.excludes_unmatched {
        eprintln!(
            "warning: --exclude {pattern:?} leaves out nothing under {}; it is kept for \
             later scans (`clip index --no-exclude {pattern:?}` takes it out)",
            scan.folders()
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for f in report.skipped.iter().chain(&report.failed) {
        eprintln!("warning: {}", f.error);
    }
    if report.too_large > 0 {
        eprintln!(
            "hint: {} image{} over the decode limits but fit{} a pixel budget; \
             --max-image-megapixels MP accepts images of up to MP megapixels whatever their \
             sides (e.g. 200 for long panoramas)",
            report.too_large,
            if report.too_large == 1 {
                " is"
            } else {
                "s are"
            },
            if report.too_large == 1 { "s" } else { "" }
        );
    }
    let (model, index) = scan.into_parts();
    Ok((model, index, report))
}

fn forget(path: &Path, folder: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let (text, forgotten) = photos::forget(path, folder)?;
    let dropped = forgotten.files;
    let mut out = output::stdout();
    if as_json {
        output::json_line(
            &mut out,
            &json!({"forgot": text, "files": dropped, "excluded": forgotten.excluded}),
        )?;
    } else {
        writeln!(
            out,
            "dropped {text} from {}: {dropped} indexed file{}",
            path.display(),
            if dropped == 1 { "" } else { "s" }
        )?;
        if forgotten.excluded {
            writeln!(
                out,
                "later scans leave it out; `clip index --no-exclude {text:?}` brings it back"
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn status(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let index = photos::open_existing(path, false)?;
    warn_about(&index);
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
                "excludes": {
                    "defaults": s.exclusions.defaults,
                    "default_patterns": clip::walk::DEFAULT_EXCLUDES,
                    "patterns": s.exclusions.patterns,
                },
                "kept": s.kept,
                "integrity": integrity,
                "failed": s.failed.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
            }),
        )?;
    } else {
        writeln!(out, "index     {}", path.display())?;
        writeln!(out, "model     {} ({})", s.info.model, s.info.describe())?;
        writeln!(out, "folders   {}", listed(&s.roots))?;
        let mut excludes: Vec<String> = s.exclusions.patterns.clone();
        if s.exclusions.defaults {
            excludes.insert(
                0,
                format!(
                    "the defaults ({})",
                    clip::walk::DEFAULT_EXCLUDES
                        .map(|p| if p.contains(' ') {
                            format!("{p:?}")
                        } else {
                            p.to_string()
                        })
                        .join(" ")
                ),
            );
        }
        writeln!(
            out,
            "excludes  {}",
            if excludes.is_empty() {
                "none".to_string()
            } else {
                excludes.join(", ")
            }
        )?;
        writeln!(
            out,
            "images    {} indexed ({} distinct), {} failed",
            s.indexed,
            s.vectors,
            s.failed.len()
        )?;
        if s.kept > 0 {
            writeln!(
                out,
                "kept      {} vector{} of removed files, for files that come back (dropped {} \
                 days after their files went)",
                s.kept,
                if s.kept == 1 { "" } else { "s" },
                photos::KEEP_REMOVED_DAYS
            )?;
        }
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
        return Err(clip::ClipError::IndexDamaged {
            path: path.display().to_string(),
            integrity,
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Folders for a line of text: comma-separated, or "none" (as `excludes  none`).
fn listed(folders: &[String]) -> String {
    if folders.is_empty() {
        "none".to_string()
    } else {
        folders.join(", ")
    }
}

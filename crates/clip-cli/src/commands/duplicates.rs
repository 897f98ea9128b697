//! `clip duplicates`: groups of near-duplicate photos. Which folders come from the index, the
//! grouping and the details of each photo live in `clip::photos::duplicates`; this module
//! scans, calls and prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clip::photos::duplicates::{self, find_duplicates_except, DuplicateGroup, Duplicates};
use clip::photos::{self, Index, ScanOptions};

use super::index::{index_path, scan, scan_options, warn_about, write_summary};
use crate::cli::DuplicatesArgs;
use crate::output;

pub fn run(args: &DuplicatesArgs) -> anyhow::Result<ExitCode> {
    duplicates::check_threshold(args.threshold)?;
    let path = index_path(&args.index)?;
    let found = if args.no_scan {
        from_index(&path, args)?
    } else {
        scanned(&path, args)?
    };
    for f in &found.skipped {
        eprintln!("warning: {}", f.error);
    }
    let mut out = output::stdout();
    for (n, group) in found.groups.iter().enumerate() {
        if args.json {
            output::json_line(&mut out, &serde_json::to_value(group)?)?;
        } else {
            if n > 0 {
                writeln!(out)?;
            }
            write_group(&mut out, group)?;
        }
    }
    out.flush()?;
    if found.groups.is_empty() {
        // Silence at a terminal looks like a hang: say what was compared.
        eprintln!(
            "no duplicates: none among {} photo{} at --threshold {}",
            found.compared,
            if found.compared == 1 { "" } else { "s" },
            args.threshold
        );
        return Ok(output::NO_RESULTS);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--no-scan`: the index as it is, read-only, without a model.
fn from_index(path: &Path, args: &DuplicatesArgs) -> anyhow::Result<Duplicates> {
    let index = photos::open_existing(path, false)?;
    warn_about(&index);
    let made_by = &index.info().model;
    if let Some(model) = args.model.model.as_deref().filter(|m| *m != made_by) {
        eprintln!(
            "warning: --no-scan compares the vectors the index holds, made by {made_by}; \
             the model {model} is not used"
        );
    }
    let split = duplicates::split_folders(Some(&index), &args.folders)?;
    split.indexed_only(path)?;
    let (_, except) = duplicates::run_excludes(&args.exclude, &compared(&index, &split)?)?;
    Ok(find_duplicates_except(
        &[(&index, &split.indexed)],
        args.threshold,
        &except,
    )?)
}

/// The folders compared: those given, else the index's.
fn compared(index: &Index, split: &duplicates::Folders) -> anyhow::Result<Vec<PathBuf>> {
    let given: Vec<PathBuf> = split
        .indexed
        .iter()
        .chain(&split.elsewhere)
        .cloned()
        .collect();
    if !given.is_empty() {
        return Ok(given);
    }
    let roots = index.roots().map_err(clip::ClipError::from)?;
    Ok(roots.into_iter().map(PathBuf::from).collect())
}

/// Folders of the index brought up to date in it (its list of folders and its exclusions
/// unchanged), others (and those its exclusions leave out) embedded into an index in memory;
/// then both compared, without what --exclude leaves out of this run.
fn scanned(path: &Path, args: &DuplicatesArgs) -> anyhow::Result<Duplicates> {
    let options = ScanOptions {
        add_roots: false,
        ..scan_options(&args.scan)
    };
    if args.folders.is_empty() {
        let (_model, index, report) = scan(path, &[], &args.model, options)?;
        tell_changes(path, &report)?;
        let split = duplicates::Folders::default();
        let (_, except) = duplicates::run_excludes(&args.exclude, &compared(&index, &split)?)?;
        return Ok(find_duplicates_except(
            &[(&index, &[])],
            args.threshold,
            &except,
        )?);
    }
    let existing = if path.is_file() && !Index::is_blank(path) {
        Some(photos::open_existing(path, false)?)
    } else {
        None
    };
    if let Some(index) = &existing {
        warn_about(index);
    }
    let split = duplicates::split_folders(existing.as_ref(), &args.folders)?;
    // Checked before any work: a bad pattern stops the run, not the end of it.
    let (run_patterns, except) = duplicates::run_excludes(&args.exclude, &args.folders)?;
    let (model, index) = if split.indexed.is_empty() {
        (None, None)
    } else {
        let (model, index, report) = scan(path, &split.indexed, &args.model, options)?;
        tell_changes(path, &report)?;
        (Some(model), Some(index))
    };
    let memory = if split.elsewhere.is_empty() {
        None
    } else {
        let known = index.as_ref().or(existing.as_ref());
        let model = match model {
            Some(model) => model,
            None => {
                let name = photos::model_for(known, args.model.model.as_deref());
                output::load_named(&args.model, &name)?
            }
        };
        let mut memory = Index::in_memory(&model.index_info()).map_err(clip::ClipError::from)?;
        // What the index holds under these folders (a folder holding the index's) is not
        // embedded again, when it is this model's.
        if let Some(known) = known.filter(|k| k.info().compatible(&model.index_info())) {
            duplicates::seed(&mut memory, known, &split.elsewhere)?;
        }
        embed_for_this_run(&model, &mut memory, &split.elsewhere, &run_patterns, args)?;
        Some(memory)
    };
    let mut sources: Vec<(&Index, &[PathBuf])> = Vec::new();
    if let Some(index) = &index {
        sources.push((index, &split.indexed));
    }
    if let Some(memory) = &memory {
        sources.push((memory, &split.elsewhere));
    }
    Ok(find_duplicates_except(&sources, args.threshold, &except)?)
}

/// What the scan changed in the index (photos embedded, moved, removed), on stderr, as
/// `clip index` would print it: a duplicates run that drops gone files from the index says so.
fn tell_changes(path: &Path, report: &photos::ScanReport) -> anyhow::Result<()> {
    let changed = report.embedded
        + report.moved
        + report.reused
        + report.removed
        + report.excluded
        + report.failed.len();
    if changed > 0 {
        let mut err = std::io::stderr().lock();
        write!(err, "updated the index first: ")?;
        write_summary(&mut err, path, report)?;
    }
    Ok(())
}

/// Embeds the photos of `folders` into the index in memory, with a progress bar, without
/// what `exclude` leaves out.
fn embed_for_this_run(
    model: &clip::Clip,
    memory: &mut Index,
    folders: &[PathBuf],
    exclude: &[String],
    args: &DuplicatesArgs,
) -> anyhow::Result<()> {
    // Dropping rows from an index in memory loses nothing: no guard against mass deletion.
    let options = ScanOptions {
        allow_mass_delete: true,
        exclude: exclude.to_vec(),
        ..scan_options(&args.scan)
    };
    let report = output::with_scan_progress(
        args.model.quiet,
        "looking for photos",
        "embedding (for this run only)",
        |progress| model.update_index(memory, folders, &options, progress),
    )?;
    for f in report.skipped.iter().chain(&report.failed) {
        eprintln!("warning: {}", f.error);
    }
    Ok(())
}

/// A group as text: a header, then a line per photo.
fn write_group(out: &mut impl Write, group: &DuplicateGroup) -> std::io::Result<()> {
    writeln!(
        out,
        "# {} photos, every two at least {:.4} similar",
        group.members.len(),
        group.min_similarity
    )?;
    for m in &group.members {
        let score = if m.representative {
            "ref".to_string()
        } else {
            format!("{:.4}", m.similarity)
        };
        let size = match (m.width, m.height) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "?".to_string(),
        };
        let identical = match (&m.identical_to, m.changed_since_indexed) {
            (Some(first), _) => format!("  (identical to {first})"),
            (None, true) => "  (changed since indexed: compared as it was then)".to_string(),
            (None, false) => String::new(),
        };
        writeln!(
            out,
            "  {score:>6}  {:>8}  {size:<9}  {}  {}{identical}",
            human_bytes(m.bytes),
            m.modified.as_deref().unwrap_or("-"),
            m.path
        )?;
        for link in &m.links {
            writeln!(
                out,
                "{:10}also {link} (the same file by another name, not a copy)",
                ""
            )?;
        }
    }
    Ok(())
}

/// A size in bytes as a person reads it: 812 B, 12.3 kB, 4.5 MB (powers of 1000).
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_as_people_write_them() {
        let got: Vec<String> = [0, 999, 1000, 12_345, 999_949, 999_950, 4_500_000, 2 << 40]
            .into_iter()
            .map(human_bytes)
            .collect();
        assert_eq!(
            got,
            ["0 B", "999 B", "1.0 kB", "12.3 kB", "999.9 kB", "1.0 MB", "4.5 MB", "2.2 TB"]
        );
    }
}

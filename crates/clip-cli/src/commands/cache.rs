//! `clip cache`: show or clear the cache of label embeddings.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clip::zeroshot::{cache_entries, clear_cache, default_cache_dir};
use serde_json::json;

use crate::cli::CacheArgs;
use crate::output;

pub fn run(args: &CacheArgs) -> anyhow::Result<ExitCode> {
    let Some(dir) = default_cache_dir() else {
        bail!("no cache folder: set CLIP_CACHE_DIR, XDG_CACHE_HOME or HOME");
    };
    let mut out = output::stdout();
    if args.clear {
        let (files, bytes) = clear_cache(&dir)?;
        if args.json {
            output::json_line(
                &mut out,
                &json!({"cache": dir.display().to_string(), "removed": files, "bytes": bytes}),
            )?;
        } else {
            // Files, not classifiers: an interrupted one is a file too.
            writeln!(
                out,
                "removed {} of label embeddings ({}) from {}",
                output::count(files, "file"),
                human_bytes(bytes),
                dir.display()
            )?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let entries = cache_entries(&dir)?;
    if args.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({"file": e.path.display().to_string(), "bytes": e.bytes, "model": e.model,
                       "classes": e.classes, "templates": e.templates, "first_classes": e.sample,
                       "partial": e.partial, "problem": e.problem})
            })
            .collect();
        output::json_line(
            &mut out,
            &json!({"cache": dir.display().to_string(), "classifiers": v}),
        )?;
    } else {
        let total: u64 = entries.iter().map(|e| e.bytes).sum();
        let unusable = entries.iter().filter(|e| e.problem.is_some()).count();
        let interrupted = entries
            .iter()
            .filter(|e| e.problem.is_none() && e.partial.is_some())
            .count();
        let complete = entries.len() - unusable - interrupted;
        let mut counts = vec![output::count(complete, "cached classifier")];
        if interrupted > 0 {
            counts.push(format!("{interrupted} interrupted"));
        }
        if unusable > 0 {
            counts.push(format!("{unusable} unusable"));
        }
        writeln!(
            out,
            "{}: {}, {}",
            dir.display(),
            counts.join(", "),
            human_bytes(total)
        )?;
        for e in &entries {
            let size = human_bytes(e.bytes);
            let shape = format!(
                "{} x {}",
                output::count(e.classes, "class"),
                output::count(e.templates, "template")
            );
            if let (Some(problem), Some(_)) = (&e.problem, e.partial) {
                writeln!(
                    out,
                    "  {size:>9}  interrupted entry {} ({problem}, when next needed)",
                    e.path.display()
                )?;
            } else if let Some(problem) = &e.problem {
                writeln!(
                    out,
                    "  {size:>9}  unusable entry {} ({problem}; computed again when next needed)",
                    e.path.display()
                )?;
            } else if let Some(done) = e.partial {
                writeln!(
                    out,
                    "  {size:>9}  {done} of {shape}, interrupted (continued when next needed)  {}",
                    e.model
                )?;
            } else {
                writeln!(
                    out,
                    "  {size:>9}  {shape} ({}{})  {}",
                    e.sample.join(", "),
                    if e.classes > e.sample.len() {
                        ", …"
                    } else {
                        ""
                    },
                    e.model
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

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
            writeln!(
                out,
                "removed {files} cached classifier{} ({}) from {}",
                if files == 1 { "" } else { "s" },
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
                       "partial": e.partial})
            })
            .collect();
        output::json_line(
            &mut out,
            &json!({"cache": dir.display().to_string(), "classifiers": v}),
        )?;
    } else {
        let total: u64 = entries.iter().map(|e| e.bytes).sum();
        writeln!(
            out,
            "{}: {} cached classifier{}, {}",
            dir.display(),
            entries.len(),
            if entries.len() == 1 { "" } else { "s" },
            human_bytes(total)
        )?;
        for e in &entries {
            if let (Some(done), true) = (e.partial, e.classes > 0) {
                writeln!(
                    out,
                    "  {:>9}  {} of {} classes x {} templates, interrupted (continued when next needed)  {}",
                    human_bytes(e.bytes),
                    done,
                    e.classes,
                    e.templates,
                    e.model
                )?;
                continue;
            }
            if e.classes == 0 {
                writeln!(
                    out,
                    "  {:>9}  unreadable entry {} (recomputed when next needed)",
                    human_bytes(e.bytes),
                    e.path.display()
                )?;
                continue;
            }
            writeln!(
                out,
                "  {:>9}  {} classes x {} templates ({}{})  {}",
                human_bytes(e.bytes),
                e.classes,
                e.templates,
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

//! `clip lists` and `clip cache`: the built-in class lists and templates, and the cache of
//! label embeddings.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clip::zeroshot::{builtin_classes, cache_entries, clear_cache, default_cache_dir, BUILTIN};
use clip::Templates;
use serde_json::json;

use crate::cli::{CacheArgs, ListsArgs};
use crate::output;

pub fn lists(args: &ListsArgs) -> anyhow::Result<ExitCode> {
    let mut out = output::stdout();
    let Some(name) = &args.name else {
        let rows: Vec<(&str, usize, usize)> = BUILTIN
            .iter()
            .map(|n| {
                let classes = builtin_classes(n).map_or(0, |c| c.len());
                let templates = Templates::builtin(n).map_or(0, |t| t.as_slice().len());
                (*n, classes, templates)
            })
            .collect();
        if args.json {
            let v: Vec<_> = rows
                .iter()
                .map(|(n, c, t)| json!({"name": n, "classes": c, "templates": t}))
                .collect();
            output::json_line(&mut out, &json!(v))?;
        } else {
            writeln!(out, "{:<15}{:>8}{:>11}", "name", "classes", "templates")?;
            for (n, c, t) in rows {
                writeln!(out, "{n:<15}{c:>8}{t:>11}")?;
            }
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    let entries = if args.templates {
        Templates::builtin(name).map(|t| t.as_slice().to_vec())
    } else {
        builtin_classes(name)
    };
    let Some(entries) = entries else {
        bail!(
            "no built-in list {name:?}; the lists are {}",
            BUILTIN.join(", ")
        );
    };
    if args.json {
        output::json_line(&mut out, &json!(entries))?;
    } else {
        for e in entries {
            writeln!(out, "{e}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn cache(args: &CacheArgs) -> anyhow::Result<ExitCode> {
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
                       "classes": e.classes, "templates": e.templates, "first_classes": e.sample})
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

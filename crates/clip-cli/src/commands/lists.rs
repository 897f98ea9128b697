//! `clip lists`: the built-in class lists and their prompt templates.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clip::zeroshot::{builtin_classes, BUILTIN};
use clip::Templates;
use serde_json::json;

use crate::cli::ListsArgs;
use crate::output;

pub fn run(args: &ListsArgs) -> anyhow::Result<ExitCode> {
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

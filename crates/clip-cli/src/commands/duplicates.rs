//! `clip duplicates`: groups of near-identical photos, after an incremental scan.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clip::photos::{self, is_under};
use serde_json::json;

use super::index::{index_path, scan, scan_options};
use crate::cli::DuplicatesArgs;
use crate::output;

pub fn run(args: &DuplicatesArgs) -> anyhow::Result<ExitCode> {
    if !(args.threshold > 0.0 && args.threshold <= 1.0) {
        bail!(
            "--threshold {} is not a similarity between 0 and 1 (near-identical photos score about 0.95 and more)",
            args.threshold
        );
    }
    let path = index_path(&args.index)?;
    let (_model, index, _report) =
        scan(&path, &args.folders, &args.model, scan_options(&args.scan))?;
    let vectors = photos::load_vectors(&index)?;
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
                min = min.min(photos::dot(vectors.vector(a), vectors.vector(b)));
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
        output::NO_RESULTS
    } else {
        ExitCode::SUCCESS
    })
}

//! `clip search`: the photo index searched by text, example images, or both. The query
//! syntax and the choice of model live in `clip::photos`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clip::photos;
use serde_json::json;

use super::index::index_path;
use crate::cli::SearchArgs;
use crate::output;

pub fn run(args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let path = index_path(&args.index)?;
    if let Some(m) = args.min_score.filter(|m| !m.is_finite()) {
        bail!("--min-score: {m} is not a number");
    }
    let query = photos::Query::parse(&args.text, &args.image, &args.weights)?;
    let (index, model) = photos::open_for_search(&path, args.model.model.as_deref(), |name| {
        output::load_named(&args.model, name)
    })?;
    super::index::warn_about(&index);
    let query = model.query_vector(query.terms(), Some(&index), args.truncate)?;
    let vectors = photos::load_vectors(&index)?;
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
        return Ok(output::NO_RESULTS);
    }
    Ok(ExitCode::SUCCESS)
}

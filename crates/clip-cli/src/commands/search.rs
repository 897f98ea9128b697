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
    refuse_options_as_words(&args.text)?;
    let query = photos::Query::parse(&args.text, &args.image, &args.weights)?;
    let (index, model) = photos::open_for_search(&path, args.model.model.as_deref(), |name| {
        output::load_named(&args.model, name)
    })?;
    super::index::warn_about(&index);
    let query = model.embed_query(&query, Some(&index), args.truncate)?;
    let vectors = photos::load_vectors(&index)?;
    let k = usize::try_from(args.top_k).unwrap_or(usize::MAX);
    let found = photos::search(&vectors, &query, k, args.min_score);
    let hits = found.hits;
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
        match (found.best, args.min_score) {
            (Some(best), Some(min)) => {
                eprintln!("no results: the best match scores {best:.4}, below --min-score {min}")
            }
            _ => eprintln!("no results: the index {} holds no images", path.display()),
        }
        return Ok(output::NO_RESULTS);
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses a query text that is one of this command's options: it can only have come after
/// `--`, where everything is a query word (`clip search -- "-people beach" -k 3` would
/// otherwise look for "k" and "3"). A `-word` that names no option is a word to avoid.
fn refuse_options_as_words(texts: &[String]) -> anyhow::Result<()> {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    command.build();
    let Some(search) = command.find_subcommand("search") else {
        return Ok(());
    };
    let is_option = |text: &str| {
        search.get_arguments().any(|a| {
            let long = a.get_long().is_some_and(|l| {
                text.strip_prefix("--")
                    .is_some_and(|t| t == l || t.starts_with(&format!("{l}=")))
            });
            let short = a.get_short().is_some_and(|c| text == format!("-{c}"));
            long || short
        })
    };
    if let Some(option) = texts.iter().map(|t| t.trim()).find(|t| is_option(t)) {
        bail!(
            "{option:?} comes after \"--\", where every argument is query words, not an option; \
             put options before \"--\", e.g. clip search -k 3 -- \"-people beach\" (or, to \
             search for it, quote it with the other words: -- \"{option} dog\")"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn options_after_the_separator_are_refused() {
        let texts = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let check = |v: &[&str]| super::refuse_options_as_words(&texts(v));
        assert!(check(&["-people beach"]).is_ok());
        assert!(check(&["-people", "beach -k"]).is_ok());
        for bad in [
            &["-people beach", "-k", "3"][..],
            &["x", "--json"],
            &["--top-k=3"],
            &["-h"],
        ] {
            let e = check(bad).unwrap_err().to_string();
            assert!(e.contains("before \"--\""), "{e}");
        }
    }
}

//! `clip models`: known model names and what the Hugging Face cache holds.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;

use crate::cli::ModelsArgs;
use crate::output;

pub fn run(args: &ModelsArgs) -> anyhow::Result<ExitCode> {
    let cache = clip::hub::cache_dir();
    let cached = clip::hub::cached_models(&cache);
    let mut out = output::stdout();
    let known: Vec<_> = clip::KNOWN_MODELS
        .iter()
        .map(|(name, repo)| {
            let hit = cached.iter().find(|c| c.repo == *repo);
            (name, repo, hit)
        })
        .collect();
    let others: Vec<_> = cached
        .iter()
        .filter(|c| !clip::KNOWN_MODELS.iter().any(|(_, r)| *r == c.repo))
        .collect();
    if args.json {
        let status = |c: Option<&clip::hub::CachedModel>| match c {
            Some(c) => json!({"path": c.path.display().to_string(), "complete": c.complete}),
            None => json!(null),
        };
        output::json_line(
            &mut out,
            &json!({
                "cache": cache.display().to_string(),
                "endpoint": clip::hub::endpoint(),
                "offline": clip::hub::offline_from_env(),
                "default": clip::DEFAULT_MODEL,
                "known": known.iter().map(|(n, r, c)| json!({"name": n, "repo": r, "cached": status(*c)})).collect::<Vec<_>>(),
                "other_cached": others.iter().map(|c| json!({"repo": c.repo, "model": c.model_arg(), "cached": status(Some(c))})).collect::<Vec<_>>(),
            }),
        )?;
    } else {
        writeln!(out, "cache: {}", cache.display())?;
        writeln!(out)?;
        writeln!(out, "{:<20} {:<36} cached", "name", "repo")?;
        for (name, repo, hit) in &known {
            let default = if **name == clip::DEFAULT_MODEL {
                " (default)"
            } else {
                ""
            };
            let state = match hit {
                Some(c) if c.complete => c.path.display().to_string(),
                Some(c) => format!("incomplete: {}", c.path.display()),
                None => "no (downloaded on first use)".to_string(),
            };
            writeln!(
                out,
                "{:<20} {:<36} {state}",
                format!("{name}{default}"),
                repo
            )?;
        }
        if !others.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "other CLIP models in the cache (use the repo id as --model):"
            )?;
            for c in others {
                let state = if c.complete { "" } else { " (incomplete)" };
                writeln!(out, "  {:<36} {}{state}", c.model_arg(), c.path.display())?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

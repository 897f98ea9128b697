//! `clip classify`: zero-shot classification of image files among plain-language labels.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;

use crate::cli::{ClassifyArgs, PromptArgs};
use crate::output;

/// The labels of a spec (see [`clip::zeroshot::Labels::parse`]), with its warnings printed.
pub fn parse_labels(spec: &str) -> anyhow::Result<Vec<String>> {
    let parsed = clip::zeroshot::Labels::parse(spec)?;
    for w in &parsed.warnings {
        eprintln!("warning: {w}");
    }
    Ok(parsed.labels)
}

/// The templates the arguments ask for (see [`clip::Templates::parse`]).
pub fn parse_templates(
    args: &PromptArgs,
    labels_spec: Option<&str>,
) -> anyhow::Result<clip::Templates> {
    let t = clip::Templates::parse(
        args.template.as_deref(),
        args.templates.as_deref(),
        labels_spec,
    )?;
    if args.template.is_none() && args.templates.is_none() && t != clip::Templates::none() {
        tracing::info!(
            "using the {} built-in templates of {:?} (--templates none for the labels as written)",
            t.as_slice().len(),
            labels_spec.unwrap_or_default()
        );
    }
    Ok(t)
}

/// The label embeddings (the zero-shot classifier), from the cache unless `--no-cache`, with
/// a progress bar while the text tower runs.
pub fn build_classifier(
    model: &clip::Clip,
    labels: &[String],
    templates: &clip::Templates,
    args: &PromptArgs,
    truncate: bool,
    quiet: bool,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let cache_dir = (!args.no_cache)
        .then(clip::zeroshot::default_cache_dir)
        .flatten();
    // Ctrl-C stops between model calls, so the classes done are kept (with a cache) and
    // the run says how far it got.
    let ctrl_c = output::stop_on_ctrl_c();
    let options = clip::ClassifierOptions {
        truncate,
        cache_dir,
        stop: ctrl_c.as_ref().map(|g| g.flag.clone()),
    };
    let bar = output::bar(labels.len() as u64, quiet, "embedding labels");
    let classifier =
        model.zero_shot_classifier_with(labels, templates, &options, &mut |n| bar.inc(n as u64));
    bar.finish_and_clear();
    drop(ctrl_c);
    let classifier = classifier?;
    for w in &classifier.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(dir) = &options.cache_dir {
        match classifier.cached {
            0 => {}
            n if n == labels.len() => {
                tracing::info!("label embeddings read from the cache in {}", dir.display())
            }
            n => tracing::info!(
                "continued the label embeddings of an interrupted run: {n} of {} were done",
                labels.len()
            ),
        }
    }
    Ok(classifier.rows)
}

/// The command line's images with each folder replaced by the image files under it (sorted,
/// recursively, hidden entries skipped).
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let files = clip::dataset::image_files(input)?;
            if files.is_empty() {
                bail!(
                    "no images in folder {} (looked for {})",
                    input.display(),
                    clip::dataset::IMAGE_EXTENSIONS.join(", ")
                );
            }
            out.extend(files);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

pub fn run(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let images = expand_inputs(&args.images)?;
    let labels = parse_labels(&args.labels)?;
    let templates = parse_templates(&args.prompts, Some(&args.labels))?;
    let model = output::load_model(&args.model)?;
    let label_features = build_classifier(
        &model,
        &labels,
        &templates,
        &args.prompts,
        args.truncate,
        args.model.quiet,
    )?;
    let top_k = args
        .top_k
        .map_or(labels.len(), |k| usize::try_from(k).unwrap_or(usize::MAX))
        .min(labels.len());
    let many = images.len() > 1;
    let bar = output::bar(
        images.len() as u64,
        args.model.quiet || !many,
        "classifying",
    );
    let mut out = output::stdout();
    let mut failed = 0usize;
    for chunk in images.chunks(args.model.batch_size as usize) {
        let embedded = model.encode_image_files(chunk, &mut |n| bar.inc(n as u64))?;
        for f in &embedded.failed {
            bar.suspend(|| eprintln!("error: {}", f.error));
        }
        failed += embedded.failed.len();
        let rankings = model.classify(&embedded.features, &label_features);
        for (&i, ranked) in embedded.kept.iter().zip(&rankings) {
            let path = &chunk[i];
            let shown = &ranked[..top_k];
            if args.json {
                let predictions: Vec<_> = shown
                    .iter()
                    .map(|p| {
                        json!({"label": labels[p.index], "probability": p.probability,
                               "logit": p.logit, "cosine": p.cosine})
                    })
                    .collect();
                output::json_line(
                    &mut out,
                    &json!({"image": path.display().to_string(), "predictions": predictions}),
                )?;
            } else {
                let indent = if many {
                    writeln!(out, "{}", path.display())?;
                    "  "
                } else {
                    ""
                };
                for p in shown {
                    writeln!(
                        out,
                        "{indent}{}: {:.4}  (cosine {:.4})",
                        labels[p.index], p.probability, p.cosine
                    )?;
                }
            }
        }
    }
    bar.finish_and_clear();
    out.flush()?;
    if failed > 0 {
        eprintln!(
            "error: {failed} of {} images could not be classified",
            images.len()
        );
        return Ok(ExitCode::from(output::ERROR));
    }
    Ok(ExitCode::SUCCESS)
}

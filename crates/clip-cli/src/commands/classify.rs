//! `clip classify`: zero-shot classification of image files among plain-language labels.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;

use crate::cli::{ClassifyArgs, PromptArgs};
use crate::output;

/// Reads labels from a file (one per line), a built-in class list, or a comma-separated list.
pub fn parse_labels(spec: &str) -> anyhow::Result<Vec<String>> {
    let path = Path::new(spec);
    if path.is_dir() {
        bail!("label file {spec} is a directory");
    }
    let labels: Vec<String> = if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read label file {}", path.display()))?;
        clip::zeroshot::parse_list(&text)
    } else if let Some(classes) = clip::zeroshot::builtin_classes(spec) {
        classes
    } else {
        // A name with a label-file extension, or a path into an existing folder, was meant
        // as a file; "AC/DC" is a label.
        let has_extension = [".txt", ".csv", ".lst", ".labels"]
            .iter()
            .any(|ext| spec.to_ascii_lowercase().ends_with(ext));
        let in_existing_dir = spec.contains(std::path::MAIN_SEPARATOR)
            && path
                .parent()
                .is_some_and(|p| !p.as_os_str().is_empty() && p.is_dir());
        if !spec.contains(',') && (has_extension || in_existing_dir) {
            bail!(
                "label file {spec} does not exist (pass a comma-separated list like \"cat,dog\" or an existing file)"
            );
        }
        spec.split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    if labels.is_empty() {
        bail!("no labels in {spec:?}");
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
        tracing::warn!(
            "label {dup:?} is given more than once: its copies share its probability, and ties go to the first"
        );
    }
    if labels.len() == 1 {
        tracing::warn!(
            "only one label ({:?}): its probability is always 1",
            labels[0]
        );
    }
    Ok(labels)
}

/// The templates the arguments ask for: `--template`, `--templates NAME|FILE|none`, or by
/// default the built-in set of a built-in label list (the paper's method), else none.
pub fn parse_templates(
    args: &PromptArgs,
    labels_spec: Option<&str>,
) -> anyhow::Result<clip::Templates> {
    if let Some(t) = &args.template {
        return Ok(clip::Templates::new(vec![t.clone()], "--template")?);
    }
    let Some(spec) = &args.templates else {
        let builtin = labels_spec
            .filter(|l| !Path::new(l).exists())
            .and_then(clip::Templates::builtin);
        if let Some(t) = &builtin {
            tracing::info!(
                "using the {} built-in templates of {:?} (--templates none for the labels as written)",
                t.as_slice().len(),
                labels_spec.unwrap_or_default()
            );
        }
        return Ok(builtin.unwrap_or_else(clip::Templates::none));
    };
    let path = Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read template file {}", path.display()))?;
        return Ok(clip::Templates::new(
            clip::zeroshot::parse_list(&text),
            spec,
        )?);
    }
    if spec.eq_ignore_ascii_case("none") {
        return Ok(clip::Templates::none());
    }
    if let Some(t) = clip::Templates::builtin(spec) {
        return Ok(t);
    }
    bail!(
        "unknown template set {spec:?}: not a file, and the built-in sets are {} (or none)",
        clip::zeroshot::BUILTIN.join(", ")
    )
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
    let cache = (!args.no_cache)
        .then(clip::zeroshot::default_cache_dir)
        .flatten();
    let bar = output::bar(labels.len() as u64, quiet, "embedding labels");
    let (features, hit) = model.zero_shot_classifier_with(
        labels,
        templates,
        truncate,
        cache.as_deref(),
        &mut |n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();
    if hit {
        if let Some(dir) = &cache {
            tracing::info!("label embeddings read from the cache in {}", dir.display());
        }
    }
    Ok(features)
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
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_list_and_file() {
        assert_eq!(
            parse_labels("cat, dog ,,car").unwrap(),
            ["cat", "dog", "car"]
        );
        let dir = std::env::temp_dir().join(format!("clip-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("labels.txt");
        std::fs::write(&f, "# animals\ncat\n\n a dog \n").unwrap();
        assert_eq!(parse_labels(f.to_str().unwrap()).unwrap(), ["cat", "a dog"]);
        let e = parse_labels("missing.txt").unwrap_err().to_string();
        assert!(
            e.contains("missing.txt") && e.contains("does not exist"),
            "{e}"
        );
        assert!(parse_labels(" , ").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! `clip classify`: zero-shot classification of image files among plain-language labels.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;

use crate::cli::ClassifyArgs;
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
    if labels.len() == 1 {
        tracing::warn!(
            "only one label ({:?}): its probability is always 1",
            labels[0]
        );
    }
    Ok(labels)
}

/// The templates the arguments ask for: `--template`, `--templates NAME|FILE`, or none.
pub fn parse_templates(args: &ClassifyArgs) -> anyhow::Result<clip::Templates> {
    if let Some(t) = &args.template {
        return Ok(clip::Templates::new(vec![t.clone()], "--template")?);
    }
    let Some(spec) = &args.templates else {
        return Ok(clip::Templates::none());
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
    if let Some(t) = clip::Templates::builtin(spec) {
        return Ok(t);
    }
    bail!(
        "unknown template set {spec:?}: not a file, and the built-in sets are {}",
        clip::zeroshot::BUILTIN.join(", ")
    )
}

/// File extensions taken from folders (files named on the command line are always read).
const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "jfif",
];

/// The command line's images with each folder replaced by the image files under it (sorted,
/// recursively, hidden entries skipped).
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|e| {
                IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
            }) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let before = out.len();
            walk(input, &mut out)?;
            if out.len() == before {
                bail!(
                    "no images in folder {} (looked for {})",
                    input.display(),
                    IMAGE_EXTENSIONS.join(", ")
                );
            }
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

pub fn run(args: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let images = expand_inputs(&args.images)?;
    let labels = parse_labels(&args.labels)?;
    let templates = parse_templates(args)?;
    let model = output::load_model(&args.model)?;
    let cache = (!args.no_cache)
        .then(clip::zeroshot::default_cache_dir)
        .flatten();
    let label_features = match cache {
        Some(dir) => {
            let (features, hit) =
                model.zero_shot_classifier_cached(&labels, &templates, args.truncate, &dir)?;
            if hit {
                tracing::info!("label embeddings read from the cache in {}", dir.display());
            }
            features
        }
        None => model.zero_shot_classifier(&labels, &templates, args.truncate)?,
    };
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
        let mut pixels = Vec::with_capacity(chunk.len());
        let mut paths = Vec::with_capacity(chunk.len());
        for path in chunk {
            match model.load_image(path) {
                Ok(p) => {
                    pixels.push(p);
                    paths.push(path);
                }
                Err(e) => {
                    bar.suspend(|| eprintln!("error: {e}"));
                    failed += 1;
                }
            }
        }
        let features = model.encode_image(&pixels)?;
        let rankings = model.classify(&features, &label_features);
        for (path, ranked) in paths.iter().zip(&rankings) {
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
                    writeln!(out, "{indent}{}: {:.4}", labels[p.index], p.probability)?;
                }
            }
        }
        bar.inc(chunk.len() as u64);
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

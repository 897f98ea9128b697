//! `clip eval`: zero-shot accuracy (and the linear probe) on an ImageFolder dataset, and
//! image-text retrieval recall@k on a caption file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clip::dataset::{
    match_labels, match_split, read_captions, read_mapping, ClassLabels, ImageFolder,
};
use clip::eval::probe::{self, ProbeOptions};
use clip::eval::{Accuracy, Failure};
use serde_json::json;

use crate::cli::{EvalCommand, EvalRetrievalArgs, EvalZeroShotArgs, ProbeC};
use crate::commands::classify::{build_classifier, parse_labels, parse_templates};
use crate::output;

pub fn run(command: &EvalCommand) -> anyhow::Result<ExitCode> {
    match command {
        EvalCommand::Zeroshot(args) => zeroshot(args),
        EvalCommand::Retrieval(args) => retrieval(args),
    }
}

/// Opens a split and matches its folders to labels (`labels`: the given list, if any).
fn open_split(
    dir: &Path,
    labels: Option<&[String]>,
    mapping: Option<&(std::collections::BTreeMap<String, String>, PathBuf)>,
    labels_source: &str,
) -> anyhow::Result<(ImageFolder, ClassLabels)> {
    let dataset = ImageFolder::open(dir)?;
    let classes = match_labels(
        &dataset.folder_names(),
        labels,
        mapping.map(|(m, p)| (m, p.as_path())),
        labels_source,
    )?;
    Ok((dataset, classes))
}

/// One warning per image left out: `what` says what was skipped with it.
fn report_failures(failed: &[Failure], what: &str, bar: &indicatif::ProgressBar) {
    for f in failed {
        bar.suspend(|| eprintln!("warning: skipped {what}: {}", f.error));
    }
}

fn zeroshot(args: &EvalZeroShotArgs) -> anyhow::Result<ExitCode> {
    let given = args.labels.as_deref().map(parse_labels).transpose()?;
    let mapping = match &args.mapping {
        Some(path) => Some((read_mapping(path)?, path.clone())),
        None => None,
    };
    let source = args.labels.as_deref().unwrap_or("--labels");
    let (test, classes) = open_split(&args.dataset, given.as_deref(), mapping.as_ref(), source)?;
    // The training split's folders are the test split's classes, by folder name.
    let train = match (&args.train, args.linear_probe) {
        (Some(dir), true) => {
            let train = ImageFolder::open(dir)?;
            let train_classes = match_split(&test, &classes, &train)?;
            Some((train, train_classes))
        }
        _ => None,
    };
    // The output folder, before any work.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    let templates = parse_templates(&args.prompts, args.labels.as_deref())?;
    let model = output::load_model(&args.model)?;
    let quiet = args.model.quiet;
    let classifier = build_classifier(
        &model,
        &classes.labels,
        &templates,
        &args.prompts,
        args.truncate,
        quiet,
    )?;

    let samples = test.classes.iter().map(|c| c.images.len()).sum::<usize>();
    let bar = output::bar(samples as u64, quiet, "embedding images");
    let (zero_shot, test_x) =
        model.evaluate_zero_shot(&test, &classes, &classifier, &mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    report_failures(&test_x.failed, "an image", &bar);

    let mut probe = None;
    let mut train_failed = Vec::new();
    if let Some((train, train_classes)) = &train {
        let n = train.classes.iter().map(|c| c.images.len()).sum::<usize>();
        let bar = output::bar(n as u64, quiet, "embedding training images");
        let train_x =
            model.encode_image_folder(train, train_classes, &mut |n| bar.inc(n as u64))?;
        bar.finish_and_clear();
        report_failures(&train_x.failed, "a training image", &bar);
        let train_set = (train_x.features.as_slice(), train_x.targets.as_slice());
        let test_set = (test_x.features.as_slice(), test_x.targets.as_slice());
        let report = match args.probe_c {
            ProbeC::Fixed(c) => {
                let options = ProbeOptions {
                    c,
                    ..Default::default()
                };
                probe::linear_probe(train_set, test_set, &classes.labels, &options)?
            }
            ProbeC::Auto => {
                let spinner = output::spinner(quiet, "choosing the linear probe's C");
                let report = probe::linear_probe_sweep(
                    train_set,
                    test_set,
                    &classes.labels,
                    &ProbeOptions::default(),
                )?;
                spinner.finish_and_clear();
                report
            }
        };
        if !report.converged {
            eprintln!(
                "warning: the linear probe did not converge in {} iterations",
                report.iterations
            );
        }
        probe = Some(report);
        train_failed = train_x.failed;
    }

    let title = |what: &str, a: &clip::eval::Accuracy| {
        format!(
            "{what} confusion matrix: {} on {} ({} images, top-1 {:.4})",
            model.name(),
            test.root.display(),
            a.images,
            a.top1
        )
    };
    let mut files = clip::eval::write_accuracy_files(
        &args.out,
        "zeroshot_",
        &title("zero-shot", &zero_shot),
        &zero_shot,
    )?;
    if let Some(p) = &probe {
        files.extend(clip::eval::write_accuracy_files(
            &args.out,
            "probe_",
            &title("linear probe", &p.accuracy),
            &p.accuracy,
        )?);
    }
    let empty: Vec<&str> = test
        .classes
        .iter()
        .filter(|c| c.images.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    let summary_path = args.out.join("summary.json");
    files.push(summary_path.clone());
    let summary = json!({
        "model": model.name(),
        "dataset": test.root.display().to_string(),
        "labels": classes.labels.len(),
        "class_folders": test.classes.iter().zip(&classes.folder_label).zip(&test_x.folders)
            .map(|((c, &l), n)| json!({
                "folder": c.name, "label": classes.labels[l], "images": n.images,
                "skipped": n.skipped,
            })).collect::<Vec<_>>(),
        "empty_class_folders": empty,
        "templates": templates.as_slice(),
        "images": zero_shot.images,
        "failed": test_x.failed,
        "zero_shot": zero_shot,
        "linear_probe": probe.as_ref().map(|p| json!({
            "train": train.as_ref().map(|(t, _)| t.root.display().to_string()),
            "train_failed": train_failed,
            "report": p,
        })),
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
    });
    clip::eval::write_json(&summary_path, &summary)?;

    let mut out = output::stdout();
    if args.json {
        output::json_line(&mut out, &summary)?;
    } else {
        writeln!(
            out,
            "{}: {} in {} ({}, {})",
            test.root.display(),
            output::count(zero_shot.images, "image"),
            output::count(test.classes.len(), "class"),
            output::count(classes.labels.len(), "label"),
            output::count(templates.as_slice().len(), "template"),
        )?;
        if !test_x.failed.is_empty() {
            writeln!(out, "unreadable images skipped: {}", test_x.failed.len())?;
        }
        if !empty.is_empty() {
            writeln!(out, "class folders without images: {}", empty.join(", "))?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "{:<14}{:>8}{:>8}{:>24}",
            "",
            "top-1",
            format!("top-{}", zero_shot.top5_k),
            "mean per-class recall"
        )?;
        let line = |out: &mut dyn Write, name: &str, a: &Accuracy| {
            writeln!(
                out,
                "{name:<14}{:>8.4}{:>8.4}{:>24.4}",
                a.top1, a.top5, a.mean_per_class_recall
            )
        };
        line(&mut out, "zero-shot", &zero_shot)?;
        if let Some(p) = &probe {
            line(&mut out, "linear probe", &p.accuracy)?;
        }
        if let Some(p) = &probe {
            let how = if p.sweep.is_empty() {
                "given".to_string()
            } else {
                format!(
                    "chosen among {} values on a validation split",
                    p.sweep.len()
                )
            };
            let c = if (1e-3..1e4).contains(&p.c) {
                format!("{:.4}", p.c)
            } else {
                format!("{:.3e}", p.c)
            };
            writeln!(
                out,
                "linear probe: C = {c} ({how}), trained on {} images",
                p.train_images
            )?;
        }
        writeln!(out)?;
        per_class_table(&mut out, &zero_shot)?;
    }
    out.flush()?;
    eprintln!(
        "wrote {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn per_class_table(out: &mut dyn Write, a: &Accuracy) -> anyhow::Result<()> {
    let width = a
        .per_class
        .iter()
        .map(|c| c.label.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 40);
    writeln!(
        out,
        "{:<width$}  {:>7}  {:>7}  {:>7}  {:>9}",
        "label", "images", "correct", "recall", "precision"
    )?;
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    for c in &a.per_class {
        writeln!(
            out,
            "{:<width$}  {:>7}  {:>7}  {:>7}  {:>9}",
            c.label,
            c.support,
            c.correct,
            opt(c.recall),
            opt(c.precision)
        )?;
    }
    Ok(())
}

fn retrieval(args: &EvalRetrievalArgs) -> anyhow::Result<ExitCode> {
    if let Some(root) = args.images_root.as_ref().filter(|r| !r.is_dir()) {
        anyhow::bail!("--images-root {} is not a folder", root.display());
    }
    let captions = read_captions(&args.captions, args.images_root.as_deref())?;
    let model = output::load_model(&args.model)?;
    let mut ks: Vec<usize> = args.recall_at.iter().map(|&k| k as usize).collect();
    ks.sort_unstable();
    ks.dedup();
    let bar = output::bar(
        captions.images.len() as u64,
        args.model.quiet,
        "embedding images",
    );
    let report =
        model.evaluate_retrieval(&captions, &ks, args.truncate, &mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    report_failures(&report.failed, "an image and its captions", &bar);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mut out = output::stdout();
    if args.json {
        output::json_line(
            &mut out,
            &json!({
                "model": model.name(),
                "captions_file": args.captions.display().to_string(),
                "report": report,
            }),
        )?;
    } else {
        writeln!(
            out,
            "{}: {}, {}{}",
            args.captions.display(),
            output::count(report.images, "image"),
            output::count(report.captions, "caption"),
            if report.failed.is_empty() {
                String::new()
            } else {
                let n = report.failed.len();
                let (image, its) = if n == 1 {
                    ("image", "its")
                } else {
                    ("images", "their")
                };
                format!(" ({n} unreadable {image} skipped with {its} captions)")
            }
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<10}{:>14}{:>14}",
            "recall@k", "text->image", "image->text"
        )?;
        for r in &report.recall {
            writeln!(
                out,
                "{:<10}{:>14.4}{:>14.4}",
                r.k, r.text_to_image, r.image_to_text
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

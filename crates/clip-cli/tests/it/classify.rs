//! `clip classify`: labels, templates, folders, output formats and the label cache.

use clip_test_support::{fixture, temp_dir};

use crate::{run, stderr, stdout, TestContext, OPENAI};

fn rounded(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            // Three decimals: kernels may differ in the last float bits (fast path, CPUs).
            serde_json::json!((x * 1e3).round() / 1e3)
        }
        serde_json::Value::Array(a) => a.iter().map(rounded).collect(),
        serde_json::Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), rounded(v))).collect(),
        other => other.clone(),
    }
}

#[test]
fn classify_one_image() {
    let context = TestContext::new();
    let out = context.ok(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat,dog,car,tree,house",
        "--model",
        OPENAI,
    ]);
    insta::assert_snapshot!(out);
    let top2 = context.ok(&[
        "classify",
        "photos/chelsea.png",
        "-l",
        "cat,dog,car,tree,house",
        "-k",
        "2",
        "-m",
        OPENAI,
    ]);
    assert_eq!(top2.lines().count(), 2);
    assert!(out.starts_with(&top2));
}

#[test]
fn classify_many_images_with_a_label_file_as_json() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "a cat\na horse\n# comment\n\na rocket\n").unwrap();
    let out = context.ok(&[
        "classify",
        "photos/chelsea.png",
        "photos/horse.png",
        "photos/rocket.jpg",
        "--labels",
        labels.to_str().unwrap(),
        "--json",
        "--top-k",
        "2",
        "-m",
        OPENAI,
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| rounded(&serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(lines.len(), 3);
    insta::assert_json_snapshot!(lines);
}

#[test]
fn unreadable_images_are_reported_and_skipped() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let bad = dir.join("broken.jpg");
    std::fs::write(&bad, b"<html>not an image</html>").unwrap();
    let o = run(&mut context.clip(&[
        "classify",
        bad.to_str().unwrap(),
        "photos/horse.png",
        "-l",
        "cat,dog",
        "-m",
        OPENAI,
    ]));
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(
        out.contains("photos/horse.png") && out.contains("cat: "),
        "{out}"
    );
    let err = stderr(&o);
    assert!(err.contains("broken.jpg") && err.contains("HTML"), "{err}");
    assert!(err.contains("1 of 2 images"), "{err}");
}

#[test]
fn classify_with_templates_and_built_in_class_lists() {
    let context = TestContext::new();
    // A built-in class list with its template ensemble: ten CIFAR-10 classes, ranked.
    let cifar10 = |extra: &[&str]| {
        let mut args = vec!["classify", "photos/chelsea.png", "--labels", "cifar10"];
        args.extend(extra);
        args.extend(["--top-k", "3", "--json", "-m", OPENAI]);
        context.ok(&args)
    };
    let out = cifar10(&["--templates", "cifar10"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    let cifar = clip::zeroshot::builtin_classes("cifar10").unwrap();
    assert!(preds
        .iter()
        .all(|p| cifar.iter().any(|c| c == p["label"].as_str().unwrap())));
    // A built-in class list brings its own templates unless told otherwise.
    assert_eq!(cifar10(&[]), out);
    assert_ne!(cifar10(&["--templates", "none"]), out);
    // One template, and a template file, give the same as the equivalent ensemble of one.
    let tmp = temp_dir();
    let dir = tmp.path();
    let file = dir.join("t.txt");
    std::fs::write(&file, "# my template\na photo of a {}.\n").unwrap();
    let one = context.ok(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat,dog",
        "--template",
        "a photo of a {}.",
        "-m",
        OPENAI,
    ]);
    let from_file = context.ok(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat,dog",
        "--templates",
        file.to_str().unwrap(),
        "-m",
        OPENAI,
    ]);
    assert_eq!(one, from_file);
    let plain = context.ok(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat,dog",
        "-m",
        OPENAI,
    ]);
    assert_ne!(one, plain, "the template changes the prompts");
    // Bad template sets are named.
    std::fs::write(&file, "a photo\n").unwrap();
    let path = file.to_str().unwrap();
    let bad = [
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat",
        "--templates",
        path,
        "-m",
        OPENAI,
    ];
    context.fails_with(&bad, 2, "has no {} for the class name");
    let unknown = [
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat",
        "--templates",
        "fer2013",
        "-m",
        OPENAI,
    ];
    context.fails_with(&unknown, 2, "unknown template set \"fer2013\"");
    let both = [
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat",
        "--template",
        "a {}",
        "--templates",
        "imagenet",
    ];
    context.fails_with(&both, 2, "cannot be used with");
}

#[test]
fn classify_takes_folders_and_reports_cosines() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::copy(fixture("photos/rocket.jpg"), dir.join("b.jpg")).unwrap();
    std::fs::copy(fixture("photos/horse.png"), dir.join("sub/a.PNG")).unwrap();
    std::fs::copy(fixture("photos/horse.png"), dir.join(".hidden.png")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let out = context.ok(&[
        "classify",
        dir.to_str().unwrap(),
        "--labels",
        "cat,dog",
        "--json",
        "-m",
        OPENAI,
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let images: Vec<&str> = lines.iter().map(|l| l["image"].as_str().unwrap()).collect();
    assert_eq!(images.len(), 2, "{images:?}");
    assert!(
        images[0].ends_with("b.jpg") && images[1].ends_with("a.PNG"),
        "{images:?}"
    );
    // logit = logit_scale × cosine, with one scale for every prediction.
    let mut scales = Vec::new();
    for l in &lines {
        for p in l["predictions"].as_array().unwrap() {
            let (logit, cosine) = (p["logit"].as_f64().unwrap(), p["cosine"].as_f64().unwrap());
            assert!((-1.0..=1.0).contains(&cosine) && cosine != 0.0, "{p}");
            scales.push(logit / cosine);
        }
    }
    assert!(
        scales
            .iter()
            .all(|s| (s - scales[0]).abs() < 1e-3 * scales[0]),
        "{scales:?}"
    );
    let empty = dir.join("empty");
    context.fails_with(
        &[
            "classify",
            empty.to_str().unwrap(),
            "--labels",
            "cat,dog",
            "-m",
            OPENAI,
        ],
        2,
        "no images in folder",
    );
}

#[test]
fn label_embeddings_are_cached_between_runs() {
    let context = TestContext::new();
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let args = [
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cifar10",
        "--templates",
        "cifar10",
        "--json",
        "-m",
        OPENAI,
    ];
    let run_once = |extra: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        let o = run(context
            .clip(&all)
            .env("CLIP_CACHE_DIR", cache)
            .env("CLIP_LOG", "info"));
        assert!(o.status.success(), "{}", stderr(&o));
        (stdout(&o), stderr(&o).contains("read from the cache"))
    };
    let (first, hit) = run_once(&[]);
    assert!(!hit);
    let (second, hit) = run_once(&[]);
    assert!(hit, "second run reads the cache");
    assert_eq!(first, second);
    let (third, hit) = run_once(&["--no-cache"]);
    assert!(!hit);
    assert_eq!(first, third);
    assert_eq!(
        std::fs::read_dir(cache.join("classifiers"))
            .unwrap()
            .count(),
        1
    );
}

/// Warnings read `warning: …` like every other message: labels given twice in a file of
/// one's own (once, all of them, saying what the output shows: each copy on its own line with
/// the same probability), and a library's log warning (a checkpoint without
/// preprocessor_config.json); no tracing-style `WARN` line. The built-in ImageNet list, whose
/// published names repeat "missile" and "sunglasses", gives no warning the user cannot act
/// on. An inline comment in a label file is not part of the label; `\#` keeps a `#`.
#[test]
fn warnings_are_plain_and_comments_are_dropped() {
    let context = TestContext::new();
    let o = run(&mut context.clip(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "imagenet",
        "--templates",
        "none",
        "-k",
        "1",
        "-m",
        OPENAI,
        "-q",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let tmp = temp_dir();
    let twice = tmp.path().join("twice.txt");
    std::fs::write(&twice, "cat\nC \\# minor  # a key, not a comment\ncat\n").unwrap();
    let o = run(&mut context.clip(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        twice.to_str().unwrap(),
        "-m",
        OPENAI,
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "warning: \"cat\" is given more than once: each copy is scored and shown on its own, \
         with the same probability, so together they take a larger share than one label\n"
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let cats: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("cat: "))
        .collect();
    assert_eq!(cats.len(), 2, "{out}");
    assert_eq!(cats[0], cats[1], "the copies have the same probability");
    assert!(lines.iter().any(|l| l.starts_with("C # minor: ")), "{out}");
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for f in std::fs::read_dir(fixture(OPENAI)).unwrap() {
        let f = f.unwrap();
        if f.file_name() != "preprocessor_config.json" {
            std::fs::copy(f.path(), model.join(f.file_name())).unwrap();
        }
    }
    let labels = tmp.path().join("labels.txt");
    std::fs::write(&labels, "cat  # the animal\ndog\n").unwrap();
    let o = run(&mut context.clip(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        labels.to_str().unwrap(),
        "-m",
        model.to_str().unwrap(),
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("warning: ") && err.contains("preprocessor_config.json is missing"),
        "{err}"
    );
    assert!(!err.contains("WARN"), "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let names: Vec<&str> = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["cat", "dog"]);
}

/// A label cache entry damaged on disk (bytes overwritten inside its rows, as the user trial
/// did) is noticed: a warning names the file, the classes are computed again (the same
/// output as `--no-cache`), and the file is rewritten, so the next run reads it silently.
#[test]
fn a_damaged_label_cache_entry_is_recomputed_with_a_warning() {
    let context = TestContext::new();
    let args = [
        "classify",
        "photos/chelsea.png",
        "--labels",
        "imagenet",
        "--templates",
        "none",
        "-k",
        "3",
        "-m",
        OPENAI,
    ];
    let classify = |extra: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        let o = run(&mut context.clip(&all));
        assert!(o.status.success(), "{}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let (first, _) = classify(&[]);
    let dir = context.home.path().join("clip-cache/classifiers");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = std::fs::read(&file).unwrap();
    let mut bytes = good.clone();
    let at = bytes.len() - 32 - 40_000;
    bytes[at..at + 8].copy_from_slice(&[0x7f; 8]);
    std::fs::write(&file, &bytes).unwrap();
    let listed = context.ok(&["cache"]);
    assert!(
        listed.contains("0 cached classifiers, 1 unusable")
            && listed.contains("damaged: its checksum does not match its content"),
        "{listed}"
    );
    let (second, warned) = classify(&[]);
    assert_eq!(
        warned,
        format!(
            "warning: the label embeddings cached in {} were damaged (its checksum does not \
             match its content): computed them again and rewrote the file\n",
            file.display()
        )
    );
    assert_eq!(second, first);
    assert_eq!(classify(&["--no-cache"]).0, first);
    assert_eq!(std::fs::read(&file).unwrap(), good, "the file is repaired");
    assert_eq!(classify(&[]), (first, String::new()));
}

/// Ctrl-C while the label embeddings are computed stops the run with exit code 130 and says
/// how many classes are kept; `clip cache` counts the entry as interrupted, not as a cached
/// classifier; the next run continues from there and prints what a run from scratch prints.
#[cfg(unix)]
#[test]
fn ctrl_c_while_embedding_labels_says_what_is_kept() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let labels = tmp.path().join("labels.txt");
    let names: Vec<String> = (0..1500).map(|i| format!("thing number {i}")).collect();
    std::fs::write(&labels, names.join("\n")).unwrap();
    let args = [
        "classify",
        "photos/chelsea.png",
        "--labels",
        labels.to_str().unwrap(),
        "--templates",
        "imagenet",
        "-k",
        "3",
        "-m",
        OPENAI,
    ];
    let mut child = context
        .clip(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some classes are kept, then press Ctrl-C.
    let dir = context.home.path().join("clip-cache/classifiers");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let partial_size = || -> u64 {
        std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().to_string_lossy().ends_with(".partial"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    };
    while partial_size() < 64 * 1024 {
        assert!(std::time::Instant::now() < deadline, "no progress kept");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(o.stdout.is_empty());
    let kept: usize = err
        .strip_prefix("interrupted: kept the label embeddings of ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((1..1500).contains(&kept), "{err}");
    assert!(
        err.contains(" of 1500 classes in ")
            && err.contains(".classifier.partial\n")
            && err.ends_with("hint: run the same command again to continue where it stopped\n"),
        "{err}"
    );
    let listed = context.ok(&["cache"]);
    assert!(
        listed.contains(": 0 cached classifiers, 1 interrupted, ")
            && listed.contains(&format!(
                "{kept} of 1500 classes x 80 templates, interrupted (continued when next needed)"
            )),
        "{listed}"
    );
    let o = run(context.clip(&args).env("CLIP_LOG", "info"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "continued the label embeddings of an interrupted run: {kept} of 1500 were done"
        )),
        "{}",
        stderr(&o)
    );
    let mut fresh = args.to_vec();
    fresh.push("--no-cache");
    assert_eq!(stdout(&o), context.ok(&fresh));
    let listed = context.ok(&["cache"]);
    assert!(listed.contains(": 1 cached classifier, "), "{listed}");
}

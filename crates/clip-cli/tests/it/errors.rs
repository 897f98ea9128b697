//! Exit codes and messages: usage mistakes, failures, early checks of inputs, a closed pipe.

use std::process::Stdio;

use clip_test_support::{fixture, fixtures, temp_dir};

use crate::{run, stderr, TestContext, OPENAI};

#[test]
fn errors_are_explained_with_exit_code_2() {
    let context = TestContext::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "classify",
                "photos/horse.png",
                "-l",
                "cat,dog",
                "-m",
                "./no-such-model",
            ],
            "not a directory",
        ),
        (
            &[
                "classify",
                "photos/horse.png",
                "-l",
                "cat,dog",
                "-m",
                "ViT-B/32",
            ],
            "HF_HUB_OFFLINE",
        ),
        (
            &[
                "classify",
                "photos/horse.png",
                "-l",
                "labels.txt",
                "-m",
                OPENAI,
            ],
            "label file labels.txt does not exist",
        ),
        (
            &[
                "classify",
                "photos/horse.png",
                "-l",
                "cat,dog",
                "-m",
                OPENAI,
                "--device",
                "gpu",
            ],
            "expected cpu, cuda",
        ),
        (
            &[
                "classify",
                "photos/horse.png",
                "-l",
                "cat,dog",
                "-m",
                OPENAI,
                "--device",
                "cuda",
            ],
            "device cuda:0 is not available",
        ),
        (
            &["embed", "--image", "missing.png", "-m", OPENAI],
            "missing.png",
        ),
    ];
    for (args, needle) in cases {
        let o = run(&mut context.clip(args));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
        assert!(o.stdout.is_empty(), "{args:?}: wrote to stdout");
    }
    for usage in [
        &["classify", "x.png"][..],
        &["embed", "-m", OPENAI],
        &["classify", "x.png", "-l", "a,b", "--top-k", "0"],
        &["tokenize", "--context-length", "100000", "x"],
    ] {
        let o = run(&mut context.clip(usage));
        assert_eq!(
            o.status.code(),
            Some(2),
            "{usage:?}: usage errors exit with 2"
        );
    }
    let o = run(&mut context.clip(&[
        "classify",
        "photos/horse.png",
        "-l",
        "cat,dog",
        "-m",
        "./no-such-model",
    ]));
    assert!(stderr(&o).contains("hint: `clip models`"), "{}", stderr(&o));
    // A folder passed as the index is named as a folder, with the way to index it.
    let o = run(&mut context.clip(&["search", "dog", "--index", "photos/"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: photos/ is a folder, not an index file\n")
            && err.contains("hint: --index (or CLIP_INDEX) names the index file itself")
            && err.contains("clip index \"photos/\""),
        "{err}"
    );
    let o = run(&mut context.clip(&["search", "dog", "--index", "none.sqlite"]));
    assert!(
        stderr(&o).starts_with("error: no index at none.sqlite\n"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_and_index_inputs_that_are_wrong_say_so_early() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    // A training folder that is no class of the test split.
    let train = dir.join("train");
    for f in ["camera_man", "not_a_test_class"] {
        std::fs::create_dir_all(train.join(f)).unwrap();
        std::fs::copy(fixture("photos/horse.png"), train.join(f).join("1.png")).unwrap();
    }
    let out = dir.join("out");
    let mut args = vec![
        "eval",
        "zeroshot",
        "--dataset",
        "eval/imagefolder/test",
        "-m",
        OPENAI,
        "--out",
    ];
    let out_s = out.to_str().unwrap().to_string();
    args.push(&out_s);
    let mut probe = args.clone();
    probe.extend(["--linear-probe", "--train", train.to_str().unwrap()]);
    context.fails_with(
        &probe,
        2,
        "class folder \"not_a_test_class\" has no folder of that name",
    );
    // An output path that is a file: refused before any image is embedded.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let mut bad_out = args[..args.len() - 1].to_vec();
    bad_out.push(file.to_str().unwrap());
    context.fails_with(&bad_out, 2, "cannot create the output folder");
    context.fails_with(
        &["eval", "zeroshot", "--dataset", "x", "--train", "y"],
        2,
        "--linear-probe",
    );
    // Caption files: an unclosed quote, a missing images root.
    let csv = dir.join("c.csv");
    std::fs::write(&csv, "image,caption\na.png,\"unterminated\nb.png,more\n").unwrap();
    let c = csv.to_str().unwrap();
    let unclosed = format!("error: {c}: line 2: a quote opens a field and is never closed");
    context.fails_with(
        &["eval", "retrieval", "--captions", c, "-m", OPENAI],
        2,
        &unclosed,
    );
    // On the last line, where the csv reader alone took it without a word.
    std::fs::write(
        &csv,
        "image,caption\na/cat.png,a cat\na/horse.png,\"unterminated",
    )
    .unwrap();
    let unclosed = format!("error: {c}: line 3: a quote opens a field and is never closed");
    context.fails_with(
        &["eval", "retrieval", "--captions", c, "-m", OPENAI],
        2,
        &unclosed,
    );
    let missing = [
        "eval",
        "retrieval",
        "--captions",
        "eval/captions.csv",
        "--images-root",
        "nope",
        "-m",
        OPENAI,
    ];
    context.fails_with(&missing, 2, "--images-root nope is not a folder");
    // An empty cache variable is unset, not the current folder.
    let home = dir.join("home");
    let o = run(context
        .clip(&[
            "classify",
            "photos/horse.png",
            "--labels",
            "a,b",
            "-m",
            OPENAI,
        ])
        .env("CLIP_CACHE_DIR", "")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(home.join(".cache/clip/classifiers").is_dir());
    assert!(!fixtures().join("classifiers").exists());
    // A folder gone for good is dropped with --forget; NaN weights are refused.
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    // Before any index exists: the folder is named missing, with no hint about an index.
    let o = run(&mut context.clip_index(
        &dir.join("none.sqlite"),
        &["index", dir.join("nope").to_str().unwrap(), "-m", OPENAI],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no such folder"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("--forget"), "{}", stderr(&o));
    assert!(!dir.join("none.sqlite").exists());
    std::fs::copy(fixture("photos/horse.png"), lib.join("h.png")).unwrap();
    let index = dir.join("index.sqlite");
    context.scan_json(&index, &["index", lib.to_str().unwrap(), "-m", OPENAI]);
    // A folder added by mistake that never existed: no --forget hint.
    let o = run(&mut context.clip_index(
        &index,
        &["index", dir.join("never").to_str().unwrap(), "-q"],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("--forget"), "{}", stderr(&o));
    std::fs::remove_dir_all(&lib).unwrap();
    let o = run(&mut context.clip_index(&index, &["index", "-q"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("clip index --forget"), "{}", stderr(&o));
    let forgot = context.index_ok(&index, &["index", "--forget", lib.to_str().unwrap()]);
    assert!(forgot.contains(": 1 indexed file"), "{forgot}");
    let status = context.index_ok(&index, &["index", "--status", "--json"]);
    assert!(
        status.contains("\"indexed\":0") && status.contains("\"roots\":[]"),
        "{status}"
    );
    let o = run(&mut context.clip_index(&index, &["search", "x", "--weights", "nan"]));
    assert!(stderr(&o).contains("is not a number"), "{}", stderr(&o));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let context = TestContext::new();
    let texts: Vec<String> = (0..3000).map(|i| format!("text number {i}")).collect();
    // Text lines and JSON lines (written through serde_json) alike.
    for format in ["--pad", "--json"] {
        let mut args = vec!["tokenize", format];
        args.extend(texts.iter().map(String::as_str));
        let mut child = context
            .clip(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{format}: {}", stderr(&out));
    }
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let context = TestContext::new();
    // CLIP_PRECISION= would otherwise be an unknown precision, CLIP_THREADS= no number.
    let out = context.ok(&["tokenize", "a dog"]);
    for var in ["CLIP_PRECISION", "CLIP_DEVICE", "CLIP_THREADS"] {
        let o = run(context
            .clip(&[
                "classify",
                "photos/horse.png",
                "-l",
                "cat,dog",
                "-m",
                OPENAI,
            ])
            .env(var, ""));
        assert!(o.status.success(), "{var}=: {}", stderr(&o));
    }
    let o = run(context.clip(&["tokenize", "a dog"]).env("NO_COLOR", ""));
    assert_eq!(crate::stdout(&o), out);
    // A photo given as the index is not an index, and no hint says to delete it.
    let o = run(&mut context.clip(&["search", "x", "--index", "photos/horse.png"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("photos/horse.png"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("delete"), "{}", stderr(&o));
    // CLIP_MODEL= is no model "": the default is looked for (offline here, so not found).
    let o = run(context
        .clip(&["classify", "photos/horse.png", "-l", "cat,dog"])
        .env("CLIP_MODEL", ""));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("model \"ViT-B/32\" not found"),
        "{}",
        stderr(&o)
    );
}

//! The `clip` binary as a user runs it: output snapshots, exit codes, error messages, and a
//! model downloaded from a loopback hub then used offline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clip_test_support::hub_server;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary with a clean environment: no user cache, no network, fixtures as cwd.
fn clip(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clip"));
    cmd.args(args)
        .current_dir(fixtures())
        .env_remove("CLIP_MODEL")
        .env_remove("CLIP_DEVICE")
        .env_remove("CLIP_PRECISION")
        .env_remove("CLIP_THREADS")
        .env_remove("CLIP_INDEX")
        // Shared by the tests of this run, never removed while they run.
        .env(
            "CLIP_CACHE_DIR",
            std::env::temp_dir().join(format!("clip-cli-cache-{}", std::process::id())),
        )
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env("HF_HOME", tmp("home"))
        .env("HF_HUB_OFFLINE", "1")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run clip")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(&mut clip(args));
    assert!(o.status.success(), "clip {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

/// Runs `clip args`, which must exit with `code` and say `needle` on stderr.
fn fails_with(args: &[&str], code: i32, needle: &str) {
    let o = run(&mut clip(args));
    assert_eq!(o.status.code(), Some(code), "clip {args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(needle), "clip {args:?}: {}", stderr(&o));
}

const OPENAI: &str = "models/tiny-openai";

#[test]
fn help_texts() {
    insta::assert_snapshot!("help", ok(&["--help"]));
    for cmd in [
        "classify",
        "embed",
        "tokenize",
        "models",
        "bench",
        "eval",
        "lists",
        "cache",
        "index",
        "search",
        "duplicates",
    ] {
        insta::assert_snapshot!(format!("help_{cmd}"), ok(&[cmd, "--help"]));
    }
    for sub in ["zeroshot", "retrieval"] {
        insta::assert_snapshot!(format!("help_eval_{sub}"), ok(&["eval", sub, "--help"]));
    }
}

#[test]
fn bench_reports_every_row_as_json() {
    let out = ok(&[
        "bench",
        "--model",
        OPENAI,
        "--batch-sizes",
        "1,2",
        "--repeats",
        "2",
        "--photo",
        "photos/rocket.jpg",
        "--search-sizes",
        "1000,5000",
        "--index-dir",
        "eval/imagefolder/train",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["arch"], OPENAI);
    assert_eq!(v["precision"], "f32");
    assert_eq!(v["repeats"], 2);
    let rows = v["results"].as_array().unwrap();
    let shapes: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {} {}", r["task"], r["batch"], r["tokens"]))
        .collect();
    assert_eq!(
        shapes,
        [
            "\"image\" 1 null",
            "\"image\" 2 null",
            "\"text\" 1 77",
            "\"text\" 2 77",
            "\"text\" 1 8",
            "\"text\" 2 8",
            "\"preprocess\" 1 null",
            "\"tokenize\" 1000 null",
            "\"search\" 1 null",
            "\"search\" 1 null",
            "\"index\" 32 null",
            "\"index-model\" 32 null",
        ]
    );
    let items: Vec<u64> = rows[8..]
        .iter()
        .map(|r| r["items"].as_u64().unwrap())
        .collect();
    assert_eq!(items, [1000, 5000, 15, 15]);
    assert_eq!(rows[8]["unit"], "ms");
    for r in rows {
        let (min, median, max) = (
            r["min"].as_f64().unwrap(),
            r["median"].as_f64().unwrap(),
            r["max"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= median && median <= max, "{r}");
    }
    // Token ids come from the checkpoint's vocabulary (tiny-pth has 1000 tokens).
    let small = [
        "bench",
        "--model",
        "models/tiny-pth",
        "--only",
        "text",
        "--batch-sizes",
        "2",
        "--repeats",
        "1",
        "--json",
    ];
    assert!(ok(&small).contains("\"tokens\":8"));
    // bf16 and the reference kernels are selectable and named in the report.
    let out = ok(&[
        "bench",
        "--model",
        OPENAI,
        "--only",
        "image",
        "--batch-sizes",
        "1",
        "--repeats",
        "1",
        "--precision",
        "bf16",
        "--json",
    ]);
    assert!(out.contains("\"precision\":\"bf16\""), "{out}");
    let out = ok(&[
        "bench",
        "--model",
        OPENAI,
        "--only",
        "text",
        "--batch-sizes",
        "1",
        "--repeats",
        "1",
        "--reference",
        "--json",
    ]);
    assert!(out.contains("reference kernels"), "{out}");
}

#[test]
fn bench_rejects_unknown_architectures_and_photos() {
    let arch = ["bench", "--arch", "ViT-X/9", "--only", "tokenize"];
    fails_with(&arch, 1, "unknown architecture \"ViT-X/9\"");
    let photo = ["bench", "--only", "preprocess", "--photo", "nope.jpg"];
    fails_with(&photo, 1, "nope.jpg");
    fails_with(&["bench", "--precision", "fp8"], 2, "unknown precision");
}

#[test]
fn classify_one_image() {
    let out = ok(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat,dog,car,tree,house",
        "--model",
        OPENAI,
    ]);
    insta::assert_snapshot!(out);
    let top2 = ok(&[
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
fn classify_many_images_with_a_label_file_as_json() {
    let dir = tmp("labels");
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "a cat\na horse\n# comment\n\na rocket\n").unwrap();
    let out = ok(&[
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
    let dir = tmp("bad-images");
    let bad = dir.join("broken.jpg");
    std::fs::write(&bad, b"<html>not an image</html>").unwrap();
    let o = run(&mut clip(&[
        "classify",
        bad.to_str().unwrap(),
        "photos/horse.png",
        "-l",
        "cat,dog",
        "-m",
        OPENAI,
    ]));
    assert_eq!(o.status.code(), Some(1));
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
fn embed_jsonl_keeps_input_order_and_normalizes() {
    let out = ok(&[
        "embed",
        "--text",
        "a dog",
        "--image",
        "photos/horse.png",
        "--text",
        "a cat",
        "-m",
        OPENAI,
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["text", "image", "text"]);
    assert_eq!(rows[1]["input"], "photos/horse.png");
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["input", "kind", "embedding"]);
    for r in &rows {
        let e: Vec<f64> = r["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(e.len(), 16);
        let norm: f64 = e.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    let raw = ok(&[
        "embed",
        "--image",
        "photos/horse.png",
        "--raw",
        "-m",
        OPENAI,
    ]);
    let raw: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    let norm: f64 = raw["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap().powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (norm - 1.0).abs() > 1e-3,
        "raw features should not be unit length"
    );
}

#[test]
fn embed_npy_writes_a_numpy_array() {
    let dir = tmp("npy");
    let file = dir.join("out.npy");
    let out = ok(&[
        "embed",
        "--image",
        "photos/horse.png",
        "--text",
        "a horse",
        "--format",
        "npy",
        "-o",
        file.to_str().unwrap(),
        "-m",
        OPENAI,
    ]);
    let listing: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listing["shape"], serde_json::json!([2, 16]));
    assert_eq!(listing["rows"][0]["kind"], "image");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'shape': (2, 16)"),
        "{header}"
    );
    assert_eq!(bytes.len(), 10 + header_len + 2 * 16 * 4);
    let o = run(&mut clip(&[
        "embed", "--text", "x", "--format", "npy", "-m", OPENAI,
    ]));
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(stderr(&o).contains("--output"), "{}", stderr(&o));
}

#[test]
fn tokenize_prints_ids() {
    let out = ok(&["tokenize", "a photo of a dog", "It’s ﬁne &amp; ＯＫ"]);
    insta::assert_snapshot!(out);
    let json = ok(&[
        "tokenize",
        "--json",
        "--pad",
        "--context-length",
        "8",
        "a photo of a dog",
    ]);
    insta::assert_snapshot!("tokenize_json", json);
    let o = run(&mut clip(&[
        "tokenize",
        "--context-length",
        "4",
        "a photo of a dog",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: text needs 7 tokens but the context length is 4"),
        "{err}"
    );
    assert!(err.contains("hint: pass --truncate"), "{err}");
    let literal = ok(&["tokenize", "<end_of_text> hi"]);
    assert_eq!(literal.trim(), "49406 49407 1883 49407");
    let cut = ok(&[
        "tokenize",
        "--context-length",
        "4",
        "--truncate",
        "a photo of a dog",
    ]);
    assert_eq!(cut.trim(), "49406 320 1125 49407");
}

#[test]
fn models_lists_known_names_and_the_cache() {
    let home = tmp("models-home");
    let snap = home.join("hub/models--org--cached-clip/snapshots/abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(home.join("hub/models--org--cached-clip/refs")).unwrap();
    std::fs::write(home.join("hub/models--org--cached-clip/refs/main"), "abc").unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("models/tiny-laion").join(f), snap.join(f)).unwrap();
    }
    let o = run(clip(&["models"]).env("HF_HOME", &home));
    assert!(o.status.success());
    let out = stdout(&o).replace(home.to_str().unwrap(), "$HF_HOME");
    insta::assert_snapshot!(out);
    let o = run(clip(&["models", "--json"]).env("HF_HOME", &home));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["other_cached"][0]["repo"], "org/cached-clip");
    assert_eq!(v["known"][0]["name"], "ViT-B/32");
}

#[test]
fn errors_are_explained_with_exit_code_1() {
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
        let o = run(&mut clip(args));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
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
        let o = run(&mut clip(usage));
        assert_eq!(
            o.status.code(),
            Some(2),
            "{usage:?}: usage errors exit with 2"
        );
    }
    let o = run(&mut clip(&[
        "classify",
        "photos/horse.png",
        "-l",
        "cat,dog",
        "-m",
        "./no-such-model",
    ]));
    assert!(stderr(&o).contains("hint: `clip models`"), "{}", stderr(&o));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let texts: Vec<String> = (0..3000).map(|i| format!("text number {i}")).collect();
    let mut args = vec!["tokenize", "--pad"];
    args.extend(texts.iter().map(String::as_str));
    let mut child = clip(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn downloads_from_the_hub_then_works_offline() {
    // Cache and home apart, as with HF_HUB_CACHE on a data disk: the token still comes from
    // $HF_HOME/token, where `huggingface-cli login` writes it.
    let home = tmp("download-home");
    let cache = tmp("download-cache");
    std::fs::write(home.join("token"), "hf_file_token\n").unwrap();
    let server =
        hub_server::HubServer::start("org/tiny-clip", &fixtures().join("models/tiny-openai"));
    let args = [
        "classify",
        "photos/chelsea.png",
        "-l",
        "cat,dog,car",
        "--model",
        "org/tiny-clip",
    ];
    let env = |cmd: &mut Command| {
        cmd.env("HF_HOME", &home).env("HF_HUB_CACHE", &cache);
    };
    let mut online_cmd = clip(&args);
    env(&mut online_cmd);
    let online = run(online_cmd
        .env("HF_ENDPOINT", server.endpoint())
        .env_remove("HF_HUB_OFFLINE"));
    assert!(online.status.success(), "{}", stderr(&online));
    assert_eq!(
        server.authorization().as_deref(),
        Some("Bearer hf_file_token")
    );
    let snapshot = cache
        .join("models--org--tiny-clip/snapshots")
        .join(hub_server::COMMIT);
    assert!(snapshot.join("model.safetensors").is_file());
    drop(server);
    let mut offline_cmd = clip(&args);
    env(&mut offline_cmd);
    let offline = run(&mut offline_cmd);
    assert!(offline.status.success(), "{}", stderr(&offline));
    assert_eq!(stdout(&online), stdout(&offline));
    let direct = ok(&[
        "classify",
        "photos/chelsea.png",
        "-l",
        "cat,dog,car",
        "--model",
        OPENAI,
    ]);
    assert_eq!(stdout(&offline), direct);
    let mut listed = clip(&["models"]);
    env(&mut listed);
    assert!(stdout(&run(&mut listed)).contains("org/tiny-clip"));
}

#[test]
fn classify_with_templates_and_built_in_class_lists() {
    // A built-in class list with its template ensemble: ten CIFAR-10 classes, ranked.
    let cifar10 = |extra: &[&str]| {
        let mut args = vec!["classify", "photos/chelsea.png", "--labels", "cifar10"];
        args.extend(extra);
        args.extend(["--top-k", "3", "--json", "-m", OPENAI]);
        ok(&args)
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
    let dir = tmp("templates");
    let file = dir.join("t.txt");
    std::fs::write(&file, "# my template\na photo of a {}.\n").unwrap();
    let one = ok(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat,dog",
        "--template",
        "a photo of a {}.",
        "-m",
        OPENAI,
    ]);
    let from_file = ok(&[
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
    let plain = ok(&[
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
    fails_with(&bad, 1, "has no {} for the class name");
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
    fails_with(&unknown, 1, "unknown template set \"fer2013\"");
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
    fails_with(&both, 2, "cannot be used with");
}

#[test]
fn classify_takes_folders_and_reports_cosines() {
    let dir = tmp("folder");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::copy(fixtures().join("photos/rocket.jpg"), dir.join("b.jpg")).unwrap();
    std::fs::copy(fixtures().join("photos/horse.png"), dir.join("sub/a.PNG")).unwrap();
    std::fs::copy(fixtures().join("photos/horse.png"), dir.join(".hidden.png")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let out = ok(&[
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
    fails_with(
        &[
            "classify",
            empty.to_str().unwrap(),
            "--labels",
            "cat,dog",
            "-m",
            OPENAI,
        ],
        1,
        "no images in folder",
    );
}

#[test]
fn label_embeddings_are_cached_between_runs() {
    let cache = tmp("label-cache");
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
        let o = run(clip(&all)
            .env("CLIP_CACHE_DIR", &cache)
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

fn eval_goldens() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("eval/goldens.json")).unwrap())
        .unwrap()
}

/// The evaluation fixture's zero-shot and probe run, as the reference computed it
/// (fixtures/generate.py --only eval: transformers, numpy, scikit-learn).
const EVAL_ZEROSHOT: [&str; 15] = [
    "eval",
    "zeroshot",
    "--probe-c",
    "0.316",
    "--dataset",
    "eval/imagefolder/test",
    "--mapping",
    "eval/imagefolder/mapping.txt",
    "--templates",
    "eval/templates.txt",
    "--linear-probe",
    "--train",
    "eval/imagefolder/train",
    "-m",
    OPENAI,
];

#[test]
fn eval_zeroshot_reports_what_the_reference_computes() {
    let g = eval_goldens();
    let dir = tmp("eval-zeroshot");
    let out_dir = dir.join("out");
    let mut args = EVAL_ZEROSHOT.to_vec();
    args.extend(["--json", "--out", out_dir.to_str().unwrap()]);
    let o = run(&mut clip(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("broken.png") && stderr(&o).contains("skipped"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    for (ours, reference) in [
        (&v["zero_shot"], &g["zero_shot"]),
        (&v["linear_probe"]["report"]["accuracy"], &g["linear_probe"]),
    ] {
        for key in ["top1", "top5", "mean_per_class_recall"] {
            let (a, b) = (
                ours[key].as_f64().unwrap(),
                reference[key].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-12, "{key}: {a} vs {b}");
        }
    }
    assert_eq!(v["images"], 15);
    assert_eq!(v["empty_class_folders"], serde_json::json!(["empty_class"]));
    assert!(v["failed"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("broken.png"));
    assert_eq!(v["class_folders"][0]["folder"], "camera_man");
    assert_eq!(v["class_folders"][0]["label"], "a man with a camera");
    // The files: the summary is the JSON printed; the confusion CSV is the reference's
    // matrix under the label names; the heat map is a PNG.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary, v);
    let csv = std::fs::read_to_string(out_dir.join("zeroshot_confusion.csv")).unwrap();
    let mut lines = csv.lines();
    let labels: Vec<&str> = g["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        lines.next().unwrap(),
        format!("true \\ predicted,{}", labels.join(","))
    );
    for (line, (label, row)) in lines.zip(
        labels
            .iter()
            .zip(g["zero_shot"]["confusion"].as_array().unwrap()),
    ) {
        let counts: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(line, format!("{label},{}", counts.join(",")));
    }
    for png in ["zeroshot_confusion.png", "probe_confusion.png"] {
        let bytes = std::fs::read(out_dir.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
    assert_eq!(v["linear_probe"]["report"]["c"], 0.316);
    assert_eq!(v["linear_probe"]["report"]["sweep"], serde_json::json!([]));
    let table = std::fs::read_to_string(out_dir.join("probe_per_class.csv")).unwrap();
    assert!(table.starts_with("label,support,correct,predicted,recall,precision\n"));
    // By default C is chosen on a validation split of --train.
    let mut auto: Vec<&str> = EVAL_ZEROSHOT
        .iter()
        .copied()
        .filter(|a| *a != "--probe-c" && *a != "0.316")
        .collect();
    auto.extend(["--json", "--out", out_dir.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(ok(&auto).trim()).unwrap();
    let sweep = v["linear_probe"]["report"]["sweep"].as_array().unwrap();
    assert!((16..=19).contains(&sweep.len()), "{sweep:?}");
    let c = v["linear_probe"]["report"]["c"].as_f64().unwrap();
    assert!(sweep.iter().any(|p| p["c"].as_f64() == Some(c)));
    fails_with(
        &["eval", "zeroshot", "--dataset", "x", "--probe-c", "0"],
        2,
        "positive number or auto",
    );
    // The text report.
    let mut args = EVAL_ZEROSHOT.to_vec();
    args.extend(["--out", out_dir.to_str().unwrap()]);
    insta::assert_snapshot!("eval_zeroshot_text", ok(&args));
}

#[test]
fn eval_retrieval_reports_recall_both_ways() {
    let g = eval_goldens();
    let args = [
        "eval",
        "retrieval",
        "--captions",
        "eval/captions.csv",
        "-m",
        OPENAI,
    ];
    insta::assert_snapshot!("eval_retrieval_text", ok(&args));
    let mut json_args = args.to_vec();
    json_args.extend(["--json", "--recall-at", "1,5,10"]);
    let v: serde_json::Value = serde_json::from_str(ok(&json_args).trim()).unwrap();
    let recall = v["report"]["recall"].as_array().unwrap();
    assert_eq!(recall, g["retrieval"]["recall"].as_array().unwrap());
    assert_eq!(v["report"]["captions"], g["retrieval"]["captions"]);
}

#[test]
fn eval_errors_name_the_dataset_and_the_files() {
    let dir = tmp("eval-errors");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let zeroshot = |extra: &[&str]| -> Vec<String> {
        let mut a = vec!["eval", "zeroshot", "-m", OPENAI, "--out", out];
        a.extend(extra);
        a.into_iter().map(String::from).collect()
    };
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    fails_with(
        &refs(&zeroshot(&["--dataset", "nope"])),
        1,
        "nope: no such folder",
    );
    fails_with(
        &refs(&zeroshot(&["--dataset", "photos"])),
        1,
        "photos: no class folders",
    );
    // Three labels for six folders that do not match by name.
    fails_with(
        &refs(&zeroshot(&[
            "--dataset",
            "eval/imagefolder/test",
            "--labels",
            "a,b,c",
        ])),
        1,
        "3 labels for 6 class folders",
    );
    let map = dir.join("map.txt");
    std::fs::write(&map, "coins\tcoins\n").unwrap();
    fails_with(
        &refs(&zeroshot(&[
            "--dataset",
            "eval/imagefolder/test",
            "--mapping",
            map.to_str().unwrap(),
        ])),
        1,
        "has no label for class folder \"camera_man\"",
    );
    fails_with(
        &refs(&zeroshot(&[
            "--dataset",
            "eval/imagefolder/test",
            "--linear-probe",
        ])),
        2,
        "--train",
    );
    let retrieval = |file: &str| -> Vec<String> {
        ["eval", "retrieval", "--captions", file, "-m", OPENAI]
            .map(String::from)
            .to_vec()
    };
    fails_with(&refs(&retrieval("missing.csv")), 1, "missing.csv");
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "image,caption\njust-one-field\n").unwrap();
    fails_with(&refs(&retrieval(bad.to_str().unwrap())), 1, "row 2");
    // Folder labels by name: labels in another order still land on the right folders.
    let ok_dir = dir.join("named");
    for (folder, file) in [("cat", "photos/chelsea.png"), ("horse", "photos/horse.png")] {
        std::fs::create_dir_all(ok_dir.join(folder)).unwrap();
        std::fs::copy(fixtures().join(file), ok_dir.join(folder).join("1.png")).unwrap();
    }
    let v: serde_json::Value = serde_json::from_str(
        ok(&refs(&zeroshot(&[
            "--dataset",
            ok_dir.to_str().unwrap(),
            "--labels",
            "horse,car,cat",
            "--json",
        ])))
        .trim(),
    )
    .unwrap();
    assert_eq!(v["class_folders"][0]["label"], "cat");
    assert_eq!(v["class_folders"][1]["label"], "horse");
    assert_eq!(v["labels"], 3);
}

#[test]
fn built_in_lists_are_listed_and_printed() {
    insta::assert_snapshot!("lists", ok(&["lists"]));
    let food = ok(&["lists", "food101"]);
    assert_eq!(food.lines().count(), 101);
    assert_eq!(food.lines().next(), Some("apple pie"));
    assert_eq!(
        ok(&["lists", "food101", "--templates"]),
        "a photo of {}, a type of food.\n"
    );
    let v: serde_json::Value = serde_json::from_str(ok(&["lists", "--json"]).trim()).unwrap();
    assert_eq!(v[0]["name"], "imagenet");
    assert_eq!(v[0]["templates"], 80);
    fails_with(&["lists", "fer2013"], 1, "no built-in list \"fer2013\"");
}

#[test]
fn the_label_cache_is_listed_and_cleared() {
    let cache = tmp("cache-command");
    let with_cache = |args: &[&str]| {
        let o = run(clip(args).env("CLIP_CACHE_DIR", &cache));
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let empty = with_cache(&["cache"]);
    assert!(empty.contains("0 cached classifiers"), "{empty}");
    with_cache(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat,dog,car,tree",
        "-m",
        OPENAI,
    ]);
    let listed: serde_json::Value =
        serde_json::from_str(with_cache(&["cache", "--json"]).trim()).unwrap();
    let entries = listed["classifiers"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["classes"], 4);
    assert_eq!(entries[0]["templates"], 1);
    assert_eq!(
        entries[0]["first_classes"],
        serde_json::json!(["cat", "dog", "car"])
    );
    assert!(entries[0]["model"]
        .as_str()
        .unwrap()
        .ends_with("tiny-openai"));
    // A damaged entry is shown as such.
    let classifiers = cache.join("classifiers");
    std::fs::write(classifiers.join("0000000000000000.classifier"), "junk").unwrap();
    let listed = with_cache(&["cache"]);
    assert!(listed.contains("unreadable entry"), "{listed}");
    std::fs::remove_file(classifiers.join("0000000000000000.classifier")).unwrap();
    let cleared = with_cache(&["cache", "--clear"]);
    assert!(
        cleared.starts_with("removed 1 cached classifier "),
        "{cleared}"
    );
    assert!(with_cache(&["cache"]).contains("0 cached classifiers"));
}

/// `clip` with its index at `index`.
fn clip_index(index: &Path, args: &[&str]) -> Command {
    let mut cmd = clip(args);
    cmd.env("CLIP_INDEX", index);
    cmd
}

fn index_ok(index: &Path, args: &[&str]) -> String {
    let o = run(&mut clip_index(index, args));
    assert!(o.status.success(), "clip {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

fn scan_json(index: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--json", "-q"]);
    let out = index_ok(index, &all);
    serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["scan"].clone()
}

/// A copy of a fixture PNG made distinct by bytes after its end (decoders ignore them).
fn distinct_png(to: &Path, tag: &str) {
    let mut bytes = std::fs::read(fixtures().join("photos/horse.png")).unwrap();
    bytes.extend_from_slice(tag.as_bytes());
    std::fs::write(to, bytes).unwrap();
}

#[test]
fn index_is_incremental_and_search_finds_what_embed_computes() {
    let dir = tmp("index-incremental");
    let lib = dir.join("lib");
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    for f in ["chelsea.png", "coins.png", "camera.png"] {
        std::fs::copy(fixtures().join("photos").join(f), lib.join(f)).unwrap();
    }
    std::fs::copy(
        fixtures().join("photos/rocket.jpg"),
        lib.join("sub/rocket.jpg"),
    )
    .unwrap();
    std::fs::write(lib.join("broken.jpg"), "<html>no</html>").unwrap();
    std::fs::write(lib.join("notes.txt"), "not an image").unwrap();
    let index = dir.join("idx/index.sqlite");
    let libs = lib.to_str().unwrap();
    let s = scan_json(&index, &["index", libs, "-m", OPENAI]);
    assert_eq!(
        (&s["files"], &s["embedded"], &s["reused"], &s["unchanged"]),
        (&5.into(), &4.into(), &0.into(), &0.into())
    );
    assert_eq!(
        s["failed"][0]["path"].as_str().unwrap(),
        lib.join("broken.jpg")
            .canonicalize()
            .unwrap()
            .to_str()
            .unwrap()
    );
    // Nothing changed: nothing read, the failure not retried.
    let s = scan_json(&index, &["index", libs]);
    assert_eq!(
        (&s["unchanged"], &s["failed_before"], &s["embedded"]),
        (&4.into(), &1.into(), &0.into())
    );
    // Rename, copy, edit, delete, fix the broken file.
    std::fs::rename(lib.join("coins.png"), lib.join("sub/coins-renamed.png")).unwrap();
    std::fs::copy(lib.join("chelsea.png"), lib.join("chelsea-copy.png")).unwrap();
    std::fs::copy(fixtures().join("photos/horse.png"), lib.join("camera.png")).unwrap();
    std::fs::remove_file(lib.join("sub/rocket.jpg")).unwrap();
    std::fs::copy(fixtures().join("photos/rocket.jpg"), lib.join("broken.jpg")).unwrap();
    let s = scan_json(&index, &["index"]);
    // The rename, the copy and the fixed file (now the content of the deleted rocket.jpg,
    // whose vector is dropped only after the scan) reuse vectors; the edit is embedded.
    assert_eq!(
        (&s["reused"], &s["embedded"], &s["unchanged"], &s["removed"]),
        (&3.into(), &1.into(), &1.into(), &2.into()),
        "{s}"
    );
    assert_eq!(s["failed"], serde_json::json!([]));
    let status: serde_json::Value =
        serde_json::from_str(index_ok(&index, &["index", "--status", "--json"]).trim()).unwrap();
    assert_eq!(
        (&status["indexed"], &status["vectors"]),
        (&5.into(), &4.into())
    );
    assert_eq!(status["integrity"], "ok");
    assert_eq!(status["failed"], serde_json::json!([]));
    // Search: the scores are the cosines `clip embed` gives, best first, ties in path order.
    let hits: Vec<serde_json::Value> = index_ok(&index, &["search", "a cat", "-k", "5", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 5);
    let text = ok(&["embed", "--text", "a cat", "-m", OPENAI]);
    let t: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let t: Vec<f64> = t["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let mut expected: Vec<(f64, String)> = hits
        .iter()
        .map(|h| {
            let path = h["path"].as_str().unwrap();
            let e = ok(&["embed", "--image", path, "-m", OPENAI]);
            let e: serde_json::Value = serde_json::from_str(e.trim()).unwrap();
            let cos: f64 = e["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&t)
                .map(|(a, b)| a.as_f64().unwrap() * b)
                .sum();
            assert!(
                (cos - h["score"].as_f64().unwrap()).abs() < 1e-4,
                "{path}: {cos} vs {}",
                h["score"]
            );
            (cos, path.to_string())
        })
        .collect();
    expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let chelsea = hits
        .iter()
        .position(|h| h["path"].as_str().unwrap().ends_with("/chelsea.png"))
        .unwrap();
    let copy = hits
        .iter()
        .position(|h| h["path"].as_str().unwrap().ends_with("/chelsea-copy.png"))
        .unwrap();
    assert_eq!(copy + 1, chelsea, "equal vectors tie, in path order");
    // Paths only, a min score that nothing reaches (exit 1), weights that do not fit.
    let paths = index_ok(&index, &["search", "a cat", "-k", "2", "--paths"]);
    assert_eq!(paths.lines().count(), 2);
    assert!(paths.lines().all(|l| Path::new(l).is_absolute()));
    let null = index_ok(&index, &["search", "a cat", "-k", "2", "-0"]);
    assert_eq!(null, paths.replace('\n', "\0"));
    let o = run(&mut clip_index(
        &index,
        &["search", "a cat", "--min-score", "0.99"],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let o = run(&mut clip_index(
        &index,
        &["search", "a cat", "--weights", "1,2"],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("2 weights for 1 query terms"),
        "{}",
        stderr(&o)
    );
    // Terms that cancel out leave nothing to look for.
    let o = run(&mut clip_index(&index, &["search", "cat -cat"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cancel out"), "{}", stderr(&o));
    // A folder inside another indexed root is not counted twice.
    let sub = lib.join("sub");
    let s = scan_json(&index, &["index", libs, sub.to_str().unwrap()]);
    assert_eq!(
        (&s["files"], &s["unchanged"]),
        (&5.into(), &5.into()),
        "{s}"
    );
    // Text and image together, and a negative word.
    let both = index_ok(
        &index,
        &[
            "search",
            "beach -people",
            "--image",
            lib.join("camera.png").to_str().unwrap(),
            "--weights",
            "1,0.5",
            "-k",
            "1",
            "--json",
        ],
    );
    assert_eq!(both.lines().count(), 1);
}

#[test]
fn index_refuses_another_model_mass_deletes_and_a_second_writer() {
    let dir = tmp("index-guards");
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..15 {
        distinct_png(&lib.join(format!("h{i:02}.png")), &format!("guard{i}"));
    }
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    scan_json(&index, &["index", libs, "-m", OPENAI]);
    // Another model: refused, naming both, with the way out.
    let o = run(&mut clip_index(
        &index,
        &["index", libs, "-m", "models/tiny-laion"],
    ));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("tiny-openai") && err.contains("tiny-laion") && err.contains("delete"),
        "{err}"
    );
    let o = run(&mut clip_index(
        &index,
        &["search", "x", "-m", "models/tiny-laion"],
    ));
    assert!(
        stderr(&o).contains("was built with model"),
        "{}",
        stderr(&o)
    );
    // Without --model, search uses the index's model.
    index_ok(&index, &["search", "a horse", "-k", "1"]);
    // Most files gone: refused, nothing deleted; then allowed.
    for i in 0..11 {
        std::fs::remove_file(lib.join(format!("h{i:02}.png"))).unwrap();
    }
    let o = run(&mut clip_index(&index, &["index", "-q"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--allow-mass-delete"), "{}", stderr(&o));
    let status = index_ok(&index, &["index", "--status", "--json"]);
    assert!(status.contains("\"indexed\":15"), "{status}");
    let s = scan_json(&index, &["index", "--allow-mass-delete"]);
    assert_eq!(s["removed"], 11);
    // The root itself gone: refused.
    std::fs::rename(&lib, dir.join("moved")).unwrap();
    let o = run(&mut clip_index(&index, &["index", "-q"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unavailable"), "{}", stderr(&o));
    // A second indexer is refused while another process holds the index's lock (this test
    // process plays the first indexer, so no timing is involved).
    let moved = dir.join("moved");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("index.sqlite.lock"))
        .unwrap();
    lock.lock().unwrap();
    let o = run(&mut clip_index(
        &index,
        &["index", moved.to_str().unwrap(), "-q"],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("being updated by another process"),
        "{}",
        stderr(&o)
    );
    drop(lock);
    index_ok(&index, &["index", moved.to_str().unwrap(), "-q"]);
}

#[test]
fn a_killed_indexer_loses_nothing_committed_and_resumes() {
    let dir = tmp("index-kill");
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..1500 {
        distinct_png(&lib.join(format!("k{i:04}.png")), &format!("kill{i}"));
    }
    let libs = lib.to_str().unwrap();
    let clean = dir.join("clean.sqlite");
    scan_json(&clean, &["index", libs, "-m", OPENAI]);
    let killed = dir.join("killed.sqlite");
    for (trial, ms) in [150u64, 400, 700].into_iter().enumerate() {
        let mut child = clip_index(&killed, &["index", libs, "-m", OPENAI, "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let status: serde_json::Value =
            serde_json::from_str(index_ok(&killed, &["index", "--status", "--json"]).trim())
                .unwrap_or_else(|_| serde_json::json!({"integrity": "ok", "indexed": 0}));
        assert_eq!(status["integrity"], "ok", "trial {trial}");
        eprintln!("trial {trial}: {} indexed when killed", status["indexed"]);
        // Files indexed means the folder is recorded: a plain `clip index` resumes.
        if status["indexed"].as_u64() > Some(0) {
            let canonical = lib.canonicalize().unwrap();
            assert_eq!(
                status["roots"],
                serde_json::json!([canonical.to_str().unwrap()])
            );
        }
    }
    let s = scan_json(&killed, &["index", libs]);
    assert_eq!(s["failed"], serde_json::json!([]));
    let summary = |i: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(index_ok(i, &["index", "--status", "--json"]).trim()).unwrap();
        for k in ["index", "bytes", "last_scan"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(summary(&killed), summary(&clean));
    // Same vectors: the same search results with the same scores.
    let q = ["search", "a horse", "-k", "1500", "--json"];
    assert_eq!(index_ok(&killed, &q), index_ok(&clean, &q));
}

#[test]
fn duplicates_groups_near_identical_photos() {
    let dir = tmp("duplicates");
    let lib = dir.join("lib");
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    std::fs::copy(fixtures().join("photos/horse.png"), lib.join("horse.png")).unwrap();
    std::fs::copy(
        fixtures().join("photos/horse.png"),
        lib.join("sub/copy.png"),
    )
    .unwrap();
    distinct_png(&lib.join("same-pixels.png"), "other bytes");
    std::fs::copy(fixtures().join("photos/rocket.jpg"), lib.join("rocket.jpg")).unwrap();
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    let out = index_ok(
        &index,
        &[
            "duplicates",
            libs,
            "-m",
            OPENAI,
            "--threshold",
            "0.9999",
            "--json",
            "-q",
        ],
    );
    let groups: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(groups.len(), 1, "{out}");
    let paths: Vec<&str> = groups[0]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let names: Vec<&str> = paths
        .iter()
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["horse.png", "same-pixels.png", "copy.png"]);
    assert!(groups[0]["min_score"].as_f64().unwrap() > 0.9999);
    let text = index_ok(&index, &["duplicates", libs, "--threshold", "0.9999"]);
    assert!(text.starts_with("# 3 images, similarity >= "), "{text}");
    // Identical files group even at 1 (rounding aside); a threshold out of range is refused.
    let exact = index_ok(&index, &["duplicates", libs, "--threshold", "1", "--json"]);
    assert_eq!(exact.lines().count(), 1, "{exact}");
    for bad in ["1.5", "0", "-1"] {
        let o = run(&mut clip_index(
            &index,
            &["duplicates", libs, "--threshold", bad],
        ));
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("between 0 and 1"), "{}", stderr(&o));
    }
    // Nothing that similar: exit 1, nothing printed.
    std::fs::remove_file(lib.join("sub/copy.png")).unwrap();
    std::fs::remove_file(lib.join("same-pixels.png")).unwrap();
    let o = run(&mut clip_index(&index, &["duplicates", libs, "-q"]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
}

#[test]
fn eval_and_index_inputs_that_are_wrong_say_so_early() {
    let dir = tmp("early-errors");
    // A training folder that is no class of the test split.
    let train = dir.join("train");
    for f in ["camera_man", "not_a_test_class"] {
        std::fs::create_dir_all(train.join(f)).unwrap();
        std::fs::copy(
            fixtures().join("photos/horse.png"),
            train.join(f).join("1.png"),
        )
        .unwrap();
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
    fails_with(
        &probe,
        1,
        "class folder \"not_a_test_class\" has no folder of that name",
    );
    // An output path that is a file: refused before any image is embedded.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let mut bad_out = args[..args.len() - 1].to_vec();
    bad_out.push(file.to_str().unwrap());
    fails_with(&bad_out, 1, "cannot create the output folder");
    fails_with(
        &["eval", "zeroshot", "--dataset", "x", "--train", "y"],
        2,
        "--linear-probe",
    );
    // Caption files: an unclosed quote, a missing images root.
    let csv = dir.join("c.csv");
    std::fs::write(&csv, "image,caption\na.png,\"unterminated\nb.png,more\n").unwrap();
    let c = csv.to_str().unwrap();
    fails_with(
        &["eval", "retrieval", "--captions", c, "-m", OPENAI],
        1,
        "spans lines",
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
    fails_with(&missing, 1, "--images-root nope is not a folder");
    // An empty cache variable is unset, not the current folder.
    let home = dir.join("home");
    let o = run(clip(&[
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
    let o = run(&mut clip_index(
        &dir.join("none.sqlite"),
        &["index", dir.join("nope").to_str().unwrap(), "-m", OPENAI],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such folder"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("--forget"), "{}", stderr(&o));
    assert!(!dir.join("none.sqlite").exists());
    std::fs::copy(fixtures().join("photos/horse.png"), lib.join("h.png")).unwrap();
    let index = dir.join("index.sqlite");
    scan_json(&index, &["index", lib.to_str().unwrap(), "-m", OPENAI]);
    // A folder added by mistake that never existed: no --forget hint.
    let o = run(&mut clip_index(
        &index,
        &["index", dir.join("never").to_str().unwrap(), "-q"],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("--forget"), "{}", stderr(&o));
    std::fs::remove_dir_all(&lib).unwrap();
    let o = run(&mut clip_index(&index, &["index", "-q"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("clip index --forget"), "{}", stderr(&o));
    let forgot = index_ok(&index, &["index", "--forget", lib.to_str().unwrap()]);
    assert!(forgot.contains(": 1 indexed file"), "{forgot}");
    let status = index_ok(&index, &["index", "--status", "--json"]);
    assert!(
        status.contains("\"indexed\":0") && status.contains("\"roots\":[]"),
        "{status}"
    );
    let o = run(&mut clip_index(
        &index,
        &["search", "x", "--weights", "nan"],
    ));
    assert!(stderr(&o).contains("is not a number"), "{}", stderr(&o));
}

#[test]
fn search_paths_with_a_newline_stay_whole_with_null() {
    let dir = tmp("index-newline");
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    distinct_png(&lib.join("two\nlines.png"), "x");
    let index = dir.join("index.sqlite");
    let s = scan_json(&index, &["index", lib.to_str().unwrap(), "-m", OPENAI]);
    assert_eq!(s["embedded"], 1);
    let whole = lib.canonicalize().unwrap().join("two\nlines.png");
    let o = run(&mut clip_index(&index, &["search", "a horse", "--paths"]));
    assert!(o.status.success());
    assert!(stderr(&o).contains("holds a newline"), "{}", stderr(&o));
    let o = run(&mut clip_index(&index, &["search", "a horse", "--null"]));
    assert_eq!(stdout(&o), format!("{}\0", whole.display()));
    assert_eq!(stderr(&o), "");
    // The model was named by a path relative to the test's folder: the index records it
    // absolute, so a search from anywhere finds it.
    let status: serde_json::Value =
        serde_json::from_str(index_ok(&index, &["index", "--status", "--json"]).trim()).unwrap();
    let model = fixtures().join(OPENAI).canonicalize().unwrap();
    assert_eq!(status["model"], model.to_str().unwrap());
}

#[test]
fn a_blank_index_file_left_by_a_killed_first_run_is_built_afresh() {
    let dir = tmp("index-blank");
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    distinct_png(&lib.join("a.png"), "blank");
    let index = dir.join("index.sqlite");
    std::fs::write(&index, b"").unwrap();
    // Searching it says what happened and what to do.
    let o = run(&mut clip_index(&index, &["search", "a horse"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("empty: a first `clip index` stopped"),
        "{}",
        stderr(&o)
    );
    // Indexing makes it an index.
    let s = scan_json(&index, &["index", lib.to_str().unwrap(), "-m", OPENAI]);
    assert_eq!(s["embedded"], 1);
    assert_eq!(
        index_ok(&index, &["search", "a horse", "--paths"])
            .lines()
            .count(),
        1
    );
}

//! `clip bench`: the report's rows and what it refuses.

use crate::{TestContext, OPENAI};

#[test]
fn bench_reports_every_row_as_json() {
    let context = TestContext::new();
    let out = context.ok(&[
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
    assert!(context.ok(&small).contains("\"tokens\":8"));
    // bf16 and the reference kernels are selectable and named in the report.
    let out = context.ok(&[
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
    let out = context.ok(&[
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
    let context = TestContext::new();
    let arch = ["bench", "--arch", "ViT-X/9", "--only", "tokenize"];
    context.fails_with(&arch, 2, "unknown architecture \"ViT-X/9\"");
    let photo = ["bench", "--only", "preprocess", "--photo", "nope.jpg"];
    context.fails_with(&photo, 2, "nope.jpg");
    context.fails_with(&["bench", "--precision", "fp8"], 2, "unknown precision");
}

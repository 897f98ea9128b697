//! `clip eval`: zero-shot, linear probe and retrieval against the reference's numbers.

use clip_test_support::{fixture, fixture_json, temp_dir};

use crate::{run, stderr, stdout, TestContext, OPENAI};

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
    let context = TestContext::new();
    let g = fixture_json("eval/goldens.json");
    let tmp = temp_dir();
    let dir = tmp.path();
    let out_dir = dir.join("out");
    let mut args = EVAL_ZEROSHOT.to_vec();
    args.extend(["--json", "--out", out_dir.to_str().unwrap()]);
    let o = run(&mut context.clip(&args));
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
    // A folder's images are those evaluated, its support in the table; the unreadable one is
    // counted apart (the user trial found 4 here, against a support of 3).
    let shuttle = &v["class_folders"][5];
    assert_eq!(shuttle["folder"], "n04266014");
    assert_eq!(
        (&shuttle["images"], &shuttle["skipped"]),
        (&3.into(), &1.into())
    );
    for (folder, class) in v["class_folders"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v["zero_shot"]["per_class"].as_array().unwrap())
    {
        assert_eq!(folder["images"], class["support"], "{folder}");
    }
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
    // The SVG names every class on both axes, with the axes and the scale.
    let svg = std::fs::read_to_string(out_dir.join("zeroshot_confusion.svg")).unwrap();
    for part in [
        "predicted class",
        "true class",
        "share of the true class's images",
    ]
    .iter()
    .chain(&labels)
    {
        assert!(svg.contains(part), "{part} missing from the SVG");
    }
    assert!(svg.contains("zero-shot confusion matrix"), "{svg}");
    // Each unreadable image is one warning that reads as a sentence.
    assert!(
        stderr(&o).contains("warning: skipped an image: ") && stderr(&o).contains("broken.png"),
        "{}",
        stderr(&o)
    );
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
    let v: serde_json::Value = serde_json::from_str(context.ok(&auto).trim()).unwrap();
    let sweep = v["linear_probe"]["report"]["sweep"].as_array().unwrap();
    assert!((16..=19).contains(&sweep.len()), "{sweep:?}");
    let c = v["linear_probe"]["report"]["c"].as_f64().unwrap();
    assert!(sweep.iter().any(|p| p["c"].as_f64() == Some(c)));
    context.fails_with(
        &["eval", "zeroshot", "--dataset", "x", "--probe-c", "0"],
        2,
        "positive number or auto",
    );
    // The text report.
    let mut args = EVAL_ZEROSHOT.to_vec();
    args.extend(["--out", out_dir.to_str().unwrap()]);
    insta::assert_snapshot!("eval_zeroshot_text", context.ok(&args));
}

#[test]
fn eval_retrieval_reports_recall_both_ways() {
    let context = TestContext::new();
    let g = fixture_json("eval/goldens.json");
    let args = [
        "eval",
        "retrieval",
        "--captions",
        "eval/captions.csv",
        "-m",
        OPENAI,
    ];
    insta::assert_snapshot!("eval_retrieval_text", context.ok(&args));
    let mut json_args = args.to_vec();
    json_args.extend(["--json", "--recall-at", "1,5,10"]);
    let v: serde_json::Value = serde_json::from_str(context.ok(&json_args).trim()).unwrap();
    let recall = v["report"]["recall"].as_array().unwrap();
    assert_eq!(recall, g["retrieval"]["recall"].as_array().unwrap());
    assert_eq!(v["report"]["captions"], g["retrieval"]["captions"]);
    assert_eq!(v["report"]["warnings"], serde_json::json!([]));
    // A k as large as the number of images is 1 by definition: a warning says so.
    let mut big = args.to_vec();
    big.extend(["--recall-at", "1,15,50"]);
    let o = run(&mut context.clip(&big));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: recall@15 with 15 images is 1 by definition (text->image)\n")
            && err.contains(
                "warning: recall@50 with 15 images and 21 captions is 1 by definition, both ways\n"
            )
            && !err.contains("recall@1 "),
        "{err}"
    );
    assert!(
        stdout(&o).contains("\n50                1.0000        1.0000\n"),
        "{}",
        stdout(&o)
    );
}

/// Caption files with the headers of Hugging Face's ImageFolder (`file_name,text`) and of COCO
/// conversions (`image,caption`) give the numbers the fixture's own header gives.
#[test]
fn eval_retrieval_reads_common_caption_headers() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let original = std::fs::read_to_string(fixture("eval/captions.csv")).unwrap();
    let recall = |file: &std::path::Path| {
        let out = context.ok(&[
            "eval",
            "retrieval",
            "--captions",
            file.to_str().unwrap(),
            "--images-root",
            fixture("eval").to_str().unwrap(),
            "-m",
            OPENAI,
            "--json",
            "-q",
        ]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        (
            v["report"]["recall"].clone(),
            v["report"]["captions"].clone(),
        )
    };
    let reference = recall(&fixture("eval/captions.csv"));
    for header in ["file_name,text", "image,caption", "Image_Path,Sentence"] {
        let f = tmp.path().join("metadata.csv");
        std::fs::write(&f, original.replacen("filepath,title", header, 1)).unwrap();
        assert_eq!(recall(&f), reference, "{header}");
    }
    let f = tmp.path().join("odd.csv");
    std::fs::write(
        &f,
        original.replacen("filepath,title", "file_name,caption_en", 1),
    )
    .unwrap();
    let o = run(&mut context.clip(&[
        "eval",
        "retrieval",
        "--captions",
        f.to_str().unwrap(),
        "-m",
        OPENAI,
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("row 1 looks like a header")
            && stderr(&o).contains("no caption column"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_errors_name_the_dataset_and_the_files() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
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
    context.fails_with(
        &refs(&zeroshot(&["--dataset", "nope"])),
        2,
        "nope: no such folder",
    );
    context.fails_with(
        &refs(&zeroshot(&["--dataset", "photos"])),
        2,
        "photos: no class folders",
    );
    // Three labels for six folders that do not match by name.
    context.fails_with(
        &refs(&zeroshot(&[
            "--dataset",
            "eval/imagefolder/test",
            "--labels",
            "a,b,c",
        ])),
        2,
        "3 labels for 6 class folders",
    );
    let map = dir.join("map.txt");
    std::fs::write(&map, "coins\tcoins\n").unwrap();
    context.fails_with(
        &refs(&zeroshot(&[
            "--dataset",
            "eval/imagefolder/test",
            "--mapping",
            map.to_str().unwrap(),
        ])),
        2,
        "has no label for class folder \"camera_man\"",
    );
    context.fails_with(
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
    context.fails_with(&refs(&retrieval("missing.csv")), 2, "missing.csv");
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "image,caption\njust-one-field\n").unwrap();
    context.fails_with(&refs(&retrieval(bad.to_str().unwrap())), 2, "row 2");
    // Folder labels by name: labels in another order still land on the right folders.
    let ok_dir = dir.join("named");
    for (folder, file) in [("cat", "photos/chelsea.png"), ("horse", "photos/horse.png")] {
        std::fs::create_dir_all(ok_dir.join(folder)).unwrap();
        std::fs::copy(fixture(file), ok_dir.join(folder).join("1.png")).unwrap();
    }
    let v: serde_json::Value = serde_json::from_str(
        context
            .ok(&refs(&zeroshot(&[
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

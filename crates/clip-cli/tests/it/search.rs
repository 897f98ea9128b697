//! `clip search` output that must stay unambiguous.

use clip_test_support::{fixture, temp_dir};

use crate::{distinct_png, run, stderr, stdout, TestContext, OPENAI};

#[test]
fn search_paths_with_a_newline_stay_whole_with_null() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    distinct_png(&lib.join("two\nlines.png"), "x");
    let index = dir.join("index.sqlite");
    let s = context.scan_json(&index, &["index", lib.to_str().unwrap(), "-m", OPENAI]);
    assert_eq!(s["embedded"], 1);
    let whole = lib.canonicalize().unwrap().join("two\nlines.png");
    let o = run(&mut context.clip_index(&index, &["search", "a horse", "--paths"]));
    assert!(o.status.success());
    assert!(stderr(&o).contains("holds a newline"), "{}", stderr(&o));
    let o = run(&mut context.clip_index(&index, &["search", "a horse", "--null"]));
    assert_eq!(stdout(&o), format!("{}\0", whole.display()));
    assert_eq!(stderr(&o), "");
    // The model was named by a path relative to the test's folder: the index records it
    // absolute, so a search from anywhere finds it.
    let status: serde_json::Value = serde_json::from_str(
        context
            .index_ok(&index, &["index", "--status", "--json"])
            .trim(),
    )
    .unwrap();
    let model = fixture(OPENAI).canonicalize().unwrap();
    assert_eq!(status["model"], model.to_str().unwrap());
}

/// An empty result says so: the best score when --min-score left everything out, and that
/// the index is empty when it is; options written after `--` are refused, not searched for.
#[test]
fn empty_results_and_options_after_the_separator_are_explained() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    distinct_png(&lib.join("a.png"), "a");
    distinct_png(&lib.join("b.png"), "b");
    let index = tmp.path().join("index.sqlite");
    context.scan_json(&index, &["index", lib.to_str().unwrap(), "-m", OPENAI]);
    let o = run(&mut context.clip_index(&index, &["search", "a horse", "--json"]));
    let best: f64 = stdout(&o)
        .lines()
        .next()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["score"]
                .as_f64()
                .unwrap()
        })
        .unwrap();
    let o = run(&mut context.clip_index(&index, &["search", "a horse", "--min-score", "0.999"]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        format!("no results: the best match scores {best:.4}, below --min-score 0.999\n")
    );
    // Words to avoid keep the score scale: the mean over the index is the plain query's.
    let scores = |args: &[&str]| -> Vec<f64> {
        let out = stdout(&run(&mut context.clip_index(&index, args)));
        out.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["score"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let plain = scores(&["search", "a horse", "--json"]);
    let avoiding = scores(&["search", "a horse -rocket", "--json"]);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert_eq!((plain.len(), avoiding.len()), (2, 2));
    assert!(
        (mean(&plain) - mean(&avoiding)).abs() < 1e-4,
        "{plain:?} {avoiding:?}"
    );
    // A -word after `--` is a word to avoid; an option there is refused.
    let o = run(&mut context.clip_index(&index, &["search", "--", "-people a horse"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&mut context.clip_index(&index, &["search", "--", "-people beach", "-k", "3"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("\"-k\" comes after \"--\"")
            && stderr(&o).contains("clip search -k 3 --"),
        "{}",
        stderr(&o)
    );
    // An index without images.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let index2 = tmp.path().join("empty.sqlite");
    context.scan_json(&index2, &["index", empty.to_str().unwrap(), "-m", OPENAI]);
    let o = run(&mut context.clip_index(&index2, &["search", "a horse"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no results: the index") && stderr(&o).contains("holds no images"),
        "{}",
        stderr(&o)
    );
}

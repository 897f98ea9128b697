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

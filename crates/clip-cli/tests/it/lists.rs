//! `clip lists` and `clip cache`: built-in class lists and the label cache.

use clip_test_support::temp_dir;

use crate::{run, stderr, stdout, TestContext, OPENAI};

#[test]
fn built_in_lists_are_listed_and_printed() {
    let context = TestContext::new();
    insta::assert_snapshot!("lists", context.ok(&["lists"]));
    let food = context.ok(&["lists", "food101"]);
    assert_eq!(food.lines().count(), 101);
    assert_eq!(food.lines().next(), Some("apple pie"));
    assert_eq!(
        context.ok(&["lists", "food101", "--templates"]),
        "a photo of {}, a type of food.\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(context.ok(&["lists", "--json"]).trim()).unwrap();
    assert_eq!(v[0]["name"], "imagenet");
    assert_eq!(v[0]["templates"], 80);
    context.fails_with(&["lists", "fer2013"], 2, "no built-in list \"fer2013\"");
}

#[test]
fn the_label_cache_is_listed_and_cleared() {
    let context = TestContext::new();
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    let with_cache = |args: &[&str]| {
        let o = run(context.clip(args).env("CLIP_CACHE_DIR", cache));
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
    assert!(
        listed.contains(": 1 cached classifier, 1 unusable, ")
            && listed.contains("unusable entry")
            && listed.contains("damaged: not a classifier file"),
        "{listed}"
    );
    std::fs::remove_file(classifiers.join("0000000000000000.classifier")).unwrap();
    // One class and one template read in the singular.
    with_cache(&[
        "classify",
        "photos/chelsea.png",
        "--labels",
        "cat",
        "-m",
        OPENAI,
    ]);
    let listed = with_cache(&["cache"]);
    assert!(
        listed.contains(": 2 cached classifiers, ")
            && listed.contains("  1 class x 1 template (cat)  ")
            && listed.contains("  4 classes x 1 template (cat, dog, car, …)  "),
        "{listed}"
    );
    let cleared = with_cache(&["cache", "--clear"]);
    assert!(
        cleared.starts_with("removed 2 files of label embeddings "),
        "{cleared}"
    );
    assert!(with_cache(&["cache"]).contains("0 cached classifiers"));
}

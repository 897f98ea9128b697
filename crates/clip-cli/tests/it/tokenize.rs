//! `clip tokenize`.

use crate::{run, stderr, TestContext};

#[test]
fn tokenize_prints_ids() {
    let context = TestContext::new();
    let out = context.ok(&["tokenize", "a photo of a dog", "It’s ﬁne &amp; ＯＫ"]);
    insta::assert_snapshot!(out);
    let json = context.ok(&[
        "tokenize",
        "--json",
        "--pad",
        "--context-length",
        "8",
        "a photo of a dog",
    ]);
    insta::assert_snapshot!("tokenize_json", json);
    let o = run(&mut context.clip(&["tokenize", "--context-length", "4", "a photo of a dog"]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: text needs 7 tokens but the context length is 4"),
        "{err}"
    );
    assert!(err.contains("hint: pass --truncate"), "{err}");
    let literal = context.ok(&["tokenize", "<end_of_text> hi"]);
    assert_eq!(literal.trim(), "49406 49407 1883 49407");
    let cut = context.ok(&[
        "tokenize",
        "--context-length",
        "4",
        "--truncate",
        "a photo of a dog",
    ]);
    assert_eq!(cut.trim(), "49406 320 1125 49407");
}

//! `--help` of every command, as snapshots.

use crate::TestContext;

#[test]
fn help_texts() {
    let context = TestContext::new();
    insta::assert_snapshot!("help", context.ok(&["--help"]));
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
        insta::assert_snapshot!(format!("help_{cmd}"), context.ok(&[cmd, "--help"]));
    }
    for sub in ["zeroshot", "retrieval"] {
        insta::assert_snapshot!(
            format!("help_eval_{sub}"),
            context.ok(&["eval", sub, "--help"])
        );
    }
}

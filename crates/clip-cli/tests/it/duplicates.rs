//! `clip duplicates`.

use clip_test_support::{fixture, temp_dir};

use crate::{distinct_png, run, stderr, stdout, TestContext, OPENAI};

#[test]
fn duplicates_groups_near_identical_photos() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    std::fs::copy(fixture("photos/horse.png"), lib.join("horse.png")).unwrap();
    std::fs::copy(fixture("photos/horse.png"), lib.join("sub/copy.png")).unwrap();
    distinct_png(&lib.join("same-pixels.png"), "other bytes");
    std::fs::copy(fixture("photos/rocket.jpg"), lib.join("rocket.jpg")).unwrap();
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    let out = context.index_ok(
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
    let text = context.index_ok(&index, &["duplicates", libs, "--threshold", "0.9999"]);
    assert!(text.starts_with("# 3 images, similarity >= "), "{text}");
    // Identical files group even at 1 (rounding aside); a threshold out of range is refused.
    let exact = context.index_ok(&index, &["duplicates", libs, "--threshold", "1", "--json"]);
    assert_eq!(exact.lines().count(), 1, "{exact}");
    for bad in ["1.5", "0", "-1"] {
        let o = run(&mut context.clip_index(&index, &["duplicates", libs, "--threshold", bad]));
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("between 0 and 1"), "{}", stderr(&o));
    }
    // Nothing that similar: exit 1, nothing printed.
    std::fs::remove_file(lib.join("sub/copy.png")).unwrap();
    std::fs::remove_file(lib.join("same-pixels.png")).unwrap();
    let o = run(&mut context.clip_index(&index, &["duplicates", libs, "-q"]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
}

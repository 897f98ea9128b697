//! `clip duplicates`: what is grouped and how it is shown, links, identical files, and which
//! folders enter the index.

use std::path::Path;

use clip_test_support::{fixture, temp_dir};

use crate::{distinct_png, run, stderr, stdout, TestContext, OPENAI};

/// Sets a file's modification time to a fixed moment, so the output is the same every run.
#[cfg(unix)]
fn set_time(path: &Path, secs: u64) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn status(context: &TestContext, index: &Path) -> serde_json::Value {
    let out = context.index_ok(index, &["index", "--status", "--json"]);
    serde_json::from_str(out.trim()).unwrap()
}

fn groups(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn member_names(group: &serde_json::Value) -> Vec<String> {
    group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = m["path"].as_str().unwrap();
            p.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn duplicates_marks_identical_files_and_never_counts_a_link_as_a_copy() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let lib = dir.join("lib");
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    std::fs::copy(fixture("photos/horse.png"), lib.join("horse.png")).unwrap();
    std::fs::copy(fixture("photos/horse.png"), lib.join("sub/copy.png")).unwrap();
    distinct_png(&lib.join("same-pixels.png"), "other bytes");
    std::fs::copy(fixture("photos/rocket.jpg"), lib.join("rocket.jpg")).unwrap();
    // Other names of files: never copies. The rocket has no copy, only names.
    std::os::unix::fs::symlink(lib.join("horse.png"), lib.join("link.png")).unwrap();
    std::os::unix::fs::symlink(lib.join("rocket.jpg"), lib.join("rocket-link.jpg")).unwrap();
    std::fs::hard_link(lib.join("rocket.jpg"), lib.join("rocket-hard.jpg")).unwrap();
    for (i, f) in ["horse.png", "sub/copy.png", "same-pixels.png", "rocket.jpg"]
        .iter()
        .enumerate()
    {
        set_time(&lib.join(f), 1_700_000_000 + 3600 * i as u64);
    }
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    context.index_ok(&index, &["index", libs, "-m", OPENAI, "-q"]);
    let args = ["duplicates", libs, "--threshold", "0.9999"];
    let text = context.index_ok(&index, &[&args[..], &["-q"]].concat());
    insta::assert_snapshot!(text.replace(dir.to_str().unwrap(), "[DIR]"));
    let out = context.index_ok(&index, &[&args[..], &["--json"]].concat());
    let found = groups(&out);
    assert_eq!(found.len(), 1, "{out}");
    let g = &found[0];
    assert_eq!(
        member_names(g),
        ["horse.png", "same-pixels.png", "copy.png"]
    );
    assert!(g["min_similarity"].as_f64().unwrap() > 0.9999);
    let m = g["members"].as_array().unwrap();
    let path = |rel: &str| lib.join(rel).to_str().unwrap().to_string();
    assert_eq!(m[0]["representative"], true);
    assert_eq!(m[0]["links"], serde_json::json!([path("link.png")]));
    assert_eq!(m[1]["identical_to"], serde_json::Value::Null);
    assert_eq!(m[2]["identical_to"], serde_json::json!(path("horse.png")));
    let horse_bytes = std::fs::metadata(fixture("photos/horse.png"))
        .unwrap()
        .len();
    assert_eq!(m[2]["bytes"], horse_bytes);
    assert_eq!(m[2]["modified"], "2023-11-14T23:13:20Z");
    assert!(m[2]["width"].as_u64().unwrap() > 0 && m[2]["height"].as_u64().unwrap() > 0);
    // Identical files group even at 1 (rounding aside); a threshold out of range is refused.
    let libs = lib.to_str().unwrap();
    let exact = context.index_ok(&index, &["duplicates", libs, "--threshold", "1", "--json"]);
    assert_eq!(exact.lines().count(), 1, "{exact}");
    for bad in ["1.5", "0", "-1"] {
        let o = run(&mut context.clip_index(&index, &["duplicates", libs, "--threshold", bad]));
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains(&format!(
                "error: threshold {bad} is not a similarity above 0"
            )),
            "{}",
            stderr(&o)
        );
    }
    // The link's target alone: no duplicates (its links are no copies): exit 1, and stderr
    // says what was compared (silence at a terminal looks like a hang).
    std::fs::remove_file(lib.join("sub/copy.png")).unwrap();
    std::fs::remove_file(lib.join("same-pixels.png")).unwrap();
    let o = run(&mut context.clip_index(&index, &["duplicates", libs, "-q"]));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // The scan dropped the two files from the index first, and says so.
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(
        err.starts_with("updated the index first: ")
            && err.contains(" 2 removed\n")
            && err.ends_with("\nno duplicates: none among 5 photos at --threshold 0.95\n"),
        "{err}"
    );
}

#[test]
fn duplicates_of_a_folder_outside_the_index_leave_the_index_alone() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let (lib, other) = (dir.join("lib"), dir.join("other"));
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(fixture("photos/horse.png"), lib.join("sub/horse.png")).unwrap();
    std::fs::copy(fixture("photos/rocket.jpg"), lib.join("rocket.jpg")).unwrap();
    std::fs::copy(fixture("photos/chelsea.png"), other.join("cat.png")).unwrap();
    std::fs::copy(fixture("photos/chelsea.png"), other.join("cat-2.png")).unwrap();
    let index = dir.join("index.sqlite");
    let (libs, others) = (lib.to_str().unwrap(), other.to_str().unwrap());
    let exact = ["--threshold", "0.9999", "--json", "-q"];

    // No index yet: the folder is embedded for this run, and no index is made.
    let out = context.index_ok(
        &index,
        &[&["duplicates", others, "-m", OPENAI][..], &exact].concat(),
    );
    assert_eq!(member_names(&groups(&out)[0]), ["cat-2.png", "cat.png"]);
    assert!(!index.exists(), "duplicates made an index");

    // An index of lib: a folder elsewhere does not enter it.
    context.index_ok(&index, &["index", libs, "-m", OPENAI, "-q"]);
    let out = context.index_ok(&index, &[&["duplicates", others][..], &exact].concat());
    assert_eq!(groups(&out).len(), 1, "{out}");
    let s = status(&context, &index);
    assert_eq!(s["roots"], serde_json::json!([libs]));
    assert_eq!(s["indexed"], 2);

    // A subfolder of lib is brought up to date in the index, which keeps its folders.
    std::fs::copy(fixture("photos/horse.png"), lib.join("sub/horse-2.png")).unwrap();
    let sub = lib.join("sub");
    let out = context.index_ok(
        &index,
        &[&["duplicates", sub.to_str().unwrap()][..], &exact].concat(),
    );
    assert_eq!(member_names(&groups(&out)[0]), ["horse-2.png", "horse.png"]);
    let s = status(&context, &index);
    assert_eq!(s["roots"], serde_json::json!([libs]));
    assert_eq!(s["indexed"], 3);

    // Both folders at once (one indexed, one not), and a folder holding the index's: groups
    // from both, the index's folders unchanged.
    for folders in [vec![libs, others], vec![dir.to_str().unwrap()]] {
        let out = context.index_ok(&index, &[&["duplicates"][..], &folders, &exact].concat());
        let names: Vec<Vec<String>> = groups(&out).iter().map(member_names).collect();
        assert_eq!(
            names,
            [["horse-2.png", "horse.png"], ["cat-2.png", "cat.png"]],
            "{folders:?}"
        );
    }
    let s = status(&context, &index);
    assert_eq!(s["roots"], serde_json::json!([libs]));
    assert_eq!(s["indexed"], 3);

    // --no-scan: the index as it is, without a model (a model that does not exist is never
    // loaded); photos added since are not seen. A folder outside the index is refused.
    std::fs::copy(fixture("photos/rocket.jpg"), lib.join("rocket-2.jpg")).unwrap();
    let no_scan = [
        "duplicates",
        "--no-scan",
        "-m",
        "no/such-model",
        "--threshold",
        "0.9999",
    ];
    let o = run(&mut context.clip_index(&index, &[&no_scan[..], &["--json"]].concat()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The model given is not used, and the user is told so.
    assert!(
        stderr(&o).contains("warning: --no-scan compares the vectors the index holds, made by ")
            && stderr(&o).contains("the model no/such-model is not used"),
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert_eq!(groups(&out).len(), 1, "{out}");
    assert_eq!(member_names(&groups(&out)[0]), ["horse-2.png", "horse.png"]);
    let o = run(&mut context.clip_index(&index, &[&no_scan[..], &[others]].concat()));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("error: {others} is not in the index")),
        "{err}"
    );
    assert!(err.contains("hint: leave out --no-scan"), "{err}");
    let o =
        run(&mut context.clip_index(&index, &["duplicates", "--no-scan", "--allow-mass-delete"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(status(&context, &index)["indexed"], 3);
}

#[test]
fn duplicates_never_adds_what_the_exclusions_leave_out_and_keeps_no_run_pattern() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let lib = dir.join("lib");
    for d in ["@eaDir/a.png", "2019/journey", "junk"] {
        std::fs::create_dir_all(lib.join(d)).unwrap();
    }
    std::fs::copy(fixture("photos/horse.png"), lib.join("a.png")).unwrap();
    // A NAS thumbnail: the same picture, other bytes.
    distinct_png(&lib.join("@eaDir/a.png/SYNOPHOTO_THUMB_XL.png"), "thumb");
    distinct_png(&lib.join("2019/one.png"), "one");
    distinct_png(&lib.join("2019/journey/two.png"), "two");
    distinct_png(&lib.join("junk/j.png"), "junk");
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    context.index_ok(&index, &["index", libs, "-m", OPENAI, "-q"]);
    let junk = lib.join("junk");
    context.index_ok(&index, &["index", "--forget", junk.to_str().unwrap()]);
    let before = status(&context, &index);
    assert_eq!(before["indexed"], 3, "{before}");
    // The default exclusion's folder and the forgotten one are compared for this run only.
    for folder in [lib.join("@eaDir"), junk.clone()] {
        let o = run(&mut context.clip_index(
            &index,
            &["duplicates", folder.to_str().unwrap(), "-q", "--json"],
        ));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("none among 1 photo"), "{}", stderr(&o));
        assert_eq!(status(&context, &index)["indexed"], 3);
    }
    // Compared with the library, the thumbnail groups with its photo; still nothing added.
    let out = context.index_ok(
        &index,
        &[
            "duplicates",
            libs,
            lib.join("@eaDir").to_str().unwrap(),
            "--json",
            "--threshold",
            "0.99",
        ],
    );
    let found = groups(&out);
    assert!(
        found
            .iter()
            .any(|g| member_names(g).contains(&"SYNOPHOTO_THUMB_XL.png".to_string())),
        "{out}"
    );
    assert_eq!(status(&context, &index)["indexed"], 3);
    // --no-scan says why such a folder is not in the index.
    context.fails_with(
        &[
            "duplicates",
            "--no-scan",
            lib.join("@eaDir").to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
        ],
        2,
        "its exclusion \"@eaDir\" leaves it out",
    );
    // --exclude holds for this run only: the index keeps its exclusions and its photos.
    let o = run(&mut context.clip_index(
        &index,
        &[
            "duplicates",
            lib.join("2019").to_str().unwrap(),
            "--exclude",
            "journey",
            "--threshold",
            "0.99",
        ],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("none among 1 photo"), "{}", stderr(&o));
    let after = status(&context, &index);
    assert_eq!(after["indexed"], 3, "{after}");
    assert_eq!(after["excludes"], before["excludes"]);
    // Without it, journey's photo is compared again.
    let out = context.index_ok(
        &index,
        &[
            "duplicates",
            lib.join("2019").to_str().unwrap(),
            "--json",
            "--threshold",
            "0.99",
        ],
    );
    assert_eq!(groups(&out).len(), 1, "{out}");
}

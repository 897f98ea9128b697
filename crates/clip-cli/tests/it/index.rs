//! `clip index`: incremental scans, the guards against another model, mass deletion and a second writer, and recovery from a killed run.

use std::path::Path;

use clip_test_support::{copy_model, fine_tune_in_place, fixture, temp_dir};

use crate::{distinct_png, run, stderr, stdout, TestContext, OPENAI};

#[test]
fn index_is_incremental_and_search_finds_what_embed_computes() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(lib.join("sub")).unwrap();
    for f in ["chelsea.png", "coins.png", "camera.png"] {
        std::fs::copy(fixture("photos").join(f), lib.join(f)).unwrap();
    }
    std::fs::copy(fixture("photos/rocket.jpg"), lib.join("sub/rocket.jpg")).unwrap();
    std::fs::write(lib.join("broken.jpg"), "<html>no</html>").unwrap();
    std::fs::write(lib.join("notes.txt"), "not an image").unwrap();
    let index = dir.join("idx/index.sqlite");
    let libs = lib.to_str().unwrap();
    let s = context.scan_json(&index, &["index", libs, "-m", OPENAI]);
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
    let s = context.scan_json(&index, &["index", libs]);
    assert_eq!(
        (&s["unchanged"], &s["failed_before"], &s["embedded"]),
        (&4.into(), &1.into(), &0.into())
    );
    // Rename, copy, edit, delete, fix the broken file.
    std::fs::rename(lib.join("coins.png"), lib.join("sub/coins-renamed.png")).unwrap();
    std::fs::copy(lib.join("chelsea.png"), lib.join("chelsea-copy.png")).unwrap();
    std::fs::copy(fixture("photos/horse.png"), lib.join("camera.png")).unwrap();
    std::fs::remove_file(lib.join("sub/rocket.jpg")).unwrap();
    std::fs::copy(fixture("photos/rocket.jpg"), lib.join("broken.jpg")).unwrap();
    let s = context.scan_json(&index, &["index"]);
    // The rename and the fixed file (now the content of the deleted rocket.jpg) moved, the
    // copy reuses a vector; the edit is embedded; nothing is removed (both gone paths moved).
    assert_eq!(
        (
            &s["moved"],
            &s["reused"],
            &s["embedded"],
            &s["unchanged"],
            &s["removed"]
        ),
        (&2.into(), &1.into(), &1.into(), &1.into(), &0.into()),
        "{s}"
    );
    assert_eq!(s["failed"], serde_json::json!([]));
    let status: serde_json::Value = serde_json::from_str(
        context
            .index_ok(&index, &["index", "--status", "--json"])
            .trim(),
    )
    .unwrap();
    assert_eq!(
        (&status["indexed"], &status["vectors"]),
        (&5.into(), &4.into())
    );
    assert_eq!(status["integrity"], "ok");
    assert_eq!(status["failed"], serde_json::json!([]));
    // Search: the scores are the cosines `clip embed` gives, best first, ties in path order.
    let hits: Vec<serde_json::Value> = context
        .index_ok(&index, &["search", "a cat", "-k", "5", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 5);
    let text = context.ok(&["embed", "--text", "a cat", "-m", OPENAI]);
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
            let e = context.ok(&["embed", "--image", path, "-m", OPENAI]);
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
    let paths = context.index_ok(&index, &["search", "a cat", "-k", "2", "--paths"]);
    assert_eq!(paths.lines().count(), 2);
    assert!(paths.lines().all(|l| Path::new(l).is_absolute()));
    let null = context.index_ok(&index, &["search", "a cat", "-k", "2", "-0"]);
    assert_eq!(null, paths.replace('\n', "\0"));
    let o = run(&mut context.clip_index(&index, &["search", "a cat", "--min-score", "0.99"]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let o = run(&mut context.clip_index(&index, &["search", "a cat", "--weights", "1,2"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("2 weights for 1 query terms"),
        "{}",
        stderr(&o)
    );
    // Terms that cancel out leave nothing to look for.
    let o = run(&mut context.clip_index(&index, &["search", "cat -cat"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cancel out"), "{}", stderr(&o));
    // A folder inside another indexed root is not counted twice.
    let sub = lib.join("sub");
    let s = context.scan_json(&index, &["index", libs, sub.to_str().unwrap()]);
    assert_eq!(
        (&s["files"], &s["unchanged"]),
        (&5.into(), &5.into()),
        "{s}"
    );
    // Text and image together, and a negative word.
    let both = context.index_ok(
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
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..15 {
        distinct_png(&lib.join(format!("h{i:02}.png")), &format!("guard{i}"));
    }
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    context.scan_json(&index, &["index", libs, "-m", OPENAI]);
    // Another model: refused, naming both, with the way out.
    let o = run(&mut context.clip_index(&index, &["index", libs, "-m", "models/tiny-laion"]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("tiny-openai") && err.contains("tiny-laion") && err.contains("delete"),
        "{err}"
    );
    let o = run(&mut context.clip_index(&index, &["search", "x", "-m", "models/tiny-laion"]));
    assert!(
        stderr(&o).contains("was built with model"),
        "{}",
        stderr(&o)
    );
    // Without --model, search uses the index's model.
    context.index_ok(&index, &["search", "a horse", "-k", "1"]);
    // Most files gone: refused, nothing deleted; then allowed.
    for i in 0..11 {
        std::fs::remove_file(lib.join(format!("h{i:02}.png"))).unwrap();
    }
    let o = run(&mut context.clip_index(&index, &["index", "-q"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--allow-mass-delete"), "{}", stderr(&o));
    let status = context.index_ok(&index, &["index", "--status", "--json"]);
    assert!(status.contains("\"indexed\":15"), "{status}");
    let s = context.scan_json(&index, &["index", "--allow-mass-delete"]);
    assert_eq!(s["removed"], 11);
    // The root itself gone: refused.
    std::fs::rename(&lib, dir.join("moved")).unwrap();
    let o = run(&mut context.clip_index(&index, &["index", "-q"]));
    assert_eq!(o.status.code(), Some(2));
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
    let o = run(&mut context.clip_index(&index, &["index", moved.to_str().unwrap(), "-q"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("being updated by another process"),
        "{}",
        stderr(&o)
    );
    drop(lock);
    context.index_ok(&index, &["index", moved.to_str().unwrap(), "-q"]);
}

#[test]
fn a_killed_indexer_loses_nothing_committed_and_resumes() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..1500 {
        distinct_png(&lib.join(format!("k{i:04}.png")), &format!("kill{i}"));
    }
    let libs = lib.to_str().unwrap();
    let clean = dir.join("clean.sqlite");
    context.scan_json(&clean, &["index", libs, "-m", OPENAI]);
    let killed = dir.join("killed.sqlite");
    for (trial, ms) in [150u64, 400, 700].into_iter().enumerate() {
        let mut child = context
            .clip_index(&killed, &["index", libs, "-m", OPENAI, "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Killed before the index file was made (on a busy machine the model may not even
        // be read by then): nothing to check but the resume below.
        let o = run(&mut context.clip_index(&killed, &["index", "--status", "--json"]));
        if !o.status.success() {
            let err = stderr(&o);
            assert!(
                err.contains("no index at") || err.contains("is empty: a first indexing run"),
                "trial {trial}: {err}"
            );
            eprintln!("trial {trial}: killed before the index was made");
            continue;
        }
        let status: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
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
    let s = context.scan_json(&killed, &["index", libs]);
    assert_eq!(s["failed"], serde_json::json!([]));
    let summary = |i: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(context.index_ok(i, &["index", "--status", "--json"]).trim())
                .unwrap();
        for k in ["index", "bytes", "last_scan"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(summary(&killed), summary(&clean));
    // Same vectors: the same search results with the same scores.
    let q = ["search", "a horse", "-k", "1500", "--json"];
    assert_eq!(context.index_ok(&killed, &q), context.index_ok(&clean, &q));
}

#[test]
fn a_blank_index_file_left_by_a_killed_first_run_is_built_afresh() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    distinct_png(&lib.join("a.png"), "blank");
    let index = dir.join("index.sqlite");
    std::fs::write(&index, b"").unwrap();
    // Searching it says what happened and what to do.
    let o = run(&mut context.clip_index(&index, &["search", "a horse"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is empty: a first indexing run stopped before it made anything")
            && stderr(&o).contains("hint: index a folder into it to build it afresh"),
        "{}",
        stderr(&o)
    );
    // Indexing makes it an index.
    let s = context.scan_json(&index, &["index", lib.to_str().unwrap(), "-m", OPENAI]);
    assert_eq!(s["embedded"], 1);
    assert_eq!(
        context
            .index_ok(&index, &["search", "a horse", "--paths"])
            .lines()
            .count(),
        1
    );
}

#[test]
fn weights_fine_tuned_in_place_are_refused_like_another_model() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let model = dir.join("model");
    copy_model("tiny-openai", &model);
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    distinct_png(&lib.join("a.png"), "swap");
    let index = dir.join("index.sqlite");
    let s = context.scan_json(
        &index,
        &[
            "index",
            lib.to_str().unwrap(),
            "-m",
            model.to_str().unwrap(),
        ],
    );
    assert_eq!(s["embedded"], 1);
    // The digest of the weights is taken once (the whole file is read) and kept with the
    // files' stamps in the cache; the next run finds it there.
    let digests = context.home.path().join("clip-cache/weights");
    assert_eq!(std::fs::read_dir(&digests).unwrap().count(), 1);
    let o = run(context
        .clip_index(&index, &["index", "-q"])
        .env("CLIP_LOG", "info"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("took the digest"), "{}", stderr(&o));
    // Same names, shapes and file size; other values; even the modification time put back
    // (as `touch -r` or a copy that keeps times does).
    let weights = model.join("model.safetensors");
    let mtime = std::fs::metadata(&weights).unwrap().modified().unwrap();
    fine_tune_in_place(&weights, 1e-3);
    std::fs::File::options()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    for args in [&["index", "-q"][..], &["search", "a horse"]] {
        let o = run(&mut context.clip_index(&index, args));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains("was built with model")
                && err.contains("files changed since the index was built"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn scans_and_searches_read_only_the_towers_they_need() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    distinct_png(&lib.join("a.png"), "towers");
    let index = dir.join("index.sqlite");
    // The towers read, as the info log tells them.
    let towers = |args: &[&str]| {
        let o = run(context.clip_index(&index, args).env("CLIP_LOG", "info"));
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        let mut read: Vec<&str> = ["image", "text"]
            .into_iter()
            .filter(|t| err.contains(&format!("loaded the {t} tower")))
            .collect();
        read.sort();
        read
    };
    let libs = lib.to_str().unwrap();
    assert_eq!(towers(&["index", libs, "-m", OPENAI, "-q"]), ["image"]);
    // Nothing new: no tower.
    assert_eq!(towers(&["index", "-q"]), Vec::<&str>::new());
    // A text: the text tower; an indexed photo: none; another photo: the image tower.
    assert_eq!(towers(&["search", "a horse"]), ["text"]);
    let indexed = lib.join("a.png");
    assert_eq!(
        towers(&["search", "--image", indexed.to_str().unwrap()]),
        Vec::<&str>::new()
    );
    let other = fixture("photos/rocket.jpg");
    assert_eq!(
        towers(&["search", "--image", other.to_str().unwrap()]),
        ["image"]
    );
    assert_eq!(
        towers(&["search", "a rocket", "--image", other.to_str().unwrap()]),
        ["image", "text"]
    );
}

#[test]
fn exclusions_are_kept_forget_sticks_and_counts_name_what_was_skipped() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    for (i, f) in [
        "a.png",
        "@eaDir/a.png/SYNOPHOTO_THUMB_XL.png",
        "trip/1.png",
        "trip/2.png",
        "tmp/t.png",
        "junk/j.png",
    ]
    .iter()
    .enumerate()
    {
        std::fs::create_dir_all(lib.join(f).parent().unwrap()).unwrap();
        distinct_png(&lib.join(f), &format!("cli{i}"));
    }
    for f in ["IMG_0001.HEIC", "IMG_0002.HEIC", "IMG_0003.MOV"] {
        std::fs::write(lib.join(f), b"iphone").unwrap();
    }
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    let s = context.scan_json(&index, &["index", libs, "-m", OPENAI, "--exclude", "tmp"]);
    assert_eq!((&s["files"], &s["left_out"]), (&4.into(), &2.into()), "{s}");
    assert_eq!(
        s["skipped_by_extension"],
        serde_json::json!({"heic": 2, "mov": 1})
    );
    // The text names the extensions skipped and what the exclusions left out.
    let text = context.index_ok(&index, &["index", "-q"]);
    assert!(
        text.contains(
            "4 images; 0 embedded, 0 moved, 0 reused (copies, or back again), 4 unchanged"
        ),
        "{text}"
    );
    assert!(
        text.contains("not images by their extension, not read: 3 files (2 .heic, 1 .mov)"),
        "{text}"
    );
    assert!(text.contains("left out by the exclusions"), "{text}");
    // A renamed folder: moved, nothing removed.
    std::fs::rename(lib.join("trip"), lib.join("trip-2024")).unwrap();
    let s = context.scan_json(&index, &["index"]);
    assert_eq!(
        (&s["moved"], &s["removed"], &s["embedded"]),
        (&2.into(), &0.into(), &0.into()),
        "{s}"
    );
    // A subfolder forgotten stays out of later scans; --status shows why.
    let junk = lib.join("junk").canonicalize().unwrap();
    let junk = junk.to_str().unwrap();
    let out = context.index_ok(&index, &["index", "--forget", junk]);
    assert!(
        out.contains("later scans leave it out") && out.contains("--no-exclude"),
        "{out}"
    );
    let s = context.scan_json(&index, &["index"]);
    assert_eq!((&s["files"], &s["embedded"]), (&3.into(), &0.into()), "{s}");
    let status: serde_json::Value = serde_json::from_str(
        context
            .index_ok(&index, &["index", "--status", "--json"])
            .trim(),
    )
    .unwrap();
    assert_eq!(status["excludes"]["defaults"], true);
    assert_eq!(
        status["excludes"]["patterns"],
        serde_json::json!(["tmp", junk])
    );
    assert!(status["excludes"]["default_patterns"]
        .as_array()
        .unwrap()
        .contains(&"@eaDir".into()));
    let text = context.index_ok(&index, &["index", "--status"]);
    assert!(text.contains("excludes  the defaults (@eaDir"), "{text}");
    assert!(text.contains(&format!(", tmp, {junk}")), "{text}");
    // Undo, and the defaults off: everything comes back; the thumbnail is a new file.
    let s = context.scan_json(
        &index,
        &[
            "index",
            "--no-exclude",
            junk,
            "--no-exclude",
            "tmp",
            "--no-default-excludes",
        ],
    );
    assert_eq!((&s["files"], &s["left_out"]), (&6.into(), &0.into()), "{s}");
    // A bad pattern is an error naming it, with a hint; nothing changes.
    let o = run(&mut context.clip_index(&index, &["index", "--exclude", "[oops"]));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("invalid exclusion pattern \"[oops\""), "{err}");
    assert!(err.contains("hint: `clip index --status`"), "{err}");
    // The defaults on again: what they cover is dropped, whatever its share.
    let s = context.scan_json(&index, &["index", "--default-excludes"]);
    assert_eq!((&s["files"], &s["excluded"]), (&5.into(), &1.into()), "{s}");
}

#[test]
fn a_panorama_over_16384_pixels_needs_max_image_megapixels() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    // 16400 x 32 grey: over the side limit, half a megapixel.
    let (w, h) = (16_400usize, 32usize);
    let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
    pgm.extend((0..w * h).map(|i| (i % w * 255 / w) as u8));
    let pano = lib.join("pano.pgm");
    std::fs::write(&pano, &pgm).unwrap();
    let panos = pano.to_str().unwrap();
    // Refused without the override, with an error that names it.
    context.fails_with(
        &["embed", "--image", panos, "-m", OPENAI],
        2,
        "--max-image-megapixels 1 accepts it",
    );
    context.ok(&[
        "embed",
        "--image",
        panos,
        "-m",
        OPENAI,
        "--max-image-megapixels",
        "1",
    ]);
    context.fails_with(
        &[
            "embed",
            "--image",
            panos,
            "-m",
            OPENAI,
            "--max-image-megapixels",
            "0",
        ],
        2,
        "not a number of megapixels",
    );
    // A bomb no budget lets in: 1 KB announcing 100000 x 100000 (30 GB of RGB).
    let mut bomb = b"P6\n100000 100000\n255\n".to_vec();
    bomb.resize(1024, 7);
    std::fs::write(lib.join("bomb.ppm"), &bomb).unwrap();
    // A scan records the failures and says how to take the one a budget lets in.
    let index = dir.join("index.sqlite");
    let o = run(&mut context.clip_index(
        &index,
        &["index", lib.to_str().unwrap(), "-m", OPENAI, "-q", "--json"],
    ));
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("16400x32") && err.contains("16384x16384"),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: 1 image is over the decode limits but fits a pixel budget; \
             --max-image-megapixels"
        ),
        "{err}"
    );
    // With it, the known failure is read again and indexed.
    let s = context.scan_json(&index, &["index", "--max-image-megapixels", "200"]);
    assert_eq!(
        (&s["embedded"], &s["too_large"]),
        (&1.into(), &0.into()),
        "{s}"
    );
    // The largest budget: the bomb fails alone, with a typed error, and the run goes on
    // (it used to abort the process on a 30 GB allocation).
    let o =
        run(&mut context.clip_index(&index, &["index", "-q", "--max-image-megapixels", "10000"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("bomb.ppm: image of 100000x100000 pixels is over the decode limit")
            && err.contains("MiB of decoded pixels"),
        "{err}"
    );
    assert!(!err.contains("hint:"), "{err}");
}

#[test]
fn exclusions_refuse_what_would_flip_or_empty_the_index_and_name_what_they_miss() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let lib = dir.join("photo");
    std::fs::create_dir_all(lib.join("2019/trip")).unwrap();
    for i in 0..10 {
        distinct_png(&lib.join(format!("{i}.png")), &format!("many{i}"));
    }
    distinct_png(&lib.join("2019/trip/1.png"), "trip1");
    distinct_png(&lib.join("2019/trip/2.png"), "trip2");
    distinct_png(&lib.join("2019/k.PNG"), "k");
    let index = dir.join("index.sqlite");
    let libs = lib.to_str().unwrap();
    let s = context.scan_json(&index, &["index", libs, "-m", OPENAI]);
    assert_eq!(s["embedded"], 13, "{s}");
    // In the folder above the library, as the tester worked.
    let at_dir = |args: &[&str]| {
        let mut cmd = context.clip_index(&index, args);
        cmd.current_dir(&dir);
        run(&mut cmd)
    };
    let trip = lib.join("2019/trip");
    let trips = trip.to_str().unwrap();
    assert!(at_dir(&["index", "--forget", "photo/2019/trip"])
        .status
        .success());
    // 1. The forgotten folder named as a folder to index: refused, with the way out.
    let o = at_dir(&["index", "photo/2019/trip", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "error: {trips} is left out by the exclusion {trips:?} of the index's folder {libs}; \
             nothing was changed"
        )),
        "{err}"
    );
    assert!(err.contains("--no-exclude"), "{err}");
    // 3. An exclusion that would drop most of the index: refused like a mass deletion.
    let o = at_dir(&["index", "--exclude", "*", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("the exclusions would drop 11 of the 11 indexed files"),
        "{err}"
    );
    assert!(err.contains("--allow-mass-delete"), "{err}");
    // 4. The root itself is refused; a path relative to the current folder is made absolute;
    // patterns that leave out nothing are named.
    context.fails_with(
        &[
            "index",
            "--exclude",
            libs,
            "--index",
            index.to_str().unwrap(),
        ],
        2,
        "hint: `clip index --forget",
    );
    let o = at_dir(&[
        "index",
        "--exclude",
        "photo/2019/k.PNG",
        "--exclude",
        "photo",
        "--exclude",
        "/etc",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let k = lib.join("2019/k.PNG");
    assert!(
        err.contains(&format!(
            "note: --exclude photo/2019/k.PNG is the path {}",
            k.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("warning: --exclude \"photo\" leaves out nothing")
            && err.contains("warning: --exclude \"/etc\" leaves out nothing"),
        "{err}"
    );
    assert!(!err.contains("k.PNG\" leaves out nothing"), "{err}");
    let out = stdout(&o);
    assert!(out.contains("; 1 indexed file dropped"), "{out}");
    let text = context.index_ok(&index, &["index", "--status"]);
    assert!(
        text.contains("kept      1 vector of removed files"),
        "{text}"
    );
    // 5. --no-exclude takes paths as --forget does; the errors say what is wrong.
    let o = at_dir(&[
        "index",
        "--no-exclude",
        "photo/2019/trip",
        "--no-exclude",
        "photo/2019/k.PNG",
        "--no-exclude",
        "photo",
        "--no-exclude",
        "/etc",
        "-q",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        (&s["scan"]["files"], &s["scan"]["reused"]),
        (&13.into(), &1.into()),
        "{s}"
    );
    let o = at_dir(&["index", "--no-exclude", "nonexistent"]);
    let err = stderr(&o);
    assert!(
        err.contains(
            "error: \"nonexistent\" is not among the index's exclusions (it has none of its own)"
        ),
        "{err}"
    );
    assert!(!err.contains("invalid"), "{err}");
    let o = at_dir(&["index", "--no-exclude", "@eaDir"]);
    let err = stderr(&o);
    assert!(
        err.contains("\"@eaDir\" is a default exclusion")
            && err.contains("hint: --no-default-excludes turns the defaults off"),
        "{err}"
    );
    // 6. User globs match in any case.
    let s = context.scan_json(&index, &["index", "--exclude", "2019/K.png"]);
    assert_eq!(s["excluded"], 1, "{s}");
    // 7. --status and --forget take no scan flags.
    for args in [
        &["index", "--status", "--exclude", "foo"][..],
        &["index", "--forget", "x", "--exclude", "foo"],
        &["index", "--status", "--allow-mass-delete"],
    ] {
        let o = run(&mut context.clip_index(&index, args));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    }
    // 10. A file only touched is unchanged, not a copy; a link to nothing is reported.
    let one = lib.join("1.png");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&one)
        .unwrap()
        .set_modified(later)
        .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("nowhere.jpg"), lib.join("dangling.jpg")).unwrap();
    let o = run(&mut context.clip_index(&index, &["index", "-q"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("0 reused (copies, or back again), 12 unchanged"),
        "{out}"
    );
    #[cfg(unix)]
    {
        assert!(out.contains("1 skipped"), "{out}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "warning: skipping {}: a symbolic link to {}, which does not exist",
                lib.join("dangling.jpg").display(),
                dir.join("nowhere.jpg").display()
            )),
            "{err}"
        );
    }
    // An index with no folders left says so.
    context.index_ok(&index, &["index", "--forget", libs]);
    let text = context.index_ok(&index, &["index", "--status"]);
    assert!(text.contains("folders   none\n"), "{text}");
    context.fails_with(
        &[
            "index",
            "--forget",
            "/nowhere",
            "--index",
            index.to_str().unwrap(),
        ],
        2,
        "(its folders: none)",
    );
}

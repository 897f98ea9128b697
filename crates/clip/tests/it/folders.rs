//! Scans of folders: exclusions kept with the index and `forget` that sticks, renames and
//! moves counted as such and not embedded again, files skipped for their extension counted,
//! Netpbm files indexed, and images over the decode limits taken with a pixel budget.

use std::path::Path;

use clip::photos::{Index, ScanOptions, ScanReport};
use clip::{Clip, ClipError, DecodeLimits, Device};
use clip_test_support::{distinct_png, fixture, temp_dir};

fn model() -> Clip {
    Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap()
}

fn scan(clip: &Clip, index: &mut Index, root: &Path, options: &ScanOptions) -> ScanReport {
    clip.update_index(index, &[root.to_path_buf()], options, &mut |_| {})
        .unwrap()
}

fn paths(index: &Index, root: &Path) -> Vec<String> {
    let root = root.canonicalize().unwrap();
    let mut out: Vec<String> = index
        .files()
        .unwrap()
        .into_keys()
        .map(|p| p[root.to_str().unwrap().len() + 1..].to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn exclusions_hold_across_rescans_and_a_forgotten_subfolder_stays_out() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    for (i, f) in [
        "a.png",
        "@eaDir/a.png/SYNOPHOTO_THUMB_M.png",
        "#recycle/old.png",
        "node_modules/pkg/logo.png",
        "2019/tmp/t.png",
        "2019/keep/k.png",
        "junk/j.png",
    ]
    .iter()
    .enumerate()
    {
        distinct_png(&lib.join(f), &format!("ex{i}"));
    }
    let clip = model();
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let plain = ScanOptions::default();
    // The default exclusions leave out the NAS, recycle and tool folders.
    let r = scan(&clip, &mut index, &lib, &plain);
    assert_eq!((r.files, r.embedded, r.left_out), (4, 4, 3), "{r:?}");
    assert_eq!(
        paths(&index, &lib),
        ["2019/keep/k.png", "2019/tmp/t.png", "a.png", "junk/j.png"]
    );
    // A pattern: stored, and what it covers is dropped (not "removed": left out).
    let exclude = ScanOptions {
        exclude: vec!["2019/tmp".into()],
        ..Default::default()
    };
    let r = scan(&clip, &mut index, &lib, &exclude);
    assert_eq!((r.files, r.excluded, r.removed), (3, 1, 0), "{r:?}");
    // Later scans keep it without being told.
    let r = scan(&clip, &mut index, &lib, &plain);
    assert_eq!((r.files, r.unchanged, r.excluded, r.left_out), (3, 3, 0, 4));
    // A subfolder forgotten stays out of the next scans.
    let junk = lib.join("junk").canonicalize().unwrap();
    let junk = junk.to_str().unwrap().to_string();
    let forgotten = index.forget(&junk).unwrap();
    assert_eq!((forgotten.files, forgotten.excluded), (1, true));
    let r = scan(&clip, &mut index, &lib, &plain);
    assert_eq!((r.files, r.embedded, r.left_out), (2, 0, 5), "{r:?}");
    assert_eq!(paths(&index, &lib), ["2019/keep/k.png", "a.png"]);
    let stored = index.exclusions().unwrap();
    assert_eq!(stored.patterns, ["2019/tmp".to_string(), junk.clone()]);
    // Bad patterns and unknown ones to take out are refused before anything changes, each
    // saying what is wrong: an invalid glob, a pattern the index does not have, a default
    // (those go together), the folder of the index itself.
    let root = lib.canonicalize().unwrap().to_str().unwrap().to_string();
    for (options, code, message) in [
        (
            ScanOptions {
                exclude: vec!["[oops".into()],
                ..Default::default()
            },
            "invalid_exclude",
            "invalid exclusion pattern \"[oops\"".to_string(),
        ),
        (
            ScanOptions {
                unexclude: vec!["not-there".into()],
                ..Default::default()
            },
            "not_excluded",
            format!("\"not-there\" is not among the index's exclusions (2019/tmp, {junk})"),
        ),
        (
            ScanOptions {
                unexclude: vec!["@eaDir".into()],
                ..Default::default()
            },
            "default_exclusion",
            "\"@eaDir\" is a default exclusion".to_string(),
        ),
        (
            ScanOptions {
                exclude: vec![format!("{root}/")],
                ..Default::default()
            },
            "exclude_root",
            format!("is the folder {root} of the index itself"),
        ),
    ] {
        let e = clip
            .update_index(
                &mut index,
                std::slice::from_ref(&lib),
                &options,
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(e.to_string().contains(&message), "{e}");
    }
    assert_eq!(index.exclusions().unwrap(), stored);
    // Undo: take the folder out of the exclusions; the defaults off bring the rest back.
    let undo = ScanOptions {
        unexclude: vec![junk, "2019/tmp".into()],
        default_excludes: Some(false),
        ..Default::default()
    };
    let r = scan(&clip, &mut index, &lib, &undo);
    assert_eq!((r.files, r.left_out), (7, 0), "{r:?}");
    // t.png's vector was kept when it was left out: reused; j.png's went with `forget`.
    assert_eq!((r.unchanged, r.reused, r.embedded), (2, 1, 4), "{r:?}");
    let stored = index.exclusions().unwrap();
    assert!(!stored.defaults && stored.patterns.is_empty(), "{stored:?}");
    // And on again: the three folders go, whatever their share.
    let on = ScanOptions {
        default_excludes: Some(true),
        ..Default::default()
    };
    let r = scan(&clip, &mut index, &lib, &on);
    assert_eq!((r.files, r.excluded, r.removed), (4, 3, 0), "{r:?}");
}

#[test]
fn a_renamed_folder_is_moved_and_a_folder_moved_out_and_back_is_not_embedded_again() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    for i in 0..33 {
        distinct_png(&lib.join(format!("trip/{i:02}.png")), &format!("trip{i}"));
    }
    for i in 0..5 {
        distinct_png(&lib.join(format!("trip/day1/{i}.png")), &format!("day{i}"));
    }
    distinct_png(&lib.join("home.png"), "home");
    // Three files that are no images, named as photos.
    for i in 0..3 {
        std::fs::write(
            lib.join(format!("trip/bad{i}.jpg")),
            format!("<html>{i}</html>"),
        )
        .unwrap();
    }
    let clip = model().with_batch_size(16);
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let plain = ScanOptions::default();
    let r = scan(&clip, &mut index, &lib, &plain);
    assert_eq!((r.files, r.embedded, r.failed.len()), (42, 39, 3), "{r:?}");
    // The folder of 38 photos (and 3 broken files) renamed: 41 of 42 files are gone from
    // their paths, which is no mass deletion: 38 moved, nothing removed or embedded.
    std::fs::rename(lib.join("trip"), lib.join("trip-2024")).unwrap();
    let r = scan(&clip, &mut index, &lib, &plain);
    assert_eq!(
        (r.moved, r.removed, r.embedded, r.reused, r.unchanged),
        (38, 0, 0, 0, 1),
        "{r:?}"
    );
    assert_eq!(r.failed.len(), 3);
    assert_eq!(index.files().unwrap().len(), 42);
    assert!(paths(&index, &lib).iter().all(|p| !p.starts_with("trip/")));
    // A subfolder moved out of the folders: removed, its vectors kept.
    let out = dir.join("elsewhere");
    std::fs::rename(lib.join("trip-2024/day1"), &out).unwrap();
    let r = scan(&clip, &mut index, &lib, &plain);
    assert_eq!((r.removed, r.moved), (5, 0), "{r:?}");
    assert_eq!(index.status().unwrap().kept, 5);
    // And back: reused, not embedded again.
    std::fs::rename(&out, lib.join("trip-2024/day1")).unwrap();
    let r = scan(&clip, &mut index, &lib, &plain);
    assert_eq!(
        (r.reused, r.embedded, r.moved, r.removed),
        (5, 0, 0, 0),
        "{r:?}"
    );
    let status = index.status().unwrap();
    assert_eq!((status.indexed, status.vectors, status.kept), (39, 39, 0));
    // A real deletion of many is still refused: a vanished folder is no move.
    std::fs::remove_dir_all(lib.join("trip-2024")).unwrap();
    let e = clip
        .update_index(&mut index, std::slice::from_ref(&lib), &plain, &mut |_| {})
        .unwrap_err();
    assert!(e.to_string().contains("41 of the 42"), "{e}");
}

#[test]
fn files_skipped_for_their_extension_are_counted_and_netpbm_files_indexed() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("iphone");
    std::fs::create_dir_all(&lib).unwrap();
    for f in ["IMG_0001.HEIC", "IMG_0002.heic", "IMG_0003.MOV", "notes"] {
        std::fs::write(lib.join(f), b"not for us").unwrap();
    }
    let mut ppm = b"P6\n4 3\n255\n".to_vec();
    ppm.extend((0..36).map(|i| (i * 7) as u8));
    std::fs::write(lib.join("scan.ppm"), &ppm).unwrap();
    let mut pgm = b"P5\n4 3\n255\n".to_vec();
    pgm.extend((0..12).map(|i| (i * 20) as u8));
    std::fs::write(lib.join("scan.PGM"), &pgm).unwrap();
    let clip = model();
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!((r.files, r.embedded), (2, 2), "{r:?}");
    assert!(r.failed.is_empty(), "{r:?}");
    let skipped: Vec<(&str, usize)> = r
        .skipped_by_extension
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(skipped, [("", 1), ("heic", 2), ("mov", 1)]);
    // The PPM's vector is the one `embed` gives.
    let direct = clip
        .encode_image(&[clip.load_image(&lib.join("scan.ppm")).unwrap()])
        .unwrap()
        .remove(0);
    let stored = index
        .embedding_of(
            lib.join("scan.ppm")
                .canonicalize()
                .unwrap()
                .to_str()
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert!(clip_test_support::max_abs_diff(&stored, &clip::normalized(&direct)) < 1e-6);
}

#[test]
fn a_panorama_over_16384_pixels_is_indexed_with_a_pixel_budget() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("panoramas");
    std::fs::create_dir_all(&lib).unwrap();
    // 16400 x 32: over the side limit, far under the pixel limit.
    let (w, h) = (16_400usize, 32usize);
    let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
    pgm.extend((0..w * h).map(|i| (i % w * 255 / w) as u8));
    std::fs::write(lib.join("pano.pgm"), &pgm).unwrap();
    distinct_png(&lib.join("small.png"), "small");
    let clip = model();
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!(
        (r.embedded, r.failed.len(), r.too_large),
        (1, 1, 1),
        "{r:?}"
    );
    assert!(r.failed[0].error.contains("16400x32"), "{r:?}");
    assert!(r.failed[0].error.contains("16384x16384"), "{r:?}");
    // Not retried under the same limits.
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!((r.failed_before, r.too_large), (1, 0), "{r:?}");
    // With a pixel budget the known failure is read again and indexed.
    let budget = clip
        .clone()
        .with_decode_limits(DecodeLimits::default().with_max_megapixels(100.0));
    let r = scan(&budget, &mut index, &lib, &ScanOptions::default());
    assert_eq!(
        (r.embedded, r.unchanged, r.failed.len()),
        (1, 1, 0),
        "{r:?}"
    );
    assert_eq!(index.status().unwrap().indexed, 2);
    // Back to the default limits: the panorama stays indexed (unchanged, not read).
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!((r.unchanged, r.failed.len()), (2, 0), "{r:?}");
}

#[test]
fn a_folder_left_out_is_refused_as_a_root_and_a_subfolder_keeps_the_exclusions_above_it() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    for (i, f) in [
        "a.png",
        "2019/trip/1.png",
        "2019/trip/2.png",
        "2019/tmp/t.png",
        "2019/k.png",
        "@eaDir/a.png/SYNOPHOTO_THUMB_XL.png",
    ]
    .iter()
    .enumerate()
    {
        distinct_png(&lib.join(f), &format!("sub{i}"));
    }
    let clip = model();
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let exclude = ScanOptions {
        exclude: vec!["2019/tmp".into()],
        ..Default::default()
    };
    let r = scan(&clip, &mut index, &lib, &exclude);
    assert_eq!(r.files, 4, "{r:?}");
    let trip = lib.join("2019/trip").canonicalize().unwrap();
    let trip_text = trip.to_str().unwrap().to_string();
    index.forget(&trip_text).unwrap();
    let root = lib.canonicalize().unwrap().to_str().unwrap().to_string();
    // The forgotten folder, given as a folder to scan, is refused: the exclusion stays and
    // nothing is indexed (it used to be indexed, then dropped by the next scan, and so on).
    let mut refused = |folder: &Path| {
        clip.update_index(
            &mut index,
            &[folder.to_path_buf()],
            &ScanOptions::default(),
            &mut |_| {},
        )
        .unwrap_err()
    };
    let e = refused(&trip);
    assert_eq!(e.code(), "excluded_folder", "{e}");
    assert!(
        e.to_string().contains(&format!(
            "{trip_text} is left out by the exclusion {trip_text:?} of the index's folder {root}"
        )),
        "{e}"
    );
    // So are a default exclusion's folder and a folder under a pattern's.
    let e = refused(&lib.join("@eaDir/a.png"));
    assert!(
        matches!(&e, ClipError::ExcludedFolder { pattern, default: true, .. } if pattern == "@eaDir"),
        "{e:?}"
    );
    let e = refused(&lib.join("2019/tmp"));
    assert!(e.to_string().contains("\"2019/tmp\""), "{e}");
    // Given with the folder above it, too.
    let e = clip
        .update_index(
            &mut index,
            &[lib.clone(), trip.clone()],
            &ScanOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
    assert_eq!(e.code(), "excluded_folder", "{e}");
    assert_eq!(paths(&index, &lib), ["2019/k.png", "a.png"]);
    // An index whose folders hold such a folder (as earlier versions let in) still rescans:
    // the folder is walked with the one above it, and what it holds stays out.
    index.add_roots(std::slice::from_ref(&trip_text)).unwrap();
    let roots: Vec<std::path::PathBuf> = index
        .status()
        .unwrap()
        .roots
        .into_iter()
        .map(Into::into)
        .collect();
    let r = clip
        .update_index(&mut index, &roots, &ScanOptions::default(), &mut |_| {})
        .unwrap();
    assert_eq!(r.files, 2, "{r:?}");
    index.forget(&trip_text).unwrap();
    // A subfolder scanned alone is walked with the exclusions of the folder above it.
    let r = scan(
        &clip,
        &mut index,
        &lib.join("2019"),
        &ScanOptions::default(),
    );
    assert_eq!((r.files, r.unchanged, r.left_out), (1, 1, 2), "{r:?}");
    assert_eq!(paths(&index, &lib), ["2019/k.png", "a.png"]);
    // Taking the exclusion out with the scan lets the folder in.
    let undo = ScanOptions {
        unexclude: vec![trip_text.clone()],
        ..Default::default()
    };
    let r = scan(&clip, &mut index, &trip, &undo);
    assert_eq!(r.files, 2, "{r:?}");
    assert!(index.exclusions().unwrap().patterns == ["2019/tmp"]);
}

#[test]
fn exclusions_that_would_empty_the_index_need_the_override_and_unmatched_ones_are_named() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    for i in 0..12 {
        distinct_png(&lib.join(format!("{i:02}.png")), &format!("all{i}"));
    }
    let clip = model();
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!(r.embedded, 12);
    // `*` would drop all 12: refused like a mass deletion, and nothing is stored.
    let star = ScanOptions {
        exclude: vec!["*".into()],
        ..Default::default()
    };
    let e = clip
        .update_index(&mut index, std::slice::from_ref(&lib), &star, &mut |_| {})
        .unwrap_err();
    assert_eq!(e.code(), "scan_refused");
    assert!(
        e.to_string()
            .contains("the exclusions would drop 12 of the 12"),
        "{e}"
    );
    assert!(index.exclusions().unwrap().patterns.is_empty());
    assert_eq!(index.files().unwrap().len(), 12);
    // Patterns that leave out nothing are named (a path outside the folders, a glob that
    // meets no file, the root's own name); one that leaves out a file is not. All are kept.
    let root_name = "photos".to_string();
    let some = ScanOptions {
        exclude: vec![
            "/etc".into(),
            "*.PNG.tmp".into(),
            root_name.clone(),
            "0[01].PNG".into(),
        ],
        ..Default::default()
    };
    let r = scan(&clip, &mut index, &lib, &some);
    assert_eq!(
        r.excludes_unmatched,
        ["/etc", "*.PNG.tmp", "photos"],
        "{r:?}"
    );
    // A glob in another case leaves out the files it names, in any case.
    assert_eq!((r.excluded, r.files), (2, 10), "{r:?}");
    assert_eq!(index.exclusions().unwrap().patterns.len(), 4);
    // With the override, the rest goes; the vectors are kept for files that come back.
    let all = ScanOptions {
        allow_mass_delete: true,
        ..star
    };
    let r = scan(&clip, &mut index, &lib, &all);
    assert_eq!((r.files, r.excluded), (0, 10), "{r:?}");
    assert_eq!(index.status().unwrap().kept, 12);
}

#[test]
fn a_touched_file_is_unchanged_a_link_to_nothing_is_reported_and_bombs_get_no_hint() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    distinct_png(&lib.join("a.png"), "touch-a");
    distinct_png(&lib.join("b.png"), "touch-b");
    // 1 KB announcing 100000 x 100000: no pixel budget lets it in.
    let mut bomb = b"P6\n100000 100000\n255\n".to_vec();
    bomb.resize(1024, 7);
    std::fs::write(lib.join("bomb.ppm"), &bomb).unwrap();
    let clip = model().with_decode_limits(DecodeLimits::default().with_max_megapixels(10_000.0));
    let mut index = Index::open(&dir.join("index.sqlite"), &clip.index_info()).unwrap();
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!(
        (r.embedded, r.failed.len(), r.too_large),
        (2, 1, 0),
        "{r:?}"
    );
    assert!(r.failed[0].error.contains("bomb.ppm"), "{r:?}");
    assert!(r.failed[0].error.contains("MiB of decoded pixels"), "{r:?}");
    // Touched: a new time, the same bytes. Unchanged, not a copy.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(lib.join("a.png"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!((r.unchanged, r.reused, r.embedded), (2, 0, 0), "{r:?}");
    // And it is not read again the next time.
    let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
    assert_eq!(r.unchanged, 2, "{r:?}");
    // A link to nothing named like a photo: skipped, with a warning naming it; an indexed
    // file whose path became one goes as gone.
    #[cfg(unix)]
    {
        std::fs::remove_file(lib.join("b.png")).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere.jpg"), lib.join("b.png")).unwrap();
        let r = scan(&clip, &mut index, &lib, &ScanOptions::default());
        assert_eq!((r.files, r.removed, r.skipped.len()), (2, 1, 1), "{r:?}");
        let lib = lib.canonicalize().unwrap();
        assert_eq!(r.skipped[0].path, lib.join("b.png").to_str().unwrap());
        assert!(
            r.skipped[0].error.contains("a symbolic link to")
                && r.skipped[0]
                    .error
                    .contains("nowhere.jpg, which does not exist"),
            "{r:?}"
        );
    }
}

#[test]
fn forget_takes_what_the_index_holds_and_refuses_what_it_does_not() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let lib = dir.join("photos");
    distinct_png(&lib.join("a.png"), "f0");
    distinct_png(&lib.join("junk/j.png"), "f1");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let path = dir.join("index.sqlite");
    let clip = model();
    {
        let mut index = Index::open(&path, &clip.index_info()).unwrap();
        scan(&clip, &mut index, &lib, &ScanOptions::default());
    }
    // A subfolder indexed on its own is covered by its folder: not listed as another.
    {
        let mut index = Index::open_existing(&path).unwrap();
        scan(
            &clip,
            &mut index,
            &lib.join("junk"),
            &ScanOptions::default(),
        );
        assert_eq!(index.status().unwrap().roots.len(), 1);
    }
    // A typo under a folder of the index (nothing there, no such folder): refused, not kept
    // as an exclusion.
    let e = clip::photos::forget(&path, &lib.join("jnuk")).unwrap_err();
    assert_eq!(e.code(), "nothing_to_forget", "{e}");
    // A folder the index knows nothing of: refused, naming the index's folders.
    let e = clip::photos::forget(&path, &elsewhere).unwrap_err();
    assert!(
        matches!(e, ClipError::NothingToForget { ref roots, .. } if roots.len() == 1),
        "{e:?}"
    );
    assert_eq!(e.code(), "nothing_to_forget");
    assert!(e.to_string().contains("has nothing under"), "{e}");
    // A subfolder: its file dropped, and left out from now on.
    let (recorded, forgotten) = clip::photos::forget(&path, &lib.join("junk")).unwrap();
    assert_eq!(
        recorded,
        lib.join("junk").canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!((forgotten.files, forgotten.excluded), (1, true));
    let index = Index::open_existing(&path).unwrap();
    assert_eq!(paths(&index, &lib), ["a.png"]);
}

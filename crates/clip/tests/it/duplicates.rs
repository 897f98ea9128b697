//! Near-duplicate groups over hand-made vectors of real files: what is grouped, what is marked
//! identical, which names are one file, and which folders come from the index.

use std::path::Path;

use clip::photos::duplicates::{
    find_duplicates, find_duplicates_except, seed, split_folders, Member,
};
use clip::photos::{content_hash, Change, Index, IndexInfo};
use clip::walk::Excludes;
use clip::ClipError;
use clip_test_support::{distinct_png, fixture, temp_dir};

fn info() -> IndexInfo {
    IndexInfo {
        model: "hand-made".into(),
        fingerprint: "fp".into(),
        preprocess: "pre".into(),
        dim: 3,
    }
}

/// A unit vector at `degrees` in a plane: two of them have the cosine of their angle.
fn at(degrees: f32) -> Vec<f32> {
    let r = degrees.to_radians();
    vec![r.cos(), r.sin(), 0.0]
}

/// The file at `path` as the index records it (size, time, content), with `vector` as its
/// embedding.
fn embedded(path: &Path, vector: Vec<f32>) -> Change {
    let bytes = std::fs::read(path).unwrap();
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    Change::Embedded {
        path: path.to_str().unwrap().into(),
        size: bytes.len() as u64,
        mtime_ns: mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64,
        hash: content_hash(&bytes),
        embedding: vector,
    }
}

fn names(members: &[Member]) -> Vec<&str> {
    members
        .iter()
        .map(|m| m.path.rsplit('/').next().unwrap())
        .collect()
}

#[cfg(unix)]
#[test]
fn a_chain_is_not_one_group_copies_are_marked_and_links_are_one_file() {
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let p = |name: &str| dir.join(name);
    // A chain: a–b 10° apart (0.985), b–c 8° (0.990), a–c 18° (0.951). b-copy has b's bytes;
    // a-link is a symbolic link to a, c-hard a hard link to c.
    distinct_png(&p("a.png"), "a");
    distinct_png(&p("b.png"), "b");
    distinct_png(&p("c.png"), "c");
    std::fs::copy(p("b.png"), p("b-copy.png")).unwrap();
    std::os::unix::fs::symlink(p("a.png"), p("a-link.png")).unwrap();
    std::fs::hard_link(p("c.png"), p("c-hard.png")).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_614_834_367);
    std::fs::File::options()
        .write(true)
        .open(p("b.png"))
        .unwrap()
        .set_modified(when)
        .unwrap();
    let mut index = Index::in_memory(&info()).unwrap();
    index
        .apply(&[
            embedded(&p("a.png"), at(0.0)),
            embedded(&p("a-link.png"), at(0.0)),
            embedded(&p("b.png"), at(10.0)),
            embedded(&p("b-copy.png"), at(10.0)),
            embedded(&p("c.png"), at(18.0)),
            embedded(&p("c-hard.png"), at(18.0)),
        ])
        .unwrap();
    let found = find_duplicates(&[(&index, &[])], 0.98).unwrap();
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    // a and its link are one file, so no group; a is not grouped with c (0.951), although
    // a–b and b–c clear 0.98.
    assert_eq!(found.groups.len(), 1, "{:#?}", found.groups);
    let g = &found.groups[0];
    assert_eq!(names(&g.members), ["b-copy.png", "b.png", "c-hard.png"]);
    assert!(
        (g.min_similarity - 8f32.to_radians().cos()).abs() < 1e-5,
        "{}",
        g.min_similarity
    );
    let [first, copy, c] = &g.members[..] else {
        panic!("{:?}", g.members)
    };
    // The representative is the photo closest to the others (b and its copy tie: the first).
    assert!(first.representative && !copy.representative && !c.representative);
    assert_eq!(first.similarity, 1.0);
    assert!((copy.similarity - 1.0).abs() < 1e-6);
    assert!((c.similarity - 8f32.to_radians().cos()).abs() < 1e-5);
    // Same bytes: marked; the hard link is a name of c, not a copy.
    assert_eq!(copy.identical_to.as_deref(), p("b-copy.png").to_str());
    assert_eq!(
        (first.identical_to.as_ref(), c.identical_to.as_ref()),
        (None, None)
    );
    assert_eq!(c.links, [p("c.png").to_str().unwrap()]);
    assert!(first.links.is_empty() && copy.links.is_empty());
    // Size, resolution and time of each file.
    let horse = clip_preprocess::image::decode::dimensions(&fixture("photos/horse.png")).unwrap();
    for m in &g.members {
        assert_eq!(m.bytes, std::fs::metadata(&m.path).unwrap().len());
        assert_eq!((m.width, m.height), (Some(horse.0), Some(horse.1)));
    }
    assert_eq!(copy.modified.as_deref(), Some("2021-03-04T05:06:07Z"));

    // With a lower threshold the whole chain is one group, and a's link is listed with a.
    let wide = find_duplicates(&[(&index, &[])], 0.95).unwrap();
    assert_eq!(wide.groups.len(), 1);
    let all = &wide.groups[0].members;
    assert_eq!(all.len(), 4);
    let a = all.iter().find(|m| m.path.ends_with("/a.png")).unwrap();
    assert_eq!(a.links, [p("a-link.png").to_str().unwrap()]);
    // The representative is b or its copy (closest to a and c alike); the first listed.
    assert!(all[0].representative && all[0].path.contains("/b"));

    // A photo gone since it was indexed is left out and reported; a group of one is dropped.
    std::fs::remove_file(p("b-copy.png")).unwrap();
    std::fs::remove_file(p("b.png")).unwrap();
    let after = find_duplicates(&[(&index, &[])], 0.98).unwrap();
    assert!(after.groups.is_empty(), "{:#?}", after.groups);
    assert_eq!(after.skipped.len(), 2);
    assert!(
        after.skipped[0]
            .error
            .contains("b-copy.png: indexed, but cannot be looked at now"),
        "{}",
        after.skipped[0].error
    );

    // A threshold that is no similarity is refused.
    let e = find_duplicates(&[(&index, &[])], 1.5).unwrap_err();
    assert!(matches!(e, ClipError::Threshold { .. }), "{e}");
}

#[test]
fn folders_split_by_the_index_and_several_indexes_compare_together() {
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let lib = dir.join("lib");
    let other = dir.join("other");
    std::fs::create_dir_all(lib.join("2024")).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    distinct_png(&lib.join("2024/a.png"), "a");
    distinct_png(&lib.join("b.png"), "b");
    distinct_png(&other.join("a-again.png"), "a2");
    let mut index = Index::open(&dir.join("index.sqlite"), &info()).unwrap();
    index
        .apply(&[
            embedded(&lib.join("2024/a.png"), at(0.0)),
            embedded(&lib.join("b.png"), at(45.0)),
        ])
        .unwrap();
    index.add_roots(&[lib.to_str().unwrap().into()]).unwrap();

    let split = split_folders(
        Some(&index),
        &[lib.join("2024"), other.clone(), lib.clone()],
    )
    .unwrap();
    assert_eq!(split.indexed, [lib.join("2024"), lib.clone()]);
    assert_eq!(split.elsewhere, std::slice::from_ref(&other));
    let e = split.indexed_only(Path::new("index.sqlite")).unwrap_err();
    assert!(matches!(e, ClipError::NotIndexed { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("other is not in the index index.sqlite"),
        "{e}"
    );
    assert!(split_folders(None, std::slice::from_ref(&lib))
        .unwrap()
        .indexed
        .is_empty());
    let e = split_folders(Some(&index), &[dir.join("missing")]).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");

    // A folder elsewhere goes into an index in memory, seeded with what the index holds under
    // it (here: the library, inside `dir`).
    let mut memory = Index::in_memory(&info()).unwrap();
    assert_eq!(
        seed(&mut memory, &index, std::slice::from_ref(&dir)).unwrap(),
        2
    );
    assert_eq!(
        seed(
            &mut Index::in_memory(&info()).unwrap(),
            &index,
            std::slice::from_ref(&other)
        )
        .unwrap(),
        0
    );
    memory
        .apply(&[embedded(&other.join("a-again.png"), at(1.0))])
        .unwrap();
    // The 2024 folder from the index, `other` from memory: a and its look-alike group, b
    // (outside the folders asked for) is not compared.
    let found = find_duplicates(
        &[
            (&index, &[lib.join("2024")][..]),
            (&memory, std::slice::from_ref(&other)),
        ],
        0.99,
    )
    .unwrap();
    assert_eq!(found.groups.len(), 1);
    assert_eq!(names(&found.groups[0].members), ["a.png", "a-again.png"]);
    assert_eq!(found.groups[0].members[1].identical_to, None);
    // A path in both is taken once.
    let twice = find_duplicates(&[(&index, &[]), (&memory, &[])], 0.99).unwrap();
    assert_eq!(twice.groups.len(), 1);
    assert_eq!(twice.groups[0].members.len(), 2);
    let roots = index.status().unwrap().roots;
    assert_eq!(roots, [lib.to_str().unwrap()]);
}

#[test]
fn a_file_changed_since_it_was_indexed_is_never_called_identical() {
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let (a, b) = (dir.join("a.png"), dir.join("b.png"));
    distinct_png(&a, "same");
    distinct_png(&b, "same");
    let mut index = Index::in_memory(&info()).unwrap();
    index
        .apply(&[embedded(&a, at(0.0)), embedded(&b, at(0.0))])
        .unwrap();
    let found = find_duplicates(&[(&index, &[])], 0.98).unwrap();
    assert_eq!(found.compared, 2);
    let members = &found.groups[0].members;
    assert_eq!(members[1].identical_to.as_deref(), a.to_str());
    assert!(members.iter().all(|m| !m.changed_since_indexed));
    // b is overwritten with other bytes after the scan: its stored hash is stale, so it is no
    // longer called identical (deleting it as a copy would lose the new content), and it says
    // why its similarity may be out of date.
    distinct_png(&b, "edited since");
    let found = find_duplicates(&[(&index, &[])], 0.98).unwrap();
    let members = &found.groups[0].members;
    let edited = members
        .iter()
        .find(|m| m.path == b.to_str().unwrap())
        .unwrap();
    assert!(edited.changed_since_indexed && edited.identical_to.is_none());
    assert!(
        members.iter().all(|m| m.identical_to.is_none()),
        "{members:#?}"
    );
}

#[test]
fn folders_the_exclusions_leave_out_are_compared_for_the_run_only_and_run_patterns_are_not_kept() {
    let tmp = temp_dir();
    let dir = tmp.path().canonicalize().unwrap();
    let lib = dir.join("lib");
    for d in ["@eaDir/a.png", "2019/journey", "junk"] {
        std::fs::create_dir_all(lib.join(d)).unwrap();
    }
    distinct_png(&lib.join("2019/a.png"), "a");
    distinct_png(&lib.join("2019/journey/b.png"), "b");
    let mut index = Index::open(&dir.join("index.sqlite"), &info()).unwrap();
    index
        .apply(&[
            embedded(&lib.join("2019/a.png"), at(0.0)),
            embedded(&lib.join("2019/journey/b.png"), at(1.0)),
        ])
        .unwrap();
    let root = lib.to_str().unwrap().to_string();
    index.add_roots(std::slice::from_ref(&root)).unwrap();
    index
        .update_exclusions(&[lib.join("junk").to_str().unwrap().into()], &[], None)
        .unwrap();
    // A default exclusion's folder and a forgotten one are elsewhere: embedded for the run,
    // never into the index; a plain subfolder comes from the index.
    let split = split_folders(
        Some(&index),
        &[lib.join("@eaDir"), lib.join("junk"), lib.join("2019")],
    )
    .unwrap();
    assert_eq!(split.indexed, [lib.join("2019")]);
    assert_eq!(split.elsewhere, [lib.join("@eaDir"), lib.join("junk")]);
    assert_eq!(
        split.left_out[0],
        (lib.join("@eaDir"), "@eaDir".to_string())
    );
    let e = split.indexed_only(Path::new("index.sqlite")).unwrap_err();
    assert!(
        e.to_string()
            .contains("(its exclusion \"@eaDir\" leaves it out)"),
        "{e}"
    );
    // A pattern for this run leaves photos out of the comparison, relative to the folder
    // compared, and changes nothing in the index.
    let folders = [lib.join("2019")];
    let all = find_duplicates(&[(&index, &folders[..])], 0.99).unwrap();
    assert_eq!(all.compared, 2);
    assert_eq!(all.groups.len(), 1);
    for pattern in ["journey", "JOURNEY/*.png"] {
        let except = Excludes::new(&[pattern.to_string()], false).unwrap();
        let found = find_duplicates_except(&[(&index, &folders[..])], 0.99, &except).unwrap();
        assert_eq!((found.compared, found.groups.len()), (1, 0), "{pattern}");
    }
    // With no folders, from the index's own.
    let except = Excludes::new(&["2019/journey".to_string()], false).unwrap();
    let found = find_duplicates_except(&[(&index, &[])], 0.99, &except).unwrap();
    assert_eq!(found.compared, 1);
    assert_eq!(index.files().unwrap().len(), 2);
    assert_eq!(index.exclusions().unwrap().patterns.len(), 1);
}

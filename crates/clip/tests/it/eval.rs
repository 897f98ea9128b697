//! Evaluation metrics against an independent reference, on its embeddings and end to end on
//! an image folder.

use clip::{Clip, Device};
use clip_test_support::{fixture, fixture_json, max_abs_diff};

fn rows(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn indices(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Top-1, top-5, mean per-class recall and the confusion matrix equal the reference's.
fn assert_accuracy(what: &str, ours: &clip::eval::Accuracy, reference: &serde_json::Value) {
    let close = |a: f64, key: &str| {
        let b = reference[key].as_f64().unwrap();
        assert!(
            (a - b).abs() < 1e-12,
            "{what} {key}: ours {a}, reference {b}"
        );
    };
    close(ours.top1, "top1");
    close(ours.top5, "top5");
    close(ours.mean_per_class_recall, "mean_per_class_recall");
    let confusion: Vec<Vec<usize>> = reference["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(indices)
        .collect();
    assert_eq!(ours.confusion, confusion, "{what} confusion matrix");
}

#[test]
fn eval_metrics_match_the_reference_on_its_embeddings() {
    let g = fixture_json("eval/goldens.json");
    let labels = strings(&g["labels"]);
    let classes = rows(&g["class_embeddings"]);
    let (test_x, test_t) = (rows(&g["test"]["features"]), indices(&g["test"]["targets"]));
    let (train_x, train_t) = (
        rows(&g["train"]["features"]),
        indices(&g["train"]["targets"]),
    );
    // Zero-shot: probabilities (softmax of logit_scale * cosine) and accuracies.
    let cos = clip::eval::cosine_matrix(&test_x, &classes);
    let scale = g["logit_scale"].as_f64().unwrap() as f32;
    for (row, want) in cos.iter().zip(rows(&g["zero_shot"]["probabilities"])) {
        let logits: Vec<f32> = row.iter().map(|c| scale * c).collect();
        let probs = clip::softmax(&logits);
        assert!(max_abs_diff(&probs, &want) < 1e-5, "{probs:?} vs {want:?}");
    }
    let zs = clip::eval::accuracy(&cos, &test_t, &labels);
    assert_accuracy("zero-shot", &zs, &g["zero_shot"]);
    // Linear probe against scikit-learn's LogisticRegression.
    let c = g["linear_probe"]["C"].as_f64().unwrap();
    let opts = clip::eval::probe::ProbeOptions {
        c,
        ..Default::default()
    };
    let probe =
        clip::eval::probe::LinearProbe::fit(&train_x, &train_t, labels.len(), &opts).unwrap();
    assert!(probe.converged, "{probe:?}");
    assert_eq!(probe.classes, indices(&g["linear_probe"]["classes"]));
    let scores = probe.scores(&test_x);
    for (row, want) in scores.iter().zip(rows(&g["linear_probe"]["probabilities"])) {
        let present: Vec<f32> = probe.classes.iter().map(|&c| row[c]).collect();
        let probs = clip::softmax(&present);
        assert!(max_abs_diff(&probs, &want) < 1e-4, "{probs:?} vs {want:?}");
    }
    // Two classes: scikit-learn's binary model.
    let pick = |x: &[Vec<f32>], t: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) {
        x.iter()
            .zip(t)
            .filter(|(_, &t)| t < 2)
            .map(|(x, &t)| (x.clone(), t))
            .unzip()
    };
    let (bx, bt) = pick(&train_x, &train_t);
    let (qx, _) = pick(&test_x, &test_t);
    let binary = clip::eval::probe::LinearProbe::fit(&bx, &bt, labels.len(), &opts).unwrap();
    assert!(binary.converged);
    let want = rows(&g["linear_probe_binary"]["probabilities"]);
    assert_eq!(want.len(), qx.len());
    for (row, want) in binary.scores(&qx).iter().zip(want) {
        let probs = clip::softmax(&row[..2]);
        assert!(max_abs_diff(&probs, &want) < 1e-4, "{probs:?} vs {want:?}");
    }
    let report =
        clip::eval::probe::linear_probe((&train_x, &train_t), (&test_x, &test_t), &labels, &opts)
            .unwrap();
    assert_accuracy("linear probe", &report.accuracy, &g["linear_probe"]);
    // Retrieval recall@k both ways.
    let r = &g["retrieval"];
    let recall = clip::eval::retrieval_recall(
        &rows(&r["image_features"]),
        &rows(&r["text_features"]),
        &indices(&r["caption_image"]),
        &[1, 5, 10],
    );
    for (ours, want) in recall.iter().zip(r["recall"].as_array().unwrap()) {
        assert_eq!(ours.k as u64, want["k"].as_u64().unwrap());
        for (a, key) in [
            (ours.text_to_image, "text_to_image"),
            (ours.image_to_text, "image_to_text"),
        ] {
            let b = want[key].as_f64().unwrap();
            assert!((a - b).abs() < 1e-12, "recall@{} {key}: {a} vs {b}", ours.k);
        }
    }
}

#[test]
fn eval_on_an_image_folder_matches_the_reference_end_to_end() {
    use clip::dataset::{match_labels, read_captions, read_mapping, ImageFolder};
    let g = fixture_json("eval/goldens.json");
    let root = fixture("eval");
    let clip = Clip::from_dir(&fixture("models/tiny-openai"), Device::Cpu).unwrap();
    let test = ImageFolder::open(&root.join("imagefolder/test")).unwrap();
    let mapping_path = root.join("imagefolder/mapping.txt");
    let mapping = read_mapping(&mapping_path).unwrap();
    let classes = match_labels(
        &test.folder_names(),
        None,
        Some((&mapping, &mapping_path)),
        "-",
    )
    .unwrap();
    assert_eq!(classes.labels, strings(&g["labels"]));
    let templates = clip::Templates::new(
        clip::zeroshot::parse_list(&std::fs::read_to_string(root.join("templates.txt")).unwrap()),
        "templates.txt",
    )
    .unwrap();
    let mut built = 0;
    let classifier = clip
        .zero_shot_classifier_with(
            &classes.labels,
            &templates,
            &clip::ClassifierOptions::default(),
            &mut |n| built += n,
        )
        .unwrap()
        .rows;
    assert_eq!(built, 6);
    let mut done = 0;
    let (zs, images) = clip
        .evaluate_zero_shot(&test, &classes, &classifier, &mut |n| done += n)
        .unwrap();
    assert_eq!(done, 16, "15 images and the unreadable one");
    assert_eq!(images.failed.len(), 1);
    assert!(
        images.failed[0].path.ends_with("broken.png"),
        "{:?}",
        images.failed
    );
    assert_accuracy("zero-shot", &zs, &g["zero_shot"]);
    let empty = &zs.per_class[classes.labels.iter().position(|l| l == "unicorn").unwrap()];
    assert_eq!((empty.support, empty.recall), (0, None));
    // Linear probe on the train split, matched to the same labels by the mapping.
    let train = ImageFolder::open(&root.join("imagefolder/train")).unwrap();
    let train_classes = match_labels(
        &train.folder_names(),
        Some(&classes.labels),
        Some((&mapping, &mapping_path)),
        "-",
    )
    .unwrap();
    let train_x = clip
        .encode_image_folder(&train, &train_classes, &mut |_| {})
        .unwrap();
    let opts = clip::eval::probe::ProbeOptions {
        c: g["linear_probe"]["C"].as_f64().unwrap(),
        ..Default::default()
    };
    let probe = clip::eval::probe::linear_probe(
        (&train_x.features, &train_x.targets),
        (&images.features, &images.targets),
        &classes.labels,
        &opts,
    )
    .unwrap();
    assert_accuracy("linear probe", &probe.accuracy, &g["linear_probe"]);
    // Retrieval from the caption file; the unreadable image drops out with its caption.
    let captions = read_captions(&root.join("captions.csv"), None).unwrap();
    let r = clip
        .evaluate_retrieval(&captions, &[1, 5, 10], false, &mut |_| {})
        .unwrap();
    assert_eq!(r.failed.len(), 1);
    assert_eq!(
        (r.images as u64, r.captions as u64),
        (
            g["retrieval"]["images"].as_u64().unwrap(),
            g["retrieval"]["captions"].as_u64().unwrap()
        )
    );
    for (ours, want) in r
        .recall
        .iter()
        .zip(g["retrieval"]["recall"].as_array().unwrap())
    {
        assert_eq!(ours.text_to_image, want["text_to_image"].as_f64().unwrap());
        assert_eq!(ours.image_to_text, want["image_to_text"].as_f64().unwrap());
    }
}

//! Evaluation as in the CLIP paper and CLIP_benchmark: zero-shot accuracy on an ImageFolder
//! dataset (top-1, top-5, mean per-class recall, per-class table, confusion matrix and its
//! pictures, [`plot`]), the
//! linear probe ([`probe`]), and image-text retrieval recall@k.
//!
//! The metric functions take embeddings, so they can be checked against a Python reference
//! on the same numbers; the [`Clip`] methods here compute the embeddings from files.
//!
//! Ranking rule everywhere: higher score first, equal scores in index order (what a stable
//! sort gives), so results are deterministic.

pub mod plot;
pub mod probe;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use crate::batch::{Embedded, Failure};
use crate::dataset::{Captions, ClassLabels, ImageFolder};
pub use crate::vector::cosine_matrix;
use crate::{Clip, ClipError};
pub use plot::{confusion_heatmap, confusion_picture, confusion_svg};

/// How many entries rank before `target` in `scores`: those with a higher score, and those
/// with an equal score and a lower index.
pub fn rank_of(scores: &[f32], target: usize) -> usize {
    let t = scores[target];
    scores
        .iter()
        .enumerate()
        .filter(|&(i, &s)| s > t || (s == t && i < target))
        .count()
}

/// The index of the highest score (the first of equal ones).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// One class's line of the per-class table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassStats {
    /// The class's label.
    pub label: String,
    /// Images of this class.
    pub support: usize,
    /// Of those, how many were predicted as this class (top-1).
    pub correct: usize,
    /// Images of any class predicted as this class.
    pub predicted: usize,
    /// `correct / support`; `None` without images.
    pub recall: Option<f64>,
    /// `correct / predicted`; `None` when nothing was predicted as this class.
    pub precision: Option<f64>,
}

/// Classification results against the true classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    /// Images scored.
    pub images: usize,
    /// Share whose highest-scoring class is the true one.
    pub top1: f64,
    /// Share whose true class is among the `top5_k` highest.
    pub top5: f64,
    /// The k of `top5`: 5, or the number of classes when there are fewer.
    pub top5_k: usize,
    /// Mean over the classes that have images of their recall (scikit-learn's
    /// `balanced_accuracy_score`).
    pub mean_per_class_recall: f64,
    /// One line per class, in label order.
    pub per_class: Vec<ClassStats>,
    /// `confusion[true][predicted]`: image counts.
    #[serde(skip)]
    pub confusion: Vec<Vec<usize>>,
}

/// Scores the predictions `scores[i]` (one score per label) against `targets[i]`.
pub fn accuracy(scores: &[Vec<f32>], targets: &[usize], labels: &[String]) -> Accuracy {
    let n_labels = labels.len();
    let k5 = n_labels.min(5);
    let mut confusion = vec![vec![0usize; n_labels]; n_labels];
    let (mut top1, mut top5) = (0usize, 0usize);
    for (row, &t) in scores.iter().zip(targets) {
        let rank = rank_of(row, t);
        top1 += usize::from(rank == 0);
        top5 += usize::from(rank < k5);
        confusion[t][argmax(row)] += 1;
    }
    let per_class: Vec<ClassStats> = (0..n_labels)
        .map(|c| {
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|r| r[c]).sum();
            let correct = confusion[c][c];
            let share = |d: usize| (d > 0).then(|| correct as f64 / d as f64);
            ClassStats {
                label: labels[c].clone(),
                support,
                correct,
                predicted,
                recall: share(support),
                precision: share(predicted),
            }
        })
        .collect();
    let recalls: Vec<f64> = per_class.iter().filter_map(|c| c.recall).collect();
    let n = scores.len().max(1) as f64;
    Accuracy {
        images: scores.len(),
        top1: top1 as f64 / n,
        top5: top5 as f64 / n,
        top5_k: k5,
        mean_per_class_recall: recalls.iter().sum::<f64>() / recalls.len().max(1) as f64,
        per_class,
        confusion,
    }
}

/// Recall at one k, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recall {
    /// How many results are looked at.
    pub k: usize,
    /// Share of captions whose image is among the k images most similar to the caption
    /// (CLIP_benchmark's `image_retrieval_recall@k`).
    pub text_to_image: f64,
    /// Share of images with one of their captions among the k captions most similar to the
    /// image (CLIP_benchmark's `text_retrieval_recall@k`).
    pub image_to_text: f64,
}

/// Recall@k for each of `ks`, from image embeddings, caption embeddings and each caption's
/// image. Images without a caption are left out of the image-to-text recall.
pub fn retrieval_recall(
    images: &[Vec<f32>],
    captions: &[Vec<f32>],
    caption_image: &[usize],
    ks: &[usize],
) -> Vec<Recall> {
    // One matrix serves both ways: image i's scores against the captions are column i.
    let by_text = cosine_matrix(captions, images);
    let text_ranks: Vec<usize> = by_text
        .iter()
        .zip(caption_image)
        .map(|(row, &i)| rank_of(row, i))
        .collect();
    let image_ranks: Vec<usize> = (0..images.len())
        .filter_map(|i| {
            let column: Vec<f32> = by_text.iter().map(|row| row[i]).collect();
            (0..captions.len())
                .filter(|&j| caption_image[j] == i)
                .map(|j| rank_of(&column, j))
                .min()
        })
        .collect();
    let share = |ranks: &[usize], k: usize| {
        ranks.iter().filter(|&&r| r < k).count() as f64 / ranks.len().max(1) as f64
    };
    ks.iter()
        .map(|&k| Recall {
            k,
            text_to_image: share(&text_ranks, k),
            image_to_text: share(&image_ranks, k),
        })
        .collect()
}

/// The images of an ImageFolder dataset embedded, with their true labels.
#[derive(Debug, Clone)]
pub struct LabelledFeatures {
    /// Image features of the readable images.
    pub features: Vec<Vec<f32>>,
    /// The label index of each.
    pub targets: Vec<usize>,
    /// The images that could not be read.
    pub failed: Vec<Failure>,
    /// For each class folder of the dataset, in its order: how many of its images were
    /// embedded (those counted in the accuracy), and how many could not be read.
    pub folders: Vec<FolderCount>,
}

/// How many images of a class folder were embedded and how many skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FolderCount {
    /// Images embedded: the class's support.
    pub images: usize,
    /// Images that could not be read, left out.
    pub skipped: usize,
}

impl Clip {
    /// Embeds every image of `dataset`, labelled as `classes` says.
    pub fn encode_image_folder(
        &self,
        dataset: &ImageFolder,
        classes: &ClassLabels,
        progress: &mut dyn FnMut(usize),
    ) -> Result<LabelledFeatures, ClipError> {
        let samples = dataset.samples();
        let paths: Vec<PathBuf> = samples.iter().map(|(p, _)| p.clone()).collect();
        let embedded = self.encode_image_files(&paths, progress)?;
        let targets = embedded
            .kept
            .iter()
            .map(|&i| classes.folder_label[samples[i].1])
            .collect();
        let mut folders: Vec<FolderCount> = dataset
            .classes
            .iter()
            .map(|c| FolderCount {
                images: 0,
                skipped: c.images.len(),
            })
            .collect();
        for &i in &embedded.kept {
            let f = &mut folders[samples[i].1];
            f.images += 1;
            f.skipped -= 1;
        }
        Ok(LabelledFeatures {
            features: embedded.features,
            targets,
            failed: embedded.failed,
            folders,
        })
    }

    /// Zero-shot evaluation on an ImageFolder dataset: embeds the images and scores each
    /// against every label's classifier row (from [`Clip::zero_shot_classifier`], one per
    /// `classes.labels`). Returns the accuracy and the embedded images (for a linear probe).
    pub fn evaluate_zero_shot(
        &self,
        dataset: &ImageFolder,
        classes: &ClassLabels,
        classifier: &[Vec<f32>],
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Accuracy, LabelledFeatures), ClipError> {
        if classifier.len() != classes.labels.len() {
            return Err(ClipError::Dataset {
                path: dataset.root.display().to_string(),
                detail: format!(
                    "{} classifier rows for {} labels",
                    classifier.len(),
                    classes.labels.len()
                ),
            });
        }
        let images = self.encode_image_folder(dataset, classes, progress)?;
        if images.features.is_empty() {
            return Err(ClipError::Dataset {
                path: dataset.root.display().to_string(),
                detail: format!("none of its {} images could be read", images.failed.len()),
            });
        }
        let scores = cosine_matrix(&images.features, classifier);
        Ok((accuracy(&scores, &images.targets, &classes.labels), images))
    }

    /// Retrieval recall@k on image-caption pairs. Images that cannot be read are recorded and
    /// left out with their captions.
    pub fn evaluate_retrieval(
        &self,
        captions: &Captions,
        ks: &[usize],
        truncate: bool,
        progress: &mut dyn FnMut(usize),
    ) -> Result<RetrievalEval, ClipError> {
        let embedded = self.encode_image_files(&captions.images, progress)?;
        // Old image index -> new, for the images kept.
        let mut remap = vec![usize::MAX; captions.images.len()];
        for (new, &old) in embedded.kept.iter().enumerate() {
            remap[old] = new;
        }
        let kept: Vec<(usize, &String)> = captions
            .caption_image
            .iter()
            .zip(&captions.captions)
            .filter(|(&i, _)| remap[i] != usize::MAX)
            .map(|(&i, c)| (remap[i], c))
            .collect();
        if kept.is_empty() {
            return Err(ClipError::Dataset {
                path: captions.source.display().to_string(),
                detail: format!(
                    "none of its {} images could be read (the first: {})",
                    captions.images.len(),
                    embedded.failed.first().map_or("", |f| f.error.as_str())
                ),
            });
        }
        let texts: Vec<&str> = kept.iter().map(|(_, c)| c.as_str()).collect();
        let tokens = self.tokenize_all(&texts, truncate)?;
        let text_features = self.encode_text(&tokens)?;
        let caption_image: Vec<usize> = kept.iter().map(|&(i, _)| i).collect();
        let images = embedded.features.len();
        Ok(RetrievalEval {
            images,
            captions: kept.len(),
            recall: retrieval_recall(&embedded.features, &text_features, &caption_image, ks),
            warnings: trivial_recalls(ks, images, kept.len()),
            failed: embedded.failed,
        })
    }
}

/// Result of [`Clip::evaluate_retrieval`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalEval {
    /// Images evaluated.
    pub images: usize,
    /// Captions evaluated.
    pub captions: usize,
    /// Recall at each k asked for.
    pub recall: Vec<Recall>,
    /// Recalls that say nothing: a k at least the number of images (or captions), whose
    /// recall is 1 by definition.
    pub warnings: Vec<String>,
    /// Images that could not be read (left out with their captions).
    pub failed: Vec<Failure>,
}

/// A warning for each k whose recall is 1 by definition: text->image when k is at least the
/// number of images, both ways when it is at least the number of captions too.
pub fn trivial_recalls(ks: &[usize], images: usize, captions: usize) -> Vec<String> {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    ks.iter()
        .filter_map(|&k| {
            if k >= images.max(captions) {
                Some(format!(
                    "recall@{k} with {} and {} is 1 by definition, both ways",
                    plural(images, "image"),
                    plural(captions, "caption")
                ))
            } else if k >= images {
                Some(format!(
                    "recall@{k} with {} is 1 by definition (text->image)",
                    plural(images, "image")
                ))
            } else {
                None
            }
        })
        .collect()
}

/// The confusion matrix as CSV: a header of predicted labels, then one row per true label.
pub fn confusion_csv(accuracy: &Accuracy) -> Result<String, ClipError> {
    let labels: Vec<&str> = accuracy
        .per_class
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| ClipError::Dataset {
        path: "confusion matrix".into(),
        detail: e.to_string(),
    };
    let mut header = vec!["true \\ predicted"];
    header.extend(&labels);
    w.write_record(&header).map_err(csv_err)?;
    for (label, row) in labels.iter().zip(&accuracy.confusion) {
        let mut record = vec![label.to_string()];
        record.extend(row.iter().map(usize::to_string));
        w.write_record(&record).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| ClipError::Dataset {
        path: "confusion matrix".into(),
        detail: e.to_string(),
    })?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 strings"))
}

/// The per-class table as CSV: label, support, correct, predicted, recall, precision.
pub fn per_class_csv(accuracy: &Accuracy) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    let write = |w: &mut csv::Writer<Vec<u8>>, r: &[String]| {
        w.write_record(r).expect("writing CSV to memory");
    };
    let head = [
        "label",
        "support",
        "correct",
        "predicted",
        "recall",
        "precision",
    ];
    write(&mut w, &head.map(String::from));
    for c in &accuracy.per_class {
        write(
            &mut w,
            &[
                c.label.clone(),
                c.support.to_string(),
                c.correct.to_string(),
                c.predicted.to_string(),
                opt(c.recall),
                opt(c.precision),
            ],
        );
    }
    String::from_utf8(w.into_inner().expect("CSV in memory")).expect("UTF-8")
}

/// Writes `confusion.csv`, `confusion.png`, `confusion.svg` and `per_class.csv` for `accuracy`
/// into `dir` (created if needed), with `prefix` before each name; `title` heads the pictures.
/// Returns the paths written.
pub fn write_accuracy_files(
    dir: &Path,
    prefix: &str,
    title: &str,
    accuracy: &Accuracy,
) -> Result<Vec<PathBuf>, ClipError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |error| ClipError::Write { path, error }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let csv_path = dir.join(format!("{prefix}confusion.csv"));
    std::fs::write(&csv_path, confusion_csv(accuracy)?).map_err(io(&csv_path))?;
    let table = dir.join(format!("{prefix}per_class.csv"));
    std::fs::write(&table, per_class_csv(accuracy)).map_err(io(&table))?;
    let labels: Vec<String> = accuracy.per_class.iter().map(|c| c.label.clone()).collect();
    let png = dir.join(format!("{prefix}confusion.png"));
    let (w, h, rgb) = confusion_picture(&accuracy.confusion, &labels, title);
    clip_preprocess::image::write_png_rgb(&png, w, h, &rgb).map_err(io(&png))?;
    let svg = dir.join(format!("{prefix}confusion.svg"));
    std::fs::write(&svg, confusion_svg(&accuracy.confusion, &labels, title)).map_err(io(&svg))?;
    Ok(vec![csv_path, png, svg, table])
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ClipError> {
    let io = |error| ClipError::Write {
        path: path.display().to_string(),
        error,
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    serde_json::to_writer_pretty(&mut f, value).map_err(|e| io(e.into()))?;
    f.write_all(b"\n").map_err(io)?;
    f.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_break_ties_by_index() {
        assert_eq!(rank_of(&[0.5, 0.9, 0.5], 0), 1);
        assert_eq!(rank_of(&[0.5, 0.9, 0.5], 2), 2);
        assert_eq!(argmax(&[0.2, 0.7, 0.7]), 1);
    }

    #[test]
    fn accuracy_by_hand() {
        let labels: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        // Image 0 (a) right; image 1 (a) predicted b, a second; image 2 (b) a tie between b
        // and c: b wins by index; class c has no images; d is predicted by nothing.
        let scores = vec![
            vec![0.9, 0.1, 0.0, 0.0],
            vec![0.5, 0.6, 0.0, 0.1],
            vec![0.1, 0.4, 0.4, 0.0],
        ];
        let acc = accuracy(&scores, &[0, 0, 1], &labels);
        assert_eq!(acc.top1, 2.0 / 3.0);
        assert_eq!(acc.top5, 1.0);
        assert_eq!(acc.top5_k, 4);
        assert_eq!(acc.confusion[0], [1, 1, 0, 0]);
        assert_eq!(acc.confusion[1], [0, 1, 0, 0]);
        // Recall: a 1/2, b 1/1; c has no images and does not count.
        assert_eq!(acc.mean_per_class_recall, 0.75);
        assert_eq!(acc.per_class[2].recall, None);
        assert_eq!(acc.per_class[1].precision, Some(0.5));
        assert_eq!(acc.per_class[3].precision, None);
        let csv = confusion_csv(&acc).unwrap();
        assert_eq!(csv.lines().next().unwrap(), "true \\ predicted,a,b,c,d");
        assert_eq!(csv.lines().nth(1).unwrap(), "a,1,1,0,0");
        let table = per_class_csv(&acc);
        assert_eq!(table.lines().nth(3).unwrap(), "c,0,0,0,,");
        let (w, h, rgb) = confusion_heatmap(&acc.confusion);
        assert_eq!((w, h, rgb.len()), (192, 192, 192 * 192 * 3));
        assert_eq!(&rgb[..3], &plot::viridis(0.5));
        assert_eq!(&rgb[(2 * 48 * 192) * 3..][..3], &[128, 128, 128]);
    }

    #[test]
    fn recalls_that_are_one_by_definition_are_told() {
        assert_eq!(
            trivial_recalls(&[1, 15, 20, 50], 15, 21),
            [
                "recall@15 with 15 images is 1 by definition (text->image)",
                "recall@20 with 15 images is 1 by definition (text->image)",
                "recall@50 with 15 images and 21 captions is 1 by definition, both ways",
            ]
        );
        assert_eq!(
            trivial_recalls(&[1], 1, 1),
            ["recall@1 with 1 image and 1 caption is 1 by definition, both ways"]
        );
        assert!(trivial_recalls(&[1, 5, 10], 15, 21).is_empty());
    }

    #[test]
    fn recall_both_ways_by_hand() {
        // Two images; captions 0 and 1 of image 0, caption 2 of image 1.
        let images = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let captions = vec![vec![1.0, 0.1], vec![0.0, 1.0], vec![0.1, 1.0]];
        let r = retrieval_recall(&images, &captions, &[0, 0, 1], &[1, 2]);
        // Caption 1 is closest to image 1: text->image @1 = 2/3.
        assert_eq!(r[0].text_to_image, 2.0 / 3.0);
        assert_eq!(r[1].text_to_image, 1.0);
        // Image 0's best caption is 0 (right); image 1's best is 1 (image 0's): @1 = 1/2.
        assert_eq!(r[0].image_to_text, 0.5);
        assert_eq!(r[1].image_to_text, 1.0);
    }
}

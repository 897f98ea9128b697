//! Zero-shot classifiers from class names and prompt templates, as in the CLIP paper: each
//! class is the mean of the L2-normalized text embeddings of its prompts, normalized again
//! (what open_clip's `build_zero_shot_classifier` computes).
//!
//! The built-in class lists and template sets are the ones the CLIP authors published
//! (`data/zeroshot/*.txt`, made by `tools/zeroshot/gen_lists.py`; each file names its source).

use crate::{normalized, Clip, ClipError};

/// Names of the built-in class lists and template sets.
pub const BUILTIN: [&str; 3] = ["imagenet", "cifar10", "cifar100"];

fn builtin_text(name: &str, kind: &str) -> Option<&'static str> {
    Some(match (name, kind) {
        ("imagenet", "classes") => include_str!("../data/zeroshot/imagenet.classes.txt"),
        ("imagenet", "templates") => include_str!("../data/zeroshot/imagenet.templates.txt"),
        ("cifar10", "classes") => include_str!("../data/zeroshot/cifar10.classes.txt"),
        ("cifar10", "templates") => include_str!("../data/zeroshot/cifar10.templates.txt"),
        ("cifar100", "classes") => include_str!("../data/zeroshot/cifar100.classes.txt"),
        ("cifar100", "templates") => include_str!("../data/zeroshot/cifar100.templates.txt"),
        _ => return None,
    })
}

/// The entries of a list file: one a line, blank lines and `#` comments skipped, trimmed.
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// A built-in class list (`imagenet`, `cifar10`, `cifar100`), with the CLIP authors' names.
pub fn builtin_classes(name: &str) -> Option<Vec<String>> {
    builtin_text(&name.to_ascii_lowercase(), "classes").map(parse_list)
}

/// Prompt templates: `{}` in each is replaced by the class name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates(Vec<String>);

impl Templates {
    /// The class name as it is (one template, `{}`).
    pub fn none() -> Templates {
        Templates(vec!["{}".into()])
    }

    /// Templates from a list; each must contain `{}`.
    pub fn new(templates: Vec<String>, source: &str) -> Result<Templates, ClipError> {
        if templates.is_empty() {
            return Err(ClipError::Templates {
                source_name: source.into(),
                detail: "no templates".into(),
            });
        }
        if let Some(bad) = templates.iter().find(|t| !t.contains("{}")) {
            return Err(ClipError::Templates {
                source_name: source.into(),
                detail: format!("template {bad:?} has no {{}} for the class name"),
            });
        }
        Ok(Templates(templates))
    }

    /// A built-in set (`imagenet`: the 80 templates of the paper, `cifar10`, `cifar100`).
    pub fn builtin(name: &str) -> Option<Templates> {
        builtin_text(&name.to_ascii_lowercase(), "templates").map(|t| Templates(parse_list(t)))
    }

    /// The templates.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The prompts of one class.
    pub fn prompts(&self, class: &str) -> Vec<String> {
        self.0.iter().map(|t| t.replace("{}", class)).collect()
    }
}

impl Clip {
    /// The zero-shot classifier of `classes` with `templates`: one unit-length embedding per
    /// class, the renormalized mean of its prompts' normalized text embeddings. Pass the result
    /// to [`Clip::classify`] as the label features.
    pub fn zero_shot_classifier<S: AsRef<str>>(
        &self,
        classes: &[S],
        templates: &Templates,
        truncate: bool,
    ) -> Result<Vec<Vec<f32>>, ClipError> {
        let per_class = templates.as_slice().len();
        let prompts: Vec<String> = classes
            .iter()
            .flat_map(|c| templates.prompts(c.as_ref()))
            .collect();
        let tokens = self.tokenize_all(&prompts, truncate)?;
        let features = self.encode_text(&tokens)?;
        Ok(features
            .chunks(per_class)
            .map(|group| {
                let mut mean = vec![0f32; group[0].len()];
                for f in group {
                    for (m, v) in mean.iter_mut().zip(normalized(f)) {
                        *m += v;
                    }
                }
                for m in &mut mean {
                    *m /= per_class as f32;
                }
                normalized(&mean)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lists_have_the_published_sizes() {
        assert_eq!(builtin_classes("imagenet").unwrap().len(), 1000);
        assert_eq!(builtin_classes("CIFAR10").unwrap().len(), 10);
        assert_eq!(builtin_classes("cifar100").unwrap().len(), 100);
        assert_eq!(Templates::builtin("imagenet").unwrap().as_slice().len(), 80);
        assert_eq!(Templates::builtin("cifar10").unwrap().as_slice().len(), 18);
        assert!(builtin_classes("mnist").is_none());
        for name in BUILTIN {
            for t in Templates::builtin(name).unwrap().as_slice() {
                assert!(t.contains("{}"), "{name}: {t}");
            }
        }
        assert_eq!(builtin_classes("imagenet").unwrap()[0], "tench");
    }

    #[test]
    fn templates_need_a_placeholder() {
        let t = Templates::new(vec!["a photo of a {}.".into()], "x").unwrap();
        assert_eq!(t.prompts("cat"), ["a photo of a cat."]);
        let e = Templates::new(vec!["a photo".into()], "t.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.txt") && e.contains("\"a photo\""), "{e}");
        assert!(Templates::new(vec![], "t.txt").is_err());
        assert_eq!(Templates::none().prompts("dog"), ["dog"]);
        assert_eq!(parse_list("# c\n a \n\nb\n"), ["a", "b"]);
    }
}

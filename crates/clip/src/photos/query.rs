//! Queries: weighted texts and example images turned into one query vector.

use std::path::{Path, PathBuf};

use super::{mtime_ns, Index};
use crate::{normalized, Clip, ClipError};

/// One part of a search query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryTerm {
    /// A text, embedded by the text tower.
    Text(String),
    /// An image file, embedded by the vision tower (or taken from the index when it is there).
    Image(PathBuf),
}

/// A search query: weighted texts and example images, as a user writes it.
///
/// The syntax is the one `clip search` and the server take: each text is one term, except
/// that its words starting with `-` are terms of their own with the opposite weight ("beach
/// -people" finds beaches without people); images follow the texts; weights, when given,
/// are one per text and image in that order (default 1 each).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    terms: Vec<(QueryTerm, f32)>,
}

impl Query {
    /// Parses texts, example images and their weights (empty: 1 each).
    pub fn parse(
        texts: &[String],
        images: &[PathBuf],
        weights: &[f32],
    ) -> Result<Query, ClipError> {
        let invalid = |detail: String| ClipError::Query { detail };
        if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
            return Err(invalid(format!("weight {w} is not a number")));
        }
        let n_terms = texts.len() + images.len();
        if !weights.is_empty() && weights.len() != n_terms {
            return Err(invalid(format!(
                "{} weights for {n_terms} query terms (texts then images)",
                weights.len()
            )));
        }
        let weight = |i: usize| weights.get(i).copied().unwrap_or(1.0);
        let mut terms = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let (positive, negatives) = split_negatives(t);
            if !positive.is_empty() {
                terms.push((QueryTerm::Text(positive), weight(i)));
            }
            for n in negatives {
                terms.push((QueryTerm::Text(n), -weight(i)));
            }
        }
        for (j, p) in images.iter().enumerate() {
            terms.push((QueryTerm::Image(p.clone()), weight(texts.len() + j)));
        }
        if terms.is_empty() {
            return Err(invalid("the query has nothing to look for".into()));
        }
        Ok(Query { terms })
    }

    /// The terms with their weights, negative for words to avoid.
    pub fn terms(&self) -> &[(QueryTerm, f32)] {
        &self.terms
    }
}

/// Splits a text into its positive part and its `-word` terms.
fn split_negatives(text: &str) -> (String, Vec<String>) {
    let mut positive = Vec::new();
    let mut negative = Vec::new();
    for word in text.split_whitespace() {
        match word.strip_prefix('-') {
            Some(w) if !w.is_empty() => negative.push(w.to_string()),
            _ => positive.push(word),
        }
    }
    (positive.join(" "), negative)
}

impl Clip {
    /// The query vector of weighted terms: the sum of each term's unit embedding times its
    /// weight (negative weights push results away from a term), normalized. An image already
    /// in `index`, unchanged since it was embedded, is not embedded again.
    pub fn query_vector(
        &self,
        terms: &[(QueryTerm, f32)],
        index: Option<&Index>,
        truncate: bool,
    ) -> Result<Vec<f32>, ClipError> {
        let mut q = vec![0f32; self.embedding_dim()];
        for (term, weight) in terms {
            let e = match term {
                QueryTerm::Text(t) => {
                    let tokens = self.tokenize(t, truncate)?;
                    self.encode_text(&[tokens])?.remove(0)
                }
                QueryTerm::Image(path) => {
                    let stored = match index {
                        Some(index) => stored_embedding(index, path)?,
                        None => None,
                    };
                    match stored {
                        Some(v) => v,
                        None => self.encode_image(&[self.load_image(path)?])?.remove(0),
                    }
                }
            };
            for (a, b) in q.iter_mut().zip(normalized(&e)) {
                *a += weight * b;
            }
        }
        let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm < 1e-4 {
            return Err(ClipError::Query {
                detail: "the terms cancel out (e.g. \"cat -cat\"), leaving nothing to look for"
                    .into(),
            });
        }
        Ok(normalized(&q))
    }
}

/// The stored embedding of the image file at `path`, if it is indexed and its size and
/// modification time are those it was embedded with.
fn stored_embedding(index: &Index, path: &Path) -> Result<Option<Vec<f32>>, ClipError> {
    let Some(canonical) = path.canonicalize().ok() else {
        return Ok(None);
    };
    let (Some(text), Ok(meta)) = (canonical.to_str(), std::fs::metadata(&canonical)) else {
        return Ok(None);
    };
    match index.file(text)? {
        Some(row)
            if row.error.is_none() && row.size == meta.len() && row.mtime_ns == mtime_ns(&meta) =>
        {
            Ok(index.embedding_of(text)?)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_words_are_negative_terms() {
        assert_eq!(
            split_negatives("beach -people  at dusk -"),
            ("beach at dusk -".to_string(), vec!["people".to_string()])
        );
    }

    #[test]
    fn weights_follow_texts_then_images() {
        let q = Query::parse(
            &["beach -people".into()],
            &[PathBuf::from("a.jpg")],
            &[2.0, 0.5],
        )
        .unwrap();
        assert_eq!(
            q.terms(),
            &[
                (QueryTerm::Text("beach".into()), 2.0),
                (QueryTerm::Text("people".into()), -2.0),
                (QueryTerm::Image("a.jpg".into()), 0.5),
            ]
        );
        let e = Query::parse(&["a".into()], &[], &[1.0, 2.0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid query: 2 weights for 1 query terms (texts then images)"
        );
        assert!(Query::parse(&["-".into()], &[], &[]).is_ok());
        assert!(Query::parse(&[" ".into()], &[], &[]).is_err());
        assert!(Query::parse(&["a".into()], &[], &[f32::NAN]).is_err());
    }
}

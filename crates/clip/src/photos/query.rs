//! Queries: weighted texts and example images turned into one query vector.

use std::path::{Path, PathBuf};

use super::{mtime_ns, Hit, Index, Vectors};
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

/// A query embedded: the weighted sum of the unit embeddings of its terms to look for
/// (`seek`), and of those to avoid (`avoid`, the terms of negative weight, with the weight's
/// size), kept apart so that scores can stay on the scale of a plain query (see [`search`]).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryVector {
    seek: Vec<f32>,
    avoid: Vec<f32>,
}

impl QueryVector {
    /// The direction results are ranked by: `seek − avoid`, normalized.
    pub fn direction(&self) -> Vec<f32> {
        normalized(&self.combined())
    }

    fn combined(&self) -> Vec<f32> {
        self.seek
            .iter()
            .zip(&self.avoid)
            .map(|(s, a)| s - a)
            .collect()
    }

    /// How an index's vectors are scored: `(direction, scale, offset)`, a row's score being
    /// `scale · cos(row, direction) + offset`.
    ///
    /// Without terms to avoid the score is the cosine similarity to `seek` (scale 1, offset 0).
    /// With them, it is `cos(row, seek) − (row·avoid − mean·avoid) / |seek|`, `mean` being the
    /// mean of the rows: the cosine similarity to what the query looks for, lowered by how
    /// much more than the index's average image the row matches what it avoids (raised by
    /// how much less). It ranks as `cos(row, seek − avoid)` does, and its mean over the index
    /// is that of the plain query's, so one `--min-score` serves both. A query of terms to
    /// avoid only is scored by the cosine similarity to `−avoid`.
    fn scorer(&self, vectors: &Vectors) -> (Vec<f32>, f32, f32) {
        let combined = self.combined();
        let direction = normalized(&combined);
        let seek_norm = norm(&self.seek);
        let avoid_norm = norm(&self.avoid);
        if seek_norm < 1e-6 || avoid_norm == 0.0 || vectors.is_empty() {
            return (direction, 1.0, 0.0);
        }
        let scale = norm(&combined) / seek_norm;
        // mean_rows(row · avoid) / |seek|, as |avoid| · mean(cos(row, avoid)) / |seek|.
        let cosines = vectors.scores(&self.avoid);
        let mean = cosines.iter().map(|&c| f64::from(c)).sum::<f64>() / cosines.len() as f64;
        let offset = (mean * f64::from(avoid_norm / seek_norm)) as f32;
        (direction, scale, offset)
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// What [`search`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// The best `k` rows scoring at least the minimum score, best first.
    pub hits: Vec<Hit>,
    /// The best score of all, kept or not; `None` for an index without images. When `hits`
    /// is empty and this is not, every score was below the minimum.
    pub best: Option<f32>,
}

/// The `k` rows of `vectors` that match `query` best, best first (equal scores in row order),
/// leaving out those scoring below `min_score`. Scores are cosine similarities for queries
/// without terms to avoid, and on the same scale with them (see [`QueryVector`]).
pub fn search(
    vectors: &Vectors,
    query: &QueryVector,
    k: usize,
    min_score: Option<f32>,
) -> SearchResults {
    let (direction, scale, offset) = query.scorer(vectors);
    let hits: Vec<Hit> = vectors
        .top_k(&direction, k)
        .into_iter()
        .map(|h| Hit {
            index: h.index,
            score: scale * h.score + offset,
        })
        .collect();
    let best = hits.first().map(|h| h.score);
    SearchResults {
        hits: hits
            .into_iter()
            .filter(|h| min_score.is_none_or(|m| h.score >= m))
            .collect(),
        best,
    }
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
        Ok(self.embed_terms(terms, index, truncate)?.direction())
    }

    /// `query` embedded for [`search`]; as [`Clip::query_vector`], with what to look for and
    /// what to avoid kept apart.
    pub fn embed_query(
        &self,
        query: &Query,
        index: Option<&Index>,
        truncate: bool,
    ) -> Result<QueryVector, ClipError> {
        self.embed_terms(query.terms(), index, truncate)
    }

    fn embed_terms(
        &self,
        terms: &[(QueryTerm, f32)],
        index: Option<&Index>,
        truncate: bool,
    ) -> Result<QueryVector, ClipError> {
        let dim = self.embedding_dim();
        let (mut seek, mut avoid) = (vec![0f32; dim], vec![0f32; dim]);
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
            let sum = if *weight < 0.0 { &mut avoid } else { &mut seek };
            for (a, b) in sum.iter_mut().zip(normalized(&e)) {
                *a += weight.abs() * b;
            }
        }
        let query = QueryVector { seek, avoid };
        if norm(&query.combined()) < 1e-4 {
            return Err(ClipError::Query {
                detail: "the terms cancel out (e.g. \"cat -cat\"), leaving nothing to look for"
                    .into(),
            });
        }
        Ok(query)
    }
}

/// The stored embedding of the image file at `path`, if it is indexed and its size and
/// modification time are those it was embedded with.
pub(super) fn stored_embedding(index: &Index, path: &Path) -> Result<Option<Vec<f32>>, ClipError> {
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

    fn rows(v: &[&[f32]]) -> Vectors {
        let items = v
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("{i}"), r.to_vec()))
            .collect();
        Vectors::new(items, v[0].len())
    }

    #[test]
    fn a_plain_query_scores_the_cosine_similarity() {
        let v = rows(&[&[1.0, 0.0, 0.0], &[0.6, 0.8, 0.0], &[0.0, 0.0, 1.0]]);
        let q = QueryVector {
            seek: vec![2.0, 0.0, 0.0],
            avoid: vec![0.0; 3],
        };
        let r = search(&v, &q, 10, None);
        let scores: Vec<f32> = r.hits.iter().map(|h| h.score).collect();
        assert_eq!(scores, [1.0, 0.6, 0.0]);
        assert_eq!(r.best, Some(1.0));
        // Everything below the minimum: no hits, and the best score is still told.
        let r = search(&v, &q, 10, Some(1.5));
        assert!(r.hits.is_empty());
        assert_eq!(r.best, Some(1.0));
        let empty = Vectors::new(Vec::new(), 3);
        assert_eq!(search(&empty, &q, 10, None).best, None);
    }

    /// Subtracting a term ranks as the normalized difference does, and keeps the scores on
    /// the plain query's scale: same mean over the index, and a row that matches the avoided
    /// term as much as the average row keeps its plain score.
    #[test]
    fn terms_to_avoid_keep_the_score_scale() {
        let seek = normalized(&[1.0, 0.2, 0.1, 0.0]);
        let avoid = normalized(&[0.7, 0.7, 0.0, 0.1]);
        let v = rows(&[
            &[0.9, 0.1, 0.3, 0.2],
            &[0.8, 0.6, 0.0, 0.1],
            &[0.2, 0.1, 0.9, 0.4],
            &[0.5, 0.9, 0.1, 0.0],
            &[0.7, 0.0, 0.1, 0.7],
        ]);
        let plain = QueryVector {
            seek: seek.clone(),
            avoid: vec![0.0; 4],
        };
        let q = QueryVector {
            seek: seek.clone(),
            avoid: avoid.clone(),
        };
        let with = search(&v, &q, 10, None).hits;
        let without = search(&v, &plain, 10, None).hits;
        // Ranked by the cosine similarity to seek − avoid.
        let cos = v.scores(&q.combined());
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| cos[b].total_cmp(&cos[a]));
        assert_eq!(with.iter().map(|h| h.index).collect::<Vec<_>>(), order);
        let mean = |h: &[Hit]| h.iter().map(|h| h.score).sum::<f32>() / h.len() as f32;
        assert!((mean(&with) - mean(&without)).abs() < 1e-5);
        // Each score: cos(row, seek) − (cos(row, avoid) − mean cos(·, avoid)).
        let to_avoid = v.scores(&avoid);
        let mean_avoid = to_avoid.iter().sum::<f32>() / to_avoid.len() as f32;
        for h in &with {
            let expected =
                super::super::dot(v.vector(h.index), &seek) - (to_avoid[h.index] - mean_avoid);
            assert!((h.score - expected).abs() < 1e-5, "{h:?} {expected}");
        }
        // The old score, the cosine similarity to seek − avoid, was on another scale.
        assert!(cos.iter().cloned().fold(f32::MIN, f32::max) < with[0].score - 0.2);
    }
}

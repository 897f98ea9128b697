//! Exact search: every stored vector scored against the query, top-k kept.

use rayon::prelude::*;

/// Unit-length vectors held in memory, one row per indexed file, in path order.
#[derive(Debug, Clone)]
pub struct Vectors {
    paths: Vec<String>,
    dim: usize,
    data: Vec<f32>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Row of the vector (its file is [`Vectors::path`]).
    pub index: usize,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// Dot product with sixteen running sums, so that it vectorizes (one running sum would have
/// to be added in order).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `v` scaled to unit length (unchanged when all zeros).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    if norm == 0.0 {
        v.to_vec()
    } else {
        v.iter().map(|x| x / norm).collect()
    }
}

impl Vectors {
    /// Rows from (path, vector) pairs of length `dim`, normalized.
    pub fn new(items: Vec<(String, Vec<f32>)>, dim: usize) -> Vectors {
        let mut paths = Vec::with_capacity(items.len());
        let mut data = Vec::with_capacity(items.len() * dim);
        for (p, v) in items {
            assert_eq!(v.len(), dim, "vector of {p}");
            paths.push(p);
            data.extend(normalized(&v));
        }
        Vectors { paths, dim, data }
    }

    /// Rows from a flat buffer of `paths.len()` vectors of length `dim`, normalized.
    pub fn from_flat(paths: Vec<String>, dim: usize, mut data: Vec<f32>) -> Vectors {
        assert_eq!(data.len(), paths.len() * dim, "one vector per path");
        if dim > 0 {
            data.par_chunks_mut(dim).for_each(|row| {
                let norm = dot(row, row).sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|x| *x /= norm);
                }
            });
        }
        Vectors { paths, dim, data }
    }

    /// How many vectors.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Their size.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The file of row `i`.
    pub fn path(&self, i: usize) -> &str {
        &self.paths[i]
    }

    /// Row `i` (unit length).
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..][..self.dim]
    }

    /// The row of a file, if it is there.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.paths.binary_search_by(|p| p.as_str().cmp(path)).ok()
    }

    /// Cosine similarity of every row to `query` (any length; it is normalized here).
    pub fn scores(&self, query: &[f32]) -> Vec<f32> {
        let q = normalized(query);
        self.data
            .par_chunks(self.dim.max(1) * 1024)
            .flat_map_iter(|block| {
                block
                    .chunks_exact(self.dim.max(1))
                    .map(|row| dot(row, &q))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The `k` rows most similar to `query`, best first; equal scores in row (path) order.
    /// Blocks of rows are scored on all cores, each keeping its own best `k`, so the full
    /// list of scores is never stored; then the blocks' best are merged.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<Hit> {
        const BLOCK: usize = 4096;
        let dim = self.dim.max(1);
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let q = normalized(query);
        let candidates: Vec<Hit> = self
            .data
            .par_chunks(dim * BLOCK)
            .enumerate()
            .flat_map_iter(|(b, block)| {
                let scores: Vec<f32> = block.chunks_exact(dim).map(|row| dot(row, &q)).collect();
                top_k_of(&scores, k).into_iter().map(move |h| Hit {
                    index: b * BLOCK + h.index,
                    score: h.score,
                })
            })
            .collect();
        // The merge keeps the same order: score, then row.
        let scores: Vec<f32> = candidates.iter().map(|h| h.score).collect();
        top_k_of(&scores, k)
            .into_iter()
            .map(|h| candidates[h.index].clone())
            .collect()
    }
}

impl Vectors {
    /// Groups of near-identical rows among `rows` (all rows when `None`): rows joined when
    /// their cosine similarity is at least `threshold` (less 1e-6, so identical vectors always
    /// join despite rounding), transitively. Each group lists its rows in order, groups in the
    /// order of their first row; rows alone are left out. Every pair is compared (n²/2 dot
    /// products, on all cores), a block of rows at a time, so memory stays bounded however
    /// many pairs match.
    pub fn near_duplicates(&self, rows: Option<&[usize]>, threshold: f32) -> Vec<Vec<usize>> {
        const BLOCK: usize = 256;
        let all: Vec<usize>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..self.len()).collect();
                &all
            }
        };
        let threshold = threshold - 1e-6;
        // Union-find over positions in `rows`.
        let mut parent: Vec<usize> = (0..rows.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for start in (0..rows.len()).step_by(BLOCK) {
            let end = (start + BLOCK).min(rows.len());
            let pairs: Vec<(usize, usize)> = (start..end)
                .into_par_iter()
                .flat_map_iter(|a| {
                    let va = self.vector(rows[a]);
                    (a + 1..rows.len())
                        .filter(move |&b| dot(va, self.vector(rows[b])) >= threshold)
                        .map(move |b| (a, b))
                })
                .collect();
            for (a, b) in pairs {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                if ra != rb {
                    parent[ra.max(rb)] = ra.min(rb);
                }
            }
        }
        let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, &row) in rows.iter().enumerate() {
            let r = root(&mut parent, i);
            groups.entry(r).or_default().push(row);
        }
        let mut out: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
        for g in &mut out {
            g.sort_unstable();
        }
        out.sort();
        out
    }
}

/// The `k` highest of `scores`, best first; equal scores in index order.
pub fn top_k_of(scores: &[f32], k: usize) -> Vec<Hit> {
    let order = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, order);
        idx.truncate(k);
    }
    idx.sort_by(order);
    idx.into_iter()
        .map(|index| Hit {
            index,
            score: scores[index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_with_ties_in_order() {
        let hits = top_k_of(&[0.1, 0.9, 0.5, 0.9, -1.0], 3);
        let got: Vec<(usize, f32)> = hits.iter().map(|h| (h.index, h.score)).collect();
        assert_eq!(got, [(1, 0.9), (3, 0.9), (2, 0.5)]);
        assert_eq!(top_k_of(&[0.3], 10).len(), 1);
        assert!(top_k_of(&[], 3).is_empty());
        assert!(top_k_of(&[1.0], 0).is_empty());
    }

    #[test]
    fn near_duplicates_are_grouped_transitively() {
        let v = Vectors::new(
            vec![
                ("a".into(), vec![1.0, 0.0, 0.0]),
                ("b".into(), vec![0.0, 1.0, 0.0]),
                ("c".into(), vec![0.99, 0.14, 0.0]),
                ("d".into(), vec![0.0, 0.0, 1.0]),
                ("e".into(), vec![0.0, 0.0, 2.0]),
                ("f".into(), vec![0.96, 0.28, 0.0]),
            ],
            3,
        );
        // a~c (0.99) and c~f (0.99) join a, c, f although a~f is 0.96; d = e.
        assert_eq!(v.near_duplicates(None, 0.98), [vec![0, 2, 5], vec![3, 4]]);
        assert_eq!(v.near_duplicates(Some(&[0, 1, 3, 4]), 0.98), [vec![3, 4]]);
        assert!(v.near_duplicates(None, 1.01).is_empty());
    }

    #[test]
    fn vectors_are_normalized_and_scored_by_cosine() {
        let v = Vectors::new(
            vec![
                ("a".into(), vec![3.0, 4.0]),
                ("b".into(), vec![0.0, 2.0]),
                ("c".into(), vec![-1.0, 0.0]),
            ],
            2,
        );
        assert_eq!(v.vector(0), [0.6, 0.8]);
        let hits = v.top_k(&[0.0, 10.0], 2);
        assert_eq!((hits[0].index, hits[0].score), (1, 1.0));
        assert_eq!((hits[1].index, hits[1].score), (0, 0.8));
        assert_eq!(v.find("c"), Some(2));
        assert_eq!(v.find("z"), None);
        let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let naive: f32 = x.iter().map(|a| a * a).sum();
        assert!((dot(&x, &x) - naive).abs() < 1e-3);
    }
}

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

/// Most candidate pairs a row keeps from the all-pairs scan (its most similar later rows), so
/// that memory stays bounded at low thresholds; groups are not limited to this size (a group
/// grows through the pairs of each of its members).
const MAX_PAIRS_PER_ROW: usize = 64;

impl Vectors {
    /// Groups of near-identical rows among `rows` (all rows when `None`) by complete linkage:
    /// every two rows of a group have a cosine similarity of at least `threshold` (less 1e-6,
    /// so identical vectors always join despite rounding). A chain of similar rows (a burst of
    /// photos: A like B, B like C, A less like C) does not make a group of its ends.
    ///
    /// Every pair is compared (n²/2 dot products, on all cores, a block of rows at a time);
    /// the pairs at or above the threshold (up to 64 per row, its most similar) are taken
    /// from the most similar down, and each joins the groups of its two rows when every row
    /// of one is at least `threshold` similar to every row of the other. The result depends
    /// only on the vectors and their order: ties go to the earlier rows. Each group lists its
    /// rows in order, groups in the order of their first row; rows alone are left out.
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
        // Candidate pairs (positions in `rows`), each row's most similar later rows.
        let mut pairs: Vec<(f32, u32, u32)> = Vec::new();
        for start in (0..rows.len()).step_by(BLOCK) {
            let end = (start + BLOCK).min(rows.len());
            let block: Vec<(f32, u32, u32)> = (start..end)
                .into_par_iter()
                .flat_map_iter(|a| {
                    let va = self.vector(rows[a]);
                    let mut near: Vec<(f32, u32, u32)> = (a + 1..rows.len())
                        .filter_map(|b| {
                            let s = dot(va, self.vector(rows[b]));
                            (s >= threshold).then_some((s, a as u32, b as u32))
                        })
                        .collect();
                    if near.len() > MAX_PAIRS_PER_ROW {
                        // The best few without sorting them all (a low threshold keeps most
                        // of the rows); the final order comes from the sort of all pairs.
                        near.select_nth_unstable_by(MAX_PAIRS_PER_ROW - 1, by_score);
                        near.truncate(MAX_PAIRS_PER_ROW);
                    }
                    near
                })
                .collect();
            pairs.extend(block);
        }
        pairs.sort_by(by_score);
        // Groups by position: each position's group, each group's members, and a version per
        // group that changes when it grows. A join refused stays refused while neither group
        // changed (and growing never makes a refused join possible, so this only saves work).
        let mut group_of: Vec<usize> = (0..rows.len()).collect();
        let mut members: Vec<Vec<usize>> = (0..rows.len()).map(|i| vec![i]).collect();
        let mut version: Vec<u64> = (0..rows.len() as u64).collect();
        let mut next_version = rows.len() as u64;
        let mut refused: std::collections::HashSet<(u64, u64)> = Default::default();
        for (_, a, b) in pairs {
            let (ga, gb) = (group_of[a as usize], group_of[b as usize]);
            if ga == gb || refused.contains(&(version[ga], version[gb])) {
                continue;
            }
            // Complete linkage: every cross pair, checked on all cores (two large groups of
            // a burst would otherwise cost |A|·|B| dot products on one).
            let all_similar = members[ga].par_iter().all(|&x| {
                let vx = self.vector(rows[x]);
                members[gb]
                    .iter()
                    .all(|&y| dot(vx, self.vector(rows[y])) >= threshold)
            });
            if !all_similar {
                refused.insert((version[ga], version[gb]));
                continue;
            }
            let (into, from) = if members[ga].len() >= members[gb].len() {
                (ga, gb)
            } else {
                (gb, ga)
            };
            let moved = std::mem::take(&mut members[from]);
            for &m in &moved {
                group_of[m] = into;
            }
            members[into].extend(moved);
            version[into] = next_version;
            next_version += 1;
        }
        let mut out: Vec<Vec<usize>> = members
            .into_iter()
            .filter(|g| g.len() > 1)
            .map(|g| g.into_iter().map(|i| rows[i]).collect())
            .collect();
        for g in &mut out {
            g.sort_unstable();
        }
        out.sort();
        out
    }
}

/// Most similar first; equal scores in the order of their rows.
fn by_score(x: &(f32, u32, u32), y: &(f32, u32, u32)) -> std::cmp::Ordering {
    y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2))
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

    /// A unit vector in the plane at `degrees` from the first axis: the cosine of two of them
    /// is the cosine of the angle between them.
    fn at(name: &str, degrees: f32) -> (String, Vec<f32>) {
        let r = degrees.to_radians();
        (name.into(), vec![r.cos(), r.sin(), 0.0])
    }

    #[test]
    fn a_chain_of_near_duplicates_does_not_group_its_ends() {
        // a–b at 10° (0.985 ≥ 0.98), b–c at 8° (0.990), but a–c at 18° is 0.951: a chain.
        let v = Vectors::new(vec![at("a", 0.0), at("b", 10.0), at("c", 18.0)], 3);
        let (ab, ac) = (dot(v.vector(0), v.vector(1)), dot(v.vector(0), v.vector(2)));
        assert!(ab > 0.98 && ac < 0.96, "{ab} {ac}");
        // The closer pair joins first; a cannot join it, since a–c is below the threshold.
        assert_eq!(v.near_duplicates(None, 0.98), [vec![1, 2]]);
        // The other way round: a–b at 8°, b–c at 10°: a goes with b, c is left alone.
        let w = Vectors::new(vec![at("a", 0.0), at("b", 8.0), at("c", 18.0)], 3);
        assert_eq!(w.near_duplicates(None, 0.98), [vec![0, 1]]);
        // Below the chain's weakest pair, all three are one group.
        assert_eq!(v.near_duplicates(None, 0.9), [vec![0, 1, 2]]);
    }

    #[test]
    fn every_two_rows_of_a_group_are_at_least_the_threshold_similar() {
        // A burst: 65 photos 1° apart, every neighbour pair at 0.9998. Single linkage made
        // one group whose ends are 64° apart (0.44); here every pair in a group clears it.
        let burst: Vec<(String, Vec<f32>)> =
            (0..65).map(|i| at(&format!("{i:02}"), i as f32)).collect();
        let v = Vectors::new(burst, 3);
        let groups = v.near_duplicates(None, 0.98);
        assert!(groups.len() > 1, "{groups:?}");
        for g in &groups {
            for (i, &a) in g.iter().enumerate() {
                for &b in &g[i + 1..] {
                    let s = dot(v.vector(a), v.vector(b));
                    assert!(s >= 0.98 - 1e-6, "{a} and {b}: {s}");
                }
            }
        }
        // Every photo is in some group (each has a neighbour it is close to).
        let grouped: usize = groups.iter().map(Vec::len).sum();
        assert_eq!(grouped, 65, "{groups:?}");
    }

    #[test]
    fn identical_vectors_group_and_rows_can_be_chosen() {
        let v = Vectors::new(
            vec![
                ("a".into(), vec![1.0, 0.0, 0.0]),
                ("b".into(), vec![0.0, 1.0, 0.0]),
                ("c".into(), vec![0.99, 0.14, 0.0]),
                ("d".into(), vec![0.0, 0.0, 1.0]),
                ("e".into(), vec![0.0, 0.0, 2.0]),
            ],
            3,
        );
        assert_eq!(v.near_duplicates(None, 0.98), [vec![0, 2], vec![3, 4]]);
        assert_eq!(v.near_duplicates(Some(&[0, 1, 3, 4]), 0.98), [vec![3, 4]]);
        // Equal vectors clear a threshold of 1 despite rounding; nothing clears more.
        assert_eq!(v.near_duplicates(None, 1.0), [vec![3, 4]]);
        assert!(v.near_duplicates(None, 1.01).is_empty());
    }

    #[test]
    fn many_identical_rows_form_one_group_beyond_the_pairs_kept_per_row() {
        let copies: Vec<(String, Vec<f32>)> = (0..200)
            .map(|i| (format!("{i:03}"), vec![0.6, 0.8]))
            .collect();
        let v = Vectors::new(copies, 2);
        assert_eq!(
            v.near_duplicates(None, 0.99),
            [(0..200).collect::<Vec<_>>()]
        );
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

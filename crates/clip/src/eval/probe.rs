//! The linear probe of the CLIP paper: multinomial logistic regression with L2 regularization
//! on image features, fitted with L-BFGS. It minimizes what scikit-learn's
//! `LogisticRegression(C=c)` minimizes (lbfgs solver, multinomial loss, intercept not
//! penalized): `mean cross-entropy + ||W||² / (2·C·n)`, so both reach the same optimum (with
//! two classes, scikit-learn's binary model, whose single weight vector is the difference of
//! our two rows).
//! Written here rather than taken from a crate because the solver is small and the parity
//! with scikit-learn is the point; the arithmetic is f64.

use rayon::prelude::*;
use serde::Serialize;

use super::{accuracy, Accuracy};
use crate::ClipError;

/// OpenAI's linear-probe example (`README.md` of openai/CLIP) uses `C=0.316`.
pub const DEFAULT_C: f64 = 0.316;

/// How the fit is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeOptions {
    /// Inverse regularization strength, as scikit-learn's `C`.
    pub c: f64,
    /// Stop when every gradient entry is at most this.
    pub tolerance: f64,
    /// Stop after this many iterations (reported as not converged).
    pub max_iterations: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            c: DEFAULT_C,
            tolerance: 1e-6,
            max_iterations: 1000,
        }
    }
}

/// A fitted linear classifier over `dim`-sized features.
#[derive(Debug, Clone)]
pub struct LinearProbe {
    /// The label indices that had training images (the other labels are never predicted).
    pub classes: Vec<usize>,
    /// How many labels scores are given for.
    pub labels: usize,
    dim: usize,
    /// `classes.len()` rows of `dim` weights, then one bias per class.
    params: Vec<f64>,
    /// L-BFGS iterations run.
    pub iterations: usize,
    /// Whether the gradient tolerance was reached.
    pub converged: bool,
    /// Final value of the objective.
    pub loss: f64,
}

/// Loss and gradient of the objective at `params` (weights row-major, then biases).
fn loss_and_gradient(
    params: &[f64],
    x: &[Vec<f64>],
    y: &[usize],
    k: usize,
    l2: f64,
) -> (f64, Vec<f64>) {
    let d = x[0].len();
    let n = x.len() as f64;
    let (w, b) = params.split_at(k * d);
    let (mut loss, mut grad) = x
        .par_iter()
        .zip(y)
        .fold(
            || (0f64, vec![0f64; k * (d + 1)]),
            |(mut loss, mut grad), (xi, &yi)| {
                let z: Vec<f64> = (0..k).map(|c| b[c] + dot(&w[c * d..][..d], xi)).collect();
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                loss += max + sum.ln() - z[yi];
                for c in 0..k {
                    let p = (z[c] - max).exp() / sum - f64::from(u8::from(c == yi));
                    for (g, v) in grad[c * d..][..d].iter_mut().zip(xi) {
                        *g += p * v;
                    }
                    grad[k * d + c] += p;
                }
                (loss, grad)
            },
        )
        .reduce(
            || (0f64, vec![0f64; k * (d + 1)]),
            |(l1, mut g1), (l2, g2)| {
                for (a, b) in g1.iter_mut().zip(&g2) {
                    *a += b;
                }
                (l1 + l2, g1)
            },
        );
    loss /= n;
    for g in &mut grad {
        *g /= n;
    }
    for (g, wi) in grad.iter_mut().zip(w) {
        *g += l2 * wi;
    }
    loss += 0.5 * l2 * w.iter().map(|v| v * v).sum::<f64>();
    (loss, grad)
}

/// Dot product with eight running sums, so that the compiler vectorizes it (a single sum
/// must be added in order, which keeps it scalar); this is most of the probe's time.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f64>() + tail
}

impl LinearProbe {
    /// Fits the probe to `features` labelled `targets` (label indices below `labels`).
    pub fn fit(
        features: &[Vec<f32>],
        targets: &[usize],
        labels: usize,
        options: &ProbeOptions,
    ) -> Result<LinearProbe, ClipError> {
        Self::fit_from(features, targets, labels, options, None)
    }

    /// [`LinearProbe::fit`] starting from `start`'s solution (a probe fitted on the same
    /// images with another C), which saves most iterations in a sweep over C.
    pub fn fit_from(
        features: &[Vec<f32>],
        targets: &[usize],
        labels: usize,
        options: &ProbeOptions,
        start: Option<&LinearProbe>,
    ) -> Result<LinearProbe, ClipError> {
        let invalid = |detail: String| ClipError::Dataset {
            path: "linear probe training set".into(),
            detail,
        };
        if features.is_empty() || features.len() != targets.len() {
            return Err(invalid(format!(
                "{} feature rows for {} labels",
                features.len(),
                targets.len()
            )));
        }
        if !(options.c > 0.0 && options.c.is_finite()) {
            return Err(invalid(format!("C must be positive, not {}", options.c)));
        }
        let mut present = vec![usize::MAX; labels];
        let mut classes = Vec::new();
        for &t in targets {
            if t >= labels {
                return Err(invalid(format!("label index {t} of {labels} labels")));
            }
            if present[t] == usize::MAX {
                present[t] = 0;
                classes.push(t);
            }
        }
        classes.sort_unstable();
        if classes.len() < 2 {
            return Err(invalid(format!(
                "images of {} class; a classifier needs at least 2",
                classes.len()
            )));
        }
        for (i, &c) in classes.iter().enumerate() {
            present[c] = i;
        }
        let y: Vec<usize> = targets.iter().map(|&t| present[t]).collect();
        let x: Vec<Vec<f64>> = features
            .iter()
            .map(|f| f.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let (k, d) = (classes.len(), x[0].len());
        // With two classes scikit-learn fits one weight vector w (a sigmoid) and penalizes
        // ||w||²/2; two softmax rows reach the same fit as w1 = -w2 = w/2, whose penalty
        // (||w1||² + ||w2||²)/2 is half that, so the penalty is doubled to keep C's meaning.
        let l2 = if k == 2 { 2.0 } else { 1.0 } / (options.c * x.len() as f64);
        let init = start
            .filter(|p| p.classes == classes && p.dim == d)
            .map_or_else(|| vec![0.0; k * (d + 1)], |p| p.params.clone());
        let (params, iterations, converged, loss) =
            lbfgs(init, |p| loss_and_gradient(p, &x, &y, k, l2), options);
        Ok(LinearProbe {
            classes,
            labels,
            dim: d,
            params,
            iterations,
            converged,
            loss,
        })
    }

    /// Scores of each label for each feature row (the logits; labels without training
    /// images get negative infinity).
    pub fn scores(&self, features: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let d = self.dim;
        let (w, b) = self.params.split_at(self.classes.len() * d);
        features
            .par_iter()
            .map(|f| {
                let mut row = vec![f32::NEG_INFINITY; self.labels];
                for (i, &c) in self.classes.iter().enumerate() {
                    let z = b[i]
                        + w[i * d..][..d]
                            .iter()
                            .zip(f)
                            .map(|(a, &v)| a * f64::from(v))
                            .sum::<f64>();
                    row[c] = z as f32;
                }
                row
            })
            .collect()
    }
}

/// Minimizes `f` from `x` with L-BFGS (10 pairs of history) and a backtracking line search
/// (Armijo). Returns the point, the iterations, whether the gradient tolerance was met, and
/// the final value.
fn lbfgs(
    mut x: Vec<f64>,
    f: impl Fn(&[f64]) -> (f64, Vec<f64>),
    options: &ProbeOptions,
) -> (Vec<f64>, usize, bool, f64) {
    const HISTORY: usize = 10;
    let (mut fx, mut g) = f(&x);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let max_abs = |v: &[f64]| v.iter().fold(0f64, |m, a| m.max(a.abs()));
    for iteration in 0..options.max_iterations {
        if max_abs(&g) <= options.tolerance {
            return (x, iteration, true, fx);
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            for (qi, yi) in q.iter_mut().zip(y) {
                *qi -= a * yi;
            }
            alphas.push(a);
        }
        let gamma = history.back().map_or(
            1.0 / g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1.0),
            |(s, y, _)| dot(s, y) / dot(y, y),
        );
        for qi in &mut q {
            *qi *= gamma;
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            for (qi, si) in q.iter_mut().zip(s) {
                *qi += (a - b) * si;
            }
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: forget the history and follow the gradient.
            history.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let trial: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + step * b).collect();
            let (ft, gt) = f(&trial);
            if ft.is_finite() && ft <= fx + 1e-4 * step * slope {
                accepted = Some((trial, ft, gt));
                break;
            }
            step *= 0.5;
        }
        let Some((next, f_next, g_next)) = accepted else {
            // No decrease along the direction: as good as this precision allows.
            return (x, iteration, max_abs(&g) <= options.tolerance, fx);
        };
        let s: Vec<f64> = next.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_next.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        let flat = (fx - f_next).abs() <= 1e-15 * fx.abs().max(1.0);
        x = next;
        fx = f_next;
        g = g_next;
        if flat {
            return (x, iteration + 1, max_abs(&g) <= options.tolerance, fx);
        }
    }
    let converged = max_abs(&g) <= options.tolerance;
    (x, options.max_iterations, converged, fx)
}

/// One value of C tried by [`choose_c`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SweepPoint {
    /// The value.
    pub c: f64,
    /// Top-1 accuracy on the validation images.
    pub validation_top1: f64,
    /// Mean cross-entropy on the validation images.
    pub validation_loss: f64,
}

/// The values of C tried first: every decade from 1e-6 to 1e6, the paper's range.
fn decades() -> Vec<f64> {
    (-6..=6).map(|e| 10f64.powi(e)).collect()
}

/// Chooses C as the CLIP paper does, by a sweep on a validation split: every fifth training
/// image of each class (the last one of a class of 2 to 4) is held out; each decade from 1e-6
/// to 1e6 is fitted on the rest, then quarter-decades around the best (within that range). The best is the highest
/// validation top-1, of equal ones the smallest C. Returns it with every point tried.
pub fn choose_c(
    features: &[Vec<f32>],
    targets: &[usize],
    labels: usize,
    options: &ProbeOptions,
) -> Result<(f64, Vec<SweepPoint>), ClipError> {
    if let Some(&t) = targets.iter().find(|&&t| t >= labels) {
        return Err(ClipError::Dataset {
            path: "linear probe training set".into(),
            detail: format!("label index {t} of {labels} labels"),
        });
    }
    let mut class_size = vec![0usize; labels];
    for &t in targets {
        class_size[t] += 1;
    }
    // Hold out every fifth image of a class, or its last one when it has 2 to 4.
    let mut seen = vec![0usize; labels];
    let (mut fit_x, mut fit_y, mut val_x, mut val_y) = (vec![], vec![], vec![], vec![]);
    for (f, &t) in features.iter().zip(targets) {
        let nth = seen[t];
        seen[t] += 1;
        if class_size[t] >= 2 && nth % 5 == 4.min(class_size[t] - 1) {
            val_x.push(f.clone());
            val_y.push(t);
        } else {
            fit_x.push(f.clone());
            fit_y.push(t);
        }
    }
    if val_x.is_empty() {
        return Err(ClipError::Dataset {
            path: "linear probe training set".into(),
            detail: "too few images to hold out a validation split for choosing C; give C".into(),
        });
    }
    let mut tried: Vec<SweepPoint> = Vec::new();
    // Each fit starts from the last one's solution (C grows along the decades).
    let mut last: Option<LinearProbe> = None;
    let mut evaluate =
        |c: f64, from: Option<&LinearProbe>| -> Result<(SweepPoint, LinearProbe), ClipError> {
            // Fits of the sweep stop at 100 iterations (scikit-learn's default): enough to rank
            // the values of C; the final fit runs to the tolerance.
            let opts = ProbeOptions {
                c,
                max_iterations: options.max_iterations.min(100),
                ..*options
            };
            let probe = LinearProbe::fit_from(&fit_x, &fit_y, labels, &opts, from)?;
            let scores = probe.scores(&val_x);
            let mut loss = 0f64;
            for (row, &t) in scores.iter().zip(&val_y) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
                loss += f64::from(max) + sum.ln() - f64::from(row[t]);
            }
            // Top-1 as `accuracy` counts it (rank 0), without its per-class tables.
            let right = scores
                .iter()
                .zip(&val_y)
                .filter(|(row, &t)| super::rank_of(row, t) == 0)
                .count();
            let point = SweepPoint {
                c,
                validation_top1: right as f64 / val_x.len() as f64,
                validation_loss: loss / val_x.len() as f64,
            };
            tried.push(point);
            Ok((point, probe))
        };
    // The most accurate; of equally accurate ones the smallest C (the most regularized),
    // as a grid search in ascending order keeps the first best.
    let better = |a: &SweepPoint, b: &SweepPoint| {
        a.validation_top1 > b.validation_top1
            || (a.validation_top1 == b.validation_top1 && a.c < b.c)
    };
    let mut best: Option<(SweepPoint, LinearProbe)> = None;
    for c in decades() {
        let (p, probe) = evaluate(c, last.as_ref())?;
        if best.as_ref().is_none_or(|(b, _)| better(&p, b)) {
            best = Some((p, probe.clone()));
        }
        last = Some(probe);
    }
    let (centre, from) = best.clone().expect("at least one decade");
    for q in [-0.75, -0.5, -0.25, 0.25, 0.5, 0.75] {
        let c = centre.c * 10f64.powf(q);
        if !(1e-6..=1e6).contains(&c) {
            continue; // the paper's range
        }
        let (p, probe) = evaluate(c, Some(&from))?;
        if best.as_ref().is_none_or(|(b, _)| better(&p, b)) {
            best = Some((p, probe));
        }
    }
    let best = best.map(|(p, _)| p);
    tried.sort_by(|a, b| a.c.total_cmp(&b.c));
    Ok((best.expect("a best point").c, tried))
}

/// The linear probe's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// Training images used.
    pub train_images: usize,
    /// The regularization parameter.
    pub c: f64,
    /// The values of C tried on a validation split when C was chosen ([`choose_c`]).
    pub sweep: Vec<SweepPoint>,
    /// L-BFGS iterations.
    pub iterations: usize,
    /// Whether the fit converged.
    pub converged: bool,
    /// Accuracy on the evaluation images.
    pub accuracy: Accuracy,
}

/// Fits a probe on the training features and scores it on the test features.
pub fn linear_probe(
    train: (&[Vec<f32>], &[usize]),
    test: (&[Vec<f32>], &[usize]),
    labels: &[String],
    options: &ProbeOptions,
) -> Result<ProbeReport, ClipError> {
    let probe = LinearProbe::fit(train.0, train.1, labels.len(), options)?;
    let scores = probe.scores(test.0);
    Ok(ProbeReport {
        train_images: train.0.len(),
        c: options.c,
        sweep: Vec::new(),
        iterations: probe.iterations,
        converged: probe.converged,
        accuracy: accuracy(&scores, test.1, labels),
    })
}

/// [`linear_probe`] with C chosen by [`choose_c`] on the training features.
pub fn linear_probe_sweep(
    train: (&[Vec<f32>], &[usize]),
    test: (&[Vec<f32>], &[usize]),
    labels: &[String],
    options: &ProbeOptions,
) -> Result<ProbeReport, ClipError> {
    let (c, sweep) = choose_c(train.0, train.1, labels.len(), options)?;
    let mut report = linear_probe(train, test, labels, &ProbeOptions { c, ..*options })?;
    report.sweep = sweep;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numerical derivative check of the objective.
    #[test]
    fn gradient_matches_finite_differences() {
        let x = vec![
            vec![0.5, -1.0, 2.0],
            vec![1.5, 0.3, -0.7],
            vec![-0.2, 0.8, 0.1],
        ];
        let y = [0, 1, 1];
        let params: Vec<f64> = (0..8).map(|i| (i as f64 * 0.37).sin()).collect();
        let (_, g) = loss_and_gradient(&params, &x, &y, 2, 0.3);
        for i in 0..params.len() {
            let mut p = params.clone();
            p[i] += 1e-6;
            let up = loss_and_gradient(&p, &x, &y, 2, 0.3).0;
            p[i] -= 2e-6;
            let down = loss_and_gradient(&p, &x, &y, 2, 0.3).0;
            assert!(((up - down) / 2e-6 - g[i]).abs() < 1e-6, "{i}");
        }
    }

    #[test]
    fn separates_separable_classes_and_skips_absent_ones() {
        // Three clusters; label 1 has no training images.
        let mut feats = Vec::new();
        let mut targets = Vec::new();
        for i in 0..30 {
            let t = [0, 2, 3][i % 3];
            let centre = [[2.0, 0.0], [0.0, 2.0], [-2.0, -2.0]][i % 3];
            let jitter = ((i as f32) * 0.7).sin() * 0.3;
            feats.push(vec![centre[0] + jitter, centre[1] - jitter]);
            targets.push(t);
        }
        let opts = ProbeOptions {
            c: 10.0,
            ..Default::default()
        };
        let probe = LinearProbe::fit(&feats, &targets, 4, &opts).unwrap();
        assert!(probe.converged, "{probe:?}");
        assert_eq!(probe.classes, [0, 2, 3]);
        let scores = probe.scores(&feats);
        assert!(scores.iter().all(|r| r[1] == f32::NEG_INFINITY));
        let labels: Vec<String> = (0..4).map(|i| i.to_string()).collect();
        assert_eq!(accuracy(&scores, &targets, &labels).top1, 1.0);
        // Choosing C: every point is tried on held-out images, the best is used.
        let (c, sweep) = choose_c(&feats, &targets, 4, &opts).unwrap();
        assert!((16..=19).contains(&sweep.len()), "{sweep:?}");
        let best = sweep.iter().find(|p| p.c == c).unwrap();
        assert_eq!(best.validation_top1, 1.0);
        assert!(sweep
            .iter()
            .all(|p| p.validation_top1 <= 1.0 && p.validation_loss > 0.0));
        let report =
            linear_probe_sweep((&feats, &targets), (&feats, &targets), &labels, &opts).unwrap();
        assert_eq!((report.c, report.sweep.len()), (c, sweep.len()));
        let e = choose_c(&feats[..3], &targets[..3], 4, &opts).unwrap_err();
        assert!(e.to_string().contains("validation"), "{e}");
        let e = LinearProbe::fit(&feats[..1], &targets[..1], 4, &opts).unwrap_err();
        assert!(e.to_string().contains("at least 2"), "{e}");
    }
}

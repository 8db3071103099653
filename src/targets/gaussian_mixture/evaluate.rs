//! Pointwise evaluation of a Gaussian mixture: responsibilities, log density and the scores s1, s2, s3.
#![allow(non_snake_case)] // names follow the paper: P, K, D

use super::moments::{add_second_central, add_third_central};
use super::GaussianMixture;
use crate::targets::traits::{LogDensity, Score, ScoreHessian};

/// Per-call scratch: component scores `a` (`K x D`), log weights / responsibilities `r` (`K`), and a
/// length-`D` difference vector. One small allocation per call, reused across the stages of the call.
struct Scratch {
    buf: Vec<f64>,
    K: usize,
    D: usize,
}

impl Scratch {
    fn new(K: usize, D: usize) -> Self {
        Self { buf: vec![0.0; K * D + K + D], K, D }
    }

    /// `(a, r, diff)`.
    fn split(&mut self) -> (&mut [f64], &mut [f64], &mut [f64]) {
        let (a, rest) = self.buf.split_at_mut(self.K * self.D);
        let (r, diff) = rest.split_at_mut(self.K);
        (a, r, diff)
    }
}

impl GaussianMixture {
    /// For every component: the component score $a_k = -P_k (x - \mu_k)$ into row `k` of `a`, and
    /// $\ell_k = \log \pi_k \mathcal N(x; \mu_k, \Sigma_k) = \text{lognorm}_k + \tfrac12 (x - \mu_k)^\top a_k$
    /// into `ell[k]`.
    fn component_terms(&self, x: &[f64], a: &mut [f64], ell: &mut [f64], diff: &mut [f64]) {
        let D = self.dim;
        for k in 0..self.n_components() {
            for ((d, xi), mi) in diff.iter_mut().zip(x).zip(&self.means[k]) {
                *d = xi - mi;
            }
            let ak = &mut a[k * D..(k + 1) * D];
            let P = self.precisions[k].as_slice();
            let mut quad = 0.0;
            for i in 0..D {
                let row = &P[i * D..(i + 1) * D];
                let v: f64 = -row.iter().zip(diff.iter()).map(|(p, d)| p * d).sum::<f64>();
                ak[i] = v;
                quad += diff[i] * v;
            }
            ell[k] = self.log_norms[k] + 0.5 * quad;
        }
    }

    /// Component terms, then responsibilities in `r` and the score in `s1`. Returns $\log p(x)$.
    fn terms_and_score(&self, x: &[f64], s: &mut Scratch, s1: &mut [f64]) -> f64 {
        let D = self.dim;
        let (a, r, diff) = s.split();
        self.component_terms(x, a, r, diff);
        let lse = softmax_in_place(r);
        s1.fill(0.0);
        for (k, &rk) in r.iter().enumerate() {
            if rk > 0.0 {
                for (o, ak) in s1.iter_mut().zip(&a[k * D..(k + 1) * D]) {
                    *o += rk * ak;
                }
            }
        }
        lse
    }

    /// The responsibilities $r_k(x)$, the posterior probabilities of the components.
    ///
    /// # Definition
    /// $$ r_k(x) = \frac{\pi_k \mathcal N(x; \mu_k, \Sigma_k)}{\sum_j \pi_j \mathcal N(x; \mu_j, \Sigma_j)}, $$
    /// computed by log-sum-exp, so they are finite and sum to one even far from every mean (where the
    /// widest component takes all the mass).
    ///
    /// # Reference
    /// docs/math.md §14.2.
    ///
    /// # Example
    /// ```
    /// use tweedie::targets::TargetSpec;
    /// let p = "gmm2d".parse::<TargetSpec>()?.build();
    /// let mut r = vec![0.0; p.n_components()];
    /// p.responsibilities_into(&[1e3, -1e3], &mut r);
    /// assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    /// # Ok::<(), tweedie::targets::TargetError>(())
    /// ```
    #[track_caller]
    pub fn responsibilities_into(&self, x: &[f64], out: &mut [f64]) {
        let (D, K) = (self.dim, self.n_components());
        assert_eq!(x.len(), D, "responsibilities_into: x has length {}, D = {D}", x.len());
        assert_eq!(out.len(), K, "responsibilities_into: out has length {}, K = {K}", out.len());
        let mut s = Scratch::new(K, D);
        let (a, _, diff) = s.split();
        self.component_terms(x, a, out, diff);
        softmax_in_place(out);
    }

    /// The component of highest responsibility at `x` (ties go to the lowest index).
    ///
    /// # Definition
    /// $$ \arg\max_k\ \pi_k \mathcal N(x; \mu_k, \Sigma_k). $$
    #[track_caller]
    pub fn nearest_component(&self, x: &[f64]) -> usize {
        let (D, K) = (self.dim, self.n_components());
        assert_eq!(x.len(), D, "nearest_component: x has length {}, D = {D}", x.len());
        let mut s = Scratch::new(K, D);
        let (a, ell, diff) = s.split();
        self.component_terms(x, a, ell, diff);
        let mut best = 0;
        for k in 1..K {
            if ell[k] > ell[best] {
                best = k;
            }
        }
        best
    }

    /// The score and its Hessian in one pass (they share the component terms).
    ///
    /// See [`Score::score_into`] and [`ScoreHessian::hessian_into`] for the definitions.
    #[track_caller]
    pub fn score_and_hessian_into(&self, x: &[f64], s1: &mut [f64], s2: &mut [f64]) {
        let (D, K) = (self.dim, self.n_components());
        assert_eq!(x.len(), D, "score_and_hessian_into: x has length {}, D = {D}", x.len());
        assert_eq!(s1.len(), D, "score_and_hessian_into: s1 has length {}, D = {D}", s1.len());
        assert_eq!(s2.len(), D * D, "score_and_hessian_into: s2 has length {}, D*D = {}", s2.len(), D * D);
        let mut s = Scratch::new(K, D);
        self.terms_and_score(x, &mut s, s1);
        let (a, r, d) = s.split();
        s2.fill(0.0);
        for k in 0..K {
            if r[k] > 0.0 {
                for ((di, ak), s1i) in d.iter_mut().zip(&a[k * D..(k + 1) * D]).zip(s1.iter()) {
                    *di = ak - s1i;
                }
                add_second_central(s2, r[k], d, self.precisions[k].as_slice(), -1.0);
            }
        }
    }

    /// The third-order score $s_3 = \nabla^3 \log p$, a symmetric `D x D x D` tensor stored with index
    /// `(i * D + j) * D + l`.
    ///
    /// # Definition
    /// With component scores $a_k = -P_k (x - \mu_k)$, $s_1 = \sum_k r_k a_k$ and $d_k = a_k - s_1$
    /// ($s_3$ is the third cumulant of a formal mixture with means $a_k$ and covariances $-P_k$):
    /// $$ s_{3,ijl} = \sum_k r_k \big[ d_{ki} d_{kj} d_{kl} - P_{k,ij} d_{kl} - P_{k,il} d_{kj} -
    ///    P_{k,jl} d_{ki} \big], $$
    /// algebraically equal to the raw-moment form of docs/math.md §14.3, but centred first so that nothing
    /// cancels far from the means. Cost $O(K D^3)$.
    ///
    /// # Reference
    /// docs/math.md §14.3 and §2.4 (Meng et al. 2021, Sec. 3, third-order Tweedie).
    #[track_caller]
    pub fn third_score_into(&self, x: &[f64], out: &mut [f64]) {
        let (D, K) = (self.dim, self.n_components());
        assert_eq!(x.len(), D, "third_score_into: x has length {}, D = {D}", x.len());
        assert_eq!(
            out.len(),
            D * D * D,
            "third_score_into: out has length {}, D^3 = {}",
            out.len(),
            D * D * D
        );
        let mut s = Scratch::new(K, D);
        let mut s1 = vec![0.0; D];
        self.terms_and_score(x, &mut s, &mut s1);
        let (a, r, d) = s.split();
        out.fill(0.0);
        for k in 0..K {
            if r[k] > 0.0 {
                for ((di, ak), s1i) in d.iter_mut().zip(&a[k * D..(k + 1) * D]).zip(&s1) {
                    *di = ak - s1i;
                }
                add_third_central(out, r[k], d, self.precisions[k].as_slice(), -1.0);
            }
        }
    }
}

/// Replaces log weights by their softmax and returns their log-sum-exp. A log weight of `-inf` gets
/// responsibility zero; at least one entry must be finite (it is, for finite `x`).
fn softmax_in_place(ell: &mut [f64]) -> f64 {
    let max = ell.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for v in ell.iter_mut() {
        *v = (*v - max).exp();
        total += *v;
    }
    for v in ell.iter_mut() {
        *v /= total;
    }
    max + total.ln()
}

/// $\log p(x) = \operatorname{logsumexp}_k\  [\log \pi_k + \log \mathcal N(x; \mu_k, \Sigma_k)]$.
impl LogDensity for GaussianMixture {
    #[track_caller]
    fn log_density(&self, x: &[f64]) -> f64 {
        let (D, K) = (self.dim, self.n_components());
        assert_eq!(x.len(), D, "log_density: x has length {}, D = {D}", x.len());
        let mut s = Scratch::new(K, D);
        let (a, ell, diff) = s.split();
        self.component_terms(x, a, ell, diff);
        softmax_in_place(ell)
    }
}

/// $s_1(x) = \sum_k r_k(x)\  a_k(x)$, $a_k = -P_k (x - \mu_k)$ (docs/math.md §14.3).
impl Score for GaussianMixture {
    #[track_caller]
    fn score_into(&self, x: &[f64], out: &mut [f64]) {
        let (D, K) = (self.dim, self.n_components());
        assert_eq!(x.len(), D, "score_into: x has length {}, D = {D}", x.len());
        assert_eq!(out.len(), D, "score_into: out has length {}, D = {D}", out.len());
        let mut s = Scratch::new(K, D);
        self.terms_and_score(x, &mut s, out);
    }
}

/// $s_2(x) = \sum_k r_k \big[(a_k - s_1)(a_k - s_1)^\top - P_k\big]$, the centred (cancellation-free) form
/// of $m_2 - s_1 s_1^\top$ (docs/math.md §14.3).
impl ScoreHessian for GaussianMixture {
    #[track_caller]
    fn hessian_into(&self, x: &[f64], out: &mut [f64]) {
        let mut s1 = vec![0.0; self.dim()];
        self.score_and_hessian_into(x, &mut s1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::named::parse_target;
    use crate::targets::testing::{fd_jacobian, max_abs, max_abs_diff, min_variance, test_rng};

    /// The noisy marginals the derivative checks run on: gmm2d and a 3-D random mixture, sigma in {0.1, 0.5}.
    fn noisy_targets() -> Vec<(String, GaussianMixture)> {
        let mut out = Vec::new();
        for spec in ["gmm2d", "gmm:dim=3,components=4,seed=1"] {
            let p = parse_target(spec).unwrap();
            for sigma in [0.1, 0.5] {
                out.push((format!("{spec} sigma={sigma}"), p.noisy(sigma).unwrap()));
            }
        }
        out
    }

    fn s1(q: &GaussianMixture, x: &[f64]) -> Vec<f64> {
        let mut o = vec![0.0; q.dim()];
        q.score_into(x, &mut o);
        o
    }

    fn s2(q: &GaussianMixture, x: &[f64]) -> Vec<f64> {
        let mut o = vec![0.0; q.dim() * q.dim()];
        q.hessian_into(x, &mut o);
        o
    }

    fn s3(q: &GaussianMixture, x: &[f64]) -> Vec<f64> {
        let D = q.dim();
        let mut o = vec![0.0; D * D * D];
        q.third_score_into(x, &mut o);
        o
    }

    /// For each target, 6 points drawn from it plus one between the components, with the step
    /// h = eps^(1/5) ell (ell = shortest length scale) that balances the stencil's h^4 truncation against
    /// eps/h rounding, and the resulting relative tolerance.
    fn fd_cases() -> Vec<(String, GaussianMixture, Vec<Vec<f64>>, f64)> {
        let mut rng = test_rng(11);
        noisy_targets()
            .into_iter()
            .map(|(name, q)| {
                let x = q.sample(6, &mut rng);
                let mut pts: Vec<Vec<f64>> = x.row_iter().map(<[f64]>::to_vec).collect();
                pts.push(q.mean());
                let h = f64::EPSILON.powf(0.2) * min_variance(&q).sqrt();
                (name, q, pts, h)
            })
            .collect()
    }

    /// Relative accuracy asked of the 4th-order stencil: eps^(4/5) (the balanced truncation + rounding
    /// error), times the dimension, times a slack of 100 for the size of the fifth derivative against the
    /// entries of the checked tensor (mixtures switch responsibility over one length scale). The worst
    /// case seen uses an eighth of this.
    fn fd_tol(D: usize) -> f64 {
        100.0 * D as f64 * f64::EPSILON.powf(0.8)
    }

    #[test]
    fn score_is_the_gradient_of_the_log_density() {
        for (name, q, pts, h) in fd_cases() {
            for x in &pts {
                let fd = fd_jacobian(|y| vec![q.log_density(y)], x, h);
                let exact = s1(&q, x);
                let scale = max_abs(&exact) + 1.0 / min_variance(&q).sqrt();
                let err = max_abs_diff(&fd, &exact);
                assert!(err <= fd_tol(q.dim()) * scale, "{name} x={x:?}: |fd - s1| = {err:e}, scale {scale}");
            }
        }
    }

    #[test]
    fn hessian_is_the_jacobian_of_the_score() {
        for (name, q, pts, h) in fd_cases() {
            for x in &pts {
                let fd = fd_jacobian(|y| s1(&q, y), x, h);
                let exact = s2(&q, x);
                let scale = max_abs(&exact) + 1.0 / min_variance(&q);
                let err = max_abs_diff(&fd, &exact);
                assert!(err <= fd_tol(q.dim()) * scale, "{name} x={x:?}: |fd - s2| = {err:e}, scale {scale}");
            }
        }
    }

    #[test]
    fn third_score_is_the_jacobian_of_the_hessian() {
        for (name, q, pts, h) in fd_cases() {
            for x in &pts {
                let fd = fd_jacobian(|y| s2(&q, y), x, h);
                let exact = s3(&q, x);
                let scale = max_abs(&exact) + min_variance(&q).powf(-1.5);
                let err = max_abs_diff(&fd, &exact);
                assert!(err <= fd_tol(q.dim()) * scale, "{name} x={x:?}: |fd - s3| = {err:e}, scale {scale}");
            }
        }
    }

    /// The raw-moment form of s3 (docs/math.md §14.3), kept as the slow reference of the centred kernel.
    fn third_score_raw(q: &GaussianMixture, x: &[f64]) -> Vec<f64> {
        let (D, K) = (q.dim(), q.n_components());
        let mut r = vec![0.0; K];
        q.responsibilities_into(x, &mut r);
        let a: Vec<Vec<f64>> = (0..K)
            .map(|k| {
                let P = &q.precisions()[k];
                (0..D).map(|i| -(0..D).map(|j| P.at(i, j) * (x[j] - q.means()[k][j])).sum::<f64>()).collect()
            })
            .collect();
        let s1: Vec<f64> = (0..D).map(|i| (0..K).map(|k| r[k] * a[k][i]).sum()).collect();
        let m2 = |i: usize, j: usize| -> f64 {
            (0..K).map(|k| r[k] * (a[k][i] * a[k][j] - q.precisions()[k].at(i, j))).sum()
        };
        let mut out = vec![0.0; D * D * D];
        for i in 0..D {
            for j in 0..D {
                for l in 0..D {
                    let m3: f64 = (0..K)
                        .map(|k| {
                            let (P, a) = (&q.precisions()[k], &a[k]);
                            r[k] * (a[i] * a[j] * a[l]
                                - P.at(i, j) * a[l]
                                - P.at(i, l) * a[j]
                                - P.at(j, l) * a[i])
                        })
                        .sum();
                    out[(i * D + j) * D + l] = m3 - (m2(i, j) * s1[l] + m2(i, l) * s1[j] + m2(j, l) * s1[i])
                        + 2.0 * s1[i] * s1[j] * s1[l];
                }
            }
        }
        out
    }

    #[test]
    fn centred_third_score_matches_the_raw_moment_formula() {
        for (name, q, pts, _) in fd_cases() {
            for x in &pts {
                let (fast, slow) = (s3(&q, x), third_score_raw(&q, x));
                // The raw form cancels terms of size |a|^3; its rounding sets the tolerance.
                let a_max = max_abs(&s1(&q, x)) + 1.0 / min_variance(&q).sqrt();
                let tol = 64.0 * (q.dim() * q.n_components()) as f64 * f64::EPSILON * a_max.powi(3);
                let err = max_abs_diff(&fast, &slow);
                assert!(err <= tol, "{name} x={x:?}: |centred - raw| = {err:e} > {tol:e}");
            }
        }
    }

    #[test]
    fn hessian_and_third_score_are_symmetric() {
        for (name, q, pts, _) in fd_cases() {
            let D = q.dim();
            for x in &pts {
                let (h, t) = (s2(&q, x), s3(&q, x));
                let tol_h = 8.0 * f64::EPSILON * D as f64 * max_abs(&h);
                let tol_t = 8.0 * f64::EPSILON * D as f64 * max_abs(&t);
                for i in 0..D {
                    for j in 0..D {
                        assert!((h[i * D + j] - h[j * D + i]).abs() <= tol_h, "{name}: s2 asymmetric");
                        for l in 0..D {
                            let v = t[(i * D + j) * D + l];
                            for w in [t[(j * D + i) * D + l], t[(l * D + j) * D + i], t[(i * D + l) * D + j]]
                            {
                                assert!((v - w).abs() <= tol_t, "{name}: s3 asymmetric");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_single_gaussian_has_linear_score_constant_hessian_and_zero_third_score() {
        let p = parse_target("gauss:dim=4,cond=5,seed=3").unwrap();
        let P = &p.precisions()[0];
        let D = 4;
        let x = [0.3, -1.2, 2.0, 0.7];
        let want_s1: Vec<f64> = (0..D).map(|i| -(0..D).map(|j| P.at(i, j) * x[j]).sum::<f64>()).collect();
        let tol = 8.0 * D as f64 * f64::EPSILON * max_abs(P.as_slice()) * max_abs(&x);
        assert!(max_abs_diff(&s1(&p, &x), &want_s1) <= tol);
        let neg_P: Vec<f64> = P.as_slice().iter().map(|v| -v).collect();
        assert!(max_abs_diff(&s2(&p, &x), &neg_P) <= 8.0 * f64::EPSILON * max_abs(&neg_P));
        assert!(max_abs(&s3(&p, &x)) <= 8.0 * D as f64 * f64::EPSILON * max_abs(&neg_P) * max_abs(&want_s1));
        let quad: f64 = -0.5 * x.iter().zip(&want_s1).map(|(a, b)| -a * b).sum::<f64>();
        let log_det: f64 = 2.0 * (0..D).map(|i| p.cholesky_factors()[0].at(i, i).ln()).sum::<f64>();
        let want_lp = quad - 0.5 * log_det - 0.5 * D as f64 * (2.0 * std::f64::consts::PI).ln();
        assert!((p.log_density(&x) - want_lp).abs() <= 16.0 * f64::EPSILON * want_lp.abs().max(1.0));
    }

    #[test]
    fn responsibilities_sum_to_one_and_stay_finite_far_away() {
        for spec in ["gmm2d", "gmm:dim=3,components=4,seed=1", "gmm:dim=32,components=4,seed=2"] {
            let p = parse_target(spec).unwrap();
            let (D, K) = (p.dim(), p.n_components());
            let mut r = vec![0.0; K];
            for far in [1e3, -1e3] {
                let x: Vec<f64> = (0..D).map(|i| if i % 2 == 0 { far } else { -0.5 * far }).collect();
                p.responsibilities_into(&x, &mut r);
                assert!(r.iter().all(|v| v.is_finite() && *v >= 0.0), "{spec}: r = {r:?}");
                assert!((r.iter().sum::<f64>() - 1.0).abs() <= K as f64 * f64::EPSILON, "{spec}");
                assert!(p.log_density(&x).is_finite(), "{spec}");
                let (g, h) = (s1(&p, &x), s2(&p, &x));
                assert!(g.iter().chain(&h).all(|v| v.is_finite()), "{spec}: non-finite scores at {far}");
                // Far away one component dominates, so s2 is minus its precision.
                let k = p.nearest_component(&x);
                assert!(r[k] > 0.5, "{spec}: nearest component {k} has r = {}", r[k]);
            }
            let mut rng = test_rng(5);
            let x = p.sample(20, &mut rng);
            for row in x.row_iter() {
                p.responsibilities_into(row, &mut r);
                assert!((r.iter().sum::<f64>() - 1.0).abs() <= K as f64 * f64::EPSILON);
                let k = p.nearest_component(row);
                assert!(r.iter().all(|v| *v <= r[k]));
            }
        }
    }

    #[test]
    fn hessian_far_away_is_minus_the_dominant_precision() {
        let p = parse_target("gmm2d").unwrap();
        let x = [1e3, 1e3];
        let k = p.nearest_component(&x);
        let want: Vec<f64> = p.precisions()[k].as_slice().iter().map(|v| -v).collect();
        // Other components carry mass exp(-O(1e6)): exactly zero in f64.
        let err = max_abs_diff(&s2(&p, &x), &want);
        assert!(err <= 64.0 * f64::EPSILON * max_abs(&want), "err = {err:e}");
    }
}

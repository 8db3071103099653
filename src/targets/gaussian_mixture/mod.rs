//! The Gaussian mixture target: construction, validation and the precomputed per-component factors.
//!
//! Operations live one per file: [`evaluate`] (responsibilities, log density, scores of orders 1 to 3),
//! [`posterior`] (the exact denoising posterior), [`moments`] (mean, covariance, third central moment)
//! and [`sample`].
#![allow(non_snake_case)] // names follow the paper: Sigma, P, L, C

mod evaluate;
mod moments;
mod posterior;
mod sample;

use super::error::TargetError;
use super::traits::HasDim;
use crate::linalg::Mat;
use nalgebra::DMatrix;

/// A mixture of Gaussians in `R^D`, the ground-truth target of the project (f64 throughout).
///
/// # Definition
/// $$ p(x) = \sum_{k=1}^K \pi_k\  \mathcal N(x;\ \mu_k, \Sigma_k), \qquad \pi_k > 0,\ \sum_k \pi_k = 1,\
///    \Sigma_k \succ 0. $$
/// Its noisy marginal at level $\sigma$ is again a mixture ([`noisy`](Self::noisy)):
/// $$ q_\sigma(\tilde x) = \sum_k \pi_k\  \mathcal N(\tilde x;\ \mu_k, C_k), \qquad
///    C_k = \Sigma_k + \sigma^2 I. $$
///
/// The constructor factors every covariance once: the lower Cholesky factor $L_k$ ($\Sigma_k = L_k
/// L_k^\top$), the precision $P_k = \Sigma_k^{-1}$ and the log normaliser
/// $\log \pi_k - \tfrac D2 \log 2\pi - \sum_i \log (L_k)_{ii}$, so that evaluating the density or its
/// scores costs $O(K D^2)$ per point (score and Hessian) or $O(K D^3)$ (third score).
///
/// # Reference
/// docs/math.md §14.1 (Meng et al. 2021, App. on mixtures).
///
/// # Example
/// ```
/// use tweedie::linalg::Mat;
/// use tweedie::targets::{GaussianMixture, LogDensity};
/// let p = GaussianMixture::gaussian(vec![0.0, 0.0], Mat::from_vec(2, 2, vec![1.0, 0.0, 0.0, 1.0]))?;
/// let want = -(2.0 * std::f64::consts::PI).ln();
/// assert!((p.log_density(&[0.0, 0.0]) - want).abs() < 1e-14);
/// # Ok::<(), tweedie::targets::TargetError>(())
/// ```
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    dim: usize,
    /// $\pi_k$, normalised.
    weights: Vec<f64>,
    /// $\mu_k$.
    means: Vec<Vec<f64>>,
    /// $\Sigma_k$, symmetrised.
    covariances: Vec<Mat<f64>>,
    /// $L_k$, lower triangular, $\Sigma_k = L_k L_k^\top$.
    cholesky: Vec<Mat<f64>>,
    /// $P_k = \Sigma_k^{-1}$, symmetrised.
    precisions: Vec<Mat<f64>>,
    /// $\log \pi_k - \tfrac D2 \log 2\pi - \tfrac12 \log\det\Sigma_k$.
    log_norms: Vec<f64>,
}

impl GaussianMixture {
    /// Builds and validates a mixture, factoring every covariance.
    ///
    /// - `weights`: $\pi_k$, each positive and finite; they are **normalised** to sum to one, so any
    ///   positive scale is accepted (`[1, 1]` means `[0.5, 0.5]`).
    /// - `means`: $\mu_k \in \mathbb R^D$, finite; `D >= 1` is taken from the first mean.
    /// - `covariances`: $\Sigma_k$, `D x D`, finite, symmetric to within $64\ \varepsilon\ D
    ///   \max|\Sigma_k|$ (then symmetrised as $(\Sigma_k + \Sigma_k^\top)/2$) and positive definite
    ///   (a Cholesky factor exists).
    ///
    /// # Errors
    /// [`TargetError::NoComponents`], [`TargetError::ZeroDimension`],
    /// [`TargetError::ComponentCountMismatch`], [`TargetError::BadWeights`],
    /// [`TargetError::DimensionMismatch`], [`TargetError::NonFinite`], [`TargetError::NotSymmetric`],
    /// [`TargetError::NotPositiveDefinite`], each naming the component.
    pub fn new(
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        covariances: Vec<Mat<f64>>,
    ) -> Result<Self, TargetError> {
        let K = weights.len();
        if means.len() != K || covariances.len() != K {
            return Err(TargetError::ComponentCountMismatch {
                weights: K,
                means: means.len(),
                covariances: covariances.len(),
            });
        }
        if K == 0 {
            return Err(TargetError::NoComponents);
        }
        let D = means[0].len();
        if D == 0 {
            return Err(TargetError::ZeroDimension);
        }
        for (k, &w) in weights.iter().enumerate() {
            if !(w > 0.0) || !w.is_finite() {
                return Err(TargetError::BadWeights { component: k, weight: w });
            }
        }
        let total: f64 = weights.iter().sum();
        if !total.is_finite() {
            // Each weight is finite but the sum overflows: report the largest.
            let (k, &w) = weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap_or((0, &0.0));
            return Err(TargetError::BadWeights { component: k, weight: w });
        }
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();

        let mut cov_sym = Vec::with_capacity(K);
        let mut cholesky = Vec::with_capacity(K);
        let mut precisions = Vec::with_capacity(K);
        let mut log_norms = Vec::with_capacity(K);
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        for k in 0..K {
            let mu = &means[k];
            if mu.len() != D {
                return Err(TargetError::DimensionMismatch {
                    what: "mean",
                    component: k,
                    expected: D,
                    found: mu.len(),
                });
            }
            if !mu.iter().all(|v| v.is_finite()) {
                return Err(TargetError::NonFinite { what: "mean", component: k });
            }
            let f = factor_covariance(&covariances[k], D, k)?;
            log_norms.push(weights[k].ln() - D as f64 * half_log_2pi - 0.5 * f.log_det);
            cov_sym.push(f.Sigma);
            cholesky.push(f.L);
            precisions.push(f.P);
        }
        Ok(Self { dim: D, weights, means, covariances: cov_sym, cholesky, precisions, log_norms })
    }

    /// A single Gaussian $\mathcal N(\mu, \Sigma)$, the one-component mixture.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn gaussian(mean: Vec<f64>, covariance: Mat<f64>) -> Result<Self, TargetError> {
        Self::new(vec![1.0], vec![mean], vec![covariance])
    }

    /// The dimension $D$ (also available through [`HasDim`]).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of components $K$.
    pub fn n_components(&self) -> usize {
        self.weights.len()
    }

    /// The weights $\pi_k$ (normalised to sum to one).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The means $\mu_k$.
    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }

    /// The covariances $\Sigma_k$ (symmetrised).
    pub fn covariances(&self) -> &[Mat<f64>] {
        &self.covariances
    }

    /// The precisions $P_k = \Sigma_k^{-1}$.
    pub fn precisions(&self) -> &[Mat<f64>] {
        &self.precisions
    }

    /// The lower Cholesky factors $L_k$, $\Sigma_k = L_k L_k^\top$.
    pub fn cholesky_factors(&self) -> &[Mat<f64>] {
        &self.cholesky
    }

    /// The noisy marginal $q_\sigma = p * \mathcal N(0, \sigma^2 I)$.
    ///
    /// # Definition
    /// $$ q_\sigma = \sum_k \pi_k\  \mathcal N(\mu_k, C_k), \qquad C_k = \Sigma_k + \sigma^2 I. $$
    ///
    /// # Reference
    /// docs/math.md §1.1 and §14.1.
    ///
    /// # Errors
    /// [`TargetError::NonPositiveSigma`] unless $\sigma$ is positive and finite.
    ///
    /// # Example
    /// ```
    /// use tweedie::targets::TargetSpec;
    /// let p = "gmm2d".parse::<TargetSpec>()?.build();
    /// let q = p.noisy(0.5)?;
    /// let (a, b) = (&p.covariances()[0], &q.covariances()[0]);
    /// assert!((b.at(0, 0) - a.at(0, 0) - 0.25).abs() < 1e-15 && b.at(0, 1) == a.at(0, 1));
    /// # Ok::<(), tweedie::targets::TargetError>(())
    /// ```
    pub fn noisy(&self, sigma: f64) -> Result<Self, TargetError> {
        check_sigma(sigma)?;
        let s2 = sigma * sigma;
        let covs = self
            .covariances
            .iter()
            .map(|S| {
                let mut C = S.clone();
                for i in 0..self.dim {
                    C.set(i, i, C.at(i, i) + s2);
                }
                C
            })
            .collect();
        Self::new(self.weights.clone(), self.means.clone(), covs)
    }
}

impl HasDim for GaussianMixture {
    fn dim(&self) -> usize {
        self.dim
    }
}

/// Rejects a noise level that is not positive and finite (NaN included).
fn check_sigma(sigma: f64) -> Result<(), TargetError> {
    if !(sigma > 0.0) || !sigma.is_finite() {
        return Err(TargetError::NonPositiveSigma { sigma });
    }
    Ok(())
}

/// One validated covariance and its factors.
struct Factored {
    /// Symmetrised covariance.
    Sigma: Mat<f64>,
    /// Lower Cholesky factor.
    L: Mat<f64>,
    /// Symmetrised inverse.
    P: Mat<f64>,
    /// $\log\det\Sigma$.
    log_det: f64,
}

/// Validates covariance `k` (size `D x D`, finite, symmetric, positive definite) and factors it.
fn factor_covariance(cov: &Mat<f64>, D: usize, k: usize) -> Result<Factored, TargetError> {
    if cov.rows() != D {
        return Err(TargetError::DimensionMismatch {
            what: "covariance rows",
            component: k,
            expected: D,
            found: cov.rows(),
        });
    }
    if cov.cols() != D {
        return Err(TargetError::DimensionMismatch {
            what: "covariance cols",
            component: k,
            expected: D,
            found: cov.cols(),
        });
    }
    if !cov.is_finite() {
        return Err(TargetError::NonFinite { what: "covariance", component: k });
    }
    let scale = cov.as_slice().iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let mut asymmetry = 0.0_f64;
    for i in 0..D {
        for j in 0..i {
            asymmetry = asymmetry.max((cov.at(i, j) - cov.at(j, i)).abs());
        }
    }
    if asymmetry > 64.0 * f64::EPSILON * D as f64 * scale {
        return Err(TargetError::NotSymmetric { component: k, asymmetry });
    }
    let Sigma = Mat::from_fn(D, D, |i, j| 0.5 * (cov.at(i, j) + cov.at(j, i)));
    let chol = DMatrix::from_row_slice(D, D, Sigma.as_slice())
        .cholesky()
        .ok_or(TargetError::NotPositiveDefinite { component: k })?;
    let l = chol.l();
    if !(0..D).all(|i| l[(i, i)] > 0.0 && l[(i, i)].is_finite()) {
        return Err(TargetError::NotPositiveDefinite { component: k });
    }
    let log_det = 2.0 * (0..D).map(|i| l[(i, i)].ln()).sum::<f64>();
    let inv = chol.inverse();
    let L = Mat::from_fn(D, D, |i, j| l[(i, j)]);
    let P = Mat::from_fn(D, D, |i, j| 0.5 * (inv[(i, j)] + inv[(j, i)]));
    if !P.is_finite() || !log_det.is_finite() {
        return Err(TargetError::NotPositiveDefinite { component: k });
    }
    Ok(Factored { Sigma, L, P, log_det })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::named::parse_target;
    use crate::targets::testing::{max_abs_diff, test_rng};

    fn eye(D: usize) -> Mat<f64> {
        Mat::from_fn(D, D, |i, j| if i == j { 1.0 } else { 0.0 })
    }

    #[test]
    fn weights_are_normalised() {
        let p =
            GaussianMixture::new(vec![2.0, 6.0], vec![vec![0.0], vec![1.0]], vec![eye(1), eye(1)]).unwrap();
        assert_eq!(p.weights(), &[0.25, 0.75]);
        assert_eq!(p.n_components(), 2);
    }

    #[test]
    fn constructor_rejects_bad_parameters_with_the_offending_data() {
        let two = || vec![vec![0.0, 0.0], vec![1.0, 1.0]];
        let e2 = || vec![eye(2), eye(2)];
        let new = GaussianMixture::new;
        assert!(matches!(new(vec![], vec![], vec![]), Err(TargetError::NoComponents)));
        assert!(matches!(new(vec![1.0], vec![vec![]], vec![eye(0)]), Err(TargetError::ZeroDimension)));
        assert!(matches!(
            new(vec![1.0], two(), e2()),
            Err(TargetError::ComponentCountMismatch { weights: 1, means: 2, covariances: 2 })
        ));
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                new(vec![1.0, w], two(), e2()),
                Err(TargetError::BadWeights { component: 1, .. })
            ));
        }
        assert!(matches!(new(vec![f64::MAX, f64::MAX], two(), e2()), Err(TargetError::BadWeights { .. })));
        assert!(matches!(
            new(vec![1.0, 1.0], vec![vec![0.0, 0.0], vec![1.0]], e2()),
            Err(TargetError::DimensionMismatch { what: "mean", component: 1, expected: 2, found: 1 })
        ));
        assert!(matches!(
            new(vec![1.0, 1.0], two(), vec![eye(2), eye(3)]),
            Err(TargetError::DimensionMismatch { component: 1, expected: 2, found: 3, .. })
        ));
        assert!(matches!(
            new(vec![1.0, 1.0], vec![vec![0.0, f64::NAN], vec![1.0, 1.0]], e2()),
            Err(TargetError::NonFinite { what: "mean", component: 0 })
        ));
        let nan_cov = Mat::from_vec(2, 2, vec![1.0, 0.0, 0.0, f64::NAN]);
        assert!(matches!(
            new(vec![1.0, 1.0], two(), vec![eye(2), nan_cov]),
            Err(TargetError::NonFinite { what: "covariance", component: 1 })
        ));
        let asym = Mat::from_vec(2, 2, vec![1.0, 0.5, 0.0, 1.0]);
        assert!(matches!(
            new(vec![1.0, 1.0], two(), vec![asym, eye(2)]),
            Err(TargetError::NotSymmetric { component: 0, asymmetry }) if asymmetry == 0.5
        ));
        let indefinite = Mat::from_vec(2, 2, vec![1.0, 2.0, 2.0, 1.0]);
        assert!(matches!(
            new(vec![1.0, 1.0], two(), vec![eye(2), indefinite]),
            Err(TargetError::NotPositiveDefinite { component: 1 })
        ));
        let singular = Mat::from_vec(2, 2, vec![1.0, 1.0, 1.0, 1.0]);
        assert!(matches!(
            GaussianMixture::gaussian(vec![0.0, 0.0], singular),
            Err(TargetError::NotPositiveDefinite { component: 0 })
        ));
    }

    #[test]
    fn factors_reproduce_the_covariance_and_its_inverse() {
        let p = parse_target("gmm:dim=5,components=3,seed=2").unwrap();
        let D = 5;
        for k in 0..3 {
            let (S, L, P) = (&p.covariances()[k], &p.cholesky_factors()[k], &p.precisions()[k]);
            let LLt = Mat::matmul(L, L, true);
            // Condition numbers are at most 10 for this family.
            let tol = 64.0 * D as f64 * f64::EPSILON * 10.0;
            assert!(max_abs_diff(LLt.as_slice(), S.as_slice()) <= tol);
            assert!(max_abs_diff(Mat::matmul(S, P, false).as_slice(), eye(D).as_slice()) <= tol);
        }
    }

    #[test]
    fn noisy_adds_sigma_squared_and_composes() {
        let p = parse_target("gmm:dim=3,components=2,seed=6").unwrap();
        let (a, b) = (0.3, 0.4);
        let twice = p.noisy(a).unwrap().noisy(b).unwrap();
        let once = p.noisy((a * a + b * b).sqrt()).unwrap();
        for k in 0..2 {
            let diff = max_abs_diff(twice.covariances()[k].as_slice(), once.covariances()[k].as_slice());
            assert!(diff <= 4.0 * f64::EPSILON);
            assert_eq!(twice.means()[k], p.means()[k]);
        }
        assert_eq!(once.weights(), p.weights());
        for sigma in [0.0, -0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(p.noisy(sigma), Err(TargetError::NonPositiveSigma { .. })));
        }
    }

    #[test]
    fn noisy_covariance_is_the_covariance_plus_sigma2_identity() {
        // q_sigma is p convolved with N(0, sigma^2 I): its covariance is Cov[p] + sigma^2 I exactly.
        let p = parse_target("gmm2d").unwrap();
        let (c, cq) = (p.covariance(), p.noisy(0.5).unwrap().covariance());
        for i in 0..2 {
            for j in 0..2 {
                let want = c.at(i, j) + if i == j { 0.25 } else { 0.0 };
                assert!((cq.at(i, j) - want).abs() <= 16.0 * f64::EPSILON * 4.0);
            }
        }
        // And the draws of a noisy target are finite.
        assert!(p.noisy(0.5).unwrap().sample(100, &mut test_rng(0)).is_finite());
    }
}

//! The spectral Stein gradient estimator (SSGE, Shi, Sun & Zhu 2018): Nystrom eigenfunctions of the RBF
//! kernel and the score's coefficients in them, giving scores at any point (docs/math.md §11.3).

use super::error::EstimatorError;
use super::kernel_samples::{check_samples, kernel_for};
use crate::linalg::Mat;
use crate::metrics::RbfKernel;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

/// Settings of [`Ssge::fit`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SsgeSettings {
    /// Keep the leading eigenfunctions until their eigenvalues sum to this fraction `r` of the total,
    /// `0 < r <= 1`.
    pub threshold: f64,
    /// The RBF bandwidth `w`; `None` uses the median heuristic.
    pub bandwidth: Option<f64>,
}

impl Default for SsgeSettings {
    /// `r = 0.99`, median-heuristic bandwidth.
    fn default() -> Self {
        Self { threshold: 0.99, bandwidth: None }
    }
}

/// A fitted SSGE: the samples, the kept eigenpairs of the kernel matrix and the coefficients `beta`.
#[derive(Clone, Debug)]
pub struct Ssge {
    samples: Mat<f64>,
    kernel: RbfKernel,
    /// `sqrt(M) u_j / lambda_j` as columns (`M x J`): `psi(x) = k(x, X) coefficients`.
    coefficients: Mat<f64>,
    /// `beta` (`J x D`).
    beta: Mat<f64>,
}

impl Ssge {
    /// Fits the estimator to the samples `x_1..x_M` (rows of `x`).
    ///
    /// # Definition
    /// With `K = U diag(lambda) U^T` (eigenvalues descending) the Nystrom eigenfunctions and the score are
    /// $$ \psi_j(x) = \frac{\sqrt M}{\lambda_j} \sum_m u_{jm} k(x, x_m),\qquad
    ///    \beta_j = -\frac1M \sum_m \nabla\psi_j(x_m),\qquad \hat s(x) = \sum_{j \le J} \beta_j \psi_j(x), $$
    /// with `J` the smallest count whose eigenvalues reach the fraction `r` of their sum. Using
    /// `grad_x k(x, x_m) = k(x, x_m) (x_m - x) / w^2`,
    /// `sum_m grad psi_j(x_m) = sqrt(M) / (lambda_j w^2) u_j^T (diag(K 1) X - K X)`.
    /// Time `O(M^2 D + M^3)` (the eigen-decomposition), memory `O(M^2)`.
    ///
    /// # Reference
    /// Shi, Sun, Zhu, "A Spectral Approach to Gradient Estimation for Implicit Distributions", ICML 2018,
    /// Eqs. (12)-(16); docs/math.md §11.3.
    ///
    /// # Errors
    /// [`EstimatorError`] for fewer than 2 samples, a non-finite sample, a bad threshold or bandwidth.
    pub fn fit(x: &Mat<f64>, settings: &SsgeSettings) -> Result<Self, EstimatorError> {
        check_samples(x, 2)?;
        if !(settings.threshold > 0.0 && settings.threshold <= 1.0) {
            return Err(EstimatorError::BadThreshold { threshold: settings.threshold });
        }
        let kernel = kernel_for(settings.bandwidth, x)?;
        let (m, dim) = (x.rows(), x.cols());
        let k = kernel.matrix(x, x);
        let eigen = SymmetricEigen::new(DMatrix::from_vec(m, m, k.as_slice().to_vec()));
        let mut order: Vec<usize> = (0..m).filter(|&j| eigen.eigenvalues[j] > 0.0).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let total: f64 = order.iter().map(|&j| eigen.eigenvalues[j]).sum();
        let mut kept = 0;
        let mut cumulative = 0.0;
        for &j in &order {
            kept += 1;
            cumulative += eigen.eigenvalues[j];
            if cumulative >= settings.threshold * total {
                break;
            }
        }
        let order = &order[..kept];
        let root_m = (m as f64).sqrt();
        let coefficients = Mat::from_fn(m, kept, |r, c| {
            root_m * eigen.eigenvectors[(r, order[c])] / eigen.eigenvalues[order[c]]
        });
        // T = diag(K 1) X - K X; sum_m grad psi_j(x_m) = coefficients_j^T T / w^2.
        let kx = Mat::matmul(&k, x, false);
        let t = Mat::from_fn(m, dim, |i, d| k.row(i).iter().sum::<f64>() * x.at(i, d) - kx.at(i, d));
        let mut beta = Mat::zeros(kept, dim);
        beta.gemm_into(-1.0 / (m as f64 * kernel.bandwidth().powi(2)), &coefficients, true, &t, false, 0.0);
        Ok(Self { samples: x.clone(), kernel, coefficients, beta })
    }

    /// The estimated score at every row of `points`.
    ///
    /// # Errors
    /// [`EstimatorError::WrongDimension`] if `points` do not have the samples' dimension.
    pub fn score(&self, points: &Mat<f64>) -> Result<Mat<f64>, EstimatorError> {
        if points.cols() != self.samples.cols() {
            return Err(EstimatorError::WrongDimension {
                expected: self.samples.cols(),
                found: points.cols(),
            });
        }
        let psi = Mat::matmul(&self.kernel.matrix(points, &self.samples), &self.coefficients, false);
        Ok(Mat::matmul(&psi, &self.beta, false))
    }

    /// The number `J` of eigenfunctions kept.
    pub fn num_eigenfunctions(&self) -> usize {
        self.beta.rows()
    }

    /// The RBF bandwidth `w`.
    pub fn bandwidth(&self) -> f64 {
        self.kernel.bandwidth()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimators::testing::{gaussian_samples_and_scores, relative_error};

    #[test]
    fn error_on_a_gaussian_decreases_with_samples_and_generalises_to_new_points() {
        let mut errors = Vec::new();
        for m in [50, 400] {
            let (x, truth) = gaussian_samples_and_scores(m, 2, 8);
            let fit = Ssge::fit(&x, &SsgeSettings::default()).unwrap();
            assert!(fit.num_eigenfunctions() >= 1 && fit.num_eigenfunctions() <= m);
            errors.push(relative_error(&fit.score(&x).unwrap(), &truth));
            // Fresh points from the same Gaussian.
            let (fresh, fresh_truth) = gaussian_samples_and_scores(200, 2, 9);
            errors.push(relative_error(&fit.score(&fresh).unwrap(), &fresh_truth));
        }
        assert!(
            errors[2] < errors[0] && errors[3] < errors[1] && errors[3] < 0.35,
            "relative errors {errors:?}"
        );
        let fit = Ssge::fit(&gaussian_samples_and_scores(10, 2, 1).0, &SsgeSettings::default()).unwrap();
        assert!(matches!(
            fit.score(&Mat::zeros(1, 3)),
            Err(EstimatorError::WrongDimension { expected: 2, found: 3 })
        ));
        let bad = SsgeSettings { threshold: 1.5, ..Default::default() };
        assert!(matches!(Ssge::fit(&Mat::zeros(3, 1), &bad), Err(EstimatorError::BadThreshold { .. })));
    }
}

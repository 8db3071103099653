//! The Stein gradient estimator (Li & Turner 2018): scores at the sample points from a kernel
//! regression of Stein's identity, without training (docs/math.md §11.2).

use super::error::EstimatorError;
use super::kernel_samples::{check_samples, kernel_for};
use crate::linalg::Mat;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// Settings of [`SteinFit::fit`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteinSettings {
    /// The ridge regulariser `eta > 0` added to the kernel matrix.
    pub eta: f64,
    /// The RBF bandwidth `w`; `None` uses the median heuristic.
    pub bandwidth: Option<f64>,
}

impl Default for SteinSettings {
    /// `eta = 0.1`, median-heuristic bandwidth.
    fn default() -> Self {
        Self { eta: 0.1, bandwidth: None }
    }
}

/// The scores the Stein gradient estimator assigns to the samples, with the bandwidth it used.
#[derive(Clone, Debug, PartialEq)]
pub struct SteinFit {
    /// `G_hat`, one estimated score per sample (`M x D`).
    pub scores: Mat<f64>,
    /// The RBF bandwidth `w`.
    pub bandwidth: f64,
}

impl SteinFit {
    /// Estimates `grad log q` at the samples `x_1..x_M` (rows of `x`).
    ///
    /// # Definition
    /// Stein's identity with the test functions `k(x_i, .)` gives, at the samples,
    /// $$ \hat G = -(K + \eta I)^{-1} \langle \nabla, K \rangle,\qquad
    ///    \langle \nabla, K\rangle_{i,:} = \sum_j \nabla_{x_j} k(x_i, x_j) =
    ///    \sum_j k(x_i, x_j)\ \frac{x_i - x_j}{w^2}, $$
    /// with the RBF kernel `k(x, y) = exp(-||x - y||^2 / (2 w^2))`. Time `O(M^2 D + M^3)`, memory `O(M^2)`.
    ///
    /// # Reference
    /// Li & Turner, "Gradient Estimators for Implicit Models", ICLR 2018, Eq. (8); docs/math.md §11.2.
    ///
    /// # Errors
    /// [`EstimatorError`] for fewer than 2 samples, a non-finite sample, a bad `eta` or bandwidth, or a
    /// kernel matrix that cannot be factored.
    pub fn fit(x: &Mat<f64>, settings: &SteinSettings) -> Result<SteinFit, EstimatorError> {
        check_samples(x, 2)?;
        if !(settings.eta > 0.0 && settings.eta.is_finite()) {
            return Err(EstimatorError::BadRegulariser { eta: settings.eta });
        }
        let kernel = kernel_for(settings.bandwidth, x)?;
        let (m, dim) = (x.rows(), x.cols());
        let k = kernel.matrix(x, x);
        let w2 = kernel.bandwidth().powi(2);
        // <grad, K> = (diag(K 1) X - K X) / w^2.
        let kx = Mat::matmul(&k, x, false);
        let mut rhs = DMatrix::<f64>::zeros(m, dim);
        for i in 0..m {
            let row_sum: f64 = k.row(i).iter().sum();
            for d in 0..dim {
                rhs[(i, d)] = -(row_sum * x.at(i, d) - kx.at(i, d)) / w2;
            }
        }
        let mut regularised = DMatrix::from_vec(m, m, k.into_vec());
        for i in 0..m {
            regularised[(i, i)] += settings.eta;
        }
        let cholesky = regularised.cholesky().ok_or(EstimatorError::NotPositiveDefinite { samples: m })?;
        let g = cholesky.solve(&rhs);
        let scores = Mat::from_fn(m, dim, |i, d| g[(i, d)]);
        Ok(SteinFit { scores, bandwidth: kernel.bandwidth() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimators::testing::{gaussian_samples_and_scores, relative_error};

    #[test]
    fn error_on_a_gaussian_decreases_with_samples() {
        let errors: Vec<f64> = [50, 400]
            .iter()
            .map(|&m| {
                let (x, truth) = gaussian_samples_and_scores(m, 2, 7);
                let fit = SteinFit::fit(&x, &SteinSettings::default()).unwrap();
                relative_error(&fit.scores, &truth)
            })
            .collect();
        assert!(errors[1] < errors[0] && errors[1] < 0.35, "relative errors {errors:?}");
    }

    #[test]
    fn two_points_give_the_closed_form() {
        // M = 2 in 1-D: K = [[1, c], [c, 1]], c = exp(-(a - b)^2 / (2 w^2)), and <grad, K> = r (1, -1)
        // with r = c (a - b) / w^2, an eigenvector of K + eta I with eigenvalue 1 + eta - c, so
        // G = -r / (1 + eta - c) (1, -1).
        let (a, b, w, eta) = (0.3, -0.9, 0.8, 0.1);
        let x = Mat::from_vec(2, 1, vec![a, b]);
        let fit = SteinFit::fit(&x, &SteinSettings { eta, bandwidth: Some(w) }).unwrap();
        let c = (-(a - b) * (a - b) / (2.0 * w * w)).exp();
        let g0 = -c * (a - b) / (w * w) / (1.0 + eta - c);
        assert_eq!(fit.bandwidth, w);
        assert!(
            (fit.scores.at(0, 0) - g0).abs() < 1e-14 && (fit.scores.at(1, 0) + g0).abs() < 1e-14,
            "{fit:?} vs {g0}"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let one = Mat::from_vec(1, 2, vec![0.0, 1.0]);
        assert_eq!(
            SteinFit::fit(&one, &SteinSettings::default()),
            Err(EstimatorError::TooFewSamples { found: 1, needed: 2 })
        );
        let x = Mat::from_vec(2, 1, vec![0.0, 1.0]);
        let bad = SteinSettings { eta: 0.0, ..Default::default() };
        assert_eq!(SteinFit::fit(&x, &bad), Err(EstimatorError::BadRegulariser { eta: 0.0 }));
        let nan = Mat::from_vec(2, 1, vec![0.0, f64::NAN]);
        assert!(matches!(
            SteinFit::fit(&nan, &SteinSettings::default()),
            Err(EstimatorError::NonFiniteSample { row: 1, .. })
        ));
    }
}

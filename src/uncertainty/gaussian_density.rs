//! The Gaussian negative log-likelihood of an error `e = x - m` under a posterior covariance, in the
//! covariance's own structure: Cholesky for full, a sum for diagonal, and for low-rank + diagonal the
//! Woodbury identity and the matrix determinant lemma (only `r x r` matrices are factored).

use super::{PosteriorCovariance, UncertaintyError};
use nalgebra::{DMatrix, DVector};

/// `log det C` and the squared Mahalanobis distance `e^T C^{-1} e` of one error vector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianTerms {
    /// `log det C`.
    pub log_det: f64,
    /// `e^T C^{-1} e`.
    pub mahalanobis_sq: f64,
}

impl GaussianTerms {
    /// The negative log-likelihood in nats per dimension:
    /// `-log N(e; 0, C) / D = (D log 2 pi + log det C + e^T C^{-1} e) / (2 D)`.
    pub fn nll_per_dim(&self, dim: usize) -> f64 {
        let d = dim as f64;
        (d * (2.0 * std::f64::consts::PI).ln() + self.log_det + self.mahalanobis_sq) / (2.0 * d)
    }
}

impl PosteriorCovariance {
    /// `log det C` and `e^T C^{-1} e`.
    ///
    /// Low-rank + diagonal, `C = A A^T + E` with `E = diag(e)` and `K = I_r + A^T E^{-1} A`:
    /// `log det C = log det E + log det K` (determinant lemma) and
    /// `C^{-1} = E^{-1} - E^{-1} A K^{-1} A^T E^{-1}` (Woodbury), so with `b = A^T E^{-1} e`,
    /// `e^T C^{-1} e = e^T E^{-1} e - b^T K^{-1} b`.
    ///
    /// # Errors
    /// [`UncertaintyError::SizeMismatch`] if `e` does not have `D` entries;
    /// [`UncertaintyError::NotPositiveDefinite`] if `C` (or `E` for low-rank) is not positive definite.
    pub fn gaussian_terms(&self, e: &[f64]) -> Result<GaussianTerms, UncertaintyError> {
        self.check_len("error vector", e)?;
        let not_pd = UncertaintyError::NotPositiveDefinite { form: self.form() };
        let positive = |v: &[f64]| v.iter().all(|&v| v > 0.0 && v.is_finite());
        match self {
            Self::Diagonal(v) => {
                if !positive(v) {
                    return Err(not_pd);
                }
                Ok(GaussianTerms {
                    log_det: v.iter().map(|v| v.ln()).sum(),
                    mahalanobis_sq: e.iter().zip(v).map(|(e, v)| e * e / v).sum(),
                })
            }
            Self::Full(c) => {
                let dim = c.rows();
                let chol = DMatrix::from_row_slice(dim, dim, c.as_slice()).cholesky().ok_or(not_pd)?;
                let y = chol.l().solve_lower_triangular(&DVector::from_column_slice(e)).ok_or(not_pd)?;
                let log_det = 2.0 * chol.l().diagonal().iter().map(|l| l.ln()).sum::<f64>();
                Ok(GaussianTerms { log_det, mahalanobis_sq: y.norm_squared() })
            }
            Self::LowRankDiagonal { factor, diagonal } => {
                if !positive(diagonal) {
                    return Err(not_pd);
                }
                let rank = factor.cols();
                let mut k = DMatrix::<f64>::identity(rank, rank);
                let mut b = DVector::<f64>::zeros(rank);
                for ((a, ei), ri) in factor.row_iter().zip(diagonal).zip(e) {
                    for p in 0..rank {
                        b[p] += a[p] * ri / ei;
                        for q in 0..rank {
                            k[(p, q)] += a[p] * a[q] / ei;
                        }
                    }
                }
                let chol = k.cholesky().ok_or(not_pd)?;
                let y = chol.l().solve_lower_triangular(&b).ok_or(not_pd)?;
                let log_det = diagonal.iter().map(|v| v.ln()).sum::<f64>()
                    + 2.0 * chol.l().diagonal().iter().map(|l| l.ln()).sum::<f64>();
                let quad: f64 = e.iter().zip(diagonal).map(|(r, v)| r * r / v).sum();
                Ok(GaussianTerms { log_det, mahalanobis_sq: quad - y.norm_squared() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Mat;
    use crate::testing::{normal_mat, test_rng};

    #[test]
    fn woodbury_and_determinant_lemma_equal_the_dense_density() {
        // C = A A^T + diag(e) at D = 7, r = 3: the factored terms equal those of the dense matrix
        // (dense Cholesky), to rounding.
        let mut rng = test_rng(5);
        let (dim, rank) = (7, 3);
        let factor = normal_mat(dim, rank, &mut rng);
        let diagonal: Vec<f64> = (0..dim).map(|i| 0.1 + 0.05 * i as f64).collect();
        let low = PosteriorCovariance::LowRankDiagonal { factor, diagonal };
        let dense = PosteriorCovariance::Full(low.dense());
        let e = normal_mat(1, dim, &mut rng).into_vec();
        let (a, b) = (low.gaussian_terms(&e).unwrap(), dense.gaussian_terms(&e).unwrap());
        assert!((a.log_det - b.log_det).abs() < 1e-11, "{a:?} vs {b:?}");
        assert!((a.mahalanobis_sq - b.mahalanobis_sq).abs() < 1e-10 * b.mahalanobis_sq, "{a:?} vs {b:?}");
        assert!((a.nll_per_dim(dim) - b.nll_per_dim(dim)).abs() < 1e-11);
        // The diagonal form against its dense matrix, and the closed form of N(0, I) at e = 0.
        let diag = PosteriorCovariance::Diagonal(vec![0.5, 2.0]);
        let t = diag.gaussian_terms(&[1.0, -2.0]).unwrap();
        let d = PosteriorCovariance::Full(diag.dense()).gaussian_terms(&[1.0, -2.0]).unwrap();
        assert!((t.log_det - d.log_det).abs() < 1e-14 && (t.mahalanobis_sq - 4.0).abs() < 1e-14);
        let unit = PosteriorCovariance::Full(Mat::from_fn(2, 2, |i, j| f64::from(u8::from(i == j))));
        let nll = unit.gaussian_terms(&[0.0, 0.0]).unwrap().nll_per_dim(2);
        assert!((nll - 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
    }

    #[test]
    fn indefinite_covariances_and_wrong_sizes_are_errors() {
        let indefinite = PosteriorCovariance::Diagonal(vec![1.0, -1.0]);
        assert_eq!(
            indefinite.gaussian_terms(&[0.0, 0.0]),
            Err(UncertaintyError::NotPositiveDefinite { form: "diag" })
        );
        let full = PosteriorCovariance::Full(Mat::from_vec(2, 2, vec![1.0, 2.0, 2.0, 1.0]));
        assert!(full.gaussian_terms(&[0.0, 0.0]).is_err());
        assert!(matches!(
            full.gaussian_terms(&[0.0]),
            Err(UncertaintyError::SizeMismatch { found: 1, expected: 2, .. })
        ));
    }
}

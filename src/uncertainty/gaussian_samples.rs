//! Samples of the Gaussian approximation `N(m, C)` of the posterior, in the covariance's structure:
//! `m + L z` with the Cholesky factor for full, `m + sqrt(v) z` for diagonal, and
//! `m + A z_1 + sqrt(e) z_2` (two independent standard normals) for `C = A A^T + diag(e)`.

use super::{PosteriorCovariance, UncertaintyError};
use crate::linalg::Mat;
use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

impl PosteriorCovariance {
    /// `count` samples of `N(mean, C)` as rows (`count x D`).
    ///
    /// # Errors
    /// [`UncertaintyError::SizeMismatch`] if `mean` does not have `D` entries;
    /// [`UncertaintyError::NotPositiveDefinite`] if a full `C` has no Cholesky factor or a variance is
    /// negative (clip it first).
    pub fn samples<R: Rng + ?Sized>(
        &self,
        mean: &[f64],
        count: usize,
        rng: &mut R,
    ) -> Result<Mat<f64>, UncertaintyError> {
        self.check_len("mean", mean)?;
        let dim = self.dim();
        let not_pd = UncertaintyError::NotPositiveDefinite { form: self.form() };
        let mut normal = |n: usize| -> Vec<f64> { (0..n).map(|_| StandardNormal.sample(rng)).collect() };
        let sqrt_of = |v: &[f64]| -> Result<Vec<f64>, UncertaintyError> {
            v.iter().map(|&v| if v >= 0.0 { Ok(v.sqrt()) } else { Err(not_pd) }).collect()
        };
        let mut out = Mat::zeros(count, dim);
        match self {
            Self::Full(c) => {
                let chol = DMatrix::from_row_slice(dim, dim, c.as_slice()).cholesky().ok_or(not_pd)?;
                let l = chol.l();
                for s in 0..count {
                    let z = normal(dim);
                    let row = out.row_mut(s);
                    for i in 0..dim {
                        row[i] = mean[i] + (0..=i).map(|j| l[(i, j)] * z[j]).sum::<f64>();
                    }
                }
            }
            Self::Diagonal(v) => {
                let sd = sqrt_of(v)?;
                for s in 0..count {
                    let z = normal(dim);
                    out.row_mut(s).iter_mut().enumerate().for_each(|(i, o)| *o = mean[i] + sd[i] * z[i]);
                }
            }
            Self::LowRankDiagonal { factor, diagonal } => {
                let sd = sqrt_of(diagonal)?;
                for s in 0..count {
                    let (z1, z2) = (normal(factor.cols()), normal(dim));
                    for (i, o) in out.row_mut(s).iter_mut().enumerate() {
                        let low: f64 = factor.row(i).iter().zip(&z1).map(|(a, z)| a * z).sum();
                        *o = mean[i] + low + sd[i] * z2[i];
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};

    #[test]
    fn sample_moments_match_the_mean_and_covariance_in_every_form() {
        // 20000 samples: each entry of the sample covariance has standard error
        // sqrt((C_ii C_jj + C_ij^2) / n) <= sqrt(2 / n) max C_ii; the tolerance is 5 of those, and 5
        // standard errors sqrt(C_ii / n) for the mean.
        let mut rng = test_rng(3);
        let (dim, n) = (4, 20_000);
        let factor = normal_mat(dim, 2, &mut rng);
        let low = PosteriorCovariance::LowRankDiagonal { factor, diagonal: vec![0.2, 0.4, 0.1, 0.3] };
        let mean = [1.0, -2.0, 0.5, 0.0];
        for cov in [
            low.clone(),
            PosteriorCovariance::Full(low.dense()),
            PosteriorCovariance::Diagonal(low.variances()),
        ] {
            let x = cov.samples(&mean, n, &mut rng).unwrap();
            let c = cov.dense();
            let cmax = (0..dim).map(|i| c.at(i, i)).fold(0.0, f64::max);
            let m: Vec<f64> = (0..dim).map(|j| x.row_iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
            for i in 0..dim {
                assert!(
                    (m[i] - mean[i]).abs() < 5.0 * (c.at(i, i) / n as f64).sqrt(),
                    "{} mean {i}",
                    cov.form()
                );
                for j in 0..dim {
                    let s: f64 = x.row_iter().map(|r| (r[i] - m[i]) * (r[j] - m[j])).sum::<f64>() / n as f64;
                    let tol = 5.0 * cmax * (2.0 / n as f64).sqrt();
                    assert!(
                        (s - c.at(i, j)).abs() < tol,
                        "{} cov ({i}, {j}): {s} vs {}",
                        cov.form(),
                        c.at(i, j)
                    );
                }
            }
        }
        assert!(PosteriorCovariance::Diagonal(vec![-1.0]).samples(&[0.0], 1, &mut rng).is_err());
    }
}

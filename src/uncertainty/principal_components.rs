//! The top-`K` principal directions and variances of a posterior covariance: a dense symmetric
//! eigendecomposition for full covariances, the largest variances for diagonal ones, and for low-rank +
//! diagonal a thin QR of the factor and an `r x r` eigenproblem (Rayleigh-Ritz in the factor's span).

use super::{PosteriorCovariance, UncertaintyError};
use crate::linalg::Mat;
use nalgebra::{DMatrix, SymmetricEigen};

/// Orthonormal principal directions (rows of a `K x D` matrix) and their variances, largest first.
#[derive(Clone, Debug, PartialEq)]
pub struct PrincipalComponents {
    /// `v_k` as row `k` (`K x D`).
    pub directions: Mat<f64>,
    /// `lambda_k = v_k^T C v_k`, descending.
    pub variances: Vec<f64>,
}

impl PrincipalComponents {
    /// The top `k` eigenpairs of the symmetric `m` (`n x n`), whose eigenvectors are mapped to `D`
    /// coordinates by `lift` (row `k` of the result is `lift(y_k)`).
    pub(super) fn top_of(m: DMatrix<f64>, k: usize, lift: impl Fn(&[f64]) -> Vec<f64>) -> Self {
        let eig = SymmetricEigen::new(m);
        let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let rows: Vec<Vec<f64>> =
            order[..k].iter().map(|&c| lift(eig.eigenvectors.column(c).as_slice())).collect();
        let dim = rows.first().map_or(0, Vec::len);
        Self {
            directions: Mat::from_vec(k, dim, rows.concat()),
            variances: order[..k].iter().map(|&c| eig.eigenvalues[c]).collect(),
        }
    }
}

impl PosteriorCovariance {
    /// The most principal components this covariance gives: `D`, or the rank `r` of a low-rank factor.
    pub fn max_components(&self) -> usize {
        match self {
            Self::LowRankDiagonal { factor, .. } => factor.cols().min(self.dim()),
            _ => self.dim(),
        }
    }

    /// The top `k` principal directions and variances.
    ///
    /// Low-rank + diagonal, `C = A A^T + diag(e)`: with the thin QR `A = Q R` (`Q` is `D x r`), the
    /// directions are `Q y_k` for the top eigenvectors `y_k` of `Q^T C Q = (R)(R)^T + Q^T diag(e) Q`
    /// (`r x r`). When `e` is isotropic (`e = c 1`) this is exact: `span(A)` is invariant under `C` and
    /// holds its top `r` eigenvectors, with eigenvalues those of `A A^T` plus `c`. When `e` is not
    /// isotropic it is the Rayleigh-Ritz approximation in `span(A)`: each `lambda_k` is a lower bound on
    /// the `k`-th eigenvalue of `C` (Cauchy interlacing), the directions miss the part of the top
    /// eigenvectors outside `span(A)`, and the cost stays `O(D r^2)`.
    ///
    /// # Errors
    /// [`UncertaintyError::TooManyComponents`] if `k` exceeds [`max_components`](Self::max_components).
    pub fn principal_components(&self, k: usize) -> Result<PrincipalComponents, UncertaintyError> {
        let dim = self.dim();
        if !self.is_finite() {
            return Err(UncertaintyError::NonFinite { what: "covariance" });
        }
        if k > self.max_components() {
            let why = match self {
                Self::LowRankDiagonal { factor, .. } if factor.cols() < dim => {
                    "the rank of the low-rank head"
                }
                _ => "the dimension",
            };
            return Err(UncertaintyError::TooManyComponents {
                requested: k,
                available: self.max_components(),
                why,
            });
        }
        Ok(match self {
            Self::Full(c) => PrincipalComponents::top_of(
                DMatrix::from_row_slice(dim, dim, c.as_slice()),
                k,
                <[f64]>::to_vec,
            ),
            Self::Diagonal(v) => {
                let mut order: Vec<usize> = (0..dim).collect();
                order.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
                PrincipalComponents {
                    directions: Mat::from_fn(k, dim, |r, i| f64::from(u8::from(order[r] == i))),
                    variances: order[..k].iter().map(|&i| v[i]).collect(),
                }
            }
            Self::LowRankDiagonal { factor, diagonal } => {
                let rank = factor.cols().min(dim);
                let a = DMatrix::from_row_slice(dim, factor.cols(), factor.as_slice());
                let q = a.clone().qr().q().columns(0, rank).into_owned();
                let qa = q.transpose() * &a;
                let mut small = &qa * qa.transpose();
                for p in 0..rank {
                    for s in 0..rank {
                        small[(p, s)] += (0..dim).map(|i| q[(i, p)] * diagonal[i] * q[(i, s)]).sum::<f64>();
                    }
                }
                PrincipalComponents::top_of(small, k, |y| {
                    (0..dim).map(|i| (0..rank).map(|p| q[(i, p)] * y[p]).sum()).collect()
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};

    /// `|<u, w>|` for unit vectors (eigenvectors are defined up to sign).
    fn alignment(u: &[f64], w: &[f64]) -> f64 {
        u.iter().zip(w).map(|(a, b)| a * b).sum::<f64>().abs()
    }

    #[test]
    fn low_rank_components_equal_a_dense_eigendecomposition_when_the_diagonal_is_isotropic() {
        let mut rng = test_rng(8);
        let (dim, rank) = (9, 4);
        let factor = normal_mat(dim, rank, &mut rng);
        let low = PosteriorCovariance::LowRankDiagonal { factor: factor.clone(), diagonal: vec![0.3; dim] };
        let dense = PosteriorCovariance::Full(low.dense());
        let (a, b) = (low.principal_components(rank).unwrap(), dense.principal_components(rank).unwrap());
        for k in 0..rank {
            assert!((a.variances[k] - b.variances[k]).abs() < 1e-11, "lambda_{k}: {a:?} vs {b:?}");
            assert!((alignment(a.directions.row(k), b.directions.row(k)) - 1.0).abs() < 1e-9, "v_{k}");
        }
        // A non-isotropic diagonal: the Ritz values are lower bounds on the dense eigenvalues, the Ritz
        // vectors are orthonormal and the variances are their Rayleigh quotients.
        let diagonal: Vec<f64> = (0..dim).map(|i| 0.1 + 0.2 * i as f64).collect();
        let low = PosteriorCovariance::LowRankDiagonal { factor, diagonal };
        let c = low.dense();
        let (a, b) = (
            low.principal_components(rank).unwrap(),
            PosteriorCovariance::Full(c.clone()).principal_components(rank).unwrap(),
        );
        for k in 0..rank {
            assert!(a.variances[k] <= b.variances[k] + 1e-12, "interlacing at {k}");
            let v = a.directions.row(k);
            let cv: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| c.at(i, j) * v[j]).sum()).collect();
            assert!((alignment(v, &cv) - a.variances[k]).abs() < 1e-11, "Rayleigh quotient {k}");
            for l in 0..rank {
                let want = f64::from(u8::from(k == l));
                assert!((alignment(v, a.directions.row(l)) - want).abs() < 1e-12, "orthonormal {k} {l}");
            }
        }
    }

    #[test]
    fn diagonal_and_full_components_are_sorted_and_too_many_is_an_error() {
        let diag = PosteriorCovariance::Diagonal(vec![0.2, 0.9, 0.5]);
        let pcs = diag.principal_components(2).unwrap();
        assert_eq!(pcs.variances, vec![0.9, 0.5]);
        assert_eq!(pcs.directions.as_slice(), &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let full = PosteriorCovariance::Full(Mat::from_vec(2, 2, vec![2.0, 1.0, 1.0, 2.0]));
        let pcs = full.principal_components(2).unwrap();
        assert!((pcs.variances[0] - 3.0).abs() < 1e-14 && (pcs.variances[1] - 1.0).abs() < 1e-14);
        assert!((alignment(pcs.directions.row(0), &[0.5f64.sqrt(), 0.5f64.sqrt()]) - 1.0).abs() < 1e-14);
        assert_eq!(
            diag.principal_components(4),
            Err(UncertaintyError::TooManyComponents { requested: 4, available: 3, why: "the dimension" })
        );
        let low = PosteriorCovariance::LowRankDiagonal { factor: Mat::zeros(3, 1), diagonal: vec![1.0; 3] };
        assert!(matches!(
            low.principal_components(2),
            Err(UncertaintyError::TooManyComponents {
                available: 1,
                why: "the rank of the low-rank head",
                ..
            })
        ));
    }
}

//! The posterior covariance `Cov[x | x~] = sigma^4 S2(x~) + sigma^2 I` of one noisy point in the form
//! of the second-order head that gave `S2`: dense, diagonal, or low-rank + diagonal kept as factors.

use super::UncertaintyError;
use crate::linalg::Mat;
use crate::models::SecondOrderHead;
use nalgebra::{DMatrix, SymmetricEigen};

/// A posterior covariance in the structure of its head (f64).
#[derive(Clone, Debug, PartialEq)]
pub enum PosteriorCovariance {
    /// A dense symmetric `D x D` matrix (full head, the autodiff Jacobian, or the exact posterior).
    Full(Mat<f64>),
    /// Per-coordinate variances: `diag(v)`.
    Diagonal(Vec<f64>),
    /// `A A^T + diag(e)` with `A` (`D x r`, row-major) and `e` (length `D`); never built as `D x D`.
    LowRankDiagonal {
        /// The factor `A = sigma^2 U` of a low-rank head `S2 = U U^T + diag(d)`.
        factor: Mat<f64>,
        /// `e = sigma^4 d + sigma^2`.
        diagonal: Vec<f64>,
    },
}

impl PosteriorCovariance {
    /// The covariance `sigma^4 S2 + sigma^2 I` of one raw output row of a second-order head (Tweedie at
    /// second order, docs/math.md §2.3): full `sigma^4 S2 + sigma^2 I`; diagonal `sigma^4 d + sigma^2`;
    /// low-rank `(sigma^2 U)(sigma^2 U)^T + diag(sigma^4 d + sigma^2)`.
    #[track_caller]
    pub fn from_head(head: SecondOrderHead, raw: &[f64], dim: usize, sigma: f64) -> Self {
        assert_eq!(raw.len(), head.outputs(dim), "from_head: {} raw outputs for a {head} head", raw.len());
        let (s2, s4) = (sigma * sigma, sigma.powi(4));
        match head {
            SecondOrderHead::Full => {
                let mut dense = vec![0.0; dim * dim];
                head.dense_into(raw, dim, &mut dense);
                dense.iter_mut().for_each(|v| *v *= s4);
                (0..dim).for_each(|i| dense[i * dim + i] += s2);
                Self::Full(Mat::from_vec(dim, dim, dense))
            }
            SecondOrderHead::Diagonal => Self::Diagonal(raw.iter().map(|d| s4 * d + s2).collect()),
            SecondOrderHead::LowRank { rank } => {
                let (u, d) = raw.split_at(dim * rank);
                Self::LowRankDiagonal {
                    factor: Mat::from_vec(dim, rank, u.iter().map(|v| s2 * v).collect()),
                    diagonal: d.iter().map(|d| s4 * d + s2).collect(),
                }
            }
        }
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        match self {
            Self::Full(c) => c.rows(),
            Self::Diagonal(v) => v.len(),
            Self::LowRankDiagonal { diagonal, .. } => diagonal.len(),
        }
    }

    /// `full`, `diag` or `lowrank`.
    pub fn form(&self) -> &'static str {
        match self {
            Self::Full(_) => "full",
            Self::Diagonal(_) => "diag",
            Self::LowRankDiagonal { .. } => "lowrank",
        }
    }

    /// The per-coordinate variances `C_ii` (for low-rank: `sum_a A_ia^2 + e_i`).
    pub fn variances(&self) -> Vec<f64> {
        match self {
            Self::Full(c) => (0..c.rows()).map(|i| c.at(i, i)).collect(),
            Self::Diagonal(v) => v.clone(),
            Self::LowRankDiagonal { factor, diagonal } => factor
                .row_iter()
                .zip(diagonal)
                .map(|(a, e)| a.iter().map(|v| v * v).sum::<f64>() + e)
                .collect(),
        }
    }

    /// The dense `D x D` matrix (for checks and small `D`; costs `D^2` memory).
    pub fn dense(&self) -> Mat<f64> {
        match self {
            Self::Full(c) => c.clone(),
            Self::Diagonal(v) => Mat::from_fn(v.len(), v.len(), |i, j| if i == j { v[i] } else { 0.0 }),
            Self::LowRankDiagonal { factor, diagonal } => {
                let mut c = Mat::matmul(factor, factor, true);
                (0..diagonal.len()).for_each(|i| c.set(i, i, c.at(i, i) + diagonal[i]));
                c
            }
        }
    }

    /// True when every entry is finite.
    pub fn is_finite(&self) -> bool {
        match self {
            Self::Full(c) => c.is_finite(),
            Self::Diagonal(v) => v.iter().all(|v| v.is_finite()),
            Self::LowRankDiagonal { factor, diagonal } => {
                factor.is_finite() && diagonal.iter().all(|v| v.is_finite())
            }
        }
    }

    /// The PSD correction: raises every eigenvalue below `floor` to `floor` and returns the amount
    /// added to the trace, `sum_k max(floor - lambda_k, 0)` (0 when nothing was clipped).
    ///
    /// Full: eigenvalue clipping of `C = V diag(lambda) V^T` (the nearest matrix with spectrum
    /// `>= floor` in Frobenius norm). Diagonal: the variances themselves. Low-rank + diagonal: `A A^T` is
    /// PSD, so raising the entries of `e` to `floor` makes `C >= floor I` without leaving the factored
    /// form; this is a sufficient correction, not the nearest matrix, and the amount reported is what
    /// was added to `e`. A full matrix with a non-finite entry is left as it is (0 returned; densities and
    /// components then report it).
    #[track_caller]
    pub fn clip_to_psd(&mut self, floor: f64) -> f64 {
        assert!(floor >= 0.0, "clip_to_psd: floor {floor} < 0");
        let clip = |v: &mut f64| {
            let added = (floor - *v).max(0.0);
            *v = v.max(floor);
            added
        };
        match self {
            Self::Diagonal(v) | Self::LowRankDiagonal { diagonal: v, .. } => v.iter_mut().map(clip).sum(),
            Self::Full(c) if !c.is_finite() => 0.0,
            Self::Full(c) => {
                let dim = c.rows();
                let mut eig = SymmetricEigen::new(DMatrix::from_row_slice(dim, dim, c.as_slice()));
                let added: f64 = eig.eigenvalues.iter_mut().map(clip).sum();
                if added > 0.0 {
                    let m = eig.recompose();
                    *c = Mat::from_fn(dim, dim, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
                }
                added
            }
        }
    }

    /// `Err` unless `v` has `D` entries.
    pub(crate) fn check_len(&self, what: &'static str, v: &[f64]) -> Result<(), UncertaintyError> {
        if v.len() == self.dim() {
            Ok(())
        } else {
            Err(UncertaintyError::SizeMismatch { what, found: v.len(), expected: self.dim() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_outputs_become_sigma4_s2_plus_sigma2_identity_in_every_form() {
        let (dim, sigma) = (3, 0.5);
        let raw: Vec<f64> = (0..3 * 2 + 3).map(|k| (k as f64 * 0.7).sin()).collect();
        for head in [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }] {
            let raw = &raw[..head.outputs(dim)];
            let mut s2 = vec![0.0; dim * dim];
            head.dense_into(raw, dim, &mut s2);
            let cov = PosteriorCovariance::from_head(head, raw, dim, sigma);
            let dense = cov.dense();
            for i in 0..dim {
                for j in 0..dim {
                    let want = sigma.powi(4) * s2[i * dim + j] + if i == j { sigma * sigma } else { 0.0 };
                    assert!((dense.at(i, j) - want).abs() < 1e-14, "{head} ({i}, {j})");
                }
                assert!((cov.variances()[i] - dense.at(i, i)).abs() < 1e-14, "{head} variance {i}");
            }
        }
    }

    #[test]
    fn clipping_raises_only_the_eigenvalues_below_the_floor_and_reports_the_amount() {
        // C = Q diag(2, -0.5, 0.25) Q^T with a rotation Q in the (0, 1) plane: clipping at 0.1 gives
        // Q diag(2, 0.1, 0.25) Q^T and adds 0.6 to the trace.
        let (c, s) = (0.6f64, 0.8f64);
        let q = [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0];
        let lam = [2.0, -0.5, 0.25];
        let build = |lam: &[f64]| {
            Mat::from_fn(3, 3, |i, j| (0..3).map(|k| q[i * 3 + k] * lam[k] * q[j * 3 + k]).sum())
        };
        let mut cov = PosteriorCovariance::Full(build(&lam));
        assert!((cov.clip_to_psd(0.1) - 0.6).abs() < 1e-12);
        let want = build(&[2.0, 0.1, 0.25]);
        assert!(cov.dense().as_slice().iter().zip(want.as_slice()).all(|(a, b)| (a - b).abs() < 1e-12));
        let mut diag = PosteriorCovariance::Diagonal(vec![1.0, -0.2, 0.05]);
        assert!((diag.clip_to_psd(0.1) - 0.35).abs() < 1e-15);
        assert_eq!(diag, PosteriorCovariance::Diagonal(vec![1.0, 0.1, 0.1]));
        let mut none = PosteriorCovariance::Full(build(&[2.0, 0.5, 0.25]));
        assert_eq!(none.clip_to_psd(0.1), 0.0);
    }
}

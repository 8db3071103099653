//! The small capability traits of a target: dimension, log density, score, score Hessian.
//!
//! Each capability is its own trait so that an algorithm bounds only on what it uses (Langevin needs
//! [`Score`], MALA needs [`LogDensity`] + [`Score`], Ozaki needs [`ScoreHessian`]). Outputs go into
//! caller-owned slices; shape mismatches are programmer errors and panic. Each trait also has the
//! batched form of its method (`log_densities`, `scores`, `hessians`: one row of a [`Mat`] per point, rows
//! in parallel on the current rayon pool).

use crate::linalg::Mat;

/// The dimension `D` of the space a target lives in.
pub trait HasDim {
    /// The dimension `D`.
    fn dim(&self) -> usize;
}

/// A normalised log density.
///
/// # Definition
/// $$ x \mapsto \log p(x), \qquad \int p = 1. $$
pub trait LogDensity: HasDim {
    /// `log p(x)` for `x` of length `D`.
    fn log_density(&self, x: &[f64]) -> f64;

    /// `log p` of every row of `x` (`N x D`), as a vector of length `N`.
    #[track_caller]
    fn log_densities(&self, x: &Mat<f64>) -> Vec<f64>
    where
        Self: Sync,
    {
        super::batch::log_densities(self, x)
    }
}

/// The score, the gradient of the log density.
///
/// # Definition
/// $$ s_1(x) = \nabla_x \log p(x) \in \mathbb R^D. $$
///
/// # Reference
/// docs/math.md §1.2 (Meng et al. 2021, Sec. 2).
pub trait Score: HasDim {
    /// Writes `s1(x)` (length `D`) into `out`.
    fn score_into(&self, x: &[f64], out: &mut [f64]);

    /// `s1` of every row of `x` (`N x D`), as an `N x D` matrix.
    #[track_caller]
    fn scores(&self, x: &Mat<f64>) -> Mat<f64>
    where
        Self: Sync,
    {
        super::batch::scores(self, x)
    }
}

/// The Hessian of the log density (the second-order score).
///
/// # Definition
/// $$ s_2(x)_{ij} = \partial_i \partial_j \log p(x), $$
/// a symmetric `D x D` matrix stored row-major.
///
/// # Reference
/// docs/math.md §1.2 (Meng et al. 2021, Sec. 3).
pub trait ScoreHessian: Score {
    /// Writes `s2(x)` (length `D * D`, row-major) into `out`.
    fn hessian_into(&self, x: &[f64], out: &mut [f64]);

    /// `s2` of every row of `x` (`N x D`), as `N` row-major `D x D` blocks (length `N * D * D`).
    #[track_caller]
    fn hessians(&self, x: &Mat<f64>) -> Vec<f64>
    where
        Self: Sync,
    {
        super::batch::hessians(self, x)
    }
}

impl<T: HasDim + ?Sized> HasDim for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
}

impl<T: LogDensity + ?Sized> LogDensity for &T {
    fn log_density(&self, x: &[f64]) -> f64 {
        (**self).log_density(x)
    }
}

impl<T: Score + ?Sized> Score for &T {
    fn score_into(&self, x: &[f64], out: &mut [f64]) {
        (**self).score_into(x, out)
    }
}

impl<T: ScoreHessian + ?Sized> ScoreHessian for &T {
    fn hessian_into(&self, x: &[f64], out: &mut [f64]) {
        (**self).hessian_into(x, out)
    }
}

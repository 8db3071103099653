//! The small capability traits of a target: dimension, log density, score, score Hessian.
//!
//! Each capability is its own trait so that an algorithm bounds only on what it uses (Langevin needs
//! [`Score`], MALA needs [`LogDensity`] + [`Score`], Ozaki needs [`ScoreHessian`]). Outputs go into
//! caller-owned slices; shape mismatches are programmer errors and panic.

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

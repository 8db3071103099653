//! What a sampler reads from a distribution, batched over chains: scores, log densities, curvature, and
//! the scores at each noise level; implemented for every analytic target by blanket impls.

use super::curvature::{CurvatureBatch, CurvatureLayout};
use super::error::SamplerError;
use crate::linalg::Mat;
use crate::targets::{GaussianMixture, HasDim, LogDensity, Score, ScoreHessian};
use rayon::prelude::*;

/// Rows per rayon task: enough work per task to amortise scheduling for small `D`. Fixed, so that the
/// split of work (and hence every number) does not depend on the number of threads.
pub(crate) const ROWS_PER_TASK: usize = 16;

/// Scores $s_1(x) = \nabla \log p(x)$ of many points at once (one row of a `N x D` matrix per chain).
///
/// Langevin samplers bound only on this trait. Sources are `Sync` because rows are evaluated in
/// parallel; implementations must give each row a result that does not depend on how rows are split
/// across threads.
pub trait ScoreSource: Sync {
    /// The dimension `D`.
    fn dim(&self) -> usize;

    /// Writes $s_1$ of every row of `x` (`N x D`) into `out` (`N x D`, already shaped).
    fn scores_into(&self, x: &Mat<f64>, out: &mut Mat<f64>);
}

/// Log densities $\log p(x)$ (up to one additive constant shared by all points) of many points at once.
///
/// MALA bounds on this and [`ScoreSource`]; learned score models do not implement it.
pub trait LogDensitySource: ScoreSource {
    /// Writes $\log p$ of every row of `x` into `out` (length `N`).
    fn log_densities_into(&self, x: &Mat<f64>, out: &mut [f64]);
}

/// Curvature $H = s_2(x) = \nabla^2 \log p(x)$ of many points, in the structure the source has.
///
/// Ozaki bounds on this trait.
pub trait CurvatureSource: ScoreSource {
    /// The structure the curvature comes in, or `None` for a source without curvature (a score model
    /// without a second-order head), which the Ozaki samplers refuse with
    /// [`SamplerError::NoSecondOrderHead`].
    fn layout(&self) -> Option<CurvatureLayout>;

    /// Writes the scores of every row of `x` into `scores` (`N x D`, already shaped) and their curvature
    /// into `curvature` (resized to `N` chains; its layout is [`layout`](Self::layout)).
    fn scores_and_curvature_into(&self, x: &Mat<f64>, scores: &mut Mat<f64>, curvature: &mut CurvatureBatch);
}

/// A family of sources indexed by the noise level $\sigma$: the scores of $q_\sigma = p * \mathcal N(0,
/// \sigma^2 I)$ at every $\sigma$, as annealed samplers need.
pub trait NoiseConditional {
    /// The source at one level.
    type Level: ScoreSource;

    /// The dimension `D`.
    fn dim(&self) -> usize;

    /// The source of $q_\sigma$.
    ///
    /// # Errors
    /// Whatever building the level fails with (for mixtures: [`SamplerError::Target`] for a
    /// non-positive $\sigma$).
    fn at_level(&self, sigma: f64) -> Result<Self::Level, SamplerError>;
}

#[track_caller]
fn check_shapes(dim: usize, x: &Mat<f64>, out_rows: usize, out_cols: usize, what: &str) {
    assert_eq!(x.cols(), dim, "{what}: points have {} coordinates, source has D = {dim}", x.cols());
    assert!(
        out_rows == x.rows() && out_cols == dim,
        "{what}: output is {out_rows}x{out_cols}, expected {}x{dim}",
        x.rows()
    );
}

impl<T: Score + Sync + ?Sized> ScoreSource for T {
    fn dim(&self) -> usize {
        HasDim::dim(self)
    }

    #[track_caller]
    fn scores_into(&self, x: &Mat<f64>, out: &mut Mat<f64>) {
        let d = HasDim::dim(self);
        check_shapes(d, x, out.rows(), out.cols(), "scores_into");
        if d == 0 {
            return;
        }
        out.as_mut_slice().par_chunks_mut(d).with_min_len(ROWS_PER_TASK).enumerate().for_each(|(i, o)| {
            self.score_into(x.row(i), o);
        });
    }
}

impl<T: LogDensity + Score + Sync + ?Sized> LogDensitySource for T {
    #[track_caller]
    fn log_densities_into(&self, x: &Mat<f64>, out: &mut [f64]) {
        let d = HasDim::dim(self);
        check_shapes(d, x, out.len(), d, "log_densities_into");
        out.par_iter_mut().with_min_len(ROWS_PER_TASK).enumerate().for_each(|(i, o)| {
            *o = self.log_density(x.row(i));
        });
    }
}

impl<T: ScoreHessian + Sync + ?Sized> CurvatureSource for T {
    fn layout(&self) -> Option<CurvatureLayout> {
        Some(CurvatureLayout::Dense)
    }

    #[track_caller]
    fn scores_and_curvature_into(&self, x: &Mat<f64>, scores: &mut Mat<f64>, curvature: &mut CurvatureBatch) {
        let d = HasDim::dim(self);
        check_shapes(d, x, scores.rows(), scores.cols(), "scores_and_curvature_into");
        assert!(
            curvature.layout() == CurvatureLayout::Dense && curvature.dim() == d,
            "scores_and_curvature_into: curvature batch must be dense with D = {d}"
        );
        if d == 0 {
            return;
        }
        let blocks = curvature.resize(x.rows());
        scores
            .as_mut_slice()
            .par_chunks_mut(d)
            .zip(blocks.par_chunks_mut(d * d))
            .with_min_len(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(i, (s, h))| {
                self.score_into(x.row(i), s);
                self.hessian_into(x.row(i), h);
            });
    }
}

impl NoiseConditional for GaussianMixture {
    type Level = GaussianMixture;

    fn dim(&self) -> usize {
        self.dim()
    }

    fn at_level(&self, sigma: f64) -> Result<GaussianMixture, SamplerError> {
        Ok(self.noisy(sigma)?)
    }
}

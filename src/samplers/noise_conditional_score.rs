//! A score model conditioned on the noise level (an NCSN-style image model, or an analytic density), and
//! its levels as the sources the annealed samplers walk down: scores (annealed ULA) and, with a
//! second-order head, curvature (annealed Ozaki).

use super::curvature::{CurvatureBatch, CurvatureLayout};
use super::error::SamplerError;
use super::source::{CurvatureSource, NoiseConditional, ScoreSource};
use crate::linalg::Mat;

/// Scores $s_1(x; \sigma) = \nabla \log q_\sigma(x)$ at any noise level, and, for a model with a
/// second-order head, the curvature $s_2(x; \sigma)$ in the head's structure (docs/math.md §5.1:
/// `LowRank` is $U U^\top + \operatorname{diag}(d)$, the $D r$ numbers of $U$ row-major then $d$).
///
/// Rows are images flattened channels-last (`(row, column, channel)`, the channel fastest), in the
/// pixel scaling the model was trained on. Implementations must give each row a result that does not
/// depend on how rows are split across threads.
pub trait NoiseConditionalScore: Sync {
    /// The dimension `D` (pixels times channels).
    fn dim(&self) -> usize;

    /// The structure of $s_2$, or `None` for a model without a second-order head.
    fn curvature_layout(&self) -> Option<CurvatureLayout>;

    /// Writes $s_1(x; \sigma)$ of every row of `x` (`N x D`) into `out` (`N x D`, already shaped).
    fn scores_into(&self, x: &Mat<f64>, sigma: f64, out: &mut Mat<f64>);

    /// Writes the scores into `scores` and $s_2(x; \sigma)$ into `curvature` (layout
    /// [`curvature_layout`](Self::curvature_layout), resized to `N` chains). Called only when that
    /// layout is `Some`.
    fn scores_and_curvature_into(
        &self,
        x: &Mat<f64>,
        sigma: f64,
        scores: &mut Mat<f64>,
        curvature: &mut CurvatureBatch,
    );
}

/// A reference to a noise-conditional model is the family of its levels that the annealed samplers walk
/// down: `AnnealedUla::new(settings, &&model)` or, with `model: &M`, `AnnealedUla::new(settings, &model)`;
/// annealed Ozaki needs the model's curvature (its `curvature_layout`).
impl<'a, M: NoiseConditionalScore + ?Sized> NoiseConditional for &'a M {
    type Level = AtSigma<'a, M>;

    fn dim(&self) -> usize {
        M::dim(self)
    }

    fn at_level(&self, sigma: f64) -> Result<AtSigma<'a, M>, SamplerError> {
        if sigma > 0.0 && sigma.is_finite() {
            Ok(AtSigma { model: *self, sigma })
        } else {
            Err(SamplerError::BadSchedule { sigma_max: sigma, sigma_min: sigma, levels: 1 })
        }
    }
}

/// One level of a noise-conditional model: the scores of $q_\sigma$ and, when the model has them, their
/// curvature.
pub struct AtSigma<'a, M: NoiseConditionalScore + ?Sized> {
    model: &'a M,
    sigma: f64,
}

impl<M: NoiseConditionalScore + ?Sized> ScoreSource for AtSigma<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn scores_into(&self, x: &Mat<f64>, out: &mut Mat<f64>) {
        self.model.scores_into(x, self.sigma, out);
    }
}

impl<M: NoiseConditionalScore + ?Sized> CurvatureSource for AtSigma<'_, M> {
    fn layout(&self) -> Option<CurvatureLayout> {
        self.model.curvature_layout()
    }

    fn scores_and_curvature_into(&self, x: &Mat<f64>, scores: &mut Mat<f64>, curvature: &mut CurvatureBatch) {
        self.model.scores_and_curvature_into(x, self.sigma, scores, curvature);
    }
}

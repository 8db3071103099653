//! A score model conditioned on the noise level (an NCSN-style image model, or an analytic density),
//! and the two families of per-level sources the annealed samplers take from it: scores only (annealed
//! ULA) and scores with curvature (annealed Ozaki).

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

/// The scores of a [`NoiseConditionalScore`] at every level, for [`AnnealedUla`](super::AnnealedUla).
pub struct ScoresBySigma<'a, M: NoiseConditionalScore + ?Sized> {
    model: &'a M,
}

impl<'a, M: NoiseConditionalScore + ?Sized> ScoresBySigma<'a, M> {
    /// Wraps a model.
    pub fn new(model: &'a M) -> Self {
        Self { model }
    }
}

/// The scores and curvature of a [`NoiseConditionalScore`] at every level, for
/// [`AnnealedOzaki`](super::AnnealedOzaki).
pub struct CurvatureBySigma<'a, M: NoiseConditionalScore + ?Sized> {
    model: &'a M,
    layout: CurvatureLayout,
}

impl<'a, M: NoiseConditionalScore + ?Sized> CurvatureBySigma<'a, M> {
    /// Wraps a model that has a second-order head.
    ///
    /// # Errors
    /// [`SamplerError::NoSecondOrderHead`] when it has none.
    pub fn new(model: &'a M) -> Result<Self, SamplerError> {
        let layout = model.curvature_layout().ok_or(SamplerError::NoSecondOrderHead)?;
        Ok(Self { model, layout })
    }
}

/// One level of [`ScoresBySigma`]: the scores of $q_\sigma$.
pub struct ScoresAtSigma<'a, M: NoiseConditionalScore + ?Sized> {
    model: &'a M,
    sigma: f64,
}

/// One level of [`CurvatureBySigma`]: the scores and curvature of $q_\sigma$.
pub struct CurvatureAtSigma<'a, M: NoiseConditionalScore + ?Sized> {
    scores: ScoresAtSigma<'a, M>,
    layout: CurvatureLayout,
}

impl<'a, M: NoiseConditionalScore + ?Sized> CurvatureAtSigma<'a, M> {
    /// The level $\sigma$ of a model with a second-order head (as [`CurvatureBySigma::new`], one level).
    ///
    /// # Errors
    /// [`SamplerError::NoSecondOrderHead`].
    pub fn new(model: &'a M, sigma: f64) -> Result<Self, SamplerError> {
        CurvatureBySigma::new(model)?.at_level(sigma)
    }
}

fn check_sigma(sigma: f64) -> Result<(), SamplerError> {
    if sigma > 0.0 && sigma.is_finite() {
        Ok(())
    } else {
        Err(SamplerError::BadSchedule { sigma_max: sigma, sigma_min: sigma, levels: 1 })
    }
}

impl<'a, M: NoiseConditionalScore + ?Sized> NoiseConditional for ScoresBySigma<'a, M> {
    type Level = ScoresAtSigma<'a, M>;

    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn at_level(&self, sigma: f64) -> Result<Self::Level, SamplerError> {
        check_sigma(sigma)?;
        Ok(ScoresAtSigma { model: self.model, sigma })
    }
}

impl<'a, M: NoiseConditionalScore + ?Sized> NoiseConditional for CurvatureBySigma<'a, M> {
    type Level = CurvatureAtSigma<'a, M>;

    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn at_level(&self, sigma: f64) -> Result<Self::Level, SamplerError> {
        check_sigma(sigma)?;
        Ok(CurvatureAtSigma { scores: ScoresAtSigma { model: self.model, sigma }, layout: self.layout })
    }
}

impl<M: NoiseConditionalScore + ?Sized> ScoreSource for ScoresAtSigma<'_, M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn scores_into(&self, x: &Mat<f64>, out: &mut Mat<f64>) {
        self.model.scores_into(x, self.sigma, out);
    }
}

impl<M: NoiseConditionalScore + ?Sized> ScoreSource for CurvatureAtSigma<'_, M> {
    fn dim(&self) -> usize {
        self.scores.dim()
    }

    fn scores_into(&self, x: &Mat<f64>, out: &mut Mat<f64>) {
        self.scores.scores_into(x, out);
    }
}

impl<M: NoiseConditionalScore + ?Sized> CurvatureSource for CurvatureAtSigma<'_, M> {
    fn layout(&self) -> Option<CurvatureLayout> {
        Some(self.layout)
    }

    fn scores_and_curvature_into(&self, x: &Mat<f64>, scores: &mut Mat<f64>, curvature: &mut CurvatureBatch) {
        self.scores.model.scores_and_curvature_into(x, self.scores.sigma, scores, curvature);
    }
}

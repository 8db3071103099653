//! A trained model of either kind: a score model (`s1`, optionally `s2`) or an energy model. Training,
//! checkpoints and evaluation hold this; code that needs one kind asks for it by name.

use super::{EnergyModel, ImageScoreModel, ModelKind, ScoreModel};
use crate::linalg::{Mat, Real};

/// A score model or an energy model.
#[derive(Clone, Debug, PartialEq)]
// An image model carries two graphs' parameter vectors inline; models are few and long-lived.
#[allow(clippy::large_enum_variant)]
pub enum Model<F> {
    /// Score network(s): `s1` and an optional second-order network.
    Score(ScoreModel<F>),
    /// An energy network with `s1 = -grad_x E`.
    Energy(EnergyModel<F>),
    /// A U-Net over images whose output maps are `s1`.
    Image(ImageScoreModel<F>),
}

impl<F: Real> Model<F> {
    /// The kind of model.
    pub fn kind(&self) -> ModelKind {
        match self {
            Model::Score(m) if m.s3.is_some() => ModelKind::S1s2s3,
            Model::Score(m) if m.s2.is_some() => ModelKind::S1s2,
            Model::Score(_) => ModelKind::S1,
            Model::Energy(_) => ModelKind::Energy,
            Model::Image(m) if m.s2.is_some() => ModelKind::S1s2,
            Model::Image(_) => ModelKind::S1,
        }
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        match self {
            Model::Score(m) => m.dim(),
            Model::Energy(m) => m.dim(),
            Model::Image(m) => m.dim(),
        }
    }

    /// All trainable parameters.
    pub fn params(&self) -> Vec<&[F]> {
        match self {
            Model::Score(m) => m.params(),
            Model::Energy(m) => m.params(),
            Model::Image(m) => m.params(),
        }
    }

    /// All trainable parameters, mutably, in the order of [`Model::params`].
    pub fn params_mut(&mut self) -> Vec<&mut [F]> {
        match self {
            Model::Score(m) => m.params_mut(),
            Model::Energy(m) => m.params_mut(),
            Model::Image(m) => m.params_mut(),
        }
    }

    /// Overwrites all parameters from a flat vector in the order of [`Model::params`].
    #[track_caller]
    pub fn set_params(&mut self, flat: &[F]) {
        crate::nn::copy_from_flat(self.params_mut(), flat);
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> Model<G> {
        match self {
            Model::Score(m) => Model::Score(m.cast()),
            Model::Energy(m) => Model::Energy(m.cast()),
            Model::Image(m) => Model::Image(m.cast()),
        }
    }

    /// The first-order score `s1(x)` at every row of `x` (`N x D`).
    pub fn score(&self, x: &Mat<F>) -> Mat<F> {
        match self {
            Model::Score(m) => m.score(x),
            Model::Energy(m) => m.score(x),
            Model::Image(m) => m.score(x),
        }
    }

    /// The score model, if this is one.
    pub fn as_score(&self) -> Option<&ScoreModel<F>> {
        match self {
            Model::Score(m) => Some(m),
            Model::Energy(_) | Model::Image(_) => None,
        }
    }

    /// The energy model, if this is one.
    pub fn as_energy(&self) -> Option<&EnergyModel<F>> {
        match self {
            Model::Energy(m) => Some(m),
            Model::Score(_) | Model::Image(_) => None,
        }
    }

    /// The architecture in words, for errors of commands that need another one: `a score network`
    /// (an MLP, optionally with an `s2` head), `an energy model` or `a U-Net image model`.
    pub fn description(&self) -> &'static str {
        match self {
            Model::Score(_) => "a score network",
            Model::Energy(_) => "an energy model",
            Model::Image(_) => "a U-Net image model",
        }
    }
}

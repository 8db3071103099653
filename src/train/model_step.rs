//! One step's loss and parameter gradient for a model of any kind: dispatches to the score-network
//! step ([`loss_and_gradient`]), the energy-model step ([`energy_loss_and_gradient`]) or the image-model
//! step ([`image_loss_and_gradient`]), all run as data-parallel shards over the pool ([`ShardedStep`]).

use super::energy_step::{energy_loss_and_gradient, EnergyWorkspace};
use super::image_step::{image_loss_and_gradient, ImageWorkspace};
use super::sharded_step::ShardedStep;
use super::step::{loss_and_gradient, StepWorkspace};
use crate::linalg::{Mat, Real};
use crate::models::{ImageScoreModel, Model};
use crate::objectives::{Objective, ObjectiveError};

/// The buffers of one model's steps (score network or energy model), allocated once per run.
#[derive(Clone, Debug)]
pub enum ModelWorkspace<F> {
    /// For a [`Model::Score`].
    Score(Box<ShardedStep<F, StepWorkspace<F>>>),
    /// For a [`Model::Energy`].
    Energy(Box<ShardedStep<F, EnergyWorkspace<F>>>),
    /// For a [`Model::Image`].
    Image(Box<ShardedStep<F, ImageWorkspace<F>>>),
}

impl<F: Real> ModelWorkspace<F> {
    /// A workspace for `model`.
    pub fn new(model: &Model<F>) -> Self {
        match model {
            Model::Score(m) => Self::Score(Box::new(ShardedStep::new(StepWorkspace::new(m)))),
            Model::Energy(m) => Self::Energy(Box::new(ShardedStep::new(EnergyWorkspace::new(m)))),
            Model::Image(m) => Self::Image(Box::new(ShardedStep::new(ImageWorkspace::new(m)))),
        }
    }

    /// The batch loss of `objective` at clean points `x` with standard normal draws `z`
    /// ([`Objective::noise_rows`] rows); leaves the parameter gradient in [`ModelWorkspace::grad`].
    ///
    /// A workspace built for another kind of model is rebuilt for this one.
    ///
    /// A first-order objective on a model with a second-order head uses its `s1` alone.
    ///
    /// # Errors
    /// [`ObjectiveError::WrongModel`] for the second-order objective on a model without a second-order
    /// head (an `s1` network or an energy model); [`ObjectiveError::ImageModel`] for any objective but
    /// DSM on an image model.
    #[track_caller]
    pub fn loss_and_gradient(
        &mut self,
        model: &Model<F>,
        objective: Objective,
        sigma: F,
        x: &Mat<F>,
        z: &Mat<F>,
    ) -> Result<F, ObjectiveError> {
        match (model, self) {
            (Model::Score(m), Self::Score(ws)) => {
                ws.loss_and_gradient(x, z, |x, z, _, ws| loss_and_gradient(m, objective, sigma, x, z, ws))
            }
            (Model::Energy(m), Self::Energy(ws)) => ws.loss_and_gradient(x, z, |x, z, _, ws| {
                energy_loss_and_gradient(m, objective, sigma, x, z, ws)
            }),
            (Model::Image(m), Self::Image(ws)) => {
                // Levels drawn for this step (weighted against the model's largest), else `sigma` alone.
                let drawn = std::mem::take(&mut ws.whole.levels);
                let (sigmas, top) = if drawn.len() == x.rows() {
                    (drawn, F::of(m.sigma))
                } else {
                    (vec![sigma; x.rows()], sigma)
                };
                ws.loss_and_gradient(x, z, |x, z, rows, ws| {
                    image_loss_and_gradient(m, objective, &sigmas[rows], top, x, z, ws)
                })
            }
            (model, ws) => {
                *ws = Self::new(model);
                ws.loss_and_gradient(model, objective, sigma, x, z)
            }
        }
    }

    /// Runs every later step as `shards` shards instead of the pool-size rule (`None`: the rule), for
    /// measuring the rule (`tweedie bench --shards`).
    pub fn force_shards(&mut self, shards: Option<usize>) {
        match self {
            Self::Score(ws) => ws.forced_shards = shards,
            Self::Energy(ws) => ws.forced_shards = shards,
            Self::Image(ws) => ws.forced_shards = shards,
        }
    }

    /// Draws the noise levels of the next [`ModelWorkspace::loss_and_gradient`]'s `n` rows for a
    /// noise-conditional image model (each from its schedule, the loss weighted by `sigma_i / sigma_max`);
    /// other models draw nothing and leave `rng` alone.
    pub fn draw_noise_levels<R: rand::Rng + ?Sized>(&mut self, model: &Model<F>, n: usize, rng: &mut R) {
        if let (Model::Image(m @ ImageScoreModel { schedule: Some(_), .. }), ws) = (model, &mut *self) {
            let levels = m.draw_levels(n, rng);
            match ws {
                Self::Image(ws) => ws.whole.levels = levels,
                other => {
                    *other = Self::new(model);
                    other.draw_noise_levels(model, n, rng);
                }
            }
        }
    }

    /// The parameter gradient of the last step, in the order of [`Model::params`].
    pub fn grad(&self) -> Vec<&[F]> {
        match self {
            Self::Score(ws) => ws.whole.grad.params(),
            Self::Energy(ws) => ws.whole.grad.params(),
            Self::Image(ws) => ws.whole.grad.iter().map(Vec::as_slice).collect(),
        }
    }
}

//! The energy model: a scalar network `E(x)` plus a fixed Gaussian base term, with density
//! `p(x) = exp(-E(x)) / Z` and score `s1 = -grad_x E` (docs/math.md §7.1).

use crate::linalg::{Mat, Real};
use crate::nn::{Activation, Mlp};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The architecture of an energy model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyShape {
    /// Data dimension `D`.
    pub dim: usize,
    /// Hidden width `W`.
    pub width: usize,
    /// Number of hidden layers.
    pub depth: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// Precision `lambda >= 0` of the fixed Gaussian base term `lambda ||x||^2 / 2`.
    pub base_precision: f64,
}

impl EnergyShape {
    /// Layer sizes `D -> W x depth -> 1`.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.dim).chain(std::iter::repeat_n(self.width, self.depth)).chain([1]).collect()
    }
}

/// An energy model `E(x) = f_theta(x) + lambda ||x||^2 / 2`.
///
/// # Definition
/// $$ E(x) = f_\theta(x) + \tfrac{\lambda}{2}\Vert x\Vert^2,\qquad p(x) = e^{-E(x)}/Z,\qquad
///    s_1(x) = -\nabla_x E(x). $$
/// `f_theta` is an MLP `D -> 1` with smooth activations, so its value grows at most linearly and a
/// positive base precision `lambda` makes `Z` finite whatever the weights; `lambda = 0` leaves the
/// network unconstrained. `lambda` is fixed, not trained. The samplers take it as it is: ULA on its
/// scores, MALA on its scores and log density.
///
/// # Example
/// ```
/// use tweedie::linalg::Mat;
/// use tweedie::data::DataDir;
/// use tweedie::models::ModelKind;
/// use tweedie::samplers::{run, Chains, Mala};
/// use tweedie::train::{TrainConfig, Trainer};
/// let config = TrainConfig { model: ModelKind::Energy, target: "gmm2d".into(), steps: 20, batch: 64,
///                            width: 8, ..TrainConfig::default() };
/// let mut trainer = Trainer::new(config, &DataDir::resolve(None))?;
/// trainer.run(None, &mut ())?;
/// let model = trainer.model().as_energy().unwrap().clone();
/// let x = Mat::from_vec(1, 2, vec![0.3f32, -0.1]);
/// let (e, s) = (model.energy(&x), model.score(&x));
/// // The score is minus the gradient of the energy.
/// let h = 1e-2;
/// let e_up = model.energy(&Mat::from_vec(1, 2, vec![0.3 + h, -0.1]));
/// assert!(((e_up[0] - e[0]) / h + s.at(0, 0)).abs() < 0.05);
/// // MALA needs log p up to a constant: the energy model has it.
/// let mut mala = Mala::new(0.05, &model)?;
/// let mut chains = Chains::from_normal(32, 2, 1.0, 1)?;
/// assert!(run(&mut mala, &mut chains, 20, &mut ()).acceptance_rate() > 0.3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct EnergyModel<F> {
    /// The network `f_theta: R^D -> R`.
    pub net: Mlp<F>,
    /// The base precision `lambda`.
    pub base_precision: f64,
}

impl<F: Real> EnergyModel<F> {
    /// A freshly initialised model.
    #[track_caller]
    pub(crate) fn init<R: Rng + ?Sized>(shape: &EnergyShape, rng: &mut R) -> Self {
        assert!(
            shape.base_precision >= 0.0 && shape.base_precision.is_finite(),
            "EnergyModel: base precision {}",
            shape.base_precision
        );
        Self { net: Mlp::init(&shape.sizes(), shape.activation, rng), base_precision: shape.base_precision }
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        self.net.inputs()
    }

    /// `lambda` in the element type.
    pub fn lambda(&self) -> F {
        F::of(self.base_precision)
    }

    /// A model of zeros with the same shapes (the shape of its gradient).
    pub fn zeros_like(&self) -> Self {
        Self { net: self.net.zeros_like(), base_precision: self.base_precision }
    }

    /// All trainable parameters.
    pub fn params(&self) -> Vec<&[F]> {
        self.net.params()
    }

    /// All trainable parameters, mutably, in the order of [`EnergyModel::params`].
    pub fn params_mut(&mut self) -> Vec<&mut [F]> {
        self.net.params_mut()
    }

    /// Overwrites all parameters from a flat vector in the order of [`EnergyModel::params`].
    #[track_caller]
    pub fn set_params(&mut self, flat: &[F]) {
        crate::nn::copy_from_flat(self.params_mut(), flat);
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.net.num_params()
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> EnergyModel<G> {
        EnergyModel { net: self.net.cast(), base_precision: self.base_precision }
    }

    /// The base term `lambda ||x||^2 / 2` of one point.
    pub fn base_energy(&self, x: &[F]) -> F {
        F::of(0.5) * self.lambda() * x.iter().map(|v| *v * *v).sum::<F>()
    }

    /// `E(x)` at every row of `x`.
    pub fn energy(&self, x: &Mat<F>) -> Vec<F> {
        let mut e = self.net.forward(x).into_vec();
        for (e, row) in e.iter_mut().zip(x.row_iter()) {
            *e += self.base_energy(row);
        }
        e
    }

    /// `s1(x) = -grad_x E(x)` at every row of `x` (`N x D`).
    pub fn score(&self, x: &Mat<F>) -> Mat<F> {
        let mut s = self.net.input_gradient(x);
        let lambda = self.lambda();
        for (s, x) in s.as_mut_slice().iter_mut().zip(x.as_slice()) {
            *s = -(*s + lambda * *x);
        }
        s
    }
}

//! The score model: a first-order score network `s1: R^D -> R^D` and, optionally, a second-order network
//! whose outputs a [`SecondOrderHead`] reads as `S2(x~)` and a third-order network
//! ([`ThirdOrderNet`]) that gives `s3(x~)[v, v, v]`.

use super::{SecondOrderHead, ThirdOrderHead, ThirdOrderNet};
use crate::linalg::{Mat, Real};
use crate::nn::{Activation, Mlp, MlpTrace};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The architecture of a score model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Data dimension `D`.
    pub dim: usize,
    /// Hidden width `W`.
    pub width: usize,
    /// Number of hidden layers.
    pub depth: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// The second-order head, if the model learns `s2`.
    pub head: Option<SecondOrderHead>,
}

impl ModelShape {
    /// Layer sizes of a network `D -> W x depth -> outputs`.
    pub fn sizes(&self, outputs: usize) -> Vec<usize> {
        std::iter::once(self.dim)
            .chain(std::iter::repeat_n(self.width, self.depth))
            .chain([outputs])
            .collect()
    }
}

/// A second-order network and the head that reads its outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct SecondOrderNet<F> {
    /// How outputs parameterise `S2`.
    pub head: SecondOrderHead,
    /// The network `D -> head.outputs(D)`.
    pub net: Mlp<F>,
}

impl<F: Real> SecondOrderNet<F> {
    /// A network of zeros with the same shapes (the shape of its gradient).
    pub fn zeros_like(&self) -> Self {
        Self { head: self.head, net: self.net.zeros_like() }
    }
}

/// A score model: `s1`, an optional second-order network and an optional third-order network.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreModel<F> {
    /// The first-order score network.
    pub s1: Mlp<F>,
    /// The second-order network, if any.
    pub s2: Option<SecondOrderNet<F>>,
    /// The third-order network, if any (`--model s1s2s3`).
    pub s3: Option<ThirdOrderNet<F>>,
}

impl<F: Real> ScoreModel<F> {
    /// A freshly initialised model (`s1` drawn first, then `s2`, from `rng`).
    pub(crate) fn init<R: Rng + ?Sized>(shape: &ModelShape, rng: &mut R) -> Self {
        let s1 = Mlp::init(&shape.sizes(shape.dim), shape.activation, rng);
        let s2 = shape.head.map(|head| SecondOrderNet {
            head,
            net: Mlp::init(&shape.sizes(head.outputs(shape.dim)), shape.activation, rng),
        });
        Self { s1, s2, s3: None }
    }

    /// The model with a freshly initialised third-order network of the same width, depth and activation
    /// (drawn from `rng`).
    pub(crate) fn with_third_order<R: Rng + ?Sized>(mut self, head: ThirdOrderHead, rng: &mut R) -> Self {
        let shape = self.shape();
        let mut sizes = shape.sizes(head.outputs(shape.dim));
        sizes[0] = head.inputs(shape.dim);
        self.s3 = Some(ThirdOrderNet { head, net: Mlp::init(&sizes, shape.activation, rng) });
        self
    }

    /// The architecture (of `s1` and `s2`; the third-order head is [`ScoreModel::s3`]).
    pub(crate) fn shape(&self) -> ModelShape {
        let sizes = self.s1.sizes();
        ModelShape {
            dim: self.s1.inputs(),
            width: sizes[1],
            depth: sizes.len() - 2,
            activation: self.s1.activation(),
            head: self.s2.as_ref().map(|s| s.head),
        }
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        self.s1.inputs()
    }

    /// A model of zeros with the same shapes (the shape of its gradient).
    pub fn zeros_like(&self) -> Self {
        Self {
            s1: self.s1.zeros_like(),
            s2: self.s2.as_ref().map(SecondOrderNet::zeros_like),
            s3: self.s3.as_ref().map(ThirdOrderNet::zeros_like),
        }
    }

    /// All parameters: `s1`, then `s2`, then `s3`.
    pub fn params(&self) -> Vec<&[F]> {
        let mut p = self.s1.params();
        if let Some(s2) = &self.s2 {
            p.extend(s2.net.params());
        }
        if let Some(s3) = &self.s3 {
            p.extend(s3.net.params());
        }
        p
    }

    /// All parameters, mutably, in the order of [`ScoreModel::params`].
    pub fn params_mut(&mut self) -> Vec<&mut [F]> {
        let mut p = self.s1.params_mut();
        if let Some(s2) = &mut self.s2 {
            p.extend(s2.net.params_mut());
        }
        if let Some(s3) = &mut self.s3 {
            p.extend(s3.net.params_mut());
        }
        p
    }

    /// Overwrites all parameters from a flat vector in the order of [`ScoreModel::params`].
    #[track_caller]
    pub fn set_params(&mut self, flat: &[F]) {
        crate::nn::copy_from_flat(self.params_mut(), flat);
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> ScoreModel<G> {
        ScoreModel {
            s1: self.s1.cast(),
            s2: self.s2.as_ref().map(|s| SecondOrderNet { head: s.head, net: s.net.cast() }),
            s3: self.s3.as_ref().map(|s| ThirdOrderNet { head: s.head, net: s.net.cast() }),
        }
    }

    /// `s1` at every row of `x` (`N x D`).
    pub fn score(&self, x: &Mat<F>) -> Mat<F> {
        self.s1.forward(x)
    }

    /// The autodiff estimate of the Hessian of `log q_sigma` at every row of `x`: the symmetrised Jacobian
    /// `(J + J^T)/2` of `s1` (`N * D * D`, row-major per point), from `D` tangent passes per point
    /// (docs/math.md §9). The baseline a learned second-order head is measured against.
    pub fn hessian_autodiff(&self, x: &Mat<F>) -> Vec<F> {
        crate::estimators::score_jacobian(&self.s1, x, true)
    }

    /// The learned `S2` at every row of `x` as dense matrices (`N * D * D`, row-major per point), or
    /// `None` for a model without a second-order head.
    pub fn hessian_dense(&self, x: &Mat<F>) -> Option<Vec<F>> {
        let mut out = Vec::new();
        self.hessian_dense_into(x, &mut MlpTrace::default(), &mut out).then_some(out)
    }

    /// [`ScoreModel::hessian_dense`] into caller-owned buffers (reused across calls, so repeated
    /// evaluation allocates nothing); returns `false` for a model without a second-order head.
    pub fn hessian_dense_into(&self, x: &Mat<F>, trace: &mut MlpTrace<F>, out: &mut Vec<F>) -> bool {
        let Some(s2) = self.s2.as_ref() else { return false };
        let raw = s2.net.forward_trace(x, x.rows().max(1), trace);
        let dim = self.dim();
        out.resize(x.rows() * dim * dim, F::zero());
        for (row, block) in raw.row_iter().zip(out.chunks_exact_mut(dim * dim)) {
            s2.head.dense_into(row, dim, block);
        }
        true
    }
}

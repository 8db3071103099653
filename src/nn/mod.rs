//! The explicit-derivative network core: a graph of ops with forward passes that push tangent or jet
//! rows, reverse passes through every stream, and the input gradient of scalar networks as a forward
//! computation with its second-order adjoint; the MLP is a chain-shaped graph.

mod activation;
pub(crate) mod graph;
mod jet;
mod layer;
mod linear;
mod mlp;
mod params;

pub use activation::Activation;
pub(crate) use activation::ActivationCache;
pub(crate) use graph::InputGradientTrace;

pub(crate) use jet::stack_jet_input;
pub(crate) use layer::Layer;
pub(crate) use linear::Dense;
pub(crate) use mlp::{Mlp, MlpTrace};
pub(crate) use params::copy_from_flat;

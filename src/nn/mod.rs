//! The explicit-derivative network core: layers with forward, tangent (JVP) and reverse passes, second-order
//! jets along directions, and the input gradient of scalar networks as a forward computation.

mod activation;
pub(crate) mod graph;
mod input_gradient;
mod jet;
mod layer;
mod linear;
mod mlp;
mod mlp_jet;
mod params;

pub use activation::Activation;
pub(crate) use activation::ActivationCache;
pub(crate) use input_gradient::InputGradientTrace;

pub(crate) use layer::Layer;
pub(crate) use linear::{Dense, Linear};
pub(crate) use mlp::{Mlp, MlpTrace};
pub(crate) use mlp_jet::{stack_jet_input, MlpJetTrace};
pub(crate) use params::copy_from_flat;

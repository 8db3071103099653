//! The explicit-derivative network core: layers with forward, tangent (JVP) and reverse passes, second-order
//! jets along directions, and the input gradient of scalar networks as a forward computation.

mod activation;
pub mod graph;
mod input_gradient;
mod jet;
mod layer;
mod linear;
mod mlp;
mod mlp_jet;
mod params;

pub use activation::{Activation, ActivationCache};
pub use input_gradient::InputGradientTrace;
pub use jet::{ActivationJet, JetCache};
pub use layer::Layer;
pub use linear::Linear;
pub use mlp::{Mlp, MlpTrace};
pub use mlp_jet::{stack_jet_input, MlpJetTrace};
pub use params::copy_from_flat;

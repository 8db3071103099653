//! The explicit-derivative network core: layers with forward, tangent (JVP) and reverse passes.

mod activation;
mod layer;
mod linear;
mod mlp;

pub use activation::{Activation, ActivationCache};
pub use layer::Layer;
pub use linear::Linear;
pub use mlp::{Mlp, MlpTrace};

//! Networks as graphs of ops over channels-last images (dense layers, convolutions, group norm, pooling,
//! upsampling, skip connections, a noise-level embedding): the MLP's chain and the U-Net are built from
//! them. One forward walk pushes tangent or jet rows (`rows.rs`, under the stacked-batch contract of
//! `src/nn/layer.rs`), the reverse walk goes back through every stream, and scalar graphs have their
//! input gradient as a forward computation with its second-order adjoint (`input_gradient.rs`)
//! (docs/math.md §8.5-§8.9).

mod conv2d;
mod cotangent;
mod error;
mod group_norm;
mod input_gradient;
mod network;
mod noise_embedding;
mod norm_act;
mod op;
mod padded_conv;
mod resample;
mod rows;
mod shape;
mod skip;
mod unet;
mod winograd;

pub use error::GraphError;
pub use input_gradient::InputGradientTrace;
pub use network::{Graph, GraphBuilder, GraphTrace};
pub use rows::Rows;

pub use shape::Shape;
pub use unet::{SecondOrderMaps, UNetConfig};

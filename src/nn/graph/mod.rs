//! Networks as graphs of ops over channels-last images (convolutions, group norm, pooling, upsampling,
//! skip connections, a noise-level embedding) and the U-Net built from them, with forward passes that
//! push tangents and reverse passes through both streams, under the stacked-batch contract of
//! layer contract (`src/nn/layer.rs`) (docs/math.md §8.8-§8.9).

mod conv2d;
mod cotangent;
mod error;
mod group_norm;
mod input_gradient;
mod network;
mod noise_embedding;
mod op;
mod resample;
mod rows;
mod shape;
mod skip;
mod unet;

pub use error::GraphError;
pub use input_gradient::InputGradientTrace;
pub use network::{Graph, GraphBuilder, GraphTrace};

pub use shape::Shape;
pub use unet::{SecondOrderMaps, UNetConfig};

//! The sizes of an image score model's U-Net as a training configuration records them (`[unet]` in
//! TOML, `--arch unet --channels --blocks --groups` on the command line); the image shape comes from
//! the data set.

use super::HeadLayout;
use crate::data::Dataset;
use crate::nn::graph::{SecondOrderMaps, Shape, UNetConfig};
use crate::nn::Activation;
use serde::{Deserialize, Serialize};

/// Fourier frequencies of every noise-level embedding.
const FREQUENCIES: usize = 4;

/// The configurable sizes of a U-Net.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UNetSettings {
    /// Channels per resolution level, finest first.
    pub channels: Vec<usize>,
    /// Residual blocks per level on each path.
    pub blocks: usize,
    /// Groups of every group norm; divides every channel count.
    pub groups: usize,
    /// Where a second-order head's maps come from (`--model s1s2`).
    pub s2_layout: HeadLayout,
}

impl Default for UNetSettings {
    fn default() -> Self {
        Self { channels: vec![32, 64], blocks: 1, groups: 8, s2_layout: HeadLayout::Separate }
    }
}

impl UNetSettings {
    /// The U-Net over `image` with this activation, its output the score maps alone.
    pub(crate) fn unet(&self, image: Shape, activation: Activation) -> UNetConfig {
        UNetConfig {
            image,
            channels: self.channels.clone(),
            blocks: self.blocks,
            groups: self.groups,
            activation,
            frequencies: FREQUENCIES,
            second_order: SecondOrderMaps::None,
        }
    }

    /// A lower bound on the weights: the second 3x3 convolution of every block on the way down,
    /// `sum_l blocks 9 c_l^2` (f64: no overflow for absurd sizes).
    pub(crate) fn min_weights(&self) -> f64 {
        self.channels.iter().map(|&c| self.blocks as f64 * 9.0 * (c as f64).powi(2)).sum()
    }
}

/// The image shape of a data set's points: one grey channel, 8x8 for digits, 28x28 for (Fashion-)MNIST;
/// `None` for sets of other points.
pub(crate) fn image_shape(dataset: Dataset) -> Option<Shape> {
    match dataset {
        Dataset::Digits => Some(Shape::new(8, 8, 1)),
        Dataset::Mnist | Dataset::FashionMnist => Some(Shape::new(28, 28, 1)),
        Dataset::Cifar10 => Some(Shape::new(32, 32, 3)),
        Dataset::UciRedWine | Dataset::UciWhiteWine | Dataset::UciParkinsons => None,
    }
}

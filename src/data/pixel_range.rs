//! How an image model's pixels are scaled (`--pixels`): grey levels in `[0, 1]` (the default, the scaling
//! of the second-order DSM paper's MNIST experiments) or `[-1, 1]` (its CIFAR-10 setting, where
//! `sigma = 0.5`). Recorded in the training configuration and applied wherever a command reads images
//! for that model.

use crate::linalg::Mat;
use serde::{Deserialize, Serialize};

/// The range image values are mapped onto from `[0, 1]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum PixelRange {
    /// `[0, 1]`: grey level / maximum grey level.
    #[default]
    Unit,
    /// `[-1, 1]`: `2 v - 1` of the unit value `v`.
    Symmetric,
}

impl PixelRange {
    /// True for the default `[0, 1]` (left out of written configurations).
    pub fn is_unit(&self) -> bool {
        *self == PixelRange::Unit
    }

    /// The rule, as recorded in checkpoints (`data.scaling`).
    pub fn description(self) -> &'static str {
        match self {
            PixelRange::Unit => "grey level / maximum grey level, in [0, 1]",
            PixelRange::Symmetric => "2 grey level / maximum grey level - 1, in [-1, 1]",
        }
    }

    /// Maps unit-range pixels (as the image loaders give them) onto this range, in place.
    pub fn apply(self, pixels: &mut Mat<f64>) {
        if self == PixelRange::Symmetric {
            pixels.as_mut_slice().iter_mut().for_each(|v| *v = 2.0 * *v - 1.0);
        }
    }

    /// Maps values of this range back to `[0, 1]` for display (not clipped).
    pub fn to_unit(self, pixels: &Mat<f64>) -> Mat<f64> {
        let mut out = pixels.clone();
        if self == PixelRange::Symmetric {
            out.as_mut_slice().iter_mut().for_each(|v| *v = 0.5 * (*v + 1.0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_pixels_map_the_unit_interval_onto_minus_one_one_and_back() {
        let unit = Mat::from_vec(1, 3, vec![0.0, 0.25, 1.0]);
        let mut symmetric = unit.clone();
        PixelRange::Symmetric.apply(&mut symmetric);
        assert_eq!(symmetric.as_slice(), &[-1.0, -0.5, 1.0]);
        assert_eq!(PixelRange::Symmetric.to_unit(&symmetric), unit);
        let mut same = unit.clone();
        PixelRange::Unit.apply(&mut same);
        assert_eq!((same.clone(), PixelRange::Unit.to_unit(&same)), (unit.clone(), unit));
    }
}

//! An image score model: a U-Net [`Graph`] over channels-last images whose first `C` output maps are
//! `s1` (one per image channel), evaluated at one fixed noise level, the training `sigma`.

use crate::linalg::{Mat, Real};
use crate::nn::graph::{Graph, GraphError, GraphTrace, UNetConfig};
use rand::Rng;

/// A single-sigma U-Net score model.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageScoreModel<F> {
    /// The architecture.
    pub unet: UNetConfig,
    /// The noise level the network is conditioned on (the training `sigma`).
    pub sigma: f64,
    /// The network; its parameters are named `s1.` + the graph's paths in checkpoints.
    pub net: Graph<F>,
}

impl<F: Real> ImageScoreModel<F> {
    /// A freshly initialised model.
    ///
    /// # Errors
    /// Sizes the U-Net cannot take (see [`UNetConfig::build`]).
    pub fn init<R: Rng + ?Sized>(unet: &UNetConfig, sigma: f64, rng: &mut R) -> Result<Self, GraphError> {
        Ok(Self { unet: unet.clone(), sigma, net: unet.build(rng)? })
    }

    /// Data dimension: the values of one image.
    pub fn dim(&self) -> usize {
        self.unet.image.len()
    }

    /// `log sigma` for each of `n` points.
    pub(crate) fn log_sigma(&self, n: usize) -> Vec<F> {
        vec![F::of(self.sigma.ln()); n]
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> ImageScoreModel<G> {
        ImageScoreModel { unet: self.unet.clone(), sigma: self.sigma, net: self.net.cast() }
    }

    /// `s1` at every row of `x` (`N x D`, one image per row): the first `C` maps of the output.
    pub fn score(&self, x: &Mat<F>) -> Mat<F> {
        let n = x.rows();
        if n == 0 {
            return Mat::zeros(0, self.dim());
        }
        let mut trace = GraphTrace::default();
        let out = self.net.forward(x, n, &self.log_sigma(n), &mut trace);
        let (c, maps) = (self.unet.image.channels, self.net.output_shape().channels);
        Mat::from_fn(n, self.dim(), |i, j| out.at(i, (j / c) * maps + j % c))
    }
}

//! The Bernoulli decoder `z -> logits` of the VAEs, its log-likelihood, and the shared MLP shape.

use super::ais::LatentDecoder;
use crate::linalg::Mat;
use crate::nn::{Activation, Mlp, MlpTrace};
use rand::Rng;

/// The MLP `inputs -> hidden -> hidden (tanh) -> outputs` every network of this module uses.
pub fn two_layer_mlp<R: Rng + ?Sized>(inputs: usize, hidden: usize, outputs: usize, rng: &mut R) -> Mlp<f64> {
    Mlp::init(&[inputs, hidden, hidden, outputs], Activation::Tanh, rng)
}

/// Mean over rows of the Bernoulli negative log-likelihood `sum_j softplus(l_j) - x_j l_j`, writing its
/// cotangent `(sigmoid(l) - x) / rows` into `g_logits`.
pub fn bernoulli_nll(logits: &Mat<f64>, x: &Mat<f64>, g_logits: &mut Mat<f64>) -> f64 {
    let inv = 1.0 / logits.rows() as f64;
    g_logits.resize(logits.rows(), logits.cols());
    let mut total = 0.0;
    for ((l, x), g) in logits.as_slice().iter().zip(x.as_slice()).zip(g_logits.as_mut_slice()) {
        total += l.max(0.0) + (-l.abs()).exp().ln_1p() - x * l;
        *g = (1.0 / (1.0 + (-l).exp()) - x) * inv;
    }
    total * inv
}

/// `p(x | z) = prod_j Bernoulli(x_j; sigmoid(l_j(z)))` with logits from an MLP, under the prior `N(0, I)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BernoulliDecoder {
    /// The network `z -> logits`.
    pub net: Mlp<f64>,
}

impl LatentDecoder for BernoulliDecoder {
    fn latent_dim(&self) -> usize {
        self.net.inputs()
    }

    fn log_likelihood(&self, x: &Mat<f64>, z: &Mat<f64>, grad: &mut Mat<f64>) -> Vec<f64> {
        let mut trace = MlpTrace::default();
        let logits = self.net.forward_trace(z, z.rows(), &mut trace).clone();
        let mut g = Mat::default();
        bernoulli_nll(&logits, x, &mut g);
        // Per-row log-likelihoods; the cotangent of sum_rows log p is (x - sigmoid(l)) = -rows g.
        let rows = z.rows() as f64;
        g.as_mut_slice().iter_mut().for_each(|v| *v *= -rows);
        let ll = logits
            .row_iter()
            .zip(x.row_iter())
            .map(|(l, x)| l.iter().zip(x).map(|(l, x)| x * l - l.max(0.0) - (-l.abs()).exp().ln_1p()).sum())
            .collect();
        let mut scratch = self.net.zeros_like();
        self.net.reverse(z, &mut trace, &g, &mut scratch, Some(grad));
        ll
    }
}

//! The Bernoulli decoder `z -> logits` of the VAEs, its log-likelihood, and the shared MLP shape.

use super::ais::LatentDecoder;
use crate::linalg::Mat;
use crate::nn::{Activation, Mlp, MlpTrace};
use rand::Rng;

/// The MLP `inputs -> hidden -> hidden (tanh) -> outputs` every network of this module uses.
pub(crate) fn two_layer_mlp<R: Rng + ?Sized>(
    inputs: usize,
    hidden: usize,
    outputs: usize,
    rng: &mut R,
) -> Mlp<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn log_likelihood_and_its_latent_gradient_match_the_formula_and_finite_differences() {
        let mut rng = test_rng(12);
        let decoder = BernoulliDecoder { net: two_layer_mlp(2, 5, 6, &mut rng) };
        let z = normal_mat(3, 2, &mut rng);
        let x = Mat::from_fn(3, 6, |_, _| f64::from(u8::from(rng.random::<bool>())));
        let mut grad = Mat::default();
        let ll = decoder.log_likelihood(&x, &z, &mut grad);
        let logits = decoder.net.forward(&z);
        for (r, &got) in ll.iter().enumerate() {
            // log p(x | z) = sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j)).
            let want: f64 = (0..6)
                .map(|j| {
                    let p = 1.0 / (1.0 + (-logits.at(r, j)).exp());
                    if x.at(r, j) > 0.5 {
                        p.ln()
                    } else {
                        (1.0 - p).ln()
                    }
                })
                .sum();
            assert!((got - want).abs() < 1e-12, "row {r}: {got} vs {want}");
            let row_ll = |zr: &[f64]| {
                let zm = Mat::from_vec(1, 2, zr.to_vec());
                decoder.log_likelihood(&x.slice_rows(r, r + 1), &zm, &mut Mat::default())[0]
            };
            assert_close(grad.row(r), &fd_gradient(row_ll, z.row(r), 1e-6), 1e-7, "grad_z log p(x|z)");
        }
    }
}

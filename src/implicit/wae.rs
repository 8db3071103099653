//! The Wasserstein autoencoder: a deterministic encoder, a sigmoid decoder under squared error, and the
//! aggregate posterior pulled toward the prior through its entropy gradient.

use super::bernoulli_decoder::two_layer_mlp;
use super::entropy_estimator::EntropyEstimator;
use super::entropy_surrogate::negative_entropy_surrogate;
use super::error::ImplicitError;
use super::score_net::ScoreNet;
use crate::linalg::Mat;
use crate::nn::{Mlp, MlpTrace};
use crate::optim::{RmsProp, RmsPropSettings};
use rand::Rng;

/// A WAE: encoder `x -> z` and decoder `z -> logits` (the reconstruction is `sigmoid(logits)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Wae {
    /// `x -> z`.
    pub encoder: Mlp<f64>,
    /// `z -> logits`.
    pub decoder: Mlp<f64>,
}

/// The terms of a WAE loss (means over the batch).
#[derive(Clone, Debug, PartialEq)]
pub struct WaeLoss {
    /// `||sigmoid(l(z)) - x||^2`.
    pub reconstruction: f64,
    /// `||z||^2 / 2 + z . stopgrad(s_hat(z))` (its gradient is that of `KL(q(z) || p(z))`, its value
    /// is not), before the weight `lambda`.
    pub regulariser: f64,
    /// The codes.
    pub z: Mat<f64>,
}

impl Wae {
    /// A WAE for `data_dim` inputs and `latent` dimensions with `hidden` units per layer.
    pub fn init<R: Rng + ?Sized>(data_dim: usize, latent: usize, hidden: usize, rng: &mut R) -> Self {
        Self {
            encoder: two_layer_mlp(data_dim, hidden, latent, rng),
            decoder: two_layer_mlp(latent, hidden, data_dim, rng),
        }
    }

    /// The loss `recon + lambda (||z||^2/2 + z . stopgrad(s_hat(z)))` of the batch `x`, ADDING its
    /// gradients into `grad_encoder` and `grad_decoder`; `scores(z)` gives `s_hat` of the aggregate
    /// posterior at the codes.
    pub fn loss_and_gradient(
        &self,
        x: &Mat<f64>,
        lambda: f64,
        scores: impl FnOnce(&Mat<f64>) -> Result<Mat<f64>, ImplicitError>,
        grad_encoder: &mut Mlp<f64>,
        grad_decoder: &mut Mlp<f64>,
    ) -> Result<WaeLoss, ImplicitError> {
        let rows = x.rows();
        let inv = 1.0 / rows as f64;
        let mut enc_trace = MlpTrace::default();
        let z = self.encoder.forward_trace(x, rows, &mut enc_trace).clone();
        let mut dec_trace = MlpTrace::default();
        let logits = self.decoder.forward_trace(&z, rows, &mut dec_trace).clone();
        let mut reconstruction = 0.0;
        let mut g_logits = Mat::zeros(rows, x.cols());
        for ((l, x), g) in logits.as_slice().iter().zip(x.as_slice()).zip(g_logits.as_mut_slice()) {
            let p = 1.0 / (1.0 + (-l).exp());
            reconstruction += (p - x) * (p - x) * inv;
            *g = 2.0 * (p - x) * p * (1.0 - p) * inv;
        }
        let mut g_z = Mat::default();
        self.decoder.reverse(&z, &mut dec_trace, &g_logits, grad_decoder, Some(&mut g_z));
        let s = scores(&z)?;
        let mut g_entropy = Mat::default();
        let regulariser = 0.5 * z.norm_sq() * inv + negative_entropy_surrogate(&z, &s, &mut g_entropy);
        let g_z = Mat::from_fn(rows, z.cols(), |r, k| {
            g_z.at(r, k) + lambda * (z.at(r, k) * inv + g_entropy.at(r, k))
        });
        self.encoder.reverse(x, &mut enc_trace, &g_z, grad_encoder, None);
        Ok(WaeLoss { reconstruction, regulariser, z })
    }
}

/// A WAE with its optimisers and, for SSM-VR, the unconditional score network of the aggregate posterior.
#[derive(Clone, Debug)]
pub struct WaeTrainer {
    /// The model.
    pub wae: Wae,
    estimator: EntropyEstimator,
    lambda: f64,
    score_net: Option<ScoreNet>,
    encoder_optimiser: RmsProp<f64>,
    decoder_optimiser: RmsProp<f64>,
}

impl WaeTrainer {
    /// A trainer of `wae` with weight `lambda` on the regulariser and RMSProp at `learning_rate` (decay 0.9,
    /// offset 1e-8) for every network.
    pub fn new<R: Rng + ?Sized>(
        wae: Wae,
        estimator: EntropyEstimator,
        lambda: f64,
        projections: usize,
        learning_rate: f64,
        rng: &mut R,
    ) -> Self {
        let optimiser = RmsPropSettings { learning_rate, ..Default::default() };
        let latent = wae.encoder.outputs();
        let hidden = wae.encoder.sizes()[1];
        let score_net = (estimator == EntropyEstimator::SsmVr)
            .then(|| ScoreNet::init(0, latent, hidden, projections, optimiser, rng));
        let encoder_optimiser = RmsProp::new(optimiser, wae.encoder.num_params());
        let decoder_optimiser = RmsProp::new(optimiser, wae.decoder.num_params());
        Self { wae, estimator, lambda, score_net, encoder_optimiser, decoder_optimiser }
    }

    /// One step on the batch `x`: the scores of the codes (network, or a kernel estimator on the whole
    /// batch), one RMSProp step of both networks, then one SSM-VR step of the score network.
    ///
    /// # Errors
    /// [`ImplicitError`] when a kernel estimator cannot be fitted (for example a batch of one).
    pub fn step<R: Rng + ?Sized>(&mut self, x: &Mat<f64>, rng: &mut R) -> Result<WaeLoss, ImplicitError> {
        let (mut g_enc, mut g_dec) = (self.wae.encoder.zeros_like(), self.wae.decoder.zeros_like());
        let none = Mat::zeros(x.rows(), 0);
        let (estimator, net) = (self.estimator, self.score_net.as_ref());
        let scores = |z: &Mat<f64>| match net {
            Some(net) => Ok(net.scores(&none, z)),
            None => estimator.kernel_scores(z, z.rows()),
        };
        let loss = self.wae.loss_and_gradient(x, self.lambda, scores, &mut g_enc, &mut g_dec)?;
        self.encoder_optimiser.step(self.wae.encoder.params_mut(), g_enc.params());
        self.decoder_optimiser.step(self.wae.decoder.params_mut(), g_dec.params());
        if let Some(net) = self.score_net.as_mut() {
            net.train_step(&none, &loss.z, rng);
        }
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::copy_from_flat;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = test_rng(8);
        let wae = Wae::init(5, 2, 4, &mut rng);
        let x = Mat::from_fn(3, 5, |_, _| rng.random::<f64>());
        let s = normal_mat(3, 2, &mut rng);
        let ne = wae.encoder.num_params();
        let loss = |theta: &[f64]| {
            let mut w = wae.clone();
            copy_from_flat(w.encoder.params_mut(), &theta[..ne]);
            copy_from_flat(w.decoder.params_mut(), &theta[ne..]);
            let (mut ge, mut gd) = (w.encoder.zeros_like(), w.decoder.zeros_like());
            let l = w.loss_and_gradient(&x, 10.0, |_| Ok(s.clone()), &mut ge, &mut gd).unwrap();
            (l.reconstruction + 10.0 * l.regulariser, [ge.params().concat(), gd.params().concat()].concat())
        };
        let theta: Vec<f64> = [wae.encoder.params().concat(), wae.decoder.params().concat()].concat();
        assert_close(&loss(&theta).1, &fd_gradient(|t| loss(t).0, &theta, 1e-6), 1e-6, "WAE");
    }
}

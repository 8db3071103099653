//! VAEs on binary data with a Bernoulli decoder: the explicit Gaussian encoder with the analytic KL, and
//! the implicit encoder `z = g(x, eps)` whose entropy gradient comes from a score estimate.

use super::bernoulli_decoder::{bernoulli_nll, two_layer_mlp, BernoulliDecoder};
use super::entropy_estimator::EntropyEstimator;
use super::entropy_surrogate::negative_entropy_surrogate;
use super::error::ImplicitError;
use super::score_net::{concat_columns, ScoreNet};
use crate::linalg::Mat;
use crate::nn::{Mlp, MlpTrace};
use crate::optim::{RmsProp, RmsPropSettings};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The encoder family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderKind {
    /// `x -> (mu, log sigma^2)`, `z = mu + sigma eps`, KL to the prior in closed form.
    Gaussian,
    /// `[x, eps] -> z`, `eps ~ N(0, I)` with as many dimensions as `z`.
    Implicit,
}

/// A VAE: encoder and Bernoulli decoder networks.
#[derive(Clone, Debug, PartialEq)]
pub struct Vae {
    /// The encoder family.
    pub kind: EncoderKind,
    /// `x -> [mu, log sigma^2]` (Gaussian) or `[x, eps] -> z` (implicit).
    pub encoder: Mlp<f64>,
    /// `z -> logits`.
    pub decoder: BernoulliDecoder,
}

/// The terms of a VAE loss (means over the rows).
#[derive(Clone, Debug, PartialEq)]
pub struct VaeLoss {
    /// `-log p(x | z)`.
    pub reconstruction: f64,
    /// `KL(q(z|x) || p(z))` (Gaussian), or `-log p(z) + z . stopgrad(s_hat)` (implicit: its gradient is
    /// that of `-E[log p(z)] - H`, its value is not).
    pub regulariser: f64,
    /// The codes `z`, one per row.
    pub z: Mat<f64>,
}

impl Vae {
    /// A VAE for `data_dim` binary inputs and `latent` dimensions with `hidden` units per layer.
    pub fn init<R: Rng + ?Sized>(
        kind: EncoderKind,
        data_dim: usize,
        latent: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Self {
        let encoder = match kind {
            EncoderKind::Gaussian => two_layer_mlp(data_dim, hidden, 2 * latent, rng),
            EncoderKind::Implicit => two_layer_mlp(data_dim + latent, hidden, latent, rng),
        };
        Self {
            kind,
            encoder,
            decoder: BernoulliDecoder { net: two_layer_mlp(latent, hidden, data_dim, rng) },
        }
    }

    /// The latent dimension.
    pub fn latent(&self) -> usize {
        self.decoder.net.inputs()
    }

    /// Codes `z` of the rows of `x` with the noise `eps` (one row each).
    pub fn encode(&self, x: &Mat<f64>, eps: &Mat<f64>) -> Mat<f64> {
        match self.kind {
            EncoderKind::Gaussian => {
                let out = self.encoder.forward(x);
                let d = self.latent();
                Mat::from_fn(x.rows(), d, |r, k| out.at(r, k) + (0.5 * out.at(r, d + k)).exp() * eps.at(r, k))
            }
            EncoderKind::Implicit => self.encoder.forward(&concat_columns(x, eps)),
        }
    }

    /// The loss of the rows of `x` (binary) with noise `eps`, ADDING its gradients into `grad_encoder` and
    /// `grad_decoder`. `scores(z)` gives `s_hat(z_r | x_r)` for the implicit encoder (not called for the
    /// Gaussian one).
    ///
    /// # Definition
    /// Gaussian: `-log p(x|z) + (1/2) sum_k (mu_k^2 + sigma_k^2 - log sigma_k^2 - 1)`. Implicit:
    /// `-log p(x|z) + ||z||^2 / 2 + z . stopgrad(s_hat(z|x))` (the entropy surrogate, docs/implicit.md).
    pub fn loss_and_gradient(
        &self,
        x: &Mat<f64>,
        eps: &Mat<f64>,
        scores: impl FnOnce(&Mat<f64>) -> Result<Mat<f64>, ImplicitError>,
        grad_encoder: &mut Mlp<f64>,
        grad_decoder: &mut Mlp<f64>,
    ) -> Result<VaeLoss, ImplicitError> {
        let (rows, d) = (x.rows(), self.latent());
        let inv = 1.0 / rows as f64;
        let input = match self.kind {
            EncoderKind::Gaussian => x.clone(),
            EncoderKind::Implicit => concat_columns(x, eps),
        };
        let mut enc_trace = MlpTrace::default();
        let out = self.encoder.forward_trace(&input, rows, &mut enc_trace).clone();
        let z = match self.kind {
            EncoderKind::Gaussian => {
                Mat::from_fn(rows, d, |r, k| out.at(r, k) + (0.5 * out.at(r, d + k)).exp() * eps.at(r, k))
            }
            EncoderKind::Implicit => out.clone(),
        };
        let mut dec_trace = MlpTrace::default();
        let logits = self.decoder.net.forward_trace(&z, rows, &mut dec_trace).clone();
        let mut g_logits = Mat::default();
        let reconstruction = bernoulli_nll(&logits, x, &mut g_logits);
        let mut g_z = Mat::default();
        self.decoder.net.reverse(&z, &mut dec_trace, &g_logits, grad_decoder, Some(&mut g_z));
        let (regulariser, g_out) = match self.kind {
            EncoderKind::Gaussian => {
                let mut g_out = Mat::zeros(rows, 2 * d);
                let mut kl = 0.0;
                for r in 0..rows {
                    for k in 0..d {
                        let (mu, log_var) = (out.at(r, k), out.at(r, d + k));
                        let var = log_var.exp();
                        kl += 0.5 * (mu * mu + var - log_var - 1.0) * inv;
                        // z = mu + exp(log_var / 2) eps.
                        let gz = g_z.at(r, k);
                        g_out.set(r, k, gz + mu * inv);
                        let dz_dlv = 0.5 * (0.5 * log_var).exp() * eps.at(r, k);
                        g_out.set(r, d + k, gz * dz_dlv + 0.5 * (var - 1.0) * inv);
                    }
                }
                (kl, g_out)
            }
            EncoderKind::Implicit => {
                let s = scores(&z)?;
                let mut g_entropy = Mat::default();
                let surrogate = negative_entropy_surrogate(&z, &s, &mut g_entropy);
                let prior = 0.5 * z.norm_sq() * inv;
                let g_out =
                    Mat::from_fn(rows, d, |r, k| g_z.at(r, k) + z.at(r, k) * inv + g_entropy.at(r, k));
                (prior + surrogate, g_out)
            }
        };
        self.encoder.reverse(&input, &mut enc_trace, &g_out, grad_encoder, None);
        Ok(VaeLoss { reconstruction, regulariser, z })
    }
}

/// Settings of a [`VaeTrainer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VaeSettings {
    /// Where `s_hat` comes from (implicit encoders only).
    pub estimator: EntropyEstimator,
    /// Samples `n` of `q(z | x)` per image in a step.
    pub particles: usize,
    /// Gaussian projections `M` per sample of the SSM-VR score network.
    pub projections: usize,
    /// Hidden units per layer of every network.
    pub hidden: usize,
    /// RMSProp learning rate of every network (decay 0.9, offset 1e-8).
    pub learning_rate: f64,
}

/// A VAE with its optimisers and, for an implicit encoder trained with SSM-VR, the score network of
/// `q(z | x)`.
#[derive(Clone, Debug)]
pub struct VaeTrainer {
    /// The model.
    pub vae: Vae,
    settings: VaeSettings,
    score_net: Option<ScoreNet>,
    encoder_optimiser: RmsProp<f64>,
    decoder_optimiser: RmsProp<f64>,
}

impl VaeTrainer {
    /// A trainer of `vae`.
    ///
    /// # Errors
    /// [`ImplicitError`] when the estimator does not fit the encoder (a kernel estimator with one particle).
    pub fn new<R: Rng + ?Sized>(vae: Vae, settings: VaeSettings, rng: &mut R) -> Result<Self, ImplicitError> {
        if settings.particles == 0 {
            return Err(ImplicitError::new("--particles", 0, "at least 1 sample of q(z|x) per image"));
        }
        if vae.kind == EncoderKind::Implicit {
            settings.estimator.check_samples("--particles", settings.particles)?;
        }
        let data_dim = vae.decoder.net.outputs();
        let optimiser = RmsPropSettings { learning_rate: settings.learning_rate, ..Default::default() };
        let score_net = (vae.kind == EncoderKind::Implicit && settings.estimator == EntropyEstimator::SsmVr)
            .then(|| {
                ScoreNet::init(data_dim, vae.latent(), settings.hidden, settings.projections, optimiser, rng)
            });
        let encoder_optimiser = RmsProp::new(optimiser, vae.encoder.num_params());
        let decoder_optimiser = RmsProp::new(optimiser, vae.decoder.net.num_params());
        Ok(Self { vae, settings, score_net, encoder_optimiser, decoder_optimiser })
    }

    /// One step on the images `x` (pixels in `[0, 1]`, binarised here): `n` codes per image, one RMSProp
    /// step of the encoder and the decoder, then one SSM-VR step of the score network on those codes.
    ///
    /// # Errors
    /// [`ImplicitError`] when a kernel estimator cannot be fitted.
    pub fn step<R: Rng + ?Sized>(&mut self, x: &Mat<f64>, rng: &mut R) -> Result<VaeLoss, ImplicitError> {
        let n = self.settings.particles;
        let rows = x.rows() * n;
        let binary =
            Mat::from_fn(rows, x.cols(), |r, j| f64::from(u8::from(rng.random::<f64>() < x.at(r / n, j))));
        let eps = Mat::from_fn(rows, self.vae.latent(), |_, _| StandardNormal.sample(rng));
        let (mut g_enc, mut g_dec) = (self.vae.encoder.zeros_like(), self.vae.decoder.net.zeros_like());
        let estimator = self.settings.estimator;
        let net = self.score_net.as_ref();
        let scores = |z: &Mat<f64>| match net {
            Some(net) => Ok(net.scores(&binary, z)),
            None => estimator.kernel_scores(z, n),
        };
        let loss = self.vae.loss_and_gradient(&binary, &eps, scores, &mut g_enc, &mut g_dec)?;
        self.encoder_optimiser.step(self.vae.encoder.params_mut(), g_enc.params());
        self.decoder_optimiser.step(self.vae.decoder.net.params_mut(), g_dec.params());
        if let Some(net) = self.score_net.as_mut() {
            net.train_step(&binary, &loss.z, rng);
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
    fn gradients_of_both_losses_match_finite_differences() {
        let mut rng = test_rng(3);
        let x = Mat::from_fn(4, 5, |_, _| f64::from(u8::from(rng.random::<bool>())));
        for kind in [EncoderKind::Gaussian, EncoderKind::Implicit] {
            let vae = Vae::init(kind, 5, 2, 4, &mut rng);
            let eps = normal_mat(4, 2, &mut rng);
            // Fixed scores stand in for s_hat(z | x) (a stop-gradient: they do not move with theta).
            let s = normal_mat(4, 2, &mut rng);
            let (ne, nd) = (vae.encoder.num_params(), vae.decoder.net.num_params());
            let with = |theta: &[f64]| {
                let mut v = vae.clone();
                copy_from_flat(v.encoder.params_mut(), &theta[..ne]);
                copy_from_flat(v.decoder.net.params_mut(), &theta[ne..]);
                v
            };
            let loss = |theta: &[f64]| {
                let v = with(theta);
                let (mut ge, mut gd) = (v.encoder.zeros_like(), v.decoder.net.zeros_like());
                let l = v.loss_and_gradient(&x, &eps, |_| Ok(s.clone()), &mut ge, &mut gd).unwrap();
                (l.reconstruction + l.regulariser, [ge.params().concat(), gd.params().concat()].concat())
            };
            let theta: Vec<f64> = [vae.encoder.params().concat(), vae.decoder.net.params().concat()].concat();
            assert_eq!(theta.len(), ne + nd);
            let (_, got) = loss(&theta);
            assert_close(&got, &fd_gradient(|t| loss(t).0, &theta, 1e-6), 1e-6, &format!("{kind:?} VAE"));
        }
    }
}

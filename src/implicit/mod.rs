//! Scores of implicit distributions (Song et al. 2019, Sec. 5.2): VAEs with implicit encoders and
//! Wasserstein autoencoders whose entropy gradients use a learned (SSM-VR) or kernel (Stein, SSGE) score,
//! and annealed importance sampling for the test log-likelihood of their decoders.

mod ais;
mod autoencoder_checkpoint;
mod bernoulli_decoder;
mod entropy_estimator;
mod entropy_surrogate;
mod error;
mod score_net;
mod vae;
mod wae;

pub use ais::{AisEstimate, AisSettings};
pub(crate) use autoencoder_checkpoint::{bernoulli_decoder, AUTOENCODER_FORMAT};
pub(crate) use autoencoder_checkpoint::{Autoencoder, AutoencoderCheckpoint};
pub(crate) use bernoulli_decoder::bernoulli_nll;
pub use entropy_estimator::EntropyEstimator;
pub use error::ImplicitError;
pub use vae::{EncoderKind, Vae, VaeSettings, VaeTrainer};
pub use wae::{Wae, WaeTrainer};

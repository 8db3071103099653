//! Scores of implicit distributions (Song et al. 2019, Sec. 5.2): VAEs with implicit encoders and
//! Wasserstein autoencoders whose entropy gradients use a learned (SSM-VR) or kernel (Stein, SSGE) score,
//! and annealed importance sampling for the test log-likelihood of their decoders.

mod ais;
mod entropy_surrogate;
mod error;

pub use ais::{ais_log_likelihood, sigmoid_schedule, AisEstimate, AisSettings, LatentDecoder};
pub use entropy_surrogate::negative_entropy_surrogate;
pub use error::ImplicitError;

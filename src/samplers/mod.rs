//! Samplers for $p$ (or $q_\sigma$) from analytic or learned scores (docs/math.md §10): ULA, MALA, Ozaki
//! with full, diagonal or Lanczos matrix functions of the curvature, annealed ULA / Ozaki, and the
//! observers that trace their mixing.
//!
//! A sampler advances many chains at once ([`Chains`], `N x D`) and reads only what it needs from its
//! source: scores (ULA), log densities and scores (MALA), scores and curvature (Ozaki), the scores at
//! every noise level (annealed). Sources are the analytic targets (any type implementing the
//! [`targets`](crate::targets) capability traits: `Score`, `LogDensity`, `ScoreHessian`), a trained
//! [`ScoreModel<f32>`](crate::models::ScoreModel) (its curvature too when it has a second-order head),
//! an [`EnergyModel`](crate::models::EnergyModel) (which has log p, so MALA runs on it) and a
//! noise-conditional (image) model
//! through [`NoiseConditionalScore`] (a reference to one is the family of its levels: annealed ULA, and
//! annealed Ozaki with [`OzakiSolver::LowRank`] for a low-rank + diagonal head).
//! The source traits that connect them are internal (sealed). Chain `i` draws all its random numbers
//! from its own stream (a ChaCha8 stream per chain), so runs are reproducible from a seed whatever the
//! number of threads.
#![deny(missing_docs)]
#![allow(non_snake_case)] // D, H, L as in the math
// Checks are written `!(x > 0.0)` so that they reject NaN as well.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod annealed;
mod chain_series;
mod chains;
mod curvature;
mod energy_source;
mod error;
mod image_score_source;
mod lanczos;
mod low_rank_ozaki;
mod mala;
mod mmd_trace;
mod model_source;
mod noise_conditional_score;
mod ozaki;
mod phi;
mod sample_report;
mod sampler;
mod source;
mod ula;

#[cfg(test)]
mod image_gaussian_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod thread_count_tests;

pub use annealed::{AnnealedOzaki, AnnealedSettings, AnnealedUla};
pub(crate) use chain_series::ChainSeries;

pub use chains::Chains;
#[cfg(test)]
use curvature::{CurvatureBatch, CurvatureLayout, CurvatureView};
pub use error::SamplerError;
pub use mala::Mala;
pub(crate) use mmd_trace::MmdTrace;
pub(crate) use model_source::forward_chunks;
pub use noise_conditional_score::NoiseConditionalScore;
pub use ozaki::{Ozaki, OzakiSettings, OzakiSolver};

pub use sample_report::SampleReport;
pub use sampler::{run, RunSummary, Sampler, SamplerObserver, SamplerStep};
pub(crate) use source::ScoreSource;
pub use ula::Ula;

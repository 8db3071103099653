//! Samplers for $p$ (or $q_\sigma$) from analytic or learned scores (docs/math.md §10): ULA, MALA, Ozaki
//! with full, diagonal or Lanczos matrix functions of the curvature, annealed ULA / Ozaki, and the
//! observers that trace their mixing.
//!
//! A sampler advances many chains at once ([`Chains`], `N x D`) and bounds only on what it reads:
//! [`ScoreSource`] (ULA), [`LogDensitySource`] (MALA), [`CurvatureSource`] (Ozaki),
//! [`NoiseConditional`] (annealed). Every analytic target implements these through blanket impls; a
//! trained score model does through [`ModelSource`] and [`ModelCurvatureSource`], an energy model
//! (which has log p, so MALA runs on it) through [`EnergySource`], a noise-conditional (image) model
//! through [`NoiseConditionalScore`] and its per-level families [`ScoresBySigma`] (annealed ULA) and
//! [`CurvatureBySigma`] (annealed Ozaki, with [`OzakiSolver::LowRank`] for a low-rank + diagonal head).
//! Chain `i` draws all its random numbers from its own stream (a ChaCha8 stream per chain), so runs are
//! reproducible from a seed whatever the number of threads.
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

pub use annealed::{AnnealedOzaki, AnnealedSettings, AnnealedUla, GeometricSchedule};
pub(crate) use chain_series::ChainSeries;

pub use chains::{Chains, Divergence};
pub use curvature::{CurvatureBatch, CurvatureLayout, CurvatureView};
pub use energy_source::EnergySource;
pub use error::SamplerError;
pub use mala::{Mala, MalaSettings};
pub(crate) use mmd_trace::MmdTrace;
pub use model_source::{ModelCurvatureSource, ModelSource};
pub use noise_conditional_score::{
    CurvatureAtSigma, CurvatureBySigma, NoiseConditionalScore, ScoresAtSigma, ScoresBySigma,
};
pub use ozaki::{Ozaki, OzakiSettings, OzakiSolver};

pub use sample_report::SampleReport;
pub use sampler::{run, RunSummary, Sampler, SamplerObserver, SamplerStep};
pub use source::{CurvatureSource, LogDensitySource, NoiseConditional, ScoreSource};
pub use ula::{Ula, UlaSettings};

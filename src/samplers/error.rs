//! Typed errors of the samplers: bad settings and sources that lack a capability a sampler needs.

use crate::targets::TargetError;
use thiserror::Error;

/// Why a sampler could not be built.
///
/// Numerical failures during a run are not errors: a non-finite MALA proposal is a rejected step, and a
/// chain of an unadjusted sampler that leaves the finite numbers (or passes
/// a magnitude of `1e150`) is frozen and reported in
/// [`RunSummary::diverged`](super::RunSummary::diverged) with the step at which it diverged.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SamplerError {
    /// The step size `h` is not a positive finite number.
    #[error("step size must be positive and finite, got {step_size}")]
    NonPositiveStepSize {
        /// The rejected `h`.
        step_size: f64,
    },
    /// A run or a schedule level was asked for zero steps.
    #[error("the number of steps must be at least 1, got 0")]
    ZeroSteps,
    /// There are no chains to run.
    #[error("the number of chains must be at least 1, got 0")]
    ZeroChains,
    /// The curvature clip `l_max` is NaN.
    #[error("curvature clip l_max must be a number (finite or +inf), got {l_max}")]
    BadClip {
        /// The rejected `l_max`.
        l_max: f64,
    },
    /// Lanczos needs at least one iteration.
    #[error("Lanczos needs at least 1 iteration, got 0")]
    ZeroLanczosIterations,
    /// A geometric schedule needs `sigma_max >= sigma_min > 0`, both finite, and at least one level.
    #[error(
        "noise schedule needs finite sigma_max >= sigma_min > 0 and levels >= 1, got sigma_max = {sigma_max}, \
         sigma_min = {sigma_min}, levels = {levels}"
    )]
    BadSchedule {
        /// The largest noise level.
        sigma_max: f64,
        /// The smallest noise level.
        sigma_min: f64,
        /// The number of levels.
        levels: usize,
    },
    /// A score source and the space it is asked to sample have different dimensions.
    #[error("dimension mismatch: the {what} has dimension {found}, expected {expected}")]
    DimensionMismatch {
        /// What has the wrong dimension (`"model"`, `"initial positions"`).
        what: &'static str,
        /// The dimension required.
        expected: usize,
        /// The dimension found.
        found: usize,
    },
    /// An Ozaki sampler was given a model that has no second-order head.
    #[error("the model has no second-order (s2) head, so it gives no curvature; Ozaki samplers need one (use ula, or train with an s2 head)")]
    NoSecondOrderHead,
    /// MALA was given a source that has scores but no log density.
    #[error(
        "MALA needs log p for its accept/reject step, but this source gives scores only (use ula or ozaki)"
    )]
    NoLogDensity,
    /// An annealed sampler was given a source that is not conditioned on the noise level.
    #[error("annealed samplers need a noise-conditional score source (scores at every sigma); this source has one sigma only (a model must be trained noise-conditional, with --sigmas HI:LO:N)")]
    NotNoiseConditional,
    /// Building the source at a noise level failed.
    #[error(transparent)]
    Target(#[from] TargetError),
}

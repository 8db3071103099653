//! Typed errors of the posterior-uncertainty computations.

use thiserror::Error;

/// Why posterior moments, principal components or calibration metrics could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum UncertaintyError {
    /// More principal components were asked for than the covariance has.
    #[error("{requested} principal components requested (expected at most {available}: {why})")]
    TooManyComponents {
        /// `K` asked for.
        requested: usize,
        /// The most this covariance gives.
        available: usize,
        /// What limits it (the dimension, or the rank of a low-rank factor).
        why: &'static str,
    },
    /// A vector or matrix whose size differs from the covariance's dimension.
    #[error("{what} has {found} entries (expected {expected})")]
    SizeMismatch {
        /// What was passed.
        what: &'static str,
        /// Its size.
        found: usize,
        /// The size expected.
        expected: usize,
    },
    /// A covariance that is not positive definite where a density or a factor needs one (correct it
    /// with `clip_to_psd` first).
    #[error("the {form} covariance is not positive definite (clip it with a variance floor first)")]
    NotPositiveDefinite {
        /// `full`, `diag` or `lowrank`.
        form: &'static str,
    },
    /// A model output or covariance with a NaN or infinite entry (the eigensolvers would not converge).
    #[error("the {what} has a NaN or infinite entry (expected finite numbers; did training diverge?)")]
    NonFinite {
        /// What was not finite.
        what: &'static str,
    },
    /// Covariances were asked of a model without a second-order head.
    #[error("the model has no second-order head (its posterior covariance needs the autodiff route)")]
    NoSecondOrderHead,
    /// A setting outside its range (iterations, probes, levels, split sizes).
    #[error("{what} = {value} (expected {expected})")]
    BadSetting {
        /// The setting.
        what: &'static str,
        /// Its value.
        value: f64,
        /// The range expected.
        expected: &'static str,
    },
}

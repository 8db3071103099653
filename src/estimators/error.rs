//! Typed errors of the kernel score estimators.

use thiserror::Error;

/// Why a kernel estimator could not be fitted.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EstimatorError {
    /// Fewer samples than the estimator needs.
    #[error("{found} samples (expected at least {needed})")]
    TooFewSamples {
        /// Samples given.
        found: usize,
        /// Samples needed.
        needed: usize,
    },
    /// A sample has a NaN or infinite coordinate.
    #[error("sample {row}, coordinate {column} is {value} (expected a finite number)")]
    NonFiniteSample {
        /// The sample's row (0-based).
        row: usize,
        /// The coordinate (0-based).
        column: usize,
        /// The value.
        value: f64,
    },
    /// The kernel bandwidth is not a positive finite number (for example all samples coincide).
    #[error("kernel bandwidth {bandwidth} (expected a finite number > 0; are all samples equal?)")]
    BadBandwidth {
        /// The bandwidth given or found by the median heuristic.
        bandwidth: f64,
    },
    /// The Stein regulariser is not a positive finite number.
    #[error("Stein regulariser eta = {eta} (expected a finite number > 0)")]
    BadRegulariser {
        /// The value given.
        eta: f64,
    },
    /// The SSGE eigenvalue threshold is not in `(0, 1]`.
    #[error("SSGE eigenvalue threshold {threshold} (expected a fraction in (0, 1])")]
    BadThreshold {
        /// The value given.
        threshold: f64,
    },
    /// The regularised kernel matrix could not be factored.
    #[error("the regularised kernel matrix of {samples} samples is not positive definite (increase eta)")]
    NotPositiveDefinite {
        /// Number of samples.
        samples: usize,
    },
    /// Evaluation points have a different dimension from the samples.
    #[error("evaluation points have {found} coordinates (expected {expected}, like the samples)")]
    WrongDimension {
        /// The samples' dimension.
        expected: usize,
        /// The points' dimension.
        found: usize,
    },
}

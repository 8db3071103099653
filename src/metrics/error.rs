//! Typed errors of the sample-quality metrics.

use thiserror::Error;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricError {
    /// A sample is too small for the estimator (for example, every chain diverged).
    #[error("{what} needs at least {needed} samples, got {found}")]
    TooFewSamples {
        /// Which sample (`"sample"`, `"reference"`, `"series"`).
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// The number given.
        found: usize,
    },
    /// A kernel parameter is out of range.
    #[error("kernel parameter {name} = {value} is invalid (expected {expected})")]
    BadKernel {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The valid range.
        expected: &'static str,
    },
}

pub(crate) fn at_least(what: &'static str, needed: usize, found: usize) -> Result<(), MetricError> {
    if found < needed {
        Err(MetricError::TooFewSamples { what, needed, found })
    } else {
        Ok(())
    }
}

//! The crate-level error: every module's typed error, one `match` away for callers.

use crate::checkpoint::CheckpointError;
use crate::data::{DataError, DatasetError};
use crate::metrics::MetricError;
use crate::samplers::SamplerError;
use crate::targets::TargetError;
use crate::train::{ConfigError, TrainError};

/// Any failure of the library. Variants wrap the module errors, which carry the numbers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad target specification or distribution parameter.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A data file that cannot be used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A named data set that cannot be found, fetched, verified or read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A checkpoint that cannot be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A bad training configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A training run that failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A sampler that cannot be built (bad settings, a source without a needed capability).
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// A sample-quality metric that cannot be computed.
    #[error(transparent)]
    Metric(#[from] MetricError),
    /// Posterior moments or calibration metrics that cannot be computed.
    #[error(transparent)]
    Uncertainty(#[from] crate::uncertainty::UncertaintyError),
}

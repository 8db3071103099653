//! Sample-quality and mixing metrics (docs/math.md §12): MMD², kernel Stein discrepancy, mixture-weight
//! total variation, integrated autocorrelation time / ESS, and steps to tolerance.
#![deny(missing_docs)]
#![allow(non_snake_case)] // D, as in the math
// Checks are written `!(x > 0.0)` so that they reject NaN as well.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod autocorrelation;
mod class_balance;
mod error;
mod kernel_stein_discrepancy;
mod maximum_mean_discrepancy;
mod mixture_weight_tv;
mod rbf_kernel;
mod steps_to_tolerance;

pub(crate) use autocorrelation::{integrated_autocorrelation_time, Iat};
pub(crate) use class_balance::class_balance;
pub use error::MetricError;
pub use kernel_stein_discrepancy::ImqKernel;

pub use maximum_mean_discrepancy::MmdEstimator;
pub(crate) use mixture_weight_tv::mixture_weight_tv;
pub use rbf_kernel::RbfKernel;
pub(crate) use steps_to_tolerance::Trace;

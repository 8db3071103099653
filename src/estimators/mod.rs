//! Score estimators that are not trained by a D2SM objective: the autodiff Jacobian baseline, and the
//! kernel estimators (Stein, SSGE) that need no training at all.

mod autodiff_jacobian;
mod error;
mod kernel_samples;
mod ssge;
mod stein;
#[cfg(test)]
mod testing;

pub(crate) use autodiff_jacobian::score_jacobian;
pub(crate) use autodiff_jacobian::score_jacobian_into;
pub use error::EstimatorError;

pub use ssge::{Ssge, SsgeSettings};
pub use stein::{SteinFit, SteinSettings};

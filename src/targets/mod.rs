//! Analytic targets with exact scores of every order: Gaussian mixtures, their names and the capability
//! traits (`LogDensity`, `Score`, `ScoreHessian`) that samplers and metrics bound on.
// Parameter checks are written `!(x > 0.0)` so that they reject NaN as well.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod batch;
mod error;
mod families;
mod gaussian_mixture;
mod named;
mod traits;

#[cfg(test)]
mod testing;

pub use error::TargetError;
#[cfg(test)]
pub(crate) use families::gmm2d;
pub(crate) use families::random_gauss;

#[cfg(test)]
pub(crate) use families::random_orthogonal;
pub use gaussian_mixture::GaussianMixture;
pub(crate) use named::canonical_name;
pub(crate) use named::parse_target;
pub(crate) use named::NamedTarget;
pub use named::TargetSpec;
pub use traits::{HasDim, LogDensity, Score, ScoreHessian};

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

pub use batch::{LogDensityExt, ScoreExt, ScoreHessianExt};
pub use error::TargetError;
pub use families::{
    gmm2d, random_gauss, random_gmm, random_orthogonal, GMM_EIGENVALUE_RANGE, GMM_MEAN_STD,
    GMM_WEIGHT_CONCENTRATION,
};
pub use gaussian_mixture::GaussianMixture;
pub use named::{
    canonical_name, parse_target, NamedTarget, TargetSpec, DEFAULT_COMPONENTS, DEFAULT_COND, MAX_COMPONENTS,
    MAX_COND, MAX_DIM,
};
pub use traits::{HasDim, LogDensity, Score, ScoreHessian};

//! Uncertainty of denoising: the posterior mean, covariance and principal components of the clean point
//! given a noisy one, from one pass of a score model with a second-order head (Tweedie at first and
//! second order), or by the autodiff route (subspace iteration and Jacobian diagonals by JVPs of `s1`);
//! and their calibration against the clean points (docs/uncertainty.md).

mod calibration;
mod conformal;
mod error;
mod gaussian_density;
mod gaussian_samples;
mod jacobian_diagonal;
mod mixture_check;
mod posterior_covariance;
mod posterior_moments;
mod principal_components;
mod score_jvp;
mod subspace_iteration;

pub use calibration::CalibrationReport;
pub(crate) use calibration::{
    best_scalar_variance, interval_coverage, isotropic_nll, principal_angles, REM_COMPONENTS,
};
pub use conformal::{ConformalCoverage, SplitConformal};
pub use error::UncertaintyError;
pub(crate) use jacobian_diagonal::{jacobian_variances, DiagonalProbes};
pub(crate) use mixture_check::{check_on_mixture, MixtureCheck};
pub(crate) use mixture_check::{CONFORMAL_LEVEL, VARIANCE_FLOOR};
pub use posterior_covariance::PosteriorCovariance;
pub use posterior_moments::PosteriorMoments;
pub(crate) use posterior_moments::{image_posterior_moments, posterior_means};
pub use principal_components::PrincipalComponents;
pub use score_jvp::ScoreJvp;
pub use subspace_iteration::{IteratedComponents, SubspaceIteration};

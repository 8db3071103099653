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

pub use calibration::{
    best_scalar_variance, covariance_scores, interval_coverage, isotropic_nll, principal_angles,
    CalibrationReport, INTERVAL_LEVELS, REM_COMPONENTS,
};
pub use conformal::{ConformalCoverage, SplitConformal};
pub use error::UncertaintyError;
pub use gaussian_density::GaussianTerms;
pub use jacobian_diagonal::{jacobian_variances, DiagonalProbes};
pub use mixture_check::{
    check_on_mixture, MixtureCheck, MixtureCheckReport, RouteReport, CONFORMAL_LEVEL, VARIANCE_FLOOR,
};
pub use posterior_covariance::PosteriorCovariance;
pub use posterior_moments::{posterior_means, posterior_moments, PosteriorMoments};
pub use principal_components::PrincipalComponents;
pub use score_jvp::ScoreJvp;
pub use subspace_iteration::{subspace_iteration, IteratedComponents, SubspaceIteration};

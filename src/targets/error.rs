//! Typed errors of the `targets` module: bad mixture parameters and bad target names.

use thiserror::Error;

/// Why a target could not be built.
///
/// Construction errors ([`GaussianMixture::new`](super::GaussianMixture::new), [`noisy`], [`posterior`])
/// say which component and which number is wrong; parse errors ([`TargetSpec`](super::TargetSpec) parsing)
/// quote the spec, the key, the value and what was expected.
///
/// [`noisy`]: super::GaussianMixture::noisy
/// [`posterior`]: super::GaussianMixture::posterior
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The name before `:` is not a known target family.
    #[error("unknown target `{spec}`; expected one of: gmm2d, gmm:dim=D[,components=K][,seed=S], gauss:dim=D[,cond=C][,seed=S]")]
    UnknownTarget {
        /// The full spec string.
        spec: String,
    },
    /// A `key=value` pair names a key the family does not take.
    #[error("target `{spec}`: unknown key `{key}` (this family takes: {allowed})")]
    UnknownKey {
        /// The full spec string.
        spec: String,
        /// The offending key.
        key: String,
        /// The keys the family accepts.
        allowed: &'static str,
    },
    /// A required key is absent.
    #[error("target `{spec}`: missing required key `{key}`")]
    MissingParameter {
        /// The full spec string.
        spec: String,
        /// The missing key.
        key: &'static str,
    },
    /// A key is given twice.
    #[error("target `{spec}`: key `{key}` given more than once")]
    DuplicateKey {
        /// The full spec string.
        spec: String,
        /// The repeated key.
        key: String,
    },
    /// A value does not parse or is out of range.
    #[error("target `{spec}`: bad value `{value}` for `{key}`; expected {expected}")]
    BadParameter {
        /// The full spec string.
        spec: String,
        /// The key whose value is bad (or the whole item if it has no `=`).
        key: String,
        /// The value as written.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A mixture needs at least one component.
    #[error("a Gaussian mixture needs at least one component")]
    NoComponents,
    /// A mixture needs dimension at least one.
    #[error("a Gaussian mixture needs dimension D >= 1")]
    ZeroDimension,
    /// The numbers of weights, means and covariances differ.
    #[error("{weights} weights, {means} means and {covariances} covariances: counts must agree")]
    ComponentCountMismatch {
        /// Number of weights given.
        weights: usize,
        /// Number of means given.
        means: usize,
        /// Number of covariances given.
        covariances: usize,
    },
    /// A weight is not a positive finite number.
    #[error("weight pi_{component} = {weight} is not positive and finite")]
    BadWeights {
        /// Index of the component.
        component: usize,
        /// The offending weight.
        weight: f64,
    },
    /// A mean or covariance has the wrong size.
    #[error("{what} of component {component} has size {found}, expected {expected}")]
    DimensionMismatch {
        /// Which parameter (`"mean"`, `"covariance rows"`, `"covariance cols"`).
        what: &'static str,
        /// Index of the component.
        component: usize,
        /// The size required by the mixture dimension.
        expected: usize,
        /// The size given.
        found: usize,
    },
    /// A mean or covariance entry is NaN or infinite.
    #[error("{what} of component {component} has a non-finite entry")]
    NonFinite {
        /// Which parameter (`"mean"` or `"covariance"`).
        what: &'static str,
        /// Index of the component.
        component: usize,
    },
    /// A covariance is not symmetric to within rounding.
    #[error("covariance of component {component} is not symmetric: max |Sigma - Sigma^T| = {asymmetry:e}")]
    NotSymmetric {
        /// Index of the component.
        component: usize,
        /// Largest absolute asymmetry found.
        asymmetry: f64,
    },
    /// A covariance has no Cholesky factor.
    #[error("covariance of component {component} is not positive definite")]
    NotPositiveDefinite {
        /// Index of the component.
        component: usize,
    },
    /// A noise level must be positive and finite.
    #[error("noise level sigma = {sigma} is not positive and finite")]
    NonPositiveSigma {
        /// The offending noise level.
        sigma: f64,
    },
}

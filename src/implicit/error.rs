//! Typed errors of the implicit-distribution models and of AIS.

use thiserror::Error;

/// A setting of a model, an estimator or AIS that cannot work.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{name} {value}: expected {expected}")]
pub struct ImplicitError {
    /// The setting, as the command line names it (`--latent`, `--particles`, ...).
    pub name: String,
    /// The value given.
    pub value: String,
    /// What would work.
    pub expected: String,
}

impl ImplicitError {
    /// The error for setting `name` with value `value`, which should have been `expected`.
    pub fn new(name: &str, value: impl ToString, expected: &str) -> Self {
        Self { name: name.into(), value: value.to_string(), expected: expected.into() }
    }
}

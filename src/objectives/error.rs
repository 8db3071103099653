//! Typed errors of objective and model-kind selection: unknown projection names, `M = 0`, a bad step size, and an
//! objective given the wrong kind of model. Each message is one line that names the value and what was
//! expected.

use crate::models::ModelKind;
use thiserror::Error;

/// Why an objective could not be built or used.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ObjectiveError {
    /// The projection name is not known.
    #[error("unknown projection `{name}` (expected one of: gaussian, rademacher, sphere)")]
    UnknownProjection {
        /// The name as given.
        name: String,
    },
    /// Sliced score matching was asked for zero projections per point.
    #[error(
        "--projections 0: sliced score matching needs at least one projection per point (expected M >= 1)"
    )]
    ZeroProjections,
    /// The finite-difference step of FD-SSM is not a positive finite number.
    #[error("FD-SSM step eps = {eps} (expected a finite number > 0)")]
    BadStep {
        /// The step given.
        eps: f64,
    },
    /// The coupling weight of D2SM is not a finite number `>= 0`.
    #[error("--couple {couple} (expected a finite coupling weight >= 0; 0 turns the coupling off)")]
    BadCoupling {
        /// The weight given.
        couple: f64,
    },
    /// The objective cannot train this kind of model.
    #[error("objective {objective} cannot train a {model} model (it needs a {expected} model)")]
    WrongModel {
        /// The objective's name.
        objective: &'static str,
        /// The model kind given.
        model: ModelKind,
        /// The model kind it needs.
        expected: &'static str,
    },
    /// The objective cannot train a U-Net image model (which trains by DSM, with a second-order head by
    /// D2SM form A or B).
    #[error(
        "objective {objective} cannot train a U-Net image model (expected dsm, or d2sm form a or b without coupling)"
    )]
    ImageModel {
        /// The objective's name.
        objective: &'static str,
    },
}

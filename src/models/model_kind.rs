//! Which networks a model has: a score network `s1(x)` alone, a score network with a second-order head,
//! or an energy network `E(x)` with `s1 = -grad_x E`. Objectives check it before training
//! ([`crate::objectives::Objective::check_model`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a model, as named on the command line (`--model s1|s1s2|s1s2s3|energy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// A score network s1: R^D -> R^D alone (a `ScoreModel` without `s2`).
    S1,
    /// A score network and a second-order network (a `ScoreModel` with `s2`).
    S1s2,
    /// A score network, a second-order network and a third-order network (a `ScoreModel` with `s2` and
    /// `s3`).
    S1s2s3,
    /// An energy network E: R^D -> R with s1 = -grad_x E (an `EnergyModel`).
    Energy,
}

impl ModelKind {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::S1 => "s1",
            ModelKind::S1s2 => "s1s2",
            ModelKind::S1s2s3 => "s1s2s3",
            ModelKind::Energy => "energy",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! Which kind of network a model is: a score network `s(x)` or an energy network `E(x)` with
//! `s = -grad_x E`. Objectives check it before training ([`crate::train::Objective::check_model`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum ModelKind {
    /// A score network `s1: R^D -> R^D` (optionally with a second-order head): [`super::ScoreModel`].
    #[serde(rename = "s1")]
    #[value(name = "s1")]
    ScoreNetwork,
    /// An energy network `E: R^D -> R`, `s1 = -grad_x E`: [`super::EnergyModel`].
    #[serde(rename = "energy")]
    #[value(name = "energy")]
    Energy,
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::ScoreNetwork => "score-network (s1)",
            ModelKind::Energy => "energy",
        })
    }
}

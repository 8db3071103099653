//! Training objectives: each computes a loss and the cotangents of the network outputs it depends on.

mod consistency_coupling;
mod denoising_score_matching;
mod error;
mod exact_score_matching;
mod finite_difference_ssm;
mod objective;
mod projection;
mod residual_likelihood;
mod second_order_dsm;
mod sliced_score_matching;
mod structured_symmetric;
mod third_order_dsm;

pub(crate) use consistency_coupling::{coupling_loss, CouplingBatch};
pub(crate) use denoising_score_matching::{dsm_loss, dsm_vr_loss};
pub use error::ObjectiveError;
pub(crate) use exact_score_matching::{basis_directions_into, esm_energy_loss, esm_loss};
pub(crate) use finite_difference_ssm::{fd_directions_into, fd_ssm_energy_loss, fd_ssm_loss};
pub use objective::ObjectiveName;
pub(crate) use objective::DEFAULT_FD_EPS;
pub(crate) use objective::{Objective, ScoreMatching};
pub use projection::Projection;
pub(crate) use residual_likelihood::s2_diagonal_of_log_link;
pub(crate) use second_order_dsm::D2smForm;
pub(crate) use second_order_dsm::{d2sm_loss, D2smBatch};
pub(crate) use sliced_score_matching::{ssm_energy_loss, ssm_loss, ssm_vr_energy_loss, SlicedScores};
#[cfg(test)]
pub(crate) use third_order_dsm::third_order_target;
pub(crate) use third_order_dsm::{d3sm_loss, D3smBatch};

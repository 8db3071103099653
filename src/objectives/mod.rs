//! Training objectives: each computes a loss and the cotangents of the network outputs it depends on.

mod denoising_score_matching;
mod second_order_dsm;
mod structured_symmetric;

pub use denoising_score_matching::{dsm_loss, dsm_vr_loss};
pub use second_order_dsm::{d2sm_loss, D2smBatch, D2smForm};
pub use structured_symmetric::{Base, StructuredSym};

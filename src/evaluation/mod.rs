//! Evaluation of trained models: score errors against ground truth, and timing.

mod relative_error;
mod score_report;

pub use relative_error::{diagonal_relative_error, relative_error};
pub use score_report::{evaluate_scores, ScoreReport};

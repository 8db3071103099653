//! Evaluation of trained models: score errors against ground truth, timing, and the normalising constant
//! and held-out log-likelihood of energy models.

mod log_partition;
mod relative_error;
mod s2_ensemble;
mod score_report;
mod third_order_report;

pub(crate) use log_partition::mean_log_likelihood;
pub use log_partition::{LogPartition, LogPartitionSettings};
pub use relative_error::relative_error;
pub use score_report::ScoreReport;
pub use third_order_report::ThirdOrderReport;
pub(crate) use third_order_report::ThirdOrderRoutes;

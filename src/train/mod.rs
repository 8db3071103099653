//! Training: the per-step loss and gradient, and the training loop with checkpoints.

mod step;

pub use step::{loss_and_gradient, Objective, StepWorkspace};

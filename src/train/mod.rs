//! Training: the per-step loss and gradient of score networks and energy models, and the choice of
//! objective.

mod energy_step;
mod objective_choice;
mod sliced_step;
mod step;

pub use energy_step::{energy_loss_and_gradient, EnergyWorkspace};
pub use objective_choice::DEFAULT_FD_EPS;
pub use step::{loss_and_gradient, Objective, StepWorkspace};

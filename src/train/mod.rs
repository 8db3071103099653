//! Training: configuration, data, the per-step loss and gradient, the loop, and checkpoints.

mod config;
mod step;
mod trainer;
mod training_checkpoint;
mod training_data;

pub use config::{ConfigError, FormName, ModelKind, TargetSource, TrainConfig};
pub use step::{loss_and_gradient, Objective, StepWorkspace};
pub use trainer::{StepInfo, TrainError, TrainObserver, Trainer};
pub use training_checkpoint::{Checkpoint, FORMAT};
pub use training_data::TrainingData;

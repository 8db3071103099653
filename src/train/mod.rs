//! Training: configuration, data, the per-step loss and gradient of score networks and energy models,
//! the loop, and checkpoints.

mod config;
mod data_file;
mod energy_step;
mod image_step;
mod model_step;
mod sliced_step;
mod step;
mod trainer;
mod training_checkpoint;
mod training_data;
mod training_memory;

pub use config::{ConfigError, FormName, TargetSource, TrainConfig, IN_MEMORY_TARGET, SIGMA_RANGE};
pub use data_file::{DataChanged, DataFile};
pub use energy_step::{energy_loss_and_gradient, EnergyWorkspace};
pub use image_step::ImageWorkspace;
pub use model_step::ModelWorkspace;
pub use step::{loss_and_gradient, StepWorkspace};
pub use trainer::{Divergence, StepInfo, TrainError, TrainObserver, Trainer};
pub use training_checkpoint::{Checkpoint, FORMAT};
pub use training_data::TrainingData;

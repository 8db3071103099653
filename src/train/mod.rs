//! Training: configuration, data, the per-step loss and gradient of score networks and energy models,
//! the loop, and checkpoints.

mod config;
mod coupling_step;
mod data_file;
mod energy_step;
mod image_step;
mod model_step;
mod sharded_step;
mod sliced_step;
mod step;
mod third_order_step;
mod trainer;
mod training_checkpoint;
mod training_data;
mod training_memory;

pub use config::{ConfigError, FormName, TrainConfig};
pub(crate) use config::{TargetSource, IN_MEMORY_TARGET};
pub(crate) use model_step::ModelWorkspace;
pub use trainer::{Divergence, TrainError, TrainObserver, TrainStep, Trainer};
pub use training_checkpoint::Checkpoint;
pub(crate) use training_data::TrainingData;

//! Optimisers and weight averaging.

mod adam;
mod ema;
mod learning_rate_schedule;
mod rmsprop;

pub use adam::{Adam, AdamSettings};
pub use ema::Ema;
pub use learning_rate_schedule::LearningRateSchedule;
pub use rmsprop::{RmsProp, RmsPropSettings};

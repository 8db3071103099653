//! Optimisers and weight averaging.

mod adam;
mod ema;
mod learning_rate_schedule;
mod rmsprop;

pub(crate) use adam::{Adam, AdamSettings};
pub(crate) use ema::Ema;
pub use learning_rate_schedule::LearningRateSchedule;
pub(crate) use rmsprop::RmsProp;
pub(crate) use rmsprop::RmsPropSettings;

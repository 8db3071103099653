//! Score models: the first-order score network and second-order heads.

mod score_model;
mod second_order_head;

pub use score_model::{ModelShape, ScoreModel, SecondOrderNet};
pub use second_order_head::{SecondOrderHead, UnknownHead};

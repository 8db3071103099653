//! Score models: the first-order score network and second-order heads.

mod second_order_head;

pub use second_order_head::{SecondOrderHead, UnknownHead};

//! Optimisers and weight averaging.

mod adam;
mod ema;

pub use adam::{Adam, AdamSettings};
pub use ema::Ema;

//! tweedie: learn the score and higher-order scores of a data distribution by denoising.
#![deny(unsafe_code)]

pub mod checkpoint;
pub mod data;
mod error;
pub mod estimators;
pub mod evaluation;
pub mod linalg;
pub mod models;
pub mod nn;
pub mod objectives;
pub mod optim;
pub mod plot;
pub mod targets;
#[cfg(test)]
mod testing;
pub mod train;
pub use error::Error;

//! tweedie: learn the score and higher-order scores of a data distribution by denoising.
#![deny(unsafe_code)]

pub mod checkpoint;
pub mod data;
pub mod linalg;
pub mod plot;

//! tweedie: learn the score and higher-order scores of a data distribution by denoising.
#![deny(unsafe_code)]

pub mod linalg;
pub mod targets;

//! # tweedie
//!
//! Learn the score `s1 = grad log q_sigma` and the second-order score `s2 = Hess log q_sigma` of a data
//! distribution from samples, directly by denoising (Tweedie's formula at first and second order), and
//! check them against analytic ground truth.
//!
//! The map of the crate:
//! - [`nn`]: the explicit-derivative network core. Layers ([`nn::Linear`], [`nn::Activation`]) and the
//!   [`nn::Mlp`] run a forward pass that also pushes tangents (JVPs) and a reverse pass through both the
//!   primal and the tangent streams; [`linalg`] holds the matrix type and the GEMM seam.
//! - [`targets`]: Gaussian mixtures with exact `s1`, `s2`, `s3` of `q_sigma`, the exact posterior, and the
//!   named families `gmm2d`, `gmm:dim=D,components=K,seed=S`, `gauss:dim=D,cond=C,seed=S`.
//! - [`models`]: the score network and the second-order heads (full, diagonal, low-rank + diagonal).
//! - [`objectives`]: DSM, DSM-VR and second-order DSM in forms A, B and A-VR, with closed forms that never
//!   build a `D x D` matrix for diagonal and low-rank heads.
//! - [`estimators`]: the autodiff baseline (the symmetrised Jacobian of `s1`).
//! - [`implicit`]: implicit-encoder VAEs and WAEs with score-based entropy gradients, and AIS.
//! - [`train`]: configuration, the training loop, atomic checkpoints with bit-for-bit resume.
//! - [`evaluation`]: relative errors against ground truth and timing.
//! - [`data`], [`checkpoint`], [`plot`]: NPY/CSV points, safetensors files, PNG figures.
//! - [`memory_budget`]: sizes checked against the memory available before anything is allocated.
//!
//! # Example
//! ```
//! use tweedie::evaluation::evaluate_scores;
//! use tweedie::data::DataDir;
//! use tweedie::train::{TrainConfig, Trainer};
//!
//! let config = TrainConfig { target: "gauss:dim=2,cond=4".into(), steps: 300, batch: 128, width: 32,
//!                            learning_rate: 3e-3, ema: 0.9, ..TrainConfig::default() };
//! let dir = tempfile::tempdir().unwrap();
//! let mut trainer = Trainer::new(config, &DataDir::resolve(None)).unwrap();
//! trainer.run(&dir.path().join("model.safetensors"), &mut ()).unwrap();
//! let target = trainer.data().mixture().unwrap().clone();
//! let report = evaluate_scores(&trainer.state().eval_model(), &target, 0.3, 500, 1).unwrap();
//! assert!(report.s2_rel_err.unwrap() < 0.3, "learned Hessian within 30% of the truth");
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod checkpoint;
pub mod data;
mod error;
pub mod estimators;
pub mod evaluation;
pub mod implicit;
pub mod linalg;
pub mod memory_budget;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod objectives;
pub mod optim;
pub mod plot;
pub mod samplers;
pub mod targets;
#[cfg(test)]
mod testing;
pub mod train;

pub use error::Error;

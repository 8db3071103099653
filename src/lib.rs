//! # tweedie
//!
//! Learn the score `s1 = grad log q_sigma` and the second-order score `s2 = Hess log q_sigma` of a data
//! distribution from samples, directly by denoising (Tweedie's formula at first and second order), and
//! check them against analytic ground truth.
//!
//! The map of the crate (the public surface; the `tweedie` command line is built on exactly this):
//! - [`train`]: [`train::TrainConfig`] (every choice of a run) and [`train::Trainer`], which trains on
//!   points in memory ([`train::Trainer::from_points`]), a named target, a data file or a data set, with
//!   checkpoints optional and resumable bit for bit ([`train::Checkpoint`]).
//! - [`models`]: the trained [`models::Model`]: a score network with an optional second-order head
//!   (full, diagonal, low-rank + diagonal), an energy model or a U-Net image model; `score`,
//!   `hessian_dense` and `hessian_autodiff` at your points.
//! - [`objectives`]: the names of the objectives a [`train::TrainConfig`] selects
//!   ([`objectives::ObjectiveName`]): DSM, DSM-VR, second-order DSM in forms A, B and A-VR, SSM, SSM-VR,
//!   exact and finite-difference score matching.
//! - [`uncertainty`]: posterior moments of denoising (mean, covariance as the head's factors, principal
//!   directions, samples), the autodiff route by subspace iteration, and their calibration.
//! - [`samplers`]: ULA, MALA, Ozaki and annealed samplers on analytic or learned scores (a trained model
//!   is a source as it is), with a [`samplers::SampleReport`].
//! - [`targets`]: Gaussian mixtures with exact `s1`, `s2`, `s3` and the exact posterior, and the named
//!   families `gmm2d`, `gmm:dim=D,components=K,seed=S`, `gauss:dim=D,cond=C,seed=S`.
//! - [`estimators`]: the Stein and SSGE kernel score estimators (the autodiff Hessian of a learned `s1` is
//!   [`models::ScoreModel::hessian_autodiff`]).
//! - [`implicit`]: scores of implicit distributions at work: VAEs with implicit encoders and WAEs whose
//!   entropy gradients come from SSM-VR, Stein or SSGE, and AIS estimates of their likelihood.
//! - [`evaluation`], [`metrics`]: errors against ground truth, `log Z` of energy models, MMD², KSD².
//! - [`data`]: points from CSV / NPY files, the named data sets and their data directory.
//! - [`nn`]: the explicit-derivative network core (forward with tangents, reverse through both streams;
//!   docs/math.md §8). Internal; only [`nn::Activation`], a choice a [`train::TrainConfig`] makes, is
//!   public.
//! - [`linalg`]: the matrix type [`linalg::Mat`] and the float trait [`linalg::Real`].
//!
//! Without default features (`default-features = false`) the crate builds without the command line
//! (`clap`, `indicatif`, `png`).
//!
//! # Example: from an `N x D` array to scores, Hessians, posterior moments and samples
//! ```
//! use rand::SeedableRng;
//! use rand_distr::{Distribution, StandardNormal};
//! use tweedie::linalg::Mat;
//! use tweedie::metrics::MmdEstimator;
//! use tweedie::models::SecondOrderHead;
//! use tweedie::samplers::{run, Chains, SampleReport, Ula};
//! use tweedie::train::{TrainConfig, Trainer};
//!
//! // 2000 points of a Gaussian with covariance C = [[1, 0.5], [0.5, 1]], held in memory.
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let points = Mat::from_fn(2000, 2, |_, _| StandardNormal.sample(&mut rng));
//! let points = Mat::from_fn(2000, 2, |i, j| match j {
//!     0 => points.at(i, 0),
//!     _ => 0.5 * points.at(i, 0) + 0.75f64.sqrt() * points.at(i, 1),
//! });
//!
//! // Learn s1 and a full second-order head s2 at sigma = 0.3; no checkpoint file.
//! let sigma = 0.3;
//! let config = TrainConfig { s2: SecondOrderHead::Full, sigma, steps: 600, batch: 256, width: 32,
//!                            learning_rate: 3e-3, ema: 0.9, ..TrainConfig::default() };
//! let mut trainer = Trainer::from_points(config, points.clone())?;
//! trainer.run(None, &mut ())?;
//! let model = trainer.model();
//!
//! // s1 and s2 at your points: here the origin, where q_sigma = N(0, C + sigma^2 I) has
//! // s1 = 0 and s2 = -(C + sigma^2 I)^-1.
//! let x = Mat::from_vec(1, 2, vec![0.0f32, 0.0]);
//! let s1 = model.score(&x);
//! let s2 = model.as_score().unwrap().hessian_dense(&x).unwrap();
//! let det = 1.09f64 * 1.09 - 0.25;
//! let truth = [-1.09 / det, 0.5 / det, 0.5 / det, -1.09 / det];
//! let err: f64 = s2.iter().zip(truth).map(|(a, b)| (*a as f64 - b).powi(2)).sum::<f64>().sqrt();
//! let norm: f64 = truth.iter().map(|t| t * t).sum::<f64>().sqrt();
//! assert!(err < 0.25 * norm, "s2 = {s2:?}, truth {truth:?}"); // about 15% after 600 steps
//! assert!(s1.as_slice().iter().all(|v| v.abs() < 0.2), "s1 = {:?}", s1.as_slice());
//!
//! // Posterior moments of a clean x given the noisy x~ (Tweedie): mean x~ + sigma^2 s1,
//! // covariance sigma^4 s2 + sigma^2 I.
//! let mean: Vec<f64> = (0..2).map(|j| sigma * sigma * s1.at(0, j) as f64).collect();
//! let cov: Vec<f64> = (0..4).map(|k| sigma.powi(4) * s2[k] as f64 + if k % 3 == 0 { sigma * sigma } else { 0.0 }).collect();
//! assert!(mean.iter().all(|m| m.abs() < 0.02) && cov[0] > 0.0 && cov[0] < sigma * sigma);
//!
//! // Langevin chains on the learned score, measured against the data.
//! let mut ula = Ula::new(0.05, model.as_score().unwrap())?;
//! let mut chains = Chains::from_normal(500, 2, 1.0, 1)?;
//! let summary = run(&mut ula, &mut chains, 300, &mut ());
//! let report = SampleReport::measure(&chains, &summary, &MmdEstimator::new(points)?, None)?;
//! assert_eq!(report.live_chains, 500);
//! assert!(report.mmd2.unwrap() < 0.005, "{report:?}"); // about 0.001
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
// What serves the command line (data fetching and verification, output locks, the mixing observers, the
// calibration drivers) lives in the module it belongs to; without the `cli` feature nothing calls it.
#![cfg_attr(not(feature = "cli"), allow(dead_code, unused_imports))]
#![deny(missing_docs)]

pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
mod error;
pub mod estimators;
pub mod evaluation;
pub mod implicit;
pub mod linalg;
mod memory_budget;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod objectives;
pub mod optim;
#[cfg(feature = "cli")]
mod plot;
pub mod samplers;
pub mod targets;
#[cfg(test)]
mod testing;
pub mod train;
pub mod uncertainty;

pub use error::Error;

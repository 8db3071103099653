//! Accuracy and cost of a trained model's scores against an analytic target: `s1`, the learned `s2`, and
//! the autodiff baseline `(J + J^T)/2` of the same `s1` (score networks), on test points drawn from
//! `q_sigma`, and the third-order routes of a model with a third-order head. Energy models report `s1`
//! (`-grad E`) only.

use super::relative_error::{diagonal_relative_error, relative_error};
use super::s2_ensemble::{blend, ensemble_weight};
use super::third_order_report::{evaluate_third_order, ThirdOrderReport};
use crate::estimators::score_jacobian_into;
use crate::linalg::Mat;
use crate::models::{Model, ScoreModel, SecondOrderHead};
use crate::nn::MlpTrace;
use crate::targets::{GaussianMixture, TargetError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;
use std::time::Instant;

/// What `tweedie eval` reports for an analytic target.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreReport {
    /// Test points.
    pub points: usize,
    /// Noise level of the test points.
    pub sigma: f64,
    /// `rel_err(s1)`.
    pub s1_rel_err: f64,
    /// `rel_err(s2)` of the learned head (on the diagonal only for a diagonal head), if any.
    pub s2_rel_err: Option<f64>,
    /// `rel_err(s2)` of the symmetrised Jacobian of a score network `s1` (full matrix); `None` for an
    /// energy model.
    pub s2_autodiff_rel_err: Option<f64>,
    /// The same on the diagonal only (to compare with a diagonal head).
    pub s2_autodiff_diag_rel_err: Option<f64>,
    /// The learned head (`full`, `diag`, `lowrank:R`) or `none`.
    pub s2_kind: String,
    /// Which entries `s2_rel_err` measures: `full` or `diagonal`.
    pub s2_error_scope: &'static str,
    /// Milliseconds to evaluate the learned `s2` on all points (one thread; dense matrices for a full
    /// head, the head's own factors otherwise).
    pub s2_learned_ms: Option<f64>,
    /// Milliseconds for the autodiff Jacobians on all points (one thread); `None` for an energy model.
    pub s2_autodiff_ms: Option<f64>,
    /// Weight `w` of the learned head in the ensemble `w S2 + (1 - w) (J + J^T)/2`, fitted on as many
    /// other points of `q_sigma` (an independent stream of the seed) against the exact `s2`; full and
    /// low-rank heads only.
    pub s2_ensemble_weight: Option<f64>,
    /// `rel_err(s2)` of that ensemble on the test points (full matrix).
    pub s2_ensemble_rel_err: Option<f64>,
    /// The third-order routes, for a model with a third-order head.
    #[serde(flatten)]
    pub third_order: Option<ThirdOrderReport>,
}

/// Median wall time in milliseconds of three runs of `f` on one thread (each estimate writes into buffers
/// that `f` keeps, so the first run warms them and the median times the computation, not page faults).
pub(super) fn timed(mut f: impl FnMut() + Send) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
    pool.install(|| {
        let mut times: Vec<f64> = (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[1]
    })
}

/// `n` points `x~ = x + sigma z` of `q_sigma`, `x ~ target`, drawn from `rng`.
fn noisy_points<R: Rng + ?Sized>(target: &GaussianMixture, sigma: f64, n: usize, rng: &mut R) -> Mat<f64> {
    let mut x = target.sample(n, rng);
    x.as_mut_slice().iter_mut().for_each(|v| *v += sigma * rng.sample::<f64, _>(StandardNormal));
    x
}

/// The exact `s1` (`n x D`) and `s2` (`n x D x D`) of the noisy marginal at the rows of `x`.
fn exact_scores(noisy: &GaussianMixture, x: &Mat<f64>) -> (Vec<f64>, Vec<f64>) {
    let (n, dim) = (x.rows(), x.cols());
    let (mut s1, mut s2) = (vec![0.0; n * dim], vec![0.0; n * dim * dim]);
    for ((x, s1), s2) in x.row_iter().zip(s1.chunks_exact_mut(dim)).zip(s2.chunks_exact_mut(dim * dim)) {
        noisy.score_and_hessian_into(x, s1, s2);
    }
    (s1, s2)
}

/// The learned dense `s2` and the autodiff `(J + J^T)/2` of `model` at the rows of `x`, in f64.
fn both_hessians(model: &ScoreModel<f32>, x: &Mat<f32>) -> Option<(Vec<f64>, Vec<f64>)> {
    let widen = |v: Vec<f32>| -> Vec<f64> { v.into_iter().map(f64::from).collect() };
    let mut jac = Vec::new();
    score_jacobian_into(&model.s1, x, true, &mut jac);
    Some((widen(model.hessian_dense(x)?), widen(jac)))
}

/// The ensemble weight of a model with a full or low-rank head, fitted on `points` fresh points of
/// `q_sigma` drawn from stream 1 of `seed` (the test points come from stream 0).
fn fitted_ensemble_weight(
    model: &ScoreModel<f32>,
    target: &GaussianMixture,
    noisy: &GaussianMixture,
    sigma: f64,
    points: usize,
    seed: u64,
) -> Option<f64> {
    if model.s2.as_ref()?.head == SecondOrderHead::Diagonal {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    let x = noisy_points(target, sigma, points, &mut rng);
    let (learned, autodiff) = both_hessians(model, &x.cast())?;
    Some(ensemble_weight(&learned, &autodiff, &exact_scores(noisy, &x).1))
}

impl ScoreReport {
    /// Evaluates `model` on `points` test points `x~ = x + sigma z`, `x ~ target`, drawn from `seed`.
    pub fn evaluate(
        model: &Model<f32>,
        target: &GaussianMixture,
        sigma: f64,
        points: usize,
        seed: u64,
    ) -> Result<ScoreReport, TargetError> {
        let dim = target.dim();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = noisy_points(target, sigma, points, &mut rng);
        let noisy = target.noisy(sigma)?;
        let (s1_true, s2_true) = exact_scores(&noisy, &x);
        let xf: Mat<f32> = x.cast();
        let widen = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a as f64).collect() };
        let s1_rel_err = relative_error(&widen(model.score(&xf).as_slice()), &s1_true);
        let Model::Score(model) = model else {
            return Ok(ScoreReport {
                points,
                sigma,
                s1_rel_err,
                s2_rel_err: None,
                s2_autodiff_rel_err: None,
                s2_autodiff_diag_rel_err: None,
                s2_kind: "none".into(),
                s2_error_scope: "full",
                s2_learned_ms: None,
                s2_autodiff_ms: None,
                s2_ensemble_weight: None,
                s2_ensemble_rel_err: None,
                third_order: None,
            });
        };
        let mut jac = Vec::new();
        let s2_autodiff_ms = timed(|| score_jacobian_into(&model.s1, &xf, true, &mut jac));
        let jac = widen(&jac);
        let head = model.s2.as_ref().map(|s| s.head);
        let diagonal = head == Some(SecondOrderHead::Diagonal);
        let (s2_rel_err, s2_learned_ms) = match &model.s2 {
            Some(s2) => {
                let (mut trace, mut dense) = (MlpTrace::default(), Vec::new());
                let ms = timed(|| {
                    if s2.head == SecondOrderHead::Full {
                        model.hessian_dense_into(&xf, &mut trace, &mut dense);
                    } else {
                        s2.net.forward_trace(&xf, xf.rows(), &mut trace);
                    }
                });
                let learned = widen(&model.hessian_dense(&xf).expect("model has a head"));
                let err = if diagonal {
                    diagonal_relative_error(&learned, &s2_true, dim)
                } else {
                    relative_error(&learned, &s2_true)
                };
                (Some(err), Some(ms))
            }
            None => (None, None),
        };
        let s2_ensemble_weight = fitted_ensemble_weight(model, target, &noisy, sigma, points, seed);
        let s2_ensemble_rel_err = s2_ensemble_weight.map(|w| {
            let learned = widen(&model.hessian_dense(&xf).expect("model has a head"));
            relative_error(&blend(&learned, &jac, w), &s2_true)
        });
        Ok(ScoreReport {
            points,
            sigma,
            s1_rel_err,
            s2_rel_err,
            s2_autodiff_rel_err: Some(relative_error(&jac, &s2_true)),
            s2_autodiff_diag_rel_err: Some(diagonal_relative_error(&jac, &s2_true, dim)),
            s2_kind: head.map_or("none".into(), |h| h.to_string()),
            s2_error_scope: if diagonal { "diagonal" } else { "full" },
            s2_learned_ms,
            s2_autodiff_ms: Some(s2_autodiff_ms),
            s2_ensemble_weight,
            s2_ensemble_rel_err,
            third_order: evaluate_third_order(model, &noisy, sigma, &x, &mut rng),
        })
    }
}

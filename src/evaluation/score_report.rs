//! Accuracy and cost of a trained model's scores against an analytic target: `s1`, the learned `s2`, and
//! the autodiff baseline `(J + J^T)/2` of the same `s1` (score networks), on test points drawn from
//! `q_sigma`, and the third-order routes of a model with a third-order head. Energy models report `s1`
//! (`-grad E`) only.

use super::relative_error::{diagonal_relative_error, relative_error};
use super::third_order_report::{evaluate_third_order, ThirdOrderReport};
use crate::estimators::score_jacobian_into;
use crate::linalg::Mat;
use crate::models::{Model, SecondOrderHead};
use crate::nn::MlpTrace;
use crate::targets::{GaussianMixture, TargetError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
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
        let mut x = target.sample(points, &mut rng);
        x.as_mut_slice().iter_mut().for_each(|v| {
            *v += sigma * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
        });
        let noisy = target.noisy(sigma)?;
        let (mut s1_true, mut s2_true) = (vec![0.0; points * dim], vec![0.0; points * dim * dim]);
        for i in 0..points {
            let (s1, s2) =
                (&mut s1_true[i * dim..(i + 1) * dim], &mut s2_true[i * dim * dim..(i + 1) * dim * dim]);
            noisy.score_and_hessian_into(x.row(i), s1, s2);
        }
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
            third_order: evaluate_third_order(model, &noisy, sigma, &x, &mut rng),
        })
    }
}

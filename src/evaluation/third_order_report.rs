//! Accuracy and cost of three routes to the third-order score `s3(x~)[v, v, v]` of a score model with a
//! third-order head (docs/math.md §4.6) against the exact `s3` of a mixture: the learned head, the
//! derivative of the learned `v^T S2 v` along `v` (one JVP of the second-order network) and the autodiff
//! route `v . d^2/dt^2 s1(x~ + t v)` (one second-order jet of `s1`), along random unit directions and
//! along the top principal direction of the exact posterior covariance `sigma^2 I + sigma^4 S2(x~)`.

use super::relative_error::relative_error;
use super::score_report::timed;
use crate::linalg::Mat;
use crate::models::{ScoreModel, ThirdOrderBuffers};
use crate::nn::{stack_jet_input, MlpTrace};
use crate::targets::GaussianMixture;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// What `tweedie eval` adds for a model with a third-order head.
#[derive(Clone, Debug, Serialize)]
pub struct ThirdOrderReport {
    /// The learned head (`cp:R` or `directional`).
    pub s3_kind: String,
    /// Root mean square of the exact `s3[v, v, v]` over the points (random unit `v`): the scale the
    /// relative errors divide by. Where the posterior is Gaussian (points near one well-separated
    /// component) `s3` vanishes, so compare the routes by their RMS errors below.
    pub s3_exact_rms: f64,
    /// Root-mean-square error of the learned `s3[v, v, v]` (random unit `v`).
    pub s3_rms_err: f64,
    /// Root-mean-square error of the JVP route (random unit `v`).
    pub s3_s2_jvp_rms_err: f64,
    /// Root-mean-square error of the autodiff route (random unit `v`).
    pub s3_autodiff_rms_err: f64,
    /// `rel_err` of the learned head's `s3[v, v, v]` over random unit `v` (one per point).
    pub s3_rel_err: f64,
    /// The same along the top principal direction of the exact posterior.
    pub s3_rel_err_top: f64,
    /// `rel_err` of `d/dt v^T S2(x~ + t v) v` of the learned `S2` (random unit `v`).
    pub s3_s2_jvp_rel_err: f64,
    /// The same along the top principal direction.
    pub s3_s2_jvp_rel_err_top: f64,
    /// `rel_err` of the autodiff route `v . d^2/dt^2 s1(x~ + t v)` (random unit `v`).
    pub s3_autodiff_rel_err: f64,
    /// The same along the top principal direction.
    pub s3_autodiff_rel_err_top: f64,
    /// Mean over points of `|skewness|` of the exact posterior along its top principal direction `e`:
    /// `sigma^6 s3[e, e, e] / (sigma^2 + sigma^4 e^T S2 e)^{3/2}` (third cumulant over variance^1.5).
    pub posterior_skewness_top: f64,
    /// Milliseconds for the learned `s3[v, v, v]` at all points (one thread).
    pub s3_learned_ms: f64,
    /// Milliseconds for the JVP route at all points (one thread).
    pub s3_s2_jvp_ms: f64,
    /// Milliseconds for the autodiff route at all points (one thread).
    pub s3_autodiff_ms: f64,
}

/// One route: `s3(x_i)[v_i, v_i, v_i]` of a model at the rows of `x` along the rows of `v`, into `out`.
type Route = fn(&mut ThirdOrderRoutes, &ScoreModel<f32>, &Mat<f32>, &Mat<f32>, &mut Vec<f32>);

/// The three routes' `s3(x_i)[v_i, v_i, v_i]` and their costs, with reusable buffers.
#[derive(Default)]
pub(crate) struct ThirdOrderRoutes {
    third: ThirdOrderBuffers<f32>,
    input: Mat<f32>,
    trace: MlpTrace<f32>,
    jet: MlpTrace<f32>,
}

impl ThirdOrderRoutes {
    /// The learned head's `s3[v, v, v]` (a model without one gives nothing).
    pub(crate) fn learned(
        &mut self,
        model: &ScoreModel<f32>,
        x: &Mat<f32>,
        v: &Mat<f32>,
        out: &mut Vec<f32>,
    ) {
        if let Some(s3) = &model.s3 {
            s3.directional_into(x, v, &mut self.third, out);
        }
    }

    /// `d/dt v^T S2(x + t v) v` from one tangent pass of the second-order network over `[x; v]`.
    pub(crate) fn s2_jvp(&mut self, model: &ScoreModel<f32>, x: &Mat<f32>, v: &Mat<f32>, out: &mut Vec<f32>) {
        let Some(s2) = &model.s2 else { return };
        let n = x.rows();
        self.input = Mat::vstack(&[x, v]);
        let raw = s2.net.forward_trace(&self.input, n, &mut self.trace);
        let (primal, tangent) = raw.as_slice().split_at(n * raw.cols());
        let rows = primal.chunks_exact(raw.cols()).zip(tangent.chunks_exact(raw.cols()));
        out.clear();
        out.extend(
            rows.zip(v.row_iter()).map(|((r, r_dot), vi)| s2.head.quadratic_form_derivative(r, r_dot, vi)),
        );
    }

    /// `v . d^2/dt^2 s1(x + t v)` from one second-order jet of `s1`.
    pub(crate) fn autodiff(
        &mut self,
        model: &ScoreModel<f32>,
        x: &Mat<f32>,
        v: &Mat<f32>,
        out: &mut Vec<f32>,
    ) {
        let n = x.rows();
        stack_jet_input(x, v, &mut self.input);
        let jet = model.s1.jet_forward_trace(&self.input, n, &mut self.jet);
        let second = &jet.as_slice()[2 * n * x.cols()..];
        out.clear();
        out.extend(
            second
                .chunks_exact(x.cols())
                .zip(v.row_iter())
                .map(|(d2, vi)| d2.iter().zip(vi).map(|(a, b)| a * b).sum::<f32>()),
        );
    }
}

/// The top eigenvector of a symmetric `D x D` matrix `s` (largest eigenvalue): power iteration on
/// `s + c I` with `c = ||s||_F` (positive semi-definite, same eigenvectors), 500 steps from a fixed start.
fn top_eigenvector(s: &[f64], dim: usize) -> Vec<f64> {
    let shift = s.iter().map(|a| a * a).sum::<f64>().sqrt();
    let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + 0.1 * i as f64).collect();
    for _ in 0..500 {
        let mut w: Vec<f64> =
            (0..dim).map(|i| shift * v[i] + (0..dim).map(|j| s[i * dim + j] * v[j]).sum::<f64>()).collect();
        let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
        w.iter_mut().for_each(|a| *a /= norm);
        v = w;
    }
    v
}

/// `sqrt(mean (a - b)^2)`.
fn root_mean_square(a: &[f64], b: &[f64]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64).sqrt()
}

/// `T[v, v, v]` of a dense `D^3` tensor.
fn contract3(t: &[f64], v: &[f64]) -> f64 {
    let dim = v.len();
    t.chunks_exact(dim * dim)
        .zip(v)
        .map(|(m, vi)| {
            vi * m
                .chunks_exact(dim)
                .zip(v)
                .map(|(row, vj)| vj * row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>())
                .sum::<f64>()
        })
        .sum()
}

/// Evaluates the three routes of `model` at the points `x~` (rows of `x`, drawn from `q_sigma` of
/// `target`), with random unit directions drawn from `rng`; `None` for a model without a third-order head.
pub fn evaluate_third_order<R: Rng + ?Sized>(
    model: &ScoreModel<f32>,
    noisy: &GaussianMixture,
    sigma: f64,
    x: &Mat<f64>,
    rng: &mut R,
) -> Option<ThirdOrderReport> {
    let s3 = model.s3.as_ref()?;
    let (n, dim) = (x.rows(), x.cols());
    let (mut s1, mut s2, mut t3) = (vec![0.0; dim], vec![0.0; dim * dim], vec![0.0; dim * dim * dim]);
    let mut random = Mat::from_fn(n, dim, |_, _| rng.sample::<f64, _>(StandardNormal));
    for row in random.as_mut_slice().chunks_exact_mut(dim) {
        let norm = row.iter().map(|a| a * a).sum::<f64>().sqrt();
        row.iter_mut().for_each(|a| *a /= norm);
    }
    let mut top = Mat::zeros(n, dim);
    let (mut exact_random, mut exact_top, mut skewness) = (Vec::new(), Vec::new(), 0.0);
    for i in 0..n {
        noisy.score_and_hessian_into(x.row(i), &mut s1, &mut s2);
        noisy.third_score_into(x.row(i), &mut t3);
        let e = top_eigenvector(&s2, dim);
        exact_random.push(contract3(&t3, random.row(i)));
        let s3_eee = contract3(&t3, &e);
        exact_top.push(s3_eee);
        let e_s2_e: f64 = (0..dim * dim).map(|k| s2[k] * e[k / dim] * e[k % dim]).sum();
        let variance = sigma * sigma + sigma.powi(4) * e_s2_e;
        skewness += (sigma.powi(6) * s3_eee / variance.powf(1.5)).abs() / n as f64;
        top.as_mut_slice()[i * dim..(i + 1) * dim].copy_from_slice(&e);
    }
    let (xf, random, top): (Mat<f32>, Mat<f32>, Mat<f32>) = (x.cast(), random.cast(), top.cast());
    let mut routes = ThirdOrderRoutes::default();
    let mut out = Vec::new();
    let widen = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a as f64).collect() };
    let mut errors = |route: Route| {
        route(&mut routes, model, &xf, &random, &mut out);
        let on_random = relative_error(&widen(&out), &exact_random);
        let rms = root_mean_square(&widen(&out), &exact_random);
        route(&mut routes, model, &xf, &top, &mut out);
        let on_top = relative_error(&widen(&out), &exact_top);
        let ms = timed(|| route(&mut routes, model, &xf, &random, &mut out));
        (on_random, on_top, ms, rms)
    };
    let learned = errors(ThirdOrderRoutes::learned);
    let jvp = errors(ThirdOrderRoutes::s2_jvp);
    let autodiff = errors(ThirdOrderRoutes::autodiff);
    Some(ThirdOrderReport {
        s3_kind: s3.head.to_string(),
        s3_exact_rms: root_mean_square(&exact_random, &vec![0.0; n]),
        s3_rms_err: learned.3,
        s3_s2_jvp_rms_err: jvp.3,
        s3_autodiff_rms_err: autodiff.3,
        s3_rel_err: learned.0,
        s3_rel_err_top: learned.1,
        s3_s2_jvp_rel_err: jvp.0,
        s3_s2_jvp_rel_err_top: jvp.1,
        s3_autodiff_rel_err: autodiff.0,
        s3_autodiff_rel_err_top: autodiff.1,
        posterior_skewness_top: skewness,
        s3_learned_ms: learned.2,
        s3_s2_jvp_ms: jvp.2,
        s3_autodiff_ms: autodiff.2,
    })
}

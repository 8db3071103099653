//! The third-order term inside a D2SM step (docs/math.md §4.6): the sliced D3SM loss of the third-order
//! network at `x~` along random unit directions `v`, its target built from the detached `s1(x~)` and
//! `S2(x~)` of the same step, and its reverse pass (into the third-order network only).

use crate::linalg::{Mat, Real};
use crate::models::{SecondOrderHead, ThirdOrderNet};
use crate::nn::MlpTrace;
use crate::objectives::{d3sm_loss, D3smBatch};

/// The buffers of the third-order term (allocated once per run).
#[derive(Clone, Debug, Default)]
pub(super) struct ThirdOrderWorkspace<F> {
    directions: Vec<F>,
    u: Vec<F>,
    v_s2_v: Vec<F>,
    dense: Vec<F>,
    input: Mat<F>,
    trace: MlpTrace<F>,
    predictions: Vec<F>,
    g_pred: Vec<F>,
    g_raw: Mat<F>,
}

/// What the third-order term reads from its D2SM step, `n` points of dimension `D`.
pub(super) struct ThirdOrderInputs<'a, F> {
    /// Dimension `D`.
    pub dim: usize,
    /// Noise level.
    pub sigma: F,
    /// The points `x~ = x + sigma z`, `n x D`.
    pub x_noisy: &'a [F],
    /// The noise `z`, `n x D`.
    pub noise: &'a [F],
    /// `s1(x~)` (detached), `n x D`.
    pub s1_noisy: &'a [F],
    /// The second-order head and its raw outputs at `x~` (detached), `n` rows.
    pub s2: (SecondOrderHead, &'a [F]),
    /// The `n x D` normal draws the unit directions are made from.
    pub draws: &'a [F],
}

/// Unit directions `v = g / |g|` (uniform on the unit sphere) from rows of normal draws `g`; a zero row
/// (probability zero) gives the first basis vector.
pub(crate) fn unit_directions_into<F: Real>(draws: &[F], dim: usize, out: &mut Vec<F>) {
    out.clear();
    for g in draws.chunks_exact(dim) {
        let norm = g.iter().map(|a| *a * *a).sum::<F>().sqrt();
        if norm > F::zero() {
            out.extend(g.iter().map(|a| *a / norm));
        } else {
            out.extend((0..dim).map(|d| if d == 0 { F::one() } else { F::zero() }));
        }
    }
}

/// `v^T S v` of a dense row-major `D x D` matrix.
fn quadratic_form<F: Real>(s: &[F], v: &[F]) -> F {
    s.chunks_exact(v.len())
        .zip(v)
        .map(|(row, vi)| *vi * row.iter().zip(v).map(|(a, b)| *a * *b).sum::<F>())
        .sum()
}

/// Adds the D3SM loss `mean_n (s3(x~_n)[v_n, v_n, v_n] - t_n)^2` of `s3` to a step; ADDS its parameter
/// gradient into `grad` and returns the term.
pub(super) fn add_third_order<F: Real>(
    s3: &ThirdOrderNet<F>,
    inputs: &ThirdOrderInputs<F>,
    grad: &mut ThirdOrderNet<F>,
    ws: &mut ThirdOrderWorkspace<F>,
) -> F {
    let dim = inputs.dim;
    let n = inputs.x_noisy.len() / dim;
    unit_directions_into(inputs.draws, dim, &mut ws.directions);
    ws.u.clear();
    ws.u.extend(inputs.noise.iter().zip(inputs.s1_noisy).map(|(z, s)| *z + inputs.sigma * *s));
    let (head, s2_raw) = inputs.s2;
    ws.dense.resize(dim * dim, F::zero());
    ws.v_s2_v.clear();
    for (raw, v) in s2_raw.chunks_exact(head.outputs(dim)).zip(ws.directions.chunks_exact(dim)) {
        head.dense_into(raw, dim, &mut ws.dense);
        ws.v_s2_v.push(quadratic_form(&ws.dense, v));
    }
    s3.input_into(inputs.x_noisy, &ws.directions, dim, &mut ws.input);
    let raw = s3.net.forward_trace(&ws.input, n, &mut ws.trace);
    s3.contract_into(raw, &ws.directions, &mut ws.predictions);
    let batch =
        D3smBatch { dim, sigma: inputs.sigma, u: &ws.u, directions: &ws.directions, v_s2_v: &ws.v_s2_v };
    ws.g_pred.resize(n, F::zero());
    let loss = d3sm_loss(&batch, &ws.predictions, F::one(), &mut ws.g_pred);
    s3.contract_backprop(raw, &ws.directions, &ws.g_pred, &mut ws.g_raw);
    s3.net.reverse(&ws.input, &mut ws.trace, &ws.g_raw, &mut grad.net, None);
    loss
}

#[cfg(test)]
mod tests {
    use super::super::step::{loss_and_gradient, StepWorkspace};
    use super::*;
    use crate::models::{CpThirdOrderHead, ModelShape, ScoreModel, ThirdOrderBuffers, ThirdOrderHead};
    use crate::nn::Activation;
    use crate::objectives::{third_order_target, D2smForm, Objective};
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    const HEADS: [ThirdOrderHead; 2] =
        [ThirdOrderHead::Cp(CpThirdOrderHead { rank: 2 }), ThirdOrderHead::Directional];

    /// A small model with a low-rank `s2` head and the third-order head `head`.
    fn model(head: ThirdOrderHead, seed: u64) -> ScoreModel<f64> {
        let s2 = Some(SecondOrderHead::LowRank { rank: 2 });
        let shape = ModelShape { dim: 3, width: 5, depth: 2, activation: Activation::Softplus, head: s2 };
        let mut rng = test_rng(seed);
        ScoreModel::init(&shape, &mut rng).with_third_order(head, &mut rng)
    }

    #[test]
    fn the_third_order_gradient_matches_finite_differences_and_leaves_s1_and_s2_detached() {
        let (n, dim, sigma) = (4, 3, 0.6);
        for (head, (form, couple)) in HEADS.into_iter().zip([(D2smForm::B, 0.7), (D2smForm::A, 0.0)]) {
            let model = model(head, 21);
            let with = Objective::SecondOrder { form, weight: 2.0, couple, third_order: true };
            let without = Objective::SecondOrder { form, weight: 2.0, couple, third_order: false };
            let mut rng = test_rng(22);
            let x = normal_mat(n, dim, &mut rng);
            let z = normal_mat(with.noise_rows(n), dim, &mut rng);
            let mut ws = StepWorkspace::new(&model);
            let total = loss_and_gradient(&model, with, sigma, &x, &z, &mut ws).unwrap();
            let got = ws.grad.params().concat();
            let k = model.num_params() - model.s3.as_ref().unwrap().net.num_params();
            let theta = model.params().concat();
            let loss_at = |q: &[f64]| {
                let mut m = model.clone();
                m.set_params(&[&theta[..k], q].concat());
                loss_and_gradient(&m, with, sigma, &x, &z, &mut StepWorkspace::new(&m)).unwrap()
            };
            let what = format!("{head}");
            assert_close(&got[k..], &fd_gradient(loss_at, &theta[k..], 1e-6), 1e-6, &what);
            // The s1 and S2 gradients are those of the step without the third-order term on the same
            // draws (the first rows of z): the D3SM target detaches them.
            let z_lower = z.slice_rows(0, without.noise_rows(n));
            let lower = loss_and_gradient(&model, without, sigma, &x, &z_lower, &mut ws).unwrap();
            assert_close(&got[..k], &ws.grad.params().concat()[..k], 1e-12, &what);
            // The term itself, from its definition: v = g / |g| (the last n rows of z), u = z + sigma s1(x~).
            let noisy = Mat::from_fn(n, dim, |i, j| x.at(i, j) + sigma * z.at(i, j));
            let (s1, s2) = (model.score(&noisy), model.hessian_dense(&noisy).unwrap());
            let draws = z.slice_rows(z.rows() - n, z.rows());
            let mut v = Vec::new();
            unit_directions_into(draws.as_slice(), dim, &mut v);
            let mut learned = Vec::new();
            let s3 = model.s3.as_ref().unwrap();
            s3.directional_into(
                &noisy,
                &Mat::from_vec(n, dim, v.clone()),
                &mut ThirdOrderBuffers::default(),
                &mut learned,
            );
            let want: f64 = (0..n)
                .map(|i| {
                    let vi = &v[i * dim..(i + 1) * dim];
                    let u: Vec<f64> = (0..dim).map(|j| z.at(i, j) + sigma * s1.at(i, j)).collect();
                    let t = third_order_target(
                        sigma,
                        &u,
                        vi,
                        quadratic_form(&s2[i * dim * dim..(i + 1) * dim * dim], vi),
                    );
                    (learned[i] - t).powi(2)
                })
                .sum::<f64>()
                / n as f64;
            assert!(want > 1e-3, "{what}: a vacuous term {want}");
            assert_close(&[total - lower], &[want], 1e-9, &what);
        }
    }
}

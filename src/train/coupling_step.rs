//! The consistency coupling inside a D2SM step (docs/math.md §4.5): one extra `s1` pass over
//! `[x~; v]` whose tangent rows are `J_s1(x~) v`, the coupling's cotangents, and its reverse pass.

use super::sliced_step::directions_into;
use crate::linalg::{Mat, Real};
use crate::models::SecondOrderHead;
use crate::nn::{Mlp, MlpTrace};
use crate::objectives::{coupling_loss, CouplingBatch, Projection};

/// The buffers of the coupling pass (allocated once per run).
#[derive(Clone, Debug, Default)]
pub(super) struct CouplingWorkspace<F> {
    input: Mat<F>,
    trace: MlpTrace<F>,
    g_out: Mat<F>,
}

/// Adds `lambda mean ||S2(x~) v - J_s1(x~) v||^2` to a D2SM step: `x_noisy` holds the `n` points `x~`,
/// `draws` the `n x D` normal draws the Rademacher directions `v` are made from, `s2_raw` the head
/// outputs at `x~`. ADDS the head cotangent into `g_s2_raw` and the `s1` parameter gradient into
/// `grad_s1`; returns the term.
#[allow(clippy::too_many_arguments)]
pub(super) fn add_coupling<F: Real>(
    s1: &Mlp<F>,
    head: SecondOrderHead,
    lambda: F,
    x_noisy: &[F],
    draws: &[F],
    s2_raw: &[F],
    g_s2_raw: &mut [F],
    grad_s1: &mut Mlp<F>,
    ws: &mut CouplingWorkspace<F>,
) -> F {
    let dim = s1.inputs();
    let block = x_noisy.len();
    let n = block / dim;
    ws.input.resize(2 * n, dim);
    let (points, directions) = ws.input.as_mut_slice().split_at_mut(block);
    points.copy_from_slice(x_noisy);
    directions_into(Projection::Rademacher, draws, dim, directions);
    let out = s1.forward_trace(&ws.input, n, &mut ws.trace);
    ws.g_out.resize(2 * n, dim);
    let (g_primal, g_tangent) = ws.g_out.as_mut_slice().split_at_mut(block);
    g_primal.iter_mut().for_each(|g| *g = F::zero());
    let batch = CouplingBatch {
        head,
        dim,
        s2_raw,
        directions: &ws.input.as_slice()[block..],
        jvp: &out.as_slice()[block..],
    };
    let loss = coupling_loss(&batch, lambda, g_s2_raw, g_tangent);
    s1.reverse(&ws.input, &mut ws.trace, &ws.g_out, grad_s1, None);
    loss
}

#[cfg(test)]
mod tests {
    use super::super::step::{loss_and_gradient, StepWorkspace};
    use crate::linalg::Mat;
    use crate::models::{ModelShape, ScoreModel, SecondOrderHead};
    use crate::nn::Activation;
    use crate::objectives::{D2smForm, Objective};
    use crate::testing::{normal_mat, test_rng};

    #[test]
    fn the_coupled_step_adds_lambda_times_the_mean_squared_gap_between_s2_v_and_the_jacobian_of_s1() {
        let (n, dim, sigma, lambda) = (4, 3, 0.5, 0.8);
        let heads = [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }];
        for (head, form) in heads.into_iter().zip([D2smForm::A, D2smForm::B, D2smForm::AVr]) {
            let mut rng = test_rng(12);
            let shape =
                ModelShape { dim, width: 6, depth: 2, activation: Activation::Softplus, head: Some(head) };
            let model = ScoreModel::<f64>::init(&shape, &mut rng);
            let coupled = Objective::SecondOrder { form, weight: 1.0, couple: lambda, third_order: false };
            let x = normal_mat(n, dim, &mut rng);
            let z = normal_mat(coupled.noise_rows(n), dim, &mut rng);
            let mut ws = StepWorkspace::new(&model);
            let with = loss_and_gradient(&model, coupled, sigma, &x, &z, &mut ws).unwrap();
            let uncoupled = Objective::SecondOrder { form, weight: 1.0, couple: 0.0, third_order: false };
            let without = loss_and_gradient(&model, uncoupled, sigma, &x, &z, &mut ws).unwrap();
            // The definition: v = sign(z row n + i), S2 dense, J_s1 v by central differences (error
            // O(h^2) ~ 1e-10 with h = 1e-5).
            let noisy = Mat::from_fn(n, dim, |i, j| x.at(i, j) + sigma * z.at(i, j));
            let s2 = model.hessian_dense(&noisy).unwrap();
            let h = 1e-5;
            let mut want = 0.0;
            for i in 0..n {
                let v: Vec<f64> = (0..dim).map(|j| if z.at(n + i, j) < 0.0 { -1.0 } else { 1.0 }).collect();
                let shifted = |sign: f64| Mat::from_fn(1, dim, |_, j| noisy.at(i, j) + sign * h * v[j]);
                let (plus, minus) = (model.score(&shifted(1.0)), model.score(&shifted(-1.0)));
                for a in 0..dim {
                    let jv = (plus.at(0, a) - minus.at(0, a)) / (2.0 * h);
                    let s2v: f64 = (0..dim).map(|b| s2[i * dim * dim + a * dim + b] * v[b]).sum();
                    want += (s2v - jv).powi(2);
                }
            }
            want *= lambda / n as f64;
            assert!(want > 1e-3, "{head}: a vacuous coupling {want}");
            assert!(
                ((with - without) - want).abs() < 1e-7 * (1.0 + want),
                "{head}: {} vs {want}",
                with - without
            );
        }
    }
}

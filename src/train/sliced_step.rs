//! One training step of the score-matching objectives on a score network (SSM, SSM-VR, ESM, FD-SSM):
//! stack the evaluation points and directions, one forward pass (with tangents), the objective's
//! cotangents, one reverse pass through primal and tangent streams (docs/math.md §6 and §8.3).
//!
//! SSM and ESM are linear in the output tangents `s_dot` with a cotangent free of them, so their forward
//! pass is contracted ([`Mlp::forward_trace_contracted`]): the last layer maps no tangent rows, and the
//! loss's term in `s_dot` is read from the reverse pass.

use crate::linalg::{Mat, Real};
use crate::nn::{Mlp, MlpTrace};
use crate::objectives::{
    basis_directions_into, esm_loss, fd_directions_into, fd_ssm_loss, ssm_loss, Objective, Projection,
    ScoreMatching, SlicedScores,
};

/// The reusable buffers a step writes into.
pub(super) struct Buffers<'a, F> {
    pub input: &'a mut Mat<F>,
    pub trace: &'a mut MlpTrace<F>,
    pub g_out: &'a mut Mat<F>,
    pub scratch: &'a mut Mat<F>,
}

/// Writes `x~ = x + sigma z` (the first `n` rows of `z`) into `out`.
pub(super) fn perturb_into<F: Real>(x: &[F], z: &[F], sigma: F, out: &mut [F]) {
    for ((o, x), z) in out.iter_mut().zip(x).zip(z) {
        *o = *x + sigma * *z;
    }
}

/// Writes the `M n` directions of an SSM step from the normal draws `z` (rows `n ..` of the step's `z`).
pub(super) fn directions_into<F: Real>(projection: Projection, z: &[F], dim: usize, out: &mut [F]) {
    for (z_row, v_row) in z.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        projection.from_normal_into(z_row, v_row);
    }
}

/// The loss of a score-matching objective on the score network `s1`; ADDS its parameter gradient into
/// `grad` (the caller zeroes it). See [`super::step::loss_and_gradient`] for the layout of `z`.
#[track_caller]
pub(super) fn sliced_loss_and_gradient<F: Real>(
    s1: &Mlp<F>,
    kind: ScoreMatching,
    sigma: F,
    x: &Mat<F>,
    z: &Mat<F>,
    buffers: Buffers<'_, F>,
    grad: &mut Mlp<F>,
) -> F {
    let (n, dim) = (x.rows(), x.cols());
    let block = n * dim;
    let objective = Objective::ScoreMatching(kind);
    assert!(
        z.rows() == objective.noise_rows(n) && z.cols() == dim,
        "{}: z is {}x{}, expected {}x{dim} (Objective::noise_rows)",
        objective.name(),
        z.rows(),
        z.cols(),
        objective.noise_rows(n)
    );
    let Buffers { input, trace, g_out, scratch } = buffers;
    let (noise, draws) = z.as_slice().split_at(block);
    let (loss, contracted) = match kind {
        ScoreMatching::Ssm { .. } | ScoreMatching::Esm => {
            // [x~; v]: n primal rows, then the directions as tangents.
            let m = if kind == ScoreMatching::Esm { dim } else { draws.len() / block };
            input.resize(n * (1 + m), dim);
            let (head, tail) = input.as_mut_slice().split_at_mut(block);
            perturb_into(x.as_slice(), noise, sigma, head);
            let variance_reduced = match kind {
                ScoreMatching::Ssm { projection, variance_reduced, .. } => {
                    directions_into(projection, draws, dim, tail);
                    variance_reduced
                }
                _ => {
                    basis_directions_into(n, dim, tail);
                    false
                }
            };
            let s = &s1.forward_trace_contracted(input, n, trace).as_slice()[..block];
            g_out.resize(input.rows(), dim);
            let (g_s, g_dot) = g_out.as_mut_slice().split_at_mut(block);
            let loss = if kind == ScoreMatching::Esm {
                esm_loss(s, None, n, g_s, g_dot)
            } else {
                let v = &input.as_slice()[block..];
                ssm_loss(&SlicedScores { dim, points: n, s, v, s_dot: None }, variance_reduced, g_s, g_dot)
            };
            (loss, true)
        }
        ScoreMatching::FdSsm { eps } => {
            // [x~ + v; x~ - v]: 2n primal rows, no tangents.
            let eps = F::of(eps);
            scratch.resize(n, dim);
            fd_directions_into(draws, dim, eps, scratch.as_mut_slice());
            input.resize(2 * n, dim);
            let (plus, minus) = input.as_mut_slice().split_at_mut(block);
            perturb_into(x.as_slice(), noise, sigma, plus);
            minus.copy_from_slice(plus);
            for ((p, m), v) in plus.iter_mut().zip(minus.iter_mut()).zip(scratch.as_slice()) {
                *p += *v;
                *m -= *v;
            }
            let out = s1.forward_trace(input, 2 * n, trace);
            g_out.resize(out.rows(), dim);
            let (a, b) = out.as_slice().split_at(block);
            let (g_a, g_b) = g_out.as_mut_slice().split_at_mut(block);
            (fd_ssm_loss(a, b, scratch.as_slice(), eps, dim, g_a, g_b), false)
        }
    };
    s1.reverse(input, trace, g_out, grad, None);
    if contracted {
        loss + trace.output_tangent_dot()
    } else {
        loss
    }
}

#[cfg(test)]
mod tests {
    use crate::linalg::Mat;
    use crate::models::{ModelShape, ScoreModel};
    use crate::nn::Activation;
    use crate::objectives::Projection;
    use crate::objectives::{Objective, ScoreMatching};
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};
    use crate::train::step::{loss_and_gradient, StepWorkspace};

    fn objectives() -> Vec<Objective> {
        let mut all: Vec<Objective> = Projection::ALL
            .into_iter()
            .flat_map(|projection| {
                [false, true].map(|variance_reduced| {
                    Objective::ScoreMatching(ScoreMatching::Ssm {
                        projections: 2,
                        projection,
                        variance_reduced,
                    })
                })
            })
            .collect();
        all.extend([
            Objective::ScoreMatching(ScoreMatching::Esm),
            Objective::ScoreMatching(ScoreMatching::FdSsm { eps: 0.3 }),
        ]);
        all
    }

    #[test]
    fn parameter_gradients_match_finite_differences() {
        for objective in objectives() {
            for sigma in [0.0, 0.4] {
                let mut rng = test_rng(101);
                let shape =
                    ModelShape { dim: 3, width: 5, depth: 2, activation: Activation::Softplus, head: None };
                let model = ScoreModel::<f64>::init(&shape, &mut rng);
                let x = normal_mat(4, 3, &mut rng);
                let z = normal_mat(objective.noise_rows(4), 3, &mut rng);
                let mut ws = StepWorkspace::new(&model);
                loss_and_gradient(&model, objective, sigma, &x, &z, &mut ws).unwrap();
                let loss_at = |p: &[f64]| {
                    let mut m = model.clone();
                    m.set_params(p);
                    loss_and_gradient(&m, objective, sigma, &x, &z, &mut StepWorkspace::new(&m)).unwrap()
                };
                let fd = fd_gradient(loss_at, &model.params().concat(), 1e-6);
                assert_close(&ws.grad.params().concat(), &fd, 1e-6, &format!("{objective:?} sigma={sigma}"));
            }
        }
    }

    #[test]
    fn ssm_over_signed_basis_directions_equals_esm_with_the_same_gradient() {
        // Sphere directions from z = +-e_d are v = +-sqrt(D) e_d; all 2D of them per point give ESM.
        let (n, d) = (3, 4);
        let mut rng = test_rng(102);
        let shape = ModelShape { dim: d, width: 6, depth: 2, activation: Activation::Tanh, head: None };
        let model = ScoreModel::<f64>::init(&shape, &mut rng);
        let x = normal_mat(n, d, &mut rng);
        let noise = normal_mat(n, d, &mut rng);
        let signed = crate::testing::signed_basis_directions(n, d);
        let z = Mat::vstack(&[&noise, &signed]);
        let mut ws = StepWorkspace::new(&model);
        let esm =
            loss_and_gradient(&model, Objective::ScoreMatching(ScoreMatching::Esm), 0.3, &x, &noise, &mut ws)
                .unwrap();
        let esm_grad = ws.grad.params().concat();
        for variance_reduced in [false, true] {
            let ssm = Objective::ScoreMatching(ScoreMatching::Ssm {
                projections: 2 * d,
                projection: Projection::Sphere,
                variance_reduced,
            });
            let loss = loss_and_gradient(&model, ssm, 0.3, &x, &z, &mut ws).unwrap();
            assert!((loss - esm).abs() < 1e-12 * (1.0 + esm.abs()), "SSM {loss} vs ESM {esm}");
            assert_close(&ws.grad.params().concat(), &esm_grad, 1e-12, "SSM vs ESM gradient");
        }
    }
}

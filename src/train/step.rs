//! One training step's loss and parameter gradient: forward passes over stacked evaluation points,
//! the objective's cotangents, and reverse passes through both networks.

use super::coupling_step::{add_coupling, CouplingWorkspace};
use super::sliced_step::{sliced_loss_and_gradient, Buffers};
use super::third_order_step::{add_third_order, ThirdOrderInputs, ThirdOrderWorkspace};
use crate::linalg::{Mat, Real};
use crate::models::{ModelKind, ScoreModel, SecondOrderNet, ThirdOrderNet};
use crate::nn::{Mlp, MlpTrace};
use crate::objectives::{d2sm_loss, dsm_loss, dsm_vr_loss, D2smBatch, D2smForm, Objective, ObjectiveError};

/// Buffers reused by every step (allocated once per run).
#[derive(Clone, Debug)]
pub struct StepWorkspace<F> {
    input: Mat<F>,
    s2_input: Mat<F>,
    s1_trace: MlpTrace<F>,
    s2_trace: MlpTrace<F>,
    g_s1: Mat<F>,
    g_s2: Mat<F>,
    coupling: CouplingWorkspace<F>,
    third: ThirdOrderWorkspace<F>,
    /// The parameter gradient of the last step.
    pub grad: ScoreModel<F>,
}

impl<F: Real> StepWorkspace<F> {
    /// A workspace for `model`.
    pub fn new(model: &ScoreModel<F>) -> Self {
        Self {
            input: Mat::default(),
            s2_input: Mat::default(),
            s1_trace: MlpTrace::default(),
            s2_trace: MlpTrace::default(),
            g_s1: Mat::default(),
            g_s2: Mat::default(),
            coupling: CouplingWorkspace::default(),
            third: ThirdOrderWorkspace::default(),
            grad: model.zeros_like(),
        }
    }
}

/// Fills `out` with the evaluation points `x + sign sigma z` stacked by rows, one block per sign: `[x~]`
/// (DSM), `[x~; x]` (DSM-VR, forms A and B), `[x + sigma z; x - sigma z; x]` (A-VR).
fn stack_points<F: Real>(signs: &[F], x: &Mat<F>, z: &Mat<F>, sigma: F, out: &mut Mat<F>) {
    let block = x.as_slice().len();
    out.resize(x.rows() * signs.len(), x.cols());
    for (e, sign) in signs.iter().enumerate() {
        let dst = &mut out.as_mut_slice()[e * block..(e + 1) * block];
        for ((o, xi), zi) in dst.iter_mut().zip(x.as_slice()).zip(z.as_slice()) {
            *o = *xi + *sign * sigma * *zi;
        }
    }
}

/// The batch loss of `objective` at clean points `x` (`n x D`) with noise `z`; leaves the parameter
/// gradient in `ws.grad`.
///
/// `z` holds standard normal draws, [`Objective::noise_rows`] rows of `D`: the DSM family reads `n`
/// rows of noise; the score-matching objectives (SSM, ESM, FD-SSM) read `n` rows of noise for
/// `x~ = x + sigma z` (ignored when `sigma = 0`) followed by the normal draws their directions are made
/// from ([`Projection::from_normal_into`](crate::objectives::Projection::from_normal_into)), so every
/// random draw of a step is in `z`. Coupled D2SM (`couple > 0`) reads `n` rows of noise, then the `n`
/// rows its Rademacher directions are made from; with the third-order term, `n` more rows its unit
/// directions are made from.
///
/// # Errors
/// [`ObjectiveError::WrongModel`] for the second-order objective on a model without an `s2` head.
#[track_caller]
pub fn loss_and_gradient<F: Real>(
    model: &ScoreModel<F>,
    objective: Objective,
    sigma: F,
    x: &Mat<F>,
    z: &Mat<F>,
    ws: &mut StepWorkspace<F>,
) -> Result<F, ObjectiveError> {
    ws.grad.params_mut().into_iter().for_each(|p| p.iter_mut().for_each(|v| *v = F::zero()));
    Ok(match objective {
        Objective::Dsm => denoising(&model.s1, false, sigma, x, z, ws),
        Objective::DsmVr => denoising(&model.s1, true, sigma, x, z, ws),
        Objective::SecondOrder { form, weight, couple, third_order } => match (&model.s2, &model.s3) {
            (Some(s2), s3) if s3.is_some() || !third_order => {
                let s3 = s3.as_ref().filter(|_| third_order);
                second_order(&model.s1, s2, s3, form, (F::of(weight), F::of(couple)), sigma, x, z, ws)
            }
            (s2, _) => {
                let kind = if s2.is_some() { ModelKind::S1s2 } else { ModelKind::S1 };
                return Err(objective.wrong_model(kind));
            }
        },
        Objective::ScoreMatching(kind) => {
            let (input, trace, g_s1) = (&mut ws.input, &mut ws.s1_trace, &mut ws.g_s1);
            let buffers = Buffers { input, trace, g_out: g_s1, scratch: &mut ws.s2_input };
            sliced_loss_and_gradient(&model.s1, kind, sigma, x, z, buffers, &mut ws.grad.s1)
        }
    })
}

/// DSM (`[x~]`) or DSM-VR (`[x~; x]`) on `s1` (docs/math.md §3).
fn denoising<F: Real>(
    s1: &Mlp<F>,
    variance_reduced: bool,
    sigma: F,
    x: &Mat<F>,
    z: &Mat<F>,
    ws: &mut StepWorkspace<F>,
) -> F {
    let (n, dim) = (x.rows(), x.cols());
    let signs: &[F] = if variance_reduced { &[F::one(), F::zero()] } else { &[F::one()] };
    stack_points(signs, x, z, sigma, &mut ws.input);
    let rows = ws.input.rows();
    let out = s1.forward_trace(&ws.input, rows, &mut ws.s1_trace);
    ws.g_s1.resize(rows, dim);
    let (zs, s) = (z.as_slice(), out.as_slice());
    let g = ws.g_s1.as_mut_slice();
    let loss = if variance_reduced {
        let (g_noisy, g_clean) = g.split_at_mut(n * dim);
        dsm_vr_loss(&s[..n * dim], &s[n * dim..], zs, sigma, n, F::one(), g_noisy, g_clean)
    } else {
        dsm_loss(s, zs, sigma, n, F::one(), g)
    };
    s1.reverse(&ws.input, &mut ws.s1_trace, &ws.g_s1, &mut ws.grad.s1, None);
    loss
}

/// The joint objective `w L1vr / sigma^2 + L2(form) + lambda L_c` on `s1` and the head `s2`
/// (docs/math.md §4): `s1` at `[x~; x]` (A-VR: `[x + sigma z; x - sigma z; x]`), `S2` at `x~` (A-VR:
/// all three); the coupling `L_c` (§4.5, only when `lambda > 0`) adds one `s1` pass at `[x~; v]`; the
/// third-order network `s3`, if given, adds its D3SM term (§4.6) on the detached `s1(x~)` and `S2(x~)`.
#[allow(clippy::too_many_arguments)]
fn second_order<F: Real>(
    s1: &Mlp<F>,
    s2: &SecondOrderNet<F>,
    s3: Option<&ThirdOrderNet<F>>,
    form: D2smForm,
    (weight, couple): (F, F),
    sigma: F,
    x: &Mat<F>,
    z: &Mat<F>,
    ws: &mut StepWorkspace<F>,
) -> F {
    let (n, dim) = (x.rows(), x.cols());
    let block = n * dim;
    let signs: &[F] = match form {
        D2smForm::A | D2smForm::B | D2smForm::Likelihood { .. } => &[F::one(), F::zero()],
        D2smForm::AVr => &[F::one(), -F::one(), F::zero()],
    };
    stack_points(signs, x, z, sigma, &mut ws.input);
    let rows = ws.input.rows();
    let out = s1.forward_trace(&ws.input, rows, &mut ws.s1_trace);
    ws.g_s1.resize(rows, dim);
    let (zs, draws) = z.as_slice().split_at(block);
    let s1v = out.as_slice();
    let g1 = ws.g_s1.as_mut_slice();
    let w = weight / (sigma * sigma);
    // The clean point is the last block in every stacking.
    let clean = rows / n - 1;
    let (s1_noisy, s1_clean) = (&s1v[..block], &s1v[clean * block..]);
    g1.iter_mut().for_each(|v| *v = F::zero());
    let (head, g_clean) = g1.split_at_mut(clean * block);
    let first = dsm_vr_loss(s1_noisy, s1_clean, zs, sigma, n, w, &mut head[..block], g_clean);
    // Forms A and B evaluate S2 at x~ only; A-VR at x+, x-, x.
    let s2_rows = if form == D2smForm::AVr { rows } else { n };
    ws.s2_input.resize(s2_rows, dim);
    ws.s2_input.as_mut_slice().copy_from_slice(&ws.input.as_slice()[..s2_rows * dim]);
    let raw = s2.net.forward_trace(&ws.s2_input, s2_rows, &mut ws.s2_trace);
    ws.g_s2.resize(raw.rows(), raw.cols());
    let batch =
        D2smBatch { head: s2.head, dim, sigma, z: zs, s2_raw: raw.as_slice(), s1: &s1v[..s2_rows * dim] };
    let second = d2sm_loss(form, &batch, F::one(), ws.g_s2.as_mut_slice(), &mut g1[..s2_rows * dim]);
    let (x_noisy, s2_raw) = (&ws.input.as_slice()[..block], &raw.as_slice()[..n * raw.cols()]);
    let coupled = if couple > F::zero() {
        let g_s2_raw = &mut ws.g_s2.as_mut_slice()[..n * raw.cols()];
        let draws = &draws[..block];
        add_coupling(s1, s2.head, couple, x_noisy, draws, s2_raw, g_s2_raw, &mut ws.grad.s1, &mut ws.coupling)
    } else {
        F::zero()
    };
    let third = match s3 {
        Some(s3) => {
            let draws = &draws[draws.len() - block..];
            let inputs =
                ThirdOrderInputs { dim, sigma, x_noisy, noise: zs, s1_noisy, s2: (s2.head, s2_raw), draws };
            let grad = ws.grad.s3.get_or_insert_with(|| s3.zeros_like());
            add_third_order(s3, &inputs, grad, &mut ws.third)
        }
        None => F::zero(),
    };
    let grad_s2 = ws.grad.s2.get_or_insert_with(|| s2.zeros_like());
    s2.net.reverse(&ws.s2_input, &mut ws.s2_trace, &ws.g_s2, &mut grad_s2.net, None);
    s1.reverse(&ws.input, &mut ws.s1_trace, &ws.g_s1, &mut ws.grad.s1, None);
    first + second + coupled + third
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ModelShape, SecondOrderHead};
    use crate::nn::Activation;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn parameter_gradients_match_finite_differences_for_every_objective() {
        let first = [(Objective::Dsm, None), (Objective::DsmVr, None)];
        let heads = [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }];
        let forms = [D2smForm::A, D2smForm::B, D2smForm::AVr];
        let second = heads.iter().flat_map(|&h| {
            forms.into_iter().flat_map(move |form| {
                [0.0, 0.7].map(|couple| {
                    (Objective::SecondOrder { form, weight: 2.0, couple, third_order: false }, Some(h))
                })
            })
        });
        for (objective, head) in first.into_iter().chain(second) {
            let mut rng = test_rng(8);
            let shape = ModelShape { dim: 3, width: 5, depth: 2, activation: Activation::Softplus, head };
            let model = ScoreModel::<f64>::init(&shape, &mut rng);
            let x = normal_mat(4, 3, &mut rng);
            let z = normal_mat(objective.noise_rows(4), 3, &mut rng);
            let sigma = 0.6;
            let mut ws = StepWorkspace::new(&model);
            loss_and_gradient(&model, objective, sigma, &x, &z, &mut ws).unwrap();
            let got = ws.grad.params().concat();
            let theta = model.params().concat();
            let loss_at = |p: &[f64]| {
                let mut m = model.clone();
                m.set_params(p);
                loss_and_gradient(&m, objective, sigma, &x, &z, &mut StepWorkspace::new(&m)).unwrap()
            };
            let what = format!("{objective:?} {head:?}");
            if let Objective::SecondOrder { form: D2smForm::B, weight, .. } = objective {
                // Form B detaches s1 inside L2B: s1 gets the gradients of the first-order term and of the
                // coupling (the loss less its uncoupled value on the same draws), S2 the full one.
                let k = model.s1.num_params();
                let uncoupled =
                    Objective::SecondOrder { form: D2smForm::B, weight, couple: 0.0, third_order: false };
                let coupling_at = |p: &[f64]| {
                    let mut m = model.clone();
                    m.set_params(&[p, &theta[k..]].concat());
                    let mut ws = StepWorkspace::new(&m);
                    loss_and_gradient(&m, objective, sigma, &x, &z, &mut ws).unwrap()
                        - loss_and_gradient(&m, uncoupled, sigma, &x, &z, &mut ws).unwrap()
                };
                let fd_s2 = fd_gradient(|q| loss_at(&[&theta[..k], q].concat()), &theta[k..], 1e-6);
                assert_close(&got[k..], &fd_s2, 1e-6, &what);
                // The first-order term written out from its definition with the s1 network alone:
                // (w / sigma^2) mean_n sum_d [(s1(x~) + z/sigma)^2 - 2 s1(x) z/sigma - (z/sigma)^2].
                let noisy = Mat::from_fn(4, 3, |i, j| x.at(i, j) + sigma * z.at(i, j));
                let first_order = |p: &[f64]| {
                    let mut m = model.clone();
                    m.set_params(&[p, &theta[k..]].concat());
                    let (s_noisy, s_clean) = (m.score(&noisy), m.score(&x));
                    let sum: f64 = (0..4)
                        .flat_map(|i| (0..3).map(move |j| (i, j)))
                        .map(|(i, j)| {
                            let zs = z.at(i, j) / sigma;
                            (s_noisy.at(i, j) + zs).powi(2) - 2.0 * s_clean.at(i, j) * zs - zs * zs
                        })
                        .sum();
                    weight / (sigma * sigma) * sum / 4.0
                };
                let fd_s1: Vec<f64> = fd_gradient(first_order, &theta[..k], 1e-6)
                    .iter()
                    .zip(fd_gradient(coupling_at, &theta[..k], 1e-6))
                    .map(|(a, b)| a + b)
                    .collect();
                assert_close(&got[..k], &fd_s1, 1e-6, &what);
            } else {
                assert_close(&got, &fd_gradient(loss_at, &theta, 1e-6), 1e-6, &what);
            }
        }
    }
}

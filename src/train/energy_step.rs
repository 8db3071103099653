//! One training step of an energy model `E(x)` (`s = -grad_x E`) under every first-order objective:
//! DSM and DSM-VR through the input gradient written as a forward computation, SSM through second-order
//! jets along the directions, SSM-VR through both, ESM through jets along the `D` basis directions, and
//! FD-SSM through plain evaluations (docs/math.md §7.2).
//!
//! # Costs (stacked rows through the network, `n` points, `M` directions)
//! DSM `n` (value + backward chain, then their reverse: about 3 forward passes), DSM-VR `2n`, SSM
//! `n (1 + 2M)` jet rows, SSM-VR the same plus one input-gradient pass, ESM `n (1 + 2D)` jet rows,
//! FD-SSM `3n`.

use super::sliced_step::{directions_into, perturb_into};
use crate::linalg::{Mat, Real};
use crate::models::{EnergyModel, ModelKind};
use crate::nn::{stack_jet_input, InputGradientTrace, MlpTrace};
use crate::objectives::{
    basis_directions_into, dsm_loss, dsm_vr_loss, esm_energy_loss, fd_directions_into, fd_ssm_energy_loss,
    ssm_energy_loss, ssm_vr_energy_loss, Objective, ObjectiveError, ScoreMatching,
};

/// Buffers reused by every energy-model step (allocated once per run).
#[derive(Clone, Debug)]
pub struct EnergyWorkspace<F> {
    points: Mat<F>,
    directions: Mat<F>,
    input: Mat<F>,
    jet_trace: MlpTrace<F>,
    g_jet: Mat<F>,
    gradient_trace: InputGradientTrace<F>,
    scores: Mat<F>,
    g_scores: Mat<F>,
    plain_trace: MlpTrace<F>,
    g_plain: Mat<F>,
    phi1: Vec<F>,
    phi2: Vec<F>,
    /// The parameter gradient of the last step.
    pub grad: EnergyModel<F>,
}

impl<F: Real> EnergyWorkspace<F> {
    /// A workspace for `model`.
    pub fn new(model: &EnergyModel<F>) -> Self {
        Self {
            points: Mat::default(),
            directions: Mat::default(),
            input: Mat::default(),
            jet_trace: MlpTrace::default(),
            g_jet: Mat::default(),
            gradient_trace: InputGradientTrace::default(),
            scores: Mat::default(),
            g_scores: Mat::default(),
            plain_trace: MlpTrace::default(),
            g_plain: Mat::default(),
            phi1: Vec::new(),
            phi2: Vec::new(),
            grad: model.zeros_like(),
        }
    }
}

/// Runs the input-gradient pass at `points` and writes the model scores `s = -(grad f + lambda x)`.
fn scores_at<F: Real>(
    model: &EnergyModel<F>,
    points: &Mat<F>,
    trace: &mut InputGradientTrace<F>,
    scores: &mut Mat<F>,
) {
    let (_, gradient) = model.net.input_gradient_trace(points, trace);
    scores.resize(points.rows(), points.cols());
    let lambda = model.lambda();
    for ((s, g), x) in scores.as_mut_slice().iter_mut().zip(gradient.as_slice()).zip(points.as_slice()) {
        *s = -(*g + lambda * *x);
    }
}

/// The batch loss of `objective` for the energy model at clean points `x` (`n x D`) with standard
/// normal draws `z` ([`Objective::noise_rows`] rows, laid out as for
/// [`loss_and_gradient`](super::step::loss_and_gradient)); leaves the parameter gradient in `ws.grad`.
///
/// # Errors
/// [`ObjectiveError::WrongModel`] for the second-order objective, which trains score networks only.
#[track_caller]
pub fn energy_loss_and_gradient<F: Real>(
    model: &EnergyModel<F>,
    objective: Objective,
    sigma: F,
    x: &Mat<F>,
    z: &Mat<F>,
    ws: &mut EnergyWorkspace<F>,
) -> Result<F, ObjectiveError> {
    let (n, dim) = (x.rows(), x.cols());
    let block = n * dim;
    assert_eq!(dim, model.dim(), "energy step: points have {dim} columns, the model {}", model.dim());
    assert!(
        z.rows() == objective.noise_rows(n) && z.cols() == dim,
        "{}: z is {}x{}, expected {}x{dim} (Objective::noise_rows)",
        objective.name(),
        z.rows(),
        z.cols(),
        objective.noise_rows(n)
    );
    ws.grad.params_mut().into_iter().for_each(|p| p.iter_mut().for_each(|v| *v = F::zero()));
    let lambda = model.lambda();
    let (noise, draws) = z.as_slice().split_at(block);
    let zs = z.as_slice();
    Ok(match objective {
        Objective::Dsm | Objective::DsmVr => {
            // Scores at x~ (and at the clean x for the control variate) from the input-gradient pass.
            let copies = if objective == Objective::Dsm { 1 } else { 2 };
            ws.points.resize(copies * n, dim);
            let (noisy, clean) = ws.points.as_mut_slice().split_at_mut(block);
            perturb_into(x.as_slice(), noise, sigma, noisy);
            clean.copy_from_slice(&x.as_slice()[..clean.len()]);
            scores_at(model, &ws.points, &mut ws.gradient_trace, &mut ws.scores);
            ws.g_scores.resize(copies * n, dim);
            let s = ws.scores.as_slice();
            let g = ws.g_scores.as_mut_slice();
            let loss = if objective == Objective::Dsm {
                dsm_loss(s, zs, sigma, n, F::one(), g)
            } else {
                let (g_noisy, g_clean) = g.split_at_mut(block);
                dsm_vr_loss(&s[..block], &s[block..], zs, sigma, n, F::one(), g_noisy, g_clean)
            };
            reverse_through_scores(model, ws);
            loss
        }
        Objective::ScoreMatching(ScoreMatching::Ssm { .. })
        | Objective::ScoreMatching(ScoreMatching::Esm) => {
            ws.points.resize(n, dim);
            perturb_into(x.as_slice(), noise, sigma, ws.points.as_mut_slice());
            if let Objective::ScoreMatching(ScoreMatching::Ssm { projection, .. }) = objective {
                ws.directions.resize(draws.len() / dim, dim);
                directions_into(projection, draws, dim, ws.directions.as_mut_slice());
            } else {
                ws.directions.resize(dim * n, dim);
                basis_directions_into(n, dim, ws.directions.as_mut_slice());
            }
            let m = ws.directions.rows() / n;
            stack_jet_input(&ws.points, &ws.directions, &mut ws.input);
            let out = model.net.jet_forward_trace(&ws.input, n, &mut ws.jet_trace);
            // Output jets of the network plus those of the base term: phi' += lambda x.v, phi'' += lambda ||v||^2.
            let (phi1, phi2) = (&mut ws.phi1, &mut ws.phi2);
            phi1.clear();
            phi1.extend_from_slice(&out.as_slice()[n..n + m * n]);
            phi2.clear();
            phi2.extend_from_slice(&out.as_slice()[n + m * n..]);
            for (k, v) in ws.directions.row_iter().enumerate() {
                let xv: F = ws.points.row(k % n).iter().zip(v).map(|(a, b)| *a * *b).sum();
                let vv: F = v.iter().map(|a| *a * *a).sum();
                phi1[k] += lambda * xv;
                phi2[k] += lambda * vv;
            }
            ws.g_jet.resize(n * (1 + 2 * m), 1);
            ws.g_jet.fill_zero();
            let (_, g_rest) = ws.g_jet.as_mut_slice().split_at_mut(n);
            let (g1, g2) = g_rest.split_at_mut(m * n);
            let loss = match objective {
                Objective::ScoreMatching(ScoreMatching::Esm) => {
                    esm_energy_loss(&phi1[..], &phi2[..], n, g1, g2)
                }
                Objective::ScoreMatching(ScoreMatching::Ssm { variance_reduced: false, .. }) => {
                    ssm_energy_loss(&phi1[..], &phi2[..], g1, g2)
                }
                _variance_reduced => {
                    scores_at(model, &ws.points, &mut ws.gradient_trace, &mut ws.scores);
                    ws.g_scores.resize(n, dim);
                    // ||grad E||^2 = ||s||^2; the cotangent of grad f is that of grad E.
                    let loss = ssm_vr_energy_loss(
                        &phi2[..],
                        ws.scores.as_slice(),
                        n,
                        g2,
                        ws.g_scores.as_mut_slice(),
                    );
                    reverse_through_scores(model, ws);
                    loss
                }
            };
            model.net.reverse(&ws.input, &mut ws.jet_trace, &ws.g_jet, &mut ws.grad.net, None);
            loss
        }
        Objective::ScoreMatching(ScoreMatching::FdSsm { eps }) => {
            let eps = F::of(eps);
            ws.directions.resize(n, dim);
            fd_directions_into(draws, dim, eps, ws.directions.as_mut_slice());
            // [x~ + v; x~ - v; x~].
            ws.input.resize(3 * n, dim);
            let (plus, rest) = ws.input.as_mut_slice().split_at_mut(block);
            let (minus, center) = rest.split_at_mut(block);
            perturb_into(x.as_slice(), noise, sigma, center);
            for ((p, m), (c, v)) in
                plus.iter_mut().zip(minus.iter_mut()).zip(center.iter().zip(ws.directions.as_slice()))
            {
                *p = *c + *v;
                *m = *c - *v;
            }
            let out = model.net.forward_trace(&ws.input, 3 * n, &mut ws.plain_trace);
            let energies = &mut ws.phi1;
            energies.clear();
            energies.extend(
                out.as_slice().iter().zip(ws.input.row_iter()).map(|(f, row)| *f + model.base_energy(row)),
            );
            ws.g_plain.resize(3 * n, 1);
            let (g_plus, g_rest) = ws.g_plain.as_mut_slice().split_at_mut(n);
            let (g_minus, g_center) = g_rest.split_at_mut(n);
            let (e_plus, e_rest) = energies.split_at(n);
            let (e_minus, e_center) = e_rest.split_at(n);
            let loss = fd_ssm_energy_loss(e_plus, e_minus, e_center, eps, dim, g_plus, g_minus, g_center);
            model.net.reverse(&ws.input, &mut ws.plain_trace, &ws.g_plain, &mut ws.grad.net, None);
            loss
        }
        Objective::SecondOrder { .. } => return Err(objective.wrong_model(ModelKind::Energy)),
    })
}

/// Back-propagates `ws.g_scores` (the cotangent of the scores `s = -grad f`) through the input-gradient
/// pass into the parameter gradient: `d loss / d grad f = -d loss / d s`.
fn reverse_through_scores<F: Real>(model: &EnergyModel<F>, ws: &mut EnergyWorkspace<F>) {
    ws.g_scores.as_mut_slice().iter_mut().for_each(|v| *v = -*v);
    model.net.input_gradient_reverse(
        &ws.points,
        &mut ws.gradient_trace,
        None,
        &ws.g_scores,
        &mut ws.grad.net,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::EnergyShape;
    use crate::nn::Activation;
    use crate::objectives::Projection;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    fn model(dim: usize, activation: Activation, lambda: f64, seed: u64) -> EnergyModel<f64> {
        let shape = EnergyShape { dim, width: 5, depth: 2, activation, base_precision: lambda };
        let mut m = EnergyModel::init(&shape, &mut test_rng(seed));
        let theta: Vec<f64> = m.params().concat().iter().map(|p| p + 0.05).collect();
        m.set_params(&theta);
        m
    }

    fn objectives() -> Vec<Objective> {
        let mut all = vec![
            Objective::Dsm,
            Objective::DsmVr,
            Objective::ScoreMatching(ScoreMatching::Esm),
            Objective::ScoreMatching(ScoreMatching::FdSsm { eps: 0.3 }),
        ];
        for projection in Projection::ALL {
            for variance_reduced in [false, true] {
                all.push(Objective::ScoreMatching(ScoreMatching::Ssm {
                    projections: 2,
                    projection,
                    variance_reduced,
                }));
            }
        }
        all
    }

    #[test]
    fn parameter_gradients_match_finite_differences() {
        for objective in objectives() {
            for (activation, lambda) in [(Activation::Softplus, 0.0), (Activation::Tanh, 0.7)] {
                let model = model(3, activation, lambda, 111);
                let mut rng = test_rng(112);
                let x = normal_mat(4, 3, &mut rng);
                let z = normal_mat(objective.noise_rows(4), 3, &mut rng);
                let sigma = 0.4;
                let mut ws = EnergyWorkspace::new(&model);
                energy_loss_and_gradient(&model, objective, sigma, &x, &z, &mut ws).unwrap();
                let loss_at = |p: &[f64]| {
                    let mut m = model.clone();
                    m.set_params(p);
                    energy_loss_and_gradient(&m, objective, sigma, &x, &z, &mut EnergyWorkspace::new(&m))
                        .unwrap()
                };
                let fd = fd_gradient(loss_at, &model.params().concat(), 1e-6);
                assert_close(&ws.grad.params().concat(), &fd, 1e-6, &format!("{objective:?} {activation:?}"));
            }
        }
    }

    /// ESM of the energy model computed the slow way: the trace of the finite-difference Hessian and
    /// the squared score, per point.
    fn esm_by_finite_differences(model: &EnergyModel<f64>, x: &Mat<f64>) -> f64 {
        let (n, d, h) = (x.rows(), x.cols(), 1e-4);
        let energy = |p: &[f64]| model.energy(&Mat::from_vec(1, d, p.to_vec()))[0];
        let mut total = 0.0;
        for i in 0..n {
            let row = x.row(i).to_vec();
            let s = model.score(&x.slice_rows(i, i + 1)).into_vec();
            let mut laplacian = 0.0;
            for j in 0..d {
                let mut up = row.clone();
                up[j] += h;
                let mut down = row.clone();
                down[j] -= h;
                laplacian += (energy(&up) - 2.0 * energy(&row) + energy(&down)) / (h * h);
            }
            total += -laplacian + 0.5 * s.iter().map(|v| v * v).sum::<f64>();
        }
        total / n as f64
    }

    #[test]
    fn esm_matches_finite_differences_and_ssm_over_signed_basis_directions_equals_it() {
        let (n, d) = (3, 4);
        let model = model(d, Activation::Silu, 0.5, 113);
        let mut rng = test_rng(114);
        let x = normal_mat(n, d, &mut rng);
        let noise = Mat::zeros(n, d);
        let mut ws = EnergyWorkspace::new(&model);
        let esm = energy_loss_and_gradient(
            &model,
            Objective::ScoreMatching(ScoreMatching::Esm),
            0.0,
            &x,
            &noise,
            &mut ws,
        )
        .unwrap();
        let slow = esm_by_finite_differences(&model, &x);
        assert!((esm - slow).abs() < 1e-5 * (1.0 + slow.abs()), "ESM {esm} vs finite differences {slow}");
        let esm_grad = ws.grad.params().concat();
        let signed = crate::testing::signed_basis_directions(n, d);
        let z = Mat::vstack(&[&noise, &signed]);
        for variance_reduced in [false, true] {
            let ssm = Objective::ScoreMatching(ScoreMatching::Ssm {
                projections: 2 * d,
                projection: Projection::Sphere,
                variance_reduced,
            });
            let loss = energy_loss_and_gradient(&model, ssm, 0.0, &x, &z, &mut ws).unwrap();
            assert!((loss - esm).abs() < 1e-12 * (1.0 + esm.abs()), "SSM {loss} vs ESM {esm}");
            assert_close(&ws.grad.params().concat(), &esm_grad, 1e-12, "SSM vs ESM gradient");
        }
        // FD-SSM approaches the same objective as the step shrinks (bias O(eps^2), averaged over v).
        let mut fd_mean = 0.0;
        let reps = 400;
        for _ in 0..reps {
            let z = Mat::vstack(&[&noise, &normal_mat(n, d, &mut rng)]);
            fd_mean += energy_loss_and_gradient(
                &model,
                Objective::ScoreMatching(ScoreMatching::FdSsm { eps: 1e-2 }),
                0.0,
                &x,
                &z,
                &mut ws,
            )
            .unwrap()
                / reps as f64;
        }
        assert!((fd_mean - esm).abs() < 0.1 * (1.0 + esm.abs()), "FD-SSM mean {fd_mean} vs ESM {esm}");
    }

    #[test]
    fn ssm_and_ssm_vr_on_a_network_energy_are_unbiased_for_esm() {
        // Average K independent SSM losses (M directions each) and compare with ESM within 5 standard
        // errors of the mean.
        let (n, d, m, k) = (4, 3, 50, 40);
        let model = model(d, Activation::Softplus, 0.3, 115);
        let mut rng = test_rng(116);
        let x = normal_mat(n, d, &mut rng);
        let noise = Mat::zeros(n, d);
        let mut ws = EnergyWorkspace::new(&model);
        let esm = energy_loss_and_gradient(
            &model,
            Objective::ScoreMatching(ScoreMatching::Esm),
            0.0,
            &x,
            &noise,
            &mut ws,
        )
        .unwrap();
        for projection in Projection::ALL {
            for variance_reduced in [false, true] {
                let objective = Objective::ScoreMatching(ScoreMatching::Ssm {
                    projections: m,
                    projection,
                    variance_reduced,
                });
                let losses: Vec<f64> = (0..k)
                    .map(|_| {
                        let z = Mat::vstack(&[&noise, &normal_mat(m * n, d, &mut rng)]);
                        energy_loss_and_gradient(&model, objective, 0.0, &x, &z, &mut ws).unwrap()
                    })
                    .collect();
                let mean = losses.iter().sum::<f64>() / k as f64;
                let var = losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
                let se = (var / k as f64).sqrt();
                assert!(
                    (mean - esm).abs() < 5.0 * se + 1e-12,
                    "{objective:?}: {mean} vs ESM {esm} (se {se})"
                );
            }
        }
    }
}

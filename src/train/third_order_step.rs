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
    use crate::models::{ModelShape, ScoreModel, ThirdOrderBuffers, ThirdOrderHead};
    use crate::nn::Activation;
    use crate::objectives::{third_order_target, D2smForm, Objective};
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    const HEADS: [ThirdOrderHead; 2] = [ThirdOrderHead::Cp { rank: 2 }, ThirdOrderHead::Directional];

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

    /// Solves the symmetric positive definite system `a x = b` (`k x k`, Gaussian elimination).
    fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
        let k = b.len();
        for c in 0..k {
            for r in c + 1..k {
                let f = a[r * k + c] / a[c * k + c];
                (c..k).for_each(|j| a[r * k + j] -= f * a[c * k + j]);
                b[r] -= f * b[c];
            }
        }
        for c in (0..k).rev() {
            b[c] = (b[c] - (c + 1..k).map(|j| a[c * k + j] * b[j]).sum::<f64>()) / a[c * k + c];
        }
        b
    }

    #[test]
    fn training_on_the_d3sm_loss_recovers_s3_of_a_mixture_within_its_standard_error() {
        // At x~ = 0 between the two components of 0.8 N((-1, 0), 0.2 I) + 0.2 N((1, 0), 0.2 I) (sigma 0.5:
        // s3[e1, e1, e1] = 8.4, a skewed posterior; s3 is non-zero only along e1), x drawn from the exact
        // posterior, the exact s1 and S2 in the target: the empirical D3SM loss over symmetric tensors T
        // is least squares of the targets on the four cubic features of v, whose solution has the
        // standard error sqrt(phi^T (Phi^T Phi)^-1 phi) * residual sd along phi = phi(v). A CP head (rank 2
        // + diagonal spans every symmetric 2 x 2 x 2 tensor) of a network trained full-batch by Adam must
        // land within 4 standard errors of the exact s3[v,v,v] (plus 0.5 for the optimiser's slack).
        let (sigma, n, dim) = (0.5, 8000, 2);
        let covariance = Mat::from_vec(2, 2, vec![0.2, 0.0, 0.0, 0.2]);
        let means = vec![vec![-1.0, 0.0], vec![1.0, 0.0]];
        let mixture =
            crate::targets::GaussianMixture::new(vec![0.8, 0.2], means, vec![covariance; 2]).unwrap();
        let noisy = mixture.noisy(sigma).unwrap();
        let x_tilde = [0.0, 0.0];
        let (mut s1, mut s2, mut t3) = (vec![0.0; 2], vec![0.0; 4], vec![0.0; 8]);
        noisy.score_and_hessian_into(&x_tilde, &mut s1, &mut s2);
        noisy.third_score_into(&x_tilde, &mut t3);
        let mut rng = test_rng(31);
        let x = mixture.posterior(&x_tilde, sigma).unwrap().sample(n, &mut rng);
        let noise: Vec<f64> =
            (0..n * dim).map(|k| (x_tilde[k % dim] - x.at(k / dim, k % dim)) / sigma).collect();
        let draws = normal_mat(n, dim, &mut rng).into_vec();
        let x_noisy: Vec<f64> = (0..n * dim).map(|k| x_tilde[k % dim]).collect();
        let s1_noisy: Vec<f64> = (0..n * dim).map(|k| s1[k % dim]).collect();
        let s2_raw: Vec<f64> = (0..n).flat_map(|_| [s2[0], s2[1], s2[3]]).collect();
        let inputs = ThirdOrderInputs {
            dim,
            sigma,
            x_noisy: &x_noisy,
            noise: &noise,
            s1_noisy: &s1_noisy,
            s2: (SecondOrderHead::Full, &s2_raw),
            draws: &draws,
        };
        // Least squares on phi(v) = (v0^3, 3 v0^2 v1, 3 v0 v1^2, v1^3).
        let mut v = Vec::new();
        unit_directions_into(&draws, dim, &mut v);
        let phi =
            |v: &[f64]| [v[0].powi(3), 3.0 * v[0] * v[0] * v[1], 3.0 * v[0] * v[1] * v[1], v[1].powi(3)];
        let targets: Vec<f64> = (0..n)
            .map(|i| {
                let (u, vi) = (&noise[i * dim..(i + 1) * dim], &v[i * dim..(i + 1) * dim]);
                let u: Vec<f64> = u.iter().zip(&s1).map(|(z, s)| z + sigma * s).collect();
                third_order_target(sigma, &u, vi, quadratic_form(&s2, vi))
            })
            .collect();
        let (mut gram, mut rhs) = (vec![0.0; 16], vec![0.0; 4]);
        for (i, t) in targets.iter().enumerate() {
            let f = phi(&v[i * dim..(i + 1) * dim]);
            (0..16).for_each(|k| gram[k] += f[k / 4] * f[k % 4]);
            (0..4).for_each(|k| rhs[k] += f[k] * t);
        }
        let fit = solve(gram.clone(), rhs);
        let residual_var = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (t - phi(&v[i * dim..(i + 1) * dim]).iter().zip(&fit).map(|(a, b)| a * b).sum::<f64>())
                    .powi(2)
            })
            .sum::<f64>()
            / (n - 4) as f64;
        // Train a CP head on the same draws.
        let head = ThirdOrderHead::Cp { rank: 2 };
        let mut rng = test_rng(32);
        let shape = ModelShape { dim, width: 8, depth: 1, activation: Activation::Softplus, head: None };
        let model = ScoreModel::<f64>::init(&shape, &mut rng).with_third_order(head, &mut rng);
        let mut s3 = model.s3.unwrap();
        let mut grad = s3.zeros_like();
        let mut adam = crate::optim::Adam::new(
            crate::optim::AdamSettings { learning_rate: 0.03, ..Default::default() },
            s3.net.num_params(),
        );
        let mut ws = ThirdOrderWorkspace::default();
        for _ in 0..1500 {
            grad.net.params_mut().into_iter().for_each(|p| p.iter_mut().for_each(|g| *g = 0.0));
            add_third_order(&s3, &inputs, &mut grad, &mut ws);
            adam.step(s3.net.params_mut(), grad.net.params());
        }
        for v in [[1.0, 0.0], [0.8, -0.6], [0.8, 0.6]] {
            let f = phi(&v);
            let exact = contract(&t3, &v);
            // phi^T G^-1 phi by solving G y = phi.
            let y = solve(gram.clone(), f.to_vec());
            let se = (residual_var * f.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>()).sqrt();
            let mut learned = Vec::new();
            let point = Mat::from_vec(1, dim, x_tilde.to_vec());
            s3.directional_into(
                &point,
                &Mat::from_vec(1, dim, v.to_vec()),
                &mut ThirdOrderBuffers::default(),
                &mut learned,
            );
            assert!(exact.abs() > 5.0 * se, "s3[v,v,v] = {exact} must be clearly non-zero (se {se})");
            assert!(
                (learned[0] - exact).abs() < 4.5 * se,
                "v = {v:?}: learned {} vs exact {exact} (se {se})",
                learned[0]
            );
        }
    }

    /// `T[v, v, v]` of a dense `D^3` tensor.
    fn contract(t: &[f64], v: &[f64]) -> f64 {
        let dim = v.len();
        (0..dim * dim * dim).map(|k| t[k] * v[k / (dim * dim)] * v[(k / dim) % dim] * v[k % dim]).sum()
    }
}

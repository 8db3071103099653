//! One training step of a U-Net image score model: DSM on its `s1` maps, and with a second-order head
//! D2SM (form A or B) on the head's maps, each row at its own noise level; the parameter gradient as
//! the networks' flat vectors.

use crate::linalg::{Mat, Real};
use crate::models::ImageScoreModel;
use crate::nn::graph::GraphTrace;
use crate::objectives::{d2sm_loss, dsm_loss, D2smBatch, D2smForm, Objective, ObjectiveError};

/// Buffers reused by every step of an image model (allocated once per run).
#[derive(Clone, Debug, Default)]
pub struct ImageWorkspace<F> {
    noisy: Mat<F>,
    trace: GraphTrace<F>,
    s2_trace: GraphTrace<F>,
    s1: Mat<F>,
    g_s1: Mat<F>,
    raw: Mat<F>,
    g_raw: Mat<F>,
    g_out: Mat<F>,
    g_s2_out: Mat<F>,
    /// Per-row noise levels drawn for the next step (see `ModelWorkspace::draw_noise_levels`).
    pub(crate) levels: Vec<F>,
    /// The parameter gradient of the last step, laid out like [`ImageScoreModel::params`].
    pub grad: Vec<Vec<F>>,
}

impl<F: Real> ImageWorkspace<F> {
    /// A workspace for `model`, its gradient sized like the model's parameters (the buffer the shards'
    /// gradients are summed into, `sharded_step.rs`).
    pub fn new(model: &ImageScoreModel<F>) -> Self {
        Self { grad: model.params().iter().map(|p| vec![F::zero(); p.len()]).collect(), ..Self::default() }
    }
}

/// The objectives an image model trains by: DSM for `s1` alone, D2SM form A or B (no coupling) with a
/// second-order head; the D2SM form and first-order weight `w`.
fn image_objective(objective: Objective) -> Result<Option<(D2smForm, f64)>, ObjectiveError> {
    match objective {
        Objective::Dsm => Ok(None),
        Objective::SecondOrder { third_order: true, .. } => {
            Err(ObjectiveError::ImageModel { objective: "d2sm with a third-order head" })
        }
        Objective::SecondOrder {
            form: form @ (D2smForm::A | D2smForm::B | D2smForm::Likelihood { .. }),
            weight,
            couple,
            ..
        } => {
            if couple == 0.0 {
                Ok(Some((form, weight)))
            } else {
                Err(ObjectiveError::ImageModel { objective: "d2sm with coupling" })
            }
        }
        Objective::SecondOrder { form: D2smForm::AVr, .. } => {
            Err(ObjectiveError::ImageModel { objective: "d2sm-vr" })
        }
        other => Err(ObjectiveError::ImageModel { objective: other.name() }),
    }
}

/// The image loss at `x~_i = x_i + sigma_i z_i`, the network conditioned on `log sigma_i` (docs/math.md
/// §3.1, §4, §8.10): with `rho_i = sigma_i / sigma_max` (1 for a single-sigma model),
/// `s1` alone: `mean_i rho_i^2 ||s1(x~_i) + z_i / sigma_i||^2`;
/// with a head: `mean_i rho_i^4 (w L1_i / sigma_i^2 + L2_i(form))`, the point-cloud objective per row;
/// the likelihood fit's `L2_i` is the residual's NLL in nats per value, unweighted at every level
/// (`mean_i (rho_i^4 w L1_i / sigma_i^2 + NLL_i)`, docs/math.md §4.7).
/// Leaves the parameter gradient in `ws.grad`.
///
/// # Errors
/// [`ObjectiveError::ImageModel`] for an objective an image model does not train by;
/// [`ObjectiveError::WrongModel`] for D2SM on a model without a head.
// Row `i` indexes the noise levels and several row-major buffers in step.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub fn image_loss_and_gradient<F: Real>(
    model: &ImageScoreModel<F>,
    objective: Objective,
    sigmas: &[F],
    sigma_max: F,
    x: &Mat<F>,
    z: &Mat<F>,
    ws: &mut ImageWorkspace<F>,
) -> Result<F, ObjectiveError> {
    let second = image_objective(objective)?;
    let head = match (second, model.head_layout()) {
        (Some(_), None) => {
            return Err(ObjectiveError::WrongModel {
                objective: "d2sm",
                model: crate::models::ModelKind::S1,
                expected: "s1s2 (--s2 diag or lowrank:R)",
            })
        }
        (_, head) => head,
    };
    let (n, dim) = (x.rows(), x.cols());
    ws.noisy.resize(n, dim);
    for i in 0..n {
        let sigma = sigmas[i];
        for ((o, xi), zi) in ws.noisy.row_mut(i).iter_mut().zip(x.row(i)).zip(z.row(i)) {
            *o = *xi + sigma * *zi;
        }
    }
    let log_sigma: Vec<F> = sigmas.iter().map(|s| s.ln()).collect();
    let out = model.net.forward(&ws.noisy, n, &log_sigma, &mut ws.trace);
    let layout = model.score_layout();
    ws.s1.resize(n, dim);
    ws.g_s1.resize(n, dim);
    for i in 0..n {
        layout.read_s1(out.row(i), ws.s1.row_mut(i));
    }
    let scale = F::one() / F::of(n as f64);
    let rho = |i: usize| sigmas[i] / sigma_max;
    let mut loss = F::zero();
    match (second, head) {
        (Some((form, w)), Some((head, head_layout))) => {
            let carrier = model.s2_net().map(|net| net.forward(&ws.noisy, n, &log_sigma, &mut ws.s2_trace));
            let maps = carrier.unwrap_or(out);
            ws.raw.resize(n, head.outputs(dim));
            ws.g_raw.resize(n, head.outputs(dim));
            for i in 0..n {
                head_layout.read_head(maps.row(i), ws.raw.row_mut(i));
            }
            for i in 0..n {
                let (sigma, r4) = (sigmas[i], rho(i).powi(4));
                let g_s1 = ws.g_s1.row_mut(i);
                loss +=
                    dsm_loss(ws.s1.row(i), z.row(i), sigma, 1, scale * r4 * F::of(w) / (sigma * sigma), g_s1);
                let batch =
                    D2smBatch { head, dim, sigma, z: z.row(i), s2_raw: ws.raw.row(i), s1: ws.s1.row(i) };
                let head_weight =
                    if matches!(form, D2smForm::Likelihood { .. }) { scale } else { scale * r4 };
                loss += d2sm_loss(form, &batch, head_weight, ws.g_raw.row_mut(i), g_s1);
            }
        }
        _ => {
            for i in 0..n {
                let g_s1 = ws.g_s1.row_mut(i);
                loss += dsm_loss(ws.s1.row(i), z.row(i), sigmas[i], 1, scale * rho(i).powi(2), g_s1);
            }
        }
    }
    ws.grad.resize_with(model.params().len(), Vec::new);
    for (g, p) in ws.grad.iter_mut().zip(model.params()) {
        g.clear();
        g.resize(p.len(), F::zero());
    }
    let shared = second.is_some() && model.s2_net().is_none();
    ws.g_out.resize(n, model.net.output_shape().len());
    ws.g_out.fill_zero();
    for i in 0..n {
        layout.write_s1(ws.g_s1.row(i), ws.g_out.row_mut(i));
        if let (true, Some((_, head_layout))) = (shared, head) {
            head_layout.write_head(ws.g_raw.row(i), ws.g_out.row_mut(i));
        }
    }
    model.net.reverse(&mut ws.trace, &ws.g_out, &mut ws.grad[0], None);
    if let (Some(_), Some(net), Some((_, head_layout))) = (second, model.s2_net(), head) {
        ws.g_s2_out.resize(n, net.output_shape().len());
        ws.g_s2_out.fill_zero();
        for i in 0..n {
            head_layout.write_head(ws.g_raw.row(i), ws.g_s2_out.row_mut(i));
        }
        net.reverse(&mut ws.s2_trace, &ws.g_s2_out, &mut ws.grad[1], None);
    }
    Ok(loss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{DiagonalLink, HeadLayout, SecondOrderHead};
    use crate::nn::graph::{Shape, UNetConfig};
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng, tiny_unet};

    /// The step's loss and its flat gradient at `theta` (all networks' parameters, concatenated).
    fn step(
        model: &ImageScoreModel<f64>,
        objective: Objective,
        sigmas: &[f64],
        x: &Mat<f64>,
        z: &Mat<f64>,
    ) -> (f64, Vec<f64>) {
        let mut ws = ImageWorkspace::default();
        let loss = image_loss_and_gradient(model, objective, sigmas, 0.9, x, z, &mut ws).unwrap();
        (loss, ws.grad.concat())
    }

    fn with_params(model: &ImageScoreModel<f64>, theta: &[f64]) -> ImageScoreModel<f64> {
        let mut m = model.clone();
        crate::nn::copy_from_flat(m.params_mut(), theta);
        m
    }

    #[test]
    fn dsm_gradient_matches_finite_differences() {
        // Per-row noise levels: row i weighted by (sigma_i / 0.9)^2. s1 from score_at, row by row.
        let model = ImageScoreModel::init(&tiny_unet(Shape::new(4, 4, 2)), 0.7, &mut test_rng(30)).unwrap();
        let mut rng = test_rng(31);
        let (x, z) = (normal_mat(3, 32, &mut rng), normal_mat(3, 32, &mut rng));
        let sigmas = [0.9, 0.5, 0.2];
        let (loss, grad) = step(&model, Objective::Dsm, &sigmas, &x, &z);
        let loss_at = |theta: &[f64]| {
            let m = with_params(&model, theta);
            let mut total = 0.0;
            for (i, &sigma) in sigmas.iter().enumerate() {
                let noisy = Mat::from_fn(1, 32, |_, j| x.at(i, j) + sigma * z.at(i, j));
                let s = m.score_at(&noisy, sigma);
                let sq: f64 = (0..32).map(|j| (s.at(0, j) + z.at(i, j) / sigma).powi(2)).sum();
                total += (sigma / 0.9f64).powi(2) * sq / 3.0;
            }
            total
        };
        let theta = model.params().concat();
        assert_close(&[loss], &[loss_at(&theta)], 1e-12, "loss");
        assert_close(&grad, &fd_gradient(loss_at, &theta, 1e-6), 1e-6, "gradient");
    }

    #[test]
    fn d2sm_step_matches_its_definition_and_finite_differences() {
        // 4x4 images of 2 channels (the channel interleaving of the maps), a diagonal and a rank-2 head,
        // both layouts, forms A and B, per-row noise levels. The value from the model's public readers
        // (score_at, second_order_at) and the closed forms of d2sm_loss (themselves checked against
        // dense matrices), weighted (sigma_i / 0.9)^4 (the likelihood term unweighted); forms B and the
        // likelihood detach s1 in their targets, so their s1 there is frozen at the unperturbed parameters.
        let (dim, w) = (32, 3.0);
        let mut rng = test_rng(33);
        let (x, z) = (normal_mat(2, dim, &mut rng), normal_mat(2, dim, &mut rng));
        let sigmas = [0.9, 0.4];
        for (k, (head, layout, form)) in [
            (SecondOrderHead::Diagonal, HeadLayout::Shared, D2smForm::A),
            (SecondOrderHead::LowRank { rank: 2 }, HeadLayout::Shared, D2smForm::B),
            (SecondOrderHead::LowRank { rank: 2 }, HeadLayout::Separate, D2smForm::A),
            (SecondOrderHead::Diagonal, HeadLayout::Separate, D2smForm::B),
            (SecondOrderHead::LowRank { rank: 2 }, HeadLayout::Separate, D2smForm::Likelihood { pcs: 1 }),
            (SecondOrderHead::Diagonal, HeadLayout::Shared, D2smForm::Likelihood { pcs: 0 }),
        ]
        .into_iter()
        .enumerate()
        {
            // Channels 2, 4: every op of the U-Net, few parameters to perturb.
            let config = UNetConfig { channels: vec![2, 4], ..tiny_unet(Shape::new(4, 4, 2)) };
            let likelihood = matches!(form, D2smForm::Likelihood { .. });
            let link = if likelihood { DiagonalLink::Log } else { DiagonalLink::Identity };
            let model =
                ImageScoreModel::init_with_head(&config, 0.5, head, layout, &mut test_rng(34 + k as u64))
                    .unwrap()
                    .with_diagonal_link(link);
            let objective = Objective::SecondOrder { form, weight: w, couple: 0.0, third_order: false };
            let (loss, grad) = step(&model, objective, &sigmas, &x, &z);
            let noisy = |i: usize, sigma: f64| Mat::from_fn(1, dim, |_, j| x.at(i, j) + sigma * z.at(i, j));
            let s1_frozen: Vec<Vec<f64>> =
                sigmas.iter().enumerate().map(|(i, &s)| model.score_at(&noisy(i, s), s).into_vec()).collect();
            let loss_at = |theta: &[f64]| {
                let m = with_params(&model, theta);
                let mut total = 0.0;
                for (i, &sigma) in sigmas.iter().enumerate() {
                    let s1 = m.score_at(&noisy(i, sigma), sigma).into_vec();
                    let (u, mut d) = m.second_order_at(&noisy(i, sigma), sigma).unwrap();
                    if link == DiagonalLink::Log {
                        // The likelihood reads the maps themselves: undo the link's d = expm1(m) / sigma^2.
                        d.as_mut_slice().iter_mut().for_each(|d| *d = (sigma * sigma * *d).ln_1p());
                    }
                    let raw = [u.into_vec(), d.into_vec()].concat();
                    let first: f64 = (0..dim).map(|j| (s1[j] + z.at(i, j) / sigma).powi(2)).sum();
                    let detached = form == D2smForm::B || likelihood;
                    let s1_target = if detached { &s1_frozen[i] } else { &s1 };
                    let batch = D2smBatch { head, dim, sigma, z: z.row(i), s2_raw: &raw, s1: s1_target };
                    let (mut g_raw, mut g_s1) = (vec![0.0; raw.len()], vec![0.0; dim]);
                    let second = d2sm_loss(form, &batch, 1.0, &mut g_raw, &mut g_s1);
                    let r4 = (sigma / 0.9f64).powi(4);
                    total += if likelihood {
                        (r4 * w * first / (sigma * sigma) + second) / 2.0
                    } else {
                        r4 * (w * first / (sigma * sigma) + second) / 2.0
                    };
                }
                total
            };
            let theta = model.params().concat();
            let what = format!("{head} {layout:?} {form:?}");
            assert_close(&[loss], &[loss_at(&theta)], 1e-12, &format!("{what} loss"));
            assert_close(&grad, &fd_gradient(loss_at, &theta, 1e-6), 1e-6, &what);
        }
    }

    #[test]
    fn learned_diagonal_approaches_the_gaussian_truth() {
        // x ~ N(0, K (x) K) on 8x8 images, K_ab = 0.6^|a - b| (a separable AR(1) field), so the noisy
        // data is N(0, Sigma + sigma^2 I) and the true s2 is the constant -(Sigma + sigma^2 I)^-1: its
        // diagonal ranges over the pixels (edges are less correlated). A diagonal head on the shared
        // backbone, form B, 400 steps of 32 points.
        use crate::optim::{Adam, AdamSettings};
        use rand_distr::{Distribution, StandardNormal};
        let (side, rho, sigma) = (8usize, 0.6f64, 0.5f64);
        let dim = side * side;
        let cov = nalgebra::DMatrix::from_fn(dim, dim, |j, k| {
            let (a, b, c, d) = ((j / side) as i32, (j % side) as i32, (k / side) as i32, (k % side) as i32);
            rho.powi((a - c).abs() + (b - d).abs()) + if j == k { sigma * sigma } else { 0.0 }
        });
        let truth: Vec<f64> = cov.try_inverse().unwrap().diagonal().iter().map(|v| -v).collect();
        let mut rng = test_rng(40);
        // AR(1) along rows, then along columns: covariance K (x) K.
        let draw = |n: usize, rng: &mut rand_chacha::ChaCha8Rng| {
            let mut x = Mat::<f32>::zeros(n, dim);
            for i in 0..n {
                let mut f: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut *rng)).collect();
                let c = (1.0 - rho * rho).sqrt();
                for (step, stride) in [(1, side), (side, 1)] {
                    for line in 0..side {
                        for t in 1..side {
                            let (here, prev) = (line * stride + t * step, line * stride + (t - 1) * step);
                            f[here] = rho * f[prev] + c * f[here];
                        }
                    }
                }
                x.row_mut(i).iter_mut().zip(&f).for_each(|(o, v)| *o = *v as f32);
            }
            x
        };
        let config = UNetConfig { channels: vec![8, 16], groups: 4, ..tiny_unet(Shape::new(8, 8, 1)) };
        let error = |model: &ImageScoreModel<f32>, noisy: &Mat<f32>| {
            // RMS of learned minus true diagonal over the points and pixels, relative to the truth's RMS.
            let (_, d) = model.second_order_at(noisy, sigma).unwrap();
            let sq: f64 = (0..noisy.rows())
                .flat_map(|i| (0..dim).map(move |j| (i, j)))
                .map(|(i, j)| (f64::from(d.at(i, j)) - truth[j]).powi(2))
                .sum();
            let scale: f64 = truth.iter().map(|t| t * t).sum::<f64>() / dim as f64;
            (sq / (noisy.rows() * dim) as f64 / scale).sqrt()
        };
        let held_out = {
            // Noisy held-out points x~ = x + sigma z.
            let mut noisy = draw(64, &mut rng);
            noisy.as_mut_slice().iter_mut().for_each(|o| {
                *o += sigma as f32 * {
                    let v: f32 = StandardNormal.sample(&mut rng);
                    v
                }
            });
            noisy
        };
        // Form B and the likelihood fit (whose covariance diagonal sigma^4 d + sigma^2 is the same
        // posterior variance), each from the same initial network and data stream.
        for (form, link) in
            [(D2smForm::B, DiagonalLink::Identity), (D2smForm::Likelihood { pcs: 0 }, DiagonalLink::Log)]
        {
            let mut rng = test_rng(42);
            let mut model = ImageScoreModel::<f32>::init_with_head(
                &config,
                sigma,
                SecondOrderHead::Diagonal,
                HeadLayout::Shared,
                &mut test_rng(41),
            )
            .unwrap()
            .with_diagonal_link(link);
            let before = error(&model, &held_out);
            let objective = Objective::SecondOrder { form, weight: 1.0, couple: 0.0, third_order: false };
            let mut adam = Adam::new(
                AdamSettings { learning_rate: 3e-3, ..AdamSettings::default() },
                model.params().concat().len(),
            );
            let mut ws = ImageWorkspace::default();
            let n = 32;
            for _ in 0..400 {
                let x = draw(n, &mut rng);
                let z = Mat::from_fn(n, dim, |_, _| StandardNormal.sample(&mut rng));
                let levels = vec![sigma as f32; n];
                image_loss_and_gradient(&model, objective, &levels, sigma as f32, &x, &z, &mut ws).unwrap();
                let grads: Vec<&[f32]> = ws.grad.iter().map(Vec::as_slice).collect();
                adam.step(model.params_mut(), grads);
            }
            let after = error(&model, &held_out);
            // At this seed form B reaches 0.065 (1.15 at init), the likelihood 0.069 (2.99). The truth is a constant per pixel, so
            // what is left is the network's fit of the position-dependent diagonal and the SGD noise of
            // the last steps (the target's per-entry sd is sqrt(2) times its mean, over 32 points per
            // step and the ~10 steps Adam's first moment averages: ~0.08 relative); 0.1 is above that
            // noise and an order of magnitude below the untrained head.
            assert!(after < 0.1, "{form:?}: relative RMS error {after} (at init {before})");
        }
    }

    #[test]
    fn dsm_on_a_model_with_a_head_trains_s1_alone() {
        // (Evaluation's held-out DSM loss.) Both layouts: the loss of s1 alone, no gradient to the head.
        let mut rng = test_rng(35);
        let (x, z) = (normal_mat(2, 32, &mut rng), normal_mat(2, 32, &mut rng));
        let plain = ImageScoreModel::init(&tiny_unet(Shape::new(4, 4, 2)), 0.5, &mut test_rng(36)).unwrap();
        let mut ws = ImageWorkspace::default();
        let want =
            image_loss_and_gradient(&plain, Objective::Dsm, &[0.5, 0.5], 0.5, &x, &z, &mut ws).unwrap();
        for layout in [HeadLayout::Shared, HeadLayout::Separate] {
            let head = SecondOrderHead::LowRank { rank: 2 };
            let model = ImageScoreModel::init_with_head(
                &tiny_unet(Shape::new(4, 4, 2)),
                0.5,
                head,
                layout,
                &mut test_rng(36),
            )
            .unwrap();
            let mut ws = ImageWorkspace::default();
            let loss =
                image_loss_and_gradient(&model, Objective::Dsm, &[0.5, 0.5], 0.5, &x, &z, &mut ws).unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{layout:?}: {loss}");
            if layout == HeadLayout::Separate {
                // Same seed, same s1 network as the plain model.
                assert_close(&[loss], &[want], 1e-12, "separate layout: s1's loss");
                assert!(ws.grad[1].iter().all(|g| *g == 0.0), "the separate head got a gradient");
            }
        }
    }

    #[test]
    fn objectives_an_image_model_does_not_train_by_are_refused() {
        let plain = ImageScoreModel::init(&tiny_unet(Shape::new(4, 4, 2)), 0.5, &mut test_rng(32)).unwrap();
        let x = normal_mat(2, 32, &mut test_rng(32));
        let run = |objective| {
            let mut ws = ImageWorkspace::default();
            image_loss_and_gradient(&plain, objective, &[0.5, 0.5], 0.5, &x, &x, &mut ws)
                .unwrap_err()
                .to_string()
        };
        let expected = "(expected dsm, or d2sm form a or b without coupling)";
        assert_eq!(
            run(Objective::DsmVr),
            format!("objective dsm-vr cannot train a U-Net image model {expected}")
        );
        let avr =
            Objective::SecondOrder { form: D2smForm::AVr, weight: 1.0, couple: 0.0, third_order: false };
        assert_eq!(run(avr), format!("objective d2sm-vr cannot train a U-Net image model {expected}"));
        let b = Objective::SecondOrder { form: D2smForm::B, weight: 1.0, couple: 0.0, third_order: false };
        assert!(run(b).starts_with("objective d2sm cannot train a s1 model"), "{}", run(b));
    }
}

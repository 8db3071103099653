//! One training step of a U-Net image score model: DSM on its `s1` maps at the model's noise level,
//! the parameter gradient as the graph's flat vector.

use crate::linalg::{Mat, Real};
use crate::models::ImageScoreModel;
use crate::nn::graph::GraphTrace;
use crate::objectives::{dsm_loss, Objective, ObjectiveError};

/// Buffers reused by every step of an image model (allocated once per run).
#[derive(Clone, Debug, Default)]
pub struct ImageWorkspace<F> {
    noisy: Mat<F>,
    trace: GraphTrace<F>,
    s1: Vec<F>,
    g_s1: Vec<F>,
    g_out: Mat<F>,
    /// The parameter gradient of the last step, laid out like the graph's parameters.
    pub grad: Vec<F>,
}

/// The DSM loss `mean_i ||s1(x~_i) + z_i / sigma||^2` at `x~ = x + sigma z` (docs/math.md §3.1) with
/// the network conditioned on the model's own `sigma`; leaves the parameter gradient in `ws.grad`.
///
/// The output maps beyond `s1` (a second-order head's) get a zero cotangent.
///
/// # Errors
/// [`ObjectiveError::ImageModel`] for any objective but DSM.
pub fn image_loss_and_gradient<F: Real>(
    model: &ImageScoreModel<F>,
    objective: Objective,
    sigma: F,
    x: &Mat<F>,
    z: &Mat<F>,
    ws: &mut ImageWorkspace<F>,
) -> Result<F, ObjectiveError> {
    if objective != Objective::Dsm {
        return Err(ObjectiveError::ImageModel { objective: objective.name() });
    }
    let (n, dim) = (x.rows(), x.cols());
    ws.noisy.resize(n, dim);
    for ((o, xi), zi) in ws.noisy.as_mut_slice().iter_mut().zip(x.as_slice()).zip(z.as_slice()) {
        *o = *xi + sigma * *zi;
    }
    let out = model.net.forward(&ws.noisy, n, &model.log_sigma(n), &mut ws.trace);
    // Channels-last: pixel p's maps are out[p * maps..], its s1 values the first c of them.
    let (c, maps) = (model.unet.image.channels, model.net.output_shape().channels);
    let map_index = |j: usize| (j / c) * maps + j % c;
    ws.s1.clear();
    ws.s1.extend((0..n * dim).map(|k| out.as_slice()[(k / dim) * out.cols() + map_index(k % dim)]));
    ws.g_s1.resize(n * dim, F::zero());
    let loss = dsm_loss(&ws.s1, z.as_slice(), sigma, n, F::one(), &mut ws.g_s1);
    ws.g_out.resize(n, out.cols());
    ws.g_out.fill_zero();
    let cols = out.cols();
    for (k, g) in ws.g_s1.iter().enumerate() {
        ws.g_out.as_mut_slice()[(k / dim) * cols + map_index(k % dim)] = *g;
    }
    ws.grad.clear();
    ws.grad.resize(model.net.params().len(), F::zero());
    model.net.reverse(&mut ws.trace, &ws.g_out, &mut ws.grad, None);
    Ok(loss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::{SecondOrderMaps, Shape, UNetConfig};
    use crate::nn::Activation;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    fn tiny(second_order: SecondOrderMaps) -> ImageScoreModel<f64> {
        let unet = UNetConfig {
            image: Shape::new(4, 4, 2),
            channels: vec![4, 8],
            blocks: 1,
            groups: 2,
            activation: Activation::Silu,
            frequencies: 2,
            second_order,
        };
        ImageScoreModel::init(&unet, 0.7, &mut test_rng(30)).expect("valid sizes")
    }

    #[test]
    fn dsm_gradient_matches_finite_differences() {
        // With and without extra output maps: the s1 maps must be read (and their cotangents written)
        // at the right channels-last offsets.
        for maps in [SecondOrderMaps::None, SecondOrderMaps::Diagonal] {
            let model = tiny(maps);
            let mut rng = test_rng(31);
            let (x, z) = (normal_mat(3, 32, &mut rng), normal_mat(3, 32, &mut rng));
            let sigma = 0.7;
            let mut ws = ImageWorkspace::default();
            let loss = image_loss_and_gradient(&model, Objective::Dsm, sigma, &x, &z, &mut ws).unwrap();
            // The loss from its definition, with s1 from the model's own score().
            let loss_at = |theta: &[f64]| {
                let mut m = model.clone();
                m.net.params_mut().copy_from_slice(theta);
                let noisy = Mat::from_fn(3, 32, |i, j| x.at(i, j) + sigma * z.at(i, j));
                let s = m.score(&noisy);
                let sum: f64 = (0..3)
                    .flat_map(|i| (0..32).map(move |j| (i, j)))
                    .map(|(i, j)| (s.at(i, j) + z.at(i, j) / sigma).powi(2))
                    .sum();
                sum / 3.0
            };
            let theta = model.net.params().to_vec();
            assert_close(&[loss], &[loss_at(&theta)], 1e-12, "loss");
            assert_close(&ws.grad, &fd_gradient(loss_at, &theta, 1e-6), 1e-6, &format!("{maps:?}"));
        }
    }

    #[test]
    fn other_objectives_are_refused() {
        let model = tiny(SecondOrderMaps::None);
        let x = normal_mat(2, 32, &mut test_rng(32));
        let err =
            image_loss_and_gradient(&model, Objective::DsmVr, 0.5, &x, &x, &mut ImageWorkspace::default())
                .unwrap_err();
        assert_eq!(err.to_string(), "objective dsm-vr cannot train a U-Net image model (expected dsm)");
    }
}

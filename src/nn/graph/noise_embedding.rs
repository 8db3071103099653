//! The noise-level embedding: Fourier features of `log sigma`, a dense map to one bias per channel,
//! added to every pixel of a feature map (docs/math.md §8.8).
//!
//! `phi(l) = [sin(omega_k l), cos(omega_k l)]_{k < K}` with `omega_k = 2^(k - 2)`, `l = log sigma` of the
//! point; `b = phi W + b0` (`W` is `2K x C`); `y = x + b` on every pixel of the primal rows. Sigma is a
//! constant of each point, so no tangent flows into it and the tangent rows pass through unchanged.
//! Reverse: `g_x += g_y`; with `beta_i = sum_pixels g_y` on primal row `i`, `dW += phi^T beta`,
//! `db0 += sum_i beta_i`.

use super::cotangent::{put, InputCotangent};
use super::shape::Shape;
use crate::linalg::{Mat, Real};

/// The Fourier features of `log_sigma` with `frequencies` frequencies (`2 frequencies` values).
pub fn fourier_features<F: Real>(log_sigma: F, frequencies: usize) -> impl Iterator<Item = F> {
    let omega = move |k: usize| F::of(2f64.powi(k as i32 - 2));
    let sines = (0..frequencies).map(move |k| (omega(k) * log_sigma).sin());
    sines.chain((0..frequencies).map(move |k| (omega(k) * log_sigma).cos()))
}

/// Adds a per-channel bias computed from each point's noise level. Parameters: weight
/// `2 frequencies x C`, then bias `C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoiseEmbedding {
    /// Shape of the input (and output) image.
    pub shape: Shape,
    /// Number of Fourier frequencies `K`.
    pub frequencies: usize,
}

impl NoiseEmbedding {
    /// Number of weights, `2 K C`.
    fn weight_len(&self) -> usize {
        2 * self.frequencies * self.shape.channels
    }

    /// Number of parameters (weights, then biases).
    pub fn param_len(&self) -> usize {
        self.weight_len() + self.shape.channels
    }

    /// `y = x + phi(log sigma) W + b0` on primal rows, `y = x` on tangent rows; keeps `phi` (`n x 2K`).
    pub fn forward<F: Real>(
        &self,
        params: &[F],
        x: &Mat<F>,
        n: usize,
        log_sigma: &[F],
        y: &mut Mat<F>,
        features: &mut Mat<F>,
    ) {
        let (c, width) = (self.shape.channels, 2 * self.frequencies);
        let (weight, bias0) = params.split_at(self.weight_len());
        *features = Mat::from_vec(
            n,
            width,
            log_sigma.iter().flat_map(|l| fourier_features(*l, self.frequencies)).collect(),
        );
        let mut bias = Mat::zeros(n, c);
        F::gemm(
            n,
            width,
            c,
            F::one(),
            (features.as_slice(), width, 1),
            (weight, c, 1),
            F::zero(),
            (bias.as_mut_slice(), c, 1),
        );
        y.resize(x.rows(), x.cols());
        y.as_mut_slice().copy_from_slice(x.as_slice());
        for i in 0..n {
            for pixel in y.row_mut(i).chunks_exact_mut(c) {
                pixel.iter_mut().zip(bias.row(i).iter().zip(bias0)).for_each(|(v, (b, b0))| *v += *b + *b0);
            }
        }
    }

    /// `g_x (+)= g_y`, `dW += phi^T beta`, `db0 += sum_i beta_i` with `beta_i = sum_pixels g_y[i]`.
    pub fn reverse<F: Real>(
        &self,
        grad: &mut [F],
        n: usize,
        features: &Mat<F>,
        g_y: &Mat<F>,
        g_x: Option<InputCotangent<'_, F>>,
    ) {
        let (c, width) = (self.shape.channels, 2 * self.frequencies);
        let mut beta = Mat::zeros(n, c);
        for i in 0..n {
            for pixel in g_y.row(i).chunks_exact(c) {
                beta.row_mut(i).iter_mut().zip(pixel).for_each(|(b, g)| *b += *g);
            }
        }
        let (g_weight, g_bias0) = grad.split_at_mut(self.weight_len());
        F::gemm(
            width,
            n,
            c,
            F::one(),
            (features.as_slice(), 1, width),
            (beta.as_slice(), c, 1),
            F::one(),
            (g_weight, c, 1),
        );
        for row in beta.row_iter() {
            g_bias0.iter_mut().zip(row).for_each(|(g, b)| *g += *b);
        }
        if let Some(InputCotangent { g, fresh }) = g_x {
            put(fresh, g.as_mut_slice(), g_y.as_slice(), |v| v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::{check_against_finite_differences, GraphBuilder};
    use crate::testing::{assert_close, normal_mat, test_rng};

    #[test]
    fn primal_rows_get_the_embedded_bias_and_tangent_rows_pass_through() {
        let mut rng = test_rng(15);
        let embed = NoiseEmbedding { shape: Shape::new(2, 1, 3), frequencies: 2 };
        let params: Vec<f64> = normal_mat(1, embed.param_len(), &mut rng).into_vec();
        let x = normal_mat(4, 6, &mut rng);
        let log_sigma = [-2.0, 0.5];
        let (mut y, mut features) = (Mat::default(), Mat::default());
        embed.forward(&params, &x, 2, &log_sigma, &mut y, &mut features);
        for (i, l) in log_sigma.iter().enumerate() {
            // phi = [sin(l/4), sin(l/2), cos(l/4), cos(l/2)].
            let phi = [(l / 4.0).sin(), (l / 2.0).sin(), (l / 4.0).cos(), (l / 2.0).cos()];
            let bias: Vec<f64> = (0..3)
                .map(|c| (0..4).map(|k| phi[k] * params[k * 3 + c]).sum::<f64>() + params[12 + c])
                .collect();
            let added: Vec<f64> = (0..6).map(|j| y.at(i, j) - x.at(i, j)).collect();
            assert_close(&added, &[bias.clone(), bias].concat(), 1e-12, &format!("point {i}"));
        }
        assert_eq!(y.slice_rows(2, 4), x.slice_rows(2, 4));
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        let mut rng = test_rng(16);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(2, 2, 3), &mut rng);
        let x = b.input();
        let h = b.embed("embed", x, 3);
        b.act(h, crate::nn::Activation::Softplus);
        check_against_finite_differences(&b.finish(), 3, 1, 17);
    }
}

//! The entropy-gradient surrogate of an implicit distribution `z = g_phi(eps)` whose score is estimated.

use crate::linalg::Mat;

/// The surrogate `-H_hat = (1/n) sum_i z_i . stopgrad(s_hat(z_i))`, with `dL/dz_i = s_hat(z_i) / n`.
///
/// # Definition
/// For `z = g_phi(eps)`, `H = -E[log q(z)]` and the score `s = grad_z log q`, the gradient is
/// $$ \nabla_\phi H = -\mathbb E_\epsilon\big[ (\nabla_\phi z)^\top s(z) \big] $$
/// (the `E[grad_phi log q]` term vanishes), so minimising `z . stopgrad(s_hat)` by backpropagating its
/// cotangent `s_hat / n` through `z` follows `-grad_phi H`. Its value is not the entropy.
///
/// # Reference
/// Song, Garg, Shi, Ermon, "Sliced Score Matching", UAI 2019, Sec. 5.2; Li & Turner 2018, Sec. 4.
#[track_caller]
pub fn negative_entropy_surrogate(z: &Mat<f64>, scores: &Mat<f64>, g_z: &mut Mat<f64>) -> f64 {
    assert!(z.rows() == scores.rows() && z.cols() == scores.cols(), "entropy surrogate: shapes");
    let inv_n = 1.0 / z.rows() as f64;
    g_z.resize(z.rows(), z.cols());
    for (g, s) in g_z.as_mut_slice().iter_mut().zip(scores.as_slice()) {
        *g = s * inv_n;
    }
    z.as_slice().iter().zip(scores.as_slice()).map(|(a, b)| a * b).sum::<f64>() * inv_n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, signed_basis_directions, test_rng};

    #[test]
    fn gives_the_entropy_gradient_of_a_gaussian_implicit_encoder() {
        // z = mu + L eps with L lower triangular: H = sum_k log L_kk + (d/2) log(2 pi e), whose gradient is
        // taken by finite differences of that closed form. The exact score is s(z) = -(L L^T)^{-1} (z - mu).
        // The noise is the signed basis +-sqrt(d) e_k (mean 0, E[eps eps^T] = I exactly), so the surrogate's
        // gradient equals its expectation with no Monte Carlo error.
        let d = 3;
        let mut rng = test_rng(5);
        let mu = normal_mat(1, d, &mut rng).into_vec();
        let mut l = normal_mat(d, d, &mut rng);
        for r in 0..d {
            for c in 0..d {
                if c > r {
                    l.set(r, c, 0.0);
                }
            }
            l.set(r, r, 0.5 + l.at(r, r).abs());
        }
        let root_d = (d as f64).sqrt();
        let basis = signed_basis_directions(1, d);
        let eps = Mat::from_fn(2 * d, d, |i, j| root_d * basis.at(i, j));
        let n = eps.rows();
        let z = Mat::from_fn(n, d, |i, k| mu[k] + (0..d).map(|j| l.at(k, j) * eps.at(i, j)).sum::<f64>());
        // s = -L^{-T} L^{-1} (z - mu) = -L^{-T} eps.
        let l_na = nalgebra::DMatrix::from_fn(d, d, |r, c| l.at(r, c));
        let l_inv_t = l_na.try_inverse().unwrap().transpose();
        let scores = Mat::from_fn(n, d, |i, k| -(0..d).map(|j| l_inv_t[(k, j)] * eps.at(i, j)).sum::<f64>());
        let mut g_z = Mat::default();
        negative_entropy_surrogate(&z, &scores, &mut g_z);
        // Chain rule through z = mu + L eps: dL/dmu_k = sum_i g_ik, dL/dL_kj = sum_i g_ik eps_ij.
        let mut got = vec![0.0; d + d * d];
        for i in 0..n {
            for k in 0..d {
                got[k] += g_z.at(i, k);
                for j in 0..=k {
                    got[d + k * d + j] += g_z.at(i, k) * eps.at(i, j);
                }
            }
        }
        let entropy = |theta: &[f64]| (0..d).map(|k| theta[d + k * d + k].abs().ln()).sum::<f64>();
        let theta: Vec<f64> = mu.iter().copied().chain(l.as_slice().iter().copied()).collect();
        // The surrogate follows -grad H on mu and the lower triangle of L (the free parameters).
        let mut want: Vec<f64> = fd_gradient(entropy, &theta, 1e-6).iter().map(|g| -g).collect();
        for k in 0..d {
            for j in k + 1..d {
                want[d + k * d + j] = 0.0;
            }
        }
        assert_close(&got, &want, 1e-8, "surrogate gradient vs -grad H");
        assert!(want[d] < -0.1, "the check is not vacuous: H depends on L_00");
    }
}

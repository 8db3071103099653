//! First-order denoising score matching (DSM) and its control-variate form (DSM-VR), docs/math.md §3.

use crate::linalg::lanes::sum_writing;
use crate::linalg::Real;

/// DSM, the batch mean of $\Vert s_1(\tilde x) + z / \sigma \Vert^2$.
///
/// # Definition
/// $$ L_1 = \frac1n \sum_i \Big\Vert s_1(\tilde x_i) + \frac{z_i}{\sigma} \Big\Vert^2, \qquad
///    \tilde x_i = x_i + \sigma z_i . $$
/// Its minimiser is $s_1 = \nabla \log q_\sigma$ (Vincent 2011); it is least squares of the Tweedie
/// denoiser $\tilde x + \sigma^2 s_1$ onto the clean $x$ (docs/math.md §3.1).
///
/// `s1_noisy` and `z` are `points x D` row-major. Writes `g_s1 = weight * dL1/ds1` (already divided by
/// the number of points) and returns `weight * L1`.
pub fn dsm_loss<F: Real>(s1_noisy: &[F], z: &[F], sigma: F, points: usize, weight: F, g_s1: &mut [F]) -> F {
    let n = F::of(points as f64);
    let (inv_sigma, scale) = (F::one() / sigma, weight * F::of(2.0) / n);
    let total = sum_writing([s1_noisy, z], [g_s1], |[s, zi]| {
        let r = s + zi * inv_sigma;
        ([scale * r], r * r)
    });
    weight * total / n
}

/// DSM-VR, DSM with a control variate evaluated at the clean point.
///
/// # Definition
/// $$ L_1^{\mathrm{vr}} = \frac1n \sum_i \Big[ \Big\Vert s_1(\tilde x_i) + \frac{z_i}{\sigma} \Big\Vert^2 -
///    \frac{2}{\sigma} \langle s_1(x_i), z_i \rangle - \frac{\Vert z_i \Vert^2}{\sigma^2} \Big], $$
/// with $s_1(x_i)$ at the clean point. Same minimiser as DSM, far lower variance at small $\sigma$
/// (docs/math.md §3.2).
///
/// The `n` in the means is the number of points (`z.len() / D`, passed as `points`). Writes the
/// cotangents of both evaluations (scaled by `weight / n`) and returns `weight * L1vr`.
#[allow(clippy::too_many_arguments)]
pub fn dsm_vr_loss<F: Real>(
    s1_noisy: &[F],
    s1_clean: &[F],
    z: &[F],
    sigma: F,
    points: usize,
    weight: F,
    g_noisy: &mut [F],
    g_clean: &mut [F],
) -> F {
    let n = F::of(points as f64);
    let two = F::of(2.0);
    let (inv_sigma, scale) = (F::one() / sigma, weight * two / n);
    let total = sum_writing([s1_noisy, s1_clean, z], [g_noisy, g_clean], |[s, c, zi]| {
        let zs = zi * inv_sigma;
        let r = s + zs;
        ([scale * r, -scale * zs], r * r - two * c * zs - zs * zs)
    });
    weight * total / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn gradients_match_finite_differences_and_vr_has_the_dsm_expectation() {
        let mut rng = test_rng(21);
        let (n, d, sigma) = (4, 3, 0.4);
        let s = normal_mat(n, d, &mut rng).into_vec();
        let c = normal_mat(n, d, &mut rng).into_vec();
        let z = normal_mat(n, d, &mut rng).into_vec();
        let mut g = vec![0.0; n * d];
        dsm_loss(&s, &z, sigma, n, 1.5, &mut g);
        let fd = fd_gradient(|p| dsm_loss(p, &z, sigma, n, 1.5, &mut vec![0.0; n * d]), &s, 1e-6);
        assert_close(&g, &fd, 1e-6, "DSM gradient");
        let (mut gn, mut gc) = (vec![0.0; n * d], vec![0.0; n * d]);
        dsm_vr_loss(&s, &c, &z, sigma, n, 2.0, &mut gn, &mut gc);
        let vr = |s: &[f64], c: &[f64]| {
            dsm_vr_loss(s, c, &z, sigma, n, 2.0, &mut vec![0.0; n * d], &mut vec![0.0; n * d])
        };
        assert_close(&gn, &fd_gradient(|p| vr(p, &c), &s, 1e-6), 1e-6, "DSM-VR noisy gradient");
        assert_close(&gc, &fd_gradient(|p| vr(&s, p), &c, 1e-6), 1e-6, "DSM-VR clean gradient");
        // With s1(x) = 0 at the clean point, L1vr = L1 - ||z||^2/sigma^2 per point.
        let zero = vec![0.0; n * d];
        let z2: f64 = z.iter().map(|v| v * v).sum::<f64>() / (sigma * sigma * n as f64);
        assert!((vr(&s, &zero) / 2.0 - (dsm_loss(&s, &z, sigma, n, 1.0, &mut g) - z2)).abs() < 1e-12);
    }

    /// In f32, the cotangents are exactly each element's formula (the loss is summed in lane sums
    /// beside them, equal to the sequential f64 sum to f32 rounding: 40 terms of relative error
    /// 40 eps_f32 at most, so 1e-5 relative).
    #[test]
    fn cotangents_are_the_elementwise_formulas_bit_for_bit() {
        let mut rng = test_rng(22);
        let (n, d, sigma, weight) = (5, 8, 0.3f32, 1.7f32);
        let [s, c, z] = [(); 3].map(|_| normal_mat(n, d, &mut rng).cast::<f32>().into_vec());
        let (two, nf, inv_sigma) = (2.0f32, n as f32, 1.0 / sigma);
        let scale = weight * two / nf;
        let mut g = vec![0.0; n * d];
        let loss = dsm_loss(&s, &z, sigma, n, weight, &mut g);
        let want: Vec<f32> = s.iter().zip(&z).map(|(s, z)| scale * (s + z * inv_sigma)).collect();
        assert_eq!(g, want);
        let exact: f64 = s.iter().zip(&z).map(|(s, z)| f64::from(s + z / sigma).powi(2)).sum::<f64>();
        let exact = f64::from(weight) * exact / n as f64;
        assert!((f64::from(loss) - exact).abs() < 1e-5 * exact, "{loss} vs {exact}");
        let (mut g_noisy, mut g_clean) = (vec![0.0; n * d], vec![0.0; n * d]);
        dsm_vr_loss(&s, &c, &z, sigma, n, weight, &mut g_noisy, &mut g_clean);
        let want_clean: Vec<f32> = z.iter().map(|z| -scale * (z * inv_sigma)).collect();
        assert_eq!((g_noisy, g_clean), (want, want_clean));
    }
}

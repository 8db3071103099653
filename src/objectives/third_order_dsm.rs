//! Sliced third-order denoising score matching (D3SM, docs/math.md §4.6): regress `T(x~)[v, v, v]`
//! onto the Hermite target `(3 w q - w^3) / sigma^3`, with `w = v . u`, `u = z + sigma s1(x~)` (the
//! centred noise, `x - mu(x~) = -sigma u`) and `q = |v|^2 + sigma^2 v^T S2(x~) v` (the posterior variance
//! along `v` over `sigma^2`), `s1` and `S2` detached. Its conditional mean is `s3(x~)[v, v, v]`; a learned
//! `s1` leaves a bias of third order, `-(v . (s1' - s1))^3`, and a learned `S2` one of second order.

use crate::linalg::Real;

/// The third-order target `(3 w q - w^3) / sigma^3` of one point and direction, with `w = v . u` and
/// `q = |v|^2 + sigma^2 v_s2_v` (`v_s2_v = v^T S2(x~) v`).
pub fn third_order_target<F: Real>(sigma: F, u: &[F], v: &[F], v_s2_v: F) -> F {
    let w: F = u.iter().zip(v).map(|(a, b)| *a * *b).sum();
    let q = v.iter().map(|vd| *vd * *vd).sum::<F>() + sigma * sigma * v_s2_v;
    (F::of(3.0) * w * q - w * w * w) / (sigma * sigma * sigma)
}

/// The targets of a D3SM loss: one row per point.
pub struct D3smBatch<'a, F> {
    /// Dimension `D`.
    pub dim: usize,
    /// Noise level.
    pub sigma: F,
    /// The centred noise `u = z + sigma s1(x~)` (`s1` detached), `n x D`.
    pub u: &'a [F],
    /// The directions `v`, `n x D`.
    pub directions: &'a [F],
    /// `v^T S2(x~) v` per point (`S2` detached).
    pub v_s2_v: &'a [F],
}

/// The mean D3SM loss `weight mean_n (p_n - t_n)^2` of the predictions `p_n = T(x~_n)[v_n, v_n, v_n]`
/// against the targets [`third_order_target`]; writes `dL/dp` into `g_pred`.
#[track_caller]
pub fn d3sm_loss<F: Real>(batch: &D3smBatch<F>, predictions: &[F], weight: F, g_pred: &mut [F]) -> F {
    let (dim, n) = (batch.dim, batch.v_s2_v.len());
    assert!(
        predictions.len() == n
            && g_pred.len() == n
            && batch.u.len() == n * dim
            && batch.directions.len() == n * dim,
        "d3sm_loss: {n} points need {n} predictions and {} values of u and v",
        n * dim
    );
    let scale = weight / F::of(n as f64);
    let mut total = F::zero();
    for i in 0..n {
        let rows = i * dim..(i + 1) * dim;
        let target =
            third_order_target(batch.sigma, &batch.u[rows.clone()], &batch.directions[rows], batch.v_s2_v[i]);
        let residual = predictions[i] - target;
        total += residual * residual;
        g_pred[i] = F::of(2.0) * scale * residual;
    }
    scale * total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::parse_target;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn the_loss_gradient_matches_finite_differences() {
        let (n, dim, sigma, weight) = (3, 4, 0.6, 1.5);
        let mut rng = test_rng(17);
        let predictions = normal_mat(1, n, &mut rng).into_vec();
        let (u, v) = (normal_mat(n, dim, &mut rng).into_vec(), normal_mat(n, dim, &mut rng).into_vec());
        let v_s2_v = normal_mat(1, n, &mut rng).into_vec();
        let batch = D3smBatch { dim, sigma, u: &u, directions: &v, v_s2_v: &v_s2_v };
        let loss = |p: &[f64], g: &mut [f64]| d3sm_loss(&batch, p, weight, g);
        let mut g = vec![0.0; n];
        let got = loss(&predictions, &mut g);
        let want: f64 = (0..n)
            .map(|i| {
                let rows = i * dim..(i + 1) * dim;
                let t = third_order_target(sigma, &u[rows.clone()], &v[rows], v_s2_v[i]);
                (predictions[i] - t).powi(2)
            })
            .sum::<f64>()
            * weight
            / n as f64;
        assert_close(&[got], &[want], 1e-12, "loss");
        let fd = fd_gradient(|p| loss(p, &mut vec![0.0; n]), &predictions, 1e-6);
        assert_close(&g, &fd, 1e-6, "gradient");
    }

    /// The conditional mean of the target over the exact posterior of `x` given `x~`, with `s1` offset by
    /// `e` and with or without the Hermite correction `3 w q`, and its standard error.
    fn posterior_mean_of_target(offset: &[f64], corrected: bool, v: &[f64]) -> (f64, f64, f64, f64) {
        let (sigma, draws) = (0.5, 400_000);
        let mixture = parse_target("gmm2d").unwrap();
        let x_tilde = [0.4, -0.3];
        let noisy = mixture.noisy(sigma).unwrap();
        let (mut s1, mut s2, mut s3) = (vec![0.0; 2], vec![0.0; 4], vec![0.0; 8]);
        noisy.score_and_hessian_into(&x_tilde, &mut s1, &mut s2);
        noisy.third_score_into(&x_tilde, &mut s3);
        let s3_vvv: f64 = (0..8).map(|k| s3[k] * v[k / 4] * v[(k / 2) % 2] * v[k % 2]).sum();
        let v_s2_v: f64 = (0..4).map(|k| s2[k] * v[k / 2] * v[k % 2]).sum();
        let mut rng = test_rng(99);
        let posterior = mixture.posterior(&x_tilde, sigma).unwrap();
        let x = posterior.sample(draws, &mut rng);
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for i in 0..draws {
            // x~ = x + sigma z, so z = (x~ - x) / sigma; u = z + sigma s1'.
            let u: Vec<f64> =
                (0..2).map(|d| (x_tilde[d] - x.at(i, d)) / sigma + sigma * (s1[d] + offset[d])).collect();
            let t = if corrected {
                third_order_target(sigma, &u, v, v_s2_v)
            } else {
                -(u[0] * v[0] + u[1] * v[1]).powi(3) / sigma.powi(3)
            };
            sum += t;
            sum_sq += t * t;
        }
        let mean = sum / draws as f64;
        let std_err = ((sum_sq / draws as f64 - mean * mean) / draws as f64).sqrt();
        let q = v.iter().map(|a| a * a).sum::<f64>() + sigma * sigma * v_s2_v;
        (mean, std_err, s3_vvv, q / (sigma * sigma))
    }

    #[test]
    fn the_target_is_unbiased_for_s3_with_the_exact_s1_and_its_bias_from_a_learned_s1_is_cubic() {
        let v = [0.8, -0.6];
        // Tolerances: 4 standard errors of the Monte Carlo mean over 4e5 posterior draws.
        let (mean, se, s3_vvv, _) = posterior_mean_of_target(&[0.0, 0.0], true, &v);
        assert!(s3_vvv.abs() > 20.0 * se, "s3[v,v,v] = {s3_vvv} must be clearly non-zero (se {se})");
        assert!((mean - s3_vvv).abs() < 4.0 * se, "exact s1: {mean} vs s3[v,v,v] = {s3_vvv} (se {se})");
        // A learned s1' = s1 + e: the corrected target has mean s3 - (v.e)^3, the plain cube
        // -(v.u)^3 / sigma^3 has mean s3 - 3 (v.e) q / sigma^2 - (v.e)^3 (docs/math.md §4.6).
        let e = [0.5, 0.2];
        let ve = v[0] * e[0] + v[1] * e[1];
        let (mean, se, s3_vvv, q_over_s2) = posterior_mean_of_target(&e, true, &v);
        let want = s3_vvv - ve.powi(3);
        assert!((mean - want).abs() < 4.0 * se, "corrected: {mean} vs {want} (se {se})");
        let (plain, se_plain, _, _) = posterior_mean_of_target(&e, false, &v);
        let want_plain = s3_vvv - 3.0 * ve * q_over_s2 - ve.powi(3);
        assert!(
            (plain - want_plain).abs() < 4.0 * se_plain,
            "plain: {plain} vs {want_plain} (se {se_plain})"
        );
        assert!(
            (plain - s3_vvv).abs() > 10.0 * (mean - s3_vvv).abs(),
            "the correction removes the first-order bias"
        );
    }
}

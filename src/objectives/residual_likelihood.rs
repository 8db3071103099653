//! The second-order head fitted by likelihood: the residual of the model's own posterior mean,
//! `r = x - (x~ + sigma^2 s1) = -sigma u` with `u = z + sigma s1` (`s1` detached), scored under the
//! Gaussian `N(0, C)` with the head's covariance `C = sigma^4 S2 + sigma^2 I` (docs/math.md §4.7).
//!
//! Form B fits `S2` to the same target in the Frobenius norm: both are least, over unrestricted `C`, at
//! `C = E[r r^T | x~]` (for any law of `r`, `E[log det C + r^T C^{-1} r]` is least at the second moment).
//! The likelihood weighs each direction by the inverse of its variance instead of equally, so the many
//! near-zero directions of an image posterior (the background pixels) are fitted on their own scale, and
//! `C` is positive definite by construction.
//!
//! The head's raw maps: the factor `U` (`D x R`, linear) and `rho` (`D`, a log link), read as
//! `C = sigma^2 (sigma^2 U U^T + diag(exp rho))`, that is `S2 = U U^T + diag((exp(rho) - 1) / sigma^2)`
//! (a diagonal head is `R = 0`).

use crate::linalg::Real;
use crate::models::SecondOrderHead;
use nalgebra::{DMatrix, DVector};

/// The per-dimension negative log-likelihood of one sample's residual and its gradient.
///
/// With `C = sigma^2 C~`, `C~ = V + A A^T`, `V = diag(v)`, `v = exp(rho)`, `A = sigma U`,
/// `B = V^{-1} A`, `K = I_R + A^T B` and `w = C~^{-1} u = V^{-1} u - B K^{-1} B^T u` (Woodbury):
///
/// `l = (D log(2 pi sigma^2) + sum rho + log det K + u^T w) / (2 D)` (determinant lemma), and since
/// `C~^{-1} A = B K^{-1}`:
/// `dl/dU = (sigma / D) (B K^{-1} - w (A^T w)^T)`,
/// `dl/drho_i = (1 - v_i (B K^{-1} B^T)_ii - v_i w_i^2) / (2 D)`.
///
/// With `pcs = K > 0` the loss also subtracts the residual's energy fraction that the span of the
/// factor's first `K` columns captures ([`captured_energy`]), so that those columns learn the posterior's
/// leading principal directions.
///
/// ADDS `scale * dl/draw` to `g_raw` and returns `l`; computed in f64 whatever `F`. A non-finite input
/// gives a NaN loss (the trainer stops on it) and adds nothing.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn residual_nll<F: Real>(
    head: SecondOrderHead,
    pcs: usize,
    sigma: F,
    raw: &[F],
    s1: &[F],
    z: &[F],
    scale: F,
    g_raw: &mut [F],
) -> F {
    let dim = z.len();
    let rank = match head {
        SecondOrderHead::Diagonal => 0,
        SecondOrderHead::LowRank { rank } => rank,
        SecondOrderHead::Full => unreachable!("the likelihood fit takes diagonal and low-rank heads"),
    };
    assert_eq!(raw.len(), head.outputs(dim), "residual_nll: raw outputs for a {head} head");
    let f = |v: F| v.to_f64().unwrap_or(f64::NAN);
    let (sigma, scale, d) = (f(sigma), f(scale), dim as f64);
    let (factor, rho) = raw.split_at(dim * rank);
    let u = DVector::from_iterator(dim, z.iter().zip(s1).map(|(zi, si)| f(*zi) + sigma * f(*si)));
    let v = DVector::from_iterator(dim, rho.iter().map(|r| f(*r).exp()));
    let a = DMatrix::from_row_iterator(dim, rank, factor.iter().map(|x| sigma * f(*x)));
    let mut b = a.clone();
    b.row_iter_mut().zip(v.iter()).for_each(|(mut row, vi)| row /= *vi);
    let Some(chol) = (a.tr_mul(&b) + DMatrix::identity(rank, rank)).cholesky() else {
        return F::of(f64::NAN);
    };
    // P = B K^{-1} (D x R), from K X = B^T.
    let p = chol.solve(&b.transpose()).transpose();
    let w = u.component_div(&v) - &p * b.tr_mul(&u);
    let log_det_k = 2.0 * chol.l().diagonal().iter().map(|l| l.ln()).sum::<f64>();
    let sum_rho: f64 = v.iter().map(|v| v.ln()).sum();
    let loss =
        (d * (2.0 * std::f64::consts::PI * sigma * sigma).ln() + sum_rho + log_det_k + u.dot(&w)) / (2.0 * d);
    if !loss.is_finite() {
        return F::of(f64::NAN);
    }
    let leading = (pcs > 0).then(|| DMatrix::from_fn(dim, pcs, |i, k| f(factor[i * rank + k])));
    let (captured, g_leading) = match leading.map(|w| captured_energy(&w, &u)) {
        None => (0.0, DMatrix::zeros(dim, 0)),
        Some(Some(found)) => found,
        Some(None) => return F::of(f64::NAN),
    };
    let (g_u, g_rho) = g_raw.split_at_mut(dim * rank);
    let a_w = a.tr_mul(&w);
    for i in 0..dim {
        let mut p_b = 0.0;
        for k in 0..rank {
            p_b += p[(i, k)] * b[(i, k)];
            g_u[i * rank + k] += F::of(scale * sigma / d * (p[(i, k)] - w[i] * a_w[k]));
        }
        g_rho[i] += F::of(scale * (1.0 - v[i] * p_b - v[i] * w[i] * w[i]) / (2.0 * d));
    }
    for i in 0..dim {
        for k in 0..pcs {
            g_u[i * rank + k] -= F::of(scale * g_leading[(i, k)]);
        }
    }
    F::of(loss - captured)
}

/// Relative ridge `delta` of [`captured_energy`]'s Gram matrix: the ridge is the mean squared singular
/// value of `W`.
const GRAM_RIDGE: f64 = 1.0;

/// The soft fraction of `||u||^2` in the span of the columns of `W` (`D x K`) and its gradient in `W`.
///
/// With `G = W^T W + eps I`, `eps = delta tr(W^T W) / K`, `a = W^T u` and `c = G^{-1} a`:
/// `f = a^T c / ||u||^2`. With `W = P S Q^T` (thin SVD) this is
/// `f = sum_i s_i^2 / (s_i^2 + eps) (p_i^T u)^2 / ||u||^2`: a direction that `W` spans only through a
/// small singular value counts little, so the columns cannot capture a direction by nearly cancelling
/// one another while their variance `W W^T` lies elsewhere (measured on MNIST with `delta = 1e-6`: the
/// top variance of the head grew 24-fold). Since `df/deps = -c^T c / ||u||^2`,
/// `df/dW = (2 (u - W c) c^T - (2 delta / K) (c^T c) W) / ||u||^2`.
/// `None` when `G` is not positive definite (non-finite or all-zero columns).
fn captured_energy(w: &DMatrix<f64>, u: &DVector<f64>) -> Option<(f64, DMatrix<f64>)> {
    let k = w.ncols() as f64;
    let gram = w.tr_mul(w);
    let eps = GRAM_RIDGE * gram.trace() / k;
    let chol = (gram + DMatrix::identity(w.ncols(), w.ncols()) * eps).cholesky()?;
    let a = w.tr_mul(u);
    let c = chol.solve(&a);
    let energy = u.norm_squared();
    let captured = a.dot(&c) / energy;
    let residual = u - w * &c;
    let grad = (residual * c.transpose() * 2.0 - w * (2.0 * GRAM_RIDGE / k * c.norm_squared())) / energy;
    captured.is_finite().then_some((captured, grad))
}

/// The diagonal of `S2` that the log link reads from `rho` at `sigma`: `(exp(rho) - 1) / sigma^2`.
pub(crate) fn s2_diagonal_of_log_link(rho: f64, sigma: f64) -> f64 {
    rho.exp_m1() / (sigma * sigma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};
    use crate::uncertainty::PosteriorCovariance;

    #[test]
    fn value_is_the_gaussian_nll_of_the_residual_and_gradients_match_finite_differences() {
        // The value against the dense-free density of the uncertainty module (its own Woodbury, checked
        // there against a dense Cholesky) at the covariance the link reads, less the captured energy
        // fraction computed from the SVD of the factor's columns; the gradient by central differences.
        // A diagonal head, a rank-3 factor, and the rank-3 factor with its first 2 columns trained as
        // principal directions.
        let (dim, sigma, scale) = (6, 0.7, 1.7);
        let low_rank = SecondOrderHead::LowRank { rank: 3 };
        for (head, pcs) in [(SecondOrderHead::Diagonal, 0), (low_rank, 0), (low_rank, 2)] {
            let mut rng = test_rng(71);
            let raw = normal_mat(1, head.outputs(dim), &mut rng).into_vec();
            let (s1, z) = (normal_mat(1, dim, &mut rng).into_vec(), normal_mat(1, dim, &mut rng).into_vec());
            let mut g_raw = vec![0.25; raw.len()];
            let loss = residual_nll(head, pcs, sigma, &raw, &s1, &z, scale, &mut g_raw);

            let rank = head.rank();
            let mut s2_raw = raw.clone();
            s2_raw[dim * rank..].iter_mut().for_each(|r| *r = s2_diagonal_of_log_link(*r, sigma));
            let cov = PosteriorCovariance::from_head(head, &s2_raw, dim, sigma);
            let residual: Vec<f64> = (0..dim).map(|j| -sigma * (z[j] + sigma * s1[j])).collect();
            let captured = if pcs == 0 {
                0.0
            } else {
                // sum_i s_i^2 / (s_i^2 + eps) (p_i^T r)^2 / ||r||^2 from the SVD of the factor's first
                // columns W, eps = mean s_i^2.
                let w = DMatrix::from_fn(dim, pcs, |i, k| raw[i * head.rank() + k]);
                let r = DVector::from_column_slice(&residual);
                let svd = w.svd(true, false);
                let eps = svd.singular_values.norm_squared() / pcs as f64;
                let p = svd.u.unwrap();
                let weighted: f64 = (0..pcs)
                    .map(|i| {
                        let s2 = svd.singular_values[i].powi(2);
                        s2 / (s2 + eps) * p.column(i).dot(&r).powi(2)
                    })
                    .sum();
                weighted / r.norm_squared()
            };
            let want = cov.gaussian_terms(&residual).unwrap().nll_per_dim(dim) - captured;
            assert_close(&[loss], &[want], 1e-12, &format!("{head} K = {pcs} loss"));

            let fd = fd_gradient(
                |r| residual_nll(head, pcs, sigma, r, &s1, &z, 1.0, &mut vec![0.0; r.len()]),
                &raw,
                1e-6,
            );
            let added: Vec<f64> = g_raw.iter().map(|g| (g - 0.25) / scale).collect();
            assert_close(&added, &fd, 1e-7, &format!("{head} K = {pcs} gradient"));
        }
    }

    #[test]
    fn the_expected_loss_is_least_at_the_residual_second_moment() {
        // Residuals drawn from N(0, Sigma) with Sigma = sigma^2 (sigma^2 W W^T + diag(exp rho*)). Scaling
        // C by t (U by sqrt t, rho by log t) changes the expected loss at rate
        // d E[l] / d log t = (D - tr(C^{-1} Sigma)) / (2 D): 0 at the truth, (1 - 1/1.5) / 2 = 1/6 at
        // t = 1.5. That rate is sum_i dl/drho_i + 1/2 sum U dl/dU, averaged over draws. With s1 = 0 the
        // residual is -sigma z, so z ~ N(0, Sigma / sigma^2).
        let (dim, rank, sigma, draws) = (5, 2, 0.5, 20_000);
        let head = SecondOrderHead::LowRank { rank };
        let mut rng = test_rng(72);
        let truth = normal_mat(1, head.outputs(dim), &mut rng).into_vec();
        let cov = {
            let mut s2_raw = truth.clone();
            s2_raw[dim * rank..].iter_mut().for_each(|r| *r = s2_diagonal_of_log_link(*r, sigma));
            PosteriorCovariance::from_head(head, &s2_raw, dim, sigma).dense()
        };
        let l = DMatrix::from_row_slice(dim, dim, cov.as_slice()).cholesky().unwrap().l() / sigma;
        let noise = normal_mat(draws, dim, &mut rng);
        let scale_rate = |raw: &[f64]| {
            let mut g = vec![0.0; raw.len()];
            for row in noise.row_iter() {
                let z = &l * DVector::from_column_slice(row);
                residual_nll(head, 0, sigma, raw, &[0.0; 5], z.as_slice(), 1.0 / draws as f64, &mut g);
            }
            let (g_u, g_rho) = g.split_at(dim * rank);
            g_rho.iter().sum::<f64>() + 0.5 * g_u.iter().zip(raw).map(|(g, u)| g * u).sum::<f64>()
        };
        let mut scaled = truth.clone();
        scaled[dim * rank..].iter_mut().for_each(|r| *r += 1.5f64.ln());
        scaled[..dim * rank].iter_mut().for_each(|u| *u *= 1.5f64.sqrt());
        // Per draw the rate is (D - r^T C^{-1} r) / (2 D), with r^T C^{-1} r = chi^2_D / t: its standard
        // deviation is sqrt(2 D) / (2 D t) <= 0.32, so the mean over 20000 draws has a standard error
        // below 0.0023; the tolerance 0.01 is over 4 of them.
        let (at_truth, at_scaled) = (scale_rate(&truth), scale_rate(&scaled));
        assert!(at_truth.abs() < 0.01, "rate at the truth {at_truth}");
        assert!((at_scaled - 1.0 / 6.0).abs() < 0.01, "rate at 1.5 x the truth {at_scaled}");
    }

    #[test]
    fn all_zero_leading_columns_give_a_nan_loss_and_add_nothing() {
        // Their Gram matrix and its ridge are both zero, so the captured fraction is undefined.
        let (dim, rank, pcs) = (4, 3, 2);
        let head = SecondOrderHead::LowRank { rank };
        let mut raw = normal_mat(1, head.outputs(dim), &mut test_rng(74)).into_vec();
        (0..dim).for_each(|i| raw[i * rank..i * rank + pcs].iter_mut().for_each(|u| *u = 0.0));
        let mut g_raw = vec![0.5; raw.len()];
        let loss = residual_nll(head, pcs, 0.5, &raw, &[0.1; 4], &[0.3, -0.2, 0.7, 1.1], 1.0, &mut g_raw);
        assert!(loss.is_nan(), "{loss}");
        assert!(g_raw.iter().all(|g| *g == 0.5), "{g_raw:?}");
    }

    #[test]
    fn ascending_the_captured_energy_finds_the_leading_principal_directions() {
        // Residuals u ~ N(0, Sigma) with Sigma's eigenvalues 9, 4, 1, 0.5, 0.25 in a random basis. At
        // orthonormal W the captured fraction's mean over fixed draws is tr(P_W M) / (1 + delta) with
        // M = mean u u^T / ||u||^2, whose maximiser over 2-dimensional spans is M's top-2 eigenspace (for
        // a Gaussian the same as Sigma's).
        // Gradient ascent from a random W (re-orthonormalised each step, where the mean gradient is
        // 2 (I - P_W) M W) must reach it; a sign error in the gradient descends to the bottom eigenspace.
        let (dim, pcs, draws) = (5, 2, 2000);
        let mut rng = test_rng(73);
        let basis = normal_mat(dim, dim, &mut rng);
        let q = DMatrix::from_row_slice(dim, dim, basis.as_slice()).qr().q();
        let scales = DVector::from_vec(vec![3.0, 2.0, 1.0, 0.5f64.sqrt(), 0.5]);
        let noise = normal_mat(draws, dim, &mut rng);
        let samples: Vec<DVector<f64>> =
            noise.row_iter().map(|z| &q * DVector::from_column_slice(z).component_mul(&scales)).collect();
        let m = samples
            .iter()
            .fold(DMatrix::zeros(dim, dim), |acc, u| acc + u * u.transpose() / u.norm_squared())
            / draws as f64;
        let eigen = m.symmetric_eigen();
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|a, b| eigen.eigenvalues[*b].total_cmp(&eigen.eigenvalues[*a]));
        let top = DMatrix::from_fn(dim, pcs, |i, k| eigen.eigenvectors[(i, order[k])]);

        let w0 = normal_mat(dim, pcs, &mut rng);
        let mut w = DMatrix::from_row_slice(dim, pcs, w0.as_slice());
        for _ in 0..200 {
            let mut grad = DMatrix::zeros(dim, pcs);
            for u in &samples {
                grad += captured_energy(&w, u).unwrap().1 / draws as f64;
            }
            w = (w + grad * 2.0).qr().q();
        }
        let projector = |b: &DMatrix<f64>| b * (b.tr_mul(b)).try_inverse().unwrap() * b.transpose();
        let gap = (projector(&w) - projector(&top)).norm();
        assert!(gap < 1e-3, "||P_W - P_top||_F = {gap}");
    }
}

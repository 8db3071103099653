//! Sliced score matching (SSM) and its variance-reduced form (SSM-VR), for score networks and for energy
//! networks (docs/math.md §6.2-§6.5). Each function returns the batch loss and writes the cotangents of the
//! network outputs it reads; the caller runs one reverse pass through the primal and tangent (or jet)
//! streams with them.

use crate::linalg::lanes::dot;
use crate::linalg::Real;

/// The outputs of one stacked forward pass of a score network along `M` directions per point.
///
/// Row-major slices: `s` is `n x D` (the scores), `v` and `s_dot` are `M` blocks of `n x D` (direction
/// `tau` of point `i` at row `tau n + i`), with `s_dot = J_s v` from the tangent pass.
#[derive(Clone, Copy, Debug)]
pub struct SlicedScores<'a, F> {
    /// Dimension `D`.
    pub dim: usize,
    /// Number of points `n`.
    pub points: usize,
    /// `s(x)`, `n x D`.
    pub s: &'a [F],
    /// The directions `v`, `M n x D`.
    pub v: &'a [F],
    /// The tangents `J_s(x) v`, `M n x D`; `None` when the caller adds the loss's term linear in them,
    /// `sum <dJ/ds_dot, s_dot>`, itself (a contracted forward pass forms it in the reverse pass:
    /// [`Mlp::forward_trace_contracted`](crate::nn::Mlp::forward_trace_contracted)).
    pub s_dot: Option<&'a [F]>,
}

/// SSM (or SSM-VR) of a score network `s(x)`.
///
/// # Definition
/// $$ J = \frac{1}{nM} \sum_{i,\tau} \Big[ v_{\tau i}^\top \nabla_x s(x_i)\  v_{\tau i} +
///    \tfrac12 (v_{\tau i}^\top s(x_i))^2 \Big], $$
/// and with `variance_reduced` the second term is replaced by its expectation `||s(x_i)||^2 / 2`.
/// `v^T (grad s) v = v . s_dot` comes from the tangent pass; the cotangents are
/// `dJ/ds_i = (1/nM) sum_tau (v.s) v` (SSM) or `s_i / n` (SSM-VR) and `dJ/ds_dot = v / (nM)`. `J` is
/// linear in `s_dot` with a cotangent free of it: without `s_dot` the function returns `J` less that
/// term, `sum <dJ/ds_dot, s_dot>`.
///
/// # Reference
/// Song, Garg, Shi, Ermon, "Sliced Score Matching", UAI 2019, Eqs. (7) and (8);
/// docs/math.md §6.2-§6.5 and §8.3.
#[track_caller]
pub fn ssm_loss<F: Real>(
    batch: &SlicedScores<'_, F>,
    variance_reduced: bool,
    g_s: &mut [F],
    g_s_dot: &mut [F],
) -> F {
    let SlicedScores { dim, points, s, v, s_dot } = *batch;
    let block = points * dim;
    assert!(block > 0 && s.len() == block && g_s.len() == block, "ssm_loss: scores are not {points} x {dim}");
    assert!(
        v.len().is_multiple_of(block) && s_dot.is_none_or(|t| t.len() == v.len()) && g_s_dot.len() == v.len(),
        "ssm_loss: directions"
    );
    let m = v.len() / block;
    let inv_nm = F::one() / F::of((points * m) as f64);
    let inv_n = F::one() / F::of(points as f64);
    let half = F::of(0.5);
    let mut total = F::zero();
    if variance_reduced {
        for (g, s) in g_s.iter_mut().zip(s) {
            *g = *s * inv_n;
        }
        total += half * dot(s, s) * inv_n;
    } else {
        g_s.iter_mut().for_each(|g| *g = F::zero());
    }
    for (k, (v_row, g_row)) in v.chunks_exact(dim).zip(g_s_dot.chunks_exact_mut(dim)).enumerate() {
        let i = k % points;
        let s_row = &s[i * dim..(i + 1) * dim];
        g_row.iter_mut().zip(v_row).for_each(|(g, v)| *g = *v * inv_nm);
        if !variance_reduced {
            let vs = dot(v_row, s_row);
            total += half * vs * vs * inv_nm;
            for (g, v) in g_s[i * dim..(i + 1) * dim].iter_mut().zip(v_row) {
                *g += vs * *v * inv_nm;
            }
        }
    }
    // The curvature term (1/nM) sum v . s_dot.
    total + s_dot.map_or(F::zero(), |t| dot(g_s_dot, t))
}

/// SSM of an energy network `E(x)` from its second-order jets along `M` directions per point.
///
/// # Definition
/// With `phi(t) = E(x + t v)`, `v^T s = -phi'(0)` and `v^T (grad s) v = -phi''(0)` for `s = -grad E`:
/// $$ J = \frac{1}{nM} \sum_{i,\tau} \Big[ -\varphi_{\tau i}'' + \tfrac12 \varphi'^2_{\tau i} \Big]. $$
/// `phi1` and `phi2` hold `phi'(0)` and `phi''(0)`, one per (direction, point), direction-major.
/// Writes `dJ/dphi1 = phi1 / (nM)` and `dJ/dphi2 = -1/(nM)`.
///
/// # Reference
/// Song et al. 2019, Sec. 3 (energy-based models); docs/math.md §6.5.
#[track_caller]
pub fn ssm_energy_loss<F: Real>(phi1: &[F], phi2: &[F], g_phi1: &mut [F], g_phi2: &mut [F]) -> F {
    assert!(
        !phi1.is_empty() && phi1.len() == phi2.len(),
        "ssm_energy_loss: {} vs {} jets",
        phi1.len(),
        phi2.len()
    );
    assert!(g_phi1.len() == phi1.len() && g_phi2.len() == phi2.len(), "ssm_energy_loss: cotangent lengths");
    let inv = F::one() / F::of(phi1.len() as f64);
    let half = F::of(0.5);
    let mut total = F::zero();
    for (((p1, p2), g1), g2) in phi1.iter().zip(phi2).zip(g_phi1.iter_mut()).zip(g_phi2.iter_mut()) {
        total += (half * *p1 * *p1 - *p2) * inv;
        *g1 = *p1 * inv;
        *g2 = -inv;
    }
    total
}

/// SSM-VR of an energy network: the curvature term from the jets, `||grad E||^2 / 2` exactly.
///
/// # Definition
/// $$ J = \frac{1}{nM} \sum_{i,\tau} -\varphi_{\tau i}'' +
///    \frac{1}{n} \sum_i \tfrac12 \Vert \nabla_x E(x_i)\Vert^2. $$
/// `phi2` holds the `M n` second derivatives; `grad_e` the `n x D` input gradients (from
/// [`Mlp::input_gradient_trace`](crate::nn::Mlp::input_gradient_trace)). Writes `dJ/dphi2 = -1/(nM)` and
/// `dJ/dgrad_e = grad_e / n`.
#[track_caller]
pub fn ssm_vr_energy_loss<F: Real>(
    phi2: &[F],
    grad_e: &[F],
    points: usize,
    g_phi2: &mut [F],
    g_grad: &mut [F],
) -> F {
    assert!(
        points > 0 && !phi2.is_empty() && phi2.len().is_multiple_of(points),
        "ssm_vr_energy_loss: jets per point"
    );
    assert!(
        g_phi2.len() == phi2.len() && g_grad.len() == grad_e.len(),
        "ssm_vr_energy_loss: cotangent lengths"
    );
    let inv_nm = F::one() / F::of(phi2.len() as f64);
    let inv_n = F::one() / F::of(points as f64);
    let mut total = F::zero();
    for (p2, g2) in phi2.iter().zip(g_phi2.iter_mut()) {
        total -= *p2 * inv_nm;
        *g2 = -inv_nm;
    }
    for (g, e) in g_grad.iter_mut().zip(grad_e) {
        total += F::of(0.5) * *e * *e * inv_n;
        *g = *e * inv_n;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::{esm_energy_loss, esm_loss, Projection};
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    /// Row-major `A v` per row of `v`.
    fn apply(a: &[f64], dim: usize, v: &[f64]) -> Vec<f64> {
        v.chunks_exact(dim)
            .flat_map(|row| (0..dim).map(move |r| (0..dim).map(|c| a[r * dim + c] * row[c]).sum::<f64>()))
            .collect()
    }

    #[test]
    fn cotangents_match_finite_differences() {
        let mut rng = test_rng(71);
        let (n, d, m) = (3, 4, 2);
        let s = normal_mat(n, d, &mut rng).into_vec();
        let v = normal_mat(m * n, d, &mut rng).into_vec();
        let s_dot = normal_mat(m * n, d, &mut rng).into_vec();
        for vr in [false, true] {
            let loss = |s: &[f64], s_dot: Option<&[f64]>| {
                let batch = SlicedScores { dim: d, points: n, s, v: &v, s_dot };
                ssm_loss(&batch, vr, &mut vec![0.0; n * d], &mut vec![0.0; m * n * d])
            };
            let (mut g_s, mut g_dot) = (vec![0.0; n * d], vec![0.0; m * n * d]);
            let full = ssm_loss(
                &SlicedScores { dim: d, points: n, s: &s, v: &v, s_dot: Some(&s_dot) },
                vr,
                &mut g_s,
                &mut g_dot,
            );
            assert_close(&g_s, &fd_gradient(|p| loss(p, Some(&s_dot)), &s, 1e-6), 1e-7, "dJ/ds");
            assert_close(&g_dot, &fd_gradient(|p| loss(&s, Some(p)), &s_dot, 1e-6), 1e-7, "dJ/ds_dot");
            // Without s_dot: J less its linear term sum <dJ/ds_dot, s_dot>.
            let linear: f64 = g_dot.iter().zip(&s_dot).map(|(g, t)| g * t).sum();
            assert!((loss(&s, None) + linear - full).abs() < 1e-12, "vr={vr}: J without s_dot");
        }
        let (phi1, phi2) = (normal_mat(m, n, &mut rng).into_vec(), normal_mat(m, n, &mut rng).into_vec());
        let (mut g1, mut g2) = (vec![0.0; m * n], vec![0.0; m * n]);
        ssm_energy_loss(&phi1, &phi2, &mut g1, &mut g2);
        let energy =
            |p1: &[f64], p2: &[f64]| ssm_energy_loss(p1, p2, &mut vec![0.0; m * n], &mut vec![0.0; m * n]);
        assert_close(&g1, &fd_gradient(|p| energy(p, &phi2), &phi1, 1e-6), 1e-7, "dJ/dphi1");
        assert_close(&g2, &fd_gradient(|p| energy(&phi1, p), &phi2, 1e-6), 1e-7, "dJ/dphi2");
        let grad_e = normal_mat(n, d, &mut rng).into_vec();
        let (mut g2, mut gg) = (vec![0.0; m * n], vec![0.0; n * d]);
        ssm_vr_energy_loss(&phi2, &grad_e, n, &mut g2, &mut gg);
        let vr = |p2: &[f64], ge: &[f64]| {
            ssm_vr_energy_loss(p2, ge, n, &mut vec![0.0; m * n], &mut vec![0.0; n * d])
        };
        assert_close(&g2, &fd_gradient(|p| vr(p, &grad_e), &phi2, 1e-6), 1e-7, "VR dJ/dphi2");
        assert_close(&gg, &fd_gradient(|p| vr(&phi2, p), &grad_e, 1e-6), 1e-7, "VR dJ/dgrad");
    }

    #[test]
    fn ssm_over_signed_basis_directions_equals_esm() {
        // v = +-sqrt(D) e_d, each of the 2D directions once: the SSM average is exactly ESM.
        let mut rng = test_rng(72);
        let (n, d) = (3, 4);
        let s = normal_mat(n, d, &mut rng).into_vec();
        let jac = normal_mat(d, d, &mut rng).into_vec(); // one (non-symmetric) Jacobian for every point
        let m = 2 * d;
        let mut v = vec![0.0; m * n * d];
        for tau in 0..m {
            for i in 0..n {
                v[(tau * n + i) * d + tau / 2] =
                    if tau.is_multiple_of(2) { 1.0 } else { -1.0 } * (d as f64).sqrt();
            }
        }
        let s_dot = apply(&jac, d, &v);
        let basis: Vec<f64> = (0..d)
            .flat_map(|e| (0..n).flat_map(move |_| (0..d).map(move |c| if c == e { 1.0 } else { 0.0 })))
            .collect();
        let basis_dot = apply(&jac, d, &basis);
        let mut g = (vec![0.0; n * d], vec![0.0; m * n * d]);
        let esm = esm_loss(&s, Some(&basis_dot), n, &mut vec![0.0; n * d], &mut vec![0.0; d * n * d]);
        for vr in [false, true] {
            let ssm = ssm_loss(
                &SlicedScores { dim: d, points: n, s: &s, v: &v, s_dot: Some(&s_dot) },
                vr,
                &mut g.0,
                &mut g.1,
            );
            assert!((ssm - esm).abs() < 1e-12 * (1.0 + esm.abs()), "vr={vr}: SSM {ssm} vs ESM {esm}");
        }
        // Energy form: with E = 0.5 x^T A x + b.x, phi1 = v.(A x + b), phi2 = v^T A v.
        let a = {
            let r = normal_mat(d, d, &mut rng).into_vec();
            (0..d * d).map(|k| 0.5 * (r[k] + r[(k % d) * d + k / d])).collect::<Vec<f64>>()
        };
        let grad = normal_mat(n, d, &mut rng).into_vec();
        let jets = |dirs: &[f64]| {
            let k = dirs.len() / d;
            let phi1: Vec<f64> =
                (0..k).map(|r| (0..d).map(|c| dirs[r * d + c] * grad[(r % n) * d + c]).sum()).collect();
            let av = apply(&a, d, dirs);
            let phi2: Vec<f64> =
                (0..k).map(|r| (0..d).map(|c| dirs[r * d + c] * av[r * d + c]).sum()).collect();
            (phi1, phi2)
        };
        let (p1, p2) = jets(&v);
        let ssm = ssm_energy_loss(&p1, &p2, &mut vec![0.0; m * n], &mut vec![0.0; m * n]);
        let (b1, b2) = jets(&basis);
        let esm = esm_energy_loss(&b1, &b2, n, &mut vec![0.0; d * n], &mut vec![0.0; d * n]);
        assert!((ssm - esm).abs() < 1e-12 * (1.0 + esm.abs()), "energy: SSM {ssm} vs ESM {esm}");
        let vr = ssm_vr_energy_loss(&p2, &grad, n, &mut vec![0.0; m * n], &mut vec![0.0; n * d]);
        assert!((vr - esm).abs() < 1e-12 * (1.0 + esm.abs()), "energy: SSM-VR {vr} vs ESM {esm}");
    }

    #[test]
    fn ssm_is_unbiased_on_a_gaussian_energy() {
        // E(x) = 0.5 (x - mu)^T P (x - mu) with x ~ N(mu, P^{-1}): ESM = -tr P + 0.5 E||P (x - mu)||^2
        // = -0.5 tr P. Average SSM and SSM-VR over `draws` independent (x, v) and compare with a
        // tolerance of 5 standard errors.
        let d = 3;
        let p = [2.0, 0.3, 0.0, 0.3, 1.0, -0.2, 0.0, -0.2, 0.5];
        // Cholesky factor of P^{-1} by hand is fiddly; sample x - mu = L^{-T} z with P = L L^T instead.
        let l = {
            let mut l = [0.0f64; 9];
            for i in 0..d {
                for j in 0..=i {
                    let sum: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
                    l[i * d + j] = if i == j {
                        (p[i * d + i] - sum).sqrt()
                    } else {
                        (p[i * d + j] - sum) / l[j * d + j]
                    };
                }
            }
            l
        };
        let want = -0.5 * (p[0] + p[4] + p[8]);
        let draws = 20_000;
        for projection in Projection::ALL {
            let mut rng = test_rng(73);
            for vr in [false, true] {
                let (mut sum, mut sum_sq) = (0.0, 0.0);
                let mut v = vec![0.0; d];
                for _ in 0..draws {
                    let z = normal_mat(1, d, &mut rng).into_vec();
                    // Solve L^T y = z (back substitution): y ~ N(0, P^{-1}).
                    let mut y = vec![0.0; d];
                    for i in (0..d).rev() {
                        let sum: f64 = (i + 1..d).map(|k| l[k * d + i] * y[k]).sum();
                        y[i] = (z[i] - sum) / l[i * d + i];
                    }
                    let grad = apply(&p, d, &y);
                    projection.sample_into(&mut rng, &mut v);
                    let phi1 = [v.iter().zip(&grad).map(|(a, b)| a * b).sum::<f64>()];
                    let phi2 = [v.iter().zip(apply(&p, d, &v)).map(|(a, b)| a * b).sum::<f64>()];
                    let loss = if vr {
                        ssm_vr_energy_loss(&phi2, &grad, 1, &mut [0.0], &mut vec![0.0; d])
                    } else {
                        ssm_energy_loss(&phi1, &phi2, &mut [0.0], &mut [0.0])
                    };
                    sum += loss;
                    sum_sq += loss * loss;
                }
                let mean = sum / draws as f64;
                let std_err = ((sum_sq / draws as f64 - mean * mean) / draws as f64).sqrt();
                assert!(
                    (mean - want).abs() < 5.0 * std_err,
                    "{projection} vr={vr}: mean {mean} vs {want} (se {std_err})"
                );
            }
        }
    }
}

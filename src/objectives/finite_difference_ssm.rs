//! Finite-difference sliced score matching (FD-SSM, Pang et al. 2020): SSM with the directional
//! derivatives replaced by central differences, so it needs only function evaluations (docs/math.md §6.6).

use crate::linalg::Real;

/// Writes the FD-SSM directions `v = eps z / ||z||` (uniform on the sphere of radius `eps`) for the rows
/// of standard normal draws `z` (row-major, `dim` columns).
#[track_caller]
pub fn fd_directions_into<F: Real>(z: &[F], dim: usize, eps: F, v: &mut [F]) {
    assert!(dim > 0 && z.len() == v.len() && z.len().is_multiple_of(dim), "fd_directions_into: shapes");
    for (z_row, v_row) in z.chunks_exact(dim).zip(v.chunks_exact_mut(dim)) {
        let norm = z_row.iter().map(|x| *x * *x).sum::<F>().sqrt();
        if norm > F::zero() {
            v_row.iter_mut().zip(z_row).for_each(|(v, z)| *v = eps * *z / norm);
        } else {
            v_row.iter_mut().for_each(|v| *v = F::zero());
            v_row[0] = eps;
        }
    }
}

/// FD-SSM of a score network (variance-reduced form).
///
/// # Definition
/// With `v = eps u`, `u` uniform on the unit sphere, `a = s(x + v)`, `b = s(x - v)`:
/// $$ J = \frac1n \sum_i \Big[ \tfrac18 \Vert a_i + b_i\Vert^2 +
///    \frac{D}{2\varepsilon^2} (a_i - b_i)^\top v_i \Big], $$
/// which tends to `tr grad s + ||s||^2/2` per point as `eps -> 0` since `E[D u u^T] = I`.
/// Writes `dJ/da = ((a+b)/4 + D v / (2 eps^2)) / n` and `dJ/db = ((a+b)/4 - D v / (2 eps^2)) / n`.
///
/// # Reference
/// Pang, Xu, Li, Song, Ermon, Zhu, "Efficient Learning of Generative Models via Finite-Difference Score
/// Matching", NeurIPS 2020, Eq. (10); docs/math.md §6.6.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn fd_ssm_loss<F: Real>(
    s_plus: &[F],
    s_minus: &[F],
    v: &[F],
    eps: F,
    dim: usize,
    g_plus: &mut [F],
    g_minus: &mut [F],
) -> F {
    let len = v.len();
    assert!(dim > 0 && len > 0 && len.is_multiple_of(dim), "fd_ssm_loss: directions are not rows of {dim}");
    assert!(
        s_plus.len() == len && s_minus.len() == len && g_plus.len() == len && g_minus.len() == len,
        "fd_ssm_loss: shapes"
    );
    let inv_n = F::one() / F::of((len / dim) as f64);
    let scale = F::of(dim as f64) / (F::of(2.0) * eps * eps);
    let quarter = F::of(0.25);
    let mut total = F::zero();
    for k in 0..len {
        let (a, b) = (s_plus[k], s_minus[k]);
        let sum = a + b;
        total += (F::of(0.125) * sum * sum + scale * (a - b) * v[k]) * inv_n;
        g_plus[k] = (quarter * sum + scale * v[k]) * inv_n;
        g_minus[k] = (quarter * sum - scale * v[k]) * inv_n;
    }
    total
}

/// FD-SSM of an energy network.
///
/// # Definition
/// With `v = eps u` as in [`fd_ssm_loss`], `E+ = E(x + v)`, `E- = E(x - v)`, `E0 = E(x)`:
/// $$ J = \frac{D}{\varepsilon^2} \frac1n \sum_i \Big[ \tfrac18 (E^+_i - E^-_i)^2 - E^+_i - E^-_i + 2E^0_i \Big], $$
/// which tends to `-Delta E + ||grad E||^2 / 2 = tr grad s + ||s||^2/2` for `s = -grad E`.
/// Writes the cotangents of the three evaluations.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn fd_ssm_energy_loss<F: Real>(
    e_plus: &[F],
    e_minus: &[F],
    e_center: &[F],
    eps: F,
    dim: usize,
    g_plus: &mut [F],
    g_minus: &mut [F],
    g_center: &mut [F],
) -> F {
    let n = e_plus.len();
    assert!(n > 0 && e_minus.len() == n && e_center.len() == n, "fd_ssm_energy_loss: {n} points");
    assert!(g_plus.len() == n && g_minus.len() == n && g_center.len() == n, "fd_ssm_energy_loss: cotangents");
    let scale = F::of(dim as f64) / (eps * eps * F::of(n as f64));
    let (quarter, two) = (F::of(0.25), F::of(2.0));
    let mut total = F::zero();
    for i in 0..n {
        let diff = e_plus[i] - e_minus[i];
        total += scale * (F::of(0.125) * diff * diff - e_plus[i] - e_minus[i] + two * e_center[i]);
        g_plus[i] = scale * (quarter * diff - F::one());
        g_minus[i] = scale * (-quarter * diff - F::one());
        g_center[i] = scale * two;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn cotangents_match_finite_differences() {
        let mut rng = test_rng(91);
        let (n, d, eps) = (3, 4, 0.1);
        let z = normal_mat(n, d, &mut rng).into_vec();
        let mut v = vec![0.0; n * d];
        fd_directions_into(&z, d, eps, &mut v);
        let norm: f64 = v[..d].iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - eps).abs() < 1e-15, "|v| = {norm}");
        let (a, b) = (normal_mat(n, d, &mut rng).into_vec(), normal_mat(n, d, &mut rng).into_vec());
        let (mut ga, mut gb) = (vec![0.0; n * d], vec![0.0; n * d]);
        fd_ssm_loss(&a, &b, &v, eps, d, &mut ga, &mut gb);
        let loss = |a: &[f64], b: &[f64]| {
            fd_ssm_loss(a, b, &v, eps, d, &mut vec![0.0; n * d], &mut vec![0.0; n * d])
        };
        assert_close(&ga, &fd_gradient(|p| loss(p, &b), &a, 1e-6), 1e-7, "dJ/da");
        assert_close(&gb, &fd_gradient(|p| loss(&a, p), &b, 1e-6), 1e-7, "dJ/db");
        let e: Vec<Vec<f64>> = (0..3).map(|_| normal_mat(n, 1, &mut rng).into_vec()).collect();
        let mut g = vec![vec![0.0; n]; 3];
        let [g0, g1, g2] = &mut g[..] else { unreachable!() };
        fd_ssm_energy_loss(&e[0], &e[1], &e[2], eps, d, g0, g1, g2);
        let energy = |p: &[f64], m: &[f64], c: &[f64]| {
            fd_ssm_energy_loss(p, m, c, eps, d, &mut vec![0.0; n], &mut vec![0.0; n], &mut vec![0.0; n])
        };
        assert_close(&g[0], &fd_gradient(|p| energy(p, &e[1], &e[2]), &e[0], 1e-6), 1e-6, "dJ/dE+");
        assert_close(&g[1], &fd_gradient(|p| energy(&e[0], p, &e[2]), &e[1], 1e-6), 1e-6, "dJ/dE-");
        assert_close(&g[2], &fd_gradient(|p| energy(&e[0], &e[1], p), &e[2], 1e-6), 1e-6, "dJ/dE0");
    }

    #[test]
    fn small_steps_recover_the_sliced_objective_of_a_quadratic() {
        // s(x) = A x (J = A, no curvature beyond linear): a = A(x+v), b = A(x-v), so
        // (a - b).v D/(2 eps^2) = D u^T A u exactly and (a+b)/2 = A x: J = D u^T A u + ||A x||^2 / 2.
        let mut rng = test_rng(92);
        let (d, eps) = (3, 1e-3);
        let a = normal_mat(d, d, &mut rng).into_vec();
        let x = normal_mat(1, d, &mut rng).into_vec();
        let mut v = vec![0.0; d];
        fd_directions_into(&normal_mat(1, d, &mut rng).into_vec(), d, eps, &mut v);
        let apply =
            |p: &[f64]| (0..d).map(|r| (0..d).map(|c| a[r * d + c] * p[c]).sum::<f64>()).collect::<Vec<_>>();
        let plus: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x + v).collect();
        let minus: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x - v).collect();
        let got =
            fd_ssm_loss(&apply(&plus), &apply(&minus), &v, eps, d, &mut vec![0.0; d], &mut vec![0.0; d]);
        let u: Vec<f64> = v.iter().map(|v| v / eps).collect();
        let uau: f64 = u.iter().zip(apply(&u)).map(|(a, b)| a * b).sum();
        let ax = apply(&x);
        let want = d as f64 * uau + 0.5 * ax.iter().map(|v| v * v).sum::<f64>();
        assert!((got - want).abs() < 1e-8 * (1.0 + want.abs()), "{got} vs {want}");
    }
}

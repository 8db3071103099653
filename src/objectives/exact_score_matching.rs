//! Exact score matching (ESM, Hyvarinen 2005) from `D` basis directions per point, for score networks
//! (tangent pass) and for energy networks (second-order jets), docs/math.md §6.1 and §6.5.

#[cfg(test)]
use crate::linalg::Mat;
use crate::linalg::Real;

#[cfg(test)]
/// The `D` basis directions of each of `points` points, stacked as the directions of a tangent or jet
/// pass: block `d` (rows `d n .. (d + 1) n`) holds `e_d` on every row.
pub fn basis_directions<F: Real>(points: usize, dim: usize) -> Mat<F> {
    let mut out = Mat::zeros(dim * points, dim);
    basis_directions_into(points, dim, out.as_mut_slice());
    out
}

/// Writes the `D` basis directions of each of `points` points (block `d`, rows `d n .. (d + 1) n`, holds
/// `e_d` on every row) into `out` (`D n x D`, row-major) without allocating.
#[track_caller]
pub fn basis_directions_into<F: Real>(points: usize, dim: usize, out: &mut [F]) {
    assert_eq!(out.len(), dim * points * dim, "basis_directions_into: buffer length");
    for (r, row) in out.chunks_exact_mut(dim.max(1)).enumerate() {
        row.iter_mut().enumerate().for_each(|(c, v)| *v = if r / points == c { F::one() } else { F::zero() });
    }
}

/// ESM of a score network from its tangents along the basis directions.
///
/// # Definition
/// $$ J = \frac1n \sum_i \Big[ \operatorname{tr} \nabla_x s(x_i) + \tfrac12 \Vert s(x_i)\Vert^2 \Big],\qquad
///    \operatorname{tr} \nabla_x s(x_i) = \sum_d (J_s(x_i)\  e_d)_d. $$
/// `s` is `n x D`; `s_dot` holds the `D` blocks `J_s e_d` (`n x D` each, the tangent pass along
/// [`basis_directions_into`]). Writes `dJ/ds = s / n` and `dJ/ds_dot` (`1/n` at the diagonal entries). `J`
/// is linear in `s_dot` with a cotangent free of it: without `s_dot` the function returns `J` less the
/// trace term, `sum <dJ/ds_dot, s_dot>`, which the caller adds (as
/// [`SlicedScores::s_dot`](super::SlicedScores::s_dot) explains).
/// The cost is `D` tangent passes per point, the cost SSM removes.
///
/// # Reference
/// Hyvarinen, "Estimation of non-normalized statistical models by score matching", JMLR 2005, Thm. 1;
/// docs/math.md §6.1.
#[track_caller]
pub fn esm_loss<F: Real>(s: &[F], s_dot: Option<&[F]>, points: usize, g_s: &mut [F], g_s_dot: &mut [F]) -> F {
    assert!(points > 0 && s.len().is_multiple_of(points), "esm_loss: {} scores for {points} points", s.len());
    let dim = s.len() / points;
    assert!(
        g_s_dot.len() == dim * s.len()
            && s_dot.is_none_or(|t| t.len() == g_s_dot.len())
            && g_s.len() == s.len(),
        "esm_loss: shapes"
    );
    let inv_n = F::one() / F::of(points as f64);
    let mut total = F::zero();
    for (g, x) in g_s.iter_mut().zip(s) {
        total += F::of(0.5) * *x * *x * inv_n;
        *g = *x * inv_n;
    }
    g_s_dot.iter_mut().for_each(|g| *g = F::zero());
    for (r, g_row) in g_s_dot.chunks_exact_mut(dim).enumerate() {
        g_row[r / points] = inv_n;
    }
    // The trace term (1/n) sum_d (J_s e_d)_d: the diagonal entries, where the cotangent is 1/n.
    let trace = s_dot.map_or(F::zero(), |t| {
        t.chunks_exact(dim).enumerate().fold(F::zero(), |acc, (r, row)| acc + row[r / points] * inv_n)
    });
    total + trace
}

/// ESM of an energy network from its second-order jets along the basis directions.
///
/// # Definition
/// With `s = -grad E`: `tr grad s = -sum_d d^2E/dx_d^2 = -sum_d phi2_d` and
/// `||s||^2 = sum_d phi1_d^2`, so
/// $$ J = \frac1n \sum_i \sum_d \Big[ -\varphi_{d i}'' + \tfrac12 \varphi'^2_{d i} \Big]. $$
/// `phi1`, `phi2` hold `D n` values, direction-major (the jets along [`basis_directions_into`]).
/// Writes `dJ/dphi1 = phi1 / n` and `dJ/dphi2 = -1/n`.
#[track_caller]
pub fn esm_energy_loss<F: Real>(
    phi1: &[F],
    phi2: &[F],
    points: usize,
    g_phi1: &mut [F],
    g_phi2: &mut [F],
) -> F {
    assert!(
        points > 0 && phi1.len() == phi2.len() && phi1.len().is_multiple_of(points),
        "esm_energy_loss: jets per point"
    );
    assert!(g_phi1.len() == phi1.len() && g_phi2.len() == phi2.len(), "esm_energy_loss: cotangent lengths");
    let inv_n = F::one() / F::of(points as f64);
    let mut total = F::zero();
    for (((p1, p2), g1), g2) in phi1.iter().zip(phi2).zip(g_phi1.iter_mut()).zip(g_phi2.iter_mut()) {
        total += (F::of(0.5) * *p1 * *p1 - *p2) * inv_n;
        *g1 = *p1 * inv_n;
        *g2 = -inv_n;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn cotangents_match_finite_differences() {
        let mut rng = test_rng(81);
        let (n, d) = (3, 2);
        let s = normal_mat(n, d, &mut rng).into_vec();
        let s_dot = normal_mat(d * n, d, &mut rng).into_vec();
        let (mut g, mut g_dot) = (vec![0.0; n * d], vec![0.0; d * n * d]);
        let full = esm_loss(&s, Some(&s_dot), n, &mut g, &mut g_dot);
        let loss = |a: &[f64], b: Option<&[f64]>| {
            esm_loss(a, b, n, &mut vec![0.0; n * d], &mut vec![0.0; d * n * d])
        };
        assert_close(&g, &fd_gradient(|p| loss(p, Some(&s_dot)), &s, 1e-6), 1e-7, "dJ/ds");
        assert_close(&g_dot, &fd_gradient(|p| loss(&s, Some(p)), &s_dot, 1e-6), 1e-7, "dJ/ds_dot");
        let linear: f64 = g_dot.iter().zip(&s_dot).map(|(g, t)| g * t).sum();
        assert!((loss(&s, None) + linear - full).abs() < 1e-12, "J without s_dot");
        // The trace term picks the diagonal of each point's Jacobian.
        let mut jac_dot = vec![0.0; d * n * d];
        for e in 0..d {
            for i in 0..n {
                jac_dot[(e * n + i) * d + e] = (i + 1) as f64;
            }
        }
        let zero = vec![0.0; n * d];
        let trace_only = esm_loss(&zero, Some(&jac_dot), n, &mut vec![0.0; n * d], &mut vec![0.0; d * n * d]);
        assert!((trace_only - d as f64 * 2.0).abs() < 1e-12, "mean trace {trace_only}");
        let (p1, p2) = (normal_mat(d, n, &mut rng).into_vec(), normal_mat(d, n, &mut rng).into_vec());
        let (mut g1, mut g2) = (vec![0.0; d * n], vec![0.0; d * n]);
        esm_energy_loss(&p1, &p2, n, &mut g1, &mut g2);
        let energy =
            |a: &[f64], b: &[f64]| esm_energy_loss(a, b, n, &mut vec![0.0; d * n], &mut vec![0.0; d * n]);
        assert_close(&g1, &fd_gradient(|p| energy(p, &p2), &p1, 1e-6), 1e-7, "dJ/dphi1");
        assert_close(&g2, &fd_gradient(|p| energy(&p1, p), &p2, 1e-6), 1e-7, "dJ/dphi2");
        let basis = basis_directions::<f64>(2, 3);
        assert_eq!(basis.row(3), &[0.0, 1.0, 0.0]);
    }
}

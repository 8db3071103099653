//! The rank-R CP head of a third-order score (docs/math.md §4.6): raw outputs read as the symmetric
//! tensor `T = sum_r a_r u_r ⊗ u_r ⊗ u_r + diag3(c)`, contracted along a direction as
//! `T[v, v, v] = sum_r a_r (u_r . v)^3 + sum_d c_d v_d^3` in `O(R D)`, never as a `D^3` tensor.

use crate::linalg::Real;

/// A rank-`R` CP head plus a diagonal part: `R + R D + D` raw outputs, the weights `a` (`R`), then the
/// factors `u_r` (`R x D`, row-major), then the diagonal `c` (`D`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpThirdOrderHead {
    /// The number `R` of rank-one terms.
    pub rank: usize,
}

impl CpThirdOrderHead {
    /// Number of raw outputs for dimension `dim`.
    pub fn outputs(self, dim: usize) -> usize {
        self.rank + self.rank * dim + dim
    }

    /// Splits a raw row into `(a, u, c)`.
    fn split<F>(self, raw: &[F], dim: usize) -> (&[F], &[F], &[F]) {
        let (a, rest) = raw.split_at(self.rank);
        let (u, c) = rest.split_at(self.rank * dim);
        (a, u, c)
    }

    /// `T[v, v, v] = sum_r a_r (u_r . v)^3 + sum_d c_d v_d^3` for one raw row.
    pub fn contract<F: Real>(self, raw: &[F], v: &[F]) -> F {
        let dim = v.len();
        let (a, u, c) = self.split(raw, dim);
        let low_rank: F = a.iter().zip(u.chunks_exact(dim)).map(|(ar, ur)| *ar * dot(ur, v).powi(3)).sum();
        low_rank + c.iter().zip(v).map(|(cd, vd)| *cd * vd.powi(3)).sum::<F>()
    }

    /// `g_raw += scale * dT[v,v,v]/draw`: `d/da_r = (u_r . v)^3`, `d/du_r = 3 a_r (u_r . v)^2 v`,
    /// `d/dc_d = v_d^3`.
    pub fn contract_backprop<F: Real>(self, raw: &[F], v: &[F], scale: F, g_raw: &mut [F]) {
        let dim = v.len();
        let (a, u, _) = self.split(raw, dim);
        let (g_a, rest) = g_raw.split_at_mut(self.rank);
        let (g_u, g_c) = rest.split_at_mut(self.rank * dim);
        for ((ar, ur), (g_ar, g_ur)) in
            a.iter().zip(u.chunks_exact(dim)).zip(g_a.iter_mut().zip(g_u.chunks_exact_mut(dim)))
        {
            let uv = dot(ur, v);
            *g_ar += scale * uv.powi(3);
            let factor = scale * F::of(3.0) * *ar * uv * uv;
            g_ur.iter_mut().zip(v).for_each(|(g, vd)| *g += factor * *vd);
        }
        g_c.iter_mut().zip(v).for_each(|(g, vd)| *g += scale * vd.powi(3));
    }

    /// Writes the dense symmetric tensor `T` of one raw row into `out` (`D^3`, index `(i D + j) D + l`).
    #[cfg(test)]
    pub fn dense_into<F: Real>(self, raw: &[F], dim: usize, out: &mut [F]) {
        let (a, u, c) = self.split(raw, dim);
        for i in 0..dim {
            for j in 0..dim {
                for l in 0..dim {
                    let t: F =
                        a.iter().zip(u.chunks_exact(dim)).map(|(ar, ur)| *ar * ur[i] * ur[j] * ur[l]).sum();
                    let diagonal = if i == j && j == l { c[i] } else { F::zero() };
                    out[(i * dim + j) * dim + l] = t + diagonal;
                }
            }
        }
    }
}

fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    a.iter().zip(b).map(|(x, y)| *x * *y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn the_contraction_equals_the_dense_tensor_and_its_gradient_matches_finite_differences() {
        let head = CpThirdOrderHead { rank: 3 };
        for dim in [1, 2, 4] {
            let mut rng = test_rng(5 + dim as u64);
            let raw = normal_mat(1, head.outputs(dim), &mut rng).into_vec();
            let mut dense = vec![0.0; dim * dim * dim];
            head.dense_into(&raw, dim, &mut dense);
            for _ in 0..4 {
                let v = normal_mat(1, dim, &mut rng).into_vec();
                let mut want = 0.0;
                for i in 0..dim {
                    for j in 0..dim {
                        for l in 0..dim {
                            want += dense[(i * dim + j) * dim + l] * v[i] * v[j] * v[l];
                        }
                    }
                }
                assert_close(&[head.contract(&raw, &v)], &[want], 1e-12, &format!("D = {dim} contraction"));
                let mut g = vec![0.0; raw.len()];
                head.contract_backprop(&raw, &v, 0.5, &mut g);
                let fd = fd_gradient(|r| 0.5 * head.contract(r, &v), &raw, 1e-6);
                assert_close(&g, &fd, 1e-6, &format!("D = {dim} gradient"));
            }
            // Symmetric in every pair of indices (up to the rounding of the products' order).
            for (i, j, l) in [(0, dim - 1, 0), (dim - 1, 0, dim / 2)] {
                let t = |i: usize, j: usize, l: usize| dense[(i * dim + j) * dim + l];
                let want = [t(i, j, l); 3];
                assert_close(&[t(j, i, l), t(l, j, i), t(i, l, j)], &want, 1e-12, "symmetry");
            }
        }
    }
}

//! Matrix functions of a low-rank plus diagonal curvature $H = \operatorname{diag}(d) + U U^\top$ from
//! its thin factor: the Ozaki drift and noise operators in $O(D r^2)$ per chain, never `D x D`, no Lanczos.

use nalgebra::{DMatrix, SymmetricEigen};

/// Relative size below which an eigenvalue of $U^\top U$ marks a direction $U$ does not span.
const RANK_TOLERANCE: f64 = 1e-12;

/// $f(H)$ for $H = \operatorname{diag}(d) + U U^\top$, built once per chain and applied to any number
/// of scalar functions $f$ (with clipping folded into $f$).
///
/// # Definition
/// Let $Q$ (`D x r'`, orthonormal columns) span the range of $U$: from $U^\top U = W \Lambda W^\top$,
/// $Q = U W \Lambda^{-1/2}$ over the $r'$ eigenvalues $\Lambda_k > 10^{-12} \max \Lambda$. The
/// compression of $H$ onto that range is $T = Q^\top H Q = Q^\top \operatorname{diag}(d) Q + \Lambda
/// = Z \Theta Z^\top$ (`r' x r'`). Then
/// $$ f(H) \approx f(\operatorname{diag}(d)) + Q Z f(\Theta) Z^\top Q^\top
///      - Q \big( Q^\top f(\operatorname{diag}(d)) Q \big) Q^\top : $$
/// $f$ of the diagonal on the complement of the range of $U$, $f$ of the compressed $H$ on it. Exact
/// whenever the range of $U$ is an invariant subspace of $\operatorname{diag}(d)$ (then $H$ splits into
/// the two blocks): in particular for a constant diagonal $d = c \mathbf 1$, the curvature of a
/// Gaussian with covariance $c' I + V V^\top$ at every noise level, and for $U = 0$. For a general
/// diagonal the coupling $(I - QQ^\top) \operatorname{diag}(d) Q$ between the blocks is dropped; its
/// size is bounded by the spread of $d$ over the pixels $U$ touches. The eigenvalues looked at (and
/// clipped) are the $D$ entries of $d$ and the $r'$ values $\Theta$.
///
/// # Reference
/// docs/math.md §10.4 (thin-factor Ozaki); the block argument: Higham, *Functions of Matrices*, Thm 1.13.
pub(crate) struct LowRankFunctions {
    d: Vec<f64>,
    /// $Q$, `D x r'` row-major.
    q: Vec<f64>,
    /// $B = Q Z$, `D x r'` row-major.
    b: Vec<f64>,
    /// $\Theta$.
    theta: Vec<f64>,
}

impl LowRankFunctions {
    /// Factors $H = \operatorname{diag}(d) + U U^\top$ (`u`: `D x rank` row-major).
    pub(crate) fn new(u: &[f64], d: &[f64], rank: usize) -> Self {
        let D = d.len();
        if rank == 0 {
            return Self { d: d.to_vec(), q: Vec::new(), b: Vec::new(), theta: Vec::new() };
        }
        let gram: DMatrix<f64> =
            DMatrix::from_fn(rank, rank, |i, j| (0..D).map(|p| u[p * rank + i] * u[p * rank + j]).sum());
        let eig = SymmetricEigen::new(gram);
        let top = eig.eigenvalues.iter().fold(0.0_f64, |m, &l| m.max(l));
        let kept: Vec<usize> = (0..rank).filter(|&k| eig.eigenvalues[k] > RANK_TOLERANCE * top).collect();
        let r = kept.len();
        if r == 0 {
            return Self::new(&[], d, 0);
        }
        // Q = U W Lambda^{-1/2}, columns `kept`.
        let mut q = vec![0.0; D * r];
        for p in 0..D {
            for (c, &k) in kept.iter().enumerate() {
                let s: f64 = (0..rank).map(|j| u[p * rank + j] * eig.eigenvectors[(j, k)]).sum();
                q[p * r + c] = s / eig.eigenvalues[k].sqrt();
            }
        }
        // T = Q^T diag(d) Q + Lambda.
        let t = DMatrix::from_fn(r, r, |i, j| {
            let qdq: f64 = (0..D).map(|p| q[p * r + i] * d[p] * q[p * r + j]).sum();
            qdq + if i == j { eig.eigenvalues[kept[i]] } else { 0.0 }
        });
        let te = SymmetricEigen::new(t);
        let mut b = vec![0.0; D * r];
        for p in 0..D {
            for c in 0..r {
                b[p * r + c] = (0..r).map(|j| q[p * r + j] * te.eigenvectors[(j, c)]).sum();
            }
        }
        Self { d: d.to_vec(), q, b, theta: te.eigenvalues.iter().copied().collect() }
    }

    /// The eigenvalues the approximation uses: $d$, then $\Theta$.
    pub(crate) fn eigenvalues(&self) -> impl Iterator<Item = f64> + '_ {
        self.d.iter().chain(&self.theta).copied()
    }

    /// `out = f(H) v` by the formula of [`LowRankFunctions`]; $O(D r'^2)$.
    pub(crate) fn apply(&self, f: impl Fn(f64) -> f64, v: &[f64], out: &mut [f64]) {
        let (D, r) = (self.d.len(), self.theta.len());
        let fd: Vec<f64> = self.d.iter().map(|&l| f(l)).collect();
        // Coefficients: Z f(Theta) Z^T Q^T v through B, and (Q^T f(D) Q)(Q^T v) through Q.
        let (mut btv, mut qtv) = (vec![0.0; r], vec![0.0; r]);
        for (p, vp) in v.iter().enumerate() {
            for c in 0..r {
                btv[c] += self.b[p * r + c] * vp;
                qtv[c] += self.q[p * r + c] * vp;
            }
        }
        let ftheta: Vec<f64> = self.theta.iter().zip(&btv).map(|(&l, c)| f(l) * c).collect();
        let qfq_qtv: Vec<f64> = (0..r)
            .map(|i| {
                (0..r)
                    .map(|j| {
                        (0..D).map(|p| self.q[p * r + i] * fd[p] * self.q[p * r + j]).sum::<f64>() * qtv[j]
                    })
                    .sum()
            })
            .collect();
        for p in 0..D {
            let (bp, qp) = (&self.b[p * r..(p + 1) * r], &self.q[p * r..(p + 1) * r]);
            let low: f64 = bp.iter().zip(&ftheta).map(|(a, c)| a * c).sum::<f64>()
                - qp.iter().zip(&qfq_qtv).map(|(a, c)| a * c).sum::<f64>();
            out[p] = fd[p] * v[p] + low;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samplers::CurvatureView;
    use crate::testing::{assert_close, normal_mat, test_rng};

    /// `f(H) v` from the dense eigendecomposition of `H`.
    fn dense_apply(u: &[f64], d: &[f64], rank: usize, f: impl Fn(f64) -> f64, v: &[f64]) -> Vec<f64> {
        let D = d.len();
        let mut h = vec![0.0; D * D];
        CurvatureView::LowRank { u, d, rank }.dense_into(&mut h);
        let eig = SymmetricEigen::new(DMatrix::from_row_slice(D, D, &h));
        let q = &eig.eigenvectors;
        let c: Vec<f64> =
            (0..D).map(|i| f(eig.eigenvalues[i]) * (0..D).map(|r| q[(r, i)] * v[r]).sum::<f64>()).collect();
        (0..D).map(|r| (0..D).map(|i| q[(r, i)] * c[i]).sum()).collect()
    }

    #[test]
    fn exact_when_the_range_of_u_is_invariant_under_the_diagonal() {
        let (D, rank) = (7, 2);
        let mut rng = test_rng(5);
        let v = normal_mat(1, D, &mut rng).into_vec();
        let f = |l: f64| (0.7 * l).exp_m1() / l;
        // U touches pixels 0..3 only, where d is constant; d differs everywhere else.
        let d = [-1.0, -1.0, -1.0, -3.0, -0.5, -2.0, -4.0];
        let mut u = normal_mat(D, rank, &mut rng).into_vec();
        u[3 * rank..].fill(0.0);
        let mut got = vec![0.0; D];
        LowRankFunctions::new(&u, &d, rank).apply(f, &v, &mut got);
        assert_close(&got, &dense_apply(&u, &d, rank, f, &v), 1e-12, "invariant range");
        // U = 0: f of the diagonal, elementwise.
        let zero = vec![0.0; D * rank];
        LowRankFunctions::new(&zero, &d, rank).apply(f, &v, &mut got);
        let want: Vec<f64> = d.iter().zip(&v).map(|(&l, x)| f(l) * x).collect();
        assert_close(&got, &want, 1e-14, "U = 0");
    }
}

//! Matrix functions times a vector, $f(H)\ v$, by the Lanczos method: only products $H u$ are needed,
//! so a low-rank plus diagonal $H$ is never formed as a `D x D` matrix.

use nalgebra::{DMatrix, SymmetricEigen};

/// A Lanczos decomposition $H Q_k \approx Q_k T_k$ of a symmetric $H$ started at $v$, ready to apply
/// functions of $H$ to $v$.
///
/// # Definition
/// With $q_1 = v/\Vert v\Vert$, $k$ steps of the three-term recurrence (with full re-orthogonalisation, done
/// twice) give an orthonormal basis $Q_k = [q_1 \dots q_k]$ of the Krylov space
/// $\mathcal K_k(H, v)$ and the tridiagonal $T_k = Q_k^\top H Q_k = S \Theta S^\top$. Then
/// $$ f(H)\  v \approx \Vert v\Vert \  Q_k\  S\  f(\Theta)\  S^\top e_1 , $$
/// exact (to rounding) once $k$ reaches the dimension of the Krylov space, which the recurrence detects
/// by a vanishing $\beta_k$ and stops early. The eigenvalues $\theta_i$ of $T_k$ are the Ritz values:
/// functions that clip eigenvalues act on them.
///
/// # Reference
/// Golub & Van Loan, *Matrix Computations* (4th ed.), Sec. 10.1; Higham, *Functions of Matrices*,
/// Sec. 13.2 (Lanczos approximation of $f(A)b$).
#[derive(Clone, Debug)]
pub struct Lanczos {
    dim: usize,
    /// $\Vert v\Vert$.
    norm: f64,
    /// $Q_k$, `k x D` row-major (row `j` is $q_{j+1}$).
    basis: Vec<f64>,
    /// Ritz values $\theta_i$.
    theta: Vec<f64>,
    /// $S$, `k x k` row-major.
    s: Vec<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Lanczos {
    /// Runs at most `max_iters` Lanczos steps (and at most `D`) on `matvec: (u, out) -> out = H u`
    /// started at `v`.
    ///
    /// Panics if `max_iters == 0` (a programmer error; settings validate it).
    #[track_caller]
    pub fn new(mut matvec: impl FnMut(&[f64], &mut [f64]), v: &[f64], max_iters: usize) -> Self {
        assert!(max_iters >= 1, "Lanczos: at least one iteration");
        let dim = v.len();
        let norm = dot(v, v).sqrt();
        if norm == 0.0 || !norm.is_finite() || dim == 0 {
            return Self { dim, norm, basis: Vec::new(), theta: Vec::new(), s: Vec::new() };
        }
        let kmax = max_iters.min(dim);
        let mut basis: Vec<f64> = v.iter().map(|x| x / norm).collect();
        basis.reserve(kmax * dim);
        let (mut alpha, mut beta) = (Vec::with_capacity(kmax), Vec::with_capacity(kmax));
        let mut w = vec![0.0; dim];
        let mut scale = 0.0_f64;
        loop {
            let j = alpha.len();
            let qj = &basis[j * dim..(j + 1) * dim];
            matvec(qj, &mut w);
            let a = dot(qj, &w);
            alpha.push(a);
            scale = scale.max(a.abs());
            // Full re-orthogonalisation against every basis vector, twice (the three-term recurrence's
            // subtractions are among these projections).
            for _ in 0..2 {
                for q in basis.chunks_exact(dim) {
                    let c = dot(q, &w);
                    w.iter_mut().zip(q).for_each(|(wi, qi)| *wi -= c * qi);
                }
            }
            let b = dot(&w, &w).sqrt();
            scale = scale.max(b);
            if alpha.len() == kmax || !(b > 1e-12 * scale) {
                break;
            }
            beta.push(b);
            basis.extend(w.iter().map(|x| x / b));
        }
        let k = alpha.len();
        let mut t = DMatrix::<f64>::zeros(k, k);
        for i in 0..k {
            t[(i, i)] = alpha[i];
            if i + 1 < k {
                t[(i, i + 1)] = beta[i];
                t[(i + 1, i)] = beta[i];
            }
        }
        let eig = SymmetricEigen::new(t);
        let theta = eig.eigenvalues.iter().copied().collect();
        let s = (0..k * k).map(|idx| eig.eigenvectors[(idx / k, idx % k)]).collect();
        basis.truncate(k * dim);
        Self { dim, norm, basis, theta, s }
    }

    #[cfg(test)]
    /// Number of Lanczos steps taken (the dimension of the Krylov space found, at most `max_iters`).
    pub fn iterations(&self) -> usize {
        self.theta.len()
    }

    /// The Ritz values $\theta_i$ (eigenvalues of $T_k$).
    pub fn ritz_values(&self) -> &[f64] {
        &self.theta
    }

    /// `out` $= \Vert v\Vert \  Q_k S f(\Theta) S^\top e_1 \approx f(H)\  v$.
    #[track_caller]
    pub fn apply(&self, f: impl Fn(f64) -> f64, out: &mut [f64]) {
        assert_eq!(out.len(), self.dim, "Lanczos::apply: out must have length {}", self.dim);
        out.fill(0.0);
        let k = self.theta.len();
        // y = S f(Theta) S^T e1, then out = norm * Q^T y.
        let c: Vec<f64> = (0..k).map(|i| f(self.theta[i]) * self.s[i]).collect();
        for (j, q) in self.basis.chunks_exact(self.dim.max(1)).enumerate() {
            let yj: f64 = (0..k).map(|i| self.s[j * k + i] * c[i]).sum::<f64>() * self.norm;
            out.iter_mut().zip(q).for_each(|(o, qi)| *o += yj * qi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samplers::curvature::{CurvatureLayout, CurvatureView};
    use crate::testing::{normal_mat, test_rng};

    /// f(H) v by a dense symmetric eigen-decomposition: the slow reference.
    fn dense_apply(h: &[f64], dim: usize, v: &[f64], f: impl Fn(f64) -> f64) -> Vec<f64> {
        let eig = SymmetricEigen::new(DMatrix::from_row_slice(dim, dim, h));
        let q = &eig.eigenvectors;
        let qtv: Vec<f64> = (0..dim).map(|i| (0..dim).map(|r| q[(r, i)] * v[r]).sum()).collect();
        (0..dim).map(|r| (0..dim).map(|i| q[(r, i)] * f(eig.eigenvalues[i]) * qtv[i]).sum()).collect()
    }

    fn low_rank_plus_diagonal(dim: usize, rank: usize, seed: u64) -> Vec<f64> {
        let mut rng = test_rng(seed);
        let mut block = normal_mat(1, dim * rank + dim, &mut rng).into_vec();
        // A negative diagonal (a log-concave-looking curvature) spread over [-4, -1].
        for (i, d) in block[dim * rank..].iter_mut().enumerate() {
            *d = -1.0 - 3.0 * (i as f64) / dim as f64;
        }
        block
    }

    #[test]
    fn full_krylov_space_matches_the_dense_eigen_decomposition() {
        let (D, r) = (12, 3);
        let block = low_rank_plus_diagonal(D, r, 1);
        let view = CurvatureView::new(CurvatureLayout::LowRank { rank: r }, D, &block);
        let mut dense = vec![0.0; D * D];
        view.dense_into(&mut dense);
        let v = normal_mat(1, D, &mut test_rng(2)).into_vec();
        let h = 0.7;
        let fs: [&dyn Fn(f64) -> f64; 3] = [
            &|l| super::super::phi::drift_factor(h, l.min(0.0)),
            &|l| super::super::phi::noise_variance_factor(h, l.min(0.0)).sqrt(),
            &f64::exp,
        ];
        let k = Lanczos::new(|u, out| view.matvec(u, out), &v, D);
        assert_eq!(k.iterations(), D);
        for f in fs {
            let want = dense_apply(&dense, D, &v, f);
            let mut got = vec![0.0; D];
            k.apply(f, &mut got);
            let scale = want.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            // Rounding of D-step Lanczos with re-orthogonalisation: a modest multiple of eps D ||f(H) v||.
            let tol = 64.0 * f64::EPSILON * D as f64 * scale.max(1.0);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= tol, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn few_iterations_converge_for_a_smooth_function_and_breakdown_stops_early() {
        // D = 60, rank 2 plus a diagonal with only 3 distinct values: the Krylov space of any v has
        // dimension <= 2 + 3 = 5... plus the rank-2 coupling; Lanczos stops by breakdown well before 60.
        let (D, r) = (60, 2);
        let mut block = low_rank_plus_diagonal(D, r, 3);
        for (i, d) in block[D * r..].iter_mut().enumerate() {
            *d = [-1.0, -2.0, -3.0][i % 3];
        }
        let view = CurvatureView::new(CurvatureLayout::LowRank { rank: r }, D, &block);
        let mut dense = vec![0.0; D * D];
        view.dense_into(&mut dense);
        let v = normal_mat(1, D, &mut test_rng(4)).into_vec();
        let k = Lanczos::new(|u, out| view.matvec(u, out), &v, 30);
        // Invariant subspace: span of the 3 diagonal classes' projections of v and of U's columns.
        assert!(k.iterations() <= 3 * (1 + r), "iterations {}", k.iterations());
        let f = |l: f64| super::super::phi::drift_factor(0.3, l.min(0.0));
        let want = dense_apply(&dense, D, &v, f);
        let mut got = vec![0.0; D];
        k.apply(f, &mut got);
        let scale = want.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-10 * scale, "{g} vs {w}");
        }
    }

    #[test]
    fn zero_vector_gives_zero() {
        let k = Lanczos::new(|u, out| out.copy_from_slice(u), &[0.0; 4], 4);
        let mut out = [1.0; 4];
        k.apply(f64::exp, &mut out);
        assert_eq!((out, k.iterations()), ([0.0; 4], 0));
    }

    #[test]
    fn lanczos_example() {
        // H = diag(1, 2, 3): f(H) v with f = exp, 3 iterations are exact.
        let h = [1.0, 2.0, 3.0];
        let k = Lanczos::new(
            |u: &[f64], out: &mut [f64]| {
                for i in 0..3 {
                    out[i] = h[i] * u[i];
                }
            },
            &[1.0, 1.0, 1.0],
            3,
        );
        let mut out = [0.0; 3];
        k.apply(f64::exp, &mut out);
        assert!((out[2] - 3f64.exp()).abs() < 1e-12);
    }
}

//! Structured symmetric matrices `M = alpha B + diag(e) + sum_j c_j w_j w_j^T`, with `B = U U^T` (low
//! rank), a dense symmetric `S`, or nothing. Second-order objectives are written with them so that
//! diagonal and low-rank losses cost O(D) and O(D r^2) per sample and never build a `D x D` matrix
//! (docs/math.md §5.2-§5.5).
#![allow(non_snake_case)]

use crate::linalg::lanes::{dot, dot3, sum};
use crate::linalg::{Outer, Real};

/// The base matrix `B` of a [`StructuredSym`].
#[derive(Clone, Copy, Debug)]
pub enum Base<'a, F> {
    /// `B = 0`.
    Zero,
    /// `B = U U^T`, `U` of shape `D x rank`, row-major, with its Gram matrix `U^T U` and its diagonal
    /// `(U U^T)_ii = ||U_i||^2` (see `ThinFactor::gram_into`, `src/linalg/thin_factor.rs`).
    Factor {
        /// The factor, row-major.
        u: &'a [F],
        /// Its number of columns.
        rank: usize,
        /// `U^T U`, `rank x rank`.
        gram: &'a [F],
        /// The squared row norms `||U_i||^2`, length `D`.
        norms: &'a [F],
    },
    /// A dense symmetric `D x D` matrix, row-major.
    Dense(&'a [F]),
}

/// Scratch length for [`Base`] operations of rank `r` (projection buffers).
const MAX_STACK_RANK: usize = 64;

impl<F: Real> Base<'_, F> {
    /// `<B, B>_F`; for `U U^T` this is `||U^T U||_F^2`.
    fn self_inner(&self) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { gram, .. } => dot(gram, gram),
            Base::Dense(s) => dot(s, s),
        }
    }

    /// `sum_i B_ii x_i`.
    fn diag_dot(&self, dim: usize, x: &[F]) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { norms, .. } => dot(norms, x),
            Base::Dense(s) => x.iter().enumerate().map(|(i, xi)| s[i * dim + i] * *xi).sum(),
        }
    }

    /// `tr B`; for `U U^T` this is `tr U^T U`.
    fn trace(&self, dim: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { rank, gram, .. } => (0..rank).map(|a| gram[a * rank + a]).sum(),
            Base::Dense(s) => (0..dim).map(|i| s[i * dim + i]).sum(),
        }
    }

    /// `out_i += scale B_ii`.
    fn diag_add(&self, dim: usize, scale: F, out: &mut [F]) {
        match *self {
            Base::Zero => {}
            Base::Factor { norms, .. } => out.iter_mut().zip(norms).for_each(|(o, n)| *o += scale * *n),
            Base::Dense(s) => out.iter_mut().enumerate().for_each(|(i, o)| *o += scale * s[i * dim + i]),
        }
    }

    /// `B_ij`.
    fn entry(&self, dim: usize, i: usize, j: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { u, rank, .. } => dot(&u[i * rank..(i + 1) * rank], &u[j * rank..(j + 1) * rank]),
            Base::Dense(s) => s[i * dim + j],
        }
    }

    /// `out += scale * B x`.
    fn apply_add(&self, dim: usize, x: &[F], scale: F, out: &mut [F]) {
        match *self {
            Base::Zero => {}
            Base::Factor { u, rank, .. } => {
                let mut buf = [F::zero(); MAX_STACK_RANK];
                let mut heap = Vec::new();
                let t = scratch(rank, &mut buf, &mut heap);
                F::project_into(u, rank, x, t);
                F::apply_add(u, rank, t, scale, out);
            }
            Base::Dense(s) => {
                for (o, row) in out.iter_mut().zip(s.chunks_exact(dim)) {
                    *o += scale * dot(row, x);
                }
            }
        }
    }

    /// `x^T B x`.
    fn quad(&self, dim: usize, x: &[F]) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { u, rank, .. } => {
                let mut buf = [F::zero(); MAX_STACK_RANK];
                let mut heap = Vec::new();
                let t = scratch(rank, &mut buf, &mut heap);
                F::project_into(u, rank, x, t);
                dot(t, t)
            }
            Base::Dense(_) => {
                let mut bx = vec![F::zero(); dim];
                self.apply_add(dim, x, F::one(), &mut bx);
                dot(&bx, x)
            }
        }
    }
}

/// A zeroed buffer of length `len`: on the stack when it fits, else on the heap.
fn scratch<'b, F: Real>(len: usize, buf: &'b mut [F; MAX_STACK_RANK], heap: &'b mut Vec<F>) -> &'b mut [F] {
    if len <= MAX_STACK_RANK {
        &mut buf[..len]
    } else {
        heap.resize(len, F::zero());
        &mut heap[..]
    }
}

/// `M = alpha B + diag(e) + sum_j c_j w_j w_j^T`.
#[derive(Clone, Copy, Debug)]
pub struct StructuredSym<'a, F> {
    /// Dimension `D`.
    pub dim: usize,
    /// Coefficient of the base.
    pub alpha: F,
    /// The base `B`.
    pub base: Base<'a, F>,
    /// The diagonal term `e`, length `D`.
    pub e: &'a [F],
    /// Rank-one terms `(c_j, w_j)`.
    pub rank_one: &'a [(F, &'a [F])],
}

impl<F: Real> StructuredSym<'_, F> {
    /// `||M||_F^2` from pairwise inner products of the terms, in O(D r^2 + D J^2):
    /// `alpha^2 <B, B> + sum_i e_i (e_i + 2 alpha B_ii) + sum_j 2 c_j (alpha w_j^T B w_j + sum_i e_i w_ji^2)
    /// + sum_jk c_j c_k (w_j^T w_k)^2`.
    pub fn frob_sq(&self) -> F {
        let (dim, two) = (self.dim, F::of(2.0));
        let two_alpha = two * self.alpha;
        let mut total = self.alpha * self.alpha * self.base.self_inner()
            + dot(self.e, self.e)
            + two_alpha * self.base.diag_dot(dim, self.e);
        for (j, &(c, w)) in self.rank_one.iter().enumerate() {
            total += two * c * (self.alpha * self.base.quad(dim, w) + dot3(self.e, w, w));
            for (k, &(c2, w2)) in self.rank_one.iter().enumerate().skip(j) {
                let overlap = dot(w, w2);
                let pair = c * c2 * overlap * overlap;
                total += if k == j { pair } else { two * pair };
            }
        }
        total
    }

    /// `tr M = alpha tr B + sum_i e_i + sum_j c_j ||w_j||^2`.
    pub fn trace(&self) -> F {
        let mut total = self.alpha * self.base.trace(self.dim) + sum(self.e);
        for &(c, w) in self.rank_one {
            total += c * dot(w, w);
        }
        total
    }

    /// `x^T M x`.
    pub fn quad(&self, x: &[F]) -> F {
        let mut total = self.alpha * self.base.quad(self.dim, x) + dot3(self.e, x, x);
        for &(c, w) in self.rank_one {
            let t = dot(w, x);
            total += c * t * t;
        }
        total
    }

    /// `out += scale * M x`.
    pub fn apply_add(&self, x: &[F], scale: F, out: &mut [F]) {
        self.base.apply_add(self.dim, x, scale * self.alpha, out);
        out.iter_mut().zip(self.e.iter().zip(x)).for_each(|(o, (e, xi))| *o += scale * *e * *xi);
        for &(c, w) in self.rank_one {
            let t = dot(w, x) * c * scale;
            out.iter_mut().zip(w).for_each(|(o, wi)| *o += t * *wi);
        }
    }

    /// `out += scale * M V` for a row-major `D x rank` matrix `V`, in O(D r^2) with contiguous access:
    /// `M V = alpha B V + diag(e) V + sum_j c_j w_j (V^T w_j)^T`, `B V = U (U^T V)`.
    pub fn apply_to_columns_add(&self, v: &[F], rank: usize, scale: F, out: &mut [F]) {
        let mut buf = [F::zero(); MAX_STACK_RANK];
        let mut heap = Vec::new();
        let projections = scratch(rank * self.rank_one.len(), &mut buf, &mut heap);
        for (p, &(_, w)) in projections.chunks_exact_mut(rank).zip(self.rank_one) {
            F::project_into(v, rank, w, p);
        }
        let terms: Vec<(F, &[F])> = self.rank_one.iter().map(|&(c, w)| (scale * c, w)).collect();
        let outer = Outer { terms: &terms, p: projections };
        match self.base {
            // V = U: B U = U (U^T U), and the whole product is one pass over the rows.
            Base::Factor { u, rank: r, gram, .. } if std::ptr::eq(u, v) && r == rank => {
                F::rows_add(u, rank, (scale * self.alpha, gram), (scale, self.e), outer, out);
            }
            base => {
                if !matches!(base, Base::Zero) {
                    let dim = self.dim;
                    let mut column = vec![F::zero(); dim];
                    let mut product = vec![F::zero(); dim];
                    for k in 0..rank {
                        (0..dim).for_each(|i| column[i] = v[i * rank + k]);
                        product.iter_mut().for_each(|p| *p = F::zero());
                        base.apply_add(dim, &column, scale * self.alpha, &mut product);
                        (0..dim).for_each(|i| out[i * rank + k] += product[i]);
                    }
                }
                F::rows_add(v, rank, (F::zero(), &vec![F::zero(); rank * rank]), (scale, self.e), outer, out);
            }
        }
    }

    /// `out += scale * diag(M)`: `M_ii = alpha B_ii + e_i + sum_j c_j w_ji^2`.
    pub fn diag_add(&self, scale: F, out: &mut [F]) {
        self.base.diag_add(self.dim, scale * self.alpha, out);
        out.iter_mut().zip(self.e).for_each(|(o, e)| *o += scale * *e);
        for &(c, w) in self.rank_one {
            out.iter_mut().zip(w).for_each(|(o, wi)| *o += scale * c * *wi * *wi);
        }
    }

    /// `M_ij`.
    pub fn entry(&self, i: usize, j: usize) -> F {
        let mut v = self.alpha * self.base.entry(self.dim, i, j);
        if i == j {
            v += self.e[i];
        }
        for &(c, w) in self.rank_one {
            v += c * w[i] * w[j];
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::ThinFactor;
    use crate::testing::{assert_close, test_rng};
    use rand_distr::{Distribution, StandardNormal};

    fn dense(m: &StructuredSym<f64>) -> Vec<f64> {
        let d = m.dim;
        (0..d * d).map(|k| m.entry(k / d, k % d)).collect()
    }

    #[test]
    fn closed_forms_equal_dense_computations() {
        // Dimensions below, across and past one block; ranks in the block path and past it.
        for (dim, rank) in [(5, 3), (19, 10), (5, 17)] {
            check_closed_forms(dim, rank);
        }
    }

    fn check_closed_forms(dim: usize, rank: usize) {
        let mut rng = test_rng(9);
        let mut draw = |n: usize| -> Vec<f64> { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() };
        let (u, s0, e, w1, w2, x) =
            (draw(dim * rank), draw(dim * dim), draw(dim), draw(dim), draw(dim), draw(dim));
        let w3 = draw(dim * rank);
        let s: Vec<f64> = (0..dim * dim).map(|k| s0[k] + s0[(k % dim) * dim + k / dim]).collect();
        let rank_one = [(0.7, &w1[..]), (-1.3, &w2[..]), (0.7, &w1[..])];
        let (mut gram, mut norms) = (vec![0.0; rank * rank], vec![0.0; dim]);
        f64::gram_into(&u, rank, &mut gram, &mut norms);
        let factor = Base::Factor { u: &u, rank, gram: &gram, norms: &norms };
        for base in [Base::Zero, factor, Base::Dense(&s)] {
            let m = StructuredSym { dim, alpha: 1.7, base, e: &e, rank_one: &rank_one };
            let what = format!("D = {dim}, r = {rank}, {base:?}");
            let full = dense(&m);
            let frob: f64 = full.iter().map(|v| v * v).sum();
            let trace: f64 = (0..dim).map(|i| full[i * dim + i]).sum();
            let mx: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| full[i * dim + j] * x[j]).sum()).collect();
            let quad: f64 = mx.iter().zip(&x).map(|(a, b)| a * b).sum();
            let tol = 64.0 * f64::EPSILON * (dim * rank) as f64;
            let scalars = [m.frob_sq(), m.trace(), m.quad(&x)];
            assert_close(&scalars, &[frob, trace, quad], tol * 10.0, &format!("{what}: scalars"));
            let mut got = vec![0.0; dim];
            m.apply_add(&x, 1.0, &mut got);
            assert_close(&got, &mx, tol, &format!("{what}: M x"));
            let mut diag = vec![1.0; dim];
            m.diag_add(2.0, &mut diag);
            let want: Vec<f64> = (0..dim).map(|i| 1.0 + 2.0 * full[i * dim + i]).collect();
            assert_close(&diag, &want, tol, &format!("{what}: diag"));
            // M V against the dense product, for U itself (the factor's own path) and another matrix.
            for v in [&u, &w3] {
                let mut got = vec![1.0; dim * rank];
                m.apply_to_columns_add(v, rank, 2.0, &mut got);
                let want: Vec<f64> = (0..dim * rank)
                    .map(|k| {
                        let (i, a) = (k / rank, k % rank);
                        1.0 + 2.0 * (0..dim).map(|j| full[i * dim + j] * v[j * rank + a]).sum::<f64>()
                    })
                    .collect();
                assert_close(&got, &want, tol, &format!("{what}: M V"));
            }
            let sym = (0..dim * dim).all(|k| (full[k] - full[(k % dim) * dim + k / dim]).abs() < tol);
            assert!(sym, "{what}: structured matrix must be symmetric");
        }
    }
}

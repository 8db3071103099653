//! Structured symmetric matrices `M = alpha B + diag(beta d + shift) + sum_j c_j w_j w_j^T`, with
//! `B = U U^T` (low rank), a dense symmetric `S`, or nothing. Second-order objectives are written with
//! them so that diagonal and low-rank losses cost O(D) and O(D r^2) per sample and never build a
//! `D x D` matrix (MATH.md Sec. 3, closed forms).
#![allow(non_snake_case)]

use crate::linalg::Real;

/// The base matrix `B` of a [`StructuredSym`].
#[derive(Clone, Copy, Debug)]
pub enum Base<'a, F> {
    /// `B = 0`.
    Zero,
    /// `B = U U^T`, `U` of shape `D x rank`, row-major, with its Gram matrix `U^T U` (see [`gram_into`]).
    Factor {
        /// The factor, row-major.
        u: &'a [F],
        /// Its number of columns.
        rank: usize,
        /// `U^T U`, `rank x rank`.
        gram: &'a [F],
    },
    /// A dense symmetric `D x D` matrix, row-major.
    Dense(&'a [F]),
}

/// Ranks up to this use fixed-width padded rows, which the compiler turns into full vector operations
/// (a rank-10 row would otherwise run as scalar remainder loops).
const LANES: usize = 16;

/// `row` zero-padded to [`LANES`] entries.
#[inline(always)]
fn padded<F: Real>(row: &[F]) -> [F; LANES] {
    let mut out = [F::zero(); LANES];
    out[..row.len()].copy_from_slice(row);
    out
}

/// The [`LANES`] entries of `u` from `start` (a fixed-size load); past the end, zero-padded. Lanes beyond
/// the row's own `rank` entries hold the next row's values: callers discard those lanes.
#[inline(always)]
fn lanes_at<F: Real>(u: &[F], start: usize) -> [F; LANES] {
    match u.get(start..start + LANES) {
        Some(window) => window.try_into().expect("a window of LANES entries"),
        None => padded(&u[start..]),
    }
}

/// `acc += a x` over all lanes.
#[inline(always)]
fn axpy<F: Real>(acc: &mut [F; LANES], a: F, x: &[F; LANES]) {
    for (s, v) in acc.iter_mut().zip(x) {
        *s += a * *v;
    }
}

/// `gram = U^T U` for row-major `U` (`D x rank`), accumulated row by row (contiguous, O(D r^2)).
pub fn gram_into<F: Real>(u: &[F], rank: usize, gram: &mut [F]) {
    if rank <= LANES {
        let mut acc = [[F::zero(); LANES]; LANES];
        for (i, row) in u.chunks_exact(rank).enumerate() {
            let p = lanes_at(u, i * rank);
            for (a, ua) in row.iter().enumerate() {
                axpy(&mut acc[a], *ua, &p);
            }
        }
        for (g, a) in gram.chunks_exact_mut(rank).zip(&acc) {
            g.copy_from_slice(&a[..rank]);
        }
        return;
    }
    gram.iter_mut().for_each(|g| *g = F::zero());
    for row in u.chunks_exact(rank) {
        for (a, ua) in row.iter().enumerate() {
            for (g, ub) in gram[a * rank..(a + 1) * rank].iter_mut().zip(row) {
                *g += *ua * *ub;
            }
        }
    }
}

/// `U^T x` (length `rank`) for row-major `U`.
fn project<F: Real>(u: &[F], rank: usize, x: &[F], out: &mut [F]) {
    if rank <= LANES {
        let mut acc = [F::zero(); LANES];
        for (i, xi) in x.iter().enumerate().take(u.len() / rank) {
            axpy(&mut acc, *xi, &lanes_at(u, i * rank));
        }
        out.copy_from_slice(&acc[..rank]);
        return;
    }
    out.iter_mut().for_each(|o| *o = F::zero());
    for (row, xi) in u.chunks_exact(rank).zip(x) {
        out.iter_mut().zip(row).for_each(|(o, r)| *o += *r * *xi);
    }
}

/// Scratch length for [`Base`] operations of rank `r` (a projection buffer).
const MAX_STACK_RANK: usize = 64;

impl<F: Real> Base<'_, F> {
    /// `<B, B>_F`; for `U U^T` this is `||U^T U||_F^2`.
    fn self_inner(&self, _dim: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { gram, .. } => gram.iter().map(|v| *v * *v).sum(),
            Base::Dense(s) => s.iter().map(|v| *v * *v).sum(),
        }
    }

    /// `B_ii`.
    fn diag_entry(&self, dim: usize, i: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { u, rank, .. } => u[i * rank..(i + 1) * rank].iter().map(|v| *v * *v).sum(),
            Base::Dense(s) => s[i * dim + i],
        }
    }

    /// `B_ij`.
    fn entry(&self, dim: usize, i: usize, j: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { u, rank, .. } => (0..rank).map(|k| u[i * rank + k] * u[j * rank + k]).sum(),
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
                project(u, rank, x, t);
                for (o, row) in out.iter_mut().zip(u.chunks_exact(rank)) {
                    *o += scale * row.iter().zip(t.iter()).map(|(a, b)| *a * *b).sum::<F>();
                }
            }
            Base::Dense(s) => {
                for i in 0..dim {
                    out[i] +=
                        scale * s[i * dim..(i + 1) * dim].iter().zip(x).map(|(a, b)| *a * *b).sum::<F>();
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
                project(u, rank, x, t);
                t.iter().map(|v| *v * *v).sum()
            }
            Base::Dense(_) => {
                let mut bx = vec![F::zero(); dim];
                self.apply_add(dim, x, F::one(), &mut bx);
                bx.iter().zip(x).map(|(a, b)| *a * *b).sum()
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

/// `M = alpha B + diag(beta d + shift) + sum_j c_j w_j w_j^T` (`d` may be absent, meaning 0).
#[derive(Clone, Copy, Debug)]
pub struct StructuredSym<'a, F> {
    /// Dimension `D`.
    pub dim: usize,
    /// Coefficient of the base.
    pub alpha: F,
    /// The base `B`.
    pub base: Base<'a, F>,
    /// Coefficient of the diagonal vector `d`.
    pub beta: F,
    /// The diagonal vector `d`, if any.
    pub d: Option<&'a [F]>,
    /// A multiple of the identity.
    pub shift: F,
    /// Rank-one terms `(c_j, w_j)`.
    pub rank_one: &'a [(F, &'a [F])],
}

impl<F: Real> StructuredSym<'_, F> {
    /// The diagonal part `e_i = beta d_i + shift`.
    fn e(&self, i: usize) -> F {
        self.d.map_or(F::zero(), |d| self.beta * d[i]) + self.shift
    }

    /// `||M||_F^2` from pairwise inner products of the terms, in O(D r^2 + D J^2).
    pub fn frob_sq(&self) -> F {
        let (dim, two) = (self.dim, F::of(2.0));
        let mut total = self.alpha * self.alpha * self.base.self_inner(dim);
        for i in 0..dim {
            let e = self.e(i);
            total += e * e + two * self.alpha * e * self.base.diag_entry(dim, i);
        }
        for (j, &(c, w)) in self.rank_one.iter().enumerate() {
            total += two * self.alpha * c * self.base.quad(dim, w);
            total += two * c * (0..dim).map(|i| self.e(i) * w[i] * w[i]).sum::<F>();
            for (k, &(c2, w2)) in self.rank_one.iter().enumerate().skip(j) {
                let overlap: F = w.iter().zip(w2).map(|(a, b)| *a * *b).sum();
                let pair = c * c2 * overlap * overlap;
                total += if k == j { pair } else { two * pair };
            }
        }
        total
    }

    /// `tr M`.
    pub fn trace(&self) -> F {
        let dim = self.dim;
        let mut total: F = (0..dim).map(|i| self.alpha * self.base.diag_entry(dim, i) + self.e(i)).sum();
        for &(c, w) in self.rank_one {
            total += c * w.iter().map(|v| *v * *v).sum::<F>();
        }
        total
    }

    /// `x^T M x`.
    pub fn quad(&self, x: &[F]) -> F {
        let mut total = self.alpha * self.base.quad(self.dim, x);
        total += (0..self.dim).map(|i| self.e(i) * x[i] * x[i]).sum::<F>();
        for &(c, w) in self.rank_one {
            let t: F = w.iter().zip(x).map(|(a, b)| *a * *b).sum();
            total += c * t * t;
        }
        total
    }

    /// `out += scale * M x`.
    pub fn apply_add(&self, x: &[F], scale: F, out: &mut [F]) {
        self.base.apply_add(self.dim, x, scale * self.alpha, out);
        for i in 0..self.dim {
            out[i] += scale * self.e(i) * x[i];
        }
        for &(c, w) in self.rank_one {
            let t: F = w.iter().zip(x).map(|(a, b)| *a * *b).sum::<F>() * c * scale;
            out.iter_mut().zip(w).for_each(|(o, wi)| *o += t * *wi);
        }
    }

    /// `out += scale * M V` for a row-major `D x rank` matrix `V`, in O(D r^2) with contiguous access:
    /// `M V = alpha B V + e o V + sum_j c_j w_j (w_j^T V)`, `B V = U (U^T V)`.
    pub fn apply_to_columns_add(&self, v: &[F], rank: usize, scale: F, out: &mut [F]) {
        let dim = self.dim;
        let mut buf = [F::zero(); MAX_STACK_RANK];
        let mut heap = Vec::new();
        let t = scratch(rank * rank.max(1), &mut buf, &mut heap);
        match self.base {
            Base::Zero => {}
            Base::Factor { u, rank: r, gram } if std::ptr::eq(u, v) && r == rank => {
                // B V = U (U^T U) for V = U: reuse the Gram matrix.
                let f = scale * self.alpha;
                if rank <= LANES {
                    let mut rows = [[F::zero(); LANES]; LANES];
                    for (r, g) in rows.iter_mut().zip(gram.chunks_exact(rank)) {
                        *r = padded(g);
                    }
                    for (o, row) in out.chunks_exact_mut(rank).zip(u.chunks_exact(rank)) {
                        let mut acc = [F::zero(); LANES];
                        for (ua, g) in row.iter().zip(&rows) {
                            axpy(&mut acc, *ua, g);
                        }
                        o.iter_mut().zip(&acc).for_each(|(ob, a)| *ob += f * *a);
                    }
                } else {
                    for (o, row) in out.chunks_exact_mut(rank).zip(u.chunks_exact(rank)) {
                        for (ua, gram_row) in row.iter().zip(gram.chunks_exact(rank)) {
                            o.iter_mut().zip(gram_row).for_each(|(ob, g)| *ob += f * *ua * *g);
                        }
                    }
                }
            }
            base => {
                let mut column = vec![F::zero(); dim];
                let mut product = vec![F::zero(); dim];
                for k in 0..rank {
                    (0..dim).for_each(|i| column[i] = v[i * rank + k]);
                    product.iter_mut().for_each(|p| *p = F::zero());
                    base.apply_add(dim, &column, scale * self.alpha, &mut product);
                    (0..dim).for_each(|i| out[i * rank + k] += product[i]);
                }
            }
        }
        for ((o, row), i) in out.chunks_exact_mut(rank).zip(v.chunks_exact(rank)).zip(0..dim) {
            let e = scale * self.e(i);
            o.iter_mut().zip(row).for_each(|(ob, vb)| *ob += e * *vb);
        }
        for &(c, w) in self.rank_one {
            let wv = &mut t[..rank];
            project(v, rank, w, wv);
            for (o, wi) in out.chunks_exact_mut(rank).zip(w) {
                let f = scale * c * *wi;
                o.iter_mut().zip(wv.iter()).for_each(|(ob, p)| *ob += f * *p);
            }
        }
    }

    /// `M_ii`.
    pub fn diag_entry(&self, i: usize) -> F {
        let mut v = self.alpha * self.base.diag_entry(self.dim, i) + self.e(i);
        for &(c, w) in self.rank_one {
            v += c * w[i] * w[i];
        }
        v
    }

    /// `M_ij`.
    pub fn entry(&self, i: usize, j: usize) -> F {
        let mut v = self.alpha * self.base.entry(self.dim, i, j);
        if i == j {
            v += self.e(i);
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
    use crate::testing::{assert_close, test_rng};
    use rand_distr::{Distribution, StandardNormal};

    fn dense(m: &StructuredSym<f64>) -> Vec<f64> {
        let d = m.dim;
        (0..d * d).map(|k| m.entry(k / d, k % d)).collect()
    }

    #[test]
    fn closed_forms_equal_dense_computations() {
        let mut rng = test_rng(9);
        let dim = 5;
        let mut draw = |n: usize| -> Vec<f64> { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() };
        let (u, s0, d, w1, w2, x) =
            (draw(dim * 3), draw(dim * dim), draw(dim), draw(dim), draw(dim), draw(dim));
        let w3 = draw(dim * 3);
        let s: Vec<f64> = (0..dim * dim).map(|k| s0[k] + s0[(k % dim) * dim + k / dim]).collect();
        let rank_one = [(0.7, &w1[..]), (-1.3, &w2[..]), (0.7, &w1[..])];
        let mut gram = vec![0.0; 9];
        gram_into(&u, 3, &mut gram);
        for base in [Base::Zero, Base::Factor { u: &u, rank: 3, gram: &gram }, Base::Dense(&s)] {
            let m = StructuredSym {
                dim,
                alpha: 1.7,
                base,
                beta: -0.4,
                d: Some(&d),
                shift: 2.5,
                rank_one: &rank_one,
            };
            let full = dense(&m);
            let frob: f64 = full.iter().map(|v| v * v).sum();
            let trace: f64 = (0..dim).map(|i| full[i * dim + i]).sum();
            let mx: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| full[i * dim + j] * x[j]).sum()).collect();
            let quad: f64 = mx.iter().zip(&x).map(|(a, b)| a * b).sum();
            let tol = 64.0 * f64::EPSILON * dim as f64;
            assert_close(&[m.frob_sq(), m.trace(), m.quad(&x)], &[frob, trace, quad], tol * 10.0, "scalars");
            let mut got = vec![0.0; dim];
            m.apply_add(&x, 1.0, &mut got);
            assert_close(&got, &mx, tol, "M x");
            let diag: Vec<f64> = (0..dim).map(|i| m.diag_entry(i)).collect();
            assert_close(&diag, &(0..dim).map(|i| full[i * dim + i]).collect::<Vec<_>>(), tol, "diag");
            // M U against the dense product, for U itself (Gram path) and another matrix.
            for v in [&u, &w3] {
                let mut got = vec![0.0; dim * 3];
                m.apply_to_columns_add(v, 3, 2.0, &mut got);
                let want: Vec<f64> = (0..dim * 3)
                    .map(|k| 2.0 * (0..dim).map(|j| full[(k / 3) * dim + j] * v[j * 3 + k % 3]).sum::<f64>())
                    .collect();
                assert_close(&got, &want, tol, "M V");
            }
            let sym = (0..dim * dim).all(|k| (full[k] - full[(k % dim) * dim + k / dim]).abs() < tol);
            assert!(sym, "structured matrix must be symmetric");
        }
    }
}

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
    /// `B = U U^T`, `U` of shape `D x rank`, row-major.
    Factor {
        /// The factor, row-major.
        u: &'a [F],
        /// Its number of columns.
        rank: usize,
    },
    /// A dense symmetric `D x D` matrix, row-major.
    Dense(&'a [F]),
}

impl<F: Real> Base<'_, F> {
    /// `<B, B>_F`; for `U U^T` this is `||U^T U||_F^2`.
    fn self_inner(&self, dim: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { u, rank } => {
                let mut total = F::zero();
                for a in 0..rank {
                    for b in 0..rank {
                        let g: F = (0..dim).map(|i| u[i * rank + a] * u[i * rank + b]).sum();
                        total += g * g;
                    }
                }
                total
            }
            Base::Dense(s) => s.iter().map(|v| *v * *v).sum(),
        }
    }

    /// `B_ii`.
    fn diag_entry(&self, dim: usize, i: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { u, rank } => u[i * rank..(i + 1) * rank].iter().map(|v| *v * *v).sum(),
            Base::Dense(s) => s[i * dim + i],
        }
    }

    /// `B_ij`.
    fn entry(&self, dim: usize, i: usize, j: usize) -> F {
        match *self {
            Base::Zero => F::zero(),
            Base::Factor { u, rank } => (0..rank).map(|k| u[i * rank + k] * u[j * rank + k]).sum(),
            Base::Dense(s) => s[i * dim + j],
        }
    }

    /// `out += scale * B x`.
    fn apply_add(&self, dim: usize, x: &[F], scale: F, out: &mut [F]) {
        match *self {
            Base::Zero => {}
            Base::Factor { u, rank } => {
                for k in 0..rank {
                    let t: F = (0..dim).map(|i| u[i * rank + k] * x[i]).sum::<F>() * scale;
                    (0..dim).for_each(|i| out[i] += u[i * rank + k] * t);
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
            Base::Factor { u, rank } => (0..rank)
                .map(|k| {
                    let t: F = (0..dim).map(|i| u[i * rank + k] * x[i]).sum();
                    t * t
                })
                .sum(),
            Base::Dense(_) => {
                let mut bx = vec![F::zero(); dim];
                self.apply_add(dim, x, F::one(), &mut bx);
                bx.iter().zip(x).map(|(a, b)| *a * *b).sum()
            }
        }
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
        let s: Vec<f64> = (0..dim * dim).map(|k| s0[k] + s0[(k % dim) * dim + k / dim]).collect();
        let rank_one = [(0.7, &w1[..]), (-1.3, &w2[..]), (0.7, &w1[..])];
        for base in [Base::Zero, Base::Factor { u: &u, rank: 3 }, Base::Dense(&s)] {
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
            let sym = (0..dim * dim).all(|k| (full[k] - full[(k % dim) * dim + k / dim]).abs() < tol);
            assert!(sym, "structured matrix must be symmetric");
        }
    }
}

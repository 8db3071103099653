//! The curvature (score Hessian) of many chains in the structure its source has: dense, diagonal, or
//! low-rank plus diagonal, with the three operations Ozaki needs (matrix-vector product, diagonal, dense).
#![allow(non_snake_case)] // H, U as in the math

use crate::models::SecondOrderHead;
use serde::{Deserialize, Serialize};

/// The structure of a curvature matrix $H = s_2(x)$ (symmetric, `D x D`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CurvatureLayout {
    /// `D * D` numbers, row-major.
    Dense,
    /// `D` numbers: $H = \operatorname{diag}(d)$.
    Diagonal,
    /// `D r + D` numbers: $H = U U^\top + \operatorname{diag}(d)$, `U` (`D x r`, row-major) then `d`.
    LowRank {
        /// The rank `r` of `U`.
        rank: usize,
    },
}

impl CurvatureLayout {
    /// The structure of a learned second-order head's `S2`: its raw outputs are already in this layout
    /// (the full head's packed upper triangle is unpacked to `Dense`).
    pub(crate) fn of_head(head: SecondOrderHead) -> Self {
        match head {
            SecondOrderHead::Full => CurvatureLayout::Dense,
            SecondOrderHead::Diagonal => CurvatureLayout::Diagonal,
            SecondOrderHead::LowRank { rank } => CurvatureLayout::LowRank { rank },
        }
    }

    /// Numbers stored per chain for dimension `dim`.
    pub fn block_len(self, dim: usize) -> usize {
        match self {
            CurvatureLayout::Dense => dim * dim,
            CurvatureLayout::Diagonal => dim,
            CurvatureLayout::LowRank { rank } => dim * rank + dim,
        }
    }
}

/// The curvature of `N` chains, one block of [`CurvatureLayout::block_len`] numbers per chain, filled
/// by a [`CurvatureSource`](super::source::CurvatureSource).
#[derive(Clone, Debug, PartialEq)]
pub struct CurvatureBatch {
    layout: CurvatureLayout,
    dim: usize,
    data: Vec<f64>,
}

impl CurvatureBatch {
    /// An empty batch of the given structure.
    pub fn new(layout: CurvatureLayout, dim: usize) -> Self {
        Self { layout, dim, data: Vec::new() }
    }

    /// The structure.
    pub fn layout(&self) -> CurvatureLayout {
        self.layout
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Numbers per chain.
    pub fn block_len(&self) -> usize {
        self.layout.block_len(self.dim)
    }

    /// Number of chains held.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.block_len()).unwrap_or(0)
    }

    /// True when no chain is held.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Resizes to `n` chains (contents unspecified) and returns the blocks, one per chain, to fill.
    pub fn resize(&mut self, n: usize) -> &mut [f64] {
        self.data.resize(n * self.block_len(), 0.0);
        &mut self.data
    }

    /// The raw blocks.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The curvature of chain `i`.
    #[track_caller]
    pub fn chain(&self, i: usize) -> CurvatureView<'_> {
        let b = self.block_len();
        CurvatureView::new(self.layout, self.dim, &self.data[i * b..(i + 1) * b])
    }
}

/// The curvature of one chain, borrowed from a [`CurvatureBatch`].
#[derive(Clone, Copy, Debug)]
pub enum CurvatureView<'a> {
    /// Row-major `D x D`.
    Dense {
        /// The entries.
        h: &'a [f64],
        /// `D`.
        dim: usize,
    },
    /// $\operatorname{diag}(d)$.
    Diagonal {
        /// The diagonal `d`.
        d: &'a [f64],
    },
    /// $U U^\top + \operatorname{diag}(d)$.
    LowRank {
        /// `U`, `D x r` row-major.
        u: &'a [f64],
        /// The diagonal `d`.
        d: &'a [f64],
        /// `r`.
        rank: usize,
    },
}

impl<'a> CurvatureView<'a> {
    /// Reads one block of the given layout.
    #[track_caller]
    pub fn new(layout: CurvatureLayout, dim: usize, block: &'a [f64]) -> Self {
        assert_eq!(
            block.len(),
            layout.block_len(dim),
            "CurvatureView: block length for {layout:?}, D = {dim}"
        );
        match layout {
            CurvatureLayout::Dense => CurvatureView::Dense { h: block, dim },
            CurvatureLayout::Diagonal => CurvatureView::Diagonal { d: block },
            CurvatureLayout::LowRank { rank } => {
                assert!(rank >= 1, "CurvatureView: a low-rank layout needs rank >= 1");
                let (u, d) = block.split_at(dim * rank);
                CurvatureView::LowRank { u, d, rank }
            }
        }
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        match *self {
            CurvatureView::Dense { dim, .. } => dim,
            CurvatureView::Diagonal { d } | CurvatureView::LowRank { d, .. } => d.len(),
        }
    }

    /// `out = H v`. Costs $O(D^2)$ dense, $O(D)$ diagonal, $O(D r)$ low-rank (no `D x D` matrix).
    #[track_caller]
    pub fn matvec(&self, v: &[f64], out: &mut [f64]) {
        let D = self.dim();
        assert!(v.len() == D && out.len() == D, "CurvatureView::matvec: vectors must have length {D}");
        match *self {
            CurvatureView::Dense { h, .. } => {
                for (o, row) in out.iter_mut().zip(h.chunks_exact(D)) {
                    *o = row.iter().zip(v).map(|(a, b)| a * b).sum();
                }
            }
            CurvatureView::Diagonal { d } => {
                for ((o, di), vi) in out.iter_mut().zip(d).zip(v) {
                    *o = di * vi;
                }
            }
            CurvatureView::LowRank { u, d, rank } => {
                // U^T v (length r), then U (U^T v) + d v.
                let mut utv = vec![0.0; rank];
                for (row, vi) in u.chunks_exact(rank).zip(v) {
                    for (t, uik) in utv.iter_mut().zip(row) {
                        *t += uik * vi;
                    }
                }
                for (((o, row), di), vi) in out.iter_mut().zip(u.chunks_exact(rank)).zip(d).zip(v) {
                    *o = row.iter().zip(utv.iter()).map(|(a, b)| a * b).sum::<f64>() + di * vi;
                }
            }
        }
    }

    /// The diagonal of `H` into `out` (length `D`).
    #[track_caller]
    pub fn diagonal_into(&self, out: &mut [f64]) {
        let D = self.dim();
        assert_eq!(out.len(), D, "CurvatureView::diagonal_into: out must have length {D}");
        match *self {
            CurvatureView::Dense { h, .. } => out.iter_mut().enumerate().for_each(|(i, o)| *o = h[i * D + i]),
            CurvatureView::Diagonal { d } => out.copy_from_slice(d),
            CurvatureView::LowRank { u, d, rank } => {
                for ((o, row), di) in out.iter_mut().zip(u.chunks_exact(rank)).zip(d) {
                    *o = row.iter().map(|a| a * a).sum::<f64>() + di;
                }
            }
        }
    }

    /// The dense `H` into `out` (`D * D`, row-major).
    #[track_caller]
    pub fn dense_into(&self, out: &mut [f64]) {
        let D = self.dim();
        assert_eq!(out.len(), D * D, "CurvatureView::dense_into: out must have length {}", D * D);
        match *self {
            CurvatureView::Dense { h, .. } => out.copy_from_slice(h),
            CurvatureView::Diagonal { d } => {
                out.fill(0.0);
                d.iter().enumerate().for_each(|(i, di)| out[i * D + i] = *di);
            }
            CurvatureView::LowRank { u, d, rank } => {
                for i in 0..D {
                    let ui = &u[i * rank..(i + 1) * rank];
                    for j in 0..D {
                        let uj = &u[j * rank..(j + 1) * rank];
                        out[i * D + j] = ui.iter().zip(uj).map(|(a, b)| a * b).sum();
                    }
                    out[i * D + i] += d[i];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, normal_mat, test_rng};

    #[test]
    fn matvec_and_diagonal_agree_with_the_dense_matrix_for_every_layout() {
        let D = 5;
        let mut rng = test_rng(3);
        for layout in
            [CurvatureLayout::Dense, CurvatureLayout::Diagonal, CurvatureLayout::LowRank { rank: 2 }]
        {
            let block = normal_mat(1, layout.block_len(D), &mut rng).into_vec();
            let view = CurvatureView::new(layout, D, &block);
            let mut dense = vec![0.0; D * D];
            view.dense_into(&mut dense);
            let v = normal_mat(1, D, &mut rng).into_vec();
            let (mut hv, mut diag) = (vec![0.0; D], vec![0.0; D]);
            view.matvec(&v, &mut hv);
            view.diagonal_into(&mut diag);
            let want: Vec<f64> = (0..D).map(|i| (0..D).map(|j| dense[i * D + j] * v[j]).sum()).collect();
            let tol = 16.0 * f64::EPSILON * D as f64;
            assert_close(&hv, &want, tol, "H v");
            let want_diag: Vec<f64> = (0..D).map(|i| dense[i * D + i]).collect();
            assert_close(&diag, &want_diag, tol, "diag H");
        }
    }

    #[test]
    fn batches_hold_one_block_per_chain() {
        let mut b = CurvatureBatch::new(CurvatureLayout::LowRank { rank: 3 }, 4);
        assert_eq!(b.block_len(), 16);
        b.resize(5);
        assert_eq!((b.len(), b.is_empty()), (5, false));
        assert!(matches!(b.chain(4), CurvatureView::LowRank { rank: 3, .. }));
    }
}

//! Products with a thin row-major factor `U` (`D x r`, `r` small: the low-rank second-order head), one
//! sample at a time: `U^T U` with the row norms, `U^T x`, `U t`, and the row update
//! `out += q U Q + f diag(e) U + sum_j c_j w_j p_j^T`.
//!
//! Portable loops serve every type and rank. For f32 with `r <= 32` on a CPU with AVX-512, a row of `U`
//! is one or two masked 16-lane registers and these run as register kernels: the compiler's own
//! vectorisation of such short rows of run-time length is poor (scalar remainders, or gathers across
//! rows).
#![allow(unsafe_code)] // the AVX-512 kernels: intrinsics behind run-time feature detection.

use num_traits::Float;
use std::ops::AddAssign;

/// The terms `c_j w_j p_j^T` of [`ThinFactor::rows_add`]: coefficients and `D`-vectors `(c_j, w_j)`,
/// and the `r`-vectors `p_j` stacked row-major (`J x r`).
#[derive(Clone, Copy, Debug)]
pub struct Outer<'a, F> {
    /// `(c_j, w_j)`.
    pub terms: &'a [(F, &'a [F])],
    /// `p_j`, row `j` of a `J x r` matrix.
    pub p: &'a [F],
}

/// Products with a thin factor; the defaults are the portable loops.
pub trait ThinFactor: Float + AddAssign + 'static {
    /// `gram = U^T U` (`r x r`) and `norms_i = ||U_i||^2`, in one pass over the rows:
    /// `U^T U = sum_i U_i^T U_i`.
    fn gram_into(u: &[Self], rank: usize, gram: &mut [Self], norms: &mut [Self]) {
        portable::gram_into(u, rank, gram, norms);
    }

    /// `out = U^T x` (length `r`): `sum_i x_i U_i`.
    fn project_into(u: &[Self], rank: usize, x: &[Self], out: &mut [Self]) {
        portable::project_into(u, rank, x, out);
    }

    /// `out_i += scale U_i . t`.
    fn apply_add(u: &[Self], rank: usize, t: &[Self], scale: Self, out: &mut [Self]) {
        portable::apply_add(u, rank, t, scale, out);
    }

    /// `out_i += q U_i Q + f e_i U_i + sum_j c_j w_ji p_j` for rows `out_i` of a `D x r` matrix, `Q`
    /// symmetric `r x r` (row `i` of `U Q` is `sum_b u_ib Q_b`).
    #[allow(clippy::too_many_arguments)]
    fn rows_add(
        u: &[Self],
        rank: usize,
        (q, gram): (Self, &[Self]),
        (f, e): (Self, &[Self]),
        outer: Outer<'_, Self>,
        out: &mut [Self],
    ) {
        portable::rows_add(u, rank, (q, gram), (f, e), outer, out);
    }
}

impl ThinFactor for f64 {}

/// Largest rank the AVX-512 kernels take (two registers per row).
#[cfg(target_arch = "x86_64")]
const MAX_SIMD_RANK: usize = 32;

/// True if the f32 kernels of rank `rank` can run on AVX-512.
#[cfg(target_arch = "x86_64")]
fn simd(rank: usize) -> bool {
    (1..=MAX_SIMD_RANK).contains(&rank) && std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
impl ThinFactor for f32 {}

#[cfg(target_arch = "x86_64")]
impl ThinFactor for f32 {
    fn gram_into(u: &[f32], rank: usize, gram: &mut [f32], norms: &mut [f32]) {
        if simd(rank) {
            check_shapes(u, rank, norms.len());
            assert_eq!(gram.len(), rank * rank, "gram_into: gram is not rank x rank");
            // SAFETY: avx512f was detected at run time; shapes were checked above.
            unsafe { avx512::gram_into(u, rank, gram, norms) }
        } else {
            portable::gram_into(u, rank, gram, norms);
        }
    }

    fn project_into(u: &[f32], rank: usize, x: &[f32], out: &mut [f32]) {
        if simd(rank) {
            check_shapes(u, rank, x.len());
            assert_eq!(out.len(), rank, "project_into: output length");
            // SAFETY: avx512f was detected at run time; shapes were checked above.
            unsafe { avx512::project_into(u, rank, x, out) }
        } else {
            portable::project_into(u, rank, x, out);
        }
    }

    fn apply_add(u: &[f32], rank: usize, t: &[f32], scale: f32, out: &mut [f32]) {
        if simd(rank) {
            check_shapes(u, rank, out.len());
            assert_eq!(t.len(), rank, "apply_add: t length");
            // SAFETY: avx512f was detected at run time; shapes were checked above.
            unsafe { avx512::apply_add(u, rank, t, scale, out) }
        } else {
            portable::apply_add(u, rank, t, scale, out);
        }
    }

    fn rows_add(
        u: &[f32],
        rank: usize,
        (q, gram): (f32, &[f32]),
        (f, e): (f32, &[f32]),
        outer: Outer<'_, f32>,
        out: &mut [f32],
    ) {
        if simd(rank) {
            check_shapes(u, rank, e.len());
            assert_eq!(gram.len(), rank * rank, "rows_add: Q is not rank x rank");
            assert_eq!(out.len(), u.len(), "rows_add: output shape");
            assert_eq!(outer.p.len(), outer.terms.len() * rank, "rows_add: p is not J x rank");
            assert!(outer.terms.iter().all(|(_, w)| w.len() == e.len()), "rows_add: w_j length");
            // SAFETY: avx512f was detected at run time; shapes were checked above.
            unsafe { avx512::rows_add(u, rank, (q, gram), (f, e), outer, out) }
        } else {
            portable::rows_add(u, rank, (q, gram), (f, e), outer, out);
        }
    }
}

/// Panics unless `u` holds `dim` rows of `rank` entries.
#[cfg(target_arch = "x86_64")]
#[track_caller]
fn check_shapes(u: &[f32], rank: usize, dim: usize) {
    assert_eq!(u.len(), dim * rank, "thin factor: U is not {dim} x {rank}");
}

/// The portable loops.
mod portable {
    use super::{Outer, ThinFactor};

    pub fn gram_into<F: ThinFactor>(u: &[F], rank: usize, gram: &mut [F], norms: &mut [F]) {
        gram.iter_mut().for_each(|g| *g = F::zero());
        for (row, norm) in u.chunks_exact(rank).zip(norms.iter_mut()) {
            for (a, ua) in row.iter().enumerate() {
                for (g, ub) in gram[a * rank..(a + 1) * rank].iter_mut().zip(row) {
                    *g += *ua * *ub;
                }
            }
            *norm = row.iter().fold(F::zero(), |s, v| s + *v * *v);
        }
    }

    pub fn project_into<F: ThinFactor>(u: &[F], rank: usize, x: &[F], out: &mut [F]) {
        out.iter_mut().for_each(|o| *o = F::zero());
        for (row, xi) in u.chunks_exact(rank).zip(x) {
            out.iter_mut().zip(row).for_each(|(o, r)| *o += *r * *xi);
        }
    }

    pub fn apply_add<F: ThinFactor>(u: &[F], rank: usize, t: &[F], scale: F, out: &mut [F]) {
        for (o, row) in out.iter_mut().zip(u.chunks_exact(rank)) {
            *o += scale * row.iter().zip(t).fold(F::zero(), |s, (a, b)| s + *a * *b);
        }
    }

    pub fn rows_add<F: ThinFactor>(
        u: &[F],
        rank: usize,
        (q, gram): (F, &[F]),
        (f, e): (F, &[F]),
        outer: Outer<'_, F>,
        out: &mut [F],
    ) {
        for (i, (o, row)) in out.chunks_exact_mut(rank).zip(u.chunks_exact(rank)).enumerate() {
            for (ub, gram_row) in row.iter().zip(gram.chunks_exact(rank)) {
                o.iter_mut().zip(gram_row).for_each(|(ob, g)| *ob += q * *ub * *g);
            }
            o.iter_mut().zip(row).for_each(|(ob, ua)| *ob += f * e[i] * *ua);
            for (&(c, w), p) in outer.terms.iter().zip(outer.p.chunks_exact(rank)) {
                o.iter_mut().zip(p).for_each(|(ob, pa)| *ob += c * w[i] * *pa);
            }
        }
    }
}

/// The AVX-512 kernels (f32, `1 <= rank <= 32`): the columns of `U` are taken in windows of at most 16
/// (one for `rank <= 16`, two above), and a row's window is one masked register. Callers check the
/// shapes and that avx512f is present.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Outer;
    use std::arch::x86_64::*;

    /// Columns `start .. start + width` (`1 <= width <= 16`) of a row-major matrix with `stride` columns.
    #[derive(Clone, Copy)]
    struct Window {
        stride: usize,
        start: usize,
        width: usize,
    }

    impl Window {
        /// The windows of 16 columns (the last one narrower) that cover `rank <= 32` columns.
        fn cover(rank: usize) -> impl Iterator<Item = Window> {
            (0..rank).step_by(16).map(move |start| Window {
                stride: rank,
                start,
                width: (rank - start).min(16),
            })
        }

        /// The mask of the window's lanes.
        fn mask(&self) -> __mmask16 {
            ((1u32 << self.width) - 1) as __mmask16
        }

        /// Offset of row `i`'s window.
        fn at(&self, i: usize) -> usize {
            i * self.stride + self.start
        }

        /// Row `i`'s window of `m`, zero past its width.
        ///
        /// # Safety
        /// avx512f is available and `m` holds the window of row `i` (`at(i) + width <= m.len()`).
        #[target_feature(enable = "avx512f")]
        unsafe fn row(&self, m: &[f32], i: usize) -> __m512 {
            debug_assert!(self.at(i) + self.width <= m.len());
            // SAFETY: the masked load reads only the window's lanes, inside `m` (caller).
            unsafe { _mm512_maskz_loadu_ps(self.mask(), m.as_ptr().add(self.at(i))) }
        }
    }

    /// # Safety
    /// avx512f is available; `u` is `norms.len() x rank`, `gram` is `rank x rank`, `rank <= 32`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gram_into(u: &[f32], rank: usize, gram: &mut [f32], norms: &mut [f32]) {
        let mut windows = Window::cover(rank);
        let Some(low) = windows.next() else { return };
        // SAFETY (all three): the caller's shapes.
        unsafe { gram_block(u, (low, low), gram, Some((norms, false))) };
        if let Some(high) = windows.next() {
            unsafe { gram_block(u, (low, high), gram, None) };
            unsafe { gram_block(u, (high, high), gram, Some((norms, true))) };
            for a in high.start..rank {
                for b in 0..low.width {
                    gram[a * rank + b] = gram[b * rank + a];
                }
            }
        }
    }

    /// The block `(a, b)` of `U^T U` for the column windows `a` and `b`, and with `norms` the squared
    /// norms of the rows' windows `b` (assigned, or added when the flag is set).
    ///
    /// # Safety
    /// As for [`gram_into`].
    #[target_feature(enable = "avx512f")]
    unsafe fn gram_block(
        u: &[f32],
        (a, b): (Window, Window),
        gram: &mut [f32],
        mut norms: Option<(&mut [f32], bool)>,
    ) {
        // Gram row `a.start + k` in register `acc[k]`; the loops over lanes are unrolled with constant
        // indices.
        let mut acc = [_mm512_setzero_ps(); 16];
        for (i, r) in u.chunks_exact(a.stride).enumerate() {
            // SAFETY: `u` holds row `i` (caller's shapes).
            let p = unsafe { b.row(u, i) };
            for (k, acc_k) in acc.iter_mut().enumerate() {
                if k < a.width {
                    *acc_k = _mm512_fmadd_ps(_mm512_set1_ps(r[a.start + k]), p, *acc_k);
                }
            }
            if let Some((norms, add)) = norms.as_mut() {
                let norm = _mm512_reduce_add_ps(_mm512_mul_ps(p, p));
                norms[i] = if *add { norms[i] + norm } else { norm };
            }
        }
        for (k, acc_k) in acc.into_iter().enumerate().take(a.width) {
            let g = &mut gram[(a.start + k) * a.stride + b.start..][..b.width];
            // SAFETY: the masked store writes `b.width` lanes, the length of `g`.
            unsafe { _mm512_mask_storeu_ps(g.as_mut_ptr(), b.mask(), acc_k) };
        }
    }

    /// # Safety
    /// avx512f is available; `u` is `x.len() x rank`, `out` has `rank` entries, `rank <= 32`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn project_into(u: &[f32], rank: usize, x: &[f32], out: &mut [f32]) {
        for w in Window::cover(rank) {
            // Four independent sums, so consecutive rows do not wait on each other's additions.
            let mut acc = [_mm512_setzero_ps(); 4];
            let quads = x.chunks_exact(4);
            let done = x.len() - quads.remainder().len();
            for (q, xs) in quads.enumerate() {
                for (k, acc_k) in acc.iter_mut().enumerate() {
                    // SAFETY: `u` holds row `4 q + k` (caller's shapes).
                    let p = unsafe { w.row(u, 4 * q + k) };
                    *acc_k = _mm512_fmadd_ps(_mm512_set1_ps(xs[k]), p, *acc_k);
                }
            }
            for (k, xk) in x[done..].iter().enumerate() {
                // SAFETY: `u` holds row `done + k` (caller's shapes).
                let p = unsafe { w.row(u, done + k) };
                acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(*xk), p, acc[k]);
            }
            let total = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
            let o = &mut out[w.start..w.start + w.width];
            // SAFETY: the masked store writes `w.width` lanes, the length of `o`.
            unsafe { _mm512_mask_storeu_ps(o.as_mut_ptr(), w.mask(), total) };
        }
    }

    /// # Safety
    /// avx512f is available; `u` is `out.len() x rank`, `t` has `rank` entries, `rank <= 32`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn apply_add(u: &[f32], rank: usize, t: &[f32], scale: f32, out: &mut [f32]) {
        for w in Window::cover(rank) {
            // SAFETY: the window of row 0 of the `1 x rank` vector `t`.
            let tw = _mm512_mul_ps(_mm512_set1_ps(scale), unsafe { w.row(t, 0) });
            for (i, o) in out.iter_mut().enumerate() {
                // SAFETY: `u` holds row `i` (caller's shapes).
                *o += _mm512_reduce_add_ps(_mm512_mul_ps(unsafe { w.row(u, i) }, tw));
            }
        }
    }

    /// # Safety
    /// avx512f is available; `u` and `out` are `e.len() x rank`, `gram` is `rank x rank`, `outer.p` is
    /// `J x rank` and every `w_j` has `e.len()` entries, `rank <= 32`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rows_add(
        u: &[f32],
        rank: usize,
        (q, gram): (f32, &[f32]),
        (f, e): (f32, &[f32]),
        outer: Outer<'_, f32>,
        out: &mut [f32],
    ) {
        for w in Window::cover(rank) {
            // SAFETY: the caller's shapes. Up to rank 16 the rows of `q Q` stay in registers.
            if rank <= 16 {
                unsafe { rows_add_window::<16>(u, w, (q, gram), (f, e), outer, out) };
            } else {
                unsafe { rows_add_window::<32>(u, w, (q, gram), (f, e), outer, out) };
            }
        }
    }

    /// [`rows_add`] on the columns of window `w`, for `rank <= RANKS`.
    ///
    /// # Safety
    /// As for [`rows_add`], and `rank <= RANKS`.
    #[target_feature(enable = "avx512f")]
    unsafe fn rows_add_window<const RANKS: usize>(
        u: &[f32],
        w: Window,
        (q, gram): (f32, &[f32]),
        (f, e): (f32, &[f32]),
        outer: Outer<'_, f32>,
        out: &mut [f32],
    ) {
        let rank = w.stride;
        // Row `b` of `q Q`, window `w`.
        let mut q_rows = [_mm512_setzero_ps(); RANKS];
        for (b, qb) in q_rows.iter_mut().enumerate().take(rank) {
            // SAFETY: row `b` of the `rank x rank` matrix `gram`.
            *qb = _mm512_mul_ps(_mm512_set1_ps(q), unsafe { w.row(gram, b) });
        }
        let dim = e.len();
        let out_base = out.as_mut_ptr();
        // Row `i < dim`'s window of `out` (inside `out`, caller's shapes).
        let out_row = |i: usize| out_base.wrapping_add(w.at(i));
        // Row `i + 1` of `out` is loaded before row `i` is stored: a masked store blocks later loads
        // within its whole 64 bytes until it retires, and the next row starts `4 rank` bytes on.
        // SAFETY: the masked load reads row 0's window of `out`.
        let mut next = if dim > 0 {
            unsafe { _mm512_maskz_loadu_ps(w.mask(), out_row(0)) }
        } else {
            _mm512_setzero_ps()
        };
        for (i, r) in u.chunks_exact(rank).enumerate() {
            let current = next;
            // SAFETY: `u` holds row `i` (caller's shapes).
            let p = unsafe { w.row(u, i) };
            // U_i Q as two interleaved sums, halving the chain of dependent additions; the loop over
            // the rank is unrolled with constant indices.
            let mut acc = [_mm512_mul_ps(_mm512_set1_ps(f * e[i]), p), _mm512_setzero_ps()];
            for (b, qb) in q_rows.iter().enumerate() {
                if b < rank {
                    acc[b % 2] = _mm512_fmadd_ps(_mm512_set1_ps(r[b]), *qb, acc[b % 2]);
                }
            }
            for (j, &(c, wj)) in outer.terms.iter().enumerate() {
                // SAFETY: row `j` of the `J x rank` matrix `outer.p`.
                let pj = unsafe { w.row(outer.p, j) };
                acc[1] = _mm512_fmadd_ps(_mm512_set1_ps(c * wj[i]), pj, acc[1]);
            }
            if i + 1 < dim {
                // SAFETY: the masked load reads row `i + 1`'s window of `out`.
                next = unsafe { _mm512_maskz_loadu_ps(w.mask(), out_row(i + 1)) };
            }
            let sum = _mm512_add_ps(current, _mm512_add_ps(acc[0], acc[1]));
            // SAFETY: the masked store writes row `i`'s window of `out`.
            unsafe { _mm512_mask_storeu_ps(out_row(i), w.mask(), sum) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kernel of `F` against the literal index sums in f64, at ranks below, at and past 16 and 32 and a
    /// dimension that is not a multiple of 4: `gram_ab = sum_i U_ia U_ib`, `norm_i = sum_a U_ia^2`,
    /// `(U^T x)_a = sum_i U_ia x_i`, `out_i = x_i + 0.7 sum_a U_ia t_a` and
    /// `out_ia = U_ia + q sum_b U_ib G_ba + f e_i U_ia + sum_j c_j w_ji p_ja`.
    fn check<F: ThinFactor + Into<f64>>(of: impl Fn(f64) -> F, tol: f64) {
        for (dim, rank) in [(7, 1), (13, 10), (9, 16), (6, 17), (11, 20), (5, 32), (6, 33)] {
            let draw = |n: usize, k: usize| -> Vec<f64> {
                (0..n).map(|i| ((i * 7 + k * 13) as f64 * 0.61).sin()).collect()
            };
            let (u, x, e, w1, w2, t) =
                (draw(dim * rank, 1), draw(dim, 2), draw(dim, 3), draw(dim, 4), draw(dim, 5), draw(rank, 6));
            let gram0 = draw(rank * rank, 7);
            let gram: Vec<f64> =
                (0..rank * rank).map(|k| gram0[k] + gram0[(k % rank) * rank + k / rank]).collect();
            let p = draw(2 * rank, 8);
            let at = |i: usize, a: usize| u[i * rank + a];
            let cast = |v: &[f64]| -> Vec<F> { v.iter().map(|a| of(*a)).collect() };
            let close = |got: &[F], want: &[f64], what: &str| {
                assert_eq!(got.len(), want.len(), "{what}: length");
                for (g, w) in got.iter().map(|a| (*a).into()).zip(want) {
                    let g: f64 = g;
                    assert!(
                        (g - w).abs() <= tol * (1.0 + w.abs()),
                        "D = {dim}, r = {rank}, {what}: {g} vs {w}"
                    );
                }
            };
            let (uf, xf, ef, tf) = (cast(&u), cast(&x), cast(&e), cast(&t));

            let (mut g, mut n) = (vec![F::zero(); rank * rank], vec![F::zero(); dim]);
            F::gram_into(&uf, rank, &mut g, &mut n);
            let want: Vec<f64> =
                (0..rank * rank).map(|k| (0..dim).map(|i| at(i, k / rank) * at(i, k % rank)).sum()).collect();
            close(&g, &want, "gram");
            let want: Vec<f64> = (0..dim).map(|i| (0..rank).map(|a| at(i, a).powi(2)).sum()).collect();
            close(&n, &want, "norms");

            let mut pf = vec![F::zero(); rank];
            F::project_into(&uf, rank, &xf, &mut pf);
            let want: Vec<f64> = (0..rank).map(|a| (0..dim).map(|i| at(i, a) * x[i]).sum()).collect();
            close(&pf, &want, "U^T x");

            let mut af = xf.clone();
            F::apply_add(&uf, rank, &tf, of(0.7), &mut af);
            let want: Vec<f64> =
                (0..dim).map(|i| x[i] + 0.7 * (0..rank).map(|a| at(i, a) * t[a]).sum::<f64>()).collect();
            close(&af, &want, "U t");

            let (w1f, w2f, gramf, pf) = (cast(&w1), cast(&w2), cast(&gram), cast(&p));
            let termsf = [(of(0.3), &w1f[..]), (of(-1.1), &w2f[..])];
            let mut rf = uf.clone();
            F::rows_add(
                &uf,
                rank,
                (of(0.9), &gramf),
                (of(-0.4), &ef),
                Outer { terms: &termsf, p: &pf },
                &mut rf,
            );
            let want: Vec<f64> = (0..dim * rank)
                .map(|k| {
                    let (i, a) = (k / rank, k % rank);
                    let ug: f64 = (0..rank).map(|b| at(i, b) * gram[b * rank + a]).sum();
                    at(i, a) + 0.9 * ug - 0.4 * e[i] * at(i, a) + 0.3 * w1[i] * p[a]
                        - 1.1 * w2[i] * p[rank + a]
                })
                .collect();
            close(&rf, &want, "row update");
        }
    }

    #[test]
    fn kernels_match_literal_sums() {
        // f64: the portable loops.
        check::<f64>(|v| v, 1e-13);
        // f32: the AVX-512 kernels where the CPU has them, else the portable loops.
        check::<f32>(|v| v as f32, 1e-5);
    }
}

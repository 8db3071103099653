//! The consistency coupling of the second-order objective (docs/math.md §4.5): the learned `S2` and the
//! Jacobian of the learned `s1` estimate the same matrix `grad^2 log p_sigma`, so
//! `L_c = lambda mean_n ||S2(x~) v - J_s1(x~) v||^2` with Rademacher `v` ties them together. `J_s1 v` is
//! one tangent row of the `s1` network; `S2 v` is a matrix-vector product of the head, never a `D x D`
//! matrix for diagonal and low-rank heads.

use crate::linalg::Real;
use crate::models::SecondOrderHead;

/// The batch inputs of the coupling term: one row per point.
pub struct CouplingBatch<'a, F> {
    /// The head that reads `s2_raw`.
    pub head: SecondOrderHead,
    /// Dimension `D`.
    pub dim: usize,
    /// Raw head outputs at `x~`, `n x P`.
    pub s2_raw: &'a [F],
    /// The directions `v`, `n x D`.
    pub directions: &'a [F],
    /// `J_s1(x~) v`, the tangent rows of `s1`, `n x D`.
    pub jvp: &'a [F],
}

/// `out = S2 v` for one raw head row: full `S_ij = raw[k(i, j)]` (upper triangle, row-major),
/// diagonal `d * v`, low-rank `U (U^T v) + d * v`.
fn head_matvec<F: Real>(head: SecondOrderHead, dim: usize, raw: &[F], v: &[F], out: &mut [F]) {
    match head {
        SecondOrderHead::Full => {
            out.iter_mut().for_each(|o| *o = F::zero());
            let mut k = 0;
            for i in 0..dim {
                out[i] += raw[k] * v[i];
                k += 1;
                for j in i + 1..dim {
                    out[i] += raw[k] * v[j];
                    out[j] += raw[k] * v[i];
                    k += 1;
                }
            }
        }
        SecondOrderHead::Diagonal => {
            out.iter_mut().zip(raw.iter().zip(v)).for_each(|(o, (d, v))| *o = *d * *v)
        }
        SecondOrderHead::LowRank { rank } => {
            let (u, d) = raw.split_at(dim * rank);
            for (o, (di, vi)) in out.iter_mut().zip(d.iter().zip(v)) {
                *o = *di * *vi;
            }
            for k in 0..rank {
                let utv: F = (0..dim).map(|i| u[i * rank + k] * v[i]).sum();
                (0..dim).for_each(|i| out[i] += u[i * rank + k] * utv);
            }
        }
    }
}

/// `g_raw += scale * d/draw ||S2 v - t||^2` given the residual `r = S2 v - t`; with `G = 2 r v^T`:
/// full `2 (r_i v_j + r_j v_i)` off the diagonal and `2 r_i v_i` on it, diagonal `2 r_i v_i`, low-rank
/// `dU = (G + G^T) U = 2 (r (U^T v)^T + v (U^T r)^T)` and `dd = 2 r * v`.
fn head_backprop<F: Real>(
    head: SecondOrderHead,
    dim: usize,
    raw: &[F],
    v: &[F],
    r: &[F],
    scale: F,
    g_raw: &mut [F],
) {
    let two = F::of(2.0) * scale;
    match head {
        SecondOrderHead::Full => {
            let mut k = 0;
            for i in 0..dim {
                g_raw[k] += two * r[i] * v[i];
                k += 1;
                for j in i + 1..dim {
                    g_raw[k] += two * (r[i] * v[j] + r[j] * v[i]);
                    k += 1;
                }
            }
        }
        SecondOrderHead::Diagonal => (0..dim).for_each(|i| g_raw[i] += two * r[i] * v[i]),
        SecondOrderHead::LowRank { rank } => {
            let u = &raw[..dim * rank];
            let (g_u, g_d) = g_raw.split_at_mut(dim * rank);
            for k in 0..rank {
                let utv: F = (0..dim).map(|i| u[i * rank + k] * v[i]).sum();
                let utr: F = (0..dim).map(|i| u[i * rank + k] * r[i]).sum();
                (0..dim).for_each(|i| g_u[i * rank + k] += two * (r[i] * utv + v[i] * utr));
            }
            (0..dim).for_each(|i| g_d[i] += two * r[i] * v[i]);
        }
    }
}

/// The coupling `lambda mean_n ||S2 v - J v||^2`: ADDS `lambda dL/d(s2_raw)` into `g_s2_raw` and
/// writes `lambda dL/d(J v) = -2 lambda r / n` into `g_jvp` (`r = S2 v - J v`); returns the term.
#[track_caller]
pub fn coupling_loss<F: Real>(batch: &CouplingBatch<F>, lambda: F, g_s2_raw: &mut [F], g_jvp: &mut [F]) -> F {
    let dim = batch.dim;
    let n = batch.directions.len() / dim;
    let p = batch.head.outputs(dim);
    assert!(
        batch.jvp.len() == n * dim && batch.s2_raw.len() == n * p && g_jvp.len() == n * dim,
        "coupling_loss: {n} points need {} head outputs and {} tangent values",
        n * p,
        n * dim
    );
    let scale = lambda / F::of(n as f64);
    let mut r = vec![F::zero(); dim];
    let mut total = F::zero();
    for i in 0..n {
        let (raw, v) = (&batch.s2_raw[i * p..(i + 1) * p], &batch.directions[i * dim..(i + 1) * dim]);
        head_matvec(batch.head, dim, raw, v, &mut r);
        r.iter_mut().zip(&batch.jvp[i * dim..(i + 1) * dim]).for_each(|(ri, ji)| *ri -= *ji);
        total += r.iter().map(|ri| *ri * *ri).sum::<F>();
        head_backprop(batch.head, dim, raw, v, &r, scale, &mut g_s2_raw[i * p..(i + 1) * p]);
        let g = &mut g_jvp[i * dim..(i + 1) * dim];
        g.iter_mut().zip(&r).for_each(|(g, ri)| *g = -F::of(2.0) * scale * *ri);
    }
    scale * total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    #[test]
    fn coupling_equals_the_dense_residual_and_its_gradients_match_finite_differences() {
        let (n, dim, lambda) = (3, 4, 0.7);
        for head in [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }] {
            let mut rng = test_rng(41);
            let raw = normal_mat(n, head.outputs(dim), &mut rng).into_vec();
            let v = normal_mat(n, dim, &mut rng).into_vec();
            let jvp = normal_mat(n, dim, &mut rng).into_vec();
            let loss = |raw: &[f64], jvp: &[f64], g_raw: &mut [f64], g_jvp: &mut [f64]| {
                let batch = CouplingBatch { head, dim, s2_raw: raw, directions: &v, jvp };
                coupling_loss(&batch, lambda, g_raw, g_jvp)
            };
            let (mut g_raw, mut g_jvp) = (vec![0.0; raw.len()], vec![0.0; jvp.len()]);
            let got = loss(&raw, &jvp, &mut g_raw, &mut g_jvp);
            // The definition with the dense S2 of the head.
            let mut dense = vec![0.0; dim * dim];
            let mut want = 0.0;
            for i in 0..n {
                head.dense_into(&raw[i * head.outputs(dim)..(i + 1) * head.outputs(dim)], dim, &mut dense);
                for a in 0..dim {
                    let s2v: f64 = (0..dim).map(|b| dense[a * dim + b] * v[i * dim + b]).sum();
                    want += (s2v - jvp[i * dim + a]).powi(2);
                }
            }
            want *= lambda / n as f64;
            assert_close(&[got], &[want], 1e-12, &format!("{head} loss"));
            let scratch = || (vec![0.0; raw.len()], vec![0.0; jvp.len()]);
            let fd_raw = fd_gradient(
                |r| {
                    let (mut a, mut b) = scratch();
                    loss(r, &jvp, &mut a, &mut b)
                },
                &raw,
                1e-6,
            );
            assert_close(&g_raw, &fd_raw, 1e-6, &format!("{head} head gradient"));
            let fd_jvp = fd_gradient(
                |j| {
                    let (mut a, mut b) = scratch();
                    loss(&raw, j, &mut a, &mut b)
                },
                &jvp,
                1e-6,
            );
            assert_close(&g_jvp, &fd_jvp, 1e-6, &format!("{head} tangent gradient"));
        }
    }
}

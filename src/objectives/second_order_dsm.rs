//! Second-order denoising score matching (D2SM), docs/math.md §4: regress `S2` (and `h = S2 + s1 s1^T`)
//! onto the Tweedie targets built from the noise, in forms A, B and the antithetic A-VR. Losses use the
//! structured closed forms, so diagonal and low-rank heads never build a `D x D` matrix.
#![allow(non_snake_case)]

use super::residual_likelihood::residual_nll;
use super::structured_symmetric::{Base, StructuredSym};
use crate::linalg::Real;
use crate::models::SecondOrderHead;
use serde::{Deserialize, Serialize};

/// Which D2SM objective trains the second-order head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum D2smForm {
    /// Form A: per sample $\tfrac12 \Vert h + \Delta \Vert_F^2$ up to a constant, with
    /// $h = S_2 + s_1 s_1^\top$ and $\Delta = (I - z z^\top)/\sigma^2$; $s_1$ is not detached, so it also
    /// trains $s_1$ (docs/math.md §4.1).
    A,
    /// Form B (posterior-centred): per sample $\Vert S_2 - (u u^\top - I)/\sigma^2 \Vert_F^2$ with
    /// $u = z + \sigma s_1(\tilde x)$ and $s_1$ detached; error of second order in the error of $s_1$
    /// (docs/math.md §4.2).
    B,
    /// Form A with the antithetic pair $x \pm \sigma z$ and the control variate $h(x)$ at the clean point
    /// (docs/math.md §4.3).
    AVr,
    /// The Gaussian negative log-likelihood of the residual of the posterior mean, `s1` detached, under
    /// `N(0, sigma^4 S2 + sigma^2 I)`; diagonal and low-rank heads, the diagonal through a log link
    /// (docs/math.md §4.7); with `pcs > 0` minus the residual's energy fraction captured by the span of
    /// the factor's first `pcs` columns (`--head-pcs`, docs/math.md §4.7).
    Likelihood {
        /// Number of leading factor columns trained to capture the residual (0: the likelihood alone).
        pcs: usize,
    },
}

impl D2smForm {
    /// The name of the form (`a`, `b`, `a-vr`, or `nll` for the likelihood fit).
    pub fn name(self) -> &'static str {
        match self {
            D2smForm::A => "a",
            D2smForm::B => "b",
            D2smForm::AVr => "a-vr",
            D2smForm::Likelihood { .. } => "nll",
        }
    }

    /// Number of evaluation points per sample: `x~` (A, B) or `x+, x-, x` (A-VR).
    pub fn evaluations(self) -> usize {
        if self == D2smForm::AVr {
            3
        } else {
            1
        }
    }
}

/// One sample's second-order head output, read as `S2 = base + diag(d)`.
struct HeadView<'a, F> {
    base: Base<'a, F>,
    d: Option<&'a [F]>,
}

/// Reads a raw head row; `scratch` holds the full head's unpacked matrix or the low-rank Gram matrix and
/// row norms.
fn view<'a, F: Real>(
    head: SecondOrderHead,
    dim: usize,
    raw: &'a [F],
    scratch: &'a mut [F],
) -> HeadView<'a, F> {
    match head {
        SecondOrderHead::Full => {
            head.dense_into(raw, dim, scratch);
            HeadView { base: Base::Dense(scratch), d: None }
        }
        SecondOrderHead::Diagonal => HeadView { base: Base::Zero, d: Some(raw) },
        SecondOrderHead::LowRank { rank } => {
            let (u, d) = raw.split_at(dim * rank);
            let (gram, norms) = scratch.split_at_mut(rank * rank);
            F::gram_into(u, rank, gram, norms);
            HeadView { base: Base::Factor { u, rank, gram, norms }, d: Some(d) }
        }
    }
}

/// Per-sample buffers of the D2SM terms.
struct Scratch<F> {
    /// What [`view`] needs: the full head's unpacked matrix, or the low-rank Gram matrix and row norms.
    head: Vec<F>,
    /// Two diagonals of length `D`: of `h` and `G` (forms A, A-VR) or of `M` (form B).
    diag: Vec<F>,
}

impl<F: Real> Scratch<F> {
    fn new(head: SecondOrderHead, dim: usize) -> Self {
        let head_len = match head {
            SecondOrderHead::Full => dim * dim,
            SecondOrderHead::Diagonal => 0,
            SecondOrderHead::LowRank { rank } => rank * rank + dim,
        };
        Self { head: vec![F::zero(); head_len], diag: vec![F::zero(); 2 * dim] }
    }
}

/// `g_raw += scale * dL/draw` for `S2 = base + diag(d)` given `G = dL/dS2` (symmetric):
/// `dL/dU = 2 G U`, `dL/dd = diag(G)`, full head `dL/dS_ij = 2 G_ij (i < j)`, `G_ii` on the diagonal.
fn backprop_head<F: Real>(
    head: SecondOrderHead,
    dim: usize,
    raw: &[F],
    g: &StructuredSym<F>,
    scale: F,
    g_raw: &mut [F],
) {
    match head {
        SecondOrderHead::Full => {
            let mut k = 0;
            for i in 0..dim {
                for j in i..dim {
                    let factor = if i == j { F::one() } else { F::of(2.0) };
                    g_raw[k] += scale * factor * g.entry(i, j);
                    k += 1;
                }
            }
        }
        SecondOrderHead::Diagonal => g.diag_add(scale, g_raw),
        SecondOrderHead::LowRank { rank } => {
            let (u, _) = raw.split_at(dim * rank);
            let (g_u, g_d) = g_raw.split_at_mut(dim * rank);
            g.apply_to_columns_add(u, rank, F::of(2.0) * scale, g_u);
            g.diag_add(scale, g_d);
        }
    }
}

/// The per-sample term `alpha/2 ||h||_F^2 + c <Delta, h>` of forms A and A-VR, with
/// `h = S2 + s1 s1^T` and `Delta = (I - z z^T)/sigma^2`, so `<Delta, h> = (tr h - z^T h z)/sigma^2`.
/// Accumulates `scale * dL/draw` and `scale * dL/ds1` using `G = dL/dh = alpha h + c Delta`,
/// `dL/ds1 = 2 G s1`; returns the term.
#[allow(clippy::too_many_arguments)]
fn h_term<F: Real>(
    head: SecondOrderHead,
    sigma: F,
    (raw, s1, z): (&[F], &[F], &[F]),
    (alpha, c): (F, F),
    scale: F,
    g_raw: &mut [F],
    g_s1: Option<&mut [F]>,
    scratch: &mut Scratch<F>,
) -> F {
    let dim = z.len();
    let inv_s2 = F::one() / (sigma * sigma);
    let v = view(head, dim, raw, &mut scratch.head);
    // The diagonal terms: d in h; alpha d + c / sigma^2 in G.
    let (h_diag, g_diag) = scratch.diag.split_at_mut(dim);
    let h_diag: &[F] = match v.d {
        Some(d) => d,
        None => {
            h_diag.iter_mut().for_each(|e| *e = F::zero());
            h_diag
        }
    };
    g_diag.iter_mut().zip(h_diag).for_each(|(g, d)| *g = alpha * *d + c * inv_s2);
    let one_s1 = [(F::one(), s1)];
    let h = StructuredSym { dim, alpha: F::one(), base: v.base, e: h_diag, rank_one: &one_s1 };
    let mut loss = c * (h.trace() - h.quad(z)) * inv_s2;
    if alpha != F::zero() {
        loss += F::of(0.5) * alpha * h.frob_sq();
    }
    let terms = [(alpha, s1), (-c * inv_s2, z)];
    let g = StructuredSym { dim, alpha, base: v.base, e: g_diag, rank_one: &terms };
    backprop_head(head, dim, raw, &g, scale, g_raw);
    if let Some(g_s1) = g_s1 {
        g.apply_add(s1, F::of(2.0) * scale, g_s1);
    }
    loss
}

/// The batch inputs of a D2SM loss: raw head outputs and first-order scores at each evaluation point,
/// stacked as `evaluations x n` rows (`x~` for A and B; `x+, x-, x` for A-VR), and the noise `z`.
pub struct D2smBatch<'a, F> {
    /// The head.
    pub head: SecondOrderHead,
    /// Dimension `D`.
    pub dim: usize,
    /// Noise level.
    pub sigma: F,
    /// Noise draws, `n x D`.
    pub z: &'a [F],
    /// Raw head outputs, `(evaluations n) x P`.
    pub s2_raw: &'a [F],
    /// First-order scores, `(evaluations n) x D`.
    pub s1: &'a [F],
}

/// Evaluates the mean D2SM loss of `form` over the batch and writes `weight * dL/d(s2_raw)` into
/// `g_s2_raw` and, for forms A and A-VR, ADDS `weight * dL/ds1` into `g_s1` (forms B and the likelihood
/// detach `s1`).
#[track_caller]
pub fn d2sm_loss<F: Real>(
    form: D2smForm,
    batch: &D2smBatch<F>,
    weight: F,
    g_s2_raw: &mut [F],
    g_s1: &mut [F],
) -> F {
    let dim = batch.dim;
    let n = batch.z.len() / dim;
    assert_eq!(batch.s1.len(), form.evaluations() * n * dim, "d2sm_loss: s1 rows");
    let p = batch.head.outputs(dim);
    let scale = weight / F::of(n as f64);
    let sigma = batch.sigma;
    g_s2_raw.iter_mut().for_each(|v| *v = F::zero());
    let mut scratch = Scratch::new(batch.head, dim);
    let mut total = F::zero();
    let (one, two) = (F::one(), F::of(2.0));
    for i in 0..n {
        let z = &batch.z[i * dim..(i + 1) * dim];
        let row = |e: usize| (e * n + i) * p..(e * n + i + 1) * p;
        let vec_row = |e: usize| (e * n + i) * dim..(e * n + i + 1) * dim;
        match form {
            D2smForm::A => {
                let (raw, s1) = (&batch.s2_raw[row(0)], &batch.s1[vec_row(0)]);
                total += h_term(
                    batch.head,
                    sigma,
                    (raw, s1, z),
                    (one, one),
                    scale,
                    &mut g_s2_raw[row(0)],
                    Some(&mut g_s1[vec_row(0)]),
                    &mut scratch,
                );
            }
            D2smForm::AVr => {
                // L2vr = 1/2 (||h+||^2 + ||h-||^2) + <Delta, h+ + h- - 2 h0>.
                for (e, coefs) in [(0, (one, one)), (1, (one, one)), (2, (F::zero(), -two))] {
                    let (raw, s1) = (&batch.s2_raw[row(e)], &batch.s1[vec_row(e)]);
                    total += h_term(
                        batch.head,
                        sigma,
                        (raw, s1, z),
                        coefs,
                        scale,
                        &mut g_s2_raw[row(e)],
                        Some(&mut g_s1[vec_row(e)]),
                        &mut scratch,
                    );
                }
            }
            D2smForm::B => {
                let (raw, s1) = (&batch.s2_raw[row(0)], &batch.s1[vec_row(0)]);
                total +=
                    form_b_term(batch.head, sigma, raw, s1, z, scale, &mut g_s2_raw[row(0)], &mut scratch);
            }
            D2smForm::Likelihood { pcs } => {
                let (raw, s1) = (&batch.s2_raw[row(0)], &batch.s1[vec_row(0)]);
                total += residual_nll(batch.head, pcs, sigma, raw, s1, z, scale, &mut g_s2_raw[row(0)]);
            }
        }
    }
    weight * total / F::of(n as f64)
}

/// Form B per sample: `||M||_F^2` with `M = S2 - (u u^T - I)/sigma^2`, `u = z + sigma s1` (detached);
/// `dL/dS2 = 2 M`.
#[allow(clippy::too_many_arguments)]
fn form_b_term<F: Real>(
    head: SecondOrderHead,
    sigma: F,
    raw: &[F],
    s1: &[F],
    z: &[F],
    scale: F,
    g_raw: &mut [F],
    scratch: &mut Scratch<F>,
) -> F {
    let dim = z.len();
    let inv_s2 = F::one() / (sigma * sigma);
    let u: Vec<F> = z.iter().zip(s1).map(|(zi, si)| *zi + sigma * *si).collect();
    let v = view(head, dim, raw, &mut scratch.head);
    // The diagonal term of M: d + 1 / sigma^2.
    let m_diag = &mut scratch.diag[..dim];
    match v.d {
        Some(d) => m_diag.iter_mut().zip(d).for_each(|(m, di)| *m = *di + inv_s2),
        None => m_diag.iter_mut().for_each(|m| *m = inv_s2),
    }
    let terms = [(-inv_s2, &u[..])];
    let m = StructuredSym { dim, alpha: F::one(), base: v.base, e: m_diag, rank_one: &terms };
    backprop_head(head, dim, raw, &m, F::of(2.0) * scale, g_raw);
    m.frob_sq()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, fd_gradient, normal_mat, test_rng};

    const HEADS: [SecondOrderHead; 3] =
        [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }];
    const FORMS: [D2smForm; 3] = [D2smForm::A, D2smForm::B, D2smForm::AVr];

    /// docs/math.md §4 written literally with dense `D x D` matrices.
    fn direct_loss(
        form: D2smForm,
        head: SecondOrderHead,
        dim: usize,
        sigma: f64,
        z: &[f64],
        raw: &[f64],
        s1: &[f64],
    ) -> f64 {
        let n = z.len() / dim;
        let p = head.outputs(dim);
        let dd = dim * dim;
        let h_at = |e: usize, i: usize| {
            let mut h = vec![0.0; dd];
            head.dense_into(&raw[(e * n + i) * p..(e * n + i + 1) * p], dim, &mut h);
            let s = &s1[(e * n + i) * dim..(e * n + i + 1) * dim];
            (0..dd).for_each(|k| h[k] += s[k / dim] * s[k % dim]);
            h
        };
        let mut total = 0.0;
        for i in 0..n {
            let zi = &z[i * dim..(i + 1) * dim];
            let delta: Vec<f64> = (0..dd)
                .map(|k| {
                    (f64::from(u8::from(k / dim == k % dim)) - zi[k / dim] * zi[k % dim]) / (sigma * sigma)
                })
                .collect();
            total += match form {
                D2smForm::A => {
                    h_at(0, i).iter().zip(&delta).map(|(h, d)| 0.5 * (h * h + 2.0 * d * h)).sum::<f64>()
                }
                D2smForm::AVr => {
                    let (hp, hm, h0) = (h_at(0, i), h_at(1, i), h_at(2, i));
                    (0..dd)
                        .map(|k| {
                            0.5 * (hp[k] * hp[k]
                                + hm[k] * hm[k]
                                + 2.0 * delta[k] * (hp[k] - h0[k] + hm[k] - h0[k]))
                        })
                        .sum()
                }
                D2smForm::B => {
                    let mut s2 = vec![0.0; dd];
                    head.dense_into(&raw[i * p..(i + 1) * p], dim, &mut s2);
                    let u: Vec<f64> = (0..dim).map(|j| zi[j] + sigma * s1[i * dim + j]).collect();
                    (0..dd)
                        .map(|k| {
                            let t = (u[k / dim] * u[k % dim] - f64::from(u8::from(k / dim == k % dim)))
                                / (sigma * sigma);
                            (s2[k] - t).powi(2)
                        })
                        .sum()
                }
                D2smForm::Likelihood { .. } => {
                    unreachable!("checked against the dense density in residual_likelihood")
                }
            };
        }
        total / n as f64
    }

    #[test]
    fn closed_forms_equal_direct_dense_losses_and_gradients_match_finite_differences() {
        let (n, dim, sigma, weight) = (3, 4, 0.7, 1.3);
        for head in HEADS {
            for form in FORMS {
                let mut rng = test_rng(31);
                let e = form.evaluations();
                let z = normal_mat(n, dim, &mut rng).into_vec();
                let raw = normal_mat(e * n, head.outputs(dim), &mut rng).into_vec();
                let s1 = normal_mat(e * n, dim, &mut rng).into_vec();
                let loss = |raw: &[f64], s1: &[f64], g_raw: &mut [f64], g_s1: &mut [f64]| {
                    let batch = D2smBatch { head, dim, sigma, z: &z, s2_raw: raw, s1 };
                    d2sm_loss(form, &batch, weight, g_raw, g_s1)
                };
                let (mut g_raw, mut g_s1) = (vec![0.0; raw.len()], vec![0.0; s1.len()]);
                let got = loss(&raw, &s1, &mut g_raw, &mut g_s1);
                let want = weight * direct_loss(form, head, dim, sigma, &z, &raw, &s1);
                let what = format!("{form:?} {head}");
                assert_close(&[got], &[want], 1e-12 * dim as f64, &format!("{what} loss"));
                let scratch = || (vec![0.0; raw.len()], vec![0.0; s1.len()]);
                let fd_raw = fd_gradient(
                    |r| {
                        let (mut a, mut b) = scratch();
                        loss(r, &s1, &mut a, &mut b)
                    },
                    &raw,
                    1e-6,
                );
                assert_close(&g_raw, &fd_raw, 1e-6, &format!("{what} head gradient"));
                let fd_s1 = fd_gradient(
                    |s| {
                        let (mut a, mut b) = scratch();
                        loss(&raw, s, &mut a, &mut b)
                    },
                    &s1,
                    1e-6,
                );
                if form == D2smForm::B {
                    assert!(g_s1.iter().all(|g| *g == 0.0), "form B must detach s1");
                } else {
                    assert_close(&g_s1, &fd_s1, 1e-6, &format!("{what} s1 gradient"));
                }
            }
        }
    }
}

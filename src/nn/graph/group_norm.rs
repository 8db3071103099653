//! Group normalisation of channels-last images, with its tangent and the reverse of both streams
//! (docs/math.md §8.9).
//!
//! Per point and group, over the `m = H W C / G` values `x` of the group:
//! `mu = mean(x)`, `s = sqrt(var(x) + eps)`, `x^ = (x - mu) / s`, `y = gamma_c x^ + beta_c`.
//! The Jacobian of `x -> x^` is symmetric, `J = (I - 1 1^T / m - x^ x^^T / m) / s`, so
//! `J u = (u - mean(u) - x^ mean(x^ u)) / s`, and the tangent is `y_dot = gamma_c J x_dot`.
//!
//! Reverse, with `w = gamma g` and `w_tau = gamma g_dot_tau`: `g_x_dot_tau += J w_tau`,
//! `g_x += J w + sum_tau grad_x <w_tau, J(x) u_tau>` with `u_tau = x_dot_tau` and the second-order term
//! `grad_x <w, J(x) u> = -(1 / s) [ mean(w J u) x^ + mean(x^ w) J u + mean(x^ u) J w ]`;
//! `d gamma_c += sum g x^ + sum_tau g_dot_tau J u_tau`, `d beta_c += sum g` (over the pixels).

use super::cotangent::{put, put_values, InputCotangent};
use super::shape::Shape;
use crate::linalg::{Mat, Real};

/// Added to the variance before the square root.
const EPS: f64 = 1e-5;

/// Group norm over `groups` equal groups of consecutive channels. Parameters: scale `gamma` (one per
/// channel), then shift `beta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupNorm {
    /// Shape of the input (and output) image.
    pub shape: Shape,
    /// Number of channel groups; divides the channel count.
    pub groups: usize,
}

/// Per-group means over one point row (`c` channels, `per_group` of them a group) of `a` or, given `b`,
/// of `a * b`, expanded to one value per channel. Sums run per channel across pixels, so the inner loops
/// go along the contiguous channels of a pixel.
fn group_means<F: Real>(c: usize, per_group: usize, a: &[F], b: Option<&[F]>, out: &mut [F]) {
    out.iter_mut().for_each(|s| *s = F::zero());
    match b {
        None => a.chunks_exact(c).for_each(|pa| out.iter_mut().zip(pa).for_each(|(s, x)| *s += *x)),
        Some(b) => {
            for (pa, pb) in a.chunks_exact(c).zip(b.chunks_exact(c)) {
                out.iter_mut().zip(pa.iter().zip(pb)).for_each(|(s, (x, y))| *s += *x * *y);
            }
        }
    }
    // m = len / groups = len per_group / c values per group.
    group_average(per_group, F::of(c as f64 / (a.len() * per_group) as f64), out);
}

/// Replaces per-channel sums by their group's mean (`inv_m = 1 / m`), expanded to one value per channel.
fn group_average<F: Real>(per_group: usize, inv_m: F, sums: &mut [F]) {
    for run in sums.chunks_exact_mut(per_group) {
        let mean = run.iter().copied().sum::<F>() * inv_m;
        run.iter_mut().for_each(|s| *s = mean);
    }
}

/// What a group norm keeps for the reverse pass: `mu` and `1 / s` (one per channel) on the primal rows,
/// and `x^` itself only when there are tangent rows (their passes read it; the primal reverse pass
/// recomputes it from `x`, which the walk keeps anyway).
#[derive(Clone, Debug, Default)]
pub struct GroupNormCache<F> {
    normalised: Vec<F>,
    mean: Vec<F>,
    inv_std: Vec<F>,
}

/// Per-channel workspace of the passes (means of one point row, expanded to channels).
struct Means<F> {
    first: Vec<F>,
    second: Vec<F>,
    third: Vec<F>,
}

impl<F: Real> Means<F> {
    fn new(c: usize) -> Self {
        Self { first: vec![F::zero(); c], second: vec![F::zero(); c], third: vec![F::zero(); c] }
    }
}

impl GroupNorm {
    /// Channels per group.
    fn per_group(&self) -> usize {
        self.shape.channels / self.groups
    }

    /// Number of parameters (scale, then shift).
    pub fn param_len(&self) -> usize {
        2 * self.shape.channels
    }

    /// `out = J u = (u - mean(u) - x^ mean(x^ u)) / s` for one point row.
    fn normal_jvp<F: Real>(&self, xhat: &[F], inv_std: &[F], u: &[F], means: &mut Means<F>, out: &mut [F]) {
        let (c, pg) = (self.shape.channels, self.per_group());
        group_means(c, pg, u, None, &mut means.first);
        group_means(c, pg, xhat, Some(u), &mut means.second);
        let pixels = out.chunks_exact_mut(c).zip(u.chunks_exact(c).zip(xhat.chunks_exact(c)));
        for (o, (u, xh)) in pixels {
            let per_channel = means.first.iter().zip(&means.second).zip(inv_std);
            for ((o, (u, xh)), ((a, b), s)) in o.iter_mut().zip(u.iter().zip(xh)).zip(per_channel) {
                *o = (*u - *a - *xh * *b) * *s;
            }
        }
    }

    /// `y = gamma x^ + beta` on the `n` primal rows, `y_dot = gamma J x_dot` on the tangent rows.
    pub fn forward<F: Real>(
        &self,
        params: &[F],
        x: &Mat<F>,
        n: usize,
        y: &mut Mat<F>,
        cache: &mut GroupNormCache<F>,
    ) {
        self.forward_primal(params, x, n, y, cache, |_, _| ());
        let c = self.shape.channels;
        let (len, gamma) = (self.shape.len(), &params[..c]);
        let mut means = Means::new(c);
        for r in n..x.rows() {
            let i = (r - n) % n;
            let (xhat, inv_std) =
                (&cache.normalised[i * len..(i + 1) * len], &cache.inv_std[i * c..(i + 1) * c]);
            let out = y.row_mut(r);
            self.normal_jvp(xhat, inv_std, x.row(r), &mut means, out);
            for pixel in out.chunks_exact_mut(c) {
                pixel.iter_mut().zip(gamma).for_each(|(v, g)| *v *= *g);
            }
        }
    }

    /// `y = gamma x^ + beta` on the `n` primal rows of `x` (sizing `y` for all of them), keeping `mu`,
    /// `1 / s` and, when `x` has tangent rows, `x^`; `then(i, row)` runs on each row `i` of `y` right
    /// after it is written, while it is in the cache. Three passes over a row: the means, the variances
    /// about them, then `y` (from `x^` when it is kept, else directly as `(gamma / s) (x - mu) + beta`).
    pub(super) fn forward_primal<F: Real>(
        &self,
        params: &[F],
        x: &Mat<F>,
        n: usize,
        y: &mut Mat<F>,
        cache: &mut GroupNormCache<F>,
        mut then: impl FnMut(usize, &mut [F]),
    ) {
        let (c, len, pg) = (self.shape.channels, self.shape.len(), self.per_group());
        let keep_normalised = x.rows() > n;
        let (gamma, beta) = params.split_at(c);
        let inv_m = F::of(1.0 / (self.shape.pixels() * pg) as f64);
        y.resize(x.rows(), len);
        cache.normalised.resize(if keep_normalised { n * len } else { 0 }, F::zero());
        cache.mean.resize(n * c, F::zero());
        cache.inv_std.resize(n * c, F::zero());
        let (mut var, mut scale) = (vec![F::zero(); c], vec![F::zero(); c]);
        for i in 0..n {
            let (mu, inv_std) = (&mut cache.mean[i * c..(i + 1) * c], &mut cache.inv_std[i * c..(i + 1) * c]);
            let x = x.row(i);
            mu.fill(F::zero());
            x.chunks_exact(c).for_each(|px| mu.iter_mut().zip(px).for_each(|(s, v)| *s += *v));
            group_average(pg, inv_m, mu);
            var.fill(F::zero());
            for px in x.chunks_exact(c) {
                var.iter_mut().zip(px.iter().zip(&*mu)).for_each(|(s, (v, m))| *s += (*v - *m) * (*v - *m));
            }
            group_average(pg, inv_m, &mut var);
            inv_std.iter_mut().zip(&var).for_each(|(s, v)| *s = F::one() / (*v + F::of(EPS)).sqrt());
            let y = y.row_mut(i);
            if keep_normalised {
                let xhat = &mut cache.normalised[i * len..(i + 1) * len];
                normalise(x, mu, inv_std, xhat);
                for (out, xh) in y.chunks_exact_mut(c).zip(xhat.chunks_exact(c)) {
                    let per_channel = xh.iter().zip(gamma.iter().zip(beta));
                    out.iter_mut().zip(per_channel).for_each(|(v, (xh, (g, b)))| *v = *g * *xh + *b);
                }
            } else {
                // One pass: y = (gamma / s) (x - mu) + beta.
                scale.iter_mut().zip(gamma.iter().zip(&*inv_std)).for_each(|(a, (g, s))| *a = *g * *s);
                for (out, px) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                    let per_channel = scale.iter().zip(mu.iter().zip(beta));
                    out.iter_mut().zip(px.iter().zip(per_channel)).for_each(|(v, (x, (a, (m, b))))| {
                        *v = *a * (*x - *m) + *b;
                    });
                }
            }
            then(i, y);
        }
    }

    /// Parameter gradients and, when asked, `g_x (+)= ...` of both streams (formulas in the module doc).
    #[allow(clippy::too_many_arguments)]
    pub fn reverse<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        x: &Mat<F>,
        n: usize,
        cache: &GroupNormCache<F>,
        g_y: &Mat<F>,
        g_x: Option<InputCotangent<'_, F>>,
    ) {
        // Each row of g_x is written once by its own row (assigned when fresh) before any tangent row
        // adds the second-order term to its primal row (primal rows come first).
        let (mut g_x, fresh) = match g_x {
            Some(InputCotangent { g, fresh }) => (Some(g), fresh),
            None => (None, false),
        };
        let primal_g_x = g_x.as_deref_mut().map(|g| InputCotangent { g, fresh });
        self.reverse_primal(params, grad, x, n, cache, g_y, None, primal_g_x);
        if x.rows() == n {
            return;
        }
        let (c, len, pg) = (self.shape.channels, self.shape.len(), self.per_group());
        let gamma = &params[..c];
        let g_gamma = &mut grad[..c];
        let mut means = Means::new(c);
        let (mut w, mut u_n, mut w_n) = (vec![F::zero(); len], vec![F::zero(); len], vec![F::zero(); len]);
        for r in n..x.rows() {
            let i = (r - n) % n;
            let (xhat, inv_std) =
                (&cache.normalised[i * len..(i + 1) * len], &cache.inv_std[i * c..(i + 1) * c]);
            let g = g_y.row(r);
            for (w, g) in w.chunks_exact_mut(c).zip(g.chunks_exact(c)) {
                w.iter_mut().zip(g.iter().zip(gamma)).for_each(|(w, (g, s))| *w = *g * *s);
            }
            // d gamma += g_dot J u.
            let u = x.row(r);
            self.normal_jvp(xhat, inv_std, u, &mut means, &mut u_n);
            for (g, f) in g.chunks_exact(c).zip(u_n.chunks_exact(c)) {
                g_gamma.iter_mut().zip(g.iter().zip(f)).for_each(|(d, (g, f))| *d += *g * *f);
            }
            let Some(g_x) = g_x.as_deref_mut() else { continue };
            self.normal_jvp(xhat, inv_std, &w, &mut means, &mut w_n);
            put(fresh, g_x.row_mut(r), &w_n, |v| v);
            // Second-order term on the point's primal row: means.second holds mean(x^ w) now.
            group_means(c, pg, &w, Some(&u_n), &mut means.first);
            group_means(c, pg, xhat, Some(u), &mut means.third);
            let terms = g_x.row_mut(i).chunks_exact_mut(c).zip(xhat.chunks_exact(c));
            for (k, (primal, xh)) in terms.enumerate() {
                let (un, wn) = (&u_n[k * c..(k + 1) * c], &w_n[k * c..(k + 1) * c]);
                for j in 0..c {
                    let coeff = means.first[j] * xh[j] + means.second[j] * un[j] + means.third[j] * wn[j];
                    primal[j] -= inv_std[j] * coeff;
                }
            }
        }
    }

    /// The reverse pass through the `n` primal rows: `d gamma += sum g x^`, `d beta += sum g` and, when
    /// asked, `g_x (+)= J (gamma g)` on those rows, where `g` is the row of `g_y`, or `act'(a) g_y` with
    /// `act_d1` (the first derivatives of an activation applied to the output, [`super::norm_act`]).
    /// Two passes over a row, `x^` never stored: the sums `sum g` and `sum g (x - mu)` per channel
    /// (`sum g x^` is `(1 / s) sum g (x - mu)`; they give the parameter gradients and the group means
    /// of `w = gamma g` and `x^ w`), then `J w = (w - mean(w) - x^ mean(x^ w)) / s`, written per channel
    /// as `(gamma / s) g - (mean(x^ w) / s^2) (x - mu) - mean(w) / s`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reverse_primal<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        x: &Mat<F>,
        n: usize,
        cache: &GroupNormCache<F>,
        g_y: &Mat<F>,
        act_d1: Option<&[F]>,
        g_x: Option<InputCotangent<'_, F>>,
    ) {
        match act_d1 {
            Some(d1) => self.reverse_rows::<F, true>(params, grad, x, n, cache, g_y, d1, g_x),
            None => self.reverse_rows::<F, false>(params, grad, x, n, cache, g_y, g_y.as_slice(), g_x),
        }
    }

    /// [`GroupNorm::reverse_primal`], the output cotangent `g` being `d1 g_y` with `SCALED` (else `g_y`;
    /// `d1` is then not read).
    #[allow(clippy::too_many_arguments)]
    fn reverse_rows<F: Real, const SCALED: bool>(
        &self,
        params: &[F],
        grad: &mut [F],
        x: &Mat<F>,
        n: usize,
        cache: &GroupNormCache<F>,
        g_y: &Mat<F>,
        d1: &[F],
        mut g_x: Option<InputCotangent<'_, F>>,
    ) {
        let (c, len, pg) = (self.shape.channels, self.shape.len(), self.per_group());
        let gamma = &params[..c];
        let (g_gamma, g_beta) = grad.split_at_mut(c);
        let inv_m = F::of(1.0 / (self.shape.pixels() * pg) as f64);
        let cotangent = |g: F, d: F| if SCALED { g * d } else { g };
        let (mut sum_g, mut sum_gc) = (vec![F::zero(); c], vec![F::zero(); c]);
        let (mut mean_w, mut mean_xw) = (vec![F::zero(); c], vec![F::zero(); c]);
        let (mut a, mut b, mut e) = (vec![F::zero(); c], vec![F::zero(); c], vec![F::zero(); c]);
        for i in 0..n {
            let (mu, inv_std) = (&cache.mean[i * c..(i + 1) * c], &cache.inv_std[i * c..(i + 1) * c]);
            let (x, g_y, d1) = (x.row(i), g_y.row(i), &d1[i * len..(i + 1) * len]);
            sum_g.fill(F::zero());
            sum_gc.fill(F::zero());
            for ((px, pg), pd) in x.chunks_exact(c).zip(g_y.chunks_exact(c)).zip(d1.chunks_exact(c)) {
                let sums = sum_g.iter_mut().zip(sum_gc.iter_mut());
                for ((sg, sgc), ((x, g), (d, m))) in sums.zip(px.iter().zip(pg).zip(pd.iter().zip(mu))) {
                    let g = cotangent(*g, *d);
                    *sg += g;
                    *sgc += g * (*x - *m);
                }
            }
            for j in 0..c {
                let sum_g_xhat = inv_std[j] * sum_gc[j];
                g_gamma[j] += sum_g_xhat;
                g_beta[j] += sum_g[j];
                (mean_w[j], mean_xw[j]) = (gamma[j] * sum_g[j], gamma[j] * sum_g_xhat);
            }
            let Some(InputCotangent { g: g_x, fresh }) = g_x.as_mut() else { continue };
            group_average(pg, inv_m, &mut mean_w);
            group_average(pg, inv_m, &mut mean_xw);
            // Per channel: J w = a g + b (x - mu) + e.
            for j in 0..c {
                let s = inv_std[j];
                (a[j], b[j], e[j]) = (gamma[j] * s, -mean_xw[j] * s * s, -mean_w[j] * s);
            }
            let pixels = x.chunks_exact(c).zip(g_y.chunks_exact(c)).zip(d1.chunks_exact(c));
            for (out, ((px, pg), pd)) in g_x.row_mut(i).chunks_exact_mut(c).zip(pixels) {
                let per_channel = a.iter().zip(&b).zip(e.iter().zip(mu));
                let values = px
                    .iter()
                    .zip(pg)
                    .zip(pd)
                    .zip(per_channel)
                    .map(|(((x, g), d), ((a, b), (e, m)))| *a * cotangent(*g, *d) + *b * (*x - *m) + *e);
                put_values(*fresh, out, values);
            }
        }
    }
}

/// `x^ = (x - mu) / s` for one point row, from the per-channel `mu` and `1 / s`.
fn normalise<F: Real>(x: &[F], mu: &[F], inv_std: &[F], xhat: &mut [F]) {
    let c = mu.len();
    for (xh, px) in xhat.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        let per_channel = mu.iter().zip(inv_std);
        xh.iter_mut().zip(px.iter().zip(per_channel)).for_each(|(xh, (v, (m, s)))| *xh = (*v - *m) * *s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::{check_against_finite_differences, GraphBuilder};
    use crate::testing::{assert_close, normal_mat, test_rng};

    #[test]
    fn values_are_normalised_per_point_and_group() {
        let mut rng = test_rng(8);
        let norm = GroupNorm { shape: Shape::new(3, 2, 6), groups: 3 };
        let params: Vec<f64> = normal_mat(1, norm.param_len(), &mut rng).into_vec();
        let (gamma, beta) = params.split_at(6);
        let x = normal_mat(2, norm.shape.len(), &mut rng);
        let mut y = Mat::default();
        norm.forward(&params, &x, 2, &mut y, &mut GroupNormCache::default());
        for r in 0..2 {
            for g in 0..3 {
                // Group g holds channels 2g and 2g + 1 of each of the 6 pixels.
                let idx: Vec<usize> = (0..6).flat_map(|p| [p * 6 + 2 * g, p * 6 + 2 * g + 1]).collect();
                let mean = idx.iter().map(|&k| x.at(r, k)).sum::<f64>() / 12.0;
                let var = idx.iter().map(|&k| (x.at(r, k) - mean).powi(2)).sum::<f64>() / 12.0;
                let want: Vec<f64> = idx
                    .iter()
                    .map(|&k| gamma[k % 6] * (x.at(r, k) - mean) / (var + EPS).sqrt() + beta[k % 6])
                    .collect();
                let got: Vec<f64> = idx.iter().map(|&k| y.at(r, k)).collect();
                assert_close(&got, &want, 1e-12, &format!("row {r} group {g}"));
            }
        }
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        for (groups, tangents) in [(1, 1), (2, 2), (4, 1)] {
            let mut rng = test_rng(9);
            let mut b = GraphBuilder::<f64, _>::new(Shape::new(3, 2, 4), &mut rng);
            let x = b.input();
            b.group_norm("norm", x, groups, None).expect("4 channels");
            check_against_finite_differences(&b.finish(), 2, tangents, 10);
        }
    }
}

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

/// Calls `visit(k, c, g)` for every value `k` of a point row of `len` values: channel `c`, group
/// `g = c / per_group` (nested loops, no division per value).
#[inline(always)]
fn for_each_value(channels: usize, per_group: usize, len: usize, mut visit: impl FnMut(usize, usize, usize)) {
    for base in (0..len).step_by(channels) {
        for g in 0..channels / per_group {
            for c in g * per_group..(g + 1) * per_group {
                visit(base + c, c, g);
            }
        }
    }
}

/// Per-group means over one point row: `means[g] = mean_{values k of group g} f(k, g)`.
#[inline(always)]
fn group_means<F: Real>(
    channels: usize,
    per_group: usize,
    len: usize,
    means: &mut [F],
    f: impl Fn(usize, usize) -> F,
) {
    means.iter_mut().for_each(|s| *s = F::zero());
    for_each_value(channels, per_group, len, |k, _, g| means[g] += f(k, g));
    let inv_m = F::of((channels / per_group) as f64 / len as f64);
    means.iter_mut().for_each(|s| *s *= inv_m);
}

/// What a group norm keeps for the reverse pass: `x^` on the primal rows and `1 / s` per point and group.
#[derive(Clone, Debug, Default)]
pub struct GroupNormCache<F> {
    normalised: Vec<F>,
    inv_std: Vec<F>,
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

    /// `J u = (u - mean(u) - x^ mean(x^ u)) / s` for one point row, written to `out`.
    #[allow(clippy::too_many_arguments)]
    fn normal_jvp<F: Real>(
        &self,
        xhat: &[F],
        inv_std: &[F],
        u: &[F],
        means: &mut [F],
        products: &mut [F],
        out: &mut [F],
    ) {
        let (c, pg) = (self.shape.channels, self.per_group());
        group_means(c, pg, u.len(), means, |i, _| u[i]);
        group_means(c, pg, u.len(), products, |i, _| xhat[i] * u[i]);
        for_each_value(c, pg, u.len(), |k, _, g| {
            out[k] = (u[k] - means[g] - xhat[k] * products[g]) * inv_std[g]
        });
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
        let (c, len, groups, pg) = (self.shape.channels, self.shape.len(), self.groups, self.per_group());
        let (gamma, beta) = params.split_at(c);
        y.resize(x.rows(), len);
        cache.normalised.resize(n * len, F::zero());
        cache.inv_std.resize(n * groups, F::zero());
        let (mut means, mut vars) = (vec![F::zero(); groups], vec![F::zero(); groups]);
        for i in 0..n {
            let (xs, xhat) = (x.row(i), &mut cache.normalised[i * len..(i + 1) * len]);
            group_means(c, pg, len, &mut means, |k, _| xs[k]);
            group_means(c, pg, len, &mut vars, |k, g| (xs[k] - means[g]).powi(2));
            let inv_std = &mut cache.inv_std[i * groups..(i + 1) * groups];
            inv_std.iter_mut().zip(&vars).for_each(|(s, v)| *s = F::one() / (*v + F::of(EPS)).sqrt());
            let out = y.row_mut(i);
            for_each_value(c, pg, len, |k, ch, g| {
                xhat[k] = (xs[k] - means[g]) * inv_std[g];
                out[k] = gamma[ch] * xhat[k] + beta[ch];
            });
        }
        let mut products = vec![F::zero(); groups];
        for r in n..x.rows() {
            let i = (r - n) % n;
            let (xhat, inv_std) =
                (&cache.normalised[i * len..(i + 1) * len], &cache.inv_std[i * groups..(i + 1) * groups]);
            let out = y.row_mut(r);
            self.normal_jvp(xhat, inv_std, x.row(r), &mut means, &mut products, out);
            for (v, g) in out.iter_mut().zip(gamma.iter().cycle()) {
                *v *= *g;
            }
        }
    }

    /// Parameter gradients and, when asked, `g_x += ...` of both streams (formulas in the module doc).
    #[allow(clippy::too_many_arguments)]
    pub fn reverse<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        x: &Mat<F>,
        n: usize,
        cache: &GroupNormCache<F>,
        g_y: &Mat<F>,
        mut g_x: Option<&mut Mat<F>>,
    ) {
        let (c, len, groups, pg) = (self.shape.channels, self.shape.len(), self.groups, self.per_group());
        let gamma = &params[..c];
        let (g_gamma, g_beta) = grad.split_at_mut(c);
        let mut scratch = vec![F::zero(); 4 * groups];
        let (a, rest) = scratch.split_at_mut(groups);
        let (b, rest) = rest.split_at_mut(groups);
        let (inner, xhat_u) = rest.split_at_mut(groups);
        let (mut w, mut u_n, mut w_n) = (vec![F::zero(); len], vec![F::zero(); len], vec![F::zero(); len]);
        for r in 0..x.rows() {
            let i = if r < n { r } else { (r - n) % n };
            let (xhat, inv_std) =
                (&cache.normalised[i * len..(i + 1) * len], &cache.inv_std[i * groups..(i + 1) * groups]);
            let g = g_y.row(r);
            w.iter_mut().zip(g.iter().zip(gamma.iter().cycle())).for_each(|(w, (g, s))| *w = *g * *s);
            if r < n {
                for_each_value(c, pg, len, |k, ch, _| {
                    g_gamma[ch] += g[k] * xhat[k];
                    g_beta[ch] += g[k];
                });
                if let Some(g_x) = g_x.as_deref_mut() {
                    self.normal_jvp(xhat, inv_std, &w, a, b, &mut w_n);
                    g_x.row_mut(r).iter_mut().zip(&w_n).for_each(|(gx, v)| *gx += *v);
                }
                continue;
            }
            let u = x.row(r);
            self.normal_jvp(xhat, inv_std, u, a, b, &mut u_n);
            for_each_value(c, pg, len, |k, ch, _| g_gamma[ch] += g[k] * u_n[k]);
            let Some(g_x) = g_x.as_deref_mut() else { continue };
            self.normal_jvp(xhat, inv_std, &w, a, b, &mut w_n);
            g_x.row_mut(r).iter_mut().zip(&w_n).for_each(|(gx, v)| *gx += *v);
            // Second-order term on the point's primal row; b holds mean(x^ w) now.
            group_means(c, pg, len, inner, |k, _| w[k] * u_n[k]);
            group_means(c, pg, len, xhat_u, |k, _| xhat[k] * u[k]);
            let primal = g_x.row_mut(i);
            for_each_value(c, pg, len, |k, _, q| {
                primal[k] -= inv_std[q] * (inner[q] * xhat[k] + b[q] * u_n[k] + xhat_u[q] * w_n[k]);
            });
        }
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
            b.group_norm("norm", x, groups).expect("4 channels");
            check_against_finite_differences(&b.finish(), 2, tangents, 10);
        }
    }
}

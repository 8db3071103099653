//! Second-order jets of a pointwise activation along directions (Taylor mode), the building block of
//! sliced score matching on energy networks (docs/math.md §6.5 and §8.5).
//!
//! # Stacked jet layout
//! For `n` points and `m` directions a jet batch has `n (1 + 2m)` rows: `n` primal rows `a`, then `m n`
//! first-order rows `a'` (direction `tau` of point `i` at row `n + tau n + i`), then `m n` second-order
//! rows `a''` (row `n + m n + tau n + i`). Along the line `t -> x + t v` these are `a(0)`, `a'(0)`,
//! `a''(0)`. A dense layer ([`Dense`](super::Dense)) maps jets to jets with its ordinary stacked
//! forward (the bias only touches primal rows), as does every other linear op of the network graph, so
//! only the activation needs a jet rule.

use super::activation::Activation;
use super::layer::Layer;
use crate::linalg::{Mat, Real};

/// The jet rule of an [`Activation`] `f`: pushes `(a, a', a'')` to `(f(a), f'(a) a', f''(a) a'^2 +
/// f'(a) a'')` and reverses it.
///
/// # Definition
/// Forward, per element and direction:
/// $$ h = f(a),\quad h' = f'(a)\ a',\quad h'' = f''(a)\ a'^2 + f'(a)\ a''. $$
/// Reverse, given cotangents `(g, g1, g2)` of `(h, h', h'')`:
/// $$ \bar a'' = f'(a)\ g_2,\quad \bar a' = f'(a)\ g_1 + 2 f''(a)\ a'\ g_2,\quad
///    \bar a = f'(a)\ g + \sum_\tau \big[f''(a)\ a'\ g_1 + (f'''(a)\ a'^2 + f''(a)\ a'')\ g_2\big]. $$
///
/// # Reference
/// docs/math.md §8.5; Song et al. 2019 (SSM), Sec. 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivationJet(pub Activation);

/// What [`ActivationJet`] keeps for its reverse pass: `f'`, `f''`, `f'''` on the primal rows.
#[derive(Clone, Debug, Default)]
pub struct JetCache<F> {
    d1: Vec<F>,
    d2: Vec<F>,
    d3: Vec<F>,
}

/// Number of directions `m` of a jet batch with `rows` rows and `n` points.
#[track_caller]
pub(crate) fn jet_directions(rows: usize, n: usize) -> usize {
    assert!(
        n > 0 && rows.is_multiple_of(n) && (rows / n) % 2 == 1,
        "jet batch: {rows} rows is not n (1 + 2m) for n = {n}"
    );
    (rows / n - 1) / 2
}

/// Stacks the jet input of the lines `t -> x_i + t v_{tau i}`: `[x; v; 0]`, with `v` holding `m` blocks of
/// `n` rows (direction `tau` of point `i` at row `tau n + i`). The second-order rows are zero because the
/// lines are straight.
#[track_caller]
pub fn stack_jet_input<F: Real>(x: &Mat<F>, directions: &Mat<F>, out: &mut Mat<F>) {
    let (n, dim) = (x.rows(), x.cols());
    assert_eq!(directions.cols(), dim, "jet directions have {} columns, expected {dim}", directions.cols());
    assert!(
        n > 0 && directions.rows().is_multiple_of(n),
        "jet directions: {} rows for {n} points",
        directions.rows()
    );
    let m = directions.rows() / n;
    out.resize(n * (1 + 2 * m), dim);
    let data = out.as_mut_slice();
    let (head, rest) = data.split_at_mut(n * dim);
    head.copy_from_slice(x.as_slice());
    let (first, second) = rest.split_at_mut(m * n * dim);
    first.copy_from_slice(directions.as_slice());
    second.iter_mut().for_each(|v| *v = F::zero());
}

/// `y = f(a)` and the first three derivatives on the primal rows.
#[inline(always)]
fn primal_pass<F: Real>(jet: impl Fn(F) -> [F; 4], a: &[F], y: &mut [F], cache: &mut JetCache<F>) {
    let derivatives = cache.d1.iter_mut().zip(cache.d2.iter_mut()).zip(cache.d3.iter_mut());
    for ((y, ((d1, d2), d3)), a) in y.iter_mut().zip(derivatives).zip(a) {
        let [value, first, second, third] = jet(*a);
        (*y, *d1, *d2, *d3) = (value, first, second, third);
    }
}

impl<F: Real> Layer<F> for ActivationJet {
    type Cache = JetCache<F>;
    type Grad = ();

    fn forward(&self, x: &Mat<F>, n: usize, y: &mut Mat<F>, cache: &mut JetCache<F>) {
        let m = jet_directions(x.rows(), n);
        let primal = n * x.cols();
        y.resize(x.rows(), x.cols());
        for buffer in [&mut cache.d1, &mut cache.d2, &mut cache.d3] {
            buffer.resize(primal, F::zero());
        }
        let (xs, ys) = (x.as_slice(), y.as_mut_slice());
        let (y_primal, y_rest) = ys.split_at_mut(primal);
        let a = &xs[..primal];
        match self.0 {
            Activation::Softplus => primal_pass(|a| Activation::Softplus.jet(a), a, y_primal, cache),
            Activation::Tanh => primal_pass(|a| Activation::Tanh.jet(a), a, y_primal, cache),
            Activation::Silu => primal_pass(|a| Activation::Silu.jet(a), a, y_primal, cache),
            Activation::Elu => primal_pass(|a| Activation::Elu.jet(a), a, y_primal, cache),
        }
        let block = m * primal;
        let (y1, y2) = y_rest.split_at_mut(block);
        let (x1, x2) = xs[primal..].split_at(block);
        let chunk = primal.max(1);
        let first = x1.chunks_exact(chunk).zip(x2.chunks_exact(chunk));
        for ((a1, a2), (h1, h2)) in first.zip(y1.chunks_exact_mut(chunk).zip(y2.chunks_exact_mut(chunk))) {
            let derivatives = cache.d1.iter().zip(&cache.d2);
            for ((((h1, h2), a1), a2), (d1, d2)) in
                h1.iter_mut().zip(h2.iter_mut()).zip(a1).zip(a2).zip(derivatives)
            {
                *h1 = *d1 * *a1;
                *h2 = *d2 * *a1 * *a1 + *d1 * *a2;
            }
        }
    }

    fn reverse(
        &self,
        x: &Mat<F>,
        n: usize,
        cache: &JetCache<F>,
        g_y: &Mat<F>,
        g_x: Option<&mut Mat<F>>,
        _grad: &mut (),
    ) {
        let Some(g_x) = g_x else { return };
        let m = jet_directions(x.rows(), n);
        let primal = n * x.cols();
        let block = m * primal;
        let chunk = primal.max(1);
        g_x.resize(x.rows(), x.cols());
        let two = F::of(2.0);
        let (xs, gs) = (x.as_slice(), g_y.as_slice());
        let (x1, x2) = xs[primal..].split_at(block);
        let (g1, g2) = gs[primal..].split_at(block);
        let (g_a, g_rest) = g_x.as_mut_slice().split_at_mut(primal);
        let (g_a1, g_a2) = g_rest.split_at_mut(block);
        for ((ga, d1), g) in g_a.iter_mut().zip(&cache.d1).zip(&gs[..primal]) {
            *ga = *d1 * *g;
        }
        let inputs = x1.chunks_exact(chunk).zip(x2.chunks_exact(chunk));
        let cotangents = g1.chunks_exact(chunk).zip(g2.chunks_exact(chunk));
        let outputs = g_a1.chunks_exact_mut(chunk).zip(g_a2.chunks_exact_mut(chunk));
        for (((a1, a2), (g1, g2)), (ga1, ga2)) in inputs.zip(cotangents).zip(outputs) {
            for k in 0..primal {
                let (d1, d2, d3) = (cache.d1[k], cache.d2[k], cache.d3[k]);
                let (a1, a2, g1, g2) = (a1[k], a2[k], g1[k], g2[k]);
                ga2[k] = d1 * g2;
                ga1[k] = d1 * g1 + two * d2 * a1 * g2;
                g_a[k] += d2 * a1 * g1 + (d3 * a1 * a1 + d2 * a2) * g2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, dot, fd_gradient, normal_mat, test_rng};

    const ALL: [Activation; 4] = [Activation::Softplus, Activation::Tanh, Activation::Silu, Activation::Elu];

    /// `f(a + t a1 + t^2 a2 / 2)` along a curve whose derivatives at 0 are `(a1, a2)`.
    fn curve(act: Activation, a: f64, a1: f64, a2: f64, t: f64) -> f64 {
        act.jet::<f64>(a + t * a1 + 0.5 * t * t * a2)[0]
    }

    #[test]
    fn jet_forward_matches_finite_differences_along_curves() {
        for act in ALL {
            let (n, m, width) = (2, 3, 4);
            let mut rng = test_rng(31);
            let mut x = normal_mat(n * (1 + 2 * m), width, &mut rng);
            x.as_mut_slice()[..n * width].iter_mut().for_each(|v| *v += 0.2 * v.signum());
            let mut y = Mat::default();
            ActivationJet(act).forward(&x, n, &mut y, &mut JetCache::default());
            let eps = 1e-4;
            for tau in 0..m {
                for i in 0..n {
                    for j in 0..width {
                        let a = x.at(i, j);
                        let a1 = x.at(n + tau * n + i, j);
                        let a2 = x.at(n + m * n + tau * n + i, j);
                        let f = |t| curve(act, a, a1, a2, t);
                        let first = (f(eps) - f(-eps)) / (2.0 * eps);
                        let second = (f(eps) - 2.0 * f(0.0) + f(-eps)) / (eps * eps);
                        assert_close(&[y.at(n + tau * n + i, j)], &[first], 1e-7, "jet first order");
                        assert_close(
                            &[y.at(n + m * n + tau * n + i, j)],
                            &[second],
                            1e-5,
                            "jet second order",
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn jet_reverse_is_the_gradient_of_the_jet_forward() {
        for act in ALL {
            let (n, m, width) = (3, 2, 2);
            let mut rng = test_rng(32);
            let mut x = normal_mat(n * (1 + 2 * m), width, &mut rng);
            x.as_mut_slice()[..n * width].iter_mut().for_each(|v| *v += 0.2 * v.signum());
            let g = normal_mat(x.rows(), width, &mut rng);
            let layer = ActivationJet(act);
            let (mut y, mut cache, mut g_x) = (Mat::default(), JetCache::default(), Mat::default());
            layer.forward(&x, n, &mut y, &mut cache);
            layer.reverse(&x, n, &cache, &g, Some(&mut g_x), &mut ());
            let objective = |flat: &[f64]| {
                let mut y = Mat::default();
                let xx = Mat::from_vec(x.rows(), width, flat.to_vec());
                layer.forward(&xx, n, &mut y, &mut JetCache::default());
                dot(g.as_slice(), y.as_slice())
            };
            let fd = fd_gradient(objective, x.as_slice(), 1e-6);
            assert_close(g_x.as_slice(), &fd, 1e-6, &format!("{act:?} jet reverse"));
        }
    }
}

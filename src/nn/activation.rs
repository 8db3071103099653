//! Pointwise activations with their first three derivatives (the tangent pass needs `act'`, the
//! reverse pass through tangents `act''`, second-order jets `act'''`).

use super::layer::Layer;
use crate::linalg::{Mat, Real};
use serde::{Deserialize, Serialize};

/// A pointwise nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `softplus(a) = ln(1 + e^a)`; `softplus' = sigmoid`, `softplus'' = sigmoid (1 - sigmoid)`.
    Softplus,
    /// `tanh(a)`; `tanh' = 1 - tanh^2`, `tanh'' = -2 tanh (1 - tanh^2)`.
    Tanh,
    /// `silu(a) = a sigmoid(a)`.
    Silu,
    /// `elu(a) = a` for `a > 0`, `e^a - 1` otherwise.
    Elu,
}

/// `e^{-|a|}` and the logistic sigmoid, stable for both signs, branch-free.
#[inline(always)]
fn exp_abs_and_sigmoid<F: Real>(a: F) -> (F, F) {
    let e = F::exp_nonpositive(-a.abs());
    let inv = F::one() / (F::one() + e);
    (e, if a >= F::zero() { inv } else { e * inv })
}

impl Activation {
    /// `[act(a), act'(a), act''(a), act'''(a)]`.
    #[inline(always)]
    pub fn jet<F: Real>(self, a: F) -> [F; 4] {
        let one = F::one();
        let two = F::of(2.0);
        match self {
            Activation::Softplus => {
                // ln(1 + e^a) = max(a, 0) + ln(1 + e^-|a|), stable for both signs.
                let (e, s) = exp_abs_and_sigmoid(a);
                let value = a.max(F::zero()) + F::ln_1p_unit(e);
                let d2 = s * (one - s);
                [value, s, d2, d2 * (one - two * s)]
            }
            Activation::Tanh => {
                // tanh(a) = sign(a) (1 - e^{-2|a|}) / (1 + e^{-2|a|}).
                let e = F::exp_nonpositive(-two * a.abs());
                let t = (one - e) / (one + e) * a.signum();
                let d1 = one - t * t;
                [t, d1, -two * t * d1, d1 * (F::of(6.0) * t * t - two)]
            }
            Activation::Silu => {
                let (_, s) = exp_abs_and_sigmoid(a);
                let ds = s * (one - s);
                let dds = ds * (one - two * s);
                let ddds = ds * (one - F::of(6.0) * ds);
                [a * s, s + a * ds, two * ds + a * dds, F::of(3.0) * dds + a * ddds]
            }
            Activation::Elu => {
                if a > F::zero() {
                    [a, one, F::zero(), F::zero()]
                } else {
                    let e = F::exp_nonpositive(a);
                    [e - one, e, e, e]
                }
            }
        }
    }
}

/// `y = act(a)`, `d1 = act'(a)` and, when asked, `d2 = act''(a)` elementwise (only the reverse pass
/// through tangent rows reads `d2`; without them the jet's second derivative is never computed).
#[inline(always)]
fn primal_pass<F: Real>(jet: impl Fn(F) -> [F; 4], a: &[F], y: &mut [F], d1: &mut [F], d2: Option<&mut [F]>) {
    match d2 {
        Some(d2) => {
            for (((y, d1), d2), a) in y.iter_mut().zip(d1.iter_mut()).zip(d2.iter_mut()).zip(a) {
                let [value, first, second, _] = jet(*a);
                (*y, *d1, *d2) = (value, first, second);
            }
        }
        None => {
            for ((y, d1), a) in y.iter_mut().zip(d1.iter_mut()).zip(a) {
                let [value, first, _, _] = jet(*a);
                (*y, *d1) = (value, first);
            }
        }
    }
}

/// `v = act(v)` and `d1 = act'(v)` elementwise, in place.
#[inline(always)]
fn in_place_pass<F: Real>(jet: impl Fn(F) -> [F; 4], values: &mut [F], d1: &mut [F]) {
    for (v, d1) in values.iter_mut().zip(d1.iter_mut()) {
        let [value, first, _, _] = jet(*v);
        (*v, *d1) = (value, first);
    }
}

/// What an activation keeps for the reverse pass: `act'(a)` and (with tangent rows) `act''(a)` on the
/// primal rows.
#[derive(Clone, Debug, Default)]
pub struct ActivationCache<F> {
    d1: Vec<F>,
    d2: Vec<F>,
}

impl<F> ActivationCache<F> {
    /// `act'(a)` on the primal rows.
    pub(crate) fn first(&self) -> &[F] {
        &self.d1
    }

    /// Sizes the cache for `len` primal values without second derivatives and returns `act'(a)` to be
    /// written (by [`Activation::apply_in_place`]).
    pub(crate) fn first_only(&mut self, len: usize) -> &mut [F]
    where
        F: Clone + Default,
    {
        self.d1.resize(len, F::default());
        self.d2.clear();
        &mut self.d1
    }

    /// `act''(a)` on the primal rows (empty unless the pass had tangent rows or was asked to keep it).
    pub(crate) fn second(&self) -> &[F] {
        &self.d2
    }
}

impl Activation {
    /// [`Layer::forward`], keeping `act''(a)` in the cache also without tangent rows when `second` is set
    /// (the reverse of the input gradient reads it).
    pub(crate) fn forward_cached<F: Real>(
        &self,
        x: &Mat<F>,
        n: usize,
        y: &mut Mat<F>,
        cache: &mut ActivationCache<F>,
        second: bool,
    ) {
        let width = x.cols();
        y.resize(x.rows(), width);
        let primal = n * width;
        cache.d1.resize(primal, F::zero());
        let tangents = x.rows() > n;
        cache.d2.resize(if tangents || second { primal } else { 0 }, F::zero());
        let (xs, ys) = (x.as_slice(), y.as_mut_slice());
        let (y_primal, y_dots) = ys.split_at_mut(primal);
        let (xs_primal, d1) = (&xs[..primal], &mut cache.d1[..]);
        let d2 = Some(&mut cache.d2[..]).filter(|_| tangents || second);
        // One monomorphised loop per activation, so the jet inlines and vectorises.
        match self {
            Activation::Softplus => primal_pass(|a| Activation::Softplus.jet(a), xs_primal, y_primal, d1, d2),
            Activation::Tanh => primal_pass(|a| Activation::Tanh.jet(a), xs_primal, y_primal, d1, d2),
            Activation::Silu => primal_pass(|a| Activation::Silu.jet(a), xs_primal, y_primal, d1, d2),
            Activation::Elu => primal_pass(|a| Activation::Elu.jet(a), xs_primal, y_primal, d1, d2),
        }
        for (x_dot, y_dot) in
            xs[primal..].chunks_exact(primal.max(1)).zip(y_dots.chunks_exact_mut(primal.max(1)))
        {
            for ((y, d1), a_dot) in y_dot.iter_mut().zip(&cache.d1).zip(x_dot) {
                *y = *d1 * *a_dot;
            }
        }
    }

    /// `v = act(v)` and `d1 = act'(v)` in place, for an input computed just before and still in the
    /// cache (the fused group norm and activation, `graph/norm_act.rs`).
    pub(crate) fn apply_in_place<F: Real>(&self, values: &mut [F], d1: &mut [F]) {
        match self {
            Activation::Softplus => in_place_pass(|a| Activation::Softplus.jet(a), values, d1),
            Activation::Tanh => in_place_pass(|a| Activation::Tanh.jet(a), values, d1),
            Activation::Silu => in_place_pass(|a| Activation::Silu.jet(a), values, d1),
            Activation::Elu => in_place_pass(|a| Activation::Elu.jet(a), values, d1),
        }
    }
}

impl<F: Real> Layer<F> for Activation {
    type Cache = ActivationCache<F>;
    type Grad = ();

    /// `h = act(a)` on primal rows; `h_dot = act'(a) a_dot` on tangent rows.
    fn forward(&self, x: &Mat<F>, n: usize, y: &mut Mat<F>, cache: &mut ActivationCache<F>) {
        self.forward_cached(x, n, y, cache, false);
    }

    /// `g_a_dot = act'(a) g_dot`; `g_a = act'(a) g + act''(a) sum_tau a_dot g_dot`.
    fn reverse(
        &self,
        x: &Mat<F>,
        n: usize,
        cache: &ActivationCache<F>,
        g_y: &Mat<F>,
        g_x: Option<&mut Mat<F>>,
        _grad: &mut (),
    ) {
        let Some(g_x) = g_x else { return };
        let primal = n * x.cols();
        g_x.resize(x.rows(), x.cols());
        let chunk = primal.max(1);
        let (a_dots, g_dots) = (&x.as_slice()[primal..], &g_y.as_slice()[primal..]);
        let (g_a, g_a_dots) = g_x.as_mut_slice().split_at_mut(primal);
        for ((ga, d1), g) in g_a.iter_mut().zip(&cache.d1).zip(&g_y.as_slice()[..primal]) {
            *ga = *d1 * *g;
        }
        for ((a_dot, g_dot), g_a_dot) in
            a_dots.chunks_exact(chunk).zip(g_dots.chunks_exact(chunk)).zip(g_a_dots.chunks_exact_mut(chunk))
        {
            let terms = g_a.iter_mut().zip(g_a_dot.iter_mut()).zip(cache.d1.iter().zip(&cache.d2));
            for (((ga, ga_dot), (d1, d2)), (ad, gd)) in terms.zip(a_dot.iter().zip(g_dot)) {
                *ga_dot = *d1 * *gd;
                *ga += *d2 * *ad * *gd;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, check_stacked_map, normal_mat, test_rng};

    const ALL: [Activation; 4] = [Activation::Softplus, Activation::Tanh, Activation::Silu, Activation::Elu];

    #[test]
    fn jet_derivatives_match_finite_differences() {
        let eps = 1e-5;
        for act in ALL {
            for a in [-7.0, -1.3, -0.2, 0.4, 1.1, 6.5] {
                let j = act.jet::<f64>(a);
                let (up, down) = (act.jet::<f64>(a + eps), act.jet::<f64>(a - eps));
                let fd: Vec<f64> = (0..3).map(|k| (up[k] - down[k]) / (2.0 * eps)).collect();
                assert_close(&j[1..], &fd, 1e-7, &format!("{act:?} derivatives at {a}"));
            }
        }
    }

    #[test]
    fn softplus_is_stable_for_large_inputs() {
        let [big, d1, _, _] = Activation::Softplus.jet::<f32>(100.0);
        assert_eq!(big, 100.0);
        assert_eq!(d1, 1.0);
        let [small, _, _, _] = Activation::Softplus.jet::<f32>(-100.0);
        assert!((0.0..1e-37).contains(&small), "{small}");
    }

    #[test]
    fn nan_inputs_give_nan_values_and_derivatives() {
        // A NaN weight must reach the loss as NaN (the trainer's guard): in f32 softplus(NaN) used to
        // be about 1e-38, because the fast exp clamped NaN to exp(-87).
        for act in ALL {
            assert!(
                act.jet::<f32>(f32::NAN).iter().all(|v| v.is_nan()),
                "{act:?} f32: {:?}",
                act.jet::<f32>(f32::NAN)
            );
            assert!(
                act.jet::<f64>(f64::NAN).iter().all(|v| v.is_nan()),
                "{act:?} f64: {:?}",
                act.jet::<f64>(f64::NAN)
            );
        }
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        for act in ALL {
            for (n, tangents) in [(3, 0), (2, 1), (2, 3)] {
                let mut rng = test_rng(3);
                // Keep ELU inputs away from its kink at 0, where finite differences are meaningless.
                let mut x = normal_mat(n * (1 + tangents), 4, &mut rng);
                if act == Activation::Elu {
                    x.as_mut_slice()[..n * 4].iter_mut().for_each(|v| *v += 0.2 * v.signum());
                }
                let forward = |x: &Mat<f64>, _: &[f64]| {
                    let mut y = Mat::default();
                    act.forward(x, n, &mut y, &mut ActivationCache::default());
                    y
                };
                let reverse = |x: &Mat<f64>, _: &[f64], g: &Mat<f64>| {
                    let (mut y, mut cache, mut g_x) =
                        (Mat::default(), ActivationCache::default(), Mat::default());
                    act.forward(x, n, &mut y, &mut cache);
                    act.reverse(x, n, &cache, g, Some(&mut g_x), &mut ());
                    (g_x, Vec::new())
                };
                check_stacked_map(forward, reverse, &x, n, &[], 5);
            }
        }
    }
}

//! Group norm, optionally followed by a pointwise activation fused into it: `y = act(gamma x^ + beta)`
//! (docs/math.md §8.9). On the primal rows the activation runs on each row of the norm's output while
//! that row is still in the cache, and the reverse pass scales the cotangent by `act'` inside the
//! norm's own passes, so the intermediate `gamma x^ + beta` never goes through memory as a tensor of
//! its own. With tangent rows (no fast path) the op is the two ops composed, through a kept
//! intermediate.

use super::cotangent::InputCotangent;
use super::group_norm::{GroupNorm, GroupNormCache};
use crate::linalg::{Mat, Real};
use crate::nn::{Activation, ActivationCache, Layer};

/// `act(group_norm(x))`, or the norm alone. Parameters: the norm's (scale, then shift).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormAct {
    /// The normalisation.
    pub norm: GroupNorm,
    /// The activation applied to its output, if any.
    pub act: Option<Activation>,
}

/// What the op keeps for its reverse pass: the norm's cache, the activation's, and (with tangent rows
/// only) the norm's stacked output.
#[derive(Clone, Debug, Default)]
pub struct NormActCache<F> {
    norm: GroupNormCache<F>,
    act: ActivationCache<F>,
    normed: Mat<F>,
}

impl NormAct {
    /// `y = act(gamma x^ + beta)` on the `n` primal rows and the composed tangent on the others.
    pub fn forward<F: Real>(
        &self,
        params: &[F],
        x: &Mat<F>,
        n: usize,
        y: &mut Mat<F>,
        cache: &mut NormActCache<F>,
    ) {
        match self.act {
            None => self.norm.forward(params, x, n, y, &mut cache.norm),
            Some(act) if x.rows() > n => {
                self.norm.forward(params, x, n, &mut cache.normed, &mut cache.norm);
                act.forward_cached(&cache.normed, n, y, &mut cache.act, false);
            }
            Some(act) => {
                let len = self.norm.shape.len();
                let d1 = cache.act.first_only(n * len);
                self.norm.forward_primal(params, x, n, y, &mut cache.norm, |i, row| {
                    act.apply_in_place(row, &mut d1[i * len..(i + 1) * len]);
                });
            }
        }
    }

    /// Parameter gradients and, when asked, `g_x (+)=` the cotangent of the input; `scratch` holds the
    /// intermediate's cotangent when there are tangent rows.
    #[allow(clippy::too_many_arguments)]
    pub fn reverse<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        x: &Mat<F>,
        n: usize,
        cache: &NormActCache<F>,
        g_y: &Mat<F>,
        g_x: Option<InputCotangent<'_, F>>,
        scratch: &mut Mat<F>,
    ) {
        match self.act {
            None => self.norm.reverse(params, grad, x, n, &cache.norm, g_y, g_x),
            Some(act) if x.rows() > n => {
                act.reverse(&cache.normed, n, &cache.act, g_y, Some(scratch), &mut ());
                self.norm.reverse(params, grad, x, n, &cache.norm, scratch, g_x);
            }
            Some(_) => {
                let d1 = Some(cache.act.first());
                self.norm.reverse_primal(params, grad, x, n, &cache.norm, g_y, d1, g_x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::{check_against_finite_differences, GraphBuilder};
    use crate::nn::graph::Shape;
    use crate::testing::{assert_close, normal_mat, test_rng};

    /// The fused op gives what the norm and the activation give one after the other: values, parameter
    /// gradient and input cotangent, on primal rows alone (its fast path) and with tangent rows.
    #[test]
    fn fused_op_equals_the_norm_then_the_activation() {
        let mut rng = test_rng(31);
        let norm = GroupNorm { shape: Shape::new(3, 4, 6), groups: 3 };
        for act in [Activation::Silu, Activation::Softplus, Activation::Tanh, Activation::Elu] {
            let op = NormAct { norm, act: Some(act) };
            let params: Vec<f64> = normal_mat(1, norm.param_len(), &mut rng).into_vec();
            for (n, rows) in [(3, 3), (2, 6)] {
                let what = format!("{act:?}, {n} primal of {rows} rows");
                let x = normal_mat(rows, norm.shape.len(), &mut rng);
                let g_y = normal_mat(rows, norm.shape.len(), &mut rng);
                let (mut normed, mut norm_cache, mut want) =
                    (Mat::default(), GroupNormCache::default(), Mat::default());
                norm.forward(&params, &x, n, &mut normed, &mut norm_cache);
                let mut act_cache = ActivationCache::default();
                act.forward_cached(&normed, n, &mut want, &mut act_cache, false);
                let mut g_normed = Mat::default();
                act.reverse(&normed, n, &act_cache, &g_y, Some(&mut g_normed), &mut ());
                let (mut want_grad, mut want_gx) = (vec![0.0; norm.param_len()], Mat::zeros(rows, x.cols()));
                let g = InputCotangent { g: &mut want_gx, fresh: true };
                norm.reverse(&params, &mut want_grad, &x, n, &norm_cache, &g_normed, Some(g));

                let (mut y, mut cache) = (Mat::default(), NormActCache::default());
                op.forward(&params, &x, n, &mut y, &mut cache);
                assert_close(y.as_slice(), want.as_slice(), 1e-13, &what);
                // Stale values in g_x: a fresh cotangent is assigned, not added to.
                let (mut grad, mut g_x) = (vec![0.0; norm.param_len()], normal_mat(rows, x.cols(), &mut rng));
                let g = InputCotangent { g: &mut g_x, fresh: true };
                op.reverse(&params, &mut grad, &x, n, &cache, &g_y, Some(g), &mut Mat::default());
                assert_close(&grad, &want_grad, 1e-12, &format!("{what}: parameter gradient"));
                assert_close(g_x.as_slice(), want_gx.as_slice(), 1e-12, &format!("{what}: input cotangent"));
            }
        }
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        for tangents in [0, 2] {
            let mut rng = test_rng(32);
            let mut b = GraphBuilder::<f64, _>::new(Shape::new(3, 2, 4), &mut rng);
            let x = b.input();
            b.group_norm("norm", x, 2, Some(Activation::Silu)).expect("4 channels, 2 groups");
            check_against_finite_differences(&b.finish(), 2, tangents, 33);
        }
    }
}

//! The input gradient `grad_x E` of a scalar-output [`Mlp`] written as a forward computation (the
//! network's backward chain run as a second pass), with the reverse pass that differentiates it in the
//! parameters. Energy models need it for every objective that uses `||grad_x E||^2` or `s = -grad_x E`
//! at a point (SSM-VR, DSM), docs/math.md §7.2 and §8.6.
//!
//! # Cost
//! The value pass is one forward pass plus one backward chain (`2L` GEMMs for `L` layers); the reverse
//! pass runs the reverse of both (`4L` GEMMs), independently of the dimension `D`. The alternative, `D`
//! basis tangents through the tangent pass, costs `D + 1` times the rows; it is kept only as the test
//! reference.

use super::layer::Layer;
use super::mlp::Mlp;
use crate::linalg::{Mat, Real};

/// The workspace of [`Mlp::input_gradient_trace`]: forward values, activation derivatives, the backward
/// chain, and cotangent scratch. Allocate once, reuse every step.
#[derive(Clone, Debug, Default)]
pub struct InputGradientTrace<F> {
    /// `a_k`, the pre-activations of layer `k` (the last one is the output `E`).
    pre: Vec<Mat<F>>,
    /// `h_k = f(a_k)` for hidden layers.
    post: Vec<Mat<F>>,
    /// `f'(a_k)` and `f''(a_k)` for hidden layers.
    d1: Vec<Mat<F>>,
    d2: Vec<Mat<F>>,
    /// `delta_k = dE/da_k` (`delta_{L-1} = 1`).
    delta: Vec<Mat<F>>,
    /// `gamma_k = dE/dh_k = delta_{k+1} W_{k+1}^T`.
    gamma: Vec<Mat<F>>,
    /// `grad_x E = delta_0 W_0^T`.
    gradient: Mat<F>,
    a_bar: Vec<Mat<F>>,
    delta_bar: Mat<F>,
    gamma_bar: Mat<F>,
    h_bar: Mat<F>,
}

impl<F: Real> InputGradientTrace<F> {
    /// The network outputs `E(x)` (`n x 1`) of the last pass.
    pub fn value(&self) -> &Mat<F> {
        self.pre.last().expect("InputGradientTrace::value before a forward pass")
    }

    /// The input gradients `grad_x E(x)` (`n x D`) of the last pass.
    pub fn gradient(&self) -> &Mat<F> {
        &self.gradient
    }
}

impl<F: Real> Mlp<F> {
    /// `E(x)` and `grad_x E(x)` at every row of `x` for a network with one output, recording what
    /// [`Mlp::input_gradient_reverse`] needs.
    ///
    /// # Definition
    /// With `a_k = h_{k-1} W_k + b_k`, `h_k = f(a_k)`, `h_{-1} = x`, `E = a_{L-1}`:
    /// $$ \delta_{L-1} = 1,\quad \gamma_{k} = \delta_{k+1} W_{k+1}^\top,\quad \delta_k = f'(a_k) \odot
    ///    \gamma_k,\quad \nabla_x E = \delta_0 W_0^\top. $$
    #[track_caller]
    pub fn input_gradient_trace<'t>(
        &self,
        x: &Mat<F>,
        trace: &'t mut InputGradientTrace<F>,
    ) -> (&'t Mat<F>, &'t Mat<F>) {
        assert_eq!(
            self.outputs(),
            1,
            "input gradient: the network has {} outputs, expected 1",
            self.outputs()
        );
        assert_eq!(
            x.cols(),
            self.inputs(),
            "input gradient: input has {} columns, expected {}",
            x.cols(),
            self.inputs()
        );
        let n = x.rows();
        let layers = self.layers();
        let depth = layers.len();
        let act = self.activation();
        let InputGradientTrace { pre, post, d1, d2, delta, gamma, gradient, .. } = trace;
        pre.resize_with(depth, Mat::default);
        for buffers in [&mut *post, &mut *d1, &mut *d2, &mut *gamma] {
            buffers.resize_with(depth - 1, Mat::default);
        }
        delta.resize_with(depth, Mat::default);
        for k in 0..depth {
            let input = if k == 0 { x } else { &post[k - 1] };
            layers[k].forward(input, n, &mut pre[k], &mut ());
            if k + 1 < depth {
                let width = layers[k].outputs();
                for m in [&mut post[k], &mut d1[k], &mut d2[k]] {
                    m.resize(n, width);
                }
                let (h, f1, f2) = (post[k].as_mut_slice(), d1[k].as_mut_slice(), d2[k].as_mut_slice());
                for (idx, a) in pre[k].as_slice().iter().enumerate() {
                    let [value, first, second, _] = act.jet(*a);
                    (h[idx], f1[idx], f2[idx]) = (value, first, second);
                }
            }
        }
        delta[depth - 1].resize(n, 1);
        delta[depth - 1].as_mut_slice().iter_mut().for_each(|v| *v = F::one());
        for k in (1..depth).rev() {
            gamma[k - 1].resize(n, layers[k].inputs());
            gamma[k - 1].gemm_into(F::one(), &delta[k], false, &layers[k].weight, true, F::zero());
            let target = &mut delta[k - 1];
            target.resize(n, layers[k].inputs());
            for ((t, f1), g) in
                target.as_mut_slice().iter_mut().zip(d1[k - 1].as_slice()).zip(gamma[k - 1].as_slice())
            {
                *t = *f1 * *g;
            }
        }
        gradient.resize(n, self.inputs());
        gradient.gemm_into(F::one(), &delta[0], false, &layers[0].weight, true, F::zero());
        (&pre[depth - 1], &*gradient)
    }

    /// Reverse pass after [`Mlp::input_gradient_trace`] on the same `x`: given cotangents `g_value` of
    /// `E` (`n x 1`, or none) and `g_gradient` of `grad_x E` (`n x D`), ADDS the parameter gradient of
    /// `<g_value, E> + <g_gradient, grad_x E>` into `grad`.
    ///
    /// # Definition
    /// Reverse of the backward chain (`bar` marks cotangents):
    /// $$ \bar\delta_0 = \bar g\  W_0,\ \bar W_0 \mathrel{+}= \bar g^\top \delta_0;\quad
    ///    \bar\gamma_k = f'(a_k) \odot \bar\delta_k,\ \bar a_k \mathrel{+}= f''(a_k) \odot \gamma_k \odot
    ///    \bar\delta_k,\ \bar\delta_{k+1} = \bar\gamma_k W_{k+1},\ \bar W_{k+1} \mathrel{+}= \bar\gamma_k^\top
    ///    \delta_{k+1}; $$
    /// then the ordinary reverse of the forward pass seeded with `bar a_{L-1} = g_value` and the `bar a_k`
    /// above.
    #[track_caller]
    pub fn input_gradient_reverse(
        &self,
        x: &Mat<F>,
        trace: &mut InputGradientTrace<F>,
        g_value: Option<&Mat<F>>,
        g_gradient: &Mat<F>,
        grad: &mut Mlp<F>,
    ) {
        let n = x.rows();
        let layers = self.layers();
        let depth = layers.len();
        assert!(
            trace.pre.len() == depth && trace.gradient.rows() == n,
            "input_gradient_reverse before its forward pass"
        );
        assert!(
            g_gradient.rows() == n && g_gradient.cols() == self.inputs(),
            "input_gradient_reverse: gradient cotangent is {}x{}, expected {n}x{}",
            g_gradient.rows(),
            g_gradient.cols(),
            self.inputs()
        );
        let InputGradientTrace { post, d1, d2, delta, gamma, a_bar, delta_bar, gamma_bar, h_bar, .. } = trace;
        let grad_layers = grad.layers_mut();
        a_bar.resize_with(depth, Mat::default);
        for (k, a) in a_bar.iter_mut().enumerate() {
            a.resize(n, layers[k].outputs());
            a.fill_zero();
        }
        // grad_x E = delta_0 W_0^T.
        grad_layers[0].weight.gemm_into(F::one(), g_gradient, true, &delta[0], false, F::one());
        if depth > 1 {
            delta_bar.resize(n, layers[0].outputs());
            delta_bar.gemm_into(F::one(), g_gradient, false, &layers[0].weight, false, F::zero());
        }
        for k in 0..depth - 1 {
            // delta_k = f'(a_k) gamma_k.
            gamma_bar.resize(n, layers[k].outputs());
            let terms = gamma_bar.as_mut_slice().iter_mut().zip(a_bar[k].as_mut_slice().iter_mut());
            let inputs = d1[k]
                .as_slice()
                .iter()
                .zip(d2[k].as_slice())
                .zip(gamma[k].as_slice().iter().zip(delta_bar.as_slice()));
            for ((gb, ab), ((f1, f2), (g, db))) in terms.zip(inputs) {
                *gb = *f1 * *db;
                *ab += *f2 * *g * *db;
            }
            // gamma_k = delta_{k+1} W_{k+1}^T.
            grad_layers[k + 1].weight.gemm_into(F::one(), gamma_bar, true, &delta[k + 1], false, F::one());
            if k + 2 < depth {
                delta_bar.resize(n, layers[k + 1].outputs());
                delta_bar.gemm_into(F::one(), gamma_bar, false, &layers[k + 1].weight, false, F::zero());
            }
        }
        if let Some(g) = g_value {
            assert!(g.rows() == n && g.cols() == 1, "input_gradient_reverse: value cotangent shape");
            for (a, gv) in a_bar[depth - 1].as_mut_slice().iter_mut().zip(g.as_slice()) {
                *a += *gv;
            }
        }
        for k in (0..depth).rev() {
            let input = if k == 0 { x } else { &post[k - 1] };
            let (lower, upper) = a_bar.split_at_mut(k);
            let target = if k > 0 { Some(&mut *h_bar) } else { None };
            layers[k].reverse(input, n, &(), &upper[0], target, &mut grad_layers[k]);
            if k > 0 {
                for ((a, f1), hb) in
                    lower[k - 1].as_mut_slice().iter_mut().zip(d1[k - 1].as_slice()).zip(h_bar.as_slice())
                {
                    *a += *f1 * *hb;
                }
            }
        }
    }

    /// `grad_x E` at every row of `x` for a network with one output.
    pub fn input_gradient(&self, x: &Mat<F>) -> Mat<F> {
        let mut trace = InputGradientTrace::default();
        self.input_gradient_trace(x, &mut trace);
        trace.gradient
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Activation;
    use crate::testing::{assert_close, dot, fd_gradient, normal_mat, test_rng};

    fn with_params(template: &Mlp<f64>, theta: &[f64]) -> Mlp<f64> {
        let mut mlp = template.clone();
        let mut rest = theta;
        for p in mlp.params_mut() {
            let (head, tail) = rest.split_at(p.len());
            p.copy_from_slice(head);
            rest = tail;
        }
        mlp
    }

    #[test]
    fn input_gradient_matches_finite_differences_and_the_reverse_pass() {
        for (act, sizes) in [
            (Activation::Softplus, vec![3, 6, 5, 1]),
            (Activation::Tanh, vec![2, 4, 1]),
            (Activation::Silu, vec![4, 3, 3, 3, 1]),
            (Activation::Softplus, vec![3, 1]),
        ] {
            let mut rng = test_rng(51);
            let template = Mlp::<f64>::init(&sizes, act, &mut rng);
            let mut theta = template.params().concat();
            theta.iter_mut().for_each(|p| *p += 0.07);
            let mlp = with_params(&template, &theta);
            let n = 3;
            let x = normal_mat(n, sizes[0], &mut rng);
            let mut trace = InputGradientTrace::default();
            let (value, gradient) = mlp.input_gradient_trace(&x, &mut trace);
            assert_close(value.as_slice(), mlp.forward(&x).as_slice(), 1e-12, "energy value");
            // The gradient equals finite differences of the forward pass...
            let energy_sum = |flat: &[f64]| {
                mlp.forward(&Mat::from_vec(n, sizes[0], flat.to_vec())).as_slice().iter().sum()
            };
            assert_close(gradient.as_slice(), &fd_gradient(energy_sum, x.as_slice(), 1e-6), 1e-7, "grad_x E");
            // ...and the ordinary reverse pass seeded with ones.
            let mut mlp_trace = crate::nn::MlpTrace::default();
            mlp.forward_trace(&x, n, &mut mlp_trace);
            let (mut unused, mut g_x) = (mlp.zeros_like(), Mat::default());
            mlp.reverse(&x, &mut mlp_trace, &Mat::from_fn(n, 1, |_, _| 1.0), &mut unused, Some(&mut g_x));
            assert_close(gradient.as_slice(), g_x.as_slice(), 1e-12, "grad_x E vs reverse pass");
            // Parameter gradient of <g_e, E> + <g_g, grad_x E>, with and without the value cotangent.
            let g_e = normal_mat(n, 1, &mut rng);
            let g_g = normal_mat(n, sizes[0], &mut rng);
            for with_value in [true, false] {
                let mut grad = mlp.zeros_like();
                mlp.input_gradient_trace(&x, &mut trace);
                mlp.input_gradient_reverse(&x, &mut trace, with_value.then_some(&g_e), &g_g, &mut grad);
                let objective = |p: &[f64]| {
                    let m = with_params(&template, p);
                    let mut t = InputGradientTrace::default();
                    let (e, g) = m.input_gradient_trace(&x, &mut t);
                    let value_term = if with_value { dot(g_e.as_slice(), e.as_slice()) } else { 0.0 };
                    value_term + dot(g_g.as_slice(), g.as_slice())
                };
                let what = format!("{act:?} {sizes:?} parameter gradient (value cotangent: {with_value})");
                assert_close(&grad.params().concat(), &fd_gradient(objective, &theta, 1e-6), 1e-6, &what);
            }
        }
    }
}

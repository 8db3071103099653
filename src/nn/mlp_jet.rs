//! The second-order jet pass of an [`Mlp`] along directions, and its reverse pass: `phi(t) = f(x + t v)`
//! with `phi(0), phi'(0), phi''(0)` from one stacked forward pass (docs/math.md §6.5 and §8.5).

use super::jet::{jet_directions, ActivationJet, JetCache};
use super::layer::Layer;
use super::mlp::Mlp;
use crate::linalg::{Mat, Real};

/// The workspace of [`Mlp::jet_forward_trace`]: pre- and post-activation jets of every layer, activation
/// jet caches and cotangent scratch. Allocate once, reuse every step.
#[derive(Clone, Debug, Default)]
pub struct MlpJetTrace<F> {
    n: usize,
    pre: Vec<Mat<F>>,
    post: Vec<Mat<F>>,
    caches: Vec<JetCache<F>>,
    g_pre: Mat<F>,
    g_post: Mat<F>,
}

impl<F: Real> MlpJetTrace<F> {
    /// The stacked output jet of the last forward pass: `n` values, then `m n` first derivatives, then
    /// `m n` second derivatives along the directions.
    pub fn output(&self) -> &Mat<F> {
        self.pre.last().expect("MlpJetTrace::output before a forward pass")
    }
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

impl<F: Real> Mlp<F> {
    /// Second-order jet forward pass over a stacked jet batch `x` (docs/math.md §8.5: `n` primal rows,
    /// `m n` first-order rows, `m n` second-order rows), recording what [`Mlp::jet_reverse`] needs.
    ///
    /// # Definition
    /// With the input jet `[x; v; 0]` (see [`stack_jet_input`]) the output jet is
    /// $$ \big[f(x);\ \partial_t f(x + t v)|_0;\ \partial_t^2 f(x + t v)|_0\big] = \big[f(x);\ J_f(x) v;\
    ///    (v^\top \nabla^2 f_k(x)\  v)_k\big]. $$
    /// For an energy network `E` these are `E`, `-v^T s` and `-v^T (grad s) v` with `s = -grad E`.
    #[track_caller]
    pub fn jet_forward_trace<'t>(&self, x: &Mat<F>, n: usize, trace: &'t mut MlpJetTrace<F>) -> &'t Mat<F> {
        assert_eq!(
            x.cols(),
            self.inputs(),
            "Mlp jet: input has {} columns, expected {}",
            x.cols(),
            self.inputs()
        );
        jet_directions(x.rows(), n);
        let layers = self.layers();
        let depth = layers.len();
        let act = ActivationJet(self.activation());
        trace.n = n;
        trace.pre.resize_with(depth, Mat::default);
        trace.post.resize_with(depth - 1, Mat::default);
        trace.caches.resize_with(depth - 1, JetCache::default);
        for (l, layer) in layers.iter().enumerate() {
            let input = if l == 0 { x } else { &trace.post[l - 1] };
            layer.forward(input, n, &mut trace.pre[l], &mut ());
            if l + 1 < depth {
                act.forward(&trace.pre[l], n, &mut trace.post[l], &mut trace.caches[l]);
            }
        }
        trace.output()
    }

    /// Reverse pass after [`Mlp::jet_forward_trace`] on the same `x`: given the cotangent `g_out` of the
    /// stacked output jet, ADDS parameter gradients into `grad` and writes the cotangent of the input jet
    /// into `g_x` when asked.
    #[track_caller]
    pub fn jet_reverse(
        &self,
        x: &Mat<F>,
        trace: &mut MlpJetTrace<F>,
        g_out: &Mat<F>,
        grad: &mut Mlp<F>,
        g_x: Option<&mut Mat<F>>,
    ) {
        let out = trace.output();
        assert!(
            g_out.rows() == out.rows() && g_out.cols() == out.cols(),
            "Mlp::jet_reverse: cotangent shape"
        );
        let n = trace.n;
        let layers = self.layers();
        let depth = layers.len();
        let act = ActivationJet(self.activation());
        let MlpJetTrace { pre, post, caches, g_pre, g_post, .. } = trace;
        let grad_layers = grad.layers_mut();
        let mut g_x = g_x;
        for l in (0..depth).rev() {
            let input = if l == 0 { x } else { &post[l - 1] };
            let g_in = if l == depth - 1 { g_out } else { &*g_pre };
            let target = if l > 0 { Some(&mut *g_post) } else { g_x.as_deref_mut() };
            layers[l].reverse(input, n, &(), g_in, target, &mut grad_layers[l]);
            if l > 0 {
                act.reverse(&pre[l - 1], n, &caches[l - 1], g_post, Some(g_pre), &mut ());
            }
        }
    }

    /// The output jet of the lines `t -> x_i + t v_{tau i}` without keeping a trace (see
    /// [`Mlp::jet_forward_trace`]); `directions` holds `m` blocks of `n` rows.
    pub fn jet_forward(&self, x: &Mat<F>, directions: &Mat<F>) -> Mat<F> {
        let mut input = Mat::default();
        stack_jet_input(x, directions, &mut input);
        let mut trace = MlpJetTrace::default();
        self.jet_forward_trace(&input, x.rows(), &mut trace);
        trace.pre.pop().unwrap_or_default()
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
    fn jet_output_matches_finite_differences_along_lines() {
        for act in [Activation::Softplus, Activation::Tanh, Activation::Silu] {
            let mut rng = test_rng(41);
            let mlp = Mlp::<f64>::init(&[3, 6, 5, 2], act, &mut rng);
            let (n, m) = (2, 3);
            let x = normal_mat(n, 3, &mut rng);
            let v = normal_mat(m * n, 3, &mut rng);
            let jet = mlp.jet_forward(&x, &v);
            let eps = 1e-4;
            for tau in 0..m {
                for i in 0..n {
                    let at = |t: f64| {
                        let p = Mat::from_fn(1, 3, |_, j| x.at(i, j) + t * v.at(tau * n + i, j));
                        mlp.forward(&p).into_vec()
                    };
                    let (up, mid, down) = (at(eps), at(0.0), at(-eps));
                    for k in 0..2 {
                        let first = (up[k] - down[k]) / (2.0 * eps);
                        let second = (up[k] - 2.0 * mid[k] + down[k]) / (eps * eps);
                        assert_close(&[jet.at(i, k)], &[mid[k]], 1e-12, "jet value");
                        assert_close(&[jet.at(n + tau * n + i, k)], &[first], 1e-7, "jet first derivative");
                        assert_close(
                            &[jet.at(n + m * n + tau * n + i, k)],
                            &[second],
                            1e-5,
                            "jet second derivative",
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn jet_reverse_matches_finite_differences_in_inputs_and_parameters() {
        for act in [Activation::Softplus, Activation::Tanh, Activation::Silu] {
            let mut rng = test_rng(42);
            let template = Mlp::<f64>::init(&[3, 5, 4, 1], act, &mut rng);
            let mut theta = template.params().concat();
            theta.iter_mut().for_each(|p| *p += 0.05);
            let (n, m) = (2, 2);
            let x = normal_mat(n * (1 + 2 * m), 3, &mut rng);
            let g = normal_mat(x.rows(), 1, &mut rng);
            let forward = |x: &Mat<f64>, theta: &[f64]| {
                let mut trace = MlpJetTrace::default();
                with_params(&template, theta).jet_forward_trace(x, n, &mut trace).clone()
            };
            let mlp = with_params(&template, &theta);
            let mut trace = MlpJetTrace::default();
            mlp.jet_forward_trace(&x, n, &mut trace);
            let (mut grad, mut g_x) = (mlp.zeros_like(), Mat::default());
            mlp.jet_reverse(&x, &mut trace, &g, &mut grad, Some(&mut g_x));
            let in_x = |flat: &[f64]| {
                dot(g.as_slice(), forward(&Mat::from_vec(x.rows(), 3, flat.to_vec()), &theta).as_slice())
            };
            assert_close(g_x.as_slice(), &fd_gradient(in_x, x.as_slice(), 1e-5), 1e-6, "jet input cotangent");
            let in_theta = |p: &[f64]| dot(g.as_slice(), forward(&x, p).as_slice());
            assert_close(
                &grad.params().concat(),
                &fd_gradient(in_theta, &theta, 1e-5),
                1e-6,
                "jet parameter gradient",
            );
        }
    }
}

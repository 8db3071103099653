//! A multilayer perceptron `Linear -> act -> ... -> Linear` with forward, tangent and reverse passes
//! over stacked batches (see [`super::layer`]).

use super::activation::{Activation, ActivationCache};
use super::layer::Layer;
use super::linear::Linear;
use crate::linalg::{Mat, Real};
use rand::Rng;

/// An MLP: affine layers with the same activation after every layer but the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<F> {
    layers: Vec<Linear<F>>,
    activation: Activation,
}

/// The per-pass workspace of an [`Mlp`]: pre- and post-activation values of every layer (primal and
/// tangent rows), activation caches, and cotangent scratch. Allocate once, reuse every step.
#[derive(Clone, Debug, Default)]
pub struct MlpTrace<F> {
    n: usize,
    pre: Vec<Mat<F>>,
    post: Vec<Mat<F>>,
    caches: Vec<ActivationCache<F>>,
    g_pre: Mat<F>,
    g_post: Mat<F>,
}

impl<F: Real> MlpTrace<F> {
    /// The stacked output of the last forward pass (primal rows, then tangent rows).
    pub fn output(&self) -> &Mat<F> {
        self.pre.last().expect("MlpTrace::output before a forward pass")
    }

    /// Number of primal rows of the last forward pass.
    pub fn primal_rows(&self) -> usize {
        self.n
    }
}

impl<F: Real> Mlp<F> {
    /// An MLP with layer sizes `sizes` (`[inputs, hidden..., outputs]`), LeCun-normal weights, zero biases.
    #[track_caller]
    pub fn init<R: Rng + ?Sized>(sizes: &[usize], activation: Activation, rng: &mut R) -> Self {
        assert!(sizes.len() >= 2, "Mlp needs at least input and output sizes");
        let layers = sizes.windows(2).map(|w| Linear::init(w[0], w[1], rng)).collect();
        Self { layers, activation }
    }

    /// An MLP of zeros with the same shapes (the shape of its gradient and optimiser moments).
    pub fn zeros_like(&self) -> Self {
        let layers = self.layers.iter().map(|l| Linear::zeros(l.inputs(), l.outputs())).collect();
        Self { layers, activation: self.activation }
    }

    /// Builds an MLP from its layers.
    pub fn from_layers(layers: Vec<Linear<F>>, activation: Activation) -> Self {
        Self { layers, activation }
    }

    /// The layers.
    pub fn layers(&self) -> &[Linear<F>] {
        &self.layers
    }

    /// The layers, mutably (gradients of the jet and input-gradient passes are written through this).
    pub fn layers_mut(&mut self) -> &mut [Linear<F>] {
        &mut self.layers
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Input dimension.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs()
    }

    /// Output dimension.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, Linear::outputs)
    }

    /// Layer sizes `[inputs, hidden..., outputs]`.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.inputs()).chain(self.layers.iter().map(Linear::outputs)).collect()
    }

    /// All parameters as slices, in a fixed order.
    pub fn params(&self) -> Vec<&[F]> {
        self.layers.iter().flat_map(Linear::params).collect()
    }

    /// All parameters as mutable slices, in the order of [`Mlp::params`].
    pub fn params_mut(&mut self) -> Vec<&mut [F]> {
        self.layers.iter_mut().flat_map(Linear::params_mut).collect()
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> Mlp<G> {
        let layers = self
            .layers
            .iter()
            .map(|l| Linear {
                weight: l.weight.cast(),
                bias: l.bias.iter().map(|b| G::of(b.to_f64().unwrap_or(f64::NAN))).collect(),
            })
            .collect();
        Mlp { layers, activation: self.activation }
    }

    /// Panics unless `x` has one column per network input.
    #[track_caller]
    fn check_input_width(&self, x: &Mat<F>) {
        assert_eq!(
            x.cols(),
            self.inputs(),
            "Mlp: input has {} columns, expected {}",
            x.cols(),
            self.inputs()
        );
    }

    /// Forward pass over a stacked batch `x` (`n` primal rows, then tangent rows), recording what the
    /// reverse pass needs. Returns the stacked output `[y; y_dot]`.
    #[track_caller]
    pub fn forward_trace<'t>(&self, x: &Mat<F>, n: usize, trace: &'t mut MlpTrace<F>) -> &'t Mat<F> {
        self.check_input_width(x);
        assert!(
            n > 0 && x.rows().is_multiple_of(n),
            "Mlp: {} stacked rows are not a multiple of {n}",
            x.rows()
        );
        self.start_trace(n, trace);
        self.layers[0].forward(x, n, &mut trace.pre[0], &mut ());
        self.forward_after_first_layer(trace)
    }

    /// [`Mlp::forward_trace`] at the `n` rows of `x` along the `D` basis directions (the stacked input
    /// `[x; e_0 ..; e_1 ..; ..]`, direction `j` of point `i` at row `n + j n + i`), without building the
    /// one-hot rows: the first layer's tangents are the rows of its weight
    /// ([`Linear::forward_basis_tangents`]). Returns `[y; J e_0; J e_1; ..]`.
    #[track_caller]
    pub fn forward_basis_trace<'t>(&self, x: &Mat<F>, trace: &'t mut MlpTrace<F>) -> &'t Mat<F> {
        self.check_input_width(x);
        assert!(x.rows() > 0, "Mlp: no rows");
        self.start_trace(x.rows(), trace);
        self.layers[0].forward_basis_tangents(x, &mut trace.pre[0]);
        self.forward_after_first_layer(trace)
    }

    /// Sizes `trace` for a pass with `n` primal rows.
    fn start_trace(&self, n: usize, trace: &mut MlpTrace<F>) {
        let depth = self.layers.len();
        trace.n = n;
        trace.pre.resize_with(depth, Mat::default);
        trace.post.resize_with(depth - 1, Mat::default);
        trace.caches.resize_with(depth - 1, ActivationCache::default);
    }

    /// The rest of a forward pass once `trace.pre[0]` holds the first layer's output.
    fn forward_after_first_layer<'t>(&self, trace: &'t mut MlpTrace<F>) -> &'t Mat<F> {
        let (depth, n) = (self.layers.len(), trace.n);
        for l in 0..depth {
            if l > 0 {
                self.layers[l].forward(&trace.post[l - 1], n, &mut trace.pre[l], &mut ());
            }
            if l + 1 < depth {
                self.activation.forward(&trace.pre[l], n, &mut trace.post[l], &mut trace.caches[l]);
            }
        }
        trace.output()
    }

    /// Reverse pass after [`Mlp::forward_trace`] on the same `x`: given the cotangent `g_out` of the
    /// stacked output, ADDS parameter gradients into `grad` and writes the input cotangent into `g_x`.
    #[track_caller]
    pub fn reverse(
        &self,
        x: &Mat<F>,
        trace: &mut MlpTrace<F>,
        g_out: &Mat<F>,
        grad: &mut Mlp<F>,
        g_x: Option<&mut Mat<F>>,
    ) {
        let out = trace.output();
        assert!(g_out.rows() == out.rows() && g_out.cols() == out.cols(), "Mlp::reverse: cotangent shape");
        let n = trace.n;
        let depth = self.layers.len();
        let MlpTrace { pre, post, caches, g_pre, g_post, .. } = trace;
        let mut g_x = g_x;
        for l in (0..depth).rev() {
            let input = if l == 0 { x } else { &post[l - 1] };
            let g_in = if l == depth - 1 { g_out } else { &*g_pre };
            let target = if l > 0 { Some(&mut *g_post) } else { g_x.as_deref_mut() };
            self.layers[l].reverse(input, n, &(), g_in, target, &mut grad.layers[l]);
            if l > 0 {
                self.activation.reverse(&pre[l - 1], n, &caches[l - 1], g_post, Some(g_pre), &mut ());
            }
        }
    }

    /// Forward pass over a stacked batch without keeping a trace; returns `[y; y_dot]`.
    pub fn forward_stacked(&self, x: &Mat<F>, n: usize) -> Mat<F> {
        let mut trace = MlpTrace::default();
        self.forward_trace(x, n, &mut trace);
        trace.pre.pop().unwrap_or_default()
    }

    /// Plain forward pass on every row of `x`.
    pub fn forward(&self, x: &Mat<F>) -> Mat<F> {
        self.forward_stacked(x, x.rows().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_stacked_map, normal_mat, test_rng};

    /// The basis-direction pass equals the general pass on the explicit one-hot stacking `[x; e_j ..]`
    /// bit for bit (`e_j W` is exactly row `j` of `W`: every other product is an exact zero), in f32 and
    /// f64, with a non-zero bias so that a bias wrongly added to the tangent rows would show.
    #[test]
    fn basis_tangent_pass_equals_the_one_hot_pass() {
        fn check<F: Real>(sizes: &[usize], n: usize) {
            let mut rng = test_rng(31);
            let mut mlp = Mlp::<f64>::init(sizes, Activation::Softplus, &mut rng);
            mlp.layers_mut().iter_mut().for_each(|l| l.bias.iter_mut().for_each(|b| *b = 0.25));
            let mlp = mlp.cast::<F>();
            let x = normal_mat(n, sizes[0], &mut rng).cast::<F>();
            let dim = sizes[0];
            let one_hot = Mat::from_fn(n * (dim + 1), dim, |r, c| {
                if r < n {
                    x.at(r, c)
                } else if (r - n) / n == c {
                    F::one()
                } else {
                    F::zero()
                }
            });
            let want = mlp.forward_trace(&one_hot, n, &mut MlpTrace::default()).clone();
            let got = mlp.forward_basis_trace(&x, &mut MlpTrace::default()).clone();
            let bits =
                |m: &Mat<F>| m.as_slice().iter().map(|v| v.to_f64().unwrap().to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{sizes:?}, {n} points");
        }
        for (sizes, n) in [(&[3, 8, 8, 3][..], 5), (&[17, 33, 2][..], 9), (&[64, 128, 128, 64][..], 20)] {
            check::<f64>(sizes, n);
            check::<f32>(sizes, n);
        }
    }

    fn from_flat(template: &Mlp<f64>, theta: &[f64]) -> Mlp<f64> {
        let mut mlp = template.clone();
        crate::nn::copy_from_flat(mlp.params_mut(), theta);
        mlp
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        for act in [Activation::Softplus, Activation::Tanh, Activation::Silu] {
            for (sizes, n, tangents) in
                [(vec![2, 5, 5, 2], 3, 1), (vec![3, 4, 3], 2, 3), (vec![4, 6, 1], 2, 0)]
            {
                let mut rng = test_rng(1);
                let template = Mlp::<f64>::init(&sizes, act, &mut rng);
                let mut theta: Vec<f64> = template.params().concat();
                theta.iter_mut().for_each(|p| *p += 0.1);
                let x = normal_mat(n * (1 + tangents), sizes[0], &mut rng);
                let forward = |x: &Mat<f64>, theta: &[f64]| from_flat(&template, theta).forward_stacked(x, n);
                let reverse = |x: &Mat<f64>, theta: &[f64], g: &Mat<f64>| {
                    let mlp = from_flat(&template, theta);
                    let mut trace = MlpTrace::default();
                    mlp.forward_trace(x, n, &mut trace);
                    let mut grad = mlp.zeros_like();
                    let mut g_x = Mat::default();
                    mlp.reverse(x, &mut trace, g, &mut grad, Some(&mut g_x));
                    (g_x, grad.params().concat())
                };
                check_stacked_map(forward, reverse, &x, n, &theta, 2);
            }
        }
    }

    #[test]
    fn adjoint_identity_links_tangent_and_reverse() {
        // <J u, w> = <u, J^T w>: push u forward as a tangent, pull w back as a cotangent.
        let mut rng = test_rng(4);
        let mlp = Mlp::<f64>::init(&[3, 7, 7, 4], Activation::Softplus, &mut rng);
        let x = normal_mat(5, 3, &mut rng);
        let u = normal_mat(5, 3, &mut rng);
        let w = normal_mat(5, 4, &mut rng);
        let ju = mlp.forward_stacked(&Mat::vstack(&[&x, &u]), 5).slice_rows(5, 10);
        let mut trace = MlpTrace::default();
        mlp.forward_trace(&x, 5, &mut trace);
        let (mut grad, mut jtw) = (mlp.zeros_like(), Mat::default());
        mlp.reverse(&x, &mut trace, &w, &mut grad, Some(&mut jtw));
        let lhs = crate::testing::dot(ju.as_slice(), w.as_slice());
        let rhs = crate::testing::dot(u.as_slice(), jtw.as_slice());
        assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "{lhs} vs {rhs}");
    }
}

//! A multilayer perceptron `Linear -> act -> ... -> Linear`: a constructor of a chain-shaped network
//! graph, with its forward (tangent rows), jet and input-gradient passes and their reverse passes run by
//! the graph's walks (see [`super::graph`]).
//!
//! Layer `l`'s parameters are the graph tensors `{l}.weight` (`inputs x outputs`, `y = x W + b`) and
//! `{l}.bias`, the names the checkpoints store them under.

use super::activation::Activation;
use super::graph::{Graph, GraphBuilder, GraphTrace, InputGradientTrace, Rows, Shape};
use super::jet::stack_jet_input;
use crate::linalg::{Mat, Real};
use rand::Rng;

/// An MLP: affine layers with the same activation after every layer but the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<F> {
    graph: Graph<F>,
    activation: Activation,
}

/// The per-pass workspace of an [`Mlp`] (the graph's stores of values, caches and cotangents), for the
/// tangent and the jet passes alike. Allocate once, reuse every step.
#[derive(Clone, Debug, Default)]
pub struct MlpTrace<F>(GraphTrace<F>);

impl<F: Real> MlpTrace<F> {
    /// The stacked output of the last forward pass (primal rows, then tangent or jet rows).
    pub fn output(&self) -> &Mat<F> {
        self.0.output()
    }

    /// Number of primal rows of the last forward pass.
    pub fn primal_rows(&self) -> usize {
        self.0.primal_rows()
    }

    /// `sum <g_dot, y_dot>` after [`Mlp::forward_trace_contracted`] and [`Mlp::reverse`]: the output
    /// tangents contracted with the tangent rows of the cotangent given to the reverse pass.
    #[track_caller]
    pub fn output_tangent_dot(&self) -> F {
        self.0.output_tangent_dot()
    }
}

impl<F: Real> Mlp<F> {
    /// An MLP with layer sizes `sizes` (`[inputs, hidden..., outputs]`), LeCun-normal weights, zero biases.
    #[track_caller]
    pub fn init<R: Rng + ?Sized>(sizes: &[usize], activation: Activation, rng: &mut R) -> Self {
        assert!(sizes.len() >= 2, "Mlp needs at least input and output sizes");
        let mut builder = GraphBuilder::new(Shape::new(1, 1, sizes[0]), rng);
        let mut h = builder.input();
        for (l, &outputs) in sizes[1..].iter().enumerate() {
            if l > 0 {
                h = builder.act(h, activation);
            }
            h = builder.linear(&l.to_string(), h, outputs);
        }
        Self { graph: builder.finish(), activation }
    }

    /// An MLP of zeros with the same shapes (the shape of its gradient and optimiser moments).
    pub fn zeros_like(&self) -> Self {
        let mut zeros = self.clone();
        zeros.graph.params_mut().iter_mut().for_each(|p| *p = F::zero());
        zeros
    }

    /// Number of affine layers.
    pub fn depth(&self) -> usize {
        self.graph.tensors().len() / 2
    }

    /// Layer `l`'s weight (`inputs x outputs`, row-major) and bias.
    pub fn layer(&self, l: usize) -> (&[F], &[F]) {
        let [weight, bias] = [2 * l, 2 * l + 1].map(|t| self.graph.tensor(t));
        (weight, bias)
    }

    /// Layer `l`'s weight and bias, mutably.
    pub fn layer_mut(&mut self, l: usize) -> (&mut [F], &mut [F]) {
        let tensors = self.graph.tensors();
        let (weight, bias) = (tensors[2 * l].offset, tensors[2 * l + 1].clone());
        let (front, back) =
            self.graph.params_mut()[weight..bias.offset + bias.len()].split_at_mut(bias.offset - weight);
        (front, back)
    }

    /// The parameter tensors by name (`{l}.weight`, `{l}.bias`), with their shapes and values.
    pub fn named_tensors(&self) -> impl Iterator<Item = (&str, &[usize], &[F])> {
        let graph = &self.graph;
        graph
            .tensors()
            .iter()
            .enumerate()
            .map(move |(t, tensor)| (tensor.name.as_str(), &tensor.shape[..], graph.tensor(t)))
    }

    /// Overwrites every parameter tensor with `read(name, shape)` (a checkpoint reader that checks the
    /// shape).
    pub fn read_tensors<E>(
        &mut self,
        mut read: impl FnMut(&str, &[usize]) -> Result<Vec<F>, E>,
    ) -> Result<(), E> {
        let tensors = self.graph.tensors().to_vec();
        for tensor in tensors {
            let values = read(&tensor.name, &tensor.shape)?;
            self.graph.params_mut()[tensor.offset..tensor.offset + tensor.len()].copy_from_slice(&values);
        }
        Ok(())
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Input dimension.
    pub fn inputs(&self) -> usize {
        self.graph.input_shape().len()
    }

    /// Output dimension.
    pub fn outputs(&self) -> usize {
        self.graph.output_shape().len()
    }

    /// Layer sizes `[inputs, hidden..., outputs]`.
    pub fn sizes(&self) -> Vec<usize> {
        let outputs = self.graph.tensors().iter().skip(1).step_by(2).map(|bias| bias.len());
        std::iter::once(self.inputs()).chain(outputs).collect()
    }

    /// All parameters as slices, one per tensor, in a fixed order.
    pub fn params(&self) -> Vec<&[F]> {
        (0..self.graph.tensors().len()).map(|t| self.graph.tensor(t)).collect()
    }

    /// All parameters as mutable slices, in the order of [`Mlp::params`].
    pub fn params_mut(&mut self) -> Vec<&mut [F]> {
        let lengths: Vec<usize> = self.graph.tensors().iter().map(|t| t.len()).collect();
        let mut rest = self.graph.params_mut();
        lengths
            .into_iter()
            .map(|len| {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
                rest = tail;
                head
            })
            .collect()
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.graph.params().len()
    }

    /// Converts the element type.
    pub fn cast<G: Real>(&self) -> Mlp<G> {
        Mlp { graph: self.graph.cast(), activation: self.activation }
    }

    /// Forward pass over a stacked batch `x` (`n` primal rows, then tangent rows), recording what the
    /// reverse pass needs. Returns the stacked output `[y; y_dot]`.
    #[track_caller]
    pub fn forward_trace<'t>(&self, x: &Mat<F>, n: usize, trace: &'t mut MlpTrace<F>) -> &'t Mat<F> {
        let out = self.graph.forward_borrowed(x, n, Rows::Tangents, &[], &mut trace.0);
        out.expect("tangent rows need no jet rule")
    }

    /// [`Mlp::forward_trace`] for a loss that is linear in the output tangents `y_dot`, with a cotangent
    /// `g_dot` free of them (SSM, ESM): returns the `n` primal output rows only, the last layer
    /// `y = h W + b` mapping no tangent rows (one GEMM of its size fewer). [`Mlp::reverse`] with the
    /// whole stacked cotangent `[g; g_dot]` then leaves the loss's linear term
    /// `sum <g_dot, y_dot> = sum <g_dot W^T, h_dot>` in [`MlpTrace::output_tangent_dot`]. (A network
    /// without hidden layers computes `y_dot` all the same and returns the whole stack.)
    #[track_caller]
    pub fn forward_trace_contracted<'t>(
        &self,
        x: &Mat<F>,
        n: usize,
        trace: &'t mut MlpTrace<F>,
    ) -> &'t Mat<F> {
        self.graph.forward_contracted(x, n, &mut trace.0)
    }

    /// [`Mlp::forward_trace`] at the `n` rows of `x` along the `D` basis directions (the stacked input
    /// `[x; e_0 ..; e_1 ..; ..]`, direction `j` of point `i` at row `n + j n + i`), without building the
    /// one-hot rows (see [`Graph::forward_basis`]). Returns `[y; J e_0; J e_1; ..]`.
    #[track_caller]
    pub fn forward_basis_trace<'t>(&self, x: &Mat<F>, trace: &'t mut MlpTrace<F>) -> &'t Mat<F> {
        self.graph.forward_basis(x, &mut trace.0)
    }

    /// Reverse pass after [`Mlp::forward_trace`] or [`Mlp::jet_forward_trace`] on the same `x`: given the
    /// cotangent `g_out` of the stacked output, ADDS parameter gradients into `grad` and writes the input
    /// cotangent into `g_x` when asked.
    #[track_caller]
    pub fn reverse(
        &self,
        x: &Mat<F>,
        trace: &mut MlpTrace<F>,
        g_out: &Mat<F>,
        grad: &mut Mlp<F>,
        g_x: Option<&mut Mat<F>>,
    ) {
        self.graph.reverse_borrowed(x, &mut trace.0, g_out, grad.graph.params_mut(), g_x);
    }

    /// Forward pass over a stacked batch without keeping a trace; returns `[y; y_dot]`.
    pub fn forward_stacked(&self, x: &Mat<F>, n: usize) -> Mat<F> {
        self.forward_trace(x, n, &mut MlpTrace::default()).clone()
    }

    /// Plain forward pass on every row of `x`.
    pub fn forward(&self, x: &Mat<F>) -> Mat<F> {
        self.forward_stacked(x, x.rows().max(1))
    }

    /// Second-order jet forward pass over a stacked jet batch `x` (`n` primal rows, `m n` first-order
    /// rows, `m n` second-order rows; see [`stack_jet_input`]), recording what [`Mlp::reverse`] needs.
    ///
    /// # Definition
    /// With the input jet `[x; v; 0]` the output jet is
    /// $$ \big[f(x);\ \partial_t f(x + t v)|_0;\ \partial_t^2 f(x + t v)|_0\big] = \big[f(x);\ J_f(x) v;\
    ///    (v^\top \nabla^2 f_k(x)\  v)_k\big]. $$
    /// For an energy network `E` these are `E`, `-v^T s` and `-v^T (grad s) v` with `s = -grad E`.
    #[track_caller]
    pub fn jet_forward_trace<'t>(&self, x: &Mat<F>, n: usize, trace: &'t mut MlpTrace<F>) -> &'t Mat<F> {
        let out = self.graph.forward_borrowed(x, n, Rows::Jet, &[], &mut trace.0);
        out.expect("dense layers and activations have jet rules")
    }

    /// The output jet of the lines `t -> x_i + t v_{tau i}` without keeping a trace (see
    /// [`Mlp::jet_forward_trace`]); `directions` holds `m` blocks of `n` rows.
    pub fn jet_forward(&self, x: &Mat<F>, directions: &Mat<F>) -> Mat<F> {
        let mut input = Mat::default();
        stack_jet_input(x, directions, &mut input);
        self.jet_forward_trace(&input, x.rows(), &mut MlpTrace::default()).clone()
    }

    /// `E(x)` and `grad_x E(x)` at every row of `x` for a network with one output, recording what
    /// [`Mlp::input_gradient_reverse`] needs (see [`InputGradientTrace`]: `2L` GEMMs for `L` layers).
    #[track_caller]
    pub fn input_gradient_trace<'t>(
        &self,
        x: &Mat<F>,
        trace: &'t mut InputGradientTrace<F>,
    ) -> (&'t Mat<F>, &'t Mat<F>) {
        match self.graph.input_gradient_trace(x, &[], trace) {
            Ok(pair) => pair,
            Err(err) => panic!("{err}"),
        }
    }

    /// Reverse pass after [`Mlp::input_gradient_trace`] on the same `x`: given cotangents `g_value` of `E` (`n x 1`, or
    /// none) and `g_gradient` of `grad_x E` (`n x D`), ADDS the parameter gradient of
    /// `<g_value, E> + <g_gradient, grad_x E>` into `grad` (`4L` GEMMs).
    #[track_caller]
    pub fn input_gradient_reverse(
        &self,
        x: &Mat<F>,
        trace: &mut InputGradientTrace<F>,
        g_value: Option<&Mat<F>>,
        g_gradient: &Mat<F>,
        grad: &mut Mlp<F>,
    ) {
        self.graph.input_gradient_reverse(x, trace, g_value, g_gradient, grad.graph.params_mut());
    }

    /// `grad_x E` at every row of `x` for a network with one output.
    pub fn input_gradient(&self, x: &Mat<F>) -> Mat<F> {
        let mut trace = InputGradientTrace::default();
        self.input_gradient_trace(x, &mut trace).1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        assert_close, check_stacked_map, dot, fd_gradient, normal_mat, one_hot_stack, test_rng,
    };

    /// The basis-direction pass equals the general pass on the explicit one-hot stacking `[x; e_j ..]`
    /// bit for bit (`e_j W` is exactly row `j` of `W`: every other product is an exact zero), in f32 and
    /// f64, with a non-zero bias so that a bias wrongly added to the tangent rows would show.
    #[test]
    fn basis_tangent_pass_equals_the_one_hot_pass() {
        fn check<F: Real>(sizes: &[usize], n: usize) {
            let mut rng = test_rng(31);
            let mut mlp = Mlp::<f64>::init(sizes, Activation::Softplus, &mut rng);
            (0..mlp.depth()).for_each(|l| mlp.layer_mut(l).1.iter_mut().for_each(|b| *b = 0.25));
            let mlp = mlp.cast::<F>();
            let x = normal_mat(n, sizes[0], &mut rng).cast::<F>();
            let one_hot = one_hot_stack(&x);
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

    fn with_params(template: &Mlp<f64>, theta: &[f64]) -> Mlp<f64> {
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
                let forward =
                    |x: &Mat<f64>, theta: &[f64]| with_params(&template, theta).forward_stacked(x, n);
                let reverse = |x: &Mat<f64>, theta: &[f64], g: &Mat<f64>| {
                    let mlp = with_params(&template, theta);
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

    /// The contracted pass returns the primal rows of the full pass, its reverse leaves the same
    /// parameter gradient and input cotangent bit for bit (the reverse never reads the output
    /// tangents), and its output-tangent dot is `sum <g_dot, y_dot>` of the full pass; a network without
    /// hidden layers (which cannot skip `y_dot`) contracts the same way.
    #[test]
    fn contracted_pass_equals_the_full_pass_and_its_tangent_dot() {
        for (sizes, n, tangents) in [(vec![3, 7, 7, 4], 5, 2), (vec![4, 6, 4], 3, 1), (vec![3, 2], 4, 2)] {
            let mut rng = test_rng(5);
            let mlp = Mlp::<f64>::init(&sizes, Activation::Softplus, &mut rng);
            let x = normal_mat(n * (1 + tangents), sizes[0], &mut rng);
            let g = normal_mat(x.rows(), *sizes.last().unwrap(), &mut rng);
            let mut full = MlpTrace::default();
            let y = mlp.forward_trace(&x, n, &mut full).clone();
            let (mut grad_full, mut g_x_full) = (mlp.zeros_like(), Mat::default());
            mlp.reverse(&x, &mut full, &g, &mut grad_full, Some(&mut g_x_full));
            let mut contracted = MlpTrace::default();
            let primal = mlp.forward_trace_contracted(&x, n, &mut contracted).slice_rows(0, n);
            assert_eq!(primal, y.slice_rows(0, n), "{sizes:?}: primal rows");
            let (mut grad, mut g_x) = (mlp.zeros_like(), Mat::default());
            mlp.reverse(&x, &mut contracted, &g, &mut grad, Some(&mut g_x));
            assert_eq!((grad.params(), &g_x), (grad_full.params(), &g_x_full), "{sizes:?}: reverse");
            let tail = |m: &Mat<f64>| m.slice_rows(n, m.rows()).into_vec();
            let want = dot(&tail(&y), &tail(&g));
            let got = contracted.output_tangent_dot();
            assert!((got - want).abs() < 1e-12 * (1.0 + want.abs()), "{sizes:?}: {got} vs {want}");
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
                let mut trace = MlpTrace::default();
                with_params(&template, theta).jet_forward_trace(x, n, &mut trace).clone()
            };
            let mlp = with_params(&template, &theta);
            let mut trace = MlpTrace::default();
            mlp.jet_forward_trace(&x, n, &mut trace);
            let (mut grad, mut g_x) = (mlp.zeros_like(), Mat::default());
            mlp.reverse(&x, &mut trace, &g, &mut grad, Some(&mut g_x));
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
            let mut mlp_trace = MlpTrace::default();
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

//! The input gradient `grad_x E` of a graph with one output (an energy network) as a forward
//! computation, and its reverse in the parameters: every op gives the map of its backward step and the
//! second-order adjoint of that map, and one generic walk chains them (docs/math.md §7.2 and §8.6).
//!
//! # Definition
//! The forward walk computes the values `v_k = op_k(v_inputs, theta_k)`, `E = v_out`. The backward
//! chain, run as a second pass without parameter gradients, computes `delta_k = dE/dv_k` from
//! `delta_out = 1` in reverse order: `delta_j = sum_{k: j in inputs(k)} B_kj(delta_k)` with
//! `B_kj = (d op_k / d v_j)^T`; `grad_x E = delta_0`.
//!
//! The reverse of `<g_E, E> + <g_grad, grad_x E>` walks the backward chain backwards, that is forward
//! in topological order, from `delta_bar_0 = g_grad`: node `k` sets
//! `delta_bar_k = sum_j B_kj^T(delta_bar_j)` (the op's Jacobian pushing its inputs' `delta_bar` forward, a
//! tangent map without bias), adds the parameter term `d/d theta_k <delta_bar_j, B_kj(delta_k)>`, and the
//! curvature term `v_bar_j += d/dv_j <delta_bar_j, B_kj(delta_k)>` (non-zero for nonlinear ops only).
//! Then the ordinary reverse walk of the forward pass, seeded with `v_bar_out = g_E` and the `v_bar_j`
//! above, adds the rest of the parameter gradient.
//!
//! Per op: dense `B(delta) = delta W^T`, `delta_bar_k = delta_bar_j W`, `W_bar += delta_bar_j^T delta_k`;
//! activation `B(delta) = f'(a) delta`, `delta_bar_k = f'(a) delta_bar_j`,
//! `a_bar += f''(a) delta_k delta_bar_j`; sum `B_a = B_b = id`, `delta_bar_k = delta_bar_a +
//! delta_bar_b`; concatenation splits and joins channels.
//!
//! # Cost
//! For a chain of `L` dense layers: `L` GEMMs for the values, `L` for the backward chain; the reverse
//! `2L` for the adjoint chain and `2L` for the ordinary reverse, independently of the dimension `D`.

use super::cotangent::{input_cotangents, put, put_values, InputCotangent};
use super::error::GraphError;
use super::network::{Graph, GraphTrace};
use super::op::{NodeCache, Op};
use super::rows::Rows;
use super::skip::add_forward;
use crate::linalg::{Mat, Real};

/// The workspace of [`Graph::input_gradient_trace`]: the forward trace, the backward chain's `delta`
/// per node and the adjoint chain's `delta_bar`. Allocate once, reuse every step.
#[derive(Clone, Debug, Default)]
pub struct InputGradientTrace<F> {
    forward: GraphTrace<F>,
    /// `delta_k = dE/dv_k`, shaped like the values.
    deltas: Vec<Mat<F>>,
    /// Whether `deltas[k]` has been written in the current backward chain.
    written: Vec<bool>,
    /// `delta_bar_k`, the cotangent of `delta_k`.
    delta_bars: Vec<Mat<F>>,
}

impl<F: Real> InputGradientTrace<F> {
    /// The network outputs `E(x)` (`n x 1`) of the last pass.
    pub fn value(&self) -> &Mat<F> {
        self.forward.output()
    }

    /// The input gradients `grad_x E(x)` (`n x D`) of the last pass.
    pub fn gradient(&self) -> &Mat<F> {
        self.deltas.first().expect("InputGradientTrace::gradient before a forward pass")
    }
}

impl Op {
    /// Whether the op has the backward step and its second-order adjoint that the input gradient needs.
    fn has_gradient_adjoint(&self) -> bool {
        matches!(self, Op::Linear(_) | Op::Act(_) | Op::Add | Op::Concat(_))
    }

    /// The backward step: `delta_j (+)= B_kj(delta_k)` for each input `j` (assigned when fresh), no
    /// parameter gradient.
    fn backward<F: Real>(
        &self,
        params: &[F],
        cache: &NodeCache<F>,
        delta: &Mat<F>,
        targets: [Option<InputCotangent<'_, F>>; 2],
    ) {
        let [a, b] = targets;
        match self {
            Op::Linear(dense) => {
                if let Some(InputCotangent { g, fresh }) = a {
                    dense.input_cotangent(&params[..dense.weight_len()], delta, g, fresh);
                }
            }
            Op::Act(_) => {
                if let Some(InputCotangent { g, fresh }) = a {
                    let d1 = cache.activation.first();
                    put_values(
                        fresh,
                        g.as_mut_slice(),
                        d1.iter().zip(delta.as_slice()).map(|(f1, d)| *f1 * *d),
                    );
                }
            }
            Op::Add => {
                a.into_iter().chain(b).for_each(|g| put(g.fresh, g.g.as_mut_slice(), delta.as_slice(), |v| v))
            }
            Op::Concat(concat) => concat.reverse(delta, a, b),
            _ => unreachable!("checked by has_gradient_adjoint"),
        }
    }

    /// The second-order adjoint of [`Op::backward`]: assigns `delta_bar_k = sum_j B_kj^T(delta_bar_j)`,
    /// adds `d/d theta <delta_bar_j, B_kj(delta_k)>` to `grad` and the curvature term
    /// `d/dv_j <delta_bar_j, B_kj(delta_k)>` to `value_bar` (the cotangent of the first input's value,
    /// assigned when fresh).
    #[allow(clippy::too_many_arguments)]
    fn backward_adjoint<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        cache: &NodeCache<F>,
        delta: &Mat<F>,
        input_bars: &[&Mat<F>],
        delta_bar: &mut Mat<F>,
        value_bar: InputCotangent<'_, F>,
    ) {
        match self {
            Op::Linear(dense) => {
                dense.product(&params[..dense.weight_len()], input_bars[0], delta_bar);
                dense.weight_gradient(input_bars[0], delta, &mut grad[..dense.weight_len()]);
            }
            Op::Act(_) => {
                let (d1, d2) = (cache.activation.first(), cache.activation.second());
                delta_bar.resize(delta.rows(), delta.cols());
                let bar_in = input_bars[0].as_slice();
                delta_bar
                    .as_mut_slice()
                    .iter_mut()
                    .zip(d1.iter().zip(bar_in))
                    .for_each(|(t, (f1, b))| *t = *f1 * *b);
                let curvature = d2.iter().zip(delta.as_slice()).zip(bar_in);
                let InputCotangent { g, fresh } = value_bar;
                put_values(fresh, g.as_mut_slice(), curvature.map(|((f2, d), b)| *f2 * *d * *b));
            }
            Op::Add => add_forward(input_bars[0], input_bars[1], delta_bar),
            Op::Concat(concat) => concat.forward(input_bars[0], input_bars[1], delta_bar),
            _ => unreachable!("checked by has_gradient_adjoint"),
        }
    }
}

impl<F: Real> Graph<F> {
    /// `E(x)` and `grad_x E(x)` at every row of `x` (one `log_sigma` per row) for a graph with one
    /// output, recording what [`Graph::input_gradient_reverse`] needs. Refuses a graph with more outputs
    /// or with an op that has no second-order adjoint (convolution, group norm, pooling, upsampling,
    /// embedding).
    #[track_caller]
    pub fn input_gradient_trace<'t>(
        &self,
        x: &Mat<F>,
        log_sigma: &[F],
        trace: &'t mut InputGradientTrace<F>,
    ) -> Result<(&'t Mat<F>, &'t Mat<F>), GraphError> {
        let outputs = self.output_shape().len();
        if outputs != 1 {
            return Err(GraphError::NotScalar { outputs });
        }
        if let Some(node) = self.nodes.iter().skip(1).position(|node| !node.op.has_gradient_adjoint()) {
            return Err(GraphError::NoGradientAdjoint { node: node + 1 });
        }
        let InputGradientTrace { forward, deltas, written, .. } = trace;
        self.walk(x, x.rows(), Rows::Tangents, true, log_sigma, forward, false);
        deltas.resize_with(self.nodes.len(), Mat::default);
        deltas[0].resize(x.rows(), x.cols());
        for (d, v) in deltas.iter_mut().zip(&forward.values).skip(1) {
            d.resize(v.rows(), v.cols());
        }
        written.clear();
        written.resize(self.nodes.len(), false);
        deltas.last_mut().expect("a graph has nodes").as_mut_slice().iter_mut().for_each(|d| *d = F::one());
        for (k, node) in self.nodes.iter().enumerate().skip(1).rev() {
            let (lower, upper) = deltas.split_at_mut(k);
            let targets = input_cotangents(&node.inputs, lower, written, true);
            node.op.backward(&self.params[node.params.clone()], &forward.caches[k], &upper[0], targets);
        }
        if !written[0] {
            deltas[0].fill_zero();
        }
        Ok((forward.output(), &deltas[0]))
    }

    /// Reverse pass after [`Graph::input_gradient_trace`] on the same `x`: given cotangents `g_value` of `E` (`n x 1`, or
    /// none) and `g_gradient` of `grad_x E` (`n x D`), ADDS the parameter gradient of
    /// `<g_value, E> + <g_gradient, grad_x E>` into `grad` (laid out like [`Graph::params`]).
    #[track_caller]
    pub fn input_gradient_reverse(
        &self,
        x: &Mat<F>,
        trace: &mut InputGradientTrace<F>,
        g_value: Option<&Mat<F>>,
        g_gradient: &Mat<F>,
        grad: &mut [F],
    ) {
        let InputGradientTrace { forward, deltas, delta_bars, .. } = trace;
        assert!(
            deltas.len() == self.nodes.len() && forward.values.len() == self.nodes.len(),
            "input_gradient_reverse before its forward pass"
        );
        assert!(
            g_gradient.rows() == deltas[0].rows() && g_gradient.cols() == deltas[0].cols(),
            "input_gradient_reverse: gradient cotangent is {}x{}, expected {}x{}",
            g_gradient.rows(),
            g_gradient.cols(),
            deltas[0].rows(),
            deltas[0].cols()
        );
        assert_eq!(grad.len(), self.params.len(), "input_gradient_reverse: gradient length");
        assert!(x.rows() == deltas[0].rows(), "input_gradient_reverse: not the input of the forward pass");
        // The input's cotangent is not wanted: an activation of the input writes its curvature term
        // into an empty buffer.
        self.start_reverse(x, forward, false, false);
        delta_bars.resize_with(self.nodes.len(), Mat::default);
        delta_bars[0].clone_from(g_gradient);
        for (k, node) in self.nodes.iter().enumerate().skip(1) {
            let (lower, upper) = delta_bars.split_at_mut(k);
            let input_bars: Vec<&Mat<F>> = node.inputs.iter().map(|&j| &lower[j]).collect();
            let first = node.inputs[0];
            let value_bar =
                InputCotangent { g: &mut forward.cotangents[first], fresh: !forward.written[first] };
            // Only an activation writes the curvature term of its input's value.
            if matches!(node.op, Op::Act(_)) {
                forward.written[first] = true;
            }
            let range = node.params.clone();
            node.op.backward_adjoint(
                &self.params[range.clone()],
                &mut grad[range],
                &forward.caches[k],
                &deltas[k],
                &input_bars,
                &mut upper[0],
                value_bar,
            );
        }
        let last = self.nodes.len() - 1;
        let out = &mut forward.cotangents[last];
        match g_value {
            Some(g) => {
                assert!(
                    g.rows() == out.rows() && g.cols() == 1,
                    "input_gradient_reverse: value cotangent shape"
                );
                put(!forward.written[last], out.as_mut_slice(), g.as_slice(), |v| v);
            }
            None if !forward.written[last] => out.fill_zero(),
            None => {}
        }
        forward.written[last] = true;
        self.reverse_walk(x, None, forward, grad, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::GraphBuilder;
    use crate::nn::graph::Shape;
    use crate::nn::Activation;
    use crate::testing::{assert_close, dot, fd_gradient, normal_mat, test_rng};

    /// A scalar network with every op that has the adjoint: dense layers, three activations, a skip
    /// (an activation's output feeds a dense layer and a concatenation, another's a dense layer and a
    /// sum) and a concatenation.
    fn energy_graph() -> Graph<f64> {
        let mut rng = test_rng(61);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(1, 1, 3), &mut rng);
        let x = b.input();
        let h = b.linear("0", x, 5);
        let a = b.act(h, Activation::Softplus);
        let h = b.linear("1", a, 4);
        let t = b.act(h, Activation::Tanh);
        let wide = b.concat(t, a).expect("same pixels");
        let h = b.linear("2", wide, 4);
        let s = b.act(h, Activation::Silu);
        let sum = b.add(s, t).expect("equal shapes");
        b.linear("3", sum, 1);
        b.finish()
    }

    #[test]
    fn input_gradient_matches_finite_differences_and_its_reverse_the_parameter_gradient() {
        let template = energy_graph();
        let mut rng = test_rng(62);
        let theta: Vec<f64> =
            template.params().iter().map(|p| p + 0.3 * normal_mat(1, 1, &mut rng).at(0, 0)).collect();
        let with_params = |p: &[f64]| {
            let mut g = template.clone();
            g.params_mut().copy_from_slice(p);
            g
        };
        let graph = with_params(&theta);
        let n = 3;
        let log_sigma = vec![0.0; n];
        let x = normal_mat(n, 3, &mut rng);
        let plain = |x: &Mat<f64>| graph.forward(x, n, &log_sigma, &mut GraphTrace::default()).clone();
        let mut trace = InputGradientTrace::default();
        let (value, gradient) = graph.input_gradient_trace(&x, &log_sigma, &mut trace).expect("adjoints");
        assert_close(value.as_slice(), plain(&x).as_slice(), 1e-12, "energy value");
        // The gradient equals finite differences of the forward pass...
        let energy_sum = |flat: &[f64]| plain(&Mat::from_vec(n, 3, flat.to_vec())).as_slice().iter().sum();
        assert_close(gradient.as_slice(), &fd_gradient(energy_sum, x.as_slice(), 1e-6), 1e-7, "grad_x E");
        // ...and the ordinary reverse pass seeded with ones.
        let mut forward = GraphTrace::default();
        graph.forward(&x, n, &log_sigma, &mut forward);
        let (mut unused, mut g_x) = (vec![0.0; theta.len()], Mat::default());
        graph.reverse(&mut forward, &Mat::from_fn(n, 1, |_, _| 1.0), &mut unused, Some(&mut g_x));
        assert_close(gradient.as_slice(), g_x.as_slice(), 1e-12, "grad_x E vs reverse pass");
        // Parameter gradient of <g_e, E> + <g_g, grad_x E>, with and without the value cotangent, on a
        // reused trace.
        let g_e = normal_mat(n, 1, &mut rng);
        let g_g = normal_mat(n, 3, &mut rng);
        for with_value in [true, false, true] {
            let mut grad = vec![0.0; theta.len()];
            graph.input_gradient_trace(&x, &log_sigma, &mut trace).expect("adjoints");
            graph.input_gradient_reverse(&x, &mut trace, with_value.then_some(&g_e), &g_g, &mut grad);
            let objective = |p: &[f64]| {
                let mut t = InputGradientTrace::default();
                let (e, g) = with_params(p).input_gradient_trace(&x, &log_sigma, &mut t).expect("adjoints");
                let value_term = if with_value { dot(g_e.as_slice(), e.as_slice()) } else { 0.0 };
                value_term + dot(g_g.as_slice(), g.as_slice())
            };
            let what = format!("parameter gradient (value cotangent: {with_value})");
            assert_close(&grad, &fd_gradient(objective, &theta, 1e-6), 1e-6, &what);
        }
    }

    #[test]
    fn graphs_without_the_adjoint_or_with_several_outputs_are_refused() {
        let mut rng = test_rng(63);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(2, 2, 1), &mut rng);
        let x = b.input();
        let c = b.conv2d("conv", x, 2, 3, 1).expect("valid conv");
        b.linear("out", c, 1);
        let x4 = Mat::zeros(2, 4);
        let err =
            b.finish().input_gradient_trace(&x4, &[0.0; 2], &mut InputGradientTrace::default()).map(|_| ());
        assert_eq!(
            err.expect_err("a convolution").to_string(),
            "input gradient: node 1 has no second-order adjoint (expected dense, activation, sum or \
             concatenation ops)"
        );
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(1, 1, 4), &mut rng);
        let x = b.input();
        b.linear("out", x, 2);
        let err =
            b.finish().input_gradient_trace(&x4, &[0.0; 2], &mut InputGradientTrace::default()).map(|_| ());
        assert_eq!(
            err.expect_err("two outputs").to_string(),
            "input gradient: the network has 2 outputs, expected 1"
        );
    }
}

//! A network as a graph of ops in topological order, with its parameters in one flat vector named by
//! path (`down.0.0.conv1.weight`), and the per-pass stores of values, caches and cotangents.
//!
//! Forward walks the nodes in order; reverse walks them backwards and every op ADDS to the cotangents
//! of its inputs, so a node that feeds several ops (a skip connection) receives the sum of their
//! cotangents. Parameter gradients are added to a flat vector laid out like the parameters.

use super::conv2d::Conv2d;
use super::cotangent::InputCotangent;
use super::error::GraphError;
use super::group_norm::GroupNorm;
use super::noise_embedding::NoiseEmbedding;
use super::op::{NodeCache, Op};
use super::resample::{AvgPool, Upsample};
use super::shape::Shape;
use super::skip::Concat;
use crate::linalg::{Mat, Real};
use crate::nn::Activation;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::ops::Range;

/// A node of a graph under construction (its index in topological order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeId(usize);

/// A named parameter tensor: `shape` values at `offset` in the flat parameter vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamTensor {
    /// Path of the tensor, for example `down.0.0.conv1.weight`.
    pub name: String,
    /// Start in the flat parameter vector.
    pub offset: usize,
    /// Dimensions (row-major).
    pub shape: Vec<usize>,
}

impl ParamTensor {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Node {
    op: Op,
    inputs: Vec<usize>,
    shape: Shape,
    params: Range<usize>,
}

/// A network graph: nodes in topological order (node 0 the input, the last node the output).
#[derive(Clone, Debug, PartialEq)]
pub struct Graph<F> {
    nodes: Vec<Node>,
    params: Vec<F>,
    tensors: Vec<ParamTensor>,
}

/// The per-pass stores of a [`Graph`]: every node's stacked value, cache and cotangent. Allocate once,
/// reuse every step.
#[derive(Clone, Debug, Default)]
pub struct GraphTrace<F> {
    n: usize,
    values: Vec<Mat<F>>,
    caches: Vec<NodeCache<F>>,
    cotangents: Vec<Mat<F>>,
    /// Whether each node's cotangent has been written in the current reverse pass.
    written: Vec<bool>,
    /// The ops' workspace (the largest [`Op::workspace_len`]), never shrunk.
    workspace: Vec<F>,
    scratch: Mat<F>,
}

impl<F: Real> GraphTrace<F> {
    /// The stacked output of the last forward pass (primal rows, then tangent rows).
    pub fn output(&self) -> &Mat<F> {
        self.values.last().expect("GraphTrace::output before a forward pass")
    }
}

impl<F: Real> Graph<F> {
    /// Shape of one input image.
    pub fn input_shape(&self) -> Shape {
        self.nodes[0].shape
    }

    /// Shape of one output image.
    pub fn output_shape(&self) -> Shape {
        self.nodes.last().expect("a graph has an input node").shape
    }

    /// The flat parameter vector.
    pub fn params(&self) -> &[F] {
        &self.params
    }

    /// The flat parameter vector, mutably.
    pub fn params_mut(&mut self) -> &mut [F] {
        &mut self.params
    }

    /// Converts the element type (f32 for training, f64 for checks).
    pub fn cast<G: Real>(&self) -> Graph<G> {
        let params = self.params.iter().map(|p| G::of(p.to_f64().unwrap_or(f64::NAN))).collect();
        Graph { nodes: self.nodes.clone(), params, tensors: self.tensors.clone() }
    }

    /// The named tensors that tile the flat parameter vector, in order.
    pub fn tensors(&self) -> &[ParamTensor] {
        &self.tensors
    }

    /// Grows `workspace` to what the ops need for `rows` stacked rows (it never shrinks, so after the
    /// first pass it is neither reallocated nor zeroed).
    fn reserve_workspace(&self, rows: usize, workspace: &mut Vec<F>) {
        let need = self.nodes.iter().map(|node| node.op.workspace_len(rows)).max().unwrap_or(0);
        if workspace.len() < need {
            workspace.resize(need, F::zero());
        }
    }

    /// Forward pass over a stacked batch `x` (`n` primal rows, then tangent rows; a row is one input
    /// image) with one `log_sigma` per primal row. Returns the stacked output.
    #[track_caller]
    pub fn forward<'t>(
        &self,
        x: &Mat<F>,
        n: usize,
        log_sigma: &[F],
        trace: &'t mut GraphTrace<F>,
    ) -> &'t Mat<F> {
        let width = self.input_shape().len();
        assert_eq!(x.cols(), width, "Graph: input has {} columns, expected {width}", x.cols());
        assert!(
            n > 0 && x.rows().is_multiple_of(n),
            "Graph: {} stacked rows are not a multiple of {n}",
            x.rows()
        );
        assert_eq!(log_sigma.len(), n, "Graph: {} noise levels for {n} points", log_sigma.len());
        trace.n = n;
        trace.values.resize_with(self.nodes.len(), Mat::default);
        trace.caches.resize_with(self.nodes.len(), NodeCache::default);
        trace.values[0].clone_from(x);
        self.reserve_workspace(x.rows(), &mut trace.workspace);
        for (k, node) in self.nodes.iter().enumerate().skip(1) {
            let (done, rest) = trace.values.split_at_mut(k);
            let inputs: Vec<&Mat<F>> = node.inputs.iter().map(|&j| &done[j]).collect();
            let params = &self.params[node.params.clone()];
            let (y, cache) = (&mut rest[0], &mut trace.caches[k]);
            node.op.forward(params, &inputs, n, log_sigma, y, cache, &mut trace.workspace);
        }
        trace.output()
    }

    /// Reverse pass after [`Graph::forward`]: given the cotangent `g_out` of the stacked output, adds
    /// the parameter gradient to `grad` (laid out like [`Graph::params`]) and, when asked, writes the
    /// cotangent of the stacked input to `g_x`.
    #[track_caller]
    pub fn reverse(
        &self,
        trace: &mut GraphTrace<F>,
        g_out: &Mat<F>,
        grad: &mut [F],
        g_x: Option<&mut Mat<F>>,
    ) {
        assert_eq!(
            grad.len(),
            self.params.len(),
            "Graph: gradient of {} values, expected {}",
            grad.len(),
            self.params.len()
        );
        let GraphTrace { n, values, caches, cotangents, written, workspace, scratch } = trace;
        assert!(
            values.len() == self.nodes.len()
                && values.last().is_some_and(|y| y.rows() == g_out.rows() && y.cols() == g_out.cols()),
            "Graph::reverse: cotangent does not match the last forward pass"
        );
        let input_wanted = g_x.is_some();
        // Buffers keep their size across steps, so after the first step none is resized or zeroed: each
        // input cotangent is assigned by its first writer (`cotangent.rs`).
        cotangents.resize_with(self.nodes.len(), Mat::default);
        for (g, y) in cotangents.iter_mut().zip(values.iter()) {
            g.resize(y.rows(), y.cols());
        }
        written.clear();
        written.resize(self.nodes.len(), false);
        self.reserve_workspace(g_out.rows(), workspace);
        cotangents.last_mut().expect("a graph has nodes").clone_from(g_out);
        for (k, node) in self.nodes.iter().enumerate().skip(1).rev() {
            let (lower, upper) = cotangents.split_at_mut(k);
            let mut g_inputs = [None, None];
            for (j, g) in lower.iter_mut().enumerate() {
                if let Some(slot) = node.inputs.iter().position(|&i| i == j) {
                    if j > 0 || input_wanted {
                        g_inputs[slot] = Some(InputCotangent { g, fresh: !written[j] });
                        written[j] = true;
                    }
                }
            }
            let inputs: Vec<&Mat<F>> = node.inputs.iter().map(|&j| &values[j]).collect();
            let range = node.params.clone();
            node.op.reverse(
                &self.params[range.clone()],
                &mut grad[range],
                &inputs,
                *n,
                &caches[k],
                &upper[0],
                g_inputs,
                workspace,
                scratch,
            );
        }
        if let Some(g_x) = g_x {
            if !written[0] {
                cotangents[0].fill_zero();
            }
            std::mem::swap(g_x, &mut cotangents[0]);
        }
    }
}

/// Builds a [`Graph`] node by node, initialising parameters as it goes: convolution and embedding
/// weights LeCun-normal (`N(0, 1 / fan_in)`), biases and shifts 0, norm scales 1.
pub struct GraphBuilder<'r, F, R: ?Sized> {
    graph: Graph<F>,
    rng: &'r mut R,
}

impl<'r, F: Real, R: Rng + ?Sized> GraphBuilder<'r, F, R> {
    /// A graph whose input is one `input`-shaped image per row.
    pub fn new(input: Shape, rng: &'r mut R) -> Self {
        let node = Node { op: Op::Input, inputs: Vec::new(), shape: input, params: 0..0 };
        Self { graph: Graph { nodes: vec![node], params: Vec::new(), tensors: Vec::new() }, rng }
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        NodeId(0)
    }

    /// Shape of a node's output image.
    pub fn shape(&self, node: NodeId) -> Shape {
        self.graph.nodes[node.0].shape
    }

    /// Appends a node whose parameters are the given named tensors, in order.
    fn push(
        &mut self,
        op: Op,
        inputs: &[NodeId],
        shape: Shape,
        tensors: Vec<(String, Vec<usize>, Vec<F>)>,
    ) -> NodeId {
        let start = self.graph.params.len();
        for (name, dims, values) in tensors {
            self.graph.tensors.push(ParamTensor { name, offset: self.graph.params.len(), shape: dims });
            self.graph.params.extend(values);
        }
        debug_assert_eq!(self.graph.params.len() - start, op.param_len());
        let params = start..self.graph.params.len();
        self.graph.nodes.push(Node { op, inputs: inputs.iter().map(|i| i.0).collect(), shape, params });
        NodeId(self.graph.nodes.len() - 1)
    }

    /// `len` draws from `N(0, 1 / fan_in)`.
    fn lecun(&mut self, len: usize, fan_in: usize) -> Vec<F> {
        let scale = 1.0 / (fan_in as f64).sqrt();
        (0..len)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut *self.rng);
                F::of(scale * z)
            })
            .collect()
    }

    /// A `kernel x kernel` convolution with `stride` to `outputs` channels (`name.weight`, `name.bias`).
    pub fn conv2d(
        &mut self,
        name: &str,
        x: NodeId,
        outputs: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId, GraphError> {
        if kernel.is_multiple_of(2) || stride == 0 {
            return Err(GraphError::Kernel { name: name.to_string(), kernel, stride });
        }
        let conv = Conv2d { kernel, stride, input: self.shape(x), outputs };
        let weight = self.lecun(conv.weight_len(), conv.patch());
        let tensors = vec![
            (format!("{name}.weight"), vec![conv.patch(), outputs], weight),
            (format!("{name}.bias"), vec![outputs], vec![F::zero(); outputs]),
        ];
        Ok(self.push(Op::Conv2d(conv), &[x], conv.output(), tensors))
    }

    /// Group norm over `groups` channel groups (`name.weight` = scale, `name.bias` = shift).
    pub fn group_norm(&mut self, name: &str, x: NodeId, groups: usize) -> Result<NodeId, GraphError> {
        let shape = self.shape(x);
        if groups == 0 || !shape.channels.is_multiple_of(groups) {
            return Err(GraphError::Groups { name: name.to_string(), channels: shape.channels, groups });
        }
        let c = shape.channels;
        let tensors = vec![
            (format!("{name}.weight"), vec![c], vec![F::one(); c]),
            (format!("{name}.bias"), vec![c], vec![F::zero(); c]),
        ];
        Ok(self.push(Op::GroupNorm(GroupNorm { shape, groups }), &[x], shape, tensors))
    }

    /// A pointwise activation.
    pub fn act(&mut self, x: NodeId, activation: Activation) -> NodeId {
        self.push(Op::Act(activation), &[x], self.shape(x), Vec::new())
    }

    /// 2x2 average pooling (even sides only).
    pub fn avg_pool(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        let shape = self.shape(x);
        if shape.height % 2 == 1 || shape.width % 2 == 1 {
            return Err(GraphError::OddSide { shape });
        }
        let pool = AvgPool { input: shape };
        Ok(self.push(Op::AvgPool(pool), &[x], pool.output(), Vec::new()))
    }

    /// 2x nearest upsampling.
    pub fn upsample(&mut self, x: NodeId) -> NodeId {
        let up = Upsample { input: self.shape(x) };
        self.push(Op::Upsample(up), &[x], up.output(), Vec::new())
    }

    /// Checks that a two-input op gets two different nodes.
    fn distinct(op: &'static str, a: NodeId, b: NodeId) -> Result<(), GraphError> {
        if a == b {
            return Err(GraphError::SameInput { op, node: a.0 });
        }
        Ok(())
    }

    /// `a + b` (equal shapes).
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        Self::distinct("add", a, b)?;
        let (left, right) = (self.shape(a), self.shape(b));
        if left != right {
            return Err(GraphError::Mismatch { op: "add", left, right });
        }
        Ok(self.push(Op::Add, &[a, b], left, Vec::new()))
    }

    /// The channels of `a`, then those of `b` (equal height and width).
    pub fn concat(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        Self::distinct("concat", a, b)?;
        let (left, right) = (self.shape(a), self.shape(b));
        if left.with_channels(0) != right.with_channels(0) {
            return Err(GraphError::Mismatch { op: "concat", left, right });
        }
        let concat = Concat { left, right_channels: right.channels };
        Ok(self.push(Op::Concat(concat), &[a, b], concat.output(), Vec::new()))
    }

    /// Adds a per-channel bias from `frequencies` Fourier features of the noise level (`name.weight`,
    /// `name.bias`).
    pub fn embed(&mut self, name: &str, x: NodeId, frequencies: usize) -> NodeId {
        let shape = self.shape(x);
        let embed = NoiseEmbedding { shape, frequencies };
        let (width, c) = (2 * frequencies, shape.channels);
        let weight = self.lecun(width * c, width);
        let tensors = vec![
            (format!("{name}.weight"), vec![width, c], weight),
            (format!("{name}.bias"), vec![c], vec![F::zero(); c]),
        ];
        self.push(Op::Embed(embed), &[x], shape, tensors)
    }

    /// The graph, with the last node added as its output.
    pub fn finish(self) -> Graph<F> {
        self.graph
    }
}

/// Checks a graph's forward and reverse passes against central finite differences (values' tangents,
/// both reverse streams, every parameter) on `n` random points with `tangents` tangent rows each, at
/// its parameters plus `N(0, 0.3^2)` noise (so norm scales, shifts and biases are not at 1 or 0).
#[cfg(test)]
pub(super) fn check_against_finite_differences(graph: &Graph<f64>, n: usize, tangents: usize, seed: u64) {
    use crate::testing::{check_stacked_map, normal_mat, test_rng};
    let mut rng = test_rng(seed);
    let x = normal_mat(n * (1 + tangents), graph.input_shape().len(), &mut rng);
    let log_sigma: Vec<f64> = (0..n).map(|i| -1.5 + 0.7 * i as f64).collect();
    let with_params = |theta: &[f64]| {
        let mut g = graph.clone();
        g.params_mut().copy_from_slice(theta);
        g
    };
    let forward = |x: &Mat<f64>, theta: &[f64]| {
        let mut trace = GraphTrace::default();
        with_params(theta).forward(x, n, &log_sigma, &mut trace).clone()
    };
    let reverse = |x: &Mat<f64>, theta: &[f64], g: &Mat<f64>| {
        let (net, mut trace) = (with_params(theta), GraphTrace::default());
        net.forward(x, n, &log_sigma, &mut trace);
        let (mut grad, mut g_x) = (vec![0.0; theta.len()], Mat::default());
        net.reverse(&mut trace, g, &mut grad, Some(&mut g_x));
        (g_x, grad)
    };
    let theta: Vec<f64> =
        graph.params().iter().map(|p| p + 0.3 * normal_mat(1, 1, &mut rng).at(0, 0)).collect();
    check_stacked_map(forward, reverse, &x, n, &theta, seed + 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};

    #[test]
    fn an_output_feeding_two_ops_gets_the_sum_of_their_cotangents() {
        // x feeds both the activation and the sum: y = x + silu(x), so g_x = g + silu'(x) g (+ tangents).
        let mut rng = test_rng(1);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(2, 3, 2), &mut rng);
        let x = b.input();
        let a = b.act(x, Activation::Silu);
        b.add(x, a).expect("equal shapes");
        check_against_finite_differences(&b.finish(), 2, 2, 3);
    }

    #[test]
    fn a_reused_trace_gives_exactly_what_a_fresh_one_gives() {
        // Reverse never zeroes its buffers: each input cotangent is assigned by its first writer, and the
        // conv workspace keeps its largest size. A trace last used at other batch sizes and tangent counts
        // (stale values in every buffer) must give the same output, parameter gradient and input
        // cotangent as a fresh, zero-initialised one. The U-Net has every op, and skips that feed two ops.
        let graph: Graph<f64> =
            crate::testing::tiny_unet(Shape::new(4, 4, 2)).build(&mut test_rng(20)).unwrap();
        let mut rng = test_rng(21);
        let pass = |trace: &mut GraphTrace<f64>, x: &Mat<f64>, n: usize, g: &Mat<f64>| {
            let log_sigma: Vec<f64> = (0..n).map(|i| -1.0 + 0.3 * i as f64).collect();
            let y = graph.forward(x, n, &log_sigma, trace).clone();
            let (mut grad, mut g_x) = (vec![0.0; graph.params().len()], Mat::default());
            graph.reverse(trace, g, &mut grad, Some(&mut g_x));
            (y, grad, g_x)
        };
        let mut reused = GraphTrace::default();
        for (n, tangents) in [(3, 2), (2, 1), (2, 0), (3, 2)] {
            let rows = n * (1 + tangents);
            let x = normal_mat(rows, graph.input_shape().len(), &mut rng);
            let g = normal_mat(rows, graph.output_shape().len(), &mut rng);
            let want = pass(&mut GraphTrace::default(), &x, n, &g);
            assert!(want.1.iter().all(|v| v.is_finite()) && want.2.norm_sq() > 0.0);
            assert_eq!(pass(&mut reused, &x, n, &g), want, "{n} points, {tangents} tangents");
        }
    }

    #[test]
    fn bad_sizes_are_one_line_errors() {
        let mut rng = test_rng(2);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(5, 4, 6), &mut rng);
        let x = b.input();
        let checks = [
            (
                b.group_norm("mid.norm", x, 4).map(|_| ()),
                "group norm `mid.norm`: 6 channels are not divisible by 4 groups",
            ),
            (
                b.avg_pool(x).map(|_| ()),
                "average pooling: a 5x4x6 image has an odd side, expected even height and width",
            ),
            (
                b.conv2d("stem", x, 3, 2, 1).map(|_| ()),
                "convolution `stem`: kernel 2 and stride 1 given, expected an odd kernel and a stride >= 1",
            ),
            (b.add(x, x).map(|_| ()), "add: both inputs are node 0, expected two different nodes"),
        ];
        for (got, want) in checks {
            assert_eq!(got.expect_err(want).to_string(), want);
        }
        let half = b.conv2d("down", x, 6, 3, 2).expect("valid conv");
        assert_eq!(b.shape(half), Shape::new(3, 2, 6));
        let err = b.add(x, half).expect_err("shapes differ").to_string();
        assert_eq!(err, "add: inputs of shapes 5x4x6 and 3x2x6 do not fit");
        let err = b.concat(x, half).expect_err("pixels differ").to_string();
        assert_eq!(err, "concat: inputs of shapes 5x4x6 and 3x2x6 do not fit");
    }

    #[test]
    fn parameters_are_named_by_path_and_tile_the_flat_vector() {
        let mut rng = test_rng(3);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(4, 4, 1), &mut rng);
        let x = b.input();
        let h = b.conv2d("stem.conv", x, 4, 3, 1).expect("valid conv");
        let h = b.group_norm("stem.norm", h, 2).expect("4 channels, 2 groups");
        b.embed("stem.embed", h, 3);
        let graph = b.finish();
        let names: Vec<&str> = graph.tensors().iter().map(|t| t.name.as_str()).collect();
        let want = [
            "stem.conv.weight",
            "stem.conv.bias",
            "stem.norm.weight",
            "stem.norm.bias",
            "stem.embed.weight",
            "stem.embed.bias",
        ];
        assert_eq!(names, want);
        let mut offset = 0;
        for t in graph.tensors() {
            assert_eq!(t.offset, offset, "{}", t.name);
            offset += t.len();
        }
        assert_eq!(offset, graph.params().len());
        assert_eq!(graph.tensors()[0].shape, vec![9, 4]);
        assert_eq!(graph.tensors()[4].shape, vec![6, 4]);
    }
}

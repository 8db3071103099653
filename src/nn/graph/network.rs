//! A network as a graph of ops in topological order, with its parameters in one flat vector named by
//! path (`down.0.0.conv1.weight`), and the per-pass stores of values, caches and cotangents.
//!
//! Forward walks the nodes in order; reverse walks them backwards and every op ADDS to the cotangents
//! of its inputs, so a node that feeds several ops (a skip connection) receives the sum of their
//! cotangents. Parameter gradients are added to a flat vector laid out like the parameters.

use super::conv2d::Conv2d;
use super::cotangent::input_cotangents;
use super::error::GraphError;
use super::group_norm::GroupNorm;
use super::noise_embedding::NoiseEmbedding;
use super::norm_act::NormAct;
use super::op::{NodeCache, Op};
use super::resample::{AvgPool, Upsample};
use super::rows::Rows;
use super::shape::Shape;
use super::skip::Concat;
use crate::linalg::lanes::dot;
use crate::linalg::{Mat, Real};
use crate::nn::{Activation, Dense};
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
pub(super) struct Node {
    pub(super) op: Op,
    pub(super) inputs: Vec<usize>,
    shape: Shape,
    pub(super) params: Range<usize>,
}

/// A network graph: nodes in topological order (node 0 the input, the last node the output).
#[derive(Clone, Debug, PartialEq)]
pub struct Graph<F> {
    pub(super) nodes: Vec<Node>,
    pub(super) params: Vec<F>,
    tensors: Vec<ParamTensor>,
}

/// How a forward pass treats the output's tangent rows (see [`Graph::forward_contracted`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum OutputTangents {
    /// Computed and returned (every pass but the contracted one).
    #[default]
    Computed,
    /// Contracted with their cotangent by the reverse pass, the last dense op having mapped the primal
    /// rows only.
    Skipped,
    /// Contracted with their cotangent by the reverse pass, computed all the same (the graph ends in a
    /// dense map of its input, whose cotangent the reverse pass does not form).
    Kept,
}

/// The per-pass stores of a [`Graph`]: every node's stacked value, cache and cotangent. Allocate once,
/// reuse every step.
#[derive(Clone, Debug, Default)]
pub struct GraphTrace<F> {
    n: usize,
    rows: Rows,
    output_tangents: OutputTangents,
    /// `sum <g_dot, y_dot>` over the output's tangent rows, set by the reverse pass after a contracted
    /// forward pass.
    output_tangent_dot: F,
    /// Whether `values[0]` holds a copy of the input (else the reverse pass is given it again).
    input_kept: bool,
    pub(super) values: Vec<Mat<F>>,
    pub(super) caches: Vec<NodeCache<F>>,
    pub(super) cotangents: Vec<Mat<F>>,
    /// Whether each node's cotangent has been written in the current reverse pass.
    pub(super) written: Vec<bool>,
    /// The ops' workspace (the largest [`Op::workspace_len`]), never shrunk.
    workspace: Vec<F>,
    scratch: Mat<F>,
}

impl<F: Real> GraphTrace<F> {
    /// The stacked output of the last forward pass (primal rows, then tangent rows).
    pub fn output(&self) -> &Mat<F> {
        self.values.last().expect("GraphTrace::output before a forward pass")
    }

    /// Number of primal rows of the last forward pass.
    pub fn primal_rows(&self) -> usize {
        self.n
    }

    /// `sum <g_dot, y_dot>`: the output tangents of the last [`Graph::forward_contracted`] contracted
    /// with their cotangent in the reverse pass that followed it.
    #[track_caller]
    pub fn output_tangent_dot(&self) -> F {
        assert!(
            self.output_tangents != OutputTangents::Computed,
            "GraphTrace::output_tangent_dot after a pass that was not contracted"
        );
        self.output_tangent_dot
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

    /// The values of tensor `t` of [`Graph::tensors`].
    pub fn tensor(&self, t: usize) -> &[F] {
        let tensor = &self.tensors[t];
        &self.params[tensor.offset..tensor.offset + tensor.len()]
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
        self.walk(x, n, Rows::Tangents, false, log_sigma, trace, true)
    }

    /// Refuses a jet walk through an op without a jet rule; panics unless `x` has `n (1 + 2m)` rows.
    #[track_caller]
    fn jet_rule_check(&self, x: &Mat<F>, n: usize) -> Result<(), GraphError> {
        if let Some(node) = self.nodes.iter().position(|node| !node.op.has_jet_rule()) {
            return Err(GraphError::NoJetRule { node });
        }
        crate::nn::jet::jet_directions(x.rows(), n);
        Ok(())
    }

    /// A forward walk over `x` laid out as `rows` that does not copy `x` into the trace: the reverse pass
    /// is given `x` again ([`Graph::reverse_borrowed`]). With [`Rows::Jet`] (`n` primal rows, `m n`
    /// first-order rows, `m n` second-order rows) and the input jet `[x; v; 0]` of the lines `t -> x + t v`,
    /// the output jet is `[f(x); J_f(x) v; (v^T grad^2 f_k(x) v)_k]`; a graph with an op that has no jet
    /// rule (group norm) is refused.
    #[track_caller]
    pub fn forward_borrowed<'t>(
        &self,
        x: &Mat<F>,
        n: usize,
        rows: Rows,
        log_sigma: &[F],
        trace: &'t mut GraphTrace<F>,
    ) -> Result<&'t Mat<F>, GraphError> {
        if rows == Rows::Jet {
            self.jet_rule_check(x, n)?;
        }
        Ok(self.walk(x, n, rows, false, log_sigma, trace, false))
    }

    /// The forward walk: every node in topological order, on stacked rows laid out as `rows`
    /// (activations keep their second derivatives when `keep_second` is set; the trace keeps a copy of
    /// `x` when `keep_input` is set).
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub(super) fn walk<'t>(
        &self,
        x: &Mat<F>,
        n: usize,
        rows: Rows,
        keep_second: bool,
        log_sigma: &[F],
        trace: &'t mut GraphTrace<F>,
        keep_input: bool,
    ) -> &'t Mat<F> {
        self.check_stacked_input(x, n, log_sigma);
        self.start_walk(x, n, rows, trace, keep_input);
        self.walk_nodes(1..self.nodes.len(), x, keep_second, log_sigma, trace);
        trace.output()
    }

    /// Panics unless `x` has the input's width and a whole number of blocks of `n` rows, with noise
    /// levels as [`Graph::check_noise_levels`] asks.
    #[track_caller]
    fn check_stacked_input(&self, x: &Mat<F>, n: usize, log_sigma: &[F]) {
        let width = self.input_shape().len();
        assert_eq!(x.cols(), width, "Graph: input has {} columns, expected {width}", x.cols());
        assert!(
            n > 0 && x.rows().is_multiple_of(n),
            "Graph: {} stacked rows are not a multiple of {n}",
            x.rows()
        );
        self.check_noise_levels(log_sigma, n);
    }

    /// [`Graph::forward_borrowed`] with tangent rows for a loss that is linear in the output tangents
    /// `y_dot` with a cotangent `g_dot` that does not depend on them (SSM, ESM: `sum <v, y_dot> / (n M)`).
    /// Returns the `n` primal output rows only: the last dense op `y = h W + b` maps the primal rows, and
    /// the reverse pass (which needs `g_dot`, not `y_dot`) forms `sum <g_dot, y_dot> = sum <h_dot, g_dot
    /// W^T>` from its input's tangent rows and their cotangent, read afterwards with
    /// [`GraphTrace::output_tangent_dot`]. One GEMM of the last layer's size fewer per step. A graph
    /// whose last op is not dense, or is dense on the graph input, computes `y_dot` all the same and the
    /// reverse pass contracts it; the stacked output is then returned whole.
    #[track_caller]
    pub fn forward_contracted<'t>(&self, x: &Mat<F>, n: usize, trace: &'t mut GraphTrace<F>) -> &'t Mat<F> {
        let last = self.nodes.len() - 1;
        let node = &self.nodes[last];
        let skippable = match node.op {
            Op::Linear(dense) if node.inputs[0] > 0 => Some(dense),
            _ => None,
        };
        let Some(dense) = skippable else {
            self.walk(x, n, Rows::Tangents, false, &[], trace, false);
            trace.output_tangents = OutputTangents::Kept;
            return trace.output();
        };
        self.check_stacked_input(x, n, &[]);
        self.start_walk(x, n, Rows::Tangents, trace, false);
        self.walk_nodes(1..last, x, false, &[], trace);
        let (weight, bias) = self.params[node.params.clone()].split_at(dense.weight_len());
        let (done, rest) = trace.values.split_at_mut(last);
        dense.forward_primal(weight, bias, &done[node.inputs[0]], n, &mut rest[0]);
        trace.output_tangents = OutputTangents::Skipped;
        trace.output()
    }

    /// Panics unless there is one noise level per point, or none for a graph without a noise embedding.
    #[track_caller]
    fn check_noise_levels(&self, log_sigma: &[F], n: usize) {
        let unused = log_sigma.is_empty() && !self.nodes.iter().any(|node| matches!(node.op, Op::Embed(_)));
        assert!(unused || log_sigma.len() == n, "Graph: {} noise levels for {n} points", log_sigma.len());
    }

    /// Sizes the trace for a walk over `x` with `n` primal rows laid out as `rows`, keeping a copy of `x`
    /// when `keep_input` is set.
    fn start_walk(&self, x: &Mat<F>, n: usize, rows: Rows, trace: &mut GraphTrace<F>, keep_input: bool) {
        trace.n = n;
        trace.rows = rows;
        trace.output_tangents = OutputTangents::Computed;
        trace.input_kept = keep_input;
        trace.values.resize_with(self.nodes.len(), Mat::default);
        trace.caches.resize_with(self.nodes.len(), NodeCache::default);
        if keep_input {
            trace.values[0].clone_from(x);
        } else {
            trace.values[0].resize(0, x.cols());
        }
        self.reserve_workspace(x.rows(), &mut trace.workspace);
    }

    /// The forward walk over the nodes `range` (the values of earlier nodes in place; node 0's is `x`).
    fn walk_nodes(
        &self,
        range: Range<usize>,
        x: &Mat<F>,
        keep_second: bool,
        log_sigma: &[F],
        trace: &mut GraphTrace<F>,
    ) {
        let (n, rows) = (trace.n, trace.rows);
        for (k, node) in self.nodes.iter().enumerate().take(range.end).skip(range.start) {
            let (done, rest) = trace.values.split_at_mut(k);
            let (inputs, count) = input_values(&node.inputs, x, done);
            let params = &self.params[node.params.clone()];
            let (y, cache) = (&mut rest[0], &mut trace.caches[k]);
            node.op.forward(
                params,
                &inputs[..count],
                n,
                rows,
                keep_second,
                log_sigma,
                y,
                cache,
                &mut trace.workspace,
            );
        }
    }

    /// [`Graph::forward`] at the `n` rows of `x` along the `D` basis directions (the stacked input
    /// `[x; e_0 ..; e_1 ..; ..]`, direction `j` of point `i` at row `n + j n + i`) for a graph whose first
    /// op is a dense layer of the input, without building the one-hot rows: that layer's tangent rows
    /// are the rows of its weight ([`Dense::forward_basis_tangents`]). Returns `[y; J e_0; J e_1; ..]`.
    /// No reverse pass may follow.
    #[track_caller]
    pub fn forward_basis<'t>(&self, x: &Mat<F>, trace: &'t mut GraphTrace<F>) -> &'t Mat<F> {
        let width = self.input_shape().len();
        assert_eq!(x.cols(), width, "Graph: input has {} columns, expected {width}", x.cols());
        assert!(x.rows() > 0, "Graph: no rows");
        let first = &self.nodes[1];
        let Op::Linear(dense) = first.op else { panic!("Graph::forward_basis: the first op is not dense") };
        self.check_noise_levels(&[], x.rows());
        self.start_walk(x, x.rows(), Rows::Tangents, trace, false);
        let (weight, bias) = self.params[first.params.clone()].split_at(dense.weight_len());
        dense.forward_basis_tangents(weight, bias, x, &mut trace.values[1]);
        self.walk_nodes(2..self.nodes.len(), x, false, &[], trace);
        trace.output()
    }

    /// Reverse pass after [`Graph::forward`]: given the
    /// cotangent `g_out` of the stacked output, adds
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
        assert!(trace.input_kept, "Graph::reverse after a pass that did not keep its input");
        let input = std::mem::take(&mut trace.values[0]);
        self.reverse_borrowed(&input, trace, g_out, grad, g_x);
        trace.values[0] = input;
    }

    /// [`Graph::reverse`] after [`Graph::forward_borrowed`] on the same `x`.
    #[track_caller]
    pub fn reverse_borrowed(
        &self,
        x: &Mat<F>,
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
        let out = trace.output();
        // A contracted pass that skipped the output tangents returned the primal rows only.
        let stacked = if trace.output_tangents == OutputTangents::Skipped { x.rows() } else { out.rows() };
        assert!(
            trace.values.len() == self.nodes.len()
                && g_out.rows() == stacked
                && out.cols() == g_out.cols()
                && x.rows() == stacked,
            "Graph::reverse: cotangent or input does not match the last forward pass"
        );
        self.start_reverse(x, trace, g_x.is_some(), true);
        self.reverse_walk(x, Some(g_out), trace, grad, g_x);
        if trace.output_tangents == OutputTangents::Kept {
            let primal = trace.n * g_out.cols();
            let y = trace.output().as_slice();
            trace.output_tangent_dot = dot(&y[primal..], &g_out.as_slice()[primal..]);
        }
    }

    /// Sizes the nodes' cotangents like their values and marks none written; the input's (like `x`) only
    /// when `input_wanted`, the output's only unless its cotangent is given (`output_given`), so that
    /// no buffer is allocated that the walk does not write. Buffers keep their size across steps, so
    /// after the first step none is resized or zeroed: each input cotangent is assigned by its first
    /// writer (`cotangent.rs`).
    pub(super) fn start_reverse(
        &self,
        x: &Mat<F>,
        trace: &mut GraphTrace<F>,
        input_wanted: bool,
        output_given: bool,
    ) {
        let GraphTrace { values, cotangents, written, workspace, .. } = trace;
        let nodes = self.nodes.len();
        cotangents.resize_with(nodes, Mat::default);
        if input_wanted {
            cotangents[0].resize(x.rows(), x.cols());
        }
        let inner = if output_given { nodes - 1 } else { nodes };
        for (g, y) in cotangents[..inner].iter_mut().zip(values.iter()).skip(1) {
            g.resize(y.rows(), y.cols());
        }
        written.clear();
        written.resize(self.nodes.len(), false);
        self.reserve_workspace(x.rows(), workspace);
    }

    /// The reverse walk over the input `x` of the forward pass, from the output's cotangent `g_out` (or,
    /// without it, the one in place, marked written, as any other node's may be): every node from the
    /// last to the first adds its inputs' cotangents and its parameter gradient.
    pub(super) fn reverse_walk(
        &self,
        x: &Mat<F>,
        g_out: Option<&Mat<F>>,
        trace: &mut GraphTrace<F>,
        grad: &mut [F],
        g_x: Option<&mut Mat<F>>,
    ) {
        let GraphTrace { n, rows, values, caches, cotangents, written, workspace, scratch, .. } = trace;
        let (output_tangents, output_tangent_dot) = (trace.output_tangents, &mut trace.output_tangent_dot);
        let input_wanted = g_x.is_some();
        let last = self.nodes.len() - 1;
        // The cotangent of the node walked last is dead once its op has run; the next input cotangent
        // to be assigned (not added) of the same size takes over its buffer, still in the cache, so a
        // chain ping-pongs between two buffers instead of streaming through one per node.
        let mut dead: Option<usize> = None;
        for (k, node) in self.nodes.iter().enumerate().skip(1).rev() {
            if let Some(d) = dead {
                let fresh = node.inputs.iter().copied().find(|&j| {
                    (j > 0 || input_wanted)
                        && !written[j]
                        && cotangents[j].as_slice().len() == cotangents[d].as_slice().len()
                });
                if let Some(j) = fresh {
                    cotangents.swap(j, d);
                    let value = if j == 0 { x } else { &values[j] };
                    cotangents[j].resize(value.rows(), value.cols());
                }
            }
            dead = Some(k);
            let (lower, upper) = cotangents.split_at_mut(k);
            let g_inputs = input_cotangents(&node.inputs, lower, written, input_wanted);
            let (inputs, count) = input_values(&node.inputs, x, values);
            let g_y = match g_out {
                Some(g) if k == last => g,
                _ => &upper[0],
            };
            let range = node.params.clone();
            node.op.reverse(
                &self.params[range.clone()],
                &mut grad[range],
                &inputs[..count],
                *n,
                *rows,
                &caches[k],
                g_y,
                g_inputs,
                workspace,
                scratch,
            );
            if k == last && output_tangents == OutputTangents::Skipped {
                // sum <g_dot, h_dot W> = sum <g_dot W^T, h_dot>: the dense op's input tangent rows
                // against the cotangent it has just assigned them (forward_contracted).
                let j = node.inputs[0];
                let primal = *n * values[j].cols();
                *output_tangent_dot =
                    dot(&values[j].as_slice()[primal..], &cotangents[j].as_slice()[primal..]);
            }
        }
        if let Some(g_x) = g_x {
            if !written[0] {
                cotangents[0].fill_zero();
            }
            std::mem::swap(g_x, &mut cotangents[0]);
        }
    }
}

/// The values of a node's inputs (at most two; node 0's is `x`) and their number.
fn input_values<'a, F>(inputs: &[usize], x: &'a Mat<F>, values: &'a [Mat<F>]) -> ([&'a Mat<F>; 2], usize) {
    let value = |j: usize| if j == 0 { x } else { &values[j] };
    let first = value(inputs[0]);
    (inputs.get(1).map_or([first, first], |&j| [first, value(j)]), inputs.len())
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

    /// A dense layer `y = x W + b` on the flattened input row, to a `1 x 1 x outputs` image
    /// (`name.weight`, `inputs x outputs`, and `name.bias`).
    pub fn linear(&mut self, name: &str, x: NodeId, outputs: usize) -> NodeId {
        let dense = Dense { inputs: self.shape(x).len(), outputs };
        let weight = self.lecun(dense.weight_len(), dense.inputs);
        let tensors = vec![
            (format!("{name}.weight"), vec![dense.inputs, outputs], weight),
            (format!("{name}.bias"), vec![outputs], vec![F::zero(); outputs]),
        ];
        self.push(Op::Linear(dense), &[x], Shape::new(1, 1, outputs), tensors)
    }

    /// Group norm over `groups` channel groups (`name.weight` = scale, `name.bias` = shift), then
    /// `activation` when given, fused into the same op.
    pub fn group_norm(
        &mut self,
        name: &str,
        x: NodeId,
        groups: usize,
        activation: Option<Activation>,
    ) -> Result<NodeId, GraphError> {
        let shape = self.shape(x);
        if groups == 0 || !shape.channels.is_multiple_of(groups) {
            return Err(GraphError::Groups { name: name.to_string(), channels: shape.channels, groups });
        }
        let c = shape.channels;
        let tensors = vec![
            (format!("{name}.weight"), vec![c], vec![F::one(); c]),
            (format!("{name}.bias"), vec![c], vec![F::zero(); c]),
        ];
        let op = NormAct { norm: GroupNorm { shape, groups }, act: activation };
        Ok(self.push(Op::Norm(op), &[x], shape, tensors))
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

/// Checks a graph's jet pass ([`Graph::forward_borrowed`] with [`Rows::Jet`]) on `n` random points and `m` random directions
/// against finite differences of its plain forward pass along the lines `t -> x + t v` (central first
/// and second differences), and its reverse pass on a general jet input (non-zero second-order rows)
/// against finite differences of `<g, jet>` in the input jet and in every parameter.
#[cfg(test)]
pub(super) fn check_jet_against_finite_differences(graph: &Graph<f64>, n: usize, m: usize, seed: u64) {
    use crate::testing::{assert_close, dot, fd_gradient, normal_mat, test_rng};
    let mut rng = test_rng(seed);
    let d = graph.input_shape().len();
    let log_sigma: Vec<f64> = (0..n).map(|i| -1.2 + 0.5 * i as f64).collect();
    let (x, v) = (normal_mat(n, d, &mut rng), normal_mat(m * n, d, &mut rng));
    let mut input = Mat::default();
    crate::nn::stack_jet_input(&x, &v, &mut input);
    let mut trace = GraphTrace::default();
    let jet = graph.forward_borrowed(&input, n, Rows::Jet, &log_sigma, &mut trace).expect("jet rule").clone();
    let plain = |p: &Mat<f64>| graph.forward(p, n, &log_sigma, &mut GraphTrace::default()).clone();
    let eps = 1e-4;
    for tau in 0..m {
        let along = |t: f64| plain(&Mat::from_fn(n, d, |i, j| x.at(i, j) + t * v.at(tau * n + i, j)));
        let (up, mid, down) = (along(eps), along(0.0), along(-eps));
        let points = up.as_slice().iter().zip(mid.as_slice()).zip(down.as_slice());
        let first: Vec<f64> = points.clone().map(|((u, _), w)| (u - w) / (2.0 * eps)).collect();
        let second: Vec<f64> = points.map(|((u, c), w)| (u - 2.0 * c + w) / (eps * eps)).collect();
        assert_close(jet.slice_rows(0, n).as_slice(), mid.as_slice(), 1e-12, "jet value");
        let rows = |start: usize| jet.slice_rows(start + tau * n, start + (tau + 1) * n);
        assert_close(rows(n).as_slice(), &first, 1e-7, "jet first order vs finite differences");
        assert_close(rows(n + m * n).as_slice(), &second, 1e-5, "jet second order vs finite differences");
    }
    let theta: Vec<f64> =
        graph.params().iter().map(|p| p + 0.3 * normal_mat(1, 1, &mut rng).at(0, 0)).collect();
    let x_jet = normal_mat(n * (1 + 2 * m), d, &mut rng);
    let forward = |x: &Mat<f64>, theta: &[f64]| {
        let mut net = graph.clone();
        net.params_mut().copy_from_slice(theta);
        let mut trace = GraphTrace::default();
        net.forward_borrowed(x, n, Rows::Jet, &log_sigma, &mut trace).expect("jet rule").clone()
    };
    let g = normal_mat(x_jet.rows(), graph.output_shape().len(), &mut rng);
    let mut net = graph.clone();
    net.params_mut().copy_from_slice(&theta);
    let mut trace = GraphTrace::default();
    net.forward_borrowed(&x_jet, n, Rows::Jet, &log_sigma, &mut trace).expect("jet rule");
    let (mut grad, mut g_x) = (vec![0.0; theta.len()], Mat::default());
    net.reverse_borrowed(&x_jet, &mut trace, &g, &mut grad, Some(&mut g_x));
    let in_x = |flat: &[f64]| {
        dot(g.as_slice(), forward(&Mat::from_vec(x_jet.rows(), d, flat.to_vec()), &theta).as_slice())
    };
    assert_close(g_x.as_slice(), &fd_gradient(in_x, x_jet.as_slice(), 1e-5), 1e-6, "jet input cotangent");
    let in_theta = |p: &[f64]| dot(g.as_slice(), forward(&x_jet, p).as_slice());
    assert_close(&grad, &fd_gradient(in_theta, &theta, 1e-5), 1e-6, "jet parameter gradient");
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
    fn dense_layers_match_finite_differences() {
        // A dense layer on a flattened 2x2x2 image, and one whose input also feeds a sum, so that its
        // input cotangent is added to one the sum assigned.
        let mut rng = test_rng(4);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(2, 2, 2), &mut rng);
        let x = b.input();
        let h = b.linear("0", x, 5);
        let a = b.act(h, Activation::Tanh);
        let h = b.linear("1", a, 5);
        let sum = b.add(a, h).expect("equal shapes");
        b.linear("2", sum, 3);
        let graph = b.finish();
        assert_eq!(graph.output_shape(), Shape::new(1, 1, 3));
        assert_eq!(graph.tensors()[0].shape, vec![8, 5]);
        check_against_finite_differences(&graph, 3, 2, 5);
    }

    #[test]
    fn jet_rows_match_finite_differences_along_lines() {
        // Every op with a jet rule: convolution, activations, concat, pooling, embedding, upsampling,
        // dense layers and a sum.
        let mut rng = test_rng(6);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(2, 2, 2), &mut rng);
        let x = b.input();
        let c = b.conv2d("conv", x, 3, 3, 1).expect("valid conv");
        let a = b.act(c, Activation::Silu);
        let wide = b.concat(a, x).expect("same pixels");
        let pooled = b.avg_pool(wide).expect("even sides");
        let e = b.embed("embed", pooled, 2);
        let up = b.upsample(e);
        let h = b.linear("dense", up, 4);
        let t = b.act(h, Activation::Tanh);
        let skip = b.linear("skip", pooled, 4);
        let sum = b.add(t, skip).expect("equal shapes");
        let s = b.act(sum, Activation::Softplus);
        b.linear("out", s, 2);
        check_jet_against_finite_differences(&b.finish(), 2, 2, 7);
    }

    #[test]
    fn a_jet_pass_through_a_group_norm_is_refused() {
        let mut rng = test_rng(8);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(2, 2, 2), &mut rng);
        let x = b.input();
        let h = b.conv2d("conv", x, 2, 1, 1).expect("valid conv");
        b.group_norm("norm", h, 1, None).expect("2 channels, 1 group");
        let graph = b.finish();
        let input = Mat::zeros(3, 8);
        let mut trace = GraphTrace::default();
        let err = graph.forward_borrowed(&input, 1, Rows::Jet, &[0.0], &mut trace).expect_err("no jet rule");
        assert_eq!(
            err.to_string(),
            "jet rows: node 2 is a group norm, which has no jet rule (expected dense, convolution, \
             activation, pooling, upsampling, skip or embedding ops)"
        );
    }

    #[test]
    fn bad_sizes_are_one_line_errors() {
        let mut rng = test_rng(2);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(5, 4, 6), &mut rng);
        let x = b.input();
        let checks = [
            (
                b.group_norm("mid.norm", x, 4, None).map(|_| ()),
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
        let h = b.group_norm("stem.norm", h, 2, None).expect("4 channels, 2 groups");
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

//! The ops a network graph is made of, each with a forward pass (values and tangents) and a reverse pass
//! through both streams that ADDS to the cotangents of its inputs (one output may feed several ops), or
//! assigns them when it is their first writer (`cotangent.rs`).

use super::conv2d::Conv2d;
use super::cotangent::{put, InputCotangent};
use super::noise_embedding::NoiseEmbedding;
use super::norm_act::{NormAct, NormActCache};
use super::resample::{AvgPool, Upsample};
use super::rows::Rows;
use super::skip::{add_forward, Concat};
use crate::linalg::{Mat, Real};
use crate::nn::jet::{ActivationJet, JetCache};
use crate::nn::{Activation, ActivationCache, Dense, Layer};

/// One op of a network graph. Every op maps stacked batches (`n` primal rows, then tangent or jet
/// rows, see [`Rows`]) of channels-last images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// The network input (node 0).
    Input,
    /// A dense layer `y = x W + b` on the flattened input row; its output is a `1 x 1 x outputs` image.
    Linear(Dense),
    /// A `k x k` convolution, stride 1 or 2.
    Conv2d(Conv2d),
    /// Group normalisation, optionally with a pointwise activation fused after it.
    Norm(NormAct),
    /// A pointwise activation.
    Act(Activation),
    /// 2x2 average pooling.
    AvgPool(AvgPool),
    /// 2x nearest upsampling.
    Upsample(Upsample),
    /// The sum of two equally shaped inputs.
    Add,
    /// Channel concatenation of two inputs.
    Concat(Concat),
    /// A per-channel bias computed from each point's noise level.
    Embed(NoiseEmbedding),
}

/// What a node keeps from its forward pass for its reverse pass (each op uses its own field).
#[derive(Clone, Debug, Default)]
pub struct NodeCache<F> {
    norm: NormActCache<F>,
    pub(super) activation: ActivationCache<F>,
    jet: JetCache<F>,
    features: Mat<F>,
}

impl Op {
    /// Number of parameters the op owns.
    pub fn param_len(&self) -> usize {
        match self {
            Op::Linear(dense) => dense.param_len(),
            Op::Conv2d(conv) => conv.param_len(),
            Op::Norm(op) => op.norm.param_len(),
            Op::Embed(embed) => embed.param_len(),
            Op::Input | Op::Act(_) | Op::AvgPool(_) | Op::Upsample(_) | Op::Add | Op::Concat(_) => 0,
        }
    }

    /// Whether the op maps jet rows ([`Rows::Jet`]); group norm has no jet rule.
    pub(super) fn has_jet_rule(&self) -> bool {
        !matches!(self, Op::Norm(_))
    }

    /// Writes the op's stacked output `y` of its stacked `inputs` laid out as `rows`; `log_sigma` holds
    /// one noise level per primal row; `workspace` holds [`Op::workspace_len`] values. An activation
    /// keeps its second derivative when `keep_second` is set (see [`Activation::forward_cached`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward<F: Real>(
        &self,
        params: &[F],
        inputs: &[&Mat<F>],
        n: usize,
        rows: Rows,
        keep_second: bool,
        log_sigma: &[F],
        y: &mut Mat<F>,
        cache: &mut NodeCache<F>,
        workspace: &mut [F],
    ) {
        match self {
            Op::Input => unreachable!("the input node has no forward pass"),
            Op::Linear(dense) => {
                let (weight, bias) = params.split_at(dense.weight_len());
                dense.forward(weight, bias, inputs[0], n, y);
            }
            Op::Conv2d(conv) => conv.forward(params, inputs[0], n, y, workspace),
            Op::Norm(op) => op.forward(params, inputs[0], n, y, &mut cache.norm),
            Op::Act(act) => match rows {
                Rows::Tangents => act.forward_cached(inputs[0], n, y, &mut cache.activation, keep_second),
                Rows::Jet => ActivationJet(*act).forward(inputs[0], n, y, &mut cache.jet),
            },
            Op::AvgPool(pool) => pool.forward(inputs[0], y),
            Op::Upsample(up) => up.forward(inputs[0], y),
            Op::Add => add_forward(inputs[0], inputs[1], y),
            Op::Concat(concat) => concat.forward(inputs[0], inputs[1], y),
            Op::Embed(embed) => embed.forward(params, inputs[0], n, log_sigma, y, &mut cache.features),
        }
    }

    /// Length of the workspace [`Op::forward`] and [`Op::reverse`] need for `rows` stacked rows.
    pub(super) fn workspace_len(&self, rows: usize) -> usize {
        match self {
            Op::Conv2d(conv) => conv.workspace_len(rows),
            _ => 0,
        }
    }

    /// Adds the op's parameter gradients to `grad` and the cotangents of its inputs to `g_inputs` (an
    /// input whose cotangent is not wanted is `None`; a fresh one is assigned, see [`InputCotangent`]).
    /// `workspace` holds [`Op::workspace_len`] values; `scratch` is workspace too.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reverse<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        inputs: &[&Mat<F>],
        n: usize,
        rows: Rows,
        cache: &NodeCache<F>,
        g_y: &Mat<F>,
        g_inputs: [Option<InputCotangent<'_, F>>; 2],
        workspace: &mut [F],
        scratch: &mut Mat<F>,
    ) {
        let [g_a, g_b] = g_inputs;
        match self {
            Op::Input => unreachable!("the input node has no reverse pass"),
            Op::Linear(dense) => {
                let (weight, _) = params.split_at(dense.weight_len());
                let (g_weight, g_bias) = grad.split_at_mut(dense.weight_len());
                dense.parameter_gradient(inputs[0], n, g_y, g_weight, g_bias);
                if let Some(InputCotangent { g, fresh }) = g_a {
                    dense.input_cotangent(weight, g_y, g, fresh);
                }
            }
            Op::Conv2d(conv) => conv.reverse(params, grad, inputs[0], n, g_y, g_a, workspace),
            Op::Norm(op) => op.reverse(params, grad, inputs[0], n, &cache.norm, g_y, g_a, scratch),
            Op::Act(act) => {
                // The activation's reverse assigns its input cotangent.
                let assign = |g_x: &mut Mat<F>| match rows {
                    Rows::Tangents => act.reverse(inputs[0], n, &cache.activation, g_y, Some(g_x), &mut ()),
                    Rows::Jet => {
                        ActivationJet(*act).reverse(inputs[0], n, &cache.jet, g_y, Some(g_x), &mut ())
                    }
                };
                match g_a {
                    Some(InputCotangent { g, fresh: true }) => assign(g),
                    Some(InputCotangent { g, fresh: false }) => {
                        assign(scratch);
                        put(false, g.as_mut_slice(), scratch.as_slice(), |v| v);
                    }
                    None => {}
                }
            }
            Op::AvgPool(pool) => g_a.into_iter().for_each(|g| pool.reverse(g_y, g)),
            Op::Upsample(up) => g_a.into_iter().for_each(|g| up.reverse(g_y, g.zeroed_for_adding())),
            Op::Add => g_a
                .into_iter()
                .chain(g_b)
                .for_each(|g| put(g.fresh, g.g.as_mut_slice(), g_y.as_slice(), |v| v)),
            Op::Concat(concat) => concat.reverse(g_y, g_a, g_b),
            Op::Embed(embed) => embed.reverse(grad, n, &cache.features, g_y, g_a),
        }
    }
}

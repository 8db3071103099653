//! The ops a network graph is made of, each with a forward pass (values and tangents) and a reverse pass
//! through both streams that ADDS to the cotangents of its inputs (one output may feed several ops), or
//! assigns them when it is their first writer (`cotangent.rs`).

use super::conv2d::Conv2d;
use super::cotangent::{put, InputCotangent};
use super::group_norm::{GroupNorm, GroupNormCache};
use super::noise_embedding::NoiseEmbedding;
use super::resample::{AvgPool, Upsample};
use super::skip::{add_forward, Concat};
use crate::linalg::{Mat, Real};
use crate::nn::{Activation, ActivationCache, Layer};

/// One op of a network graph. Every op maps stacked batches (`n` primal rows, then tangent rows) of
/// channels-last images; a dense layer is a 1x1 convolution of a `1 x 1 x D` image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// The network input (node 0).
    Input,
    /// A `k x k` convolution, stride 1 or 2.
    Conv2d(Conv2d),
    /// Group normalisation.
    GroupNorm(GroupNorm),
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
    norm: GroupNormCache<F>,
    activation: ActivationCache<F>,
    features: Mat<F>,
}

impl Op {
    /// Number of parameters the op owns.
    pub fn param_len(&self) -> usize {
        match self {
            Op::Conv2d(conv) => conv.param_len(),
            Op::GroupNorm(norm) => norm.param_len(),
            Op::Embed(embed) => embed.param_len(),
            Op::Input | Op::Act(_) | Op::AvgPool(_) | Op::Upsample(_) | Op::Add | Op::Concat(_) => 0,
        }
    }

    /// Writes the op's stacked output `y` of its stacked `inputs`; `log_sigma` holds one noise level per
    /// primal row; `workspace` holds [`Op::workspace_len`] values.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward<F: Real>(
        &self,
        params: &[F],
        inputs: &[&Mat<F>],
        n: usize,
        log_sigma: &[F],
        y: &mut Mat<F>,
        cache: &mut NodeCache<F>,
        workspace: &mut [F],
    ) {
        match self {
            Op::Input => unreachable!("the input node has no forward pass"),
            Op::Conv2d(conv) => conv.forward(params, inputs[0], n, y, workspace),
            Op::GroupNorm(norm) => norm.forward(params, inputs[0], n, y, &mut cache.norm),
            Op::Act(act) => act.forward(inputs[0], n, y, &mut cache.activation),
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
        cache: &NodeCache<F>,
        g_y: &Mat<F>,
        g_inputs: [Option<InputCotangent<'_, F>>; 2],
        workspace: &mut [F],
        scratch: &mut Mat<F>,
    ) {
        let [g_a, g_b] = g_inputs;
        match self {
            Op::Input => unreachable!("the input node has no reverse pass"),
            Op::Conv2d(conv) => conv.reverse(params, grad, inputs[0], n, g_y, g_a, workspace),
            Op::GroupNorm(norm) => norm.reverse(params, grad, inputs[0], n, &cache.norm, g_y, g_a),
            Op::Act(act) => match g_a {
                // The activation's reverse assigns its input cotangent.
                Some(InputCotangent { g, fresh: true }) => {
                    act.reverse(inputs[0], n, &cache.activation, g_y, Some(g), &mut ())
                }
                Some(InputCotangent { g, fresh: false }) => {
                    act.reverse(inputs[0], n, &cache.activation, g_y, Some(scratch), &mut ());
                    put(false, g.as_mut_slice(), scratch.as_slice(), |v| v);
                }
                None => {}
            },
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

//! Why a network graph cannot be built: one-line messages naming the node and the offending sizes.

use super::shape::Shape;

/// A network that cannot be built from the requested sizes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A group norm over channels that do not split into equal groups.
    #[error("group norm `{name}`: {channels} channels are not divisible by {groups} groups")]
    Groups {
        /// Parameter path of the norm.
        name: String,
        /// Channels of its input.
        channels: usize,
        /// Requested number of groups.
        groups: usize,
    },
    /// A convolution with an even or zero kernel, or a zero stride.
    #[error("convolution `{name}`: kernel {kernel} and stride {stride} given, expected an odd kernel and a stride >= 1")]
    Kernel {
        /// Parameter path of the convolution.
        name: String,
        /// Requested kernel size.
        kernel: usize,
        /// Requested stride.
        stride: usize,
    },
    /// A 2x2 average pooling of an image with an odd side.
    #[error("average pooling: a {shape} image has an odd side, expected even height and width")]
    OddSide {
        /// The image that cannot be halved.
        shape: Shape,
    },
    /// Two inputs whose shapes do not fit the op (`add` needs equal shapes, `concat` equal pixels).
    #[error("{op}: inputs of shapes {left} and {right} do not fit")]
    Mismatch {
        /// The op (`add` or `concat`).
        op: &'static str,
        /// Shape of the first input.
        left: Shape,
        /// Shape of the second input.
        right: Shape,
    },
    /// A two-input op given the same node twice.
    #[error("{op}: both inputs are node {node}, expected two different nodes")]
    SameInput {
        /// The op (`add` or `concat`).
        op: &'static str,
        /// The repeated node.
        node: usize,
    },
    /// A jet pass asked of a graph with an op that has no jet rule.
    #[error("jet rows: node {node} is a group norm, which has no jet rule (expected dense, convolution, activation, pooling, upsampling, skip or embedding ops)")]
    NoJetRule {
        /// The first such node.
        node: usize,
    },
    /// An input gradient asked of a graph with more than one output.
    #[error("input gradient: the network has {outputs} outputs, expected 1")]
    NotScalar {
        /// Values per output row.
        outputs: usize,
    },
    /// An input gradient asked of a graph with an op that has no second-order adjoint.
    #[error("input gradient: node {node} has no second-order adjoint (expected dense, activation, sum or concatenation ops)")]
    NoGradientAdjoint {
        /// The first such node.
        node: usize,
    },
    /// A bad U-Net setting (empty channel list, zero blocks or groups, an image it cannot halve).
    #[error("U-Net: {0}")]
    UNet(String),
}

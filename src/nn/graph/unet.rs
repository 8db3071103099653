//! A noise-conditional U-Net over channels-last images, built as a [`Graph`].
//!
//! With channel levels `c_0, ..., c_{L-1}`: a 3x3 stem to `c_0`; at level `l`, `blocks` residual blocks
//! to `c_l`, then (except at the bottom) the skip is kept and the image halved by 2x2 average pooling;
//! a middle block; back up, at each level `l < L - 1`: 2x upsampling, concatenation with the level's
//! skip, `blocks` residual blocks to `c_l`; then group norm, activation and a 3x3 convolution to the
//! output maps. A residual block is
//! `h + conv2(act(norm2(embed(conv1(act(norm1(h)))))))`, the `h` term through a 1x1 convolution when
//! the channel count changes; `embed` adds a per-channel bias from the point's noise level.

use super::error::GraphError;
use super::network::{Graph, GraphBuilder, NodeId};
use super::shape::Shape;
use crate::linalg::Real;
use crate::nn::Activation;
use rand::Rng;

/// The output maps beyond the score: `C` maps for `s1` (one per image channel), then these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondOrderMaps {
    /// `s1` alone.
    None,
    /// A diagonal `s2`: one more map per channel.
    Diagonal,
    /// A low-rank + diagonal `s2` of rank `R`: `R + 1` more maps per channel (the factor's `R`
    /// columns, then the diagonal).
    LowRank(usize),
}

impl SecondOrderMaps {
    /// Extra maps per image channel.
    pub fn per_channel(&self) -> usize {
        match self {
            SecondOrderMaps::None => 0,
            SecondOrderMaps::Diagonal => 1,
            SecondOrderMaps::LowRank(rank) => rank + 1,
        }
    }
}

/// The sizes of a U-Net.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UNetConfig {
    /// Shape of the input (and score) image.
    pub image: Shape,
    /// Channels per resolution level, finest first (for example `[32, 64, 128]`).
    pub channels: Vec<usize>,
    /// Residual blocks per level on each path.
    pub blocks: usize,
    /// Groups of every group norm; divides every channel count.
    pub groups: usize,
    /// The activation after every norm.
    pub activation: Activation,
    /// Fourier frequencies of the noise-level embedding.
    pub frequencies: usize,
    /// Output maps beyond the score.
    pub second_order: SecondOrderMaps,
}

impl UNetConfig {
    /// Channels of the output image: `C (1 + extra maps per channel)`.
    pub fn output_channels(&self) -> usize {
        self.image.channels * (1 + self.second_order.per_channel())
    }

    /// Checks the sizes: one line naming the setting, its value and what was expected.
    pub(crate) fn validate(&self) -> Result<(), GraphError> {
        let list = self.channels.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let fail = |msg: String| Err(GraphError::UNet(msg));
        if self.channels.is_empty() || self.channels.contains(&0) {
            return fail(format!("channels `{list}` given, expected a list of positive counts"));
        }
        if self.blocks == 0 || self.groups == 0 || self.frequencies == 0 {
            let (b, g, f) = (self.blocks, self.groups, self.frequencies);
            return fail(format!("blocks {b}, groups {g}, frequencies {f} given, expected each >= 1"));
        }
        if let Some(c) = self.channels.iter().find(|c| !c.is_multiple_of(self.groups)) {
            return fail(format!("channels `{list}`: {c} is not divisible by {} groups", self.groups));
        }
        let factor = 1 << (self.channels.len() - 1);
        let Shape { height, width, .. } = self.image;
        if height == 0 || !height.is_multiple_of(factor) || width == 0 || !width.is_multiple_of(factor) {
            let levels = self.channels.len();
            return fail(format!(
                "a {height}x{width} image cannot be halved {} times for {levels} levels, expected sides divisible by {factor}",
                levels - 1
            ));
        }
        Ok(())
    }

    /// Builds the U-Net with freshly initialised parameters.
    pub fn build<F: Real, R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Graph<F>, GraphError> {
        self.validate()?;
        let mut b = GraphBuilder::new(self.image, rng);
        let input = b.input();
        let mut h = b.conv2d("stem", input, self.channels[0], 3, 1)?;
        let bottom = self.channels.len() - 1;
        let mut skips = Vec::new();
        for (level, &c) in self.channels.iter().enumerate() {
            for block in 0..self.blocks {
                h = self.res_block(&mut b, &format!("down.{level}.{block}"), h, c)?;
            }
            if level < bottom {
                skips.push(h);
                h = b.avg_pool(h)?;
            }
        }
        h = self.res_block(&mut b, "mid", h, self.channels[bottom])?;
        for (level, skip) in skips.into_iter().enumerate().rev() {
            let up = b.upsample(h);
            h = b.concat(up, skip)?;
            for block in 0..self.blocks {
                h = self.res_block(&mut b, &format!("up.{level}.{block}"), h, self.channels[level])?;
            }
        }
        h = b.group_norm("out.norm", h, self.groups, Some(self.activation))?;
        b.conv2d("out.conv", h, self.output_channels(), 3, 1)?;
        Ok(b.finish())
    }

    /// `h + conv2(act(norm2(embed(conv1(act(norm1(h)))))))`, with a 1x1 convolution on `h` when its
    /// channels are not `outputs`.
    fn res_block<F: Real, R: Rng + ?Sized>(
        &self,
        b: &mut GraphBuilder<'_, F, R>,
        name: &str,
        h: NodeId,
        outputs: usize,
    ) -> Result<NodeId, GraphError> {
        let mut a = b.group_norm(&format!("{name}.norm1"), h, self.groups, Some(self.activation))?;
        a = b.conv2d(&format!("{name}.conv1"), a, outputs, 3, 1)?;
        a = b.embed(&format!("{name}.embed"), a, self.frequencies);
        a = b.group_norm(&format!("{name}.norm2"), a, self.groups, Some(self.activation))?;
        a = b.conv2d(&format!("{name}.conv2"), a, outputs, 3, 1)?;
        let skip = if b.shape(h).channels == outputs {
            h
        } else {
            b.conv2d(&format!("{name}.skip"), h, outputs, 1, 1)?
        };
        b.add(a, skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Mat;
    use crate::nn::graph::network::check_against_finite_differences;
    use crate::nn::graph::{Graph, GraphTrace};
    use crate::testing::{normal_mat, test_rng};

    fn tiny(second_order: SecondOrderMaps) -> UNetConfig {
        UNetConfig {
            image: Shape::new(8, 8, 1),
            channels: vec![4, 8],
            blocks: 1,
            groups: 2,
            activation: Activation::Silu,
            frequencies: 2,
            second_order,
        }
    }

    #[test]
    fn tiny_unet_matches_finite_differences() {
        let mut rng = test_rng(20);
        let net = tiny(SecondOrderMaps::LowRank(1)).build::<f64, _>(&mut rng).expect("valid sizes");
        assert_eq!(net.output_shape(), Shape::new(8, 8, 3));
        check_against_finite_differences(&net, 2, 1, 21);
    }

    #[test]
    fn f32_passes_agree_with_f64() {
        // Training runs in f32 (fast exp in SiLU, f32 GEMM); relative agreement to 1e-3 is ~10^4 f32 ulps.
        let mut rng = test_rng(24);
        let net = tiny(SecondOrderMaps::Diagonal).build::<f64, _>(&mut rng).expect("valid sizes");
        let (n, x) = (3, normal_mat(6, 64, &mut rng));
        let g = normal_mat(6, 128, &mut rng);
        let log_sigma = [-2.0, -0.7, 0.0];
        let run = |net: &Graph<f64>| {
            let mut trace = GraphTrace::default();
            let y = net.forward(&x, n, &log_sigma, &mut trace).clone();
            let (mut grad, mut g_x) = (vec![0.0; net.params().len()], Mat::default());
            net.reverse(&mut trace, &g, &mut grad, Some(&mut g_x));
            (y.into_vec(), grad, g_x.into_vec())
        };
        let run32 = |net: &Graph<f32>| {
            let mut trace = GraphTrace::default();
            let y = net.forward(&x.cast(), n, &log_sigma.map(|l| l as f32), &mut trace).cast::<f64>();
            let (mut grad, mut g_x) = (vec![0.0f32; net.params().len()], Mat::default());
            net.reverse(&mut trace, &g.cast(), &mut grad, Some(&mut g_x));
            let widen = |v: &[f32]| v.iter().map(|v| f64::from(*v)).collect::<Vec<_>>();
            (y.into_vec(), widen(&grad), widen(g_x.as_slice()))
        };
        let (want, got) = (run(&net), run32(&net.cast::<f32>()));
        let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (what, w, g) in
            [("output", &want.0, &got.0), ("grad", &want.1, &got.1), ("input cotangent", &want.2, &got.2)]
        {
            let tol = 1e-3 * scale(w);
            let worst = w.iter().zip(g).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst <= tol, "{what}: worst difference {worst}, tolerance {tol}");
        }
    }

    #[test]
    fn output_maps_and_noise_conditioning() {
        let mut rng = test_rng(22);
        for (maps, channels) in
            [(SecondOrderMaps::None, 1), (SecondOrderMaps::Diagonal, 2), (SecondOrderMaps::LowRank(3), 5)]
        {
            let net = tiny(maps).build::<f64, _>(&mut rng).expect("valid sizes");
            assert_eq!(net.output_shape(), Shape::new(8, 8, channels), "{maps:?}");
        }
        let net = UNetConfig { image: Shape::new(4, 8, 3), ..tiny(SecondOrderMaps::None) }
            .build::<f64, _>(&mut rng)
            .expect("valid sizes");
        assert_eq!(net.output_shape(), Shape::new(4, 8, 3));
        // The same image at two noise levels gives two outputs: the embedding reaches the output.
        let x = normal_mat(1, 96, &mut rng);
        let x2 = Mat::vstack(&[&x, &x]);
        let y = net.forward(&x2, 2, &[-2.0, 0.0], &mut GraphTrace::default()).clone();
        assert_ne!(y.row(0), y.row(1));
    }

    #[test]
    fn bad_sizes_are_one_line_errors() {
        let mut rng = test_rng(23);
        let cases = [
            (
                UNetConfig { channels: vec![4, 6], groups: 4, ..tiny(SecondOrderMaps::None) },
                "U-Net: channels `4,6`: 6 is not divisible by 4 groups",
            ),
            (
                UNetConfig {
                    image: Shape::new(28, 28, 1),
                    channels: vec![4, 8, 8, 8],
                    ..tiny(SecondOrderMaps::None)
                },
                "U-Net: a 28x28 image cannot be halved 3 times for 4 levels, expected sides divisible by 8",
            ),
            (
                UNetConfig { channels: vec![], ..tiny(SecondOrderMaps::None) },
                "U-Net: channels `` given, expected a list of positive counts",
            ),
            (
                UNetConfig { groups: 0, ..tiny(SecondOrderMaps::None) },
                "U-Net: blocks 1, groups 0, frequencies 2 given, expected each >= 1",
            ),
        ];
        for (config, want) in cases {
            let got = config.build::<f64, _>(&mut rng).expect_err(want).to_string();
            assert_eq!(got, want);
        }
    }
}

//! 2-D convolution of channels-last images as GEMMs over the whole stacked batch (docs/math.md §8.8).
//!
//! im2col lays the `k x k` patch around every output pixel of every stacked row out as one row:
//! `cols` is `(rows H' W') x (k k C_in)`, columns ordered `(ky, kx, c_in)`. The weight `W` is
//! `(k k C_in) x C_out` in the same order, so `y = cols W` is the stacked output in channels-last
//! layout, primal and tangent rows alike; the bias touches the primal rows only. Reverse:
//! `dW += cols^T g_y`, `db += sum_{primal pixels} g_y`, `g_cols = g_y W^T`, scattered back (col2im,
//! `+=`). A 1x1 stride-1 convolution skips im2col: the input rows already are `cols`.
//!
//! Stride-1 convolutions of large images skip im2col: their products run on strided views of a zero-padded
//! copy of the input (`padded_conv.rs`). 3x3 stride-1 convolutions with enough input channels run by
//! Winograd's F(4x4, 3x3) instead (`winograd.rs`). Elsewhere `cols` is built as follows.
//!
//! `cols` is 9 times the input, too large to keep: it is built a block of output pixels at a time, for
//! the forward GEMM and again for the reverse ones, so each block stays in the cache. The weight gradient
//! sums over pixels block by block (rounding differs from one GEMM over all pixels; the blocks do not
//! depend on the thread count, so neither do the bits).

use super::cotangent::InputCotangent;
use super::padded_conv::SUM_BLOCK;
use super::shape::Shape;
use crate::linalg::{Mat, Real};
use std::ops::Range;

/// Values of `cols` built at a time (2 MB of f32): the columns of a block of output pixels stay in the
/// cache between im2col and the GEMM that reads them, and the block's GEMM is large enough (`2^19
/// C_out` multiply-adds, `2^24` at 32 output channels) to split across threads.
const COLUMN_BLOCK: usize = 1 << 19;

/// A `k x k` convolution (`k` odd) with stride `s` and zero padding `k / 2`: the output is
/// `ceil(H / s) x ceil(W / s) x C_out`. Parameters: weight `(k k C_in) x C_out`, then bias `C_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Side `k` of the square kernel.
    pub kernel: usize,
    /// Step between output pixels, in input pixels.
    pub stride: usize,
    /// Shape of the input image.
    pub input: Shape,
    /// Output channels.
    pub outputs: usize,
}

impl Conv2d {
    /// Shape of the output image.
    pub fn output(&self) -> Shape {
        Shape::new(
            self.input.height.div_ceil(self.stride),
            self.input.width.div_ceil(self.stride),
            self.outputs,
        )
    }

    /// Values per patch, `k k C_in` (the GEMM's inner dimension).
    pub fn patch(&self) -> usize {
        self.kernel * self.kernel * self.input.channels
    }

    /// Number of weights, `k k C_in C_out`.
    pub fn weight_len(&self) -> usize {
        self.patch() * self.outputs
    }

    /// Number of parameters (weights, then biases).
    pub fn param_len(&self) -> usize {
        self.weight_len() + self.outputs
    }

    /// A 1x1 convolution with stride 1 is a GEMM on the input rows as they are.
    fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1
    }

    /// Output pixels per block of the blocked im2col: as many as fill [`COLUMN_BLOCK`] values of `cols`.
    fn block_pixels(&self) -> usize {
        (COLUMN_BLOCK / self.patch()).max(1)
    }

    /// Calls `visit(start, input, taps)` for every kernel row `ky` of the output pixels `pixels` (indices
    /// into the stacked rows' pixels): the kernel row's `k C_in` values start at `start` in the block's
    /// `cols`, and its taps `kx` in `taps` read the input pixels `(iy, ix0 ..)`, whose channels are
    /// consecutive in the channels-last input from `input`; taps outside `taps` (or all, for `None`) lie
    /// in the zero padding.
    #[inline(always)]
    fn for_each_kernel_row(
        &self,
        pixels: Range<usize>,
        mut visit: impl FnMut(usize, Option<usize>, Range<usize>),
    ) {
        let (out, cin, patch, k) = (self.output(), self.input.channels, self.patch(), self.kernel);
        let (pad, s) = (k / 2, self.stride);
        for p in pixels.clone() {
            let (r, pixel) = (p / out.pixels(), p % out.pixels());
            let (oy, ox) = (pixel / out.width, pixel % out.width);
            // Taps kx with 0 <= ox s + kx - pad < W.
            let kx0 = pad.saturating_sub(ox * s);
            let kx1 = (self.input.width + pad - ox * s).min(k);
            for ky in 0..k {
                let start = (p - pixels.start) * patch + ky * k * cin;
                let iy = (oy * s + ky).checked_sub(pad).filter(|&iy| iy < self.input.height);
                let input = iy.filter(|_| kx0 < kx1).map(|iy| {
                    let ix0 = ox * s + kx0 - pad;
                    r * self.input.len() + (iy * self.input.width + ix0) * cin
                });
                visit(start, input, kx0..kx1);
            }
        }
    }

    /// Fills `cols` with the patches of the output pixels `pixels` of `x` (zeros for the padding): one
    /// copy per kernel row, its taps being consecutive pixels of one input row.
    fn im2col<F: Real>(&self, x: &Mat<F>, pixels: Range<usize>, cols: &mut [F]) {
        let (cin, run) = (self.input.channels, self.kernel * self.input.channels);
        let xs = x.as_slice();
        self.for_each_kernel_row(pixels, |start, input, taps| {
            let dst = &mut cols[start..start + run];
            match input {
                Some(offset) => {
                    let (inside, len) = (taps.start * cin..taps.end * cin, taps.len() * cin);
                    dst[..inside.start].fill(F::zero());
                    dst[inside.clone()].copy_from_slice(&xs[offset..offset + len]);
                    dst[inside.end..].fill(F::zero());
                }
                None => dst.fill(F::zero()),
            }
        });
    }

    /// Adds the patch cotangents `g_cols` of the output pixels `pixels` back onto the input pixels they
    /// were copied from.
    fn col2im_add<F: Real>(&self, g_cols: &[F], pixels: Range<usize>, g_x: &mut Mat<F>) {
        let cin = self.input.channels;
        let gx = g_x.as_mut_slice();
        self.for_each_kernel_row(pixels, |start, input, taps| {
            if let Some(offset) = input {
                let src = &g_cols[start + taps.start * cin..start + taps.end * cin];
                gx[offset..offset + src.len()].iter_mut().zip(src).for_each(|(a, b)| *a += *b);
            }
        });
    }

    /// Length of the workspace the passes need for `rows` stacked rows: the F(4x4, 3x3) passes' where
    /// they run (`winograd.rs`), the padded buffers at stride 1 (`padded_conv.rs`), otherwise one block
    /// of `cols` (forward), or a block of `cols` and one of their cotangents (reverse).
    pub fn workspace_len(&self, rows: usize) -> usize {
        if self.is_pointwise() {
            0
        } else if self.is_winograd() {
            self.winograd_workspace_len()
        } else if self.is_padded() {
            self.padded_workspace_len(rows)
        } else {
            2 * self.block_pixels().min(rows * self.output().pixels()) * self.patch()
        }
    }

    /// `y = cols W + b` (bias on the `n` primal rows), block by block of output pixels, or by the padded
    /// layout or F(4x4, 3x3) where they run; `workspace` holds [`Conv2d::workspace_len`] values.
    pub fn forward<F: Real>(&self, params: &[F], x: &Mat<F>, n: usize, y: &mut Mat<F>, workspace: &mut [F]) {
        let (weight, bias) = params.split_at(self.weight_len());
        let (out, patch, outs) = (self.output(), self.patch(), self.outputs);
        let pixels = x.rows() * out.pixels();
        y.resize(x.rows(), out.len());
        let w = (weight, outs, 1);
        if self.is_winograd() {
            self.winograd_forward(weight, x.as_slice(), y.as_mut_slice(), workspace);
        } else if self.is_padded() {
            self.padded_forward(weight, x.as_slice(), y.as_mut_slice(), workspace);
        } else if self.is_pointwise() {
            let y = (y.as_mut_slice(), outs, 1);
            F::gemm(pixels, patch, outs, F::one(), (x.as_slice(), patch, 1), w, F::zero(), y);
        } else {
            for start in (0..pixels).step_by(self.block_pixels()) {
                let end = (start + self.block_pixels()).min(pixels);
                let cols = &mut workspace[..(end - start) * patch];
                self.im2col(x, start..end, cols);
                let y = (&mut y.as_mut_slice()[start * outs..end * outs], outs, 1);
                F::gemm(end - start, patch, outs, F::one(), (cols, patch, 1), w, F::zero(), y);
            }
        }
        for pixel in y.as_mut_slice()[..n * out.len()].chunks_exact_mut(outs) {
            pixel.iter_mut().zip(bias).for_each(|(v, b)| *v += *b);
        }
    }

    /// `dW += cols^T g_y`, `db += sum_{primal pixels} g_y`, and when asked `g_x (+)= col2im(g_y W^T)`,
    /// block by block of output pixels (each block's `cols` built again from `x`), or by F(4x4, 3x3) or
    /// the padded layout where they run; `workspace` holds [`Conv2d::workspace_len`] values.
    #[allow(clippy::too_many_arguments)]
    pub fn reverse<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        x: &Mat<F>,
        n: usize,
        g_y: &Mat<F>,
        g_x: Option<InputCotangent<'_, F>>,
        workspace: &mut [F],
    ) {
        let (weight, patch, outs) = (&params[..self.weight_len()], self.patch(), self.outputs);
        let (g_weight, g_bias) = grad.split_at_mut(self.weight_len());
        let pixels = g_y.rows() * self.output().pixels();
        for pixel in g_y.as_slice()[..n * self.output().len()].chunks_exact(outs) {
            g_bias.iter_mut().zip(pixel).for_each(|(gb, g)| *gb += *g);
        }
        if self.is_winograd() {
            let g_x = g_x.map(|g| g.zeroed_for_adding().as_mut_slice());
            return self.winograd_reverse(weight, g_weight, x.as_slice(), g_y.as_slice(), g_x, workspace);
        }
        if self.is_padded() {
            let g_x = g_x.map(|InputCotangent { g, fresh }| (g.as_mut_slice(), fresh));
            return self.padded_reverse(weight, g_weight, x.as_slice(), g_y.as_slice(), g_x, workspace);
        }
        let w_t = (weight, 1, outs);
        if self.is_pointwise() {
            // dW (patch x outs) += x^T (patch x pixels) g_y (pixels x outs), summed over blocks of pixels
            // as the padded layout's is (faster than one product); g_x (+)= g_y W^T (beta = 0 when g_x
            // is fresh).
            for start in (0..pixels).step_by(SUM_BLOCK) {
                let end = (start + SUM_BLOCK).min(pixels);
                let xs = (&x.as_slice()[start * patch..end * patch], 1, patch);
                let g = (&g_y.as_slice()[start * outs..end * outs], outs, 1);
                F::gemm(patch, end - start, outs, F::one(), xs, g, F::one(), (&mut *g_weight, outs, 1));
            }
            if let Some(g_x) = g_x {
                let (beta, g) = (if g_x.fresh { F::zero() } else { F::one() }, (g_y.as_slice(), outs, 1));
                F::gemm(pixels, outs, patch, F::one(), g, w_t, beta, (g_x.g.as_mut_slice(), patch, 1));
            }
            return;
        }
        let mut g_x = g_x.map(InputCotangent::zeroed_for_adding);
        let block = self.block_pixels().min(pixels) * patch;
        let (cols, g_cols) = workspace[..2 * block].split_at_mut(block);
        for start in (0..pixels).step_by(self.block_pixels()) {
            let end = (start + self.block_pixels()).min(pixels);
            let (cols, g_cols) = (&mut cols[..(end - start) * patch], &mut g_cols[..(end - start) * patch]);
            self.im2col(x, start..end, cols);
            let g = (&g_y.as_slice()[start * outs..end * outs], outs, 1);
            let g_w = (&mut *g_weight, outs, 1);
            F::gemm(patch, end - start, outs, F::one(), (&*cols, 1, patch), g, F::one(), g_w);
            if let Some(g_x) = g_x.as_deref_mut() {
                F::gemm(end - start, outs, patch, F::one(), g, w_t, F::zero(), (&mut *g_cols, patch, 1));
                self.col2im_add(g_cols, start..end, g_x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::{check_against_finite_differences, GraphBuilder};
    use crate::testing::{assert_close, dot, normal_mat, test_rng};
    use rand_chacha::ChaCha8Rng;

    const SETTINGS: [(usize, usize); 4] = [(3, 1), (3, 2), (1, 1), (1, 2)];

    /// `y[r, oy, ox, o] = b_o [r primal] + sum_{ky, kx, c} W[(ky, kx, c), o] x[r, s oy + ky - k/2, s ox + kx - k/2, c]`.
    fn direct(conv: &Conv2d, params: &[f64], x: &Mat<f64>, n: usize) -> Mat<f64> {
        let (out, input, k) = (conv.output(), conv.input, conv.kernel as isize);
        let at = |r: usize, y: isize, xx: isize, c: usize| {
            let inside = (0..input.height as isize).contains(&y) && (0..input.width as isize).contains(&xx);
            if inside {
                x.at(r, (y as usize * input.width + xx as usize) * input.channels + c)
            } else {
                0.0
            }
        };
        Mat::from_fn(x.rows(), out.len(), |r, j| {
            let (pixel, o) = (j / out.channels, j % out.channels);
            let (oy, ox) = ((pixel / out.width) as isize, (pixel % out.width) as isize);
            let mut v = if r < n { params[conv.weight_len() + o] } else { 0.0 };
            for ky in 0..k {
                for kx in 0..k {
                    for c in 0..input.channels {
                        let w = params[(((ky * k + kx) as usize) * input.channels + c) * conv.outputs + o];
                        let s = conv.stride as isize;
                        v += w * at(r, s * oy + ky - k / 2, s * ox + kx - k / 2, c);
                    }
                }
            }
            v
        })
    }

    /// The parameters with the weights of `params` (all parameters or the weights alone) and a zero bias.
    fn without_bias(conv: &Conv2d, params: &[f64]) -> Vec<f64> {
        [&params[..conv.weight_len()], &vec![0.0; conv.outputs][..]].concat()
    }

    /// `y`, the output of one of the passes alone (which leaves the bias to its caller), against the
    /// direct sum without the bias; where `chosen` (the rule picks that pass), the convolution's forward
    /// pass against the direct sum with the bias on the `n` primal rows.
    fn assert_forward(
        conv: &Conv2d,
        (params, x, n): (&[f64], &Mat<f64>, usize),
        y: &[f64],
        chosen: bool,
        what: &str,
    ) {
        assert_close(y, direct(conv, &without_bias(conv, params), x, n).as_slice(), 1e-12, what);
        if chosen {
            let (mut y, mut workspace) = (Mat::default(), vec![0.0; conv.workspace_len(x.rows())]);
            conv.forward(params, x, n, &mut y, &mut workspace);
            let what = format!("{what}: the forward pass with its bias");
            assert_close(y.as_slice(), direct(conv, params, x, n).as_slice(), 1e-12, &what);
        }
    }

    /// With the bias zeroed the convolution is linear in `x` and in `W`, so its reverse pass at `g_y`
    /// must give `<dW, V> = <g_y, y_V(x)>` and `<g_x, u> = <g_y, y_W(u)>` for random `V` and `u`.
    fn assert_transposes(
        conv: &Conv2d,
        (weight, x, n): (&[f64], &Mat<f64>, usize),
        g_y: &Mat<f64>,
        (g_weight, g_x): (&[f64], &[f64]),
        rng: &mut ChaCha8Rng,
        what: &str,
    ) {
        let v = without_bias(conv, &normal_mat(1, conv.weight_len(), rng).into_vec());
        let want = dot(g_y.as_slice(), direct(conv, &v, x, n).as_slice());
        let got = dot(&g_weight[..conv.weight_len()], &v[..conv.weight_len()]);
        assert_close(&[got], &[want], 1e-10, &format!("{what}: <dW, V>"));
        let u = normal_mat(x.rows(), conv.input.len(), rng);
        let want = dot(g_y.as_slice(), direct(conv, &without_bias(conv, weight), &u, n).as_slice());
        assert_close(&[dot(g_x, u.as_slice())], &[want], 1e-10, &format!("{what}: <g_x, u>"));
    }

    #[test]
    fn values_match_the_direct_sum() {
        let mut rng = test_rng(5);
        for (kernel, stride) in SETTINGS {
            let conv = Conv2d { kernel, stride, input: Shape::new(5, 4, 3), outputs: 2 };
            let params: Vec<f64> = normal_mat(1, conv.param_len(), &mut rng).into_vec();
            let (n, x) = (2, normal_mat(6, conv.input.len(), &mut rng));
            let (mut y, mut workspace) = (Mat::default(), vec![0.0; conv.workspace_len(x.rows())]);
            conv.forward(&params, &x, n, &mut y, &mut workspace);
            let what = format!("{kernel}x{kernel} stride {stride}");
            assert_eq!(
                conv.output(),
                Shape::new(5usize.div_ceil(stride), 4usize.div_ceil(stride), 2),
                "{what}"
            );
            assert_close(y.as_slice(), direct(&conv, &params, &x, n).as_slice(), 1e-12, &what);
        }
    }

    #[test]
    fn passes_over_several_column_blocks_match_the_direct_sum_and_its_transposes() {
        // 64 input channels: a block holds 2^19 / 576 = 910 output pixels, so 4 rows of 16x16 (1024
        // pixels, stride 1) and 16 rows of 8x8 (stride 2) take two blocks each, the second partial. The
        // map is linear in x and in W, so with the bias zeroed: <dW, V> = <g_y, y_V(x)> and
        // <g_x, u> = <g_y, y_W(u)>. g_x starts with stale values and is fresh: it must be overwritten.
        let mut rng = test_rng(18);
        for (stride, rows) in [(1, 4), (2, 16)] {
            let conv = Conv2d { kernel: 3, stride, input: Shape::new(16, 16, 64), outputs: 2 };
            assert!(rows * conv.output().pixels() > conv.block_pixels(), "stride {stride}: one block");
            let params: Vec<f64> = normal_mat(1, conv.param_len(), &mut rng).into_vec();
            let (n, x) = (rows / 2, normal_mat(rows, conv.input.len(), &mut rng));
            let (mut y, mut workspace) = (Mat::default(), vec![0.0; conv.workspace_len(rows)]);
            conv.forward(&params, &x, n, &mut y, &mut workspace);
            let what = format!("stride {stride}");
            assert_close(y.as_slice(), direct(&conv, &params, &x, n).as_slice(), 1e-12, &what);
            let g_y = normal_mat(rows, conv.output().len(), &mut rng);
            let (mut grad, mut g_x) =
                (vec![0.0; conv.param_len()], normal_mat(rows, conv.input.len(), &mut rng));
            let g = InputCotangent { g: &mut g_x, fresh: true };
            conv.reverse(&params, &mut grad, &x, n, &g_y, Some(g), &mut workspace);
            assert_transposes(&conv, (&params, &x, n), &g_y, (&grad, g_x.as_slice()), &mut rng, &what);
        }
    }

    /// The padded-layout passes (`padded_conv.rs`), called directly whatever the image size: values
    /// against the direct sum (bias on the primal rows only), and the reverse pass against the transposes
    /// of the map (with the bias zeroed, `<dW, V> = <g_y, y_V(x)>` and `<g_x, u> = <g_y, y_W(u)>`); a
    /// fresh `g_x` holding stale values is overwritten, a non-fresh one is added to. 25 images of 20x20
    /// make a grid of 11 k pixels: two row blocks and eleven weight-gradient blocks.
    #[test]
    fn padded_passes_match_the_direct_sum_and_its_transposes() {
        let mut rng = test_rng(19);
        for (kernel, input, rows, n) in [
            (3, Shape::new(5, 4, 3), 4, 2),
            (5, Shape::new(6, 5, 2), 3, 3),
            (3, Shape::new(1, 1, 2), 2, 1),
            (3, Shape::new(20, 20, 2), 25, 12),
        ] {
            let conv = Conv2d { kernel, stride: 1, input, outputs: 3 };
            let what = format!("{kernel}x{kernel} on {input:?}");
            let params: Vec<f64> = normal_mat(1, conv.param_len(), &mut rng).into_vec();
            let weight = &params[..conv.weight_len()];
            let x = normal_mat(rows, input.len(), &mut rng);
            let mut workspace = vec![0.0; conv.padded_workspace_len(rows)];
            let mut y = vec![f64::NAN; rows * conv.output().len()];
            conv.padded_forward(weight, x.as_slice(), &mut y, &mut workspace);
            assert_forward(&conv, (&params, &x, n), &y, conv.is_padded(), &what);

            let g_y = normal_mat(rows, conv.output().len(), &mut rng);
            let stale = normal_mat(rows, input.len(), &mut rng);
            let (mut g_weight, mut g_x) = (vec![0.0; conv.weight_len()], stale.clone());
            let g_x_fresh = Some((g_x.as_mut_slice(), true));
            conv.padded_reverse(
                weight,
                &mut g_weight,
                x.as_slice(),
                g_y.as_slice(),
                g_x_fresh,
                &mut workspace,
            );
            assert_transposes(&conv, (weight, &x, n), &g_y, (&g_weight, g_x.as_slice()), &mut rng, &what);

            let mut added = stale.clone();
            let g_x_added = Some((added.as_mut_slice(), false));
            conv.padded_reverse(
                weight,
                &mut g_weight,
                x.as_slice(),
                g_y.as_slice(),
                g_x_added,
                &mut workspace,
            );
            let sum: Vec<f64> = stale.as_slice().iter().zip(g_x.as_slice()).map(|(a, b)| a + b).collect();
            assert_close(added.as_slice(), &sum, 1e-12, &format!("{what}: g_x added to"));
        }
    }

    /// The F(4x4, 3x3) passes (`winograd.rs`), called directly whatever the channels: values against the
    /// direct sum, and the reverse pass against the transposes of the map (as for the padded passes);
    /// `g_x` and `dW` are added to. 40 images of 16x16 and 60 of 10x10 with 4 channels make several
    /// blocks of tiles in both passes (at 10x10 a block ends inside a tile row); sides that are not a
    /// multiple of 4 leave the last tile row and column partly outside the image. Where the rule picks
    /// Winograd (16 or more input channels), the convolution's forward pass adds the bias on the primal
    /// rows only.
    #[test]
    fn winograd_passes_match_the_direct_sum_and_its_transposes() {
        let mut rng = test_rng(23);
        for (input, rows, n) in [
            (Shape::new(4, 6, 3), 3, 2),
            (Shape::new(2, 2, 1), 1, 1),
            (Shape::new(16, 16, 4), 40, 20),
            (Shape::new(10, 10, 4), 60, 30),
            (Shape::new(4, 4, 32), 3, 2),
            (Shape::new(5, 3, 2), 3, 2),
            (Shape::new(1, 1, 3), 2, 1),
            (Shape::new(7, 7, 16), 3, 2),
            (Shape::new(14, 14, 16), 2, 1),
        ] {
            let conv = Conv2d { kernel: 3, stride: 1, input, outputs: 5 };
            let what = format!("{input:?}");
            let params: Vec<f64> = normal_mat(1, conv.param_len(), &mut rng).into_vec();
            let weight = &params[..conv.weight_len()];
            let x = normal_mat(rows, input.len(), &mut rng);
            let mut workspace = vec![0.0; conv.winograd_workspace_len()];
            let mut y = vec![f64::NAN; rows * conv.output().len()];
            conv.winograd_forward(weight, x.as_slice(), &mut y, &mut workspace);
            assert_forward(&conv, (&params, &x, n), &y, conv.is_winograd(), &what);

            let g_y = normal_mat(rows, conv.output().len(), &mut rng);
            let mut g_weight = vec![0.0; conv.weight_len()];
            let mut g_x = vec![0.0; rows * input.len()];
            let (xs, gs) = (x.as_slice(), g_y.as_slice());
            conv.winograd_reverse(weight, &mut g_weight, xs, gs, Some(&mut g_x), &mut workspace);
            assert_transposes(&conv, (weight, &x, n), &g_y, (&g_weight, &g_x), &mut rng, &what);

            let stale = normal_mat(rows, input.len(), &mut rng);
            let (mut added, mut g_weight_again) = (stale.clone(), g_weight.clone());
            let g_x_added = Some(added.as_mut_slice());
            conv.winograd_reverse(weight, &mut g_weight_again, xs, gs, g_x_added, &mut workspace);
            let sum: Vec<f64> = stale.as_slice().iter().zip(&g_x).map(|(a, b)| a + b).collect();
            assert_close(added.as_slice(), &sum, 1e-12, &format!("{what}: g_x added to"));
            let twice: Vec<f64> = g_weight.iter().map(|g| 2.0 * g).collect();
            assert_close(&g_weight_again, &twice, 1e-12, &format!("{what}: dW added to"));
        }
    }

    /// F(4x4, 3x3) in f32 against the same passes in f64: the transforms (coefficients from 1/24 to 8)
    /// cost some of f32's precision. For the output, the weight gradient and the input cotangent of a
    /// 28x28 32 -> 32 convolution the largest error is 1.3e-5 to 2.9e-5 of the values' root mean square
    /// (the padded layout's direct products in f32: 1.3e-6 to 1.9e-6); bounded here at 6e-5.
    #[test]
    fn winograd_in_f32_stays_within_six_parts_in_a_hundred_thousand() {
        let mut rng = test_rng(5);
        let (input, rows) = (Shape::new(28, 28, 32), 4);
        let conv = Conv2d { kernel: 3, stride: 1, input, outputs: 32 };
        let weight: Vec<f64> =
            normal_mat(1, conv.weight_len(), &mut rng).as_slice().iter().map(|w| w / 17.0).collect();
        let (x, g_y) =
            (normal_mat(rows, input.len(), &mut rng), normal_mat(rows, conv.output().len(), &mut rng));
        let single = |v: &[f64]| -> Vec<f32> { v.iter().map(|&v| v as f32).collect() };
        let exact = winograd_passes(&conv, &weight, x.as_slice(), g_y.as_slice());
        let rounded =
            winograd_passes(&conv, &single(&weight), &single(x.as_slice()), &single(g_y.as_slice()));
        for ((what, got), want) in ["y", "dW", "g_x"].into_iter().zip(&rounded).zip(&exact) {
            let rms = (want.iter().map(|w| w * w).sum::<f64>() / want.len() as f64).sqrt();
            let error =
                got.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).abs()).fold(0.0, f64::max) / rms;
            assert!(
                error < 6e-5,
                "{what}: F(4x4, 3x3) in f32 off by {error:e} of the values' root mean square"
            );
        }
    }

    /// The output, weight gradient and input cotangent of the F(4x4, 3x3) passes.
    fn winograd_passes<F: Real>(conv: &Conv2d, weight: &[F], x: &[F], g_y: &[F]) -> [Vec<F>; 3] {
        let mut workspace = vec![F::zero(); conv.winograd_workspace_len()];
        let (mut y, mut g_weight, mut g_x) =
            (vec![F::zero(); g_y.len()], vec![F::zero(); weight.len()], vec![F::zero(); x.len()]);
        conv.winograd_forward(weight, x, &mut y, &mut workspace);
        conv.winograd_reverse(weight, &mut g_weight, x, g_y, Some(&mut g_x), &mut workspace);
        [y, g_weight, g_x]
    }

    #[test]
    fn the_padded_layout_and_winograd_are_chosen_where_they_pay() {
        let conv =
            |side, kernel, stride| Conv2d { kernel, stride, input: Shape::new(side, side, 8), outputs: 8 };
        assert!(conv(28, 3, 1).is_padded(), "28x28: 7.3% junk");
        assert!(!conv(14, 3, 1).is_padded(), "14x14: 14.8% junk");
        assert!(!conv(28, 3, 2).is_padded(), "stride 2");
        assert!(!conv(28, 1, 1).is_padded(), "1x1");
        let wide = |side, channels, outputs| Conv2d {
            kernel: 3,
            stride: 1,
            input: Shape::new(side, side, channels),
            outputs,
        };
        for side in [7, 14, 28] {
            assert!(wide(side, 16, 2).is_winograd(), "{side}x{side}: 16 inputs, 2 outputs");
            assert!(!wide(side, 12, 12).is_winograd(), "{side}x{side}: 12 inputs");
            assert!(!wide(side, 32, 1).is_winograd(), "{side}x{side}: 1 output");
        }
    }

    /// F(4x4, 3x3) in a graph, on sides that are and are not multiples of 4: tangent rows, bias and both
    /// reverse streams against finite differences.
    #[test]
    fn winograd_convolution_in_a_graph_matches_finite_differences() {
        for input in [Shape::new(6, 4, 16), Shape::new(5, 3, 16)] {
            let mut rng = test_rng(9);
            let mut b = GraphBuilder::<f64, _>::new(input, &mut rng);
            let x = b.input();
            b.conv2d("conv", x, 4, 3, 1).expect("valid conv");
            assert!(Conv2d { kernel: 3, stride: 1, input, outputs: 4 }.is_winograd());
            check_against_finite_differences(&b.finish(), 2, 1, 10);
        }
    }

    /// A 20x20 image (7.7% junk) takes the padded layout in the graph: tangent rows, bias and the
    /// reverse pass through both streams against finite differences.
    #[test]
    fn padded_convolution_in_a_graph_matches_finite_differences() {
        let mut rng = test_rng(7);
        let mut b = GraphBuilder::<f64, _>::new(Shape::new(20, 20, 2), &mut rng);
        let x = b.input();
        b.conv2d("conv", x, 2, 3, 1).expect("valid conv");
        assert!(Conv2d { kernel: 3, stride: 1, input: Shape::new(20, 20, 2), outputs: 2 }.is_padded());
        check_against_finite_differences(&b.finish(), 2, 1, 8);
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        for (kernel, stride) in SETTINGS {
            let mut rng = test_rng(6);
            let mut b = GraphBuilder::<f64, _>::new(Shape::new(5, 4, 2), &mut rng);
            let x = b.input();
            b.conv2d("conv", x, 3, kernel, stride).expect("valid conv");
            check_against_finite_differences(&b.finish(), 2, 2, 7);
        }
    }
}

//! 2-D convolution of channels-last images as one GEMM over the whole stacked batch (docs/math.md §8.8).
//!
//! im2col lays the `k x k` patch around every output pixel of every stacked row out as one row:
//! `cols` is `(rows H' W') x (k k C_in)`, columns ordered `(ky, kx, c_in)`. The weight `W` is
//! `(k k C_in) x C_out` in the same order, so `y = cols W` is the stacked output in channels-last
//! layout, primal and tangent rows alike; the bias touches the primal rows only. Reverse:
//! `dW += cols^T g_y`, `db += sum_{primal pixels} g_y`, `g_cols = g_y W^T`, scattered back (col2im,
//! `+=`). A 1x1 stride-1 convolution skips im2col: the input rows already are `cols`.

use super::cotangent::InputCotangent;
use super::shape::Shape;
use crate::linalg::{Mat, Real};
use std::ops::Range;

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

    /// Calls `visit(start, input, taps)` for every kernel row `ky` of every output pixel of `rows`
    /// stacked rows: the kernel row's `k C_in` values start at `start` in `cols`, and its taps `kx` in
    /// `taps` read the input pixels `(iy, ix0 ..)`, whose channels are consecutive in the channels-last
    /// input from `input`; taps outside `taps` (or all, for `None`) lie in the zero padding.
    #[inline(always)]
    fn for_each_kernel_row(&self, rows: usize, mut visit: impl FnMut(usize, Option<usize>, Range<usize>)) {
        let (out, cin, patch, k) = (self.output(), self.input.channels, self.patch(), self.kernel);
        let (pad, s) = (k / 2, self.stride);
        for r in 0..rows {
            for oy in 0..out.height {
                for ox in 0..out.width {
                    let p = (r * out.height + oy) * out.width + ox;
                    // Taps kx with 0 <= ox s + kx - pad < W.
                    let kx0 = pad.saturating_sub(ox * s);
                    let kx1 = (self.input.width + pad - ox * s).min(k);
                    for ky in 0..k {
                        let start = p * patch + ky * k * cin;
                        let iy = (oy * s + ky).checked_sub(pad).filter(|&iy| iy < self.input.height);
                        let input = iy.filter(|_| kx0 < kx1).map(|iy| {
                            let ix0 = ox * s + kx0 - pad;
                            r * self.input.len() + (iy * self.input.width + ix0) * cin
                        });
                        visit(start, input, kx0..kx1);
                    }
                }
            }
        }
    }

    /// Fills `cols` with the patches of the stacked rows of `x` (zeros for the padding): one copy per
    /// kernel row, its taps being consecutive pixels of one input row.
    fn im2col<F: Real>(&self, x: &Mat<F>, cols: &mut Mat<F>) {
        let (cin, run) = (self.input.channels, self.kernel * self.input.channels);
        cols.resize(x.rows() * self.output().pixels(), self.patch());
        let (xs, cs) = (x.as_slice(), cols.as_mut_slice());
        self.for_each_kernel_row(x.rows(), |start, input, taps| {
            let dst = &mut cs[start..start + run];
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

    /// Adds the patch cotangents `g_cols` back onto the input pixels they were copied from.
    fn col2im_add<F: Real>(&self, g_cols: &[F], g_x: &mut Mat<F>) {
        let (cin, rows) = (self.input.channels, g_x.rows());
        let gx = g_x.as_mut_slice();
        self.for_each_kernel_row(rows, |start, input, taps| {
            if let Some(offset) = input {
                let src = &g_cols[start + taps.start * cin..start + taps.end * cin];
                gx[offset..offset + src.len()].iter_mut().zip(src).for_each(|(a, b)| *a += *b);
            }
        });
    }

    /// Length of the workspace [`Conv2d::reverse`] needs for `rows` stacked rows (the patch cotangents).
    pub fn reverse_workspace_len(&self, rows: usize) -> usize {
        if self.is_pointwise() {
            0
        } else {
            rows * self.output().pixels() * self.patch()
        }
    }

    /// `y = cols W + b` (bias on the `n` primal rows); `cols` is kept for the reverse pass.
    pub fn forward<F: Real>(&self, params: &[F], x: &Mat<F>, n: usize, y: &mut Mat<F>, cols: &mut Mat<F>) {
        let (weight, bias) = params.split_at(self.weight_len());
        let (out, patch) = (self.output(), self.patch());
        let pixels = x.rows() * out.pixels();
        if !self.is_pointwise() {
            self.im2col(x, cols);
        }
        let a = if self.is_pointwise() { x.as_slice() } else { cols.as_slice() };
        y.resize(x.rows(), out.len());
        F::gemm(
            pixels,
            patch,
            self.outputs,
            F::one(),
            (a, patch, 1),
            (weight, self.outputs, 1),
            F::zero(),
            (y.as_mut_slice(), self.outputs, 1),
        );
        for pixel in y.as_mut_slice()[..n * out.len()].chunks_exact_mut(self.outputs) {
            pixel.iter_mut().zip(bias).for_each(|(v, b)| *v += *b);
        }
    }

    /// `dW += cols^T g_y`, `db += sum_{primal pixels} g_y`, and when asked `g_x (+)= col2im(g_y W^T)`;
    /// `g_cols` is workspace of [`Conv2d::reverse_workspace_len`] values, fully overwritten.
    #[allow(clippy::too_many_arguments)]
    pub fn reverse<F: Real>(
        &self,
        params: &[F],
        grad: &mut [F],
        x: &Mat<F>,
        n: usize,
        cols: &Mat<F>,
        g_y: &Mat<F>,
        g_x: Option<InputCotangent<'_, F>>,
        g_cols: &mut [F],
    ) {
        let (weight, patch, outs) = (&params[..self.weight_len()], self.patch(), self.outputs);
        let (g_weight, g_bias) = grad.split_at_mut(self.weight_len());
        let pixels = g_y.rows() * self.output().pixels();
        let a = if self.is_pointwise() { x.as_slice() } else { cols.as_slice() };
        // dW (patch x outs) += cols^T (patch x pixels) g_y (pixels x outs).
        F::gemm(
            patch,
            pixels,
            outs,
            F::one(),
            (a, 1, patch),
            (g_y.as_slice(), outs, 1),
            F::one(),
            (g_weight, outs, 1),
        );
        for pixel in g_y.as_slice()[..n * self.output().len()].chunks_exact(outs) {
            g_bias.iter_mut().zip(pixel).for_each(|(gb, g)| *gb += *g);
        }
        let Some(g_x) = g_x else { return };
        // g_cols (pixels x patch) = g_y (pixels x outs) W^T (outs x patch); pointwise: straight into g_x
        // (beta = 0 when g_x is fresh).
        let g = (g_y.as_slice(), outs, 1);
        if self.is_pointwise() {
            let beta = if g_x.fresh { F::zero() } else { F::one() };
            let target = (g_x.g.as_mut_slice(), patch, 1);
            F::gemm(pixels, outs, patch, F::one(), g, (weight, 1, outs), beta, target);
        } else {
            let g_cols = &mut g_cols[..pixels * patch];
            F::gemm(pixels, outs, patch, F::one(), g, (weight, 1, outs), F::zero(), (&mut *g_cols, patch, 1));
            self.col2im_add(g_cols, g_x.zeroed_for_adding());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::graph::network::{check_against_finite_differences, GraphBuilder};
    use crate::testing::{assert_close, normal_mat, test_rng};

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

    #[test]
    fn values_match_the_direct_sum() {
        let mut rng = test_rng(5);
        for (kernel, stride) in SETTINGS {
            let conv = Conv2d { kernel, stride, input: Shape::new(5, 4, 3), outputs: 2 };
            let params: Vec<f64> = normal_mat(1, conv.param_len(), &mut rng).into_vec();
            let (n, x) = (2, normal_mat(6, conv.input.len(), &mut rng));
            let (mut y, mut cols) = (Mat::default(), Mat::default());
            conv.forward(&params, &x, n, &mut y, &mut cols);
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

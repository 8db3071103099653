//! Stride-1 `k x k` convolutions as GEMMs on a zero-padded copy of the input, with no im2col
//! (docs/math.md §8.8).
//!
//! The padded layout stores the stacked images one after another, each row followed by `p = k / 2`
//! zero pixels (which are also the left padding of the next row) and each image by `p` zero rows (the
//! top padding of the next image), after `p` leading zero rows and `p` leading zero pixels. Then the `k`
//! taps of kernel row `ky` around any pixel `g` are the `k` consecutive pixels from `g + (ky - p) Wp - p`
//! (`Wp = W + p`), whose `k C` values are contiguous: kernel row `ky` of every patch is a row of one
//! strided view `A_ky` of the padded buffer (row stride `C`, rows overlapping). Over the grid of padded
//! pixels from the first image pixel to the last,
//!
//! `y = sum_ky A_ky W_ky`, `dW_ky += A_ky^T G`, `g_x = sum_ky B_ky V_ky`,
//!
//! with `W_ky` the rows of kernel row `ky` of `W`, `G` the output cotangent in the same layout (zero off
//! the images), `B_ky` the view of `G` from `g + (p - ky) Wp - p` and `V_ky` the transposed taps of kernel
//! row `ky` in reverse order (`V_ky[kx C_out + o, c] = W[(ky, k - 1 - kx, c), o]`). Grid pixels in the
//! padding are junk rows of the products, dropped when the grid is copied back: `(H + p)(W + p) / (H W)`
//! times the multiply-adds of the image pixels alone, in exchange for copying the input once instead of
//! `k^2` times.

use super::conv2d::Conv2d;
use crate::linalg::Real;
use std::ops::Range;

/// Where the stacked images sit in the padded buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PaddedLayout {
    /// Zero pixels after each row and zero rows after each image, `k / 2`.
    pad: usize,
    height: usize,
    width: usize,
    /// Stacked images.
    images: usize,
}

impl PaddedLayout {
    /// Pixels per padded row.
    fn row_pixels(&self) -> usize {
        self.width + self.pad
    }

    /// Padded index of pixel `(y, x)` of image `r`.
    fn pixel(&self, r: usize, y: usize, x: usize) -> usize {
        self.pad + self.row_pixels() * (self.pad + r * (self.height + self.pad) + y) + x
    }

    /// Pixels of the whole buffer (the trailing `p` zero pixels included).
    fn len(&self) -> usize {
        self.pad + self.row_pixels() * (self.pad + self.images * (self.height + self.pad)) + self.pad
    }

    /// The grid: padded pixels from the first image pixel to the last.
    fn grid(&self) -> Range<usize> {
        let last = self.pixel(self.images - 1, self.height - 1, self.width - 1);
        self.pixel(0, 0, 0)..last + 1
    }

    /// Calls `visit(padded, dense)` with the first pixel of every image row in the padded layout and in
    /// the dense stacked images.
    fn for_each_image_row(&self, mut visit: impl FnMut(usize, usize)) {
        for r in 0..self.images {
            for y in 0..self.height {
                visit(self.pixel(r, y, 0), (r * self.height + y) * self.width);
            }
        }
    }

    /// Writes the dense channels-last images `src` (`c` channels) into `dst` in this layout, zeros in
    /// the padding.
    fn pad_into<F: Real>(&self, src: &[F], c: usize, dst: &mut [F]) {
        let dst = &mut dst[..self.len() * c];
        let mut written = 0;
        self.for_each_image_row(|padded, dense| {
            dst[written * c..padded * c].fill(F::zero());
            let run = self.width * c;
            dst[padded * c..padded * c + run].copy_from_slice(&src[dense * c..dense * c + run]);
            written = padded + self.width;
        });
        dst[written * c..].fill(F::zero());
    }

    /// `dst = sum_ky S_ky M_ky` over the grid, a block of [`ROW_BLOCK`] grid pixels at a time: `S_ky` is
    /// the view of the padded buffer `src` (`c` channels a pixel) whose rows are the `k` consecutive
    /// pixels from `start(g, ky)` for grid pixel `g`, `M_ky` the `k c x co` block `ky` of `mats`, and
    /// `dst` holds `co` values per grid pixel.
    fn kernel_row_products<F: Real>(
        &self,
        k: usize,
        (src, c): (&[F], usize),
        start: impl Fn(usize, usize) -> usize,
        (mats, co): (&[F], usize),
        dst: &mut [F],
    ) {
        let (grid, run) = (self.grid(), k * c);
        for first in (grid.start..grid.end).step_by(ROW_BLOCK) {
            let last = (first + ROW_BLOCK).min(grid.end);
            let dst = &mut dst[(first - grid.start) * co..(last - grid.start) * co];
            for ky in 0..k {
                let s = (kernel_row_view(src, c, run, start(first, ky), last - first), c, 1);
                let m = (&mats[ky * run * co..(ky + 1) * run * co], co, 1);
                let beta = if ky == 0 { F::zero() } else { F::one() };
                F::gemm(last - first, run, co, F::one(), s, m, beta, (&mut *dst, co, 1));
            }
        }
    }
}

/// The values of `rows` overlapping rows of `run` values, `c` apart, from pixel `start` of a padded
/// buffer with `c` channels a pixel.
fn kernel_row_view<F>(src: &[F], c: usize, run: usize, start: usize, rows: usize) -> &[F] {
    &src[start * c..(start + rows - 1) * c + run]
}

/// The padded layout is used where its junk rows add at most `1 / JUNK_DIVISOR` to the multiply-adds,
/// `8 (H + p)(W + p) <= 9 H W`: a 28x28 image (7.3% junk with `p = 1`) but not 14x14 (14.8%) or 7x7
/// (31%). Measured on the MNIST U-Net's step at one thread: against im2col, the padded layout saves
/// about 26 ms a step at 28x28 and loses about 8 ms at 7x7, where im2col copies little and the junk
/// is a third of the products.
const JUNK_DIVISOR: usize = 8;

/// Grid pixels per block of the forward and input-cotangent products: the `k` products of a block
/// share its rows of the padded buffer and accumulate into the same block of the output, both in the
/// cache. Timing each product of the MNIST U-Net's step at one thread: about 244 -> 260 GFLOP/s on the
/// 28x28 convolution of 96 channels against one product over the whole grid (1024 and 2048 were slower).
const ROW_BLOCK: usize = 8192;

/// Pixels per block of the weight-gradient products, summed block by block (`dW_ky += A_ky^T G`, and the
/// 1x1 convolution's `x^T g_y`; the blocks do not depend on the thread count, so neither do the bits):
/// about 215 -> 230 GFLOP/s against one product over all pixels, measured as for [`ROW_BLOCK`], and the
/// U-Net step 3% faster with both blocks.
pub(super) const SUM_BLOCK: usize = 1024;

impl Conv2d {
    /// Whether the passes run on the padded layout: stride 1, a kernel wider than one pixel, and images
    /// large enough for the junk rows to cost little (see [`JUNK_DIVISOR`]).
    pub(super) fn is_padded(&self) -> bool {
        let (h, w, p) = (self.input.height, self.input.width, self.kernel / 2);
        self.stride == 1 && self.kernel > 1 && JUNK_DIVISOR * (h + p) * (w + p) <= (JUNK_DIVISOR + 1) * h * w
    }

    /// The padded layout of `images` stacked inputs (or outputs: same size at stride 1).
    fn layout(&self, images: usize) -> PaddedLayout {
        let (height, width) = (self.input.height, self.input.width);
        PaddedLayout { pad: self.kernel / 2, height, width, images }
    }

    /// Workspace of the padded passes for `images` stacked rows: the padded input, the padded output
    /// (or output cotangent), and the reordered weights `V`.
    pub(super) fn padded_workspace_len(&self, images: usize) -> usize {
        let len = self.layout(images).len();
        len * (self.input.channels + self.outputs) + self.weight_len()
    }

    /// `y = sum_ky A_ky W_ky` over the grid of the stacked images `x`, then the image pixels copied out of
    /// it (the caller adds the bias).
    pub(super) fn padded_forward<F: Real>(&self, weight: &[F], x: &[F], y: &mut [F], workspace: &mut [F]) {
        let layout = self.layout(x.len() / self.input.len());
        let (cin, outs, k, pad) = (self.input.channels, self.outputs, self.kernel, layout.pad);
        let (padded, rest) = workspace.split_at_mut(layout.len() * cin);
        layout.pad_into(x, cin, padded);
        let grid = layout.grid();
        let out_grid = &mut rest[..grid.len() * outs];
        let wp = layout.row_pixels();
        let start = |first: usize, ky: usize| first + ky * wp - pad * wp - pad;
        layout.kernel_row_products(k, (padded, cin), start, (weight, outs), out_grid);
        let run = self.input.width * outs;
        layout.for_each_image_row(|padded, dense| {
            y[dense * outs..][..run].copy_from_slice(&out_grid[(padded - grid.start) * outs..][..run]);
        });
    }

    /// `dW_ky += A_ky^T G` over the grid of the stacked images `x` and, when asked, `g_x (+)= sum_ky B_ky
    /// V_ky` at the image pixels (`fresh`: assign); the bias gradient is the caller's.
    pub(super) fn padded_reverse<F: Real>(
        &self,
        weight: &[F],
        g_weight: &mut [F],
        x: &[F],
        g_y: &[F],
        g_x: Option<(&mut [F], bool)>,
        workspace: &mut [F],
    ) {
        let layout = self.layout(x.len() / self.input.len());
        let (cin, outs, k, pad) = (self.input.channels, self.outputs, self.kernel, layout.pad);
        let (padded, rest) = workspace.split_at_mut(layout.len() * cin);
        let (g_padded, reordered) = rest.split_at_mut(layout.len() * outs);
        layout.pad_into(x, cin, padded);
        layout.pad_into(g_y, outs, g_padded);
        let grid = layout.grid();
        let wp = layout.row_pixels();
        let run = k * cin;
        for first in (grid.start..grid.end).step_by(SUM_BLOCK) {
            let last = (first + SUM_BLOCK).min(grid.end);
            let g = (&g_padded[first * outs..last * outs], outs, 1);
            for ky in 0..k {
                let a = kernel_row_view(padded, cin, run, first + ky * wp - pad * wp - pad, last - first);
                let a_t = (a, 1, cin);
                let g_w = (&mut g_weight[ky * run * outs..(ky + 1) * run * outs], outs, 1);
                F::gemm(run, last - first, outs, F::one(), a_t, g, F::one(), g_w);
            }
        }
        let Some((g_x, fresh)) = g_x else { return };
        // V_ky[kx C_out + o, c] = W[(ky, k - 1 - kx, c), o].
        let v = &mut reordered[..self.weight_len()];
        for ky in 0..k {
            for kx in 0..k {
                for o in 0..outs {
                    for c in 0..cin {
                        let tap = (ky * k + k - 1 - kx) * cin + c;
                        v[((ky * k + kx) * outs + o) * cin + c] = weight[tap * outs + o];
                    }
                }
            }
        }
        // The padded input is spent: its buffer takes the grid of g_x.
        let in_grid = &mut padded[..grid.len() * cin];
        let start = |first: usize, ky: usize| first + pad * wp - ky * wp - pad;
        layout.kernel_row_products(k, (g_padded, outs), start, (v, cin), in_grid);
        layout.for_each_image_row(|padded, dense| {
            let from = &in_grid[(padded - grid.start) * cin..][..self.input.width * cin];
            super::cotangent::put(fresh, &mut g_x[dense * cin..][..self.input.width * cin], from, |v| v);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every padded pixel is an image pixel exactly once or zero, and the neighbours `k / 2` away of an
    /// image pixel that fall outside its image land on zeros.
    #[test]
    fn the_padding_surrounds_every_image() {
        for (pad, height, width, images) in [(1, 3, 4, 2), (2, 2, 3, 3), (1, 1, 1, 1)] {
            let layout = PaddedLayout { pad, height, width, images };
            let c = 2;
            let src: Vec<f64> = (0..images * height * width * c).map(|v| v as f64 + 1.0).collect();
            let mut dst = vec![f64::NAN; layout.len() * c];
            layout.pad_into(&src, c, &mut dst);
            let mut seen: Vec<f64> = dst.iter().copied().filter(|v| *v != 0.0).collect();
            seen.sort_by(f64::total_cmp);
            assert_eq!(seen, src, "{layout:?}: the image values, once each, nothing else");
            let (h, w, p) = (height as isize, width as isize, pad as isize);
            for r in 0..images {
                for y in 0..h {
                    for x in 0..w {
                        let centre = layout.pixel(r, y as usize, x as usize) as isize;
                        for dy in -p..=p {
                            for dx in -p..=p {
                                let at = (centre + dy * layout.row_pixels() as isize + dx) as usize;
                                let inside = (0..h).contains(&(y + dy)) && (0..w).contains(&(x + dx));
                                let want = if inside {
                                    let dense = (r * height + (y + dy) as usize) * width + (x + dx) as usize;
                                    src[dense * c]
                                } else {
                                    0.0
                                };
                                assert_eq!(
                                    dst[at * c],
                                    want,
                                    "{layout:?}: image {r} ({y}, {x}) + ({dy}, {dx})"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

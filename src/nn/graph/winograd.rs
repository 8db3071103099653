//! The forward pass of a stride-1 3x3 convolution by Winograd's F(2x2, 3x3) (docs/math.md §8.8).
//!
//! Each 2x2 tile of output pixels is `Y = A^T [(G g G^T) . (B^T d B)] A` for every pair of channels,
//! with `d` the 4x4 input patch around the tile (zero outside the image), `g` the 3x3 kernel and
//!
//! `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`, `G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]`,
//! `A^T = [1 1 1 0; 0 1 -1 -1]`.
//!
//! Summed over input channels, the 16 elementwise products become 16 GEMMs `M_xi = V_xi U_xi` of the
//! transformed patches (`tiles x C_in`) by the transformed weights (`C_in x C_out`): 16 multiply-adds
//! per tile and channel pair instead of the 36 of the direct sum. Tiles run in blocks whose 16 matrices
//! stay in the cache between the transforms and the products. The reverse pass is the padded layout's
//! (`padded_conv.rs`): it depends on the input and the weights only, not on how the output was formed.

use super::conv2d::Conv2d;
use crate::linalg::Real;

/// Values of the transformed patches of a block of tiles (`16 tiles C_in`, 512 KB of f32).
const BLOCK_VALUES: usize = 1 << 17;

/// Input channels from which F(2x2, 3x3) beats im2col; twice as many are needed to beat the padded
/// layout. The forward pass of the MNIST U-Net's convolutions at batch 64, one thread, against what
/// they ran before: 14x14 32 -> 64 2.17 -> 1.72 ms, 64 -> 64 4.18 -> 2.65, 192 -> 64 12.4 -> 7.4 (im2col
/// before); 28x28 96 -> 32 14.2 -> 11.4 but 32 -> 32 4.42 -> 4.83 and 1 -> 32 0.57 -> 2.65 (padded
/// before): few input channels leave the 16 products too thin (`K = C_in`) to pay for the transforms.
const WINOGRAD_MIN_CHANNELS: usize = 32;

impl Conv2d {
    /// Whether the forward pass runs by F(2x2, 3x3): a 3x3 stride-1 convolution of images with even
    /// sides and enough input channels ([`WINOGRAD_MIN_CHANNELS`]).
    pub(super) fn is_winograd(&self) -> bool {
        let Self { kernel, stride, input, .. } = *self;
        let even = input.height.is_multiple_of(2) && input.width.is_multiple_of(2);
        let channels = if self.is_padded() { 2 * WINOGRAD_MIN_CHANNELS } else { WINOGRAD_MIN_CHANNELS };
        kernel == 3 && stride == 1 && even && input.channels >= channels
    }

    /// Workspace of the Winograd forward pass: the transformed weights, and a block of transformed
    /// patches and of products.
    pub(super) fn winograd_workspace_len(&self) -> usize {
        let (cin, outs) = (self.input.channels, self.outputs);
        16 * cin * outs + 16 * self.winograd_block_tiles() * (cin + outs)
    }

    /// Tiles per block.
    fn winograd_block_tiles(&self) -> usize {
        (BLOCK_VALUES / (16 * self.input.channels)).max(1)
    }

    /// `y = conv(x)` by F(2x2, 3x3) (the caller adds the bias).
    pub(super) fn winograd_forward<F: Real>(&self, weight: &[F], x: &[F], y: &mut [F], workspace: &mut [F]) {
        let (cin, outs) = (self.input.channels, self.outputs);
        let (h, w) = (self.input.height, self.input.width);
        let images = x.len() / self.input.len();
        let (tiles_y, tiles_x) = (h / 2, w / 2);
        let tiles = images * tiles_y * tiles_x;
        let (u, rest) = workspace.split_at_mut(16 * cin * outs);
        transform_weights(weight, cin, outs, u);
        let block = self.winograd_block_tiles();
        let (v, rest) = rest.split_at_mut(16 * block * cin);
        let m = &mut rest[..16 * block * outs];
        let (zeros, mut rows) = (vec![F::zero(); cin], vec![F::zero(); 16 * cin.max(outs)]);
        for first in (0..tiles).step_by(block) {
            let count = block.min(tiles - first);
            for t in 0..count {
                let (r, ty, tx) = tile_position(first + t, tiles_y, tiles_x);
                // d: the 4x4 patch from input pixel (2 ty - 1, 2 tx - 1), zero outside the image.
                let patch: [&[F]; 16] = std::array::from_fn(|ab| {
                    let iy = (2 * ty + ab / 4).checked_sub(1).filter(|&iy| iy < h);
                    let ix = (2 * tx + ab % 4).checked_sub(1).filter(|&ix| ix < w);
                    match (iy, ix) {
                        (Some(iy), Some(ix)) => &x[((r * h + iy) * w + ix) * cin..][..cin],
                        _ => &zeros[..],
                    }
                });
                input_transform(&patch, cin, &mut rows, v, |xi| (xi * block + t) * cin);
            }
            for xi in 0..16 {
                let a = (&v[xi * block * cin..(xi * block + count) * cin], cin, 1);
                let b = (&u[xi * cin * outs..(xi + 1) * cin * outs], outs, 1);
                let c = (&mut m[xi * block * outs..(xi * block + count) * outs], outs, 1);
                F::gemm(count, cin, outs, F::one(), a, b, F::zero(), c);
            }
            for t in 0..count {
                let (r, ty, tx) = tile_position(first + t, tiles_y, tiles_x);
                let product = |xi: usize| &m[(xi * block + t) * outs..][..outs];
                output_transform(product, outs, &mut rows, y, |dy, dx| {
                    ((r * h + 2 * ty + dy) * w + 2 * tx + dx) * outs
                });
            }
        }
    }
}

/// Image and tile row and column of tile `t`.
fn tile_position(t: usize, tiles_y: usize, tiles_x: usize) -> (usize, usize, usize) {
    (t / (tiles_y * tiles_x), t % (tiles_y * tiles_x) / tiles_x, t % tiles_x)
}

/// `U_xi[c, o] = (G g_{c o} G^T)_xi` for the weight `W[(ky, kx, c), o]`.
fn transform_weights<F: Real>(weight: &[F], cin: usize, outs: usize, u: &mut [F]) {
    let half = F::of(0.5);
    let g_rows = |k: [F; 3]| [k[0], half * (k[0] + k[1] + k[2]), half * (k[0] - k[1] + k[2]), k[2]];
    for c in 0..cin {
        for o in 0..outs {
            let tap = |ky: usize, kx: usize| weight[((ky * 3 + kx) * cin + c) * outs + o];
            // G g: 4 x 3, then (G g) G^T: 4 x 4.
            let columns = [0, 1, 2].map(|kx| g_rows([tap(0, kx), tap(1, kx), tap(2, kx)]));
            for a in 0..4 {
                let row = g_rows([columns[0][a], columns[1][a], columns[2][a]]);
                for (b, value) in row.into_iter().enumerate() {
                    u[((a * 4 + b) * cin + c) * outs + o] = value;
                }
            }
        }
    }
}

/// `B^T d B` of a 4x4 patch of `c`-channel pixels (row-major, one slice a pixel) into `dst` from `at(xi)` (`c` values each)
/// for the 16 positions `xi`; `rows` holds `16 c` values of workspace.
fn input_transform<F: Real>(
    patch: &[&[F]; 16],
    c: usize,
    rows: &mut [F],
    dst: &mut [F],
    at: impl Fn(usize) -> usize,
) {
    let px = |a: usize, b: usize| patch[a * 4 + b];
    // t = B^T d, row a, column b at rows[(a 4 + b) c ..].
    for b in 0..4 {
        let (d0, d1, d2, d3) = (px(0, b), px(1, b), px(2, b), px(3, b));
        let (t0, rest) = rows.split_at_mut(4 * c);
        let (t1, rest) = rest.split_at_mut(4 * c);
        let (t2, t3) = rest.split_at_mut(4 * c);
        let column = b * c..(b + 1) * c;
        for (k, ((o0, o1), (o2, o3))) in t0[column.clone()]
            .iter_mut()
            .zip(&mut t1[column.clone()])
            .zip(t2[column.clone()].iter_mut().zip(&mut t3[column]))
            .enumerate()
        {
            (*o0, *o1, *o2, *o3) = (d0[k] - d2[k], d1[k] + d2[k], d2[k] - d1[k], d1[k] - d3[k]);
        }
    }
    // (B^T d) B: the same combinations along each row.
    for a in 0..4 {
        let t = |b: usize| &rows[(a * 4 + b) * c..(a * 4 + b + 1) * c];
        let (t0, t1, t2, t3) = (t(0), t(1), t(2), t(3));
        let span = |xi: usize| at(xi)..at(xi) + c;
        dst[span(a * 4)].iter_mut().zip(t0.iter().zip(t2)).for_each(|(o, (p, q))| *o = *p - *q);
        dst[span(a * 4 + 1)].iter_mut().zip(t1.iter().zip(t2)).for_each(|(o, (p, q))| *o = *p + *q);
        dst[span(a * 4 + 2)].iter_mut().zip(t2.iter().zip(t1)).for_each(|(o, (p, q))| *o = *p - *q);
        dst[span(a * 4 + 3)].iter_mut().zip(t1.iter().zip(t3)).for_each(|(o, (p, q))| *o = *p - *q);
    }
}

/// `A^T M A` of one tile's 16 products (`product(xi)`: `c` values each) into `dst` from `at(dy, dx)`
/// for the tile's 2x2 output pixels; `rows` holds `8 c` values of workspace.
fn output_transform<'a, F: Real>(
    product: impl Fn(usize) -> &'a [F],
    c: usize,
    rows: &mut [F],
    dst: &mut [F],
    at: impl Fn(usize, usize) -> usize,
) {
    // r = A^T M: r0_b = m0b + m1b + m2b, r1_b = m1b - m2b - m3b, at rows[(dy 4 + b) c ..].
    for b in 0..4 {
        let (m0, m1, m2, m3) = (product(b), product(4 + b), product(8 + b), product(12 + b));
        let (r0, r1) = rows[..8 * c].split_at_mut(4 * c);
        let column = b * c..(b + 1) * c;
        for (k, (o0, o1)) in r0[column.clone()].iter_mut().zip(&mut r1[column]).enumerate() {
            (*o0, *o1) = (m0[k] + m1[k] + m2[k], m1[k] - m2[k] - m3[k]);
        }
    }
    for dy in 0..2 {
        let r = |b: usize| &rows[(dy * 4 + b) * c..(dy * 4 + b + 1) * c];
        let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
        let span = |dx: usize| at(dy, dx)..at(dy, dx) + c;
        dst[span(0)].iter_mut().enumerate().for_each(|(k, o)| *o = r0[k] + r1[k] + r2[k]);
        dst[span(1)].iter_mut().enumerate().for_each(|(k, o)| *o = r1[k] - r2[k] - r3[k]);
    }
}

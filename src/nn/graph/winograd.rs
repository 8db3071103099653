//! Both passes of a stride-1 3x3 convolution by Winograd's F(2x2, 3x3) (docs/math.md §8.8).
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
//! stay in the cache between the transforms and the products. The reverse pass transposes the three
//! steps: `gM = A g_Y A^T`, then `dU_xi += V_xi^T gM_xi` (summed over the tiles, `dW += G^T dU G` at
//! the end) and `g_d = B (gM_xi U_xi^T) B^T` added onto each tile's overlapping patch.

use super::conv2d::Conv2d;
use crate::linalg::Real;

/// Values of the transformed patches of a block of tiles (`16 tiles C_in`, 512 KB of f32).
const BLOCK_VALUES: usize = 1 << 17;

/// Values of the transformed patches and product cotangents of a block of tiles in the reverse pass
/// (`16 tiles (C_in + C_out)`, 1 MB of f32): the tiles are the inner dimension of the weight-gradient
/// products. Timing the reverse pass of the MNIST U-Net's convolutions at batch 64, one thread, blocks
/// of 2^16 to 2^20 values: the weight gradient alike, the input cotangent 10-30% slower at 2^16.
const REVERSE_BLOCK_VALUES: usize = 1 << 18;

/// Input channels from which F(2x2, 3x3) beats im2col; twice as many are needed to beat the padded
/// layout. The forward pass of the MNIST U-Net's convolutions at batch 64, one thread, against what
/// they ran before: 14x14 32 -> 64 2.17 -> 1.72 ms, 64 -> 64 4.18 -> 2.65, 192 -> 64 12.4 -> 7.4 (im2col
/// before); 28x28 96 -> 32 14.2 -> 11.4 but 32 -> 32 4.42 -> 4.83 and 1 -> 32 0.57 -> 2.65 (padded
/// before): few input channels leave the 16 products too thin (`K = C_in`) to pay for the transforms.
/// The reverse pass (weight gradient and input cotangent), the same way: 14x14 32 -> 64 4.34 -> 3.35 ms,
/// 64 -> 64 8.80 -> 6.40, 192 -> 64 26.6 -> 18.3, 28x28 96 -> 32 27.1 -> 22.2, but 32 -> 32 8.94 -> 9.72.
const WINOGRAD_MIN_CHANNELS: usize = 32;

impl Conv2d {
    /// Whether the passes run by F(2x2, 3x3): a 3x3 stride-1 convolution of images with even sides
    /// and enough input channels ([`WINOGRAD_MIN_CHANNELS`]).
    pub(super) fn is_winograd(&self) -> bool {
        let Self { kernel, stride, input, .. } = *self;
        let even = input.height.is_multiple_of(2) && input.width.is_multiple_of(2);
        let channels = if self.is_padded() { 2 * WINOGRAD_MIN_CHANNELS } else { WINOGRAD_MIN_CHANNELS };
        kernel == 3 && stride == 1 && even && input.channels >= channels
    }

    /// Workspace of the F(2x2, 3x3) passes: the transformed weights, and a block of transformed
    /// patches and of products (forward), or the transformed weights and their gradient, and a block of
    /// transformed patches and of product cotangents (reverse).
    pub(super) fn winograd_workspace_len(&self) -> usize {
        let (cin, outs) = (self.input.channels, self.outputs);
        let forward = 16 * cin * outs + 16 * self.winograd_block_tiles() * (cin + outs);
        let reverse = 32 * cin * outs + 16 * self.winograd_reverse_block_tiles() * (cin + outs);
        forward.max(reverse)
    }

    /// Tiles per block of the forward pass.
    fn winograd_block_tiles(&self) -> usize {
        (BLOCK_VALUES / (16 * self.input.channels)).max(1)
    }

    /// Tiles per block of the reverse pass: the block's tiles are the inner dimension of the
    /// weight-gradient products.
    fn winograd_reverse_block_tiles(&self) -> usize {
        (REVERSE_BLOCK_VALUES / (16 * (self.input.channels + self.outputs))).max(1)
    }

    /// The tiles of the stacked images in `x`.
    fn tiles<F>(&self, x: &[F]) -> Tiles {
        let images = x.len() / self.input.len();
        Tiles { images, height: self.input.height, width: self.input.width }
    }

    /// `y = conv(x)` by F(2x2, 3x3) (the caller adds the bias).
    pub(super) fn winograd_forward<F: Real>(&self, weight: &[F], x: &[F], y: &mut [F], workspace: &mut [F]) {
        let (cin, outs, tiles) = (self.input.channels, self.outputs, self.tiles(x));
        let (u, rest) = workspace.split_at_mut(16 * cin * outs);
        transform_weights(weight, cin, outs, u);
        let block = self.winograd_block_tiles();
        let (v, rest) = rest.split_at_mut(16 * block * cin);
        let m = &mut rest[..16 * block * outs];
        let (zeros, mut rows) = (vec![F::zero(); cin], vec![F::zero(); 16 * cin.max(outs)]);
        for first in (0..tiles.len()).step_by(block) {
            let count = block.min(tiles.len() - first);
            for t in 0..count {
                tiles.transform_patch(x, first + t, cin, &zeros, &mut rows, v, |xi| (xi * block + t) * cin);
            }
            for xi in 0..16 {
                let a = (&v[xi * block * cin..(xi * block + count) * cin], cin, 1);
                let b = (&u[xi * cin * outs..(xi + 1) * cin * outs], outs, 1);
                let c = (&mut m[xi * block * outs..(xi * block + count) * outs], outs, 1);
                F::gemm(count, cin, outs, F::one(), a, b, F::zero(), c);
            }
            for t in 0..count {
                let (product, pixels) =
                    (|xi: usize| &m[(xi * block + t) * outs..][..outs], tiles.output_pixels(first + t));
                output_transform(product, outs, &mut rows, y, |dy, dx| pixels[2 * dy + dx] * outs);
            }
        }
    }

    /// The reverse pass of [`Conv2d::winograd_forward`] (the caller takes the bias gradient): with
    /// `gM = A g_Y A^T` for every tile and output channel,
    ///
    /// `dU_xi += V_xi^T gM_xi`, then `dW += G^T dU G`, and `g_d = B (gM_xi U_xi^T) B^T` added onto the
    /// 16 input pixels of each tile's patch (`g_x` is zero or holds earlier cotangents; patches overlap).
    pub(super) fn winograd_reverse<F: Real>(
        &self,
        weight: &[F],
        g_weight: &mut [F],
        x: &[F],
        g_y: &[F],
        mut g_x: Option<&mut [F]>,
        workspace: &mut [F],
    ) {
        let (cin, outs, tiles) = (self.input.channels, self.outputs, self.tiles(x));
        let (u, rest) = workspace.split_at_mut(16 * cin * outs);
        let (g_u, rest) = rest.split_at_mut(16 * cin * outs);
        if g_x.is_some() {
            transform_weights(weight, cin, outs, u);
        }
        g_u.fill(F::zero());
        let block = self.winograd_reverse_block_tiles();
        let (v, rest) = rest.split_at_mut(16 * block * cin);
        let g_m = &mut rest[..16 * block * outs];
        let (zeros, mut rows) = (vec![F::zero(); cin], vec![F::zero(); 16 * cin.max(outs)]);
        for first in (0..tiles.len()).step_by(block) {
            let count = block.min(tiles.len() - first);
            for t in 0..count {
                tiles.transform_patch(x, first + t, cin, &zeros, &mut rows, v, |xi| (xi * block + t) * cin);
                let pixels = tiles.output_pixels(first + t);
                let g_tile: [&[F]; 4] = std::array::from_fn(|d| &g_y[pixels[d] * outs..][..outs]);
                output_transform_adjoint(&g_tile, outs, &mut rows, g_m, |xi| (xi * block + t) * outs);
            }
            for xi in 0..16 {
                let v_xi = &mut v[xi * block * cin..(xi * block + count) * cin];
                let g_m_xi = (&g_m[xi * block * outs..(xi * block + count) * outs], outs, 1);
                let g_u_xi = (&mut g_u[xi * cin * outs..(xi + 1) * cin * outs], outs, 1);
                F::gemm(cin, count, outs, F::one(), (&*v_xi, 1, cin), g_m_xi, F::one(), g_u_xi);
                if g_x.is_some() {
                    // The patches are spent: their block takes gV_xi = gM_xi U_xi^T.
                    let u_t = (&u[xi * cin * outs..(xi + 1) * cin * outs], 1, outs);
                    F::gemm(count, outs, cin, F::one(), g_m_xi, u_t, F::zero(), (v_xi, cin, 1));
                }
            }
            if let Some(g_x) = g_x.as_deref_mut() {
                for t in 0..count {
                    let g_v = |xi: usize| &v[(xi * block + t) * cin..][..cin];
                    tiles.add_patch_cotangent(g_v, first + t, cin, &mut rows, g_x);
                }
            }
        }
        transform_weight_gradient(g_u, cin, outs, g_weight);
    }
}

/// The 2x2 output tiles of stacked images with even sides.
struct Tiles {
    images: usize,
    height: usize,
    width: usize,
}

impl Tiles {
    fn len(&self) -> usize {
        self.images * self.height * self.width / 4
    }

    /// Image, tile row and tile column of tile `t`.
    fn position(&self, t: usize) -> (usize, usize, usize) {
        let (per_row, per_image) = (self.width / 2, self.height * self.width / 4);
        (t / per_image, t % per_image / per_row, t % per_row)
    }

    /// Stacked pixels of tile `t`, `(dy, dx)` at `2 dy + dx`.
    fn output_pixels(&self, t: usize) -> [usize; 4] {
        let (r, ty, tx) = self.position(t);
        std::array::from_fn(|d| (r * self.height + 2 * ty + d / 2) * self.width + 2 * tx + d % 2)
    }

    /// Stacked pixels of the 4x4 patch of tile `t` (from image pixel `(2 ty - 1, 2 tx - 1)`), `(a, b)`
    /// at `4 a + b`, `None` outside the image.
    fn patch_pixels(&self, t: usize) -> [Option<usize>; 16] {
        let (r, ty, tx) = self.position(t);
        std::array::from_fn(|ab| {
            let iy = (2 * ty + ab / 4).checked_sub(1).filter(|&iy| iy < self.height)?;
            let ix = (2 * tx + ab % 4).checked_sub(1).filter(|&ix| ix < self.width)?;
            Some((r * self.height + iy) * self.width + ix)
        })
    }

    /// `B^T d B` of tile `t`'s patch of the `c`-channel images `x` into `dst` from `at(xi)` (see
    /// [`input_transform`]); `zeros` holds `c` zeros.
    #[allow(clippy::too_many_arguments)]
    fn transform_patch<F: Real>(
        &self,
        x: &[F],
        t: usize,
        c: usize,
        zeros: &[F],
        rows: &mut [F],
        dst: &mut [F],
        at: impl Fn(usize) -> usize,
    ) {
        let pixels = self.patch_pixels(t);
        let patch: [&[F]; 16] = std::array::from_fn(|ab| match pixels[ab] {
            Some(p) => &x[p * c..][..c],
            None => zeros,
        });
        input_transform(&patch, c, rows, dst, at);
    }

    /// `g_x += B g_V B^T` over the pixels of tile `t`'s patch that lie in the image, `g_v(xi)` holding
    /// the `c` values of position `xi`; `rows` holds `16 c` values of workspace.
    fn add_patch_cotangent<'a, F: Real>(
        &self,
        g_v: impl Fn(usize) -> &'a [F],
        t: usize,
        c: usize,
        rows: &mut [F],
        g_x: &mut [F],
    ) {
        // The adjoint of input_transform's combinations (u0 - u2, u1 + u2, u2 - u1, u1 - u3), along
        // each row first: s[a][j] at rows[(a 4 + j) c ..].
        for a in 0..4 {
            let (v0, v1, v2, v3) = (g_v(a * 4), g_v(a * 4 + 1), g_v(a * 4 + 2), g_v(a * 4 + 3));
            let (s0, rest) = rows[a * 4 * c..(a + 1) * 4 * c].split_at_mut(c);
            let (s1, rest) = rest.split_at_mut(c);
            let (s2, s3) = rest.split_at_mut(c);
            for (k, ((o0, o1), (o2, o3))) in s0.iter_mut().zip(s1).zip(s2.iter_mut().zip(s3)).enumerate() {
                (*o0, *o1, *o2, *o3) = (v0[k], v1[k] - v2[k] + v3[k], v1[k] + v2[k] - v0[k], -v3[k]);
            }
        }
        // Then down each column, added onto the patch's pixels that lie in the image.
        let pixels = self.patch_pixels(t);
        for j in 0..4 {
            let s = |a: usize| &rows[(a * 4 + j) * c..(a * 4 + j + 1) * c];
            let (s0, s1, s2, s3) = (s(0), s(1), s(2), s(3));
            let pixel = |a: usize| pixels[a * 4 + j].map(|p| p * c..(p + 1) * c);
            if let Some(span) = pixel(0) {
                g_x[span].iter_mut().zip(s0).for_each(|(g, v)| *g += *v);
            }
            if let Some(span) = pixel(1) {
                g_x[span]
                    .iter_mut()
                    .zip(s1.iter().zip(s2).zip(s3))
                    .for_each(|(g, ((p, q), r))| *g += *p - *q + *r);
            }
            if let Some(span) = pixel(2) {
                g_x[span]
                    .iter_mut()
                    .zip(s1.iter().zip(s2).zip(s0))
                    .for_each(|(g, ((p, q), r))| *g += *p + *q - *r);
            }
            if let Some(span) = pixel(3) {
                g_x[span].iter_mut().zip(s3).for_each(|(g, v)| *g -= *v);
            }
        }
    }
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

/// The adjoint of [`output_transform`]: `gM = A g_Y A^T` of one tile's 2x2 output cotangents
/// (`g_tile[2 dy + dx]`, `c` values each) into `dst` from `at(xi)` for the 16 positions `xi`; `rows`
/// holds `8 c` values of workspace.
fn output_transform_adjoint<F: Real>(
    g_tile: &[&[F]; 4],
    c: usize,
    rows: &mut [F],
    dst: &mut [F],
    at: impl Fn(usize) -> usize,
) {
    // The adjoint of (m0 + m1 + m2, m1 - m2 - m3) is (g0, g0 + g1, g0 - g1, -g1), along each output row
    // first: s[dy][b] at rows[(dy 4 + b) c ..].
    for dy in 0..2 {
        let (g0, g1) = (g_tile[dy * 2], g_tile[dy * 2 + 1]);
        let (s0, rest) = rows[dy * 4 * c..(dy + 1) * 4 * c].split_at_mut(c);
        let (s1, rest) = rest.split_at_mut(c);
        let (s2, s3) = rest.split_at_mut(c);
        for (k, ((o0, o1), (o2, o3))) in s0.iter_mut().zip(s1).zip(s2.iter_mut().zip(s3)).enumerate() {
            (*o0, *o1, *o2, *o3) = (g0[k], g0[k] + g1[k], g0[k] - g1[k], -g1[k]);
        }
    }
    // Then down each column.
    for b in 0..4 {
        let (s0, s1) = (&rows[b * c..(b + 1) * c], &rows[(4 + b) * c..(5 + b) * c]);
        let span = |xi: usize| at(xi)..at(xi) + c;
        dst[span(b)].copy_from_slice(s0);
        dst[span(4 + b)].iter_mut().zip(s0.iter().zip(s1)).for_each(|(o, (p, q))| *o = *p + *q);
        dst[span(8 + b)].iter_mut().zip(s0.iter().zip(s1)).for_each(|(o, (p, q))| *o = *p - *q);
        dst[span(12 + b)].iter_mut().zip(s1).for_each(|(o, q)| *o = -*q);
    }
}

/// The adjoint of [`transform_weights`]: `dW[(ky, kx, c), o] += (G^T dU_{c o} G)[ky, kx]`.
fn transform_weight_gradient<F: Real>(g_u: &[F], cin: usize, outs: usize, g_weight: &mut [F]) {
    let half = F::of(0.5);
    // The adjoint of g_rows: (u0 + (u1 + u2) / 2, (u1 - u2) / 2, (u1 + u2) / 2 + u3).
    let g_rows_adjoint =
        |u: [F; 4]| [u[0] + half * (u[1] + u[2]), half * (u[1] - u[2]), half * (u[1] + u[2]) + u[3]];
    for c in 0..cin {
        for o in 0..outs {
            let at = |a: usize, b: usize| g_u[((a * 4 + b) * cin + c) * outs + o];
            // dU G (4 x 3), then G^T (dU G) (3 x 3).
            let rows = [0, 1, 2, 3].map(|a| g_rows_adjoint([at(a, 0), at(a, 1), at(a, 2), at(a, 3)]));
            for kx in 0..3 {
                let column = g_rows_adjoint([rows[0][kx], rows[1][kx], rows[2][kx], rows[3][kx]]);
                for (ky, value) in column.into_iter().enumerate() {
                    g_weight[((ky * 3 + kx) * cin + c) * outs + o] += value;
                }
            }
        }
    }
}

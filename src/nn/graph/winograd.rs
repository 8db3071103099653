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
//! the end) and `g_d = B (gM_xi U_xi^T) B^T` added onto each tile's overlapping patch. The patch
//! transforms are split into rows and columns, the row half done once per row of tiles ([`PatchRows`]).

use super::conv2d::Conv2d;
use crate::linalg::Real;

/// Values of the transformed patches of a block of tiles (`16 tiles C_in`, 512 KB of f32), unless that
/// is fewer than [`MIN_BLOCK_TILES`] tiles.
const BLOCK_VALUES: usize = 1 << 17;

/// Values of the transformed patches and product cotangents of a block of tiles in the reverse pass
/// (`16 tiles (C_in + C_out)`, 1 MB of f32): the tiles are the inner dimension of the weight-gradient
/// products.
const REVERSE_BLOCK_VALUES: usize = 1 << 18;

/// Fewest tiles in a block, whatever the channels: the tiles are the rows of the forward and
/// input-cotangent products and the inner dimension of the weight-gradient ones, which run far below
/// the GEMM's peak when thin. Forward / reverse at batch 64, one thread, medians of 3 interleaved runs,
/// against blocks sized by the values alone: 28x28 96 -> 32 11.4 / 22.9 -> 9.9 / 21.5 ms, 16 -> 16
/// 1.89 / 4.20 -> 1.58 / 3.89, 14x14 192 -> 64 7.0 / 17.1 -> 7.1 / 15.8, 7x7 128 -> 128 3.07 / 6.76 ->
/// 2.96 / 6.31; 28x28 32 -> 32 (256 tiles either way) unchanged. Larger blocks of values instead (2^19
/// forward, 2^19 and 2^20 reverse) made the reverse pass of 28x28 32 -> 32 15-25% slower.
const MIN_BLOCK_TILES: usize = 256;

/// Input channels from which F(2x2, 3x3) beats im2col and the padded layout: with fewer, the 16
/// forward products are too thin (`K = C_in`) to pay for the transforms. Forward and reverse pass
/// (weight gradient and input cotangent) at batch 64, one thread, against the padded layout (28x28) or
/// im2col (14x14): 28x28 32 -> 32 4.69 -> 3.04 ms and 9.00 -> 8.35, 96 -> 32 11.2 -> 8.7 and 24.8 -> 19.9,
/// 16 -> 16 2.11 -> 1.51 and 4.21 -> 3.76, 14x14 192 -> 64 12.4 -> 5.9 and 26.6 -> 15.5, 16 -> 16 0.67 ->
/// 0.37 and 1.20 -> 0.92, but 28x28 8 -> 8 1.18 -> 1.42 and 2.49 -> 2.96, 1 -> 32 0.62 -> 2.16.
const WINOGRAD_MIN_INPUTS: usize = 16;

/// Output channels from which F(2x2, 3x3) pays: 28x28 32 -> 4 4.24 -> 2.85 ms and 5.09 -> 4.46, but
/// 32 -> 2 4.06 -> 2.73 and 4.93 -> 6.52, 32 -> 1 0.95 -> 1.02 and 2.41 -> 2.87 (as for
/// [`WINOGRAD_MIN_INPUTS`]): the input cotangent's 16 products have `K = C_out`.
const WINOGRAD_MIN_OUTPUTS: usize = 4;

impl Conv2d {
    /// Whether the passes run by F(2x2, 3x3): a 3x3 stride-1 convolution with enough input and output
    /// channels ([`WINOGRAD_MIN_INPUTS`], [`WINOGRAD_MIN_OUTPUTS`]). Odd sides waste the part of the last
    /// tile row and column outside the image, and still pay: 7x7 128 -> 128 forward 4.17 -> 3.04 ms,
    /// reverse 8.71 -> 6.97 against im2col (as for [`WINOGRAD_MIN_INPUTS`]).
    pub(super) fn is_winograd(&self) -> bool {
        let Self { kernel, stride, input, outputs } = *self;
        kernel == 3 && stride == 1 && input.channels >= WINOGRAD_MIN_INPUTS && outputs >= WINOGRAD_MIN_OUTPUTS
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

    /// Tiles per block of the forward pass ([`BLOCK_VALUES`], [`MIN_BLOCK_TILES`]).
    fn winograd_block_tiles(&self) -> usize {
        (BLOCK_VALUES / (16 * self.input.channels)).max(MIN_BLOCK_TILES)
    }

    /// Tiles per block of the reverse pass ([`REVERSE_BLOCK_VALUES`], [`MIN_BLOCK_TILES`]).
    fn winograd_reverse_block_tiles(&self) -> usize {
        (REVERSE_BLOCK_VALUES / (16 * (self.input.channels + self.outputs))).max(MIN_BLOCK_TILES)
    }

    /// The tiles of the stacked images in `x`.
    fn tiles<F>(&self, x: &[F]) -> Tiles {
        let images = x.len() / self.input.len();
        Tiles { images, height: self.input.height, width: self.input.width }
    }

    /// `y = conv(x)` by F(2x2, 3x3) (the caller adds the bias). The block's transformed patches `V`
    /// and products `M` are stored tile by tile (`V[t, xi, c]`, `M[t, xi, o]`), so each GEMM reads and
    /// writes rows `16 C` apart.
    pub(super) fn winograd_forward<F: Real>(&self, weight: &[F], x: &[F], y: &mut [F], workspace: &mut [F]) {
        let (cin, outs, tiles) = (self.input.channels, self.outputs, self.tiles(x));
        let (u, rest) = workspace.split_at_mut(16 * cin * outs);
        transform_weights(weight, cin, outs, u);
        let block = self.winograd_block_tiles();
        let (v, rest) = rest.split_at_mut(16 * block * cin);
        let m = &mut rest[..16 * block * outs];
        let (mut patches, mut edge) = (PatchRows::new(&tiles, cin), vec![F::zero(); 4 * outs]);
        for first in (0..tiles.len()).step_by(block) {
            let count = block.min(tiles.len() - first);
            for (t, v_t) in (first..first + count).zip(v.chunks_exact_mut(16 * cin)) {
                patches.transform(&tiles, x, t, v_t);
            }
            for xi in 0..16 {
                let a = (&v[xi * cin..count * 16 * cin], 16 * cin, 1);
                let b = (&u[xi * cin * outs..(xi + 1) * cin * outs], outs, 1);
                let c = (&mut m[xi * outs..count * 16 * outs], 16 * outs, 1);
                F::gemm(count, cin, outs, F::one(), a, b, F::zero(), c);
            }
            for (t, m_t) in (first..first + count).zip(m.chunks_exact(16 * outs)) {
                let pixels = tiles.output_pixels(t);
                if let [Some(p00), Some(_), Some(p10), Some(_)] = pixels {
                    let (top, bottom) = y.split_at_mut(p10 * outs);
                    output_transform(m_t, outs, &mut top[p00 * outs..][..2 * outs], &mut bottom[..2 * outs]);
                } else {
                    // A tile past the image's last row or column: its pixels inside are copied out.
                    let (top, bottom) = edge.split_at_mut(2 * outs);
                    output_transform(m_t, outs, top, bottom);
                    for (d, p) in pixels.into_iter().enumerate() {
                        if let Some(p) = p {
                            y[p * outs..(p + 1) * outs].copy_from_slice(&edge[d * outs..(d + 1) * outs]);
                        }
                    }
                }
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
        let (mut patches, mut cotangents) = (PatchRows::new(&tiles, cin), PatchRows::new(&tiles, cin));
        let mut edge = vec![F::zero(); 4 * outs];
        for first in (0..tiles.len()).step_by(block) {
            let count = block.min(tiles.len() - first);
            let tile_blocks = v.chunks_exact_mut(16 * cin).zip(g_m.chunks_exact_mut(16 * outs));
            for (t, (v_t, g_m_t)) in (first..first + count).zip(tile_blocks) {
                patches.transform(&tiles, x, t, v_t);
                let pixels = tiles.output_pixels(t);
                if let [Some(p00), Some(_), Some(p10), Some(_)] = pixels {
                    let (top, bottom) = (&g_y[p00 * outs..][..2 * outs], &g_y[p10 * outs..][..2 * outs]);
                    output_transform_adjoint(top, bottom, outs, g_m_t);
                } else {
                    // A tile past the image's last row or column: zero cotangents outside.
                    for (d, p) in pixels.into_iter().enumerate() {
                        let e = &mut edge[d * outs..(d + 1) * outs];
                        match p {
                            Some(p) => e.copy_from_slice(&g_y[p * outs..(p + 1) * outs]),
                            None => e.fill(F::zero()),
                        }
                    }
                    output_transform_adjoint(&edge[..2 * outs], &edge[2 * outs..], outs, g_m_t);
                }
            }
            for xi in 0..16 {
                let g_m_xi = (&g_m[xi * outs..count * 16 * outs], 16 * outs, 1);
                let g_u_xi = (&mut g_u[xi * cin * outs..(xi + 1) * cin * outs], outs, 1);
                let v_xi_t = (&v[xi * cin..count * 16 * cin], 1, 16 * cin);
                F::gemm(cin, count, outs, F::one(), v_xi_t, g_m_xi, F::one(), g_u_xi);
                if g_x.is_some() {
                    // The patches are spent: their block takes gV_xi = gM_xi U_xi^T.
                    let u_t = (&u[xi * cin * outs..(xi + 1) * cin * outs], 1, outs);
                    let g_v = (&mut v[xi * cin..count * 16 * cin], 16 * cin, 1);
                    F::gemm(count, outs, cin, F::one(), g_m_xi, u_t, F::zero(), g_v);
                }
            }
            if let Some(g_x) = g_x.as_deref_mut() {
                for (t, g_v_t) in (first..first + count).zip(v.chunks_exact(16 * cin)) {
                    cotangents.add_cotangent(&tiles, g_x, t, g_v_t);
                }
            }
        }
        if let Some(g_x) = g_x {
            cotangents.flush_cotangent(&tiles, g_x);
        }
        transform_weight_gradient(g_u, cin, outs, g_weight);
    }
}

/// The 2x2 output tiles of stacked images, numbered image by image, row by row; with an odd side the
/// last tile row or column reaches one pixel past the image.
struct Tiles {
    images: usize,
    height: usize,
    width: usize,
}

impl Tiles {
    /// Tile rows per image.
    fn rows_per_image(&self) -> usize {
        self.height.div_ceil(2)
    }

    /// Tiles per tile row.
    fn per_row(&self) -> usize {
        self.width.div_ceil(2)
    }

    fn len(&self) -> usize {
        self.images * self.rows_per_image() * self.per_row()
    }

    /// Tile row (over all images) and tile column of tile `t`.
    fn row_and_column(&self, t: usize) -> (usize, usize) {
        (t / self.per_row(), t % self.per_row())
    }

    /// Stacked pixels of tile `t`, `(dy, dx)` at `2 dy + dx`, `None` outside the image.
    fn output_pixels(&self, t: usize) -> [Option<usize>; 4] {
        let (row, tx) = self.row_and_column(t);
        let (r, ty) = (row / self.rows_per_image(), row % self.rows_per_image());
        std::array::from_fn(|d| {
            let (oy, ox) = (2 * ty + d / 2, 2 * tx + d % 2);
            (oy < self.height && ox < self.width).then(|| (r * self.height + oy) * self.width + ox)
        })
    }

    /// Pixels of a row of [`PatchRows`]: the image's columns `-1 ..= 2 per_row` (`W + 2`, or `W + 3`
    /// for an odd `W`).
    fn patch_row_pixels(&self) -> usize {
        2 * self.per_row() + 2
    }

    /// Stacked pixel starting input row `i` (image row `2 ty - 1 + i`) of the patches of tile row
    /// `row`, `None` outside the image.
    fn patch_row(&self, row: usize, i: usize) -> Option<usize> {
        let (r, ty) = (row / self.rows_per_image(), row % self.rows_per_image());
        let iy = (2 * ty + i).checked_sub(1).filter(|&iy| iy < self.height)?;
        Some((r * self.height + iy) * self.width)
    }
}

/// Half of a transform along the patches' rows, held for the tile row being worked on: row `a` of
/// `B^T d` (forward: `d` the four input rows under the tile row) or of `g_V B^T` (reverse: summed over
/// the tile row's tiles so far), each over the image's columns from `-1` ([`Tiles::patch_row_pixels`],
/// zero outside the image), so that tile column `tx` reads or adds pixels `2 tx .. 2 tx + 4`
/// (docs/math.md §8.8).
struct PatchRows<F> {
    /// Row `a` at `[a P c ..]` (`P` pixels a row).
    rows: Vec<F>,
    /// The tile row held.
    held: Option<usize>,
    /// `W c` zeros: the input rows outside the image.
    zeros: Vec<F>,
    channels: usize,
}

impl<F: Real> PatchRows<F> {
    fn new(tiles: &Tiles, channels: usize) -> Self {
        let rows = vec![F::zero(); 4 * tiles.patch_row_pixels() * channels];
        Self { rows, held: None, zeros: vec![F::zero(); tiles.width * channels], channels }
    }

    /// `V_t = B^T d B` of tile `t`'s patch of `x` into `dst` (`16 c` values, position `xi = 4 a + b` at
    /// `xi c`): the rows `B^T d` are built once per tile row, over whole image rows,
    ///
    /// `(d0 - d2, d1 + d2, d2 - d1, d1 - d3)`, then each tile's four columns combine the same way.
    fn transform(&mut self, tiles: &Tiles, x: &[F], t: usize, dst: &mut [F]) {
        let (row, tx) = tiles.row_and_column(t);
        let (c, stride) = (self.channels, tiles.patch_row_pixels() * self.channels);
        if self.held != Some(row) {
            self.held = Some(row);
            let run = tiles.width * c;
            let d: [&[F]; 4] = std::array::from_fn(|i| match tiles.patch_row(row, i) {
                Some(p) => &x[p * c..][..run],
                None => &self.zeros[..],
            });
            for (a, bt_d) in self.rows.chunks_exact_mut(stride).enumerate() {
                let (p, q, sign) = [(d[0], d[2], -1), (d[1], d[2], 1), (d[2], d[1], -1), (d[1], d[3], -1)][a];
                let inner = bt_d[c..c + run].iter_mut().zip(p.iter().zip(q));
                if sign < 0 {
                    inner.for_each(|(o, (p, q))| *o = *p - *q);
                } else {
                    inner.for_each(|(o, (p, q))| *o = *p + *q);
                }
            }
        }
        for (a, out) in dst[..16 * c].chunks_exact_mut(4 * c).enumerate() {
            let [t0, t1, t2, t3] = quarters(&self.rows[a * stride + 2 * tx * c..][..4 * c], c);
            let [o0, o1, o2, o3] = quarters_mut(out, c);
            for k in 0..c {
                (o0[k], o1[k], o2[k], o3[k]) = (t0[k] - t2[k], t1[k] + t2[k], t2[k] - t1[k], t1[k] - t3[k]);
            }
        }
    }

    /// Adds `g_d = B g_V B^T` of tile `t` (`g_v`: `16 c` values as [`PatchRows::transform`] writes them)
    /// onto `g_x`, its right half `g_V B^T` now (the adjoint of the columns' combinations,
    /// `(v0, v1 - v2 + v3, v1 + v2 - v0, -v3)`, added into the held rows at the tile's four columns) and its
    /// left half when the tile row is flushed; a new tile row first flushes the held one.
    fn add_cotangent(&mut self, tiles: &Tiles, g_x: &mut [F], t: usize, g_v: &[F]) {
        let (row, tx) = tiles.row_and_column(t);
        if self.held != Some(row) {
            self.flush_cotangent(tiles, g_x);
            self.held = Some(row);
        }
        let (c, stride) = (self.channels, tiles.patch_row_pixels() * self.channels);
        for (a, v) in g_v[..16 * c].chunks_exact(4 * c).enumerate() {
            let [v0, v1, v2, v3] = quarters(v, c);
            let [s0, s1, s2, s3] = quarters_mut(&mut self.rows[a * stride + 2 * tx * c..], c);
            for k in 0..c {
                s0[k] += v0[k];
                s1[k] += v1[k] - v2[k] + v3[k];
                s2[k] += v1[k] + v2[k] - v0[k];
                s3[k] -= v3[k];
            }
        }
    }

    /// Adds the held rows `s` onto the input rows of `g_x` under the held tile row (the adjoint of
    /// `B^T d` down the columns: `(s0, s1 - s2 + s3, s1 + s2 - s0, -s3)`, the rows and columns outside
    /// the image dropped), then zeroes them.
    fn flush_cotangent(&mut self, tiles: &Tiles, g_x: &mut [F]) {
        let Some(row) = self.held.take() else { return };
        let (c, stride, run) =
            (self.channels, tiles.patch_row_pixels() * self.channels, tiles.width * self.channels);
        let [s0, s1, s2, s3] = quarters(&self.rows, stride).map(|s| &s[c..c + run]);
        for i in 0..4 {
            let Some(p) = tiles.patch_row(row, i) else { continue };
            let g = g_x[p * c..][..run].iter_mut();
            match i {
                0 => g.zip(s0).for_each(|(g, s)| *g += *s),
                1 => g.zip(s1.iter().zip(s2).zip(s3)).for_each(|(g, ((p, q), r))| *g += *p - *q + *r),
                2 => g.zip(s1.iter().zip(s2).zip(s0)).for_each(|(g, ((p, q), r))| *g += *p + *q - *r),
                _ => g.zip(s3).for_each(|(g, s)| *g -= *s),
            }
        }
        self.rows.fill(F::zero());
    }
}

/// The four consecutive runs of `c` values at the start of `s`.
fn quarters<F>(s: &[F], c: usize) -> [&[F]; 4] {
    let (s0, rest) = s.split_at(c);
    let (s1, rest) = rest.split_at(c);
    let (s2, rest) = rest.split_at(c);
    [s0, s1, s2, &rest[..c]]
}

/// [`quarters`], writable.
fn quarters_mut<F>(s: &mut [F], c: usize) -> [&mut [F]; 4] {
    let (s0, rest) = s.split_at_mut(c);
    let (s1, rest) = rest.split_at_mut(c);
    let (s2, rest) = rest.split_at_mut(c);
    [s0, s1, s2, &mut rest[..c]]
}

/// `U_xi[c, o] = (G g_{c o} G^T)_xi` for the weight `W[(ky, kx, c), o]`, over all `o` at once: `G g`
/// down each kernel column (4 x 3), then `(G g) G^T` along each of its rows.
fn transform_weights<F: Real>(weight: &[F], cin: usize, outs: usize, u: &mut [F]) {
    let mut planes: Vec<&mut [F]> = u[..16 * cin * outs].chunks_exact_mut(cin * outs).collect();
    // (G g)[a, kx] at columns[(kx 4 + a) outs ..].
    let mut columns = vec![F::zero(); 12 * outs];
    for c in 0..cin {
        let tap = |ky: usize, kx: usize| &weight[((ky * 3 + kx) * cin + c) * outs..][..outs];
        for (kx, column) in columns.chunks_exact_mut(4 * outs).enumerate() {
            kernel_rows([tap(0, kx), tap(1, kx), tap(2, kx)], quarters_mut(column, outs));
        }
        for (a, row) in planes.chunks_exact_mut(4).enumerate() {
            let [p0, p1, p2, p3] = row else { unreachable!("chunks of four planes") };
            let at = |kx: usize| &columns[(kx * 4 + a) * outs..][..outs];
            let span = c * outs..(c + 1) * outs;
            let out = [&mut p0[span.clone()], &mut p1[span.clone()], &mut p2[span.clone()], &mut p3[span]];
            kernel_rows([at(0), at(1), at(2)], out);
        }
    }
}

/// `G k` of three vectors: `(k0, (k0 + k1 + k2) / 2, (k0 - k1 + k2) / 2, k2)`.
fn kernel_rows<F: Real>([k0, k1, k2]: [&[F]; 3], [o0, o1, o2, o3]: [&mut [F]; 4]) {
    let (half, n) = (F::of(0.5), o0.len());
    let (k0, k1, k2, o1, o2, o3) = (&k0[..n], &k1[..n], &k2[..n], &mut o1[..n], &mut o2[..n], &mut o3[..n]);
    for i in 0..n {
        (o0[i], o1[i]) = (k0[i], half * (k0[i] + k1[i] + k2[i]));
        (o2[i], o3[i]) = (half * (k0[i] - k1[i] + k2[i]), k2[i]);
    }
}

/// `Y = A^T M A` of one tile's products (`m`: `16 c` values, position `xi = 4 a + b` at `xi c`) into
/// its two output rows (`top`, `bottom`: pixels `(dy, 0)` and `(dy, 1)`, `c` values each): with
/// `r_dy,b = (m0b + m1b + m2b, m1b - m2b - m3b)`, `y_dy = (r0 + r1 + r2, r1 - r2 - r3)`.
fn output_transform<F: Real>(m: &[F], c: usize, top: &mut [F], bottom: &mut [F]) {
    let [m0, m1, m2, m3] = quarters(m, 4 * c).map(|row| quarters(row, c));
    let (y00, y01) = top.split_at_mut(c);
    let (y10, y11) = bottom.split_at_mut(c);
    let (y01, y11) = (&mut y01[..c], &mut y11[..c]);
    // Written out in full: closures over the four columns here were left uninlined, and the loop
    // unvectorised, in some builds.
    for k in 0..c {
        let (r00, r01) = (m0[0][k] + m1[0][k] + m2[0][k], m0[1][k] + m1[1][k] + m2[1][k]);
        let (r02, r03) = (m0[2][k] + m1[2][k] + m2[2][k], m0[3][k] + m1[3][k] + m2[3][k]);
        let (r10, r11) = (m1[0][k] - m2[0][k] - m3[0][k], m1[1][k] - m2[1][k] - m3[1][k]);
        let (r12, r13) = (m1[2][k] - m2[2][k] - m3[2][k], m1[3][k] - m2[3][k] - m3[3][k]);
        (y00[k], y01[k]) = (r00 + r01 + r02, r01 - r02 - r03);
        (y10[k], y11[k]) = (r10 + r11 + r12, r11 - r12 - r13);
    }
}

/// The adjoint of [`output_transform`]: `gM = A g_Y A^T` of one tile's output cotangents (`top`,
/// `bottom`: `2 c` values each) into `dst` (`16 c` values): along the rows the adjoint of
/// `(m0 + m1 + m2, m1 - m2 - m3)` is `s_dy = (g0, g0 + g1, g0 - g1, -g1)`, then down the columns
/// `gM_b = (s0b, s0b + s1b, s0b - s1b, -s1b)`.
fn output_transform_adjoint<F: Real>(top: &[F], bottom: &[F], c: usize, dst: &mut [F]) {
    let [g00, g01] = [&top[..c], &top[c..2 * c]];
    let [g10, g11] = [&bottom[..c], &bottom[c..2 * c]];
    let [o0, o1, o2, o3] = quarters_mut(dst, 4 * c).map(|row| quarters_mut(row, c));
    for k in 0..c {
        let s0 = [g00[k], g00[k] + g01[k], g00[k] - g01[k], -g01[k]];
        let s1 = [g10[k], g10[k] + g11[k], g10[k] - g11[k], -g11[k]];
        for b in 0..4 {
            (o0[b][k], o1[b][k], o2[b][k], o3[b][k]) = (s0[b], s0[b] + s1[b], s0[b] - s1[b], -s1[b]);
        }
    }
}

/// The adjoint of [`transform_weights`]: `dW[(ky, kx, c), o] += (G^T dU_{c o} G)[ky, kx]`, over all
/// `o` at once: `dU G` along each row (4 x 3), then `G^T (dU G)` down each of its columns.
fn transform_weight_gradient<F: Real>(g_u: &[F], cin: usize, outs: usize, g_weight: &mut [F]) {
    let mut planes: Vec<&mut [F]> = g_weight[..9 * cin * outs].chunks_exact_mut(cin * outs).collect();
    // (dU G)[a, kx] at rows[(a 3 + kx) outs ..].
    let mut rows = vec![F::zero(); 12 * outs];
    for c in 0..cin {
        let at = |xi: usize| &g_u[(xi * cin + c) * outs..][..outs];
        rows.fill(F::zero());
        for (a, row) in rows.chunks_exact_mut(3 * outs).enumerate() {
            let (r0, rest) = row.split_at_mut(outs);
            let (r1, r2) = rest.split_at_mut(outs);
            kernel_rows_adjoint([at(4 * a), at(4 * a + 1), at(4 * a + 2), at(4 * a + 3)], [r0, r1, r2]);
        }
        for kx in 0..3 {
            let row = |a: usize| &rows[(a * 3 + kx) * outs..][..outs];
            let span = c * outs..(c + 1) * outs;
            let (top, rest) = planes.split_at_mut(3);
            let (middle, bottom) = rest.split_at_mut(3);
            let out = [&mut top[kx][span.clone()], &mut middle[kx][span.clone()], &mut bottom[kx][span]];
            kernel_rows_adjoint([row(0), row(1), row(2), row(3)], out);
        }
    }
}

/// The adjoint of [`kernel_rows`], added: `(u0 + (u1 + u2) / 2, (u1 - u2) / 2, (u1 + u2) / 2 + u3)`.
fn kernel_rows_adjoint<F: Real>([u0, u1, u2, u3]: [&[F]; 4], [o0, o1, o2]: [&mut [F]; 3]) {
    let (half, n) = (F::of(0.5), o0.len());
    let (u0, u1, u2, u3, o1, o2) = (&u0[..n], &u1[..n], &u2[..n], &u3[..n], &mut o1[..n], &mut o2[..n]);
    for i in 0..n {
        let (sum, difference) = (half * (u1[i] + u2[i]), half * (u1[i] - u2[i]));
        o0[i] += u0[i] + sum;
        o1[i] += difference;
        o2[i] += sum + u3[i];
    }
}

//! Both passes of a stride-1 3x3 convolution by Winograd's minimal filtering F(4x4, 3x3) (docs/math.md
//! §8.8).
//!
//! Each 4x4 tile of output pixels is `Y = A^T [(G g G^T) . (B^T d B)] A` for every pair of channels,
//! with `d` the 6x6 input patch around the tile (zero outside the image), `g` the 3x3 kernel and the
//! constant matrices [`BT`], [`G`], [`AT`]. Summed over input channels, the 36 elementwise products
//! become 36 GEMMs `M_xi = V_xi U_xi` of the transformed patches (`tiles x C_in`) by the transformed
//! weights (`C_in x C_out`): 36 multiply-adds per tile of 16 pixels and channel pair (2.25 a pixel)
//! instead of the 9 a pixel of the direct sum. Tiles run in blocks whose matrices stay in the cache
//! between the transforms and the products. The reverse pass transposes the three steps:
//! `gM = A g_Y A^T`, then `dU_xi += V_xi^T gM_xi` (summed over the tiles, `dW += G^T dU G` at the end)
//! and `g_d = B (gM_xi U_xi^T) B^T` added onto each tile's overlapping patch. Every transform is
//! separable (rows, then columns); the patch transform's row half is done once per row of tiles
//! ([`PatchRows`]), and every half is one [`combine`] of runs of channels.

use super::conv2d::Conv2d;
use crate::linalg::Real;

/// Values of the transformed patches of a block of tiles in the forward pass (`36 tiles C_in`, 512 KB
/// of f32), unless that is fewer than [`MIN_BLOCK_TILES`] tiles.
const BLOCK_VALUES: usize = 1 << 17;

/// Values of the transformed patches and product cotangents of a block of tiles in the reverse pass
/// (`36 tiles (C_in + C_out)`, 1 MB of f32): the tiles are the inner dimension of the weight-gradient
/// products.
const REVERSE_BLOCK_VALUES: usize = 1 << 18;

/// Fewest tiles in a block, whatever the channels: the tiles are the rows of the forward and
/// input-cotangent products and the inner dimension of the weight-gradient ones, which run far below
/// the GEMM's peak when thin. Measured with F(2x2, 3x3), forward / reverse at batch 64, one thread,
/// medians of 3 interleaved runs, against blocks sized by the values alone: 28x28 96 -> 32 11.4 / 22.9
/// -> 9.9 / 21.5 ms, 14x14 192 -> 64 7.0 / 17.1 -> 7.1 / 15.8, 7x7 128 -> 128 3.07 / 6.76 -> 2.96 /
/// 6.31. With F(4x4, 3x3), on six of the U-Net's convolutions (3 interleaved runs): 128 tiles 1-2%
/// faster, 64 tiles 3-5% slower in the reverse pass, blocks of half or twice the values within 2%; whole
/// steps did not tell them apart within their noise (5-8%).
const MIN_BLOCK_TILES: usize = 256;

/// Input channels from which F(4x4, 3x3) beats the padded layout (28x28) and im2col (14x14, 7x7): with
/// fewer, the forward products are too thin (`K = C_in`) to pay for the transforms. Forward / reverse
/// pass at batch 64, one thread, two runs: 28x28 16 -> 16 1.41-1.53 / 2.85-2.93 ms against 2.22-2.26 /
/// 4.14-4.30, 32 -> 32 2.66-2.84 / 5.91-6.10 against 4.51-4.60 / 9.27-9.43, but 12 -> 12 2.12-2.19 /
/// 3.95-4.23 against 1.92-2.01 / 3.81-3.97 and 8 -> 8 1.75-1.85 / 3.31-3.40 against 1.19-1.20 /
/// 2.49-2.54; 14x14 12 -> 12 0.68 / 1.24-1.27 against 0.61-0.62 / 1.05-1.06.
const WINOGRAD_MIN_INPUTS: usize = 16;

/// Output channels from which F(4x4, 3x3) pays (the input cotangent's products have `K = C_out`):
/// 28x28 32 -> 2 2.30 / 5.04-5.51 ms against 4.00-4.11 / 4.86-5.17, 14x14 32 -> 2 0.72-0.74 / 1.49-1.50
/// against 1.19-1.21 / 2.75-2.76, but 28x28 32 -> 1 1.37-1.47 / 2.93-3.20 against 0.92-0.97 / 2.19-2.24
/// (as for [`WINOGRAD_MIN_INPUTS`]).
const WINOGRAD_MIN_OUTPUTS: usize = 2;

/// Channels a [`combine`] works on at a time (one AVX-512 register of f32).
const LANES: usize = 16;

/// Output pixels along a tile's side.
const TILE: usize = 4;

/// Input pixels along a patch's side (`TILE + 2`).
const PATCH: usize = 6;

/// Positions of a transformed patch (`PATCH^2`): the number of products.
const POINTS: usize = PATCH * PATCH;

/// `B^T`, the patch transform `V = B^T d B`. With `G` and `A^T`, Lavin and Gray's F(4x4, 3x3), from
/// the interpolation points 0, 1, -1, 2, -2 and infinity.
const BT: [[f64; PATCH]; PATCH] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// `G`, the kernel transform `U = G g G^T`.
const G: [[f64; 3]; PATCH] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `A^T`, the output transform `Y = A^T M A`.
const AT: [[f64; PATCH]; TILE] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// `B`, for the reverse pass.
const B: [[f64; PATCH]; PATCH] = transpose(BT);

/// `G^T`, for the weight gradient.
const GT: [[f64; PATCH]; 3] = transpose(G);

/// `A`, for the reverse pass.
const A: [[f64; TILE]; PATCH] = transpose(AT);

impl Conv2d {
    /// Whether the passes run by F(4x4, 3x3): a 3x3 stride-1 convolution with enough input and output
    /// channels ([`WINOGRAD_MIN_INPUTS`], [`WINOGRAD_MIN_OUTPUTS`]). A side that is not a multiple of 4
    /// wastes the part of the last tile row and column outside the image (31% of the products at 14x14
    /// and 7x7), and still pays: against F(2x2, 3x3) (no waste at 14x14), forward / reverse at batch 64,
    /// one thread, medians of 3 interleaved runs, 14x14 64 -> 64 2.18 / 5.44 -> 2.11 / 4.24 ms, 192 -> 64
    /// 6.64 / 14.92 -> 6.25 / 14.45, 7x7 128 -> 128 2.41 / 5.76 -> 1.69 / 4.24 (28x28 32 -> 32 3.84 /
    /// 9.33 -> 2.60 / 5.82).
    pub(super) fn is_winograd(&self) -> bool {
        let Self { kernel, stride, input, outputs } = *self;
        kernel == 3 && stride == 1 && input.channels >= WINOGRAD_MIN_INPUTS && outputs >= WINOGRAD_MIN_OUTPUTS
    }

    /// Workspace of the F(4x4, 3x3) passes: the transformed weights, and a block of transformed
    /// patches and of products (forward), or the transformed weights and their gradient, and a block of
    /// transformed patches and of product cotangents (reverse).
    pub(super) fn winograd_workspace_len(&self) -> usize {
        let (cin, outs) = (self.input.channels, self.outputs);
        let forward = POINTS * cin * outs + POINTS * self.winograd_block_tiles() * (cin + outs);
        let reverse = 2 * POINTS * cin * outs + POINTS * self.winograd_reverse_block_tiles() * (cin + outs);
        forward.max(reverse)
    }

    /// Tiles per block of the forward pass ([`BLOCK_VALUES`], [`MIN_BLOCK_TILES`]).
    fn winograd_block_tiles(&self) -> usize {
        (BLOCK_VALUES / (POINTS * self.input.channels)).max(MIN_BLOCK_TILES)
    }

    /// Tiles per block of the reverse pass ([`REVERSE_BLOCK_VALUES`], [`MIN_BLOCK_TILES`]).
    fn winograd_reverse_block_tiles(&self) -> usize {
        (REVERSE_BLOCK_VALUES / (POINTS * (self.input.channels + self.outputs))).max(MIN_BLOCK_TILES)
    }

    /// The tiles of the stacked images in `x`.
    fn tiles<F>(&self, x: &[F]) -> Tiles {
        let images = x.len() / self.input.len();
        Tiles { images, height: self.input.height, width: self.input.width }
    }

    /// `y = conv(x)` by F(4x4, 3x3) (the caller adds the bias). The block's transformed patches `V` and
    /// products `M` are stored tile by tile (`V[t, xi, c]`, `M[t, xi, o]`, `xi = 6 a + b` for patch
    /// position `(a, b)`), so each GEMM reads and writes rows `36 C` apart.
    pub(super) fn winograd_forward<F: Real>(&self, weight: &[F], x: &[F], y: &mut [F], workspace: &mut [F]) {
        let (cin, outs, tiles) = (self.input.channels, self.outputs, self.tiles(x));
        let (u, rest) = workspace.split_at_mut(POINTS * cin * outs);
        transform_weights(weight, cin, outs, u);
        let block = self.winograd_block_tiles();
        let (v, rest) = rest.split_at_mut(POINTS * block * cin);
        let m = &mut rest[..POINTS * block * outs];
        let (mut patches, mut scratch) = (PatchRows::new(&tiles, cin), TileScratch::new(outs));
        for first in (0..tiles.len()).step_by(block) {
            let count = block.min(tiles.len() - first);
            for (t, v_t) in (first..first + count).zip(v.chunks_exact_mut(POINTS * cin)) {
                patches.transform(&tiles, x, t, v_t);
            }
            for xi in 0..POINTS {
                let a = (&v[xi * cin..count * POINTS * cin], POINTS * cin, 1);
                let b = (&u[xi * cin * outs..(xi + 1) * cin * outs], outs, 1);
                let c = (&mut m[xi * outs..count * POINTS * outs], POINTS * outs, 1);
                F::gemm(count, cin, outs, F::one(), a, b, F::zero(), c);
            }
            for (t, m_t) in (first..first + count).zip(m.chunks_exact(POINTS * outs)) {
                scratch.output_transform(&tiles, t, m_t, outs, y);
            }
        }
    }

    /// The reverse pass of [`Conv2d::winograd_forward`] (the caller takes the bias gradient): with
    /// `gM = A g_Y A^T` for every tile and output channel,
    ///
    /// `dU_xi += V_xi^T gM_xi`, then `dW += G^T dU G`, and `g_d = B (gM_xi U_xi^T) B^T` added onto the
    /// 36 input pixels of each tile's patch (`g_x` is zero or holds earlier cotangents; patches overlap).
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
        let (u, rest) = workspace.split_at_mut(POINTS * cin * outs);
        let (g_u, rest) = rest.split_at_mut(POINTS * cin * outs);
        if g_x.is_some() {
            transform_weights(weight, cin, outs, u);
        }
        g_u.fill(F::zero());
        let block = self.winograd_reverse_block_tiles();
        let (v, rest) = rest.split_at_mut(POINTS * block * cin);
        let g_m = &mut rest[..POINTS * block * outs];
        let (mut patches, mut cotangents) = (PatchRows::new(&tiles, cin), PatchRows::new(&tiles, cin));
        let mut scratch = TileScratch::new(outs);
        for first in (0..tiles.len()).step_by(block) {
            let count = block.min(tiles.len() - first);
            let tile_blocks = v.chunks_exact_mut(POINTS * cin).zip(g_m.chunks_exact_mut(POINTS * outs));
            for (t, (v_t, g_m_t)) in (first..first + count).zip(tile_blocks) {
                patches.transform(&tiles, x, t, v_t);
                scratch.output_transform_adjoint(&tiles, t, g_y, outs, g_m_t);
            }
            for xi in 0..POINTS {
                let g_m_xi = (&g_m[xi * outs..count * POINTS * outs], POINTS * outs, 1);
                let g_u_xi = (&mut g_u[xi * cin * outs..(xi + 1) * cin * outs], outs, 1);
                let v_xi_t = (&v[xi * cin..count * POINTS * cin], 1, POINTS * cin);
                F::gemm(cin, count, outs, F::one(), v_xi_t, g_m_xi, F::one(), g_u_xi);
                if g_x.is_some() {
                    // The patches are spent: their block takes gV_xi = gM_xi U_xi^T.
                    let u_t = (&u[xi * cin * outs..(xi + 1) * cin * outs], 1, outs);
                    let g_v = (&mut v[xi * cin..count * POINTS * cin], POINTS * cin, 1);
                    F::gemm(count, outs, cin, F::one(), g_m_xi, u_t, F::zero(), g_v);
                }
            }
            if let Some(g_x) = g_x.as_deref_mut() {
                for (t, g_v_t) in (first..first + count).zip(v.chunks_exact(POINTS * cin)) {
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

/// The 4x4 output tiles of stacked images, numbered image by image, row by row; where a side is not a
/// multiple of 4 the last tile row or column reaches past the image.
struct Tiles {
    images: usize,
    height: usize,
    width: usize,
}

impl Tiles {
    /// Tile rows per image.
    fn rows_per_image(&self) -> usize {
        self.height.div_ceil(TILE)
    }

    /// Tiles per tile row.
    fn per_row(&self) -> usize {
        self.width.div_ceil(TILE)
    }

    fn len(&self) -> usize {
        self.images * self.rows_per_image() * self.per_row()
    }

    /// Tile row (over all images) and tile column of tile `t`.
    fn row_and_column(&self, t: usize) -> (usize, usize) {
        (t / self.per_row(), t % self.per_row())
    }

    /// The stacked pixel starting each of tile `t`'s four output rows (`None` past the image's last
    /// row), and how many of a row's four pixels lie inside the image.
    fn output_rows(&self, t: usize) -> ([Option<usize>; TILE], usize) {
        let (row, tx) = self.row_and_column(t);
        let (r, ty) = (row / self.rows_per_image(), row % self.rows_per_image());
        let rows = std::array::from_fn(|dy| {
            let oy = TILE * ty + dy;
            (oy < self.height).then(|| (r * self.height + oy) * self.width + TILE * tx)
        });
        (rows, TILE.min(self.width - TILE * tx))
    }

    /// Pixels of a row of [`PatchRows`]: the image's columns `-1 ..= 4 per_row` (`W + 2` when 4
    /// divides `W`).
    fn patch_row_pixels(&self) -> usize {
        TILE * self.per_row() + 2
    }

    /// Stacked pixel starting input row `i` (image row `4 ty - 1 + i`) of the patches of tile row
    /// `row`, `None` outside the image.
    fn patch_row(&self, row: usize, i: usize) -> Option<usize> {
        let (r, ty) = (row / self.rows_per_image(), row % self.rows_per_image());
        let iy = (TILE * ty + i).checked_sub(1).filter(|&iy| iy < self.height)?;
        Some((r * self.height + iy) * self.width)
    }
}

/// Half of a patch transform along the patches' rows, held for the tile row being worked on: row `a`
/// of `B^T d` (forward: `d` the six input rows under the tile row) or of `g_V B^T` (reverse: summed
/// over the tile row's tiles so far), each over the image's columns from `-1`
/// ([`Tiles::patch_row_pixels`], zero outside the image), so that tile column `tx` reads or adds pixels
/// `4 tx .. 4 tx + 6` (docs/math.md §8.8).
struct PatchRows<F> {
    /// Row `a` at `[a P c ..]` (`P` pixels a row).
    rows: Vec<F>,
    /// The tile row held.
    held: Option<usize>,
    /// `W c` zeros: the input rows outside the image.
    zeros: Vec<F>,
    /// `6 W c` values the reverse pass adds the rows outside the image into (never read; sized by the
    /// first flush, so the patch transforms' rows go without).
    sink: Vec<F>,
    channels: usize,
}

impl<F: Real> PatchRows<F> {
    fn new(tiles: &Tiles, channels: usize) -> Self {
        let run = tiles.width * channels;
        Self {
            rows: vec![F::zero(); PATCH * tiles.patch_row_pixels() * channels],
            held: None,
            zeros: vec![F::zero(); run],
            sink: Vec::new(),
            channels,
        }
    }

    /// `V_t = B^T d B` of tile `t`'s patch of `x` into `dst` (`36 c` values, position `xi = 6 a + b` at
    /// `xi c`): the rows `B^T d` are built once per tile row, over whole image rows, then each tile
    /// combines six of their columns the same way.
    fn transform(&mut self, tiles: &Tiles, x: &[F], t: usize, dst: &mut [F]) {
        let (row, tx) = tiles.row_and_column(t);
        let (c, stride) = (self.channels, tiles.patch_row_pixels() * self.channels);
        if self.held != Some(row) {
            self.held = Some(row);
            let run = tiles.width * c;
            let d: [&[F]; PATCH] = std::array::from_fn(|i| match tiles.patch_row(row, i) {
                Some(p) => &x[p * c..][..run],
                None => &self.zeros[..],
            });
            combine::<F, PATCH, PATCH, false>(&BT, d, runs_mut(&mut self.rows[c..], run, stride));
        }
        for (a, out) in dst[..POINTS * c].chunks_exact_mut(PATCH * c).enumerate() {
            let columns = runs(&self.rows[a * stride + TILE * tx * c..], c, c);
            combine::<F, PATCH, PATCH, false>(&BT, columns, runs_mut(out, c, c));
        }
    }

    /// Adds `g_d = B g_V B^T` of tile `t` (`g_v`: `36 c` values as [`PatchRows::transform`] writes
    /// them) onto `g_x`: its right half `g_V B^T` now (added into the held rows at the tile's six
    /// columns) and its left half when the tile row is flushed; a new tile row first flushes the held
    /// one.
    fn add_cotangent(&mut self, tiles: &Tiles, g_x: &mut [F], t: usize, g_v: &[F]) {
        let (row, tx) = tiles.row_and_column(t);
        if self.held != Some(row) {
            self.flush_cotangent(tiles, g_x);
            self.held = Some(row);
        }
        let (c, stride) = (self.channels, tiles.patch_row_pixels() * self.channels);
        for (a, v) in g_v[..POINTS * c].chunks_exact(PATCH * c).enumerate() {
            let held = runs_mut(&mut self.rows[a * stride + TILE * tx * c..], c, c);
            combine::<F, PATCH, PATCH, true>(&B, runs(v, c, c), held);
        }
    }

    /// Adds `B s` of the held rows `s` onto the input rows of `g_x` under the held tile row (the rows
    /// outside the image go to the sink), then zeroes them.
    fn flush_cotangent(&mut self, tiles: &Tiles, g_x: &mut [F]) {
        let Some(row) = self.held.take() else { return };
        let (c, stride, run) =
            (self.channels, tiles.patch_row_pixels() * self.channels, tiles.width * self.channels);
        // The rows inside the image are consecutive image rows.
        let inside = |i: &usize| tiles.patch_row(row, *i).is_some();
        let first = (0..PATCH).find(inside).expect("a tile row has input rows inside the image");
        let count = (first..PATCH).take_while(inside).count();
        let start = tiles.patch_row(row, first).expect("row `first` is inside the image");
        self.sink.resize(PATCH * run, F::zero());
        let mut image_rows = g_x[start * c..].chunks_mut(run).map(|r| &mut r[..run]);
        let mut sink_rows = self.sink.chunks_exact_mut(run);
        let dst: [&mut [F]; PATCH] = std::array::from_fn(|i| {
            let row = if (first..first + count).contains(&i) { image_rows.next() } else { sink_rows.next() };
            row.expect("six rows, inside the image or in the sink")
        });
        combine::<F, PATCH, PATCH, true>(&B, runs(&self.rows[c..], run, stride), dst);
        self.rows.fill(F::zero());
        if count < PATCH {
            self.sink.fill(F::zero());
        }
    }
}

/// Buffers of one tile's output transform or its adjoint: the half-transformed tile (`24 c` values)
/// and one output row where it reaches past the image (`4 c`).
struct TileScratch<F> {
    half: Vec<F>,
    edge: Vec<F>,
}

impl<F: Real> TileScratch<F> {
    fn new(channels: usize) -> Self {
        Self { half: vec![F::zero(); TILE * PATCH * channels], edge: vec![F::zero(); TILE * channels] }
    }

    /// `Y = A^T M A` of tile `t`'s products `m_t` (`36 c` values, position `xi = 6 a + b` at `xi c`)
    /// into its pixels of `y` (`c` values each), those outside the image dropped: down the columns
    /// `R = A^T M` (held as `R[b, dy]`), then along the rows `Y = R A`.
    fn output_transform(&mut self, tiles: &Tiles, t: usize, m_t: &[F], c: usize, y: &mut [F]) {
        for (b, r_b) in self.half.chunks_exact_mut(TILE * c).enumerate() {
            combine::<F, TILE, PATCH, false>(&AT, runs(&m_t[b * c..], c, PATCH * c), runs_mut(r_b, c, c));
        }
        let (rows, inside) = tiles.output_rows(t);
        for (dy, start) in rows.into_iter().enumerate() {
            let r_dy = runs(&self.half[dy * c..], c, TILE * c);
            match start {
                Some(p) if inside == TILE => {
                    combine::<F, TILE, PATCH, false>(&AT, r_dy, runs_mut(&mut y[p * c..], c, c));
                }
                Some(p) => {
                    combine::<F, TILE, PATCH, false>(&AT, r_dy, runs_mut(&mut self.edge, c, c));
                    y[p * c..][..inside * c].copy_from_slice(&self.edge[..inside * c]);
                }
                None => {}
            }
        }
    }

    /// The adjoint of [`TileScratch::output_transform`]: `gM = A g_Y A^T` of tile `t`'s output
    /// cotangents (zero outside the image) into `dst` (`36 c` values): along the rows `S = g_Y A^T`
    /// (held as `S[dy, b]`), then down the columns `gM = A S`.
    fn output_transform_adjoint(&mut self, tiles: &Tiles, t: usize, g_y: &[F], c: usize, dst: &mut [F]) {
        let (rows, inside) = tiles.output_rows(t);
        for (start, s_dy) in rows.into_iter().zip(self.half.chunks_exact_mut(PATCH * c)) {
            let g_dy = match start {
                Some(p) if inside == TILE => &g_y[p * c..],
                _ => {
                    self.edge.fill(F::zero());
                    if let Some(p) = start {
                        self.edge[..inside * c].copy_from_slice(&g_y[p * c..][..inside * c]);
                    }
                    &self.edge[..]
                }
            };
            combine::<F, PATCH, TILE, false>(&A, runs(g_dy, c, c), runs_mut(s_dy, c, c));
        }
        for b in 0..PATCH {
            let s_b = runs(&self.half[b * c..], c, PATCH * c);
            combine::<F, PATCH, TILE, false>(&A, s_b, runs_mut(&mut dst[b * c..], c, PATCH * c));
        }
    }
}

/// `U_xi[c, o] = (G g_{c o} G^T)_xi` for the weight `W[(ky, kx, c), o]`, over all `o` at once: `G g`
/// down each kernel column (6 x 3, held as `[kx, a]`), then `(G g) G^T` along each of its rows.
fn transform_weights<F: Real>(weight: &[F], cin: usize, outs: usize, u: &mut [F]) {
    let mut columns = vec![F::zero(); 3 * PATCH * outs];
    for c in 0..cin {
        for (kx, column) in columns.chunks_exact_mut(PATCH * outs).enumerate() {
            let taps = runs(&weight[(kx * cin + c) * outs..], outs, 3 * cin * outs);
            combine::<F, PATCH, 3, false>(&G, taps, runs_mut(column, outs, outs));
        }
        for a in 0..PATCH {
            let row = runs(&columns[a * outs..], outs, PATCH * outs);
            let u_a = runs_mut(&mut u[(a * PATCH * cin + c) * outs..], outs, cin * outs);
            combine::<F, PATCH, 3, false>(&G, row, u_a);
        }
    }
}

/// The adjoint of [`transform_weights`]: `dW[(ky, kx, c), o] += (G^T dU_{c o} G)[ky, kx]`, over all `o`
/// at once: `dU G` along each row (6 x 3, held as `[a, kx]`), then `G^T (dU G)` down each of its
/// columns.
fn transform_weight_gradient<F: Real>(g_u: &[F], cin: usize, outs: usize, g_weight: &mut [F]) {
    let mut rows = vec![F::zero(); 3 * PATCH * outs];
    for c in 0..cin {
        for (a, row) in rows.chunks_exact_mut(3 * outs).enumerate() {
            let g_u_a = runs(&g_u[(a * PATCH * cin + c) * outs..], outs, cin * outs);
            combine::<F, 3, PATCH, false>(&GT, g_u_a, runs_mut(row, outs, outs));
        }
        for kx in 0..3 {
            let column = runs(&rows[kx * outs..], outs, 3 * outs);
            let taps = runs_mut(&mut g_weight[(kx * cin + c) * outs..], outs, 3 * cin * outs);
            combine::<F, 3, PATCH, true>(&GT, column, taps);
        }
    }
}

/// Runs `$body` for each `$i` in `0..$n` (`$n` a constant of at most 6), written out in full: the
/// indices are then constants, and so are the coefficients [`combine_lanes`] reads with them (a loop
/// over the coefficients stays a loop, reading them at run time, in the optimised build).
macro_rules! for_each_index {
    ($i:ident in 0..$n:expr, $body:block) => {
        for_each_index!(@ $i, $n, $body, 0 1 2 3 4 5)
    };
    (@ $i:ident, $n:expr, $body:block, $($k:literal)*) => {
        $( { let $i: usize = $k; if $i < $n $body } )*
    };
}

/// `dst_i = sum_j m_ij src_j` (or `+=` with `ADD`), elementwise along the runs (all as long as
/// `dst[0]`), for a constant matrix `m` of at most 6 x 6: once inlined into a transform the zero
/// coefficients drop out and the unit ones leave additions, and each block of [`LANES`] values is one
/// vector per run.
#[allow(unsafe_code)] // unchecked reads of the runs, see `combine_lanes`.
#[inline(always)]
fn combine<F: Real, const R: usize, const C: usize, const ADD: bool>(
    m: &[[f64; C]; R],
    src: [&[F]; C],
    dst: [&mut [F]; R],
) {
    const { assert!(R <= 6 && C <= 6, "for_each_index! writes out six indices") };
    let n = dst[0].len();
    let (src, mut dst) = (src.map(|s| &s[..n]), dst.map(|d| &mut d[..n]));
    let mut k = 0;
    while k + LANES <= n {
        // SAFETY: every run holds `n` values (cut above) and `k + LANES <= n`.
        unsafe { combine_lanes::<F, R, C, ADD, LANES>(m, &src, &mut dst, k) };
        k += LANES;
    }
    while k < n {
        // SAFETY: as above, `k + 1 <= n`.
        unsafe { combine_lanes::<F, R, C, ADD, 1>(m, &src, &mut dst, k) };
        k += 1;
    }
}

/// [`combine`] of the `L` values from `k` of every run (`started` is last set in the written-out
/// loop's final copy, and not read after it). Reading the runs unchecked makes the forward pass of the
/// U-Net's convolutions about 10% faster and the reverse pass 5% (the checked slices' bounds were a
/// third of the patch transform's time).
///
/// # Safety
/// Every run of `src` and `dst` holds at least `k + L` values.
#[allow(unused_assignments, unsafe_code)]
#[inline(always)]
unsafe fn combine_lanes<F: Real, const R: usize, const C: usize, const ADD: bool, const L: usize>(
    m: &[[f64; C]; R],
    src: &[&[F]; C],
    dst: &mut [&mut [F]; R],
    k: usize,
) {
    debug_assert!(src.iter().all(|s| s.len() >= k + L) && dst.iter().all(|d| d.len() >= k + L));
    for_each_index!(i in 0..R, {
        let mut out = [F::zero(); L];
        let mut started = false;
        for_each_index!(j in 0..C, {
            let coefficient = m[i][j];
            if coefficient != 0.0 {
                // SAFETY: run `j` holds `k + L` values (the caller's promise); `[F; L]` has `F`'s
                // alignment.
                let s = unsafe { &*src[j].as_ptr().add(k).cast::<[F; L]>() };
                for l in 0..L {
                    let term = if coefficient == 1.0 {
                        s[l]
                    } else if coefficient == -1.0 {
                        -s[l]
                    } else {
                        F::of(coefficient) * s[l]
                    };
                    out[l] = if started { out[l] + term } else { term };
                }
                started = true;
            }
        });
        // SAFETY: as for the sources; the runs of `dst` are distinct `&mut` slices.
        let d = unsafe { &mut *dst[i].as_mut_ptr().add(k).cast::<[F; L]>() };
        if ADD {
            d.iter_mut().zip(out).for_each(|(d, o)| *d += o);
        } else {
            *d = out;
        }
    });
}

/// `N` runs of `len` values, `stride` apart from the start of `s`.
fn runs<F, const N: usize>(s: &[F], len: usize, stride: usize) -> [&[F]; N] {
    std::array::from_fn(|i| &s[i * stride..][..len])
}

/// [`runs`], writable (`stride >= len`).
fn runs_mut<F, const N: usize>(s: &mut [F], len: usize, stride: usize) -> [&mut [F]; N] {
    let mut chunks = s.chunks_mut(stride);
    std::array::from_fn(|_| &mut chunks.next().expect("runs inside the slice")[..len])
}

/// `m^T`.
const fn transpose<const R: usize, const C: usize>(m: [[f64; C]; R]) -> [[f64; R]; C] {
    let mut t = [[0.0; R]; C];
    let mut i = 0;
    while i < R {
        let mut j = 0;
        while j < C {
            t[j][i] = m[i][j];
            j += 1;
        }
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `A^T [(G g) . (B^T d)]` is the correlation `y_i = sum_k d_{i + k} g_k` of a 6-long signal with
    /// a 3-tap kernel: the one-dimensional identity both dimensions of the transforms rest on.
    #[test]
    fn the_transforms_compute_the_correlation() {
        let d: [f64; PATCH] = std::array::from_fn(|i| (i as f64 * 0.7).sin() + 0.3);
        let g = [0.9, -1.3, 0.4];
        let bt_d: [f64; PATCH] = std::array::from_fn(|a| (0..PATCH).map(|j| BT[a][j] * d[j]).sum());
        let g_g: [f64; PATCH] = std::array::from_fn(|a| (0..3).map(|k| G[a][k] * g[k]).sum());
        for i in 0..TILE {
            let y: f64 = (0..PATCH).map(|a| AT[i][a] * g_g[a] * bt_d[a]).sum();
            let want: f64 = (0..3).map(|k| d[i + k] * g[k]).sum();
            assert!((y - want).abs() < 1e-12, "y_{i} = {y}, want {want}");
        }
    }

    /// `combine` against the literal sums, for a matrix with zero, unit and other coefficients, runs of
    /// a whole block of lanes and a remainder, stored and added.
    #[test]
    fn combine_matches_the_literal_sums() {
        let m = [[1.0, 0.0, -2.5], [0.0, -1.0, 1.0]];
        let n = LANES + 3;
        let src: Vec<Vec<f64>> =
            (0..3).map(|j| (0..n).map(|k| (j * n + k) as f64 * 0.37 - 4.0).collect()).collect();
        let mut out = vec![vec![1.5; n]; 2];
        let [o0, o1] = &mut out[..] else { unreachable!("two rows") };
        combine::<f64, 2, 3, true>(&m, [&src[0], &src[1], &src[2]], [o0, o1]);
        for k in 0..n {
            assert_eq!(out[0][k], 1.5 + (src[0][k] - 2.5 * src[2][k]), "row 0 at {k}");
            assert_eq!(out[1][k], 1.5 + (-src[1][k] + src[2][k]), "row 1 at {k}");
        }
        let [o0, o1] = &mut out[..] else { unreachable!("two rows") };
        combine::<f64, 2, 3, false>(&m, [&src[0], &src[1], &src[2]], [o0, o1]);
        assert!((0..n).all(|k| out[1][k] == -src[1][k] + src[2][k]), "stored, not added");
    }
}

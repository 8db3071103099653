//! Grids of grey-scale images, block after block (for example noisy / denoised / clean images of a
//! denoiser, or decoder samples above test images and their reconstructions), for `tweedie eval --png`.

use super::canvas::{Canvas, Rgb};
use crate::linalg::Mat;

/// Screen pixels per image pixel.
const SCALE: usize = 2;
/// Screen pixels between tiles and around the grid.
const GAP: usize = 2;

/// The shape of one image.
#[derive(Clone, Copy, Debug)]
pub struct ImageShape {
    /// Rows of pixels.
    pub height: usize,
    /// Columns of pixels.
    pub width: usize,
}

/// Pixel size `(width, height)` of a grid of `cols x rows` tiles of `shape`:
/// `cols (SCALE width) + (cols + 1) GAP` by `rows (SCALE height) + (rows + 1) GAP`.
pub fn grid_size(shape: ImageShape, cols: usize, rows: usize) -> (u32, u32) {
    let side = |n: usize, pixels: usize| (n * SCALE * pixels + (n + 1) * GAP) as u32;
    (side(cols, shape.width), side(rows, shape.height))
}

/// Tiles the rows of each block in `blocks` (values in `[0, 1]`, `height * width` each, row-major; 0 black,
/// 1 white) `cols` to a grid row, block after block, on a mid-grey background. A block whose row count is
/// not a multiple of `cols` leaves its last grid row part empty.
pub fn image_grid(shape: ImageShape, cols: usize, blocks: &[&Mat<f64>]) -> Canvas {
    let cols = cols.max(1);
    let rows: usize = blocks.iter().map(|b| b.rows().div_ceil(cols)).sum();
    let (w, h) = grid_size(shape, cols, rows);
    let mut canvas = Canvas::new(w, h, Rgb(128, 128, 128));
    let mut top_row = 0;
    for block in blocks {
        for (k, image) in block.row_iter().enumerate() {
            let (col, row) = (k % cols, top_row + k / cols);
            let left = GAP + col * (SCALE * shape.width + GAP);
            let top = GAP + row * (SCALE * shape.height + GAP);
            for (p, &v) in image.iter().enumerate() {
                let grey = (255.0 * v.clamp(0.0, 1.0)).round() as u8;
                let (x, y) = (left + SCALE * (p % shape.width), top + SCALE * (p / shape.width));
                canvas.fill_rect(x as i64, y as i64, SCALE as u32, SCALE as u32, Rgb(grey, grey, grey));
            }
        }
        top_row += block.rows().div_ceil(cols);
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_land_where_grid_size_says_with_their_grey_values() {
        let shape = ImageShape { height: 2, width: 3 };
        // Block 1: three images (two grid rows at 2 columns); block 2: one image (one grid row).
        let a = Mat::from_fn(3, 6, |r, p| (r * 6 + p) as f64 / 17.0);
        let b = Mat::from_fn(1, 6, |_, p| if p == 4 { 1.0 } else { 0.0 });
        let canvas = image_grid(shape, 2, &[&a, &b]);
        assert_eq!((canvas.width(), canvas.height()), grid_size(shape, 2, 3));
        assert_eq!(grid_size(shape, 2, 3), (2 * 6 + 3 * 2, 3 * 4 + 4 * 2));
        // Image 2 of block 1 (grid row 1, column 0), its pixel 2 (row 0, column 2) -> value 14/17.
        let (x, y) = (GAP + SCALE * 2, GAP + (SCALE * 2 + GAP));
        let grey = (255.0 * 14.0_f64 / 17.0).round() as u8;
        for (dx, dy) in [(0, 0), (1, 1)] {
            assert_eq!(canvas.pixel((x + dx) as u32, (y + dy) as u32), Rgb(grey, grey, grey));
        }
        // Block 2 starts a new grid row: its white pixel 4 (row 1, column 1) in grid row 2.
        let (x, y) = (GAP + SCALE, GAP + 2 * (SCALE * 2 + GAP) + SCALE);
        assert_eq!(canvas.pixel(x as u32, y as u32), Rgb::WHITE);
        // The empty second tile of block 1's last grid row stays background.
        let (x, y) = (GAP + (SCALE * 3 + GAP), GAP + (SCALE * 2 + GAP));
        assert_eq!(canvas.pixel(x as u32, y as u32), Rgb(128, 128, 128));
    }
}

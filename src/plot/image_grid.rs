//! Grids of grey-scale or colour images, block after block (for example noisy / denoised / clean images of a
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
    /// Values per pixel, channels-last: 1 (grey) or 3 (red, green, blue).
    pub channels: usize,
}

/// Pixel size `(width, height)` of a grid of `cols x rows` tiles of `shape`:
/// `cols (SCALE width) + (cols + 1) GAP` by `rows (SCALE height) + (rows + 1) GAP`.
pub fn grid_size(shape: ImageShape, cols: usize, rows: usize) -> (u32, u32) {
    let side = |n: usize, pixels: usize| (n * SCALE * pixels + (n + 1) * GAP) as u32;
    (side(cols, shape.width), side(rows, shape.height))
}

/// Tiles the rows of each block in `blocks` (values in `[0, 1]`, `height * width * channels` each,
/// row-major channels-last; 0 black, 1 white or full intensity) `cols` to a grid row, block after block, on a mid-grey background. A block whose row count is
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
            let level = |v: f64| (255.0 * v.clamp(0.0, 1.0)).round() as u8;
            for (p, pixel) in image.chunks_exact(shape.channels.max(1)).enumerate() {
                let colour = match pixel {
                    [r, g, b] => Rgb(level(*r), level(*g), level(*b)),
                    _ => Rgb(level(pixel[0]), level(pixel[0]), level(pixel[0])),
                };
                let (x, y) = (left + SCALE * (p % shape.width), top + SCALE * (p / shape.width));
                canvas.fill_rect(x as i64, y as i64, SCALE as u32, SCALE as u32, colour);
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
        let shape = ImageShape { height: 2, width: 3, channels: 1 };
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

    #[test]
    fn colour_images_are_read_channels_last() {
        // One 1 x 2 RGB image: a red pixel, then a (0, 0.5, 1) pixel.
        let shape = ImageShape { height: 1, width: 2, channels: 3 };
        let canvas = image_grid(shape, 1, &[&Mat::from_vec(1, 6, vec![1.0, 0.0, 0.0, 0.0, 0.5, 1.0])]);
        assert_eq!(canvas.pixel(GAP as u32, GAP as u32), Rgb(255, 0, 0));
        assert_eq!(canvas.pixel((GAP + SCALE) as u32, GAP as u32), Rgb(0, 128, 255));
    }
}

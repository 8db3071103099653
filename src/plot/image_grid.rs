//! A grid of greyscale images: one grid row per set (for example noisy / denoised / clean), one column
//! per image, pixel values in `[0, 1]` (clipped) drawn as `scale x scale` squares with a 2-pixel gutter.

use super::canvas::{Canvas, Rgb};
use crate::linalg::Mat;

/// Gutter between images, in canvas pixels.
const GUTTER: u32 = 2;

/// Draws `sets[r]` (one `height x width` single-channel image per row of the matrix, all sets with the
/// same number of images) as grid row `r`.
pub fn image_grid(sets: &[&Mat<f64>], height: usize, width: usize, scale: u32) -> Canvas {
    let columns = sets.iter().map(|s| s.rows()).max().unwrap_or(0) as u32;
    let (cell_w, cell_h) = (width as u32 * scale + GUTTER, height as u32 * scale + GUTTER);
    let mut canvas = Canvas::new(columns * cell_w + GUTTER, sets.len() as u32 * cell_h + GUTTER, Rgb::WHITE);
    for (r, set) in sets.iter().enumerate() {
        for i in 0..set.rows() {
            let (x0, y0) = (GUTTER + i as u32 * cell_w, GUTTER + r as u32 * cell_h);
            for (k, v) in set.row(i).iter().enumerate().take(height * width) {
                let grey = if v.is_nan() {
                    Rgb::MISSING
                } else {
                    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    Rgb(g, g, g)
                };
                let (px, py) = (x0 + (k % width) as u32 * scale, y0 + (k / width) as u32 * scale);
                canvas.fill_rect(i64::from(px), i64::from(py), scale, scale, grey);
            }
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_land_in_their_cells_clipped_to_grey_levels() {
        // Two sets of one 1x2 image at scale 3: values 0.5, 2.0 (clipped to white) / -1.0 (black), 0.0.
        let a = Mat::from_vec(1, 2, vec![0.5, 2.0]);
        let b = Mat::from_vec(1, 2, vec![-1.0, 0.0]);
        let c = image_grid(&[&a, &b], 1, 2, 3);
        assert_eq!((c.width(), c.height()), (2 * 3 + 2 + 2, 2 * (3 + 2) + 2));
        assert_eq!(c.pixel(2, 2), Rgb(128, 128, 128));
        assert_eq!(c.pixel(5 + 2, 2 + 2), Rgb(255, 255, 255));
        assert_eq!(c.pixel(2, 7), Rgb(0, 0, 0));
        assert_eq!(c.pixel(0, 0), Rgb::WHITE, "gutter");
    }
}

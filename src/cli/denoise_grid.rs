//! The picture of `tweedie denoise --png`: for the first few images, rows of the clean image (when known),
//! the noisy input, the posterior mean, the per-pixel standard deviation and the top principal
//! directions, so that where and how the denoiser is unsure can be seen at a glance.

use crate::linalg::Mat;
use crate::plot::{image_grid, ImageShape};
use crate::uncertainty::PrincipalComponents;
use std::path::Path;

/// Images (columns) in the picture.
const GRID_IMAGES: usize = 8;

/// What the picture shows, one `N x D` matrix of pixels per row kind (only the first
/// [`GRID_IMAGES`] rows are drawn).
pub(super) struct DenoiseGrid<'a> {
    pub clean: Option<&'a Mat<f64>>,
    pub noisy: &'a Mat<f64>,
    pub means: &'a Mat<f64>,
    pub stds: &'a Mat<f64>,
    pub components: Option<&'a [PrincipalComponents]>,
}

/// Pixels in `[0, 1]` for display: images clipped; standard deviations divided by the largest one shown
/// (white = most uncertain); principal directions `0.5 + 0.5 v / max |v|` per image (grey = 0, sign
/// arbitrary, as for any eigenvector).
pub(super) fn write_denoise_grid(
    grid: &DenoiseGrid<'_>,
    shape: ImageShape,
    path: &Path,
) -> anyhow::Result<()> {
    let n = GRID_IMAGES.min(grid.noisy.rows());
    let first = |m: &Mat<f64>| m.slice_rows(0, n);
    let stds = first(grid.stds);
    let top = stds.as_slice().iter().fold(0.0f64, |a, &b| a.max(b));
    let stds = Mat::from_fn(n, stds.cols(), |i, j| if top > 0.0 { stds.at(i, j) / top } else { 0.0 });
    let mut blocks: Vec<Mat<f64>> = grid.clean.map(first).into_iter().collect();
    blocks.extend([first(grid.noisy), first(grid.means), stds]);
    if let Some(components) = grid.components {
        let k = components.first().map_or(0, |c| c.directions.rows());
        for r in 0..k {
            let scales: Vec<f64> = (0..n)
                .map(|i| components[i].directions.row(r).iter().fold(0.0f64, |a, b| a.max(b.abs())))
                .collect();
            blocks.push(Mat::from_fn(n, grid.noisy.cols(), |i, j| {
                let scale = scales[i];
                if scale > 0.0 {
                    0.5 + 0.5 * components[i].directions.at(r, j) / scale
                } else {
                    0.5
                }
            }));
        }
    }
    let refs: Vec<&Mat<f64>> = blocks.iter().collect();
    image_grid(shape, n, &refs).save_png(path)?;
    Ok(())
}

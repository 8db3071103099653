//! Figures of `tweedie sample --plot` and `tweedie plot-traces`: chains over the target's density
//! contours, and MMD² against step for one or several runs.

use crate::linalg::Mat;
use crate::metrics::Trace;
use crate::plot::{Canvas, Field, LinePlot, Rgb, ScatterFigure};
use crate::targets::{GaussianMixture, LogDensity};
use anyhow::{Context, Result};
use std::path::Path;

/// MMD² values below this are drawn at it on the log axis (the unbiased estimate can be <= 0 once the
/// chains match the reference).
pub const MMD2_FLOOR: f64 = 1e-4;

/// The marginal of `p` in coordinates 0 and 1 (a mixture again: same weights, sub-means, 2 x 2 blocks).
fn first_two_coordinates(p: &GaussianMixture) -> Result<GaussianMixture> {
    let means = p.means().iter().map(|m| m[..2].to_vec()).collect();
    let covs = p.covariances().iter().map(|c| Mat::from_fn(2, 2, |i, j| c.at(i, j))).collect();
    Ok(GaussianMixture::new(p.weights().to_vec(), means, covs)?)
}

/// The points (first two coordinates) over the density contours of `p`'s marginal; the window is the
/// marginal's mean +- 4 standard deviations per axis. `None` for a 1-D target.
pub fn samples_over_density(p: &GaussianMixture, x: &Mat<f64>, title: &str) -> Result<Option<ScatterFigure>> {
    if p.dim() < 2 {
        return Ok(None);
    }
    let m = first_two_coordinates(p)?;
    let (mean, cov) = (m.mean(), m.covariance());
    let range = |i: usize| {
        let s = 4.0 * cov.at(i, i).sqrt();
        (mean[i] - s, mean[i] + s)
    };
    let (xr, yr) = (range(0), range(1));
    let density = Field::from_fn(120, 120, xr, yr, |a, b| m.log_density(&[a, b]).exp())?;
    let points: Vec<[f64; 2]> = x.row_iter().map(|r| [r[0], r[1]]).collect();
    Ok(Some(ScatterFigure::new(title, xr, yr)?.with_density(density).with_points(points)))
}

/// MMD² against step, one series per `(name, trace)`, log y with values floored at [`MMD2_FLOOR`].
pub fn mmd_traces(title: &str, traces: &[(String, Trace)]) -> LinePlot {
    let mut plot =
        LinePlot::new(title).with_axis_labels("step", format!("MMD^2 (floored at {MMD2_FLOOR:e})"));
    for (name, t) in traces {
        plot.add_series(
            name.clone(),
            t.steps.iter().zip(&t.values).map(|(&s, &v)| (s as f64, v.max(MMD2_FLOOR))),
        );
    }
    plot
}

/// Canvases side by side, tops aligned, on white.
pub fn side_by_side(parts: &[Canvas]) -> Canvas {
    let width: u32 = parts.iter().map(Canvas::width).sum();
    let height = parts.iter().map(Canvas::height).max().unwrap_or(1);
    let mut out = Canvas::new(width.max(1), height, Rgb::WHITE);
    let mut left = 0i64;
    for c in parts {
        for y in 0..c.height() {
            for x in 0..c.width() {
                out.set(left + i64::from(x), i64::from(y), c.pixel(x, y));
            }
        }
        left += i64::from(c.width());
    }
    out
}

/// Saves a canvas as PNG, naming the file in errors.
pub fn save(canvas: &Canvas, path: &Path) -> Result<()> {
    canvas.save_png(path).with_context(|| format!("--plot {}", path.display()))
}

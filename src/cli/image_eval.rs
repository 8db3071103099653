//! What `tweedie eval` adds for a U-Net image model with a second-order head: the held-out D2SM loss,
//! and what the learned `s2` costs against the autodiff Jacobian of `s1` for the same diagonal.

use crate::linalg::Mat;
use crate::models::ImageScoreModel;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::time::Instant;

/// Held-out images the cost comparison times, one at a time.
const COST_IMAGES: usize = 4;

/// Tangent rows per pass of the exact Jacobian diagonal.
const TANGENTS_PER_PASS: usize = 64;

/// Per image (of the first [`COST_IMAGES`] held-out images, noised at `sigma`), interleaved: one forward
/// pass of the head (`S2` and so its diagonal `diag(U U^T) + d`), and the exact diagonal of the Jacobian
/// of `s1` by `D` JVPs (unit tangent rows, [`TANGENTS_PER_PASS`] per pass); the median milliseconds
/// of each and the relative difference of the two diagonals.
pub(super) fn s2_cost(
    model: &ImageScoreModel<f32>,
    rows: &Mat<f64>,
    sigma: f64,
    seed: u64,
) -> serde_json::Value {
    let dim = model.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut learned_ms, mut autodiff_ms) = (Vec::new(), Vec::new());
    let (mut diff_sq, mut norm_sq) = (0.0, 0.0);
    for i in 0..COST_IMAGES.min(rows.rows()) {
        let noisy = Mat::from_fn(1, dim, |_, j| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (rows.at(i, j) + sigma * z) as f32
        });
        let start = Instant::now();
        let Some((u, d)) = model.second_order_at(&noisy, sigma) else { break };
        learned_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let jacobian = model.jacobian_diagonal(&noisy, sigma, TANGENTS_PER_PASS);
        autodiff_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let rank = u.cols() / dim;
        for j in 0..dim {
            let uu: f64 = u.row(0)[j * rank..(j + 1) * rank].iter().map(|v| f64::from(*v).powi(2)).sum();
            let (learned, exact) = (uu + f64::from(d.at(0, j)), f64::from(jacobian.at(0, j)));
            diff_sq += (learned - exact).powi(2);
            norm_sq += exact * exact;
        }
    }
    serde_json::json!({
        "images": learned_ms.len(),
        "learned_ms_per_image": median(&mut learned_ms),
        "autodiff_diag_ms_per_image": median(&mut autodiff_ms),
        "autodiff_diag": format!("exact: {dim} JVPs (unit tangent rows, {TANGENTS_PER_PASS} per pass)"),
        "learned_vs_autodiff_diag_rel_diff": (diff_sq / norm_sq).sqrt(),
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Images in the PNG grid of `tweedie eval --png`.
const GRID_IMAGES: usize = 8;

/// Writes a PNG grid of the first [`GRID_IMAGES`] held-out images: noisy `x~ = x + sigma z` (seeded),
/// the Tweedie denoiser `x~ + sigma^2 s1(x~)` and clean rows (pixels mapped from `pixels` back to
/// `[0, 1]` and clipped there for display).
pub(super) fn write_denoising_grid(
    model: &ImageScoreModel<f32>,
    rows: &Mat<f64>,
    sigma: f64,
    pixels: crate::data::PixelRange,
    seed: u64,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let image = model.unet.image;
    anyhow::ensure!(
        image.channels == 1,
        "--png {}: draws single-channel images (this model's have {} channels)",
        path.display(),
        image.channels
    );
    let clean = rows.slice_rows(0, GRID_IMAGES.min(rows.rows()));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noisy = Mat::from_fn(clean.rows(), clean.cols(), |i, j| {
        let z: f64 = StandardNormal.sample(&mut rng);
        clean.at(i, j) + sigma * z
    });
    let s1 = model.score_at(&noisy.cast(), sigma);
    let denoised = Mat::from_fn(clean.rows(), clean.cols(), |i, j| {
        noisy.at(i, j) + sigma * sigma * f64::from(s1.at(i, j))
    });
    let shape = crate::plot::ImageShape { height: image.height, width: image.width, channels: 1 };
    let blocks = [&noisy, &denoised, &clean].map(|b| pixels.to_unit(b));
    let canvas = crate::plot::image_grid(shape, clean.rows(), &[&blocks[0], &blocks[1], &blocks[2]]);
    canvas.save_png(path)?;
    Ok(())
}

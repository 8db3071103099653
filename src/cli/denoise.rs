//! `tweedie denoise`: the posterior mean, per-coordinate standard deviations, principal directions and
//! samples of the clean point behind each noisy input, from a learned second-order head (one pass) or
//! the autodiff route (`--autodiff`: Jacobian diagonal and subspace iteration by JVPs of `s1`), written
//! as NPY; with `--clean`, their calibration against the clean points. `--input mnist:test` (a data set's
//! split) takes its images as the clean points and denoises noisy copies drawn at `--sigma`.

use super::data_dir_arg::DataDirArg;
use super::denoise_grid::{write_denoise_grid, DenoiseGrid};
use super::input_points::{load_input, InputKind};
use crate::data::{claim_output, expect_width, load_points, write_npy, PixelRange};
use crate::linalg::Mat;
use crate::models::{Model, ScoreModel};
use crate::plot::ImageShape;
use crate::train::Checkpoint;
use crate::uncertainty::{
    best_scalar_variance, image_posterior_moments, isotropic_nll, jacobian_variances, posterior_means,
    CalibrationReport, DiagonalProbes, IteratedComponents, PosteriorCovariance, PosteriorMoments,
    PrincipalComponents, ScoreJvp, SplitConformal, SubspaceIteration, UncertaintyError, CONFORMAL_LEVEL,
    VARIANCE_FLOOR,
};
use anyhow::{bail, Context, Result};
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};

/// Arguments of `tweedie denoise`.
#[derive(Args, Debug)]
pub struct DenoiseArgs {
    /// A checkpoint written by `tweedie train` (a score model; a second-order head unless --autodiff).
    #[arg(long)]
    model: PathBuf,
    /// Noisy points (N x D) as .npy, .csv, .csv.gz, .tsv or .txt; or the images of a data set's split
    /// (mnist:test, digits:test, ...), taken as the clean points: noisy copies are drawn at --sigma
    /// (seeded by --seed) and the metrics computed against the images.
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// With a data set as --input: the first N images only.
    #[arg(long)]
    images: Option<usize>,
    /// The clean points behind the noisy ones (N x D): prints the calibration metrics.
    #[arg(long)]
    clean: Option<PathBuf>,
    /// Noise level of the inputs (default: the one the model was trained at).
    #[arg(long)]
    sigma: Option<f64>,
    /// Principal directions to write per point (pcs.npy, N x K x D, and pc_variances.npy, N x K).
    #[arg(long, default_value_t = 0)]
    pcs: usize,
    /// Samples of the Gaussian approximation to write per point (samples.npy, N x S x D; learned heads).
    #[arg(long, default_value_t = 0)]
    samples: usize,
    /// The autodiff route: standard deviations from the Jacobian diagonal of s1 and principal
    /// directions by subspace iteration with JVPs (for models without a second-order head).
    #[arg(long)]
    autodiff: bool,
    /// With --autodiff: subspace iterations per direction (1 + K N network calls per point).
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// With --autodiff: Hutchinson probes for the Jacobian diagonal (default: D exact JVPs).
    #[arg(long)]
    probes: Option<usize>,
    /// Seed of the samples, probes and starting subspaces.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (created if needed): mean.npy, std.npy, the files above, and noisy.npy when the
    /// noisy points were drawn from a data set's images.
    #[arg(long)]
    out: PathBuf,
    /// Image models: a PNG of the first 8 images: clean (when known), noisy, posterior mean,
    /// per-pixel standard deviation and the --pcs principal directions, one row each.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// What one route gives at every point.
struct Estimate {
    means: Mat<f64>,
    stds: Mat<f64>,
    covariances: Option<Vec<PosteriorCovariance>>,
    components: Option<Vec<PrincipalComponents>>,
    samples: Option<Vec<f64>>,
    network_calls: usize,
    psd_clipped: f64,
}

/// `--pcs K` errors name the flag.
fn pcs_error(k: usize) -> impl Fn(UncertaintyError) -> anyhow::Error {
    move |e| anyhow::anyhow!("--pcs {k}: {e}")
}

/// The learned head's moments, clipped to a variance floor, and their components and samples.
fn learned(moments: Vec<PosteriorMoments>, x: &Mat<f64>, sigma: f64, args: &DenoiseArgs) -> Result<Estimate> {
    let (n, dim) = (x.rows(), x.cols());
    let means = Mat::from_vec(n, dim, moments.iter().flat_map(|m| m.mean.clone()).collect());
    let mut covariances: Vec<PosteriorCovariance> = moments.into_iter().map(|m| m.covariance).collect();
    let floor = VARIANCE_FLOOR * sigma * sigma;
    let psd_clipped = covariances.iter_mut().map(|c| c.clip_to_psd(floor)).sum::<f64>() / n as f64;
    let stds = Mat::from_vec(n, dim, covariances.iter().flat_map(|c| c.variances()).map(f64::sqrt).collect());
    let components = (args.pcs > 0)
        .then(|| covariances.iter().map(|c| c.principal_components(args.pcs)).collect::<Result<Vec<_>, _>>())
        .transpose()
        .map_err(pcs_error(args.pcs))?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let samples = (args.samples > 0)
        .then(|| -> Result<Vec<f64>, UncertaintyError> {
            let mut out = Vec::with_capacity(n * args.samples * dim);
            for (c, m) in covariances.iter().zip(means.row_iter()) {
                out.extend(c.samples(m, args.samples, &mut rng)?.into_vec());
            }
            Ok(out)
        })
        .transpose()?;
    Ok(Estimate {
        means,
        stds,
        covariances: Some(covariances),
        components,
        samples,
        network_calls: 2,
        psd_clipped,
    })
}

/// The autodiff route: variances from the Jacobian diagonal, components by subspace iteration.
fn autodiff(s1: &dyn ScoreJvp, x: &Mat<f64>, sigma: f64, args: &DenoiseArgs) -> Result<Estimate> {
    if args.samples > 0 {
        bail!("--samples {} needs a learned second-order head (the autodiff route gives variances and principal directions, not a covariance to sample)", args.samples);
    }
    let (n, dim) = (x.rows(), x.cols());
    let probes = match args.probes {
        Some(probes) => DiagonalProbes::Hutchinson { probes, seed: args.seed },
        None => DiagonalProbes::Exact,
    };
    let mut variances =
        jacobian_variances(s1, x, sigma, probes).map_err(|e| anyhow::anyhow!("--probes: {e}"))?;
    let floor = VARIANCE_FLOOR * sigma * sigma;
    let mut clipped = 0.0;
    for v in variances.as_mut_slice() {
        clipped += (floor - *v).max(0.0);
        *v = v.max(floor);
    }
    let stds = Mat::from_vec(n, dim, variances.as_slice().iter().map(|v| v.sqrt()).collect());
    let (means, components, calls) = if args.pcs > 0 {
        let settings =
            SubspaceIteration { components: args.pcs, iterations: args.iterations, seed: args.seed };
        let it = IteratedComponents::compute(s1, x, sigma, settings).map_err(|e| match e {
            UncertaintyError::BadSetting { .. } => anyhow::anyhow!("--iterations {}: {e}", args.iterations),
            e => pcs_error(args.pcs)(e),
        })?;
        (it.means, Some(it.components), it.network_calls)
    } else {
        (posterior_means(&s1.score_and_jvps(x, &Mat::zeros(0, dim)).0, x, sigma), None, 1)
    };
    let network_calls = calls + probes.jvps(dim);
    Ok(Estimate {
        means,
        stds,
        covariances: None,
        components,
        samples: None,
        network_calls,
        psd_clipped: clipped / n as f64,
    })
}

/// Loads `--clean`, which must have the shape of the noisy points.
fn load_clean(path: &Path, noisy: &Mat<f64>, input: &Path) -> Result<Mat<f64>> {
    let clean = load_points(path)?;
    if (clean.rows(), clean.cols()) != (noisy.rows(), noisy.cols()) {
        bail!(
            "--clean {}: {} x {} points (expected {} x {}, the shape of --input {})",
            path.display(),
            clean.rows(),
            clean.cols(),
            noisy.rows(),
            noisy.cols(),
            input.display()
        );
    }
    Ok(clean)
}

/// The calibration metrics of an estimate against the clean points.
fn metrics(estimate: &Estimate, clean: &Mat<f64>, sigma: f64) -> Result<serde_json::Value> {
    let (n, dim) = (clean.rows(), clean.cols());
    let errors = Mat::from_fn(n, dim, |i, j| clean.at(i, j) - estimate.means.at(i, j));
    let report = CalibrationReport::measure(
        &errors,
        estimate.covariances.as_deref(),
        &estimate.stds,
        estimate.components.as_deref(),
    )?;
    let mut value = report.to_json();
    value["nll_isotropic"] = isotropic_nll(&errors, sigma * sigma).into();
    value["nll_scalar"] = isotropic_nll(&errors, best_scalar_variance(&errors)).into();
    value["mse_per_dim"] = (errors.norm_sq() / (n * dim) as f64).into();
    if n >= 20 {
        let half = n / 2;
        let fit = SplitConformal::fit(
            &errors.slice_rows(0, half),
            &estimate.stds.slice_rows(0, half),
            CONFORMAL_LEVEL,
        )?;
        let test = fit.evaluate(&errors.slice_rows(half, n), &estimate.stds.slice_rows(half, n));
        value["conformal_scale"] = fit.scale.into();
        value["conformal"] = serde_json::to_value(test)?;
    }
    Ok(value)
}

/// The noisy points and, when known, the clean ones: from `--input` and `--clean`, or noisy copies of a
/// data set's images drawn at `sigma`.
fn load_noisy_and_clean(
    args: &DenoiseArgs,
    sigma: f64,
    pixels: PixelRange,
) -> Result<(Mat<f64>, Option<Mat<f64>>)> {
    let (points, kind) = load_input(&args.input, &args.data_dir, pixels)?;
    if kind == InputKind::File {
        if let Some(n) = args.images {
            bail!("--images {n}: only with a data set as --input (such as mnist:test), not a points file");
        }
        let clean = args.clean.as_deref().map(|c| load_clean(c, &points, &args.input)).transpose()?;
        return Ok((points, clean));
    }
    if let Some(c) = &args.clean {
        bail!(
            "--clean {}: --input {} is a data set, whose images are already the clean points",
            c.display(),
            args.input.display()
        );
    }
    let n = match args.images {
        Some(0) => bail!("--images 0: expected at least one image"),
        Some(n) => n.min(points.rows()),
        None => points.rows(),
    };
    let clean = points.slice_rows(0, n);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let noisy = Mat::from_fn(n, clean.cols(), |i, j| {
        let z: f64 = StandardNormal.sample(&mut rng);
        clean.at(i, j) + sigma * z
    });
    Ok((noisy, Some(clean)))
}

/// The model of `--model` as the routes need it: a point-cloud score network or an image score model,
/// each with or without a second-order head.
enum Denoiser {
    Points(ScoreModel<f32>),
    Image(crate::models::ImageScoreModel<f32>),
}

impl Denoiser {
    fn dim(&self) -> usize {
        match self {
            Denoiser::Points(m) => m.dim(),
            Denoiser::Image(m) => m.dim(),
        }
    }

    /// The posterior moments at every row of `x` from one pass of `s1` and of the head; `None` without a
    /// head.
    fn moments(&self, x: &Mat<f64>, sigma: f64) -> Option<Result<Vec<PosteriorMoments>, UncertaintyError>> {
        match self {
            Denoiser::Points(m) => m.s2.is_some().then(|| PosteriorMoments::at_rows(m, x, sigma)),
            Denoiser::Image(m) => m.s2.is_some().then(|| image_posterior_moments(m, x, sigma)),
        }
    }

    fn s1(&self) -> &dyn ScoreJvp {
        match self {
            Denoiser::Points(m) => &m.s1,
            Denoiser::Image(m) => m,
        }
    }
}

/// The image shape of `--png`: single-channel image models only.
fn png_shape(model: &Denoiser, png: &Path) -> Result<ImageShape> {
    let Denoiser::Image(m) = model else {
        bail!("--png {}: draws images (the model is a point-cloud score network)", png.display());
    };
    let (height, width, channels) = m.image_shape();
    if channels != 1 {
        bail!("--png {}: draws single-channel images (this model's have {channels} channels)", png.display());
    }
    Ok(ImageShape { height, width, channels })
}

/// Runs `tweedie denoise`.
pub fn denoise(args: DenoiseArgs) -> Result<()> {
    let checkpoint = Checkpoint::load(&args.model)?;
    let sigma = args.sigma.unwrap_or(checkpoint.config.sigma);
    if !(sigma > 0.0 && sigma.is_finite()) {
        bail!("--sigma {sigma}: expected a finite noise level > 0");
    }
    let model = match checkpoint.eval_model() {
        Model::Score(m) => Denoiser::Points(m),
        // Conditioned on the inputs' noise level, for both routes.
        Model::Image(m) => Denoiser::Image(crate::models::ImageScoreModel { sigma, ..m }),
        other => bail!(
            "{}: {} (expected a score network: s1, with an s2 head or --autodiff)",
            args.model.display(),
            other.description()
        ),
    };
    let (noisy, clean) = load_noisy_and_clean(&args, sigma, checkpoint.config.pixels)?;
    expect_width(&noisy, &args.input, model.dim())?;
    let png_shape = args.png.as_deref().map(|png| png_shape(&model, png)).transpose()?;
    let start = std::time::Instant::now();
    let estimate = if args.autodiff {
        autodiff(model.s1(), &noisy, sigma, &args)?
    } else {
        let Some(moments) = model.moments(&noisy, sigma) else {
            bail!(
                "{}: the model has no second-order head, so no learned covariance (use --autodiff for the autodiff route: Jacobian diagonal and subspace iteration on s1)",
                args.model.display()
            );
        };
        learned(moments?, &noisy, sigma, &args)?
    };

    let seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the folder", args.out.display()))?;
    let mut inputs = vec![("--model", args.model.as_path()), ("--input", args.input.as_path())];
    if let Some(c) = &args.clean {
        inputs.push(("--clean", c.as_path()));
    }
    let (n, dim) = (noisy.rows(), noisy.cols());
    let mut files: Vec<(&str, Vec<usize>, Vec<f64>)> = vec![
        ("mean.npy", vec![n, dim], estimate.means.as_slice().to_vec()),
        ("std.npy", vec![n, dim], estimate.stds.as_slice().to_vec()),
    ];
    if let Some(pcs) = &estimate.components {
        let k = args.pcs;
        files.push((
            "pcs.npy",
            vec![n, k, dim],
            pcs.iter().flat_map(|p| p.directions.as_slice().to_vec()).collect(),
        ));
        files.push(("pc_variances.npy", vec![n, k], pcs.iter().flat_map(|p| p.variances.clone()).collect()));
    }
    if let Some(samples) = &estimate.samples {
        files.push(("samples.npy", vec![n, args.samples, dim], samples.clone()));
    }
    if args.clean.is_none() && clean.is_some() {
        // The noisy copies this run drew from a data set's images.
        files.push(("noisy.npy", vec![n, dim], noisy.as_slice().to_vec()));
    }
    let mut written = Vec::new();
    for (name, shape, data) in &files {
        let path = args.out.join(name);
        let _claim = claim_output(&path, &inputs)?;
        write_npy(&path, shape, data)?;
        written.push(path);
    }
    if let (Some(png), Some(shape)) = (&args.png, png_shape) {
        let grid = DenoiseGrid {
            clean: clean.as_ref(),
            noisy: &noisy,
            means: &estimate.means,
            stds: &estimate.stds,
            components: estimate.components.as_deref(),
        };
        let _claim = claim_output(png, &inputs)?;
        write_denoise_grid(&grid, shape, png)?;
        written.push(png.clone());
    }
    let mut value = serde_json::json!({
        "written": written, "points": n, "dim": dim, "sigma": sigma,
        "route": if args.autodiff { "autodiff" } else { "learned" },
        "network_calls": estimate.network_calls, "psd_clipped": estimate.psd_clipped,
        "ms_per_point": seconds * 1e3 / n as f64,
    });
    if let Some(clean) = &clean {
        value["metrics"] = metrics(&estimate, clean, sigma)?;
    }
    if args.json {
        println!("{value}");
    } else {
        println!(
            "{} points, D = {dim}, sigma = {sigma}, {} route, {} network calls per point",
            n,
            value["route"].as_str().unwrap_or("?"),
            estimate.network_calls
        );
        for path in &written {
            println!("wrote {}", path.display());
        }
        if let Some(map) = value["metrics"].as_object() {
            for (key, v) in map {
                println!("| {key} | {v} |");
            }
        }
    }
    Ok(())
}

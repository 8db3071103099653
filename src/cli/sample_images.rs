//! `tweedie sample --model FILE` on a noise-conditional U-Net image model: annealed Langevin or annealed
//! Ozaki over the checkpoint's noise schedule, a final Tweedie denoising step, PNG grids of the samples
//! and of a few chains over the levels, and the image metrics (MMD² against held-out test images in
//! pixel space, class balance of the samples' nearest training images).

use super::sample::{SampleArgs, SamplerKind};
use super::sample_plots::save;
use crate::data::{load_image_spec, DataDir, ImageSet, ImageSpec, PixelRange, Split};
use crate::linalg::Mat;
use crate::metrics::{class_balance, MmdEstimator};
use crate::models::{ImageScoreModel, NoiseSchedule};
use crate::plot::{image_grid, ImageShape};
use crate::samplers::{
    run, AnnealedOzaki, AnnealedSettings, AnnealedUla, Chains, OzakiSolver, Sampler, SamplerObserver,
    SamplerStep,
};
use crate::train::Checkpoint;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

/// Steps per level when neither `--steps-per-level` nor `--steps` is given.
const DEFAULT_STEPS_PER_LEVEL: usize = 5;

/// Chains when `--chains` is not given.
pub(super) const DEFAULT_IMAGE_CHAINS: usize = 64;

/// Chains drawn in the chains-over-levels PNG.
const CHAINS_SHOWN: usize = 8;

/// Samples per row of the final grid.
const GRID_COLUMNS: usize = 8;

/// The settings of an annealed run on an image model: the checkpoint's schedule unless the flags
/// override it, `T` steps per level, and the NCSN step size `eps` as the per-unit-variance
/// `h = eps / sigma_L^2` the samplers take (level `i` steps with `eps sigma_i^2 / sigma_L^2`).
fn settings(args: &SampleArgs, path: &Path, model: &ImageScoreModel<f32>) -> Result<AnnealedSettings> {
    let sampler = args.sampler_name();
    let Some(trained) = model.schedule else {
        bail!(
            "--model {}: a single-sigma image model (trained at sigma {}) cannot drive --sampler {sampler}, which needs scores at every noise level (train with --sigmas HI:LO:N for a noise-conditional model)",
            path.display(),
            model.sigma
        );
    };
    let schedule = NoiseSchedule {
        hi: args.sigma_max.unwrap_or(trained.hi),
        lo: args.sigma_min.unwrap_or(trained.lo),
        levels: args.levels.unwrap_or(trained.levels),
    };
    if schedule.levels == 0 {
        bail!("--levels 0: expected at least one noise level");
    }
    let steps_per_level = match (args.steps_per_level, args.steps) {
        (Some(t), _) => t,
        (None, Some(steps)) => steps / schedule.levels,
        (None, None) => DEFAULT_STEPS_PER_LEVEL,
    };
    if steps_per_level == 0 {
        bail!(
            "--steps-per-level 0 (or --steps below the {} levels): each level needs at least one step",
            schedule.levels
        );
    }
    // The last level is exactly `lo`.
    let step_size = args.step_size / (schedule.lo * schedule.lo);
    Ok(AnnealedSettings { schedule, steps_per_level, step_size, denoise: true })
}

/// Loads one split of the image set, scaled to the model's pixel range, and checks that its images are
/// the model's.
fn load_split(
    spec: &ImageSpec,
    split: Split,
    data_dir: &DataDir,
    model: &ImageScoreModel<f32>,
    pixels: PixelRange,
) -> Result<ImageSet> {
    let mut set = load_image_spec(spec, split, data_dir).with_context(|| format!("--target {spec}"))?;
    pixels.apply(&mut set.pixels);
    let want = model.unet.image;
    if (set.height, set.width, set.channels) != (want.height, want.width, want.channels) {
        let colour = |c: usize| if c == 1 { "greyscale" } else { "RGB" };
        bail!(
            "--target {spec}: {} {}x{} images ({} channel(s)), but the model samples {} {}x{} images ({} channel(s))",
            colour(set.channels),
            set.height,
            set.width,
            set.channels,
            colour(want.channels),
            want.height,
            want.width,
            want.channels
        );
    }
    Ok(set)
}

/// The mean training image plus `N(0, sigma_1^2 I)` noise, drawn from a stream no chain uses: close to
/// `q_sigma_1` when `sigma_1` dominates the spread of the data.
fn initial_positions(chains: usize, train: &Mat<f64>, sigma_1: f64, seed: u64) -> Mat<f64> {
    let dim = train.cols();
    let mut mean = vec![0.0; dim];
    train.row_iter().for_each(|r| mean.iter_mut().zip(r).for_each(|(m, v)| *m += v));
    mean.iter_mut().for_each(|m| *m /= train.rows() as f64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::MAX - 1);
    Mat::from_fn(chains, dim, |_, j| {
        let z: f64 = StandardNormal.sample(&mut rng);
        mean[j] + sigma_1 * z
    })
}

/// The first [`CHAINS_SHOWN`] chains at the start and at the end of every level (the last one after
/// the denoising step), and a progress bar on a terminal.
struct LevelSnapshots {
    steps_per_level: usize,
    shown: usize,
    /// Per chain shown, its images one after another (`(levels + 1) x D`).
    frames: Vec<Vec<f64>>,
    bar: Option<ProgressBar>,
}

impl LevelSnapshots {
    fn new(steps_per_level: usize, total: usize, chains: usize, visible: bool) -> Self {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} steps  sigma {msg}  {per_sec}  eta {eta}")
                    .expect("a valid template"),
            );
            bar
        });
        let shown = chains.min(CHAINS_SHOWN);
        Self { steps_per_level, shown, frames: vec![Vec::new(); shown], bar }
    }

    fn record(&mut self, chains: &Chains) {
        for (i, frames) in self.frames.iter_mut().enumerate() {
            frames.extend_from_slice(chains.positions().row(i));
        }
    }

    /// Rows = chains, columns = start, then each level.
    fn grid(&self, dim: usize) -> Mat<f64> {
        let columns = self.frames.first().map_or(0, |f| f.len() / dim.max(1));
        Mat::from_vec(self.shown * columns, dim, self.frames.concat())
    }
}

impl SamplerObserver for LevelSnapshots {
    fn on_start(&mut self, chains: &Chains) {
        self.record(chains);
    }

    fn on_step(&mut self, info: &SamplerStep, chains: &Chains) {
        if info.step.is_multiple_of(self.steps_per_level) {
            self.record(chains);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(info.step as u64);
            bar.set_message(format!("{:.3}", info.sigma.unwrap_or(f64::NAN)));
        }
    }
}

/// Writes a grid of images (`columns` per row), mapped from `pixels` back to `[0, 1]`, to `path`.
fn write_grid(
    images: &Mat<f64>,
    (model, pixels): (&ImageScoreModel<f32>, PixelRange),
    columns: usize,
    flag: &str,
    path: &Path,
) -> Result<()> {
    let image = model.unet.image;
    let shape = ImageShape { height: image.height, width: image.width, channels: image.channels };
    let canvas = image_grid(shape, columns, &[&pixels.to_unit(images)]);
    save(&canvas, path).with_context(|| format!("{flag} {}", path.display()))
}

/// A JSON number, or null for NaN / inf.
fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// Runs an annealed sampler on the image model of checkpoint `checkpoint` (read from `path`) and
/// returns its report.
pub(super) fn sample_images(
    args: &SampleArgs,
    path: &Path,
    checkpoint: &Checkpoint,
    model: &ImageScoreModel<f32>,
) -> Result<Value> {
    let wall = Instant::now();
    if !matches!(args.sampler, SamplerKind::AnnealedUla | SamplerKind::AnnealedOzaki) {
        bail!(
            "--sampler {}: --model {} is a U-Net image model, sampled with --sampler annealed-ula or annealed-ozaki",
            args.sampler_name(),
            path.display()
        );
    }
    let point_cloud_only = [
        ("--trace", args.trace.is_some()),
        ("--tol", args.tol.is_some()),
        ("--lanczos-iters", args.lanczos_iters.is_some()),
        ("--steps together with --steps-per-level", args.steps.is_some() && args.steps_per_level.is_some()),
    ];
    if let Some((flag, _)) = point_cloud_only.iter().find(|(_, given)| *given) {
        bail!(
            "{flag}: not for an image model (--model {} takes --steps-per-level, or --steps split over the levels)",
            path.display()
        );
    }
    let settings = settings(args, path, model)?;
    let target = args.target.clone().unwrap_or_else(|| checkpoint.config.target.clone());
    let spec: ImageSpec = target.parse().map_err(|e: String| anyhow::anyhow!("--target {target}: {e}"))?;
    let held_out = match spec.split {
        Split::Train => Split::Test,
        Split::Test => Split::Train,
    };
    let data_dir = args.data_dir.resolve();
    let pixels = checkpoint.config.pixels;
    let train = load_split(&spec, spec.split, &data_dir, model, pixels)?;
    let test = load_split(&spec, held_out, &data_dir, model, pixels)?;
    let reference = test.pixels.slice_rows(0, args.reference.unwrap_or(1000).min(test.pixels.rows()));
    let estimator =
        MmdEstimator::new(reference.clone()).with_context(|| format!("--reference on {spec}:{held_out}"))?;
    let classes = usize::from(train.labels.iter().copied().max().unwrap_or(0)) + 1;

    let chains_n = args.chains.unwrap_or(DEFAULT_IMAGE_CHAINS);
    let sigma_1 = settings.schedule.sigmas()[0];
    let x0 = initial_positions(chains_n, &train.pixels, args.init_std.unwrap_or(sigma_1), args.seed);
    let mut chains = Chains::new(x0, args.seed)?;
    let total = settings.total_steps();
    let mut snapshots = LevelSnapshots::new(settings.steps_per_level, total, chains_n, !args.json);
    let mut sampler: Box<dyn Sampler + '_> = match args.sampler {
        SamplerKind::AnnealedOzaki => {
            if model.second_order_head().is_none() {
                bail!(
                    "--model {}: --sampler annealed-ozaki needs a second-order head (train with --model s1s2 --s2 lowrank:R or --s2 diag); this model has none, use --sampler annealed-ula",
                    path.display()
                );
            }
            let solver = if args.dense_curvature { OzakiSolver::Eigen } else { OzakiSolver::LowRank };
            Box::new(AnnealedOzaki::new(settings.clone(), solver, args.clip_curvature, &model)?)
        }
        _ => Box::new(AnnealedUla::new(settings.clone(), &model)?),
    };
    let summary = run(&mut sampler, &mut chains, total, &mut snapshots);
    if let Some(bar) = &snapshots.bar {
        bar.finish_and_clear();
    }
    let live = chains.live_positions();
    let mmd2 = if live.rows() >= 2 { Some(estimator.mmd2(&live)?) } else { None };
    let balance = if live.rows() > 0 {
        Some(class_balance(&live, &train.pixels, &train.labels, classes)?)
    } else {
        None
    };
    // The same statistic of as many held-out images: the level sampling noise alone leaves.
    let shown_reference = reference.slice_rows(0, chains_n.min(reference.rows()));
    let balance_reference = class_balance(&shown_reference, &train.pixels, &train.labels, classes)?;
    if let Some(png) = &args.plot {
        write_grid(
            &live.slice_rows(0, live.rows().min(GRID_COLUMNS * GRID_COLUMNS)),
            (model, pixels),
            GRID_COLUMNS,
            "--plot",
            png,
        )?;
    }
    if let Some(png) = &args.plot_chains {
        write_grid(
            &snapshots.grid(model.dim()),
            (model, pixels),
            settings.schedule.levels + 1,
            "--plot-chains",
            png,
        )?;
    }
    if let Some(out) = &args.out {
        crate::data::write_npy(out, &[live.rows(), live.cols()], live.as_slice())
            .with_context(|| format!("--out {}", out.display()))?;
    }
    Ok(json!({
        "target": spec.to_string(),
        "reference": format!("{} images of the {held_out} split (held out from {spec})", reference.rows()),
        "sampler": args.sampler_name(),
        "source": "model",
        "model_trained_on": checkpoint.config.target,
        "dim": model.dim(),
        "pixels": pixels,
        "sigma_max": settings.schedule.sigmas()[0],
        "sigma_min": settings.schedule.sigmas().last(),
        "levels": settings.schedule.levels,
        "steps_per_level": settings.steps_per_level,
        "steps": total,
        "step_size": args.step_size,
        "step_size_per_unit_variance": settings.step_size,
        "chains": chains_n,
        "live_chains": live.rows(),
        "seed": args.seed,
        "clip_curvature": num(args.clip_curvature),
        "ozaki_solver": if args.dense_curvature { "dense eigen" } else { "thin factor" },
        "mmd2": mmd2.map_or(Value::Null, num),
        "mmd2_bandwidth": estimator.kernel().bandwidth(),
        "class_tv": balance.as_ref().map_or(Value::Null, |b| num(b.tv)),
        "class_counts": balance.map(|b| b.counts),
        "class_tv_reference": balance_reference.tv,
        "clipped_fraction": summary.clipped_fraction(),
        "diverged": summary.diverged.len(),
        "seconds": summary.seconds,
        "wall_seconds": wall.elapsed().as_secs_f64(),
    }))
}

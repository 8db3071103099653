//! `tweedie sample`: run one sampler on a named target (analytic scores, or a trained model) and print
//! its sample-quality and mixing metrics as one JSON object; a U-Net image model goes to
//! [`sample_images`](super::sample_images).

use super::data_dir_arg::DataDirArg;
use super::sample_plots::{mmd_traces, samples_over_density, save, side_by_side};
use super::target_help::TARGET_HELP;
use crate::data::{claim_output, write_npy};
use crate::memory_budget::MemoryBudget;
use crate::metrics::MmdEstimator;
use crate::models::{EnergyModel, Model, NoiseSchedule, ScoreModel};
use crate::samplers::{
    run, AnnealedOzaki, AnnealedSettings, AnnealedUla, ChainSeries, Chains, Mala, MmdTrace, Ozaki,
    OzakiSettings, OzakiSolver, SampleReport, Sampler, SamplerError, Ula,
};
use crate::targets::{GaussianMixture, NamedTarget};
use crate::train::Checkpoint;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The samplers of `tweedie sample`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SamplerKind {
    /// Unadjusted Langevin.
    Ula,
    /// Metropolis-adjusted Langevin (needs log p: analytic targets and energy models).
    Mala,
    /// Ozaki with the full curvature (eigen-decomposition per chain).
    Ozaki,
    /// Ozaki with the diagonal of the curvature.
    OzakiDiag,
    /// Ozaki with Lanczos matrix functions (matrix-free; low-rank + diagonal curvature).
    OzakiLowrank,
    /// Annealed Langevin over a geometric sigma schedule, then a Tweedie denoising step.
    AnnealedUla,
    /// Annealed Ozaki over a geometric sigma schedule, then a Tweedie denoising step.
    AnnealedOzaki,
}

impl SamplerKind {
    fn is_annealed(self) -> bool {
        matches!(self, SamplerKind::AnnealedUla | SamplerKind::AnnealedOzaki)
    }
}

/// Tolerance of `steps_to_tol` when `--tol` is not given.
const DEFAULT_TOL: f64 = 2e-3;
/// Lanczos iterations when `--lanczos-iters` is not given.
const DEFAULT_LANCZOS_ITERS: usize = 32;

/// Arguments of `tweedie sample`.
#[derive(Args, Debug)]
#[command(after_help = TARGET_HELP)]
pub struct SampleArgs {
    /// The target: its analytic scores drive the sampler (unless --model), and fresh draws of it are the
    /// reference of MMD², KSD and mode TV. For an image model: the image set whose held-out split is the
    /// reference and whose training split labels the samples [default: the set the model was trained on].
    #[arg(long, required_unless_present = "model")]
    pub(super) target: Option<String>,
    /// A trained checkpoint whose s1 (and s2) drive the sampler instead; the reference is then the
    /// target's noisy marginal q_sigma at the checkpoint's sigma (image models: held-out images).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The sampler (image models: annealed-ula or annealed-ozaki).
    #[arg(long, value_enum)]
    pub(super) sampler: SamplerKind,
    /// Number of steps (annealed: split evenly over the levels, remainder dropped); required except for
    /// image models, which take --steps-per-level.
    #[arg(long)]
    pub(super) steps: Option<usize>,
    /// Image models: steps at each noise level [default: 5, or --steps / levels].
    #[arg(long)]
    pub(super) steps_per_level: Option<usize>,
    /// Step size h (annealed: per unit noise variance, level i steps with h sigma_i^2). Image models:
    /// the NCSN step eps, level i stepping with eps sigma_i^2 / sigma_L^2.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) step_size: f64,
    /// Number of chains [default: 500; image models 64].
    #[arg(long)]
    pub(super) chains: Option<usize>,
    /// Ozaki curvature clip l_max: eigenvalues above it are replaced by it (`inf` disables clipping).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) clip_curvature: f64,
    /// Seed of every random draw (chain k uses stream k; the reference sample its own stream).
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Write the final positions of the chains that did not diverge (N x D, f64) to this .npy file.
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// Trace MMD² every EVERY steps (default: steps / 100, at least 1; 0: initial state only).
    #[arg(long, value_name = "EVERY")]
    pub(super) trace: Option<usize>,
    /// Draw the final chains over the target's density contours (first two coordinates) next to MMD²
    /// against step, as a PNG (image models: a grid of the final samples).
    #[arg(long, value_name = "FILE.png")]
    pub(super) plot: Option<PathBuf>,
    /// Image models: a PNG of the first 8 chains (rows) at the start and the end of every level
    /// (columns; the last after the denoising step).
    #[arg(long, value_name = "FILE.png")]
    pub(super) plot_chains: Option<PathBuf>,
    /// Print one JSON object (otherwise `key: value` lines).
    #[arg(long)]
    pub(super) json: bool,
    /// Standard deviation of the initial positions, x0 ~ N(0, std^2 I) [default: 3; image models: the
    /// mean training image plus noise of the largest level sigma_1].
    #[arg(long, allow_negative_numbers = true)]
    pub(super) init_std: Option<f64>,
    /// Size of the fresh reference sample (image models: the first N held-out images) [default: 1000].
    #[arg(long)]
    pub(super) reference: Option<usize>,
    /// Tolerance of steps_to_tol: first traced step with MMD² <= (stationary level) + TOL [default: 2e-3].
    #[arg(long, allow_negative_numbers = true)]
    pub(super) tol: Option<f64>,
    /// Lanczos iterations per matrix function (ozaki-lowrank) [default: 32].
    #[arg(long)]
    pub(super) lanczos_iters: Option<usize>,
    /// Largest noise level of the annealed schedule [default: 5; image models: the checkpoint's].
    #[arg(long, allow_negative_numbers = true)]
    pub(super) sigma_max: Option<f64>,
    /// Smallest noise level of the annealed schedule [default: 0.01; image models: the checkpoint's].
    #[arg(long, allow_negative_numbers = true)]
    pub(super) sigma_min: Option<f64>,
    /// Number of noise levels of the annealed schedule [default: 10; image models: the checkpoint's].
    #[arg(long)]
    pub(super) levels: Option<usize>,
    /// Image models, annealed-ozaki: the exact step from a dense eigen-decomposition of
    /// `U U^T + diag(d)` per chain (O(D^3)) instead of the thin factor (O(D r^2)), to measure the thin
    /// factor's approximation.
    #[arg(long)]
    pub(super) dense_curvature: bool,
    #[command(flatten)]
    pub(super) data_dir: DataDirArg,
}

impl SampleArgs {
    /// The sampler's name on the command line.
    pub(super) fn sampler_name(&self) -> String {
        self.sampler.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
    }

    /// `--steps`, required for point clouds.
    fn steps(&self) -> Result<usize> {
        self.steps
            .context("--steps is required (the number of sampler steps) unless --model is an image model")
    }

    fn chains(&self) -> usize {
        self.chains.unwrap_or(500)
    }

    fn reference(&self) -> usize {
        self.reference.unwrap_or(1000)
    }

    fn levels(&self) -> usize {
        self.levels.unwrap_or(10)
    }
}

/// Bytes a run needs, in f64: per chain its position, score, proposal and a few work vectors (8 of
/// dimension D) and a curvature matrix (D^2), the reference sample with its kernel rows, and the mixing
/// series (the second half of the steps, of at most 256 chains and 16 coordinates), all f64.
fn memory_estimate(args: &SampleArgs, steps: usize, dim: usize) -> f64 {
    let d = dim as f64;
    let chains = args.chains() as f64 * (8.0 * d + d * d);
    let reference = args.reference() as f64 * (2.0 * d + args.chains() as f64);
    let series = steps as f64 / 2.0 * (args.chains().min(256) * dim.min(16)) as f64;
    8.0 * (chains + reference + series)
}

/// A trained model (its evaluation weights: the EMA when averaging was on) as sampler sources for a
/// space of dimension `dim`.
fn load_model(c: Checkpoint, path: &Path, dim: usize) -> Result<LoadedModel> {
    if c.dim != dim {
        return Err(SamplerError::DimensionMismatch { what: "model", expected: dim, found: c.dim }.into());
    }
    let scores = match c.eval_model() {
        Model::Score(model) => ModelScores::Network(model),
        Model::Energy(model) => ModelScores::Energy(model),
        Model::Image(_) => {
            anyhow::bail!(
                "--model {}: a U-Net image model samples images: leave out --target, or give an image set",
                path.display()
            )
        }
    };
    Ok(LoadedModel { scores, sigma: c.config.sigma, trained_on: c.config.target.clone() })
}

/// Where the scores come from.
enum Source {
    Analytic,
    Model(Box<LoadedModel>),
}

/// The scores of a trained model: a score network's, or an energy model's (which also gives log p).
enum ModelScores {
    Network(ScoreModel<f32>),
    Energy(EnergyModel<f32>),
}

/// A trained model as the sources the samplers read.
struct LoadedModel {
    scores: ModelScores,
    /// The noise level it was trained at.
    sigma: f64,
    /// The target it was trained on (as recorded in the checkpoint).
    trained_on: String,
}

/// The fixed settings of the annealed samplers, from the flags.
fn annealed_settings(args: &SampleArgs) -> Result<AnnealedSettings> {
    let schedule = NoiseSchedule {
        hi: args.sigma_max.unwrap_or(5.0),
        lo: args.sigma_min.unwrap_or(0.01),
        levels: args.levels(),
    };
    let steps_per_level = args.steps()? / args.levels().max(1);
    if steps_per_level == 0 {
        bail!(
            "--steps {} is fewer than --levels {}: each level needs at least one step",
            args.steps()?,
            args.levels()
        );
    }
    Ok(AnnealedSettings { schedule, steps_per_level, step_size: args.step_size, denoise: true })
}

/// Builds the sampler the flags ask for over the source.
fn build_sampler<'a>(
    args: &SampleArgs,
    target: &'a GaussianMixture,
    source: &'a Source,
) -> Result<Box<dyn Sampler + 'a>> {
    let h = args.step_size;
    let ozaki = |solver| OzakiSettings { step_size: h, solver, l_max: args.clip_curvature };
    let solver = match args.sampler {
        SamplerKind::OzakiDiag => OzakiSolver::Diagonal,
        SamplerKind::OzakiLowrank => {
            OzakiSolver::Lanczos { iters: args.lanczos_iters.unwrap_or(DEFAULT_LANCZOS_ITERS) }
        }
        _ => OzakiSolver::Eigen,
    };
    Ok(match (args.sampler, source) {
        (SamplerKind::Ula, Source::Analytic) => Box::new(Ula::new(h, target)?),
        (SamplerKind::Ula, Source::Model(m)) => match &m.scores {
            ModelScores::Network(s) => Box::new(Ula::new(h, s)?),
            ModelScores::Energy(s) => Box::new(Ula::new(h, s)?),
        },
        (SamplerKind::Mala, Source::Analytic) => Box::new(Mala::new(h, target)?),
        (SamplerKind::Mala, Source::Model(m)) => match &m.scores {
            ModelScores::Network(_) => return Err(SamplerError::NoLogDensity.into()),
            ModelScores::Energy(s) => Box::new(Mala::new(h, s)?),
        },
        (SamplerKind::Ozaki | SamplerKind::OzakiDiag | SamplerKind::OzakiLowrank, Source::Analytic) => {
            Box::new(Ozaki::new(ozaki(solver), target)?)
        }
        (SamplerKind::Ozaki | SamplerKind::OzakiDiag | SamplerKind::OzakiLowrank, Source::Model(m)) => {
            let ModelScores::Network(model) = &m.scores else {
                return Err(SamplerError::NoSecondOrderHead.into());
            };
            Box::new(Ozaki::new(ozaki(solver), model)?)
        }
        (SamplerKind::AnnealedUla, Source::Analytic) => {
            Box::new(AnnealedUla::new(annealed_settings(args)?, target)?)
        }
        (SamplerKind::AnnealedOzaki, Source::Analytic) => {
            Box::new(AnnealedOzaki::new(annealed_settings(args)?, solver, args.clip_curvature, target)?)
        }
        (SamplerKind::AnnealedUla | SamplerKind::AnnealedOzaki, Source::Model(_)) => {
            return Err(SamplerError::NotNoiseConditional.into())
        }
    })
}

/// A JSON number, or null for NaN / inf.
fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// Runs `tweedie sample` and prints its report.
pub fn sample(args: SampleArgs) -> Result<()> {
    if args.steps == Some(0) {
        return Err(SamplerError::ZeroSteps.into());
    }
    if args.chains() < 2 {
        bail!(
            "--chains {} is too few: the metrics compare at least 2 chains with the reference",
            args.chains()
        );
    }
    if args.reference() < 2 {
        bail!("--reference {} is too few: MMD² needs at least 2 reference draws", args.reference());
    }
    if let Some(std) = args.init_std.filter(|s| !(*s >= 0.0 && s.is_finite())) {
        bail!("--init-std {std} must be finite and >= 0");
    }
    let tol = args.tol.unwrap_or(DEFAULT_TOL);
    if !(tol >= 0.0 && tol.is_finite()) {
        bail!("--tol {tol} must be finite and >= 0");
    }
    let inputs: Vec<(&str, &Path)> = args.model.iter().map(|m| ("--model", m.as_path())).collect();
    let _claims = [&args.out, &args.plot, &args.plot_chains]
        .into_iter()
        .flatten()
        .map(|out| claim_output(out, &inputs))
        .collect::<Result<Vec<_>, _>>()?;
    let checkpoint = match &args.model {
        Some(path) => Some(Checkpoint::load(path).with_context(|| format!("--model {}", path.display()))?),
        None => None,
    };
    if let (Some(path), Some(c)) = (&args.model, &checkpoint) {
        if let (Model::Image(model), true) =
            (c.eval_model(), args.target.as_deref().is_none_or(crate::data::ImageSpec::matches))
        {
            let report = super::sample_images::sample_images(&args, path, c, &model)?;
            return print_report(report, args.json);
        }
    }
    let target_name = args.target.clone().context("--target is required unless --model is an image model")?;
    if args.dense_curvature {
        bail!("--dense-curvature applies to image models (point clouds: --sampler ozaki takes the dense curvature)");
    }
    let steps = args.steps()?;
    let named = NamedTarget::parse(&target_name)?;
    let target = named.mixture();
    let dim = target.dim();
    let what = || {
        format!(
            "--chains {} --reference {} --steps {steps} in dimension {dim}",
            args.chains(),
            args.reference()
        )
    };
    MemoryBudget::of_this_machine().check(what, memory_estimate(&args, steps, dim))?;
    let source = match (&args.model, checkpoint) {
        (Some(path), Some(c)) => Source::Model(Box::new(
            load_model(c, path, dim)
                .with_context(|| format!("--model {} against --target {target_name}", path.display()))?,
        )),
        _ => Source::Analytic,
    };
    // Samplers driven by a model trained at sigma sample q_sigma: compare with draws of q_sigma.
    let reference_dist = match &source {
        Source::Analytic => target.clone(),
        Source::Model(m) => target.noisy(m.sigma)?,
    };
    let report = run_and_measure(&args, &named, target, &reference_dist, &source)?;
    print_report(report, args.json)
}

/// Prints the report as one JSON object, or as `key: value` lines without the trace.
fn print_report(report: Value, as_json: bool) -> Result<()> {
    if as_json {
        println!("{report}");
    } else if let Value::Object(map) = report {
        for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "trace") {
            println!("{k}: {v}");
        }
    }
    Ok(())
}

fn run_and_measure(
    args: &SampleArgs,
    named: &NamedTarget,
    target: &GaussianMixture,
    reference_dist: &GaussianMixture,
    source: &Source,
) -> Result<Value> {
    let dim = target.dim();
    let mut sampler = build_sampler(args, target, source)?;
    let steps =
        if args.sampler.is_annealed() { annealed_settings(args)?.total_steps() } else { args.steps()? };
    let mut chains = Chains::from_normal(args.chains(), dim, args.init_std.unwrap_or(3.0), args.seed)?;
    let mut ref_rng = ChaCha8Rng::seed_from_u64(args.seed);
    ref_rng.set_stream(u64::MAX);
    let reference = reference_dist.sample(args.reference(), &mut ref_rng);
    let estimator = MmdEstimator::new(reference.clone())?;
    let every = args.trace.unwrap_or((steps / 100).max(1));
    // IAT/ESS over the second half of the run (annealed: the second half of the last level, before the
    // denoising step), on at most 256 chains and 16 coordinates.
    let (from, to) = if args.sampler.is_annealed() {
        let spl = annealed_settings(args)?.steps_per_level;
        (steps - spl / 2, steps - 1)
    } else {
        (steps / 2 + 1, steps)
    };
    let mut observers = (MmdTrace::new(estimator.clone(), every), ChainSeries::new(from, to, 256, 16));
    let summary = run(&mut sampler, &mut chains, steps, &mut observers);
    let (tracer, series) = observers;

    let report = SampleReport::measure(&chains, &summary, &estimator, Some(reference_dist))?;
    let live = chains.live_positions();
    let trace = tracer.trace();
    const TAIL: f64 = 0.25;
    let mixing = series.summary(&chains);
    if let Some(path) = &args.out {
        write_npy(path, &[live.rows(), dim], live.as_slice())
            .with_context(|| format!("--out {}", path.display()))?;
    }
    let (sigma, trained_on) = match source {
        Source::Model(m) => (Some(m.sigma), Some(m.trained_on.clone())),
        Source::Analytic => (None, None),
    };
    let sampler_name = args.sampler_name();
    if let Some(path) = &args.plot {
        let title = format!("{sampler_name} h={} on {}, {steps} steps", args.step_size, named.name());
        let mut panels = Vec::new();
        if let Some(fig) = samples_over_density(reference_dist, &live, &title)? {
            panels.push(fig.render());
        }
        panels.push(mmd_traces("MMD^2 against step", &[(sampler_name.clone(), trace.clone())]).render());
        save(&side_by_side(&panels), path)?;
    }
    let opt = |v: Option<f64>| v.map_or(Value::Null, num);
    Ok(json!({
        "target": named.name(),
        "sampler": sampler_name,
        "source": if args.model.is_some() { "model" } else { "analytic" },
        "reference": if sigma.is_some() { "q_sigma" } else { "p" },
        "sigma": sigma,
        "model_trained_on": trained_on,
        "dim": dim,
        "steps": steps,
        "step_size": args.step_size,
        "chains": args.chains(),
        "live_chains": report.live_chains,
        "seed": args.seed,
        "clip_curvature": num(args.clip_curvature),
        "mmd2": opt(report.mmd2),
        "mmd2_stationary": opt(trace.stationary_level(TAIL)),
        "mmd2_bandwidth": report.mmd2_bandwidth,
        "ksd": opt(report.ksd2.map(|k| k.max(0.0).sqrt())),
        "ksd2": opt(report.ksd2),
        "mode_tv": opt(report.mode_tv),
        "mode_tv_reference": opt(report.mode_tv_reference),
        "ess_min": opt(mixing.map(|m| m.ess_min)),
        "ess_mean": opt(mixing.map(|m| m.ess_mean)),
        "iat_max": opt(mixing.map(|m| m.iat_max)),
        "ess_window": mixing.map(|m| m.length),
        "steps_to_tol": trace.steps_to_tolerance(args.tol.unwrap_or(DEFAULT_TOL), TAIL),
        "tol": args.tol.unwrap_or(DEFAULT_TOL),
        "acceptance_rate": report.acceptance_rate,
        "clipped_fraction": report.clipped_fraction,
        "seconds": report.seconds,
        "diverged": report.diverged,
        "diverged_first_step": summary.first_divergence(),
        "trace_every": every,
        "trace": trace.steps.iter().zip(&trace.values).map(|(s, v)| json!([s, num(*v)])).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{EnergyModel, EnergyShape, ModelShape, ScoreModel, SecondOrderHead};
    use crate::nn::Activation;
    use clap::Parser;
    use rand::SeedableRng;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: SampleArgs,
    }

    fn args(extra: &str) -> SampleArgs {
        let mut line = format!("tweedie --target gmm2d --chains 16 {extra}");
        for (flag, default) in [("--steps", "20"), ("--step-size", "0.1")] {
            if !extra.contains(&format!("{flag} ")) {
                line += &format!(" {flag} {default}");
            }
        }
        Cmd::try_parse_from(line.split_whitespace()).unwrap().args
    }

    fn model_source(head: Option<SecondOrderHead>) -> Source {
        let shape = ModelShape { dim: 2, width: 8, depth: 1, activation: Activation::Softplus, head };
        let model = ScoreModel::<f32>::init(&shape, &mut ChaCha8Rng::seed_from_u64(0));
        Source::Model(Box::new(LoadedModel {
            scores: ModelScores::Network(model),
            sigma: 0.1,
            trained_on: "gmm2d".into(),
        }))
    }

    fn energy_source() -> Source {
        let shape =
            EnergyShape { dim: 2, width: 8, depth: 1, activation: Activation::Softplus, base_precision: 1.0 };
        let model = EnergyModel::<f32>::init(&shape, &mut ChaCha8Rng::seed_from_u64(0));
        Source::Model(Box::new(LoadedModel {
            scores: ModelScores::Energy(model),
            sigma: 0.1,
            trained_on: "gmm2d".into(),
        }))
    }

    fn error(a: &SampleArgs, source: &Source) -> String {
        let target = crate::targets::parse_target("gmm2d").unwrap();
        let built = build_sampler(a, &target, source).map(drop);
        built.map_or_else(|e| e.to_string(), |()| String::from("ok"))
    }

    #[test]
    fn capabilities_a_model_lacks_are_one_line_errors() {
        let no_head = model_source(None);
        assert!(error(&args("--sampler ozaki"), &no_head).contains("no second-order (s2) head"));
        assert!(error(&args("--sampler mala"), &no_head).contains("MALA needs log p"));
        assert!(error(&args("--sampler annealed-ozaki"), &no_head).contains("noise-conditional"));
        assert_eq!(error(&args("--sampler ula"), &no_head), "ok");
        let low_rank = model_source(Some(SecondOrderHead::LowRank { rank: 1 }));
        assert_eq!(error(&args("--sampler ozaki-lowrank"), &low_rank), "ok");
        let energy = energy_source();
        assert_eq!(error(&args("--sampler mala"), &energy), "ok", "an energy model gives log p");
        assert_eq!(error(&args("--sampler ula"), &energy), "ok");
        assert!(error(&args("--sampler ozaki"), &energy).contains("no second-order (s2) head"));
        for e in [error(&args("--sampler ozaki"), &no_head), error(&args("--sampler mala"), &no_head)] {
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn bad_numbers_are_one_line_errors() {
        let bad = |extra: &str| error(&args(extra), &Source::Analytic);
        assert!(bad("--sampler ula --step-size 0").contains("step size must be positive"));
        assert!(bad("--sampler ozaki --clip-curvature nan").contains("curvature clip"));
        assert!(bad("--sampler annealed-ula --levels 40").contains("fewer than --levels"));
        assert!(bad("--sampler annealed-ozaki --sigma-min -1").contains("noise schedule"));
        assert!(bad("--sampler ozaki-lowrank --lanczos-iters 0").contains("Lanczos"));
        let zero = sample(args("--sampler ula --steps 0")).unwrap_err().to_string();
        assert!(zero.contains("at least 1"), "{zero}");
        let dim = args("--sampler ula");
        assert!(sample(SampleArgs { target: Some("gmm:dim=3".into()), chains: Some(1), ..dim }).is_err());
    }
}

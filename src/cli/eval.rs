//! `tweedie eval`: accuracy of a trained model against ground truth (analytic targets), or its
//! held-out losses (data files and UCI sets): the training objective, DSM, the exact score-matching loss,
//! and for energy models the test log-likelihood with `log Z` by importance sampling.

use super::autoencoder::{eval_autoencoder, AutoencoderEval};
use super::data_dir_arg::DataDirArg;
use crate::evaluation::{mean_log_likelihood, LogPartition, LogPartitionSettings, ScoreReport};
use crate::implicit::AisSettings;
use crate::linalg::Mat;
use crate::memory_budget::MemoryBudget;
use crate::models::{ImageScoreModel, Model, ScoreModel};
use crate::objectives::{D2smForm, Objective, ScoreMatching};
use crate::train::{Checkpoint, ModelWorkspace, TargetSource, TrainConfig, TrainingData};
use crate::uncertainty::MixtureCheck;
use anyhow::{Context, Result};
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::PathBuf;

/// Arguments of `tweedie eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint written by `tweedie train`.
    #[arg(long)]
    model: PathBuf,
    /// Target to test on (default: the one the model was trained on). Data files are evaluated on all
    /// their rows; the training file itself on its held-out tenth.
    #[arg(long)]
    target: Option<String>,
    /// Test points drawn from q_sigma of an analytic target.
    #[arg(long, default_value_t = 4000)]
    points: usize,
    /// Write a PNG: for an image model, a grid of 8 held-out images, rows noisy / denoised
    /// (x~ + sigma^2 s1) / clean, at the model's sigma; for an autoencoder, decoder samples from the
    /// prior above a row of test images and a row of their reconstructions.
    #[arg(long)]
    png: Option<std::path::PathBuf>,
    /// Data sets: evaluate on the first N held-out points only [default: all].
    #[arg(long)]
    held_out: Option<usize>,
    /// Seed of the test points (and of the noise of held-out losses, and of the log Z draws).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Energy models on data: stop the importance sampling of log Z at this standard error (nats).
    #[arg(long, default_value_t = 0.004, allow_negative_numbers = true)]
    log_z_tolerance: f64,
    /// Energy models on data: at most this many importance-sampling draws for log Z.
    #[arg(long, default_value_t = 1 << 24)]
    log_z_max_samples: usize,
    /// Held-out data: compute the exact score-matching loss even above 100 dimensions (it costs D + 1
    /// network passes per point: minutes on MNIST).
    #[arg(long)]
    exact_score_matching: bool,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Evaluate although the training data file changed since the checkpoint was written.
    #[arg(long)]
    allow_new_data: bool,
    /// Analytic targets: the uncertainty of denoising (posterior mean and covariance of the learned
    /// head and of the autodiff route against the exact posterior; NLL, coverage, REM5).
    #[arg(long)]
    uq: bool,
    /// With --uq: subspace iterations of the autodiff route's principal components.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Autoencoders (tweedie vae): estimate the test log-likelihood by annealed importance sampling.
    #[arg(long)]
    ais: bool,
    /// AIS: chains per image.
    #[arg(long, default_value_t = 16)]
    chains: usize,
    /// AIS: intermediate distributions.
    #[arg(long, default_value_t = 500)]
    intermediate: usize,
    /// AIS: leapfrog steps per HMC transition.
    #[arg(long, default_value_t = 10)]
    leapfrog_steps: usize,
    /// Autoencoders: evaluate the first N test images.
    #[arg(long, default_value_t = 100)]
    images: usize,
    /// With --ais: also print each image's AIS `-log p(x)` (`ais_nll_per_image`), for paired comparisons
    /// of models on the same images.
    #[arg(long)]
    per_image: bool,
}

/// Above this dimension the exact score-matching loss is only computed on request.
const MAX_DEFAULT_ESM_DIM: usize = 100;

/// Mean loss of `objective` over `points` (in f64) with noise drawn from `seed` at noise level `sigma`,
/// in chunks of points small enough that even ESM's `D + 1` stacked rows per point stay near 2^15 rows.
fn held_out_loss(
    model: &Model<f32>,
    objective: Objective,
    sigma: f64,
    points: &Mat<f64>,
    seed: u64,
) -> Result<f64> {
    let model = model.cast::<f64>();
    let mut ws = ModelWorkspace::new(&model);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (n, dim) = (points.rows(), points.cols());
    let chunk = ((1 << 15) / (dim + 1)).max(1);
    let mut total = 0.0;
    for start in (0..n).step_by(chunk) {
        let x = points.slice_rows(start, (start + chunk).min(n));
        let z = Mat::from_fn(objective.noise_rows(x.rows()), dim, |_, _| StandardNormal.sample(&mut rng));
        total += x.rows() as f64 * ws.loss_and_gradient(&model, objective, sigma, &x, &z)?;
    }
    Ok(total / n as f64)
}

/// Mean squared error per coordinate of the Tweedie denoiser `x^ = x~ + sigma^2 s1(x~)` from the DSM
/// loss on the same noise: `x^ - x = sigma^2 (s1(x~) + z / sigma)`, so `mse = sigma^4 L_dsm / D`.
fn denoised_mse(dsm_loss: f64, sigma: f64, dim: usize) -> f64 {
    sigma.powi(4) * dsm_loss / dim as f64
}

/// Peak signal-to-noise ratio in dB of a mean squared error on pixels in `[0, 1]`: `10 log10(1 / mse)`.
fn psnr(mse: f64) -> f64 {
    -10.0 * mse.log10()
}

/// The model whose exact score-matching loss is reported: a score network without its second-order
/// head, or the energy model itself.
fn first_order_part(model: &Model<f32>) -> Model<f32> {
    match model {
        Model::Score(m) => Model::Score(ScoreModel { s1: m.s1.clone(), s2: None, s3: None }),
        Model::Energy(_) | Model::Image(_) => model.clone(),
    }
}

fn print_table(report: &ScoreReport) {
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!("{} test points from q_sigma, sigma = {}", report.points, report.sigma);
    println!("| estimate | rel. error | ms for all points |");
    println!("|---|---|---|");
    println!("| s1 | {:.4} | |", report.s1_rel_err);
    println!(
        "| s2 learned ({}, {} entries) | {} | {} |",
        report.s2_kind,
        report.s2_error_scope,
        fmt(report.s2_rel_err),
        fmt(report.s2_learned_ms)
    );
    println!(
        "| s2 autodiff (J + J^T)/2 | {} | {} |",
        fmt(report.s2_autodiff_rel_err),
        fmt(report.s2_autodiff_ms)
    );
    if let (Some(w), Some(err)) = (report.s2_ensemble_weight, report.s2_ensemble_rel_err) {
        println!("| s2 ensemble w S2 + (1 - w) autodiff, w = {w:.3} fitted on other points | {err:.4} | |");
    }
    if let Some(t) = &report.third_order {
        println!(
            "| s3[v,v,v] route | rel. error (random unit v) | RMS error (exact RMS {:.4}) | rel. error (top posterior direction) | ms |",
            t.s3_exact_rms
        );
        println!("|---|---|---|---|---|");
        let learned = format!("learned ({})", t.s3_kind);
        let rows = [
            (learned.as_str(), t.s3_rel_err, t.s3_rms_err, t.s3_rel_err_top, t.s3_learned_ms),
            ("JVP of s2", t.s3_s2_jvp_rel_err, t.s3_s2_jvp_rms_err, t.s3_s2_jvp_rel_err_top, t.s3_s2_jvp_ms),
            (
                "autodiff",
                t.s3_autodiff_rel_err,
                t.s3_autodiff_rms_err,
                t.s3_autodiff_rel_err_top,
                t.s3_autodiff_ms,
            ),
        ];
        for (name, random, rms, top, ms) in rows {
            println!("| {name} | {random:.4} | {rms:.4} | {top:.4} | {ms:.2} |");
        }
        println!(
            "mean |posterior skewness| along the top principal direction: {:.4}",
            t.posterior_skewness_top
        );
    }
}

/// The held-out report of a data target as a table.
fn print_held_out(value: &serde_json::Value, label: &str, objective: &str, sigma: f64) {
    let num = |key: &str| value[key].as_f64().unwrap_or(f64::NAN);
    let model = value["model"].as_str().unwrap_or("?");
    println!(
        "{label}: {} held-out points, {model} model after {} steps",
        value["held_out_points"], value["steps"]
    );
    if value.get("test_loglik").is_some() {
        println!(
            "| test log-likelihood | {:.3} nats/point (whitened; {:.3} in data units) |",
            num("test_loglik"),
            num("test_loglik_data_units")
        );
        println!(
            "| log Z | {:.3} ± {:.3} ({} importance draws, bandwidth {}) |",
            num("log_z"),
            num("log_z_std_err"),
            value["log_z_samples"],
            value["log_z_bandwidth"]
        );
    }
    match value.get("test_esm_loss") {
        Some(_) => println!("| test exact score-matching loss | {:.3} |", num("test_esm_loss")),
        None => println!("| test exact score-matching loss | skipped above {MAX_DEFAULT_ESM_DIM} dimensions (--exact-score-matching) and for U-Net models |"),
    }
    if value.get("psnr_denoised").is_some() {
        println!(
            "| PSNR of the Tweedie denoiser x~ + sigma^2 s1 | {:.2} dB (noisy input {:.2} dB) |",
            num("psnr_denoised"),
            num("psnr_noisy")
        );
    }
    // A DSM-trained model's own loss is the DSM row below.
    if !objective.eq_ignore_ascii_case("dsm") {
        println!("| held-out {objective} loss (sigma {sigma}) | {:.3} |", num("held_out_loss"));
    }
    println!("| held-out DSM loss (sigma {sigma}) | {:.3} |", num("held_out_dsm_loss"));
    for level in value["per_sigma"].as_array().into_iter().flatten() {
        let at = |key: &str| level[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "| PSNR at sigma {:.4} | {:.2} dB (noisy input {:.2} dB) |",
            at("sigma"),
            at("psnr_denoised"),
            at("psnr_noisy")
        );
    }
    if let Some(cost) = value.get("s2_cost") {
        let head_loss = match value["head_objective"].as_str() {
            Some("nll") if value.get("head_pcs").is_some() => {
                "held-out NLL of the head (nats per value) less its captured energy fraction"
            }
            Some("nll") => "held-out NLL of the head (nats per value)",
            _ => "held-out D2SM loss",
        };
        println!("| {head_loss} (sigma {sigma}) | {:.3} |", num("held_out_d2sm_loss"));
        let ms = |key: &str| cost[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "| diag s2 per image: learned head / autodiff Jacobian ({}) | {:.2} ms / {:.1} ms (rel. diff {:.3}) |",
            cost["autodiff_diag"].as_str().unwrap_or("-"),
            ms("learned_ms_per_image"),
            ms("autodiff_diag_ms_per_image"),
            ms("learned_vs_autodiff_diag_rel_diff")
        );
    }
}

/// Runs `tweedie eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    anyhow::ensure!(
        args.log_z_tolerance > 0.0 && args.log_z_tolerance.is_finite(),
        "--log-z-tolerance {}: expected a number of nats > 0",
        args.log_z_tolerance
    );
    if args.ais || super::autoencoder::is_autoencoder(&args.model) {
        let settings = AisSettings {
            chains: args.chains,
            intermediate: args.intermediate,
            leapfrog_steps: args.leapfrog_steps,
            seed: args.seed,
            ..Default::default()
        };
        let e = AutoencoderEval {
            model: &args.model,
            ais: args.ais,
            per_image: args.per_image,
            settings,
            images: args.images,
            png: args.png.as_deref(),
            data_dir: &args.data_dir,
        };
        return eval_autoencoder(&e);
    }
    anyhow::ensure!(
        !args.per_image,
        "--per-image with {}: expected an autoencoder checkpoint (tweedie vae or wae)",
        args.model.display()
    );
    let checkpoint = Checkpoint::load(&args.model)?;
    if let (Some(file), None, false) = (&checkpoint.data_file, &args.target, args.allow_new_data) {
        file.verify(&args.model)?;
    }
    let trained_on = checkpoint.config.target.clone();
    let target = args.target.clone().unwrap_or_else(|| trained_on.clone());
    let probe = TrainConfig { target: target.clone(), ..checkpoint.config.clone() };
    let data = TrainingData::load(&probe, &args.data_dir.resolve())?;
    anyhow::ensure!(
        data.dim() == checkpoint.dim,
        "--target {target}: dimension {} does not match the model's {} ({})",
        data.dim(),
        checkpoint.dim,
        args.model.display()
    );
    match &data {
        TrainingData::Analytic { mixture, name } => {
            anyhow::ensure!(args.points > 0, "--points 0: expected at least 1 test point");
            // Per point: the true, learned and autodiff Hessians and their differences (4 D^2 f64), and
            // D tangents through the networks (activations, tangents, adjoints of every unit, f32).
            let (d, config) = (checkpoint.dim as f64, &checkpoint.config);
            let units = d + (config.depth * config.width) as f64 + d * d;
            let bytes = args.points as f64 * (32.0 * d * d + 16.0 * d * units);
            MemoryBudget::of_this_machine().check(|| format!("--points {}", args.points), bytes)?;
            if args.uq {
                let settings = MixtureCheck { points: args.points, seed: args.seed, iterations: args.iterations };
                return super::eval_uq::eval_uq(&checkpoint, &args.model, mixture, name, settings, args.json);
            }
            let report = ScoreReport::evaluate(
                &checkpoint.eval_model(),
                mixture,
                checkpoint.config.sigma,
                args.points,
                args.seed,
            )
            .with_context(|| format!("evaluating on {name}"))?;
            if args.json {
                let mut value = serde_json::to_value(&report)?;
                value["target"] = serde_json::json!(name);
                value["steps"] = serde_json::json!(checkpoint.step);
                println!("{value}");
            } else {
                print_table(&report);
            }
        }
        TrainingData::Samples { .. } if args.uq => anyhow::bail!(
            "--uq --target {target}: the exact posterior is known only on analytic targets (gmm2d, gmm:..., gauss:...); on data use `tweedie denoise --clean`"
        ),
        TrainingData::Samples { train, held_out, label, log_det } => {
            let rows = if target == trained_on { held_out.clone() } else { Mat::vstack(&[held_out, train]) };
            let rows = match args.held_out {
                Some(0) => anyhow::bail!("--held-out 0: expected at least 1 point"),
                Some(n) => rows.slice_rows(0, n.min(rows.rows())),
                None => rows,
            };
            let model = checkpoint.eval_model();
            let sigma = checkpoint.config.sigma;
            let objective = checkpoint.config.objective()?;
            let loss = held_out_loss(&model, objective, sigma, &rows, args.seed)?;
            // The same seed draws the same noise: a DSM-trained model's DSM loss is its loss.
            let dsm_loss = match objective {
                Objective::Dsm => loss,
                _ => held_out_loss(&model, Objective::Dsm, sigma, &rows, args.seed)?,
            };
            let mut value = serde_json::json!({
                "target": target, "model": model.kind(), "held_out_points": rows.rows(),
                "steps": checkpoint.step, "held_out_loss": loss, "held_out_dsm_loss": dsm_loss,
            });
            if let TargetSource::Images(_) = probe.target_source()? {
                value["psnr_noisy"] = psnr(sigma * sigma).into();
                value["psnr_denoised"] = psnr(denoised_mse(dsm_loss, sigma, rows.cols())).into();
            }
            match (&args.png, &model) {
                (Some(path), Model::Image(image)) => {
                    let pixels = checkpoint.config.pixels;
                    super::image_eval::write_denoising_grid(image, &rows, sigma, pixels, args.seed, path)?;
                    value["png"] = path.display().to_string().into();
                }
                (Some(path), _) => anyhow::bail!(
                    "--png {}: draws denoised images of a U-Net image model ({} is {})",
                    path.display(),
                    args.model.display(),
                    model.description()
                ),
                (None, _) => {}
            }
            if let Model::Image(ImageScoreModel { schedule: Some(schedule), .. }) = &model {
                // The denoiser at the largest, middle and smallest level of the schedule.
                let mut per_sigma = Vec::new();
                for k in [0, (schedule.levels - 1) / 2, schedule.levels - 1] {
                    let s = schedule.sigma(k);
                    let dsm = held_out_loss(&model, Objective::Dsm, s, &rows, args.seed)?;
                    per_sigma.push(serde_json::json!({
                        "sigma": s, "held_out_dsm_loss": dsm,
                        "psnr_noisy": psnr(s * s), "psnr_denoised": psnr(denoised_mse(dsm, s, rows.cols())),
                    }));
                }
                value["per_sigma"] = per_sigma.into();
            }
            if let (Model::Image(image), Objective::SecondOrder { weight, form, .. }) = (&model, objective) {
                // The same noise: the loss is w L1 / sigma^2 + L2 (L2 the head's term: the D2SM loss of
                // its form, or the residual's NLL in nats per value for the likelihood fit).
                value["held_out_d2sm_loss"] = (loss - weight * dsm_loss / (sigma * sigma)).into();
                value["head_objective"] = form.name().into();
                if let D2smForm::Likelihood { pcs: pcs @ 1.. } = form {
                    // The loss then subtracts the captured energy fraction of the leading columns.
                    value["head_pcs"] = pcs.into();
                }
                value["s2_cost"] = super::image_eval::s2_cost(image, &rows, sigma, args.seed);
            }
            let esm_wanted = rows.cols() <= MAX_DEFAULT_ESM_DIM || args.exact_score_matching;
            if let (Model::Image(_), true) = (&model, args.exact_score_matching) {
                anyhow::bail!(
                    "--exact-score-matching: {} is a U-Net image model, which has no Jacobian pass (expected an MLP score network or an energy model)",
                    args.model.display()
                );
            }
            if esm_wanted && !matches!(model, Model::Image(_)) {
                // Exact score matching on the held-out points themselves (no noise).
                value["test_esm_loss"] = held_out_loss(
                    &first_order_part(&model),
                    Objective::ScoreMatching(ScoreMatching::Esm),
                    0.0,
                    &rows,
                    args.seed,
                )?
                .into();
            }
            if let Model::Energy(energy) = &model {
                let settings = LogPartitionSettings {
                    tolerance: args.log_z_tolerance,
                    max_samples: args.log_z_max_samples,
                    seed: args.seed,
                    ..Default::default()
                };
                if !args.json {
                    eprintln!(
                        "estimating log Z by importance sampling to a standard error of {} nats...",
                        args.log_z_tolerance
                    );
                }
                let z = LogPartition::estimate(energy, Some(train), &settings);
                let test_loglik = mean_log_likelihood(energy, &rows.cast(), z.log_z);
                value["test_loglik"] = serde_json::json!(test_loglik);
                value["test_loglik_data_units"] = serde_json::json!(test_loglik + log_det);
                value["log_z"] = serde_json::json!(z.log_z);
                value["log_z_std_err"] = serde_json::json!(z.std_err);
                value["log_z_samples"] = serde_json::json!(z.samples);
                value["log_z_effective_samples"] = serde_json::json!(z.effective_samples);
                value["log_z_bandwidth"] = serde_json::json!(z.bandwidth);
            }
            if args.json {
                println!("{value}");
            } else {
                print_held_out(&value, label, objective.name(), sigma);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ModelShape, SecondOrderHead};
    use crate::nn::Activation;

    #[test]
    fn denoiser_mse_follows_from_the_dsm_loss_on_the_same_noise() {
        // x = 0.3, z = (1, -2), sigma = 0.5, s1 = (-1.5, 3.5): x~ = x + sigma z, x^ = x~ + sigma^2 s1.
        let (sigma, z, s1): (f64, [f64; 2], [f64; 2]) = (0.5, [1.0, -2.0], [-1.5, 3.5]);
        let dsm: f64 = z.iter().zip(&s1).map(|(z, s)| (s + z / sigma).powi(2)).sum();
        let direct: f64 =
            z.iter().zip(&s1).map(|(z, s)| (sigma * z + sigma * sigma * s).powi(2)).sum::<f64>() / 2.0;
        assert!((denoised_mse(dsm, sigma, 2) - direct).abs() < 1e-15);
        assert!((psnr(0.25) - 6.0206).abs() < 1e-4, "sigma = 0.5 on [0, 1] pixels is 6.02 dB");
    }

    #[test]
    fn held_out_losses_in_chunks_equal_the_loss_over_all_points_at_once() {
        // D = 255: chunks of 2^15 / 256 = 128 points, so 300 points are three chunks (128, 128, 44). The
        // chunked mean must equal one pass over all 300 points with the same noise (the chunks draw
        // their noise rows in order from one stream), up to the rounding of the weighted sum.
        let dim = 255;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let head = Some(SecondOrderHead::Diagonal);
        let shape = ModelShape { dim, width: 4, depth: 1, activation: Activation::Softplus, head };
        let model = Model::Score(ScoreModel::<f32>::init(&shape, &mut rng));
        let points = Mat::from_fn(300, dim, |_, _| StandardNormal.sample(&mut rng));
        let objective = Objective::SecondOrder {
            form: crate::objectives::D2smForm::B,
            weight: 1.0,
            couple: 0.0,
            third_order: false,
        };
        for (objective, sigma) in
            [(objective, 0.3), (Objective::Dsm, 0.3), (Objective::ScoreMatching(ScoreMatching::Esm), 0.0)]
        {
            let model = if objective == Objective::ScoreMatching(ScoreMatching::Esm) {
                first_order_part(&model)
            } else {
                model.clone()
            };
            let chunked = held_out_loss(&model, objective, sigma, &points, 7).unwrap();
            let whole = model.cast::<f64>();
            let mut noise = ChaCha8Rng::seed_from_u64(7);
            let z = Mat::from_fn(objective.noise_rows(300), dim, |_, _| StandardNormal.sample(&mut noise));
            let want =
                ModelWorkspace::new(&whole).loss_and_gradient(&whole, objective, sigma, &points, &z).unwrap();
            assert!((chunked - want).abs() <= 1e-12 * want.abs(), "{objective:?}: {chunked} vs {want}");
        }
    }
}

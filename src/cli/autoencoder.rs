//! `tweedie vae`, `tweedie wae` and `tweedie eval` of their checkpoints: autoencoders on image data whose
//! entropy gradients come from a learned (SSM-VR) or kernel (Stein, SSGE) score, with AIS test
//! log-likelihoods (`crate::implicit`).

use super::data_dir_arg::DataDirArg;
use crate::checkpoint::TensorStore;
use crate::data::{load_image_set, locate_dataset, Dataset, ImageSet, Split};
use crate::implicit::{
    bernoulli_decoder, bernoulli_nll, AisEstimate, AisSettings, Autoencoder, AutoencoderCheckpoint,
    EncoderKind, EntropyEstimator, Vae, VaeSettings, VaeTrainer, Wae, WaeTrainer, AUTOENCODER_FORMAT,
};
use crate::linalg::Mat;
use crate::metrics::MmdEstimator;
use crate::plot::{image_grid, ImageShape};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The encoder of `tweedie vae`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Encoder {
    /// `x -> (mu, log sigma^2)` with the analytic KL.
    Gaussian,
    /// `[x, eps] -> z`, entropy gradient from `--entropy`.
    Implicit,
}

/// What `tweedie vae` and `tweedie wae` share.
#[derive(Args, Debug)]
pub struct AutoencoderArgs {
    /// Image data set: mnist, fashion-mnist or digits (pixels in [0, 1]).
    #[arg(long, default_value = "mnist")]
    target: String,
    /// Where s_hat of the entropy gradient comes from: ssm-vr (a score network trained alongside),
    /// stein or ssge (kernel estimators on the samples).
    #[arg(long, default_value = "ssm-vr")]
    entropy: EntropyEstimator,
    /// Latent dimensions.
    #[arg(long, default_value_t = 8)]
    latent: usize,
    /// Training steps.
    #[arg(long, default_value_t = 2000)]
    steps: u64,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Hidden units of every network's two tanh layers.
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Gaussian projections per sample of the SSM-VR score network.
    #[arg(long, default_value_t = 1)]
    projections: usize,
    /// RMSProp learning rate of every network.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Seed of the initialisation, batches, binarisation and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The checkpoint to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// Arguments of `tweedie vae`.
#[derive(Args, Debug)]
pub struct VaeArgs {
    #[command(flatten)]
    common: AutoencoderArgs,
    /// The encoder: gaussian (analytic KL, the baseline) or implicit.
    #[arg(long, value_enum, default_value_t = Encoder::Implicit)]
    encoder: Encoder,
    /// Samples of q(z|x) per image in a step (the kernel estimators fit on these; at least 2 for them).
    #[arg(long, default_value_t = 8)]
    particles: usize,
}

/// Arguments of `tweedie wae`.
#[derive(Args, Debug)]
pub struct WaeArgs {
    #[command(flatten)]
    common: AutoencoderArgs,
    /// Weight lambda of the regulariser -log N(z; 0, I) + z . stopgrad(s_hat(z)).
    #[arg(long, default_value_t = 10.0)]
    lambda: f64,
}

/// Loads a split of an image data set named by `--target`.
fn load_images(target: &str, data_dir: &DataDirArg, split: Split) -> Result<ImageSet> {
    let dataset: Dataset = target.parse().map_err(|e| anyhow::anyhow!("--target {target}: {e}"))?;
    anyhow::ensure!(
        matches!(dataset, Dataset::Mnist | Dataset::FashionMnist | Dataset::Digits),
        "--target {target}: expected an image data set (mnist, fashion-mnist or digits)"
    );
    let located = locate_dataset(dataset, None, &data_dir.resolve())?;
    Ok(load_image_set(&located, split)?)
}

/// Checks what both commands share; returns the training images.
fn check_common(args: &AutoencoderArgs) -> Result<ImageSet> {
    anyhow::ensure!(args.latent > 0, "--latent 0: expected at least 1 latent dimension");
    anyhow::ensure!(args.batch > 0, "--batch 0: expected at least 1 image per step");
    anyhow::ensure!(args.hidden > 0, "--hidden 0: expected at least 1 hidden unit");
    anyhow::ensure!(
        args.learning_rate > 0.0 && args.learning_rate.is_finite(),
        "--learning-rate {}: expected a finite number > 0",
        args.learning_rate
    );
    load_images(&args.target, &args.data_dir, Split::Train)
}

/// A random batch of `batch` rows.
fn batch_of<R: Rng>(images: &Mat<f64>, batch: usize, rng: &mut R) -> Mat<f64> {
    let picks: Vec<usize> = (0..batch).map(|_| rng.random_range(0..images.rows())).collect();
    Mat::from_fn(batch, images.cols(), |r, c| images.at(picks[r], c))
}

/// Runs `steps` training steps, printing a progress line every tenth; returns seconds per step.
fn train_loop(steps: u64, mut step: impl FnMut() -> Result<(f64, f64)>) -> Result<f64> {
    let start = Instant::now();
    for k in 1..=steps {
        let (recon, reg) = step()?;
        if k % (steps / 10).max(1) == 0 || k == steps {
            eprintln!("step {k}/{steps}: reconstruction {recon:.3}, regulariser {reg:.3}");
        }
    }
    Ok(start.elapsed().as_secs_f64() / steps.max(1) as f64)
}

fn save(out: &Path, checkpoint: &AutoencoderCheckpoint) -> Result<()> {
    checkpoint.save(out)?;
    println!(
        "{}",
        serde_json::json!({
            "model": checkpoint.model.kind_name(), "entropy": checkpoint.entropy.name(),
            "steps": checkpoint.steps, "seconds_per_step": checkpoint.seconds_per_step,
            "out": out.display().to_string(),
        })
    );
    Ok(())
}

/// Runs `tweedie vae`.
pub fn vae(args: VaeArgs) -> Result<()> {
    let c = &args.common;
    let images = check_common(c)?;
    let kind = match args.encoder {
        Encoder::Gaussian => EncoderKind::Gaussian,
        Encoder::Implicit => EncoderKind::Implicit,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    let vae = Vae::init(kind, images.pixels.cols(), c.latent, c.hidden, &mut rng);
    let settings = VaeSettings {
        estimator: c.entropy,
        particles: args.particles,
        projections: c.projections,
        hidden: c.hidden,
        learning_rate: c.learning_rate,
    };
    let mut trainer = VaeTrainer::new(vae, settings, &mut rng).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seconds_per_step = train_loop(c.steps, || {
        let x = batch_of(&images.pixels, c.batch, &mut rng);
        let loss = trainer.step(&x, &mut rng)?;
        Ok((loss.reconstruction, loss.regulariser))
    })?;
    save_trained(c, Autoencoder::Vae(trainer.vae), seconds_per_step)
}

/// Writes the trained `model` with the run's settings to `--out`.
fn save_trained(c: &AutoencoderArgs, model: Autoencoder, seconds_per_step: f64) -> Result<()> {
    let checkpoint = AutoencoderCheckpoint {
        model,
        entropy: c.entropy,
        target: c.target.clone(),
        steps: c.steps,
        seconds_per_step,
    };
    save(&c.out, &checkpoint)
}

/// Runs `tweedie wae`.
pub fn wae(args: WaeArgs) -> Result<()> {
    let c = &args.common;
    let images = check_common(c)?;
    anyhow::ensure!(
        args.lambda >= 0.0 && args.lambda.is_finite(),
        "--lambda {}: expected a finite number >= 0",
        args.lambda
    );
    c.entropy.check_samples("--batch", c.batch).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    let wae = Wae::init(images.pixels.cols(), c.latent, c.hidden, &mut rng);
    let mut trainer = WaeTrainer::new(wae, c.entropy, args.lambda, c.projections, c.learning_rate, &mut rng);
    let seconds_per_step = train_loop(c.steps, || {
        let x = batch_of(&images.pixels, c.batch, &mut rng);
        let loss = trainer.step(&x, &mut rng)?;
        Ok((loss.reconstruction, loss.regulariser))
    })?;
    save_trained(c, Autoencoder::Wae(trainer.wae), seconds_per_step)
}

/// Whether `path` is an autoencoder checkpoint (a readable file of that format).
pub fn is_autoencoder(path: &Path) -> bool {
    TensorStore::load(path).is_ok_and(|s| s.metadata("format").is_ok_and(|f| f == AUTOENCODER_FORMAT))
}

/// What `tweedie eval` needs to evaluate an autoencoder.
pub struct AutoencoderEval<'a> {
    /// The checkpoint.
    pub model: &'a Path,
    /// Run AIS (VAEs only).
    pub ais: bool,
    /// With `ais`: print each image's `-log p(x)` too.
    pub per_image: bool,
    /// AIS settings (chains, intermediate distributions, seed).
    pub settings: AisSettings,
    /// The first `images` test images.
    pub images: usize,
    /// Where to write the grid of samples and reconstructions.
    pub png: Option<&'a Path>,
    /// The data directory.
    pub data_dir: &'a DataDirArg,
}

/// Columns of the `--png` grid; it shows `SAMPLE_ROWS` rows of prior samples.
const GRID_COLS: usize = 10;
const SAMPLE_ROWS: usize = 6;

/// The logistic function, elementwise: decoder logits to Bernoulli means / sigmoid outputs.
fn sigmoid(logits: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(logits.rows(), logits.cols(), |r, c| 1.0 / (1.0 + (-logits.at(r, c)).exp()))
}

/// `tweedie eval` of an autoencoder: reconstruction error on the first test images, AIS `-log p(x)`
/// (VAEs), and the MMD² of the codes to `N(0, I)` (WAEs). Prints one JSON object; with `png`, writes
/// decoder means of prior samples above the first test images (binarised for a VAE) and their
/// reconstructions.
pub fn eval_autoencoder(e: &AutoencoderEval<'_>) -> Result<()> {
    let checkpoint = AutoencoderCheckpoint::load(e.model)?;
    anyhow::ensure!(e.images > 0, "--images 0: expected at least 1 test image");
    anyhow::ensure!(!e.per_image || e.ais, "--per-image without --ais: expected --ais (it lists AIS values)");
    let test = load_images(&checkpoint.target, e.data_dir, Split::Test)?;
    let n = e.images.min(test.pixels.rows());
    let mut rng = ChaCha8Rng::seed_from_u64(e.settings.seed);
    let mut value = serde_json::json!({
        "model": checkpoint.model.kind_name(), "entropy": checkpoint.entropy.name(),
        "target": checkpoint.target, "steps": checkpoint.steps,
        "seconds_per_step": checkpoint.seconds_per_step, "images": n,
    });
    let (x, reconstruction) = match &checkpoint.model {
        Autoencoder::Vae(vae) => {
            // A fixed binarisation of the test images (seeded), one code per image.
            let x = Mat::from_fn(n, test.pixels.cols(), |r, c| {
                f64::from(u8::from(rng.random::<f64>() < test.pixels.at(r, c)))
            });
            let eps = Mat::from_fn(n, vae.latent(), |_, _| StandardNormal.sample(&mut rng));
            let logits = vae.decoder.net.forward(&vae.encode(&x, &eps));
            value["recon_error"] = bernoulli_nll(&logits, &x, &mut Mat::default()).into();
            if e.ais {
                let decoder =
                    bernoulli_decoder(&checkpoint.model).context("a VAE has a Bernoulli decoder")?;
                let est = AisEstimate::estimate(decoder, &x, &e.settings)
                    .map_err(|err| anyhow::anyhow!("{err}"))?;
                let mean_ll = est.log_likelihood.iter().sum::<f64>() / n as f64;
                let spread = est.log_likelihood.iter().map(|l| (l - mean_ll).powi(2)).sum::<f64>()
                    / (n.max(2) - 1) as f64;
                let mc = est.std_err.iter().map(|s| s * s).sum::<f64>().sqrt() / n as f64;
                value["ais_nll"] = (-mean_ll).into();
                value["ais_nll_std_err"] = (spread / n as f64).sqrt().into();
                value["ais_nll_mc_std_err"] = mc.into();
                value["ais_acceptance"] = est.acceptance.into();
                value["ais_chains"] = e.settings.chains.into();
                value["ais_intermediate"] = e.settings.intermediate.into();
                if e.per_image {
                    value["ais_nll_per_image"] =
                        est.log_likelihood.iter().map(|l| -l).collect::<Vec<_>>().into();
                }
            }
            (x, sigmoid(&logits))
        }
        Autoencoder::Wae(wae) => {
            anyhow::ensure!(
                !e.ais,
                "--ais with {}: expected a VAE checkpoint (a WAE's squared-error decoder has no likelihood)",
                e.model.display()
            );
            let x = test.pixels.slice_rows(0, n);
            let z = wae.encoder.forward(&x);
            let means = sigmoid(&wae.decoder.forward(&z));
            let sq: f64 = means.as_slice().iter().zip(x.as_slice()).map(|(m, x)| (m - x).powi(2)).sum();
            value["recon_error"] = (sq / n as f64).into();
            let prior = Mat::from_fn(n, z.cols(), |_, _| StandardNormal.sample(&mut rng));
            if n >= 2 {
                value["latent_mmd2"] = MmdEstimator::new(prior)?.mmd2(&z)?.into();
            }
            (x, means)
        }
    };
    if let Some(path) = e.png {
        let decoder = checkpoint.model.decoder();
        let z =
            Mat::from_fn(GRID_COLS * SAMPLE_ROWS, decoder.inputs(), |_, _| StandardNormal.sample(&mut rng));
        let samples = sigmoid(&decoder.forward(&z));
        let shown = n.min(GRID_COLS);
        let shape = ImageShape { height: test.height, width: test.width, channels: 1 };
        let grid = image_grid(
            shape,
            GRID_COLS,
            &[&samples, &x.slice_rows(0, shown), &reconstruction.slice_rows(0, shown)],
        );
        grid.save_png(path).with_context(|| format!("--png {}", path.display()))?;
    }
    println!("{value}");
    Ok(())
}

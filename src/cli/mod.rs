//! The `tweedie` command line.

mod autoencoder;
mod bench;
mod bench_profile;
mod config_error;
mod data;
mod data_dir_arg;
mod demo;
mod denoise;
mod denoise_grid;
mod estimate;
mod eval;
mod eval_uq;
mod export;
mod image_eval;
mod input_points;
mod plot_traces;
mod progress;
mod sample;
mod sample_images;
mod sample_plots;
mod score;
mod target_help;
mod threads;
mod train;
mod usage_error;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Learn the score and its Hessian from samples by denoising (Tweedie's formula).
#[derive(Parser, Debug)]
#[command(name = "tweedie", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads of the pool every command computes on: parallel chains and batches, and the large
    /// matrix products (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train on two built-in mixtures (D = 2 and 16) and compare the learned Hessian with autodiff (about
    /// two minutes).
    Demo(demo::DemoArgs),
    /// Train a score model (and a second-order head) by denoising, or a score network or energy model by
    /// DSM, SSM, SSM-VR, exact or finite-difference score matching.
    Train(Box<train::TrainArgs>),
    /// Measure a trained model against ground truth, or on held-out data (energy models: test
    /// log-likelihood).
    Eval(eval::EvalArgs),
    /// Posterior mean, standard deviations, principal directions and samples of noisy points (and their
    /// calibration against clean ones).
    Denoise(Box<denoise::DenoiseArgs>),
    /// Evaluate a trained model's s1 or s2 at your own points.
    Score(score::ScoreArgs),
    /// Time the benchmark workloads (JSON lines; see bench/compare.py for the side-by-side peers).
    Bench(bench::BenchArgs),
    /// Sample a target with ULA, MALA, Ozaki or annealed Langevin / Ozaki (also a noise-conditional U-Net
    /// image model, drawing PNG grids); print sample-quality and mixing metrics.
    Sample(Box<sample::SampleArgs>),
    /// Draw MMD² against step of several `tweedie sample --json` runs on one plot (PNG).
    PlotTraces(plot_traces::PlotTracesArgs),
    /// List, download and verify the named data sets (MNIST, Fashion-MNIST, digits, UCI).
    Data(data::DataArgs),
    /// Write a checkpoint's evaluated weights alone, under their documented names (for other languages).
    Export(export::ExportArgs),
    /// Fit a kernel score estimator (Stein, SSGE) to samples of a target; report s1_rel_err and time.
    Estimate(estimate::EstimateArgs),
    /// Train a VAE on binarised images: Gaussian encoder, or implicit encoder with its entropy gradient
    /// from a score estimate (SSM-VR network, Stein, SSGE).
    Vae(Box<autoencoder::VaeArgs>),
    /// Train a Wasserstein autoencoder whose aggregate posterior is pulled to N(0, I) through its score.
    Wae(Box<autoencoder::WaeArgs>),
}

/// Parses the arguments (a usage error is one line) and runs the command.
pub fn main() -> Result<()> {
    let cli = Cli::try_parse().map_err(usage_error::one_line)?;
    threads::init_pool(cli.threads)?;
    match cli.command {
        Command::Demo(args) => demo::demo(args),
        Command::Train(args) => train::train(*args),
        Command::Eval(args) => eval::eval(args),
        Command::Score(args) => score::score(args),
        Command::Denoise(args) => denoise::denoise(*args),
        Command::Bench(args) => bench::bench(args),
        Command::Sample(args) => sample::sample(*args),
        Command::PlotTraces(args) => plot_traces::plot_traces(args),
        Command::Estimate(args) => estimate::estimate(args),
        Command::Data(args) => data::data(args),
        Command::Export(args) => export::export(args),
        Command::Vae(args) => autoencoder::vae(*args),
        Command::Wae(args) => autoencoder::wae(*args),
    }
}

//! The `tweedie` command line.

mod bench;
mod estimate;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Learn the score and its Hessian from samples by denoising (Tweedie's formula).
#[derive(Parser, Debug)]
#[command(name = "tweedie", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Time the benchmark workloads (JSON lines; see bench/compare.py for the side-by-side peers).
    Bench(bench::BenchArgs),
    /// Fit a kernel score estimator (Stein, SSGE) to samples of a target; report s1_rel_err and time.
    Estimate(estimate::EstimateArgs),
}

/// Parses the arguments and runs the command.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::bench(args),
        Command::Estimate(args) => estimate::estimate(args),
    }
}

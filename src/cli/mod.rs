//! The `tweedie` command line.

mod bench;
mod sample;

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
    /// Sample a target with ULA, MALA, Ozaki or annealed Langevin; print sample-quality and mixing metrics.
    Sample(Box<sample::SampleArgs>),
}

/// Parses the arguments and runs the command.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::bench(args),
        Command::Sample(args) => sample::sample(*args),
    }
}

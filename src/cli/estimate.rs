//! `tweedie estimate`: fit a kernel score estimator (Stein or SSGE) to samples of a synthetic target and
//! report its relative score error at the samples and the time taken.

use super::target_help::TARGET_HELP;
use crate::estimators::{Ssge, SsgeSettings, SteinFit, SteinSettings};
use crate::evaluation::relative_error;
use crate::memory_budget::MemoryBudget;
use crate::targets::{canonical_name, parse_target, Score};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// The kernel estimator to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EstimatorKind {
    /// Stein gradient estimator (Li & Turner 2018): scores at the samples.
    Stein,
    /// Spectral Stein gradient estimator (Shi et al. 2018): scores anywhere.
    Ssge,
}

/// Arguments of `tweedie estimate`.
#[derive(Args, Debug)]
#[command(after_help = TARGET_HELP)]
pub struct EstimateArgs {
    /// The estimator.
    #[arg(long, value_enum)]
    estimator: EstimatorKind,
    /// The target whose (noisy) samples are given to the estimator.
    #[arg(long)]
    target: String,
    /// Number of samples M (the estimators cost O(M^2 D + M^3) time and O(M^2) memory).
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Noise level: samples come from q_sigma = p * N(0, sigma^2 I) and errors are against its score
    /// (0: the target itself).
    #[arg(long, default_value_t = 0.1)]
    sigma: f64,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stein: ridge regulariser eta added to the kernel matrix.
    #[arg(long, default_value_t = SteinSettings::default().eta)]
    eta: f64,
    /// SSGE: fraction of the kernel's eigenvalue sum the kept eigenfunctions reach.
    #[arg(long, default_value_t = SsgeSettings::default().threshold)]
    threshold: f64,
    /// RBF bandwidth (default: the median heuristic).
    #[arg(long)]
    bandwidth: Option<f64>,
    /// Print one JSON line.
    #[arg(long)]
    json: bool,
}

/// Runs `tweedie estimate`.
pub fn estimate(args: EstimateArgs) -> Result<()> {
    // The kernel matrix and its factorisation or eigendecomposition: about six M x M matrices of f64.
    let samples = args.samples as f64;
    MemoryBudget::of_this_machine()
        .check(|| format!("--samples {}", args.samples), 48.0 * samples * samples)?;
    let target = parse_target(&args.target)?;
    let name = canonical_name(&args.target)?;
    if !(args.sigma >= 0.0 && args.sigma.is_finite()) {
        anyhow::bail!("--sigma {}: expected a finite number >= 0", args.sigma);
    }
    let q = if args.sigma > 0.0 { target.noisy(args.sigma)? } else { target };
    let x = q.sample(args.samples, &mut ChaCha8Rng::seed_from_u64(args.seed));
    let truth = q.scores(&x);
    let start = Instant::now();
    let (scores, bandwidth, eigenfunctions) = match args.estimator {
        EstimatorKind::Stein => {
            let fit = SteinFit::fit(&x, &SteinSettings { eta: args.eta, bandwidth: args.bandwidth })
                .context("Stein gradient estimator")?;
            (fit.scores, fit.bandwidth, None)
        }
        EstimatorKind::Ssge => {
            let fit = Ssge::fit(&x, &SsgeSettings { threshold: args.threshold, bandwidth: args.bandwidth })
                .context("SSGE")?;
            (fit.score(&x)?, fit.bandwidth(), Some(fit.num_eigenfunctions()))
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let err = relative_error(scores.as_slice(), truth.as_slice());
    let estimator = format!("{:?}", args.estimator).to_lowercase();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"estimator": estimator, "target": name, "samples": args.samples, "sigma": args.sigma,
                "s1_rel_err": err, "seconds": seconds, "bandwidth": bandwidth, "eigenfunctions": eigenfunctions})
        );
    } else {
        println!(
            "{estimator} on {name} (sigma {}, {} samples): s1_rel_err {err:.4}, {seconds:.3} s, bandwidth {bandwidth:.4}{}",
            args.sigma,
            args.samples,
            eigenfunctions.map(|j| format!(", {j} eigenfunctions")).unwrap_or_default()
        );
    }
    Ok(())
}

//! `tweedie eval`: accuracy of a trained model against ground truth (analytic targets), or its
//! held-out losses (data files).

use anyhow::{Context, Result};
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::PathBuf;
use tweedie::evaluation::{evaluate_scores, ScoreReport};
use tweedie::linalg::Mat;
use tweedie::train::{loss_and_gradient, Checkpoint, Objective, StepWorkspace, TrainConfig, TrainingData};

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
    /// Seed of the test points.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Mean loss of `objective` over `points` with noise drawn from `seed`.
fn held_out_loss(checkpoint: &Checkpoint, objective: Objective, points: &Mat<f64>, seed: u64) -> f64 {
    let model = checkpoint.eval_model();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Mat<f32> = points.cast();
    let z = Mat::from_fn(objective.noise_rows(x.rows()), x.cols(), |_, _| StandardNormal.sample(&mut rng));
    let mut ws = StepWorkspace::new(&model);
    loss_and_gradient(&model, objective, checkpoint.config.sigma as f32, &x, &z, &mut ws) as f64
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
        "| s2 autodiff (J + J^T)/2 | {:.4} | {:.2} |",
        report.s2_autodiff_rel_err, report.s2_autodiff_ms
    );
}

/// Runs `tweedie eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let checkpoint = Checkpoint::load(&args.model)?;
    let trained_on = checkpoint.config.target.clone();
    let target = args.target.clone().unwrap_or_else(|| trained_on.clone());
    let probe = TrainConfig { target: target.clone(), ..checkpoint.config.clone() };
    let data = TrainingData::load(&probe.target_source()?, checkpoint.config.seed)?;
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
            let report = evaluate_scores(
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
        TrainingData::Samples { train, held_out, path } => {
            let rows = if target == trained_on { held_out.clone() } else { Mat::vstack(&[held_out, train]) };
            let objective = checkpoint.config.objective();
            let value = serde_json::json!({
                "target": target, "held_out_points": rows.rows(), "steps": checkpoint.step,
                "held_out_loss": held_out_loss(&checkpoint, objective, &rows, args.seed),
                "held_out_dsm_loss": held_out_loss(&checkpoint, Objective::Dsm, &rows, args.seed),
            });
            if args.json {
                println!("{value}");
            } else {
                println!("{}: {} held-out points", path.display(), rows.rows());
                println!(
                    "held-out training loss {:.5}, held-out DSM loss {:.5}",
                    value["held_out_loss"], value["held_out_dsm_loss"]
                );
            }
        }
    }
    Ok(())
}

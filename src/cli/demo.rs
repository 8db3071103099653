//! `tweedie demo`: the main job on a built-in target. Trains s1 and a full s2 head on `gmm2d`, compares
//! the learned Hessian with the autodiff Jacobian against the analytic truth, and draws the three Hessian
//! fields side by side.

use super::progress::ProgressObserver;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tweedie::data::claim_output;
use tweedie::estimators::score_jacobian;
use tweedie::evaluation::evaluate_scores;
use tweedie::linalg::Mat;
use tweedie::models::{ModelKind, SecondOrderHead};
use tweedie::plot::{grid_points, Colormap, Field, HeatmapFigure};
use tweedie::targets::{LogDensityExt, ScoreHessianExt};
use tweedie::train::{FormName, TrainConfig, Trainer};

/// Arguments of `tweedie demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the checkpoint and the figure (created if missing).
    #[arg(long, default_value = "tweedie-demo")]
    out_dir: PathBuf,
    /// Training steps (about a minute on one core at the default).
    #[arg(long, default_value_t = 12_000)]
    steps: u64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

const EXTENT: (f64, f64) = (-3.5, 3.5);
const GRID: usize = 90;

/// Runs `tweedie demo`.
pub fn demo(args: DemoArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("{}: cannot create folder", args.out_dir.display()))?;
    let config = TrainConfig {
        target: "gmm2d".into(),
        model: ModelKind::S1s2,
        s2: SecondOrderHead::Full,
        form: FormName::B,
        steps: args.steps,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let sigma = config.sigma;
    if !args.json {
        println!(
            "training s1 and a full s2 head on gmm2d (sigma = {sigma}, {} steps, form B)...",
            args.steps
        );
    }
    let checkpoint_path = args.out_dir.join("model.safetensors");
    let png = args.out_dir.join("hessian_fields.png");
    let _claims = (claim_output(&checkpoint_path, &[])?, claim_output(&png, &[])?);
    let mut trainer = Trainer::new(config)?;
    let mut progress = ProgressObserver::new(args.steps, 0, !args.json);
    let start = std::time::Instant::now();
    let result = trainer.run(&checkpoint_path, &mut progress);
    progress.finish();
    result?;
    let train_seconds = start.elapsed().as_secs_f64();
    let model = trainer.state().eval_model();
    let target = trainer.data().mixture().expect("gmm2d is analytic").clone();
    let report = evaluate_scores(&model, &target, sigma, 4000, args.seed + 1)?;
    let model = model.as_score().expect("the demo trains a score model");

    // The three Hessian fields of log q_sigma on a grid.
    let points = grid_points(GRID, GRID, EXTENT, EXTENT);
    let x = Mat::from_fn(points.len(), 2, |i, j| points[i][j]);
    let noisy = target.noisy(sigma)?;
    let truth = noisy.hessians(&x);
    // Grey out where q_sigma is below 1/200 of its peak: no data there, so no estimator is informed.
    let log_q = noisy.log_densities(&x);
    let peak = log_q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let shown: Vec<bool> = log_q.iter().map(|l| *l > peak - 200f64.ln()).collect();
    let xf: Mat<f32> = x.cast();
    let learned: Vec<f64> =
        model.hessian_dense(&xf).expect("model has a head").iter().map(|&v| v as f64).collect();
    let autodiff: Vec<f64> = score_jacobian(&model.s1, &xf, true).iter().map(|&v| v as f64).collect();
    let mut figure = HeatmapFigure::new(3, 3, Colormap::Diverging)
        .with_title(format!("Hessian of log q, gmm2d, sigma {sigma}"));
    let entries = [(0, "d2/dx1^2"), (1, "d2/dx1dx2"), (3, "d2/dx2^2")];
    for (row, (name, field)) in
        [("true", &truth), ("learned", &learned), ("autodiff", &autodiff)].into_iter().enumerate()
    {
        for (col, (k, entry)) in entries.iter().enumerate() {
            let values =
                field.chunks_exact(4).zip(&shown).map(|(h, s)| if *s { h[*k] } else { f64::NAN }).collect();
            figure.set_panel(
                row,
                col,
                format!("{name} {entry}"),
                Field::new(GRID, GRID, EXTENT, EXTENT, values)?,
            );
        }
    }
    figure.save_png(&png)?;
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["train_seconds"] = serde_json::json!(train_seconds);
        value["figure"] = serde_json::json!(png);
        value["checkpoint"] = serde_json::json!(checkpoint_path);
        println!("{value}");
        return Ok(());
    }
    let s2 = report.s2_rel_err.expect("model has a head");
    println!("trained in {train_seconds:.1} s; {} test points from q_sigma:", report.points);
    println!();
    println!("| estimate of the Hessian of log q_sigma | relative error | time for all points |");
    println!("|---|---|---|");
    println!(
        "| learned s2 (full head, one forward pass) | {s2:.3} | {:.2} ms |",
        report.s2_learned_ms.unwrap_or(f64::NAN)
    );
    println!(
        "| autodiff (J + J^T)/2 of s1 (D JVPs) | {:.3} | {:.2} ms |",
        report.s2_autodiff_rel_err.expect("a score model"),
        report.s2_autodiff_ms.expect("a score model")
    );
    println!("| (s1 itself) | {:.3} | |", report.s1_rel_err);
    println!();
    println!("figure: {}  (rows: truth, learned, autodiff)", png.display());
    println!(
        "model:  {}  (try: tweedie eval --model {})",
        checkpoint_path.display(),
        checkpoint_path.display()
    );
    Ok(())
}

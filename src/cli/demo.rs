//! `tweedie demo`: the main job on built-in targets. Trains s1 and a full s2 head on the 2-D mixture
//! `gmm2d` and on a 16-dimensional mixture, compares the learned Hessian with the autodiff Jacobian
//! against the analytic truth in both regimes, and draws the three Hessian fields of the 2-D one.

use super::progress::ProgressObserver;
use crate::data::{claim_output, DataDir};
use crate::estimators::score_jacobian;
use crate::evaluation::ScoreReport;
use crate::linalg::Mat;
use crate::models::{Model, ModelKind, SecondOrderHead};
use crate::plot::{grid_points, Colormap, Field, HeatmapFigure};
use crate::targets::{GaussianMixture, LogDensity, ScoreHessian};
use crate::train::{FormName, TrainConfig, Trainer};
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `tweedie demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the checkpoint and the figure (created if missing).
    #[arg(long, default_value = "tweedie-demo")]
    out_dir: PathBuf,
    /// Training steps of each of the two models (about a minute each on one core at the default).
    #[arg(long, default_value_t = 8_000)]
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

/// The second regime: a 16-dimensional mixture, where autodiff needs 16 JVPs per point.
const HIGH_DIM_TARGET: &str = "gmm:dim=16,components=4,seed=1";

/// One trained model, its report against the truth, and its training time.
struct Trained {
    target: GaussianMixture,
    name: String,
    model: Model<f32>,
    report: ScoreReport,
    seconds: f64,
    checkpoint: PathBuf,
}

/// Trains s1 and a full s2 head (form B) on `target` and evaluates both Hessian estimates on 4000 points.
fn train(target: &str, steps: u64, seed: u64, checkpoint: PathBuf, json: bool) -> Result<Trained> {
    let config = TrainConfig {
        target: target.into(),
        model: ModelKind::S1s2,
        s2: SecondOrderHead::Full,
        form: FormName::B,
        steps,
        seed,
        ..TrainConfig::default()
    };
    let sigma = config.sigma;
    if !json {
        println!("training s1 and a full s2 head on {target} (sigma = {sigma}, {steps} steps, form B)...");
    }
    let mut trainer = Trainer::new(config, &DataDir::resolve(None))?;
    let mut progress = ProgressObserver::new(steps, 0, !json);
    let start = std::time::Instant::now();
    let result = trainer.run(Some(&checkpoint), &mut progress);
    progress.finish();
    result?;
    let seconds = start.elapsed().as_secs_f64();
    let model = trainer.state().eval_model();
    let mixture = trainer.data().mixture().expect("the demo targets are analytic").clone();
    let report = ScoreReport::evaluate(&model, &mixture, sigma, 4000, seed + 1)?;
    Ok(Trained { target: mixture, name: target.into(), model, report, seconds, checkpoint })
}

/// Draws the true, learned and autodiff Hessian fields of a 2-D model on a grid.
fn draw_fields(trained: &Trained, png: &Path) -> Result<()> {
    let sigma = trained.report.sigma;
    let model = trained.model.as_score().expect("the demo trains a score model");
    let points = grid_points(GRID, GRID, EXTENT, EXTENT);
    let x = Mat::from_fn(points.len(), 2, |i, j| points[i][j]);
    let noisy = trained.target.noisy(sigma)?;
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
        .with_title(format!("Hessian of log q, {}, sigma {sigma}", trained.name));
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
    figure.render().save_png(png)?;
    Ok(())
}

/// One line saying which estimate wins at this dimension, from the measured numbers.
fn verdict(trained: &Trained) -> String {
    let r = &trained.report;
    let (learned, autodiff) = (r.s2_rel_err.unwrap_or(f64::NAN), r.s2_autodiff_rel_err.unwrap_or(f64::NAN));
    let (learned_ms, autodiff_ms) =
        (r.s2_learned_ms.unwrap_or(f64::NAN), r.s2_autodiff_ms.unwrap_or(f64::NAN));
    let accuracy = if learned <= autodiff {
        format!("learned {:.1}x more accurate", autodiff / learned)
    } else {
        format!("autodiff {:.1}x more accurate", learned / autodiff)
    };
    let cost = if learned_ms <= autodiff_ms {
        format!("learned {:.1}x cheaper", autodiff_ms / learned_ms)
    } else {
        format!("learned {:.1}x dearer", learned_ms / autodiff_ms)
    };
    format!(
        "D = {}: error {learned:.3} learned vs {autodiff:.3} autodiff ({accuracy}); {learned_ms:.1} ms vs \
         {autodiff_ms:.1} ms ({cost}: one forward pass against D JVPs)",
        trained.target.dim()
    )
}

/// Runs `tweedie demo`.
pub fn demo(args: DemoArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("{}: cannot create folder", args.out_dir.display()))?;
    let (low_path, high_path, png) = (
        args.out_dir.join("model.safetensors"),
        args.out_dir.join("model16.safetensors"),
        args.out_dir.join("hessian_fields.png"),
    );
    // No other run may write these files while this one does.
    let _claims = [&low_path, &high_path, &png]
        .map(|p| claim_output(p, &[]))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let low = train("gmm2d", args.steps, args.seed, low_path, args.json)?;
    let high = train(HIGH_DIM_TARGET, args.steps, args.seed, high_path, args.json)?;
    draw_fields(&low, &png)?;
    if args.json {
        let mut value = serde_json::json!({ "figure": png });
        for (key, trained) in [("low_dim", &low), ("high_dim", &high)] {
            let mut report = serde_json::to_value(&trained.report)?;
            report["target"] = serde_json::json!(trained.name);
            report["train_seconds"] = serde_json::json!(trained.seconds);
            report["checkpoint"] = serde_json::json!(trained.checkpoint);
            value[key] = report;
        }
        println!("{value}");
        return Ok(());
    }
    println!();
    println!("Hessian of log q_sigma on {} test points from q_sigma:", low.report.points);
    println!();
    println!("| target | estimate | relative error | time for all points |");
    println!("|---|---|---|---|");
    for trained in [&low, &high] {
        let r = &trained.report;
        let name =
            format!("{} (D = {}, trained {:.0} s)", trained.name, trained.target.dim(), trained.seconds);
        println!(
            "| {name} | learned s2 (full head, one forward pass) | {:.3} | {:.2} ms |",
            r.s2_rel_err.unwrap_or(f64::NAN),
            r.s2_learned_ms.unwrap_or(f64::NAN)
        );
        println!(
            "| | autodiff (J + J^T)/2 of s1 (D JVPs) | {:.3} | {:.2} ms |",
            r.s2_autodiff_rel_err.unwrap_or(f64::NAN),
            r.s2_autodiff_ms.unwrap_or(f64::NAN)
        );
        println!("| | (s1 itself) | {:.3} | |", r.s1_rel_err);
    }
    println!();
    println!("{}", verdict(&low));
    println!("{}", verdict(&high));
    println!();
    println!("figure: {}  (gmm2d; rows: truth, learned, autodiff)", png.display());
    println!(
        "models: {} and {}  (try: tweedie eval --model {})",
        low.checkpoint.display(),
        high.checkpoint.display(),
        high.checkpoint.display()
    );
    Ok(())
}

//! `tweedie bench`: the fixed benchmark workloads of docs/benchmarks.md, timed in-process; prints one JSON
//! line per (workload, dim) for `bench/compare.py`, which runs the JAX and PyTorch peers alongside.

use crate::estimators::{score_jacobian_into, Ssge, SsgeSettings, SteinFit, SteinSettings};
use crate::evaluation::ThirdOrderRoutes;
use crate::linalg::Mat;
use crate::memory_budget::{training_bytes, MemoryBudget, NetworkSize};
use crate::models::{
    HeadLayout, ImageScoreModel, Model, ModelShape, ScoreModel, SecondOrderHead, ThirdOrderHead, UNetSettings,
};
use crate::nn::graph::Shape;
use crate::nn::{Activation, MlpTrace};
use crate::objectives::{D2smForm, Projection};
use crate::objectives::{Objective, ObjectiveError, ScoreMatching};
use crate::optim::{Adam, AdamSettings};
use crate::targets::random_gauss;
use crate::train::ModelWorkspace;
use anyhow::{bail, Result};
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Arguments of `tweedie bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Comma-separated workloads: dsm_step, d2sm_step, ssm_step (SSM-VR, M = 1, Rademacher, as in
    /// docs/benchmarks.md), ssm_plain_step (SSM, M = 1, Rademacher), esm_step, hessian_learned,
    /// hessian_autodiff, hessian3_learned (s3[v,v,v] of a cp:4 third-order head), hessian3_autodiff
    /// (v . d^2/dt^2 s1(x + t v), one second-order jet), stein_fit, ssge_fit (for the kernel estimators
    /// `--dims` are sample counts M, on an 8-dimensional Gaussian), unet_step (the MNIST U-Net's DSM step),
    /// unet_lowrank_step (its step with a rank-20 + diagonal head on the shared U-Net, DSM + D2SM form
    /// A; both `--dims 784` only).
    #[arg(long, default_value = "dsm_step,d2sm_step,ssm_step,hessian_learned,hessian_autodiff")]
    workloads: String,
    /// Comma-separated dimensions (default: each workload's sizes, docs/benchmarks.md).
    #[arg(long)]
    dims: Option<String>,
    /// Timed repetitions per workload (after warm-up).
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// Shards per training step (default: one per pool thread, at least 32 points each for the MLP
    /// steps, one image for the U-Net's); `--shards 1` leaves the pool to the large GEMMs alone (for
    /// measuring the sharding rule).
    #[arg(long)]
    shards: Option<usize>,
    /// After the timed calls, as many again with the GEMMs tallied: adds the step's GEMM FLOPs, their
    /// rate and their share of the time to each line (src/cli/bench_profile.rs).
    #[arg(long)]
    profile: bool,
    /// Points per training step (docs/benchmarks.md's workloads use 512; smaller batches measure where
    /// sharding stops paying).
    #[arg(long, default_value_t = 512)]
    batch: usize,
}

/// How the training-step workloads are run: timed repetitions, shards (`None`: the pool-size rule) and
/// points per step.
#[derive(Clone, Copy, Debug)]
struct StepTiming {
    reps: usize,
    shards: Option<usize>,
    batch: usize,
}

const POINTS: usize = 1024;
const SIGMA: f32 = 0.1;

/// The `unet_step` workload: one training step of the MNIST U-Net (28x28x1; channels 32, 64, 128; one
/// block per level; 8 groups; SiLU) by DSM at sigma = 0.5 on a batch of 64, then Adam.
const UNET_IMAGE: Shape = Shape { height: 28, width: 28, channels: 1 };
const UNET_BATCH: usize = 64;
const UNET_SIGMA: f32 = 0.5;
/// Peak resident memory of a `unet_step` or `unet_lowrank_step` run (0.55 and 0.57 GB measured at one
/// thread), rounded up with room for the shards' workspaces.
const UNET_STEP_BYTES: f64 = 1e9;
/// `unet_lowrank_step`'s head: `U U^T + diag(d)` of rank 20, as R + 1 extra output maps of the `s1`
/// U-Net (the shared layout, the peers' network), trained with weight 10 on the first-order term.
const UNET_LOWRANK_HEAD: SecondOrderHead = SecondOrderHead::LowRank { rank: 20 };
const UNET_LOWRANK_WEIGHT: f64 = 10.0;

fn width_for(dim: usize) -> usize {
    if dim >= 784 {
        256
    } else {
        128
    }
}

fn normal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Mat<f32> {
    Mat::from_fn(rows, cols, |_, _| StandardNormal.sample(rng))
}

/// Median of wall-clock milliseconds over `reps` calls of `f`, after two warm-up calls.
fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times: Vec<f64> = (0..reps.max(1)).map(|_| super::bench_profile::timed_call(&mut f)).collect();
    times.sort_by(f64::total_cmp);
    super::bench_profile::profile_calls(reps, &mut f);
    times[times.len() / 2]
}

fn shape(dim: usize, head: Option<SecondOrderHead>) -> ModelShape {
    ModelShape { dim, width: width_for(dim), depth: 2, activation: Activation::Softplus, head }
}

fn train_step_ms(
    dim: usize,
    objective: Objective,
    head: Option<SecondOrderHead>,
    StepTiming { reps, shards, batch }: StepTiming,
) -> Result<f64, ObjectiveError> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut model = Model::Score(ScoreModel::<f32>::init(&shape(dim, head), &mut rng));
    let (x, z) = (normal(batch, dim, &mut rng), normal(objective.noise_rows(batch), dim, &mut rng));
    let mut ws = ModelWorkspace::new(&model);
    ws.force_shards(shards);
    let mut adam = Adam::new(AdamSettings::default(), model.num_params());
    // One checked step (the objective fits the model), then the timed ones.
    ws.loss_and_gradient(&model, objective, SIGMA, &x, &z)?;
    Ok(median_ms(reps, || {
        std::hint::black_box(ws.loss_and_gradient(&model, objective, SIGMA, &x, &z).is_ok());
        adam.step(model.params_mut(), ws.grad());
    }))
}

/// The model of a U-Net workload: the U-Net `tweedie train --arch unet --channels 32,64,128` builds,
/// for `unet_lowrank_step` with `--s2 lowrank:20 --s2-layout shared`.
fn unet_model(workload: &str) -> Result<Model<f32>> {
    let settings =
        UNetSettings { channels: vec![32, 64, 128], blocks: 1, groups: 8, ..UNetSettings::default() };
    let unet = settings.unet(UNET_IMAGE, Activation::Silu);
    let (sigma, rng) = (f64::from(UNET_SIGMA), &mut ChaCha8Rng::seed_from_u64(0));
    let model = if workload == "unet_lowrank_step" {
        ImageScoreModel::init_with_head(&unet, sigma, UNET_LOWRANK_HEAD, HeadLayout::Shared, rng)?
    } else {
        ImageScoreModel::init(&unet, sigma, rng)?
    };
    Ok(Model::Image(model))
}

/// The objective of a U-Net workload: DSM, or for `unet_lowrank_step` `(w / sigma^2) L1 + L2` with
/// D2SM form A (`h = s2 + s1 s1^T`, `s1` trained by both terms), no variance reduction.
fn unet_objective(workload: &str) -> Objective {
    if workload == "unet_lowrank_step" {
        Objective::SecondOrder {
            form: D2smForm::A,
            weight: UNET_LOWRANK_WEIGHT,
            couple: 0.0,
            third_order: false,
        }
    } else {
        Objective::Dsm
    }
}

/// Times a U-Net workload's step through the trainer's own path: [`ModelWorkspace::loss_and_gradient`],
/// then Adam.
fn unet_step_ms(workload: &str, StepTiming { reps, shards, .. }: StepTiming) -> Result<f64> {
    let (mut model, objective) = (unet_model(workload)?, unet_objective(workload));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let dim = UNET_IMAGE.len();
    let x = Mat::from_fn(UNET_BATCH, dim, |_, _| rand::Rng::random::<f32>(&mut rng));
    let z = normal(UNET_BATCH, dim, &mut rng);
    let mut ws = ModelWorkspace::new(&model);
    ws.force_shards(shards);
    let mut adam = Adam::new(AdamSettings::default(), model.num_params());
    ws.loss_and_gradient(&model, objective, UNET_SIGMA, &x, &z)?;
    Ok(median_ms(reps, || {
        std::hint::black_box(ws.loss_and_gradient(&model, objective, UNET_SIGMA, &x, &z).is_ok());
        adam.step(model.params_mut(), ws.grad());
    }))
}

/// Dimension of the Gaussian the kernel-estimator workloads fit.
const KERNEL_DIM: usize = 8;

/// Peak resident memory of this process in MB (`VmHWM`), if the OS reports it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Times one fit of a kernel estimator on `samples` points of an 8-dimensional Gaussian.
fn kernel_fit_ms(workload: &str, samples: usize, reps: usize) -> Result<f64> {
    let x = random_gauss(KERNEL_DIM, 4.0, 0).sample(samples, &mut ChaCha8Rng::seed_from_u64(0));
    let mut failure = None;
    let ms = median_ms(reps, || {
        let fitted = if workload == "stein_fit" {
            SteinFit::fit(&x, &SteinSettings::default()).map(|f| std::hint::black_box(f.scores.rows()))
        } else {
            Ssge::fit(&x, &SsgeSettings::default())
                .and_then(|f| f.score(&x))
                .map(|s| std::hint::black_box(s.rows()))
        };
        if let Err(e) = fitted {
            failure = Some(e);
        }
    });
    match failure {
        Some(e) => bail!("{workload} with {samples} samples: {e}"),
        None => Ok(ms),
    }
}

/// Runs one workload at one dimension; returns the median milliseconds.
fn run(workload: &str, dim: usize, timing: StepTiming) -> Result<f64> {
    let reps = timing.reps;
    let sliced = |variance_reduced| {
        Objective::ScoreMatching(ScoreMatching::Ssm {
            projections: 1,
            projection: Projection::Rademacher,
            variance_reduced,
        })
    };
    let learned_head = if dim <= 16 { SecondOrderHead::Full } else { SecondOrderHead::LowRank { rank: 10 } };
    Ok(match workload {
        "dsm_step" => train_step_ms(dim, Objective::Dsm, None, timing)?,
        "ssm_step" => train_step_ms(dim, sliced(true), None, timing)?,
        "ssm_plain_step" => train_step_ms(dim, sliced(false), None, timing)?,
        "esm_step" => train_step_ms(dim, Objective::ScoreMatching(ScoreMatching::Esm), None, timing)?,
        "stein_fit" | "ssge_fit" => kernel_fit_ms(workload, dim, reps)?,
        "unet_step" | "unet_lowrank_step" if dim == UNET_IMAGE.len() => unet_step_ms(workload, timing)?,
        "unet_step" | "unet_lowrank_step" => {
            bail!("--dims {dim} ({workload}): expected 784, the 28x28 MNIST image")
        }
        "d2sm_step" => {
            let (head, weight) = if dim >= 100 {
                (SecondOrderHead::LowRank { rank: 10 }, 10.0)
            } else {
                (SecondOrderHead::Diagonal, 1.0)
            };
            train_step_ms(
                dim,
                Objective::SecondOrder { form: D2smForm::A, weight, couple: 0.0, third_order: false },
                Some(head),
                timing,
            )?
        }
        "hessian_learned" => {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let model = ScoreModel::<f32>::init(&shape(dim, Some(learned_head)), &mut rng);
            let x = normal(POINTS, dim, &mut rng);
            let net = &model.s2.as_ref().expect("model has a head").net;
            let (mut trace, mut dense) = (MlpTrace::default(), Vec::new());
            median_ms(reps, || {
                if learned_head == SecondOrderHead::Full {
                    std::hint::black_box(model.hessian_dense_into(&x, &mut trace, &mut dense));
                } else {
                    std::hint::black_box(net.forward_trace(&x, x.rows(), &mut trace));
                }
            })
        }
        "hessian_autodiff" => {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let model = ScoreModel::<f32>::init(&shape(dim, None), &mut rng);
            let x = normal(POINTS, dim, &mut rng);
            let mut out = Vec::new();
            median_ms(reps, || {
                score_jacobian_into(&model.s1, &x, true, &mut out);
                std::hint::black_box(&out);
            })
        }
        "hessian3_learned" | "hessian3_autodiff" => {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let model = ScoreModel::<f32>::init(&shape(dim, None), &mut rng)
                .with_third_order(ThirdOrderHead::DEFAULT, &mut rng);
            let (x, v) = (normal(POINTS, dim, &mut rng), normal(POINTS, dim, &mut rng));
            let (mut routes, mut out) = (ThirdOrderRoutes::default(), Vec::new());
            let route = if workload == "hessian3_learned" {
                ThirdOrderRoutes::learned
            } else {
                ThirdOrderRoutes::autodiff
            };
            median_ms(reps, || {
                route(&mut routes, &model, &x, &v, &mut out);
                std::hint::black_box(&out);
            })
        }
        other => bail!(
            "unknown workload `{other}` (expected dsm_step, d2sm_step, ssm_step, ssm_plain_step, esm_step, \
             hessian_learned, hessian_autodiff, hessian3_learned, hessian3_autodiff, stein_fit, ssge_fit, \
             unet_step or unet_lowrank_step)"
        ),
    })
}

/// Bytes a workload needs at `dim`: the kernel fits about six M x M matrices of f64 (`dim` is M); the
/// network workloads a width-`width_for(dim)` score network (with its second-order head for
/// `d2sm_step` and `hessian_learned`) on `batch` training rows or `POINTS` evaluation rows, with D + 1
/// tangents per row for `esm_step` and `hessian_autodiff` and two otherwise.
fn memory_estimate(workload: &str, dim: usize, batch: usize) -> f64 {
    let d = dim as f64;
    if workload.starts_with("unet_") {
        // Fixed workloads; their peak resident memory is below UNET_STEP_BYTES (VmHWM, measured).
        return UNET_STEP_BYTES;
    }
    if workload.ends_with("_fit") {
        return 48.0 * d * d;
    }
    let net = |outputs| NetworkSize { inputs: d, width: width_for(dim) as f64, depth: 2.0, outputs };
    let networks = match workload {
        // The largest head either workload builds at this dimension (full, or low-rank 10 + diagonal).
        "d2sm_step" | "hessian_learned" => vec![net(d), net((d * (d + 1.0) / 2.0).min(11.0 * d))],
        // The cp:4 head: 4 + 4 D + D outputs.
        "hessian3_learned" => vec![net(d), net(4.0 + 5.0 * d)],
        _ => vec![net(d)],
    };
    let rows = if workload.starts_with("hessian") { POINTS } else { batch } as f64;
    let tangents = match workload {
        "esm_step" | "hessian_autodiff" => d + 1.0,
        // A second-order jet: primal, first and second rows.
        "hessian3_autodiff" => 3.0,
        _ => 2.0,
    };
    // hessian_* also keep one D x D matrix per point (f32).
    training_bytes(&networks, rows, tangents) + 4.0 * rows * d * d
}

fn default_dims(workload: &str) -> Vec<usize> {
    if workload.starts_with("hessian") {
        vec![2, 16, 64, 256]
    } else if workload.ends_with("_fit") {
        vec![250, 500, 1000, 2000]
    } else if workload.starts_with("unet_") {
        vec![UNET_IMAGE.len()]
    } else {
        vec![2, 16, 100, 784]
    }
}

/// Runs the benchmark and prints JSON lines.
pub fn bench(args: BenchArgs) -> Result<()> {
    if args.reps == 0 {
        bail!("--reps 0: expected at least 1 timed repetition");
    }
    if args.shards == Some(0) {
        bail!("--shards 0: expected at least 1 shard per step");
    }
    if args.batch == 0 {
        bail!("--batch 0: expected at least 1 point per step");
    }
    let timing = StepTiming { reps: args.reps, shards: args.shards, batch: args.batch };
    if args.profile {
        super::bench_profile::enable();
    }
    let budget = MemoryBudget::of_this_machine();
    let dims: Option<Vec<usize>> = args
        .dims
        .as_deref()
        .map(|s| s.split(',').map(|d| d.trim().parse::<usize>()).collect::<Result<_, _>>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--dims: {e} (expected comma-separated positive integers)"))?;
    for workload in args.workloads.split(',').map(str::trim) {
        for &dim in dims.as_ref().unwrap_or(&default_dims(workload)) {
            if dim == 0 {
                bail!("--dims: 0 is not a dimension (expected >= 1)");
            }
            budget
                .check(|| format!("--dims {dim} ({workload})"), memory_estimate(workload, dim, args.batch))?;
            let ms = run(workload, dim, timing)?;
            let mut line = serde_json::json!({"impl": "tweedie", "workload": workload, "dim": dim, "median_ms": ms,
                "reps": args.reps, "threads": rayon::current_num_threads()});
            if let Some(shards) = args.shards {
                line["shards"] = shards.into();
            }
            if args.batch != 512 && workload.ends_with("_step") {
                line["batch"] = args.batch.into();
            }
            if workload.ends_with("_fit") {
                // `dim` is the sample count M; the kernel matrix alone takes 8 M^2 bytes.
                line["samples"] = dim.into();
                line["dim"] = KERNEL_DIM.into();
                line["kernel_matrix_mb"] = (8.0 * (dim * dim) as f64 / 1e6).into();
                line["peak_rss_mb"] = peak_rss_mb().into();
            }
            if workload.starts_with("unet_") {
                // The peers assert that their U-Net has exactly this many parameters.
                line["params"] = unet_model(workload)?.num_params().into();
                line["peak_rss_mb"] = peak_rss_mb().into();
            }
            super::bench_profile::add_fields(&mut line, ms);
            println!("{line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelKind;
    use crate::train::{FormName, TrainConfig};

    #[test]
    fn unet_step_times_the_unet_that_training_builds() {
        // `tweedie train --target mnist --arch unet --channels 32,64,128 --sigma 0.5` (8 groups, 1 block).
        let config = TrainConfig {
            target: "mnist".into(),
            model: ModelKind::S1,
            unet: Some(UNetSettings {
                channels: vec![32, 64, 128],
                blocks: 1,
                groups: 8,
                ..UNetSettings::default()
            }),
            sigma: f64::from(UNET_SIGMA),
            ..TrainConfig::default()
        };
        let trained =
            config.init_model(UNET_IMAGE.len(), &mut ChaCha8Rng::seed_from_u64(3)).expect("valid U-Net");
        let (Model::Image(want), Model::Image(got)) =
            (trained, unet_model("unet_step").expect("valid U-Net"))
        else {
            panic!("expected image models");
        };
        assert_eq!((&got.unet, got.sigma), (&want.unet, want.sigma));
        assert_eq!(got.net.tensors(), want.net.tensors());
    }

    #[test]
    fn unet_lowrank_step_times_the_shared_lowrank_unet_that_training_builds() {
        // `tweedie train --target mnist --arch unet --channels 32,64,128 --sigma 0.5 --s2 lowrank:20
        // --s2-layout shared --form a`: same tensors, and the objective the trainer derives from it.
        let config = TrainConfig {
            target: "mnist".into(),
            model: ModelKind::S1s2,
            s2: UNET_LOWRANK_HEAD,
            form: FormName::A,
            unet: Some(UNetSettings {
                channels: vec![32, 64, 128],
                blocks: 1,
                groups: 8,
                s2_layout: HeadLayout::Shared,
            }),
            sigma: f64::from(UNET_SIGMA),
            ..TrainConfig::default()
        };
        let trained =
            config.init_model(UNET_IMAGE.len(), &mut ChaCha8Rng::seed_from_u64(3)).expect("valid U-Net");
        let got = unet_model("unet_lowrank_step").expect("valid U-Net");
        let (Model::Image(want), Model::Image(got)) = (trained, got) else {
            panic!("expected image models");
        };
        assert_eq!((&got.unet, got.sigma), (&want.unet, want.sigma));
        assert_eq!(got.net.tensors(), want.net.tensors());
        assert_eq!(got.head_layout(), want.head_layout());
        assert!(got.s2_net().is_none(), "the head is on the s1 U-Net");
        assert_eq!(config.objective().expect("valid objective"), unet_objective("unet_lowrank_step"));
    }

    #[test]
    fn unet_workloads_take_only_the_mnist_image() {
        let timing = StepTiming { reps: 1, shards: None, batch: 64 };
        for workload in ["unet_step", "unet_lowrank_step"] {
            let err = run(workload, 100, timing).expect_err("a 100-value image").to_string();
            assert_eq!(err, format!("--dims 100 ({workload}): expected 784, the 28x28 MNIST image"));
        }
    }
}

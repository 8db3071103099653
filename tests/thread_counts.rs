//! Results do not depend on the number of threads: the model and energy score sources (fixed chunks of
//! rows per forward pass), the kernel Stein discrepancy (rows summed in parallel, then in order) and the
//! importance-sampling estimate of log Z give bitwise the same numbers on 1 and on 3 threads, on inputs
//! of several chunks. Training is bit for bit reproducible for a given thread count, and equal to
//! rounding across thread counts (its batch is split into one shard per thread).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tweedie::evaluation::{log_partition, LogPartitionSettings};
use tweedie::linalg::Mat;
use tweedie::metrics::{ksd2_unbiased, ImqKernel};
use tweedie::models::{EnergyModel, EnergyShape, ModelShape, ScoreModel, SecondOrderHead};
use tweedie::nn::Activation;
use tweedie::samplers::{
    CurvatureBatch, CurvatureSource, EnergySource, ModelCurvatureSource, ModelSource, ScoreSource,
};

fn normal(rows: usize, cols: usize, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(rows, cols, |_, _| StandardNormal.sample(&mut rng))
}

/// `f()` on a pool of `threads` threads.
fn on<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// Every f64 as its bits, so NaNs and signed zeros compare exactly too.
fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn sources_ksd_and_log_z_are_bitwise_equal_on_one_and_three_threads() {
    let dim = 3;
    // 1000 points: four forward chunks of 256 rows.
    let x = normal(1000, dim, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let head = Some(SecondOrderHead::LowRank { rank: 2 });
    let model = ScoreModel::<f32>::init(
        &ModelShape { dim, width: 16, depth: 2, activation: Activation::Softplus, head },
        &mut rng,
    );
    let energy = EnergyModel::<f32>::init(
        &EnergyShape { dim, width: 16, depth: 2, activation: Activation::Tanh, base_precision: 1.0 },
        &mut rng,
    );
    let run = |threads: usize| {
        on(threads, || {
            let mut s = Mat::zeros(1000, dim);
            ModelSource::new(model.clone()).scores_into(&x, &mut s);
            let curvature_source = ModelCurvatureSource::new(model.clone()).unwrap();
            let (mut s_c, mut c) =
                (Mat::zeros(1000, dim), CurvatureBatch::new(curvature_source.layout(), dim));
            curvature_source.scores_and_curvature_into(&x, &mut s_c, &mut c);
            let mut dense = vec![0.0; dim * dim];
            let curvature: Vec<f64> = (0..1000)
                .flat_map(|i| {
                    c.chain(i).dense_into(&mut dense);
                    dense.clone()
                })
                .collect();
            let mut e = Mat::zeros(1000, dim);
            EnergySource::new(energy.clone()).scores_into(&x, &mut e);
            let ksd =
                ksd2_unbiased(&x.slice_rows(0, 300), &e.slice_rows(0, 300), &ImqKernel::default()).unwrap();
            let settings = LogPartitionSettings {
                tolerance: 0.05,
                batch: 1 << 10,
                min_samples: 1 << 12,
                max_samples: 1 << 14,
                mcmc_chains: 16,
                mcmc_steps: 20,
                data_bandwidths: vec![0.5, 1.0],
                pilot_samples: 1 << 10,
                ..Default::default()
            };
            let z = log_partition(&energy, Some(&x), &settings);
            (bits(s.as_slice()), bits(s_c.as_slice()), bits(&curvature), bits(e.as_slice()), ksd.to_bits(), z)
        })
    };
    let (one, three) = (run(1), run(3));
    assert_eq!(one.0, three.0, "model source scores");
    assert_eq!(one.1, three.1, "curvature source scores");
    assert_eq!(one.2, three.2, "curvature");
    assert_eq!(one.3, three.3, "energy source scores");
    assert_eq!(one.4, three.4, "KSD");
    assert_eq!(
        (one.5.log_z.to_bits(), one.5.std_err.to_bits(), one.5.samples),
        (three.5.log_z.to_bits(), three.5.std_err.to_bits(), three.5.samples),
        "log Z"
    );
    assert!(one.5.log_z.is_finite() && one.5.samples >= 1 << 12);
}

/// `tweedie train --threads N` with a fixed seed into `dir/name`; returns the checkpoint's path. Batch
/// 512 and width 256 make the hidden layers' products (512 x 256 x 256) large enough to split.
fn train_on(threads: &str, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tweedie"))
        .args(["train", "--target", "gmm:dim=3,components=2,seed=5", "--steps", "12", "--batch", "512"])
        .args(["--width", "256", "--seed", "11", "--json", "--threads", threads, "--out"])
        .arg(&out)
        .output()
        .expect("the binary runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&status.stdout).expect("one JSON line");
    assert_eq!(summary["threads"].to_string(), threads, "the summary records the pool");
    out
}

/// Every trained and optimiser value of a checkpoint, as bits.
fn checkpoint_bits(path: &std::path::Path) -> Vec<u32> {
    let c = tweedie::train::Checkpoint::load(path).expect("the checkpoint loads");
    let (m, v, _) = c.adam.state();
    c.model.params().into_iter().chain([m, v]).flatten().map(|x| x.to_bits()).collect()
}

/// The largest difference between two checkpoints' trained weights, relative to the largest weight.
fn weight_gap(a: &std::path::Path, b: &std::path::Path) -> f64 {
    let weights =
        |p: &std::path::Path| tweedie::train::Checkpoint::load(p).expect("loads").model.params().concat();
    let (a, b) = (weights(a), weights(b));
    let scale = a.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    a.iter().zip(&b).map(|(x, y)| f64::from((x - y).abs() / scale)).fold(0.0, f64::max)
}

#[test]
fn training_is_bitwise_reproducible_for_a_thread_count_and_equal_to_rounding_across_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (train_on("2", dir.path(), "a.safetensors"), train_on("2", dir.path(), "b.safetensors"));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed and 2 threads: same file");
    // On two threads each step runs as two shards of 256 points whose gradients are summed, on one
    // thread as one batch of 512: the f32 sums round differently (documented: not bit for bit), and
    // Adam carries the difference on. 12 steps at learning rate 1e-3 move a weight by at most ~1e-2;
    // a gradient difference of a few f32 ulps changes an update by far less than that, so the weights
    // agree to 1e-5 of the largest one (measured: 5.9e-8).
    let one = train_on("1", dir.path(), "one.safetensors");
    assert_ne!(
        checkpoint_bits(&one),
        checkpoint_bits(&a),
        "1 and 2 threads: documented to differ in the last bits"
    );
    let gap = weight_gap(&one, &a);
    assert!(gap <= 1e-5, "1 and 2 threads: weights differ by {gap:e} of the largest");
}

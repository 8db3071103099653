//! Results do not depend on the number of threads: the model and energy score sources (fixed chunks of
//! rows per forward pass), the kernel Stein discrepancy (rows summed in parallel, then in order) and the
//! importance-sampling estimate of log Z give bitwise the same numbers on 1 and on 3 threads, on inputs
//! of several chunks.

use super::source::{CurvatureSource, ScoreSource};
use super::CurvatureBatch;
use crate::evaluation::{LogPartition, LogPartitionSettings};
use crate::linalg::Mat;
use crate::metrics::ImqKernel;
use crate::models::{EnergyModel, EnergyShape, ModelShape, ScoreModel, SecondOrderHead};
use crate::nn::Activation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

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
            model.scores_into(&x, &mut s);
            let curvature_source = &model;
            let (mut s_c, mut c) =
                (Mat::zeros(1000, dim), CurvatureBatch::new(curvature_source.layout().unwrap(), dim));
            curvature_source.scores_and_curvature_into(&x, &mut s_c, &mut c);
            let mut dense = vec![0.0; dim * dim];
            let curvature: Vec<f64> = (0..1000)
                .flat_map(|i| {
                    c.chain(i).dense_into(&mut dense);
                    dense.clone()
                })
                .collect();
            let mut e = Mat::zeros(1000, dim);
            energy.scores_into(&x, &mut e);
            let ksd =
                ImqKernel::default().ksd2_unbiased(&x.slice_rows(0, 300), &e.slice_rows(0, 300)).unwrap();
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
            let z = LogPartition::estimate(&energy, Some(&x), &settings);
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

//! Data-parallel training steps: the batch split into contiguous shards of points, one per thread of the
//! rayon pool, each shard with its own workspace (trace and gradient buffers, allocated on the first
//! step and reused), the shards' losses and gradients summed in shard order.
//!
//! # Rule
//! Every objective's loss is a mean over points, `L = (1/n) sum_i l_i`, and its draws `z` are blocks of
//! `n` rows whose row `i` belongs to point `i` ([`Objective::noise_rows`](crate::objectives::Objective)
//! rows: noise, then directions). A shard of points `a..b` therefore takes rows `a..b` of `x` and of every
//! block of `z`, and `L = sum_s (n_s / n) L_s`, `grad L = sum_s (n_s / n) grad L_s`, summed in shard order
//! `0, 1, ..`: the bits depend on the shard count (different rounding) but not on which thread runs
//! which shard, so a run is bit-for-bit reproducible for a given thread count.
//!
//! The shard count is the pool size, capped so that every shard has at least
//! [`ShardWorkspace::MIN_POINTS`] points ([`MIN_POINTS_PER_SHARD`] for the MLP steps, one image for
//! the U-Net's; the U-Net's shards also take their rows' noise levels). Inside a shard every GEMM stays on its thread ([`with_serial_gemm`]): sharding replaces
//! gemm's own split of the large products, which is what a one-shard step (one thread, or a batch too
//! small to shard) still uses. Why sharding is the default at batch 512: gemm's split only reaches the
//! products of at least 2^24 multiply-adds (d = 784; at d = 16 and 100 a one-shard step runs on one
//! thread), and even there it leaves the activations, the loss and the per-layer bookkeeping between
//! the GEMMs on one thread, while shards run all of it in parallel. `tweedie bench --threads 2 --shards
//! 1|2` compares the two: on the quiet 2-core machine two shards were 1.07-1.92x faster than one on
//! every step workload at batch 512, d = 16 to 784 (docs/benchmarks.md, section 5).

use super::energy_step::EnergyWorkspace;
use super::image_step::ImageWorkspace;
use super::step::StepWorkspace;
use crate::linalg::{with_serial_gemm, Mat, Real};
use rayon::prelude::*;
use std::ops::Range;

/// The fewest points a shard of an MLP step may have: below it the fork, the copies and the reduction
/// cost more than the second thread saves. `dsm_step` at d = 16 (the cheapest rows) on two threads, two
/// shards against one, medians of 3 interleaved rounds on the quiet 2-core machine: batch 32 (16 points
/// a shard) 0.57x, 64 (32 a shard) 1.13x, 128 1.11x (docs/benchmarks.md, section 5).
pub(crate) const MIN_POINTS_PER_SHARD: usize = 32;

/// Gradient entries per task of the parallel reduction: every entry is zeroed, then gets `w_s g_s`
/// added in shard order, on whichever thread holds its chunk, so the bits do not depend on the
/// chunking (the same sum as one thread adding shard after shard).
const REDUCE_CHUNK: usize = 1 << 14;

/// The number of shards for a batch of `points` on a pool of `threads`: the pool size, capped so that
/// every shard has at least `min_points` points, and at least one.
pub(crate) fn shard_count(points: usize, threads: usize, min_points: usize) -> usize {
    threads.min(points / min_points.max(1)).max(1)
}

/// A step workspace whose parameter gradient the shards' gradients are summed into.
pub(crate) trait ShardWorkspace<F>: Clone + Send {
    /// The fewest points a shard of this step may have ([`shard_count`]).
    const MIN_POINTS: usize;
    /// The parameter gradient of the last step, as flat slices in parameter order.
    fn gradient(&self) -> Vec<&[F]>;
    /// The same, mutably.
    fn gradient_mut(&mut self) -> Vec<&mut [F]>;
}

impl<F: Real> ShardWorkspace<F> for StepWorkspace<F> {
    const MIN_POINTS: usize = MIN_POINTS_PER_SHARD;
    fn gradient(&self) -> Vec<&[F]> {
        self.grad.params()
    }
    fn gradient_mut(&mut self) -> Vec<&mut [F]> {
        self.grad.params_mut()
    }
}

impl<F: Real> ShardWorkspace<F> for EnergyWorkspace<F> {
    const MIN_POINTS: usize = MIN_POINTS_PER_SHARD;
    fn gradient(&self) -> Vec<&[F]> {
        self.grad.params()
    }
    fn gradient_mut(&mut self) -> Vec<&mut [F]> {
        self.grad.params_mut()
    }
}

impl<F: Real> ShardWorkspace<F> for ImageWorkspace<F> {
    /// One image's U-Net pass is milliseconds of work (`unet_step`: about 4 ms per image at one thread),
    /// far above what a shard's fork, copies and share of the reduction cost.
    const MIN_POINTS: usize = 1;
    fn gradient(&self) -> Vec<&[F]> {
        self.grad.iter().map(Vec::as_slice).collect()
    }
    fn gradient_mut(&mut self) -> Vec<&mut [F]> {
        self.grad.iter_mut().map(Vec::as_mut_slice).collect()
    }
}

/// One shard: its points, its draws and its workspace.
#[derive(Clone, Debug)]
struct Shard<F, W> {
    x: Mat<F>,
    z: Mat<F>,
    ws: W,
}

/// A step workspace `W` for the whole batch plus one per shard; the gradient of a step is always left
/// in [`ShardedStep::whole`].
#[derive(Clone, Debug)]
pub(crate) struct ShardedStep<F, W> {
    /// The workspace of a one-shard step, and where every step leaves its gradient.
    pub whole: W,
    shards: Vec<Shard<F, W>>,
    /// A fixed shard count instead of [`shard_count`] (for measuring the rule).
    pub forced_shards: Option<usize>,
}

impl<F: Real, W: ShardWorkspace<F>> ShardedStep<F, W> {
    /// Wraps the workspace of a whole-batch step.
    pub fn new(whole: W) -> Self {
        Self { whole, shards: Vec::new(), forced_shards: None }
    }

    /// The batch loss of `step` at clean points `x` (`n x D`) with draws `z` (blocks of `n` rows), run
    /// as [`shard_count`] shards on the current pool; leaves the gradient in `self.whole`. `step`
    /// computes one shard's mean loss and leaves its gradient in the workspace it is given; it is also
    /// given the shard's points as a range of the batch's rows (for per-point data held beside `x`).
    ///
    /// # Errors
    /// The first shard's error, if `step` fails.
    pub fn loss_and_gradient<E: Send>(
        &mut self,
        x: &Mat<F>,
        z: &Mat<F>,
        step: impl Fn(&Mat<F>, &Mat<F>, Range<usize>, &mut W) -> Result<F, E> + Sync,
    ) -> Result<F, E> {
        let n = x.rows();
        let count =
            self.forced_shards.unwrap_or_else(|| shard_count(n, rayon::current_num_threads(), W::MIN_POINTS));
        if count <= 1 || n < count {
            return step(x, z, 0..n, &mut self.whole);
        }
        assert!(
            z.rows().is_multiple_of(n),
            "sharded step: z has {} rows, not a whole number of blocks of {n}",
            z.rows()
        );
        if self.shards.len() != count {
            let ws = self.whole.clone();
            self.shards = vec![Shard { x: Mat::default(), z: Mat::default(), ws }; count];
        }
        let losses: Vec<Result<F, E>> = self
            .shards
            .par_iter_mut()
            .enumerate()
            .map(|(s, shard)| {
                let (a, b) = bounds(n, count, s);
                copy_shard(x, z, a, b, shard);
                with_serial_gemm(|| step(&shard.x, &shard.z, a..b, &mut shard.ws))
            })
            .collect();
        let weights: Vec<F> =
            (0..count).map(|s| bounds(n, count, s)).map(|(a, b)| F::of((b - a) as f64 / n as f64)).collect();
        let mut total = F::zero();
        for (weight, loss) in weights.iter().zip(losses) {
            total += *weight * loss?;
        }
        let grads: Vec<Vec<&[F]>> = self.shards.iter().map(|shard| shard.ws.gradient()).collect();
        for (t, acc) in self.whole.gradient_mut().into_iter().enumerate() {
            acc.par_chunks_mut(REDUCE_CHUNK).enumerate().for_each(|(c, acc)| {
                let start = c * REDUCE_CHUNK;
                acc.iter_mut().for_each(|a| *a = F::zero());
                for (weight, g) in weights.iter().zip(&grads) {
                    let g = &g[t][start..start + acc.len()];
                    acc.iter_mut().zip(g).for_each(|(a, g)| *a += *weight * *g);
                }
            });
        }
        Ok(total)
    }
}

/// Points `a..b` of shard `s` of `count` over `n` points: contiguous, sizes differing by at most one.
fn bounds(n: usize, count: usize, s: usize) -> (usize, usize) {
    let (size, extra) = (n / count, n % count);
    let start = s * size + s.min(extra);
    (start, start + size + usize::from(s < extra))
}

/// Copies rows `a..b` of `x`, and of every `n`-row block of `z`, into the shard.
fn copy_shard<F: Real, W>(x: &Mat<F>, z: &Mat<F>, a: usize, b: usize, shard: &mut Shard<F, W>) {
    let (n, dim) = (x.rows(), x.cols());
    shard.x.resize(b - a, dim);
    shard.x.as_mut_slice().copy_from_slice(&x.as_slice()[a * dim..b * dim]);
    let blocks = z.rows() / n;
    shard.z.resize(blocks * (b - a), z.cols());
    let rows = (b - a) * z.cols();
    for (k, dst) in shard.z.as_mut_slice().chunks_exact_mut(rows).enumerate() {
        let start = (k * n + a) * z.cols();
        dst.copy_from_slice(&z.as_slice()[start..start + rows]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{
        EnergyModel, EnergyShape, Model, ModelShape, ScoreModel, SecondOrderHead, ThirdOrderHead,
    };
    use crate::models::{HeadLayout, ImageScoreModel, NoiseSchedule};
    use crate::nn::graph::Shape;
    use crate::nn::Activation;
    use crate::objectives::{D2smForm, Objective, Projection, ScoreMatching};
    use crate::testing::{normal_mat, test_rng, tiny_unet};
    use crate::train::ModelWorkspace;

    /// The first-order objectives (score networks and energy models): DSM, DSM-VR, SSM and SSM-VR with
    /// every projection and two directions, ESM, FD-SSM.
    fn first_order() -> Vec<Objective> {
        let mut all = vec![
            Objective::Dsm,
            Objective::DsmVr,
            Objective::ScoreMatching(ScoreMatching::Esm),
            Objective::ScoreMatching(ScoreMatching::FdSsm { eps: 0.3 }),
        ];
        for projection in Projection::ALL {
            for variance_reduced in [false, true] {
                let ssm = ScoreMatching::Ssm { projections: 2, projection, variance_reduced };
                all.push(Objective::ScoreMatching(ssm));
            }
        }
        all
    }

    /// Every (model, objective) pair: the first-order objectives on an `s1` network and on an energy
    /// model, D2SM with every head, form and with and without the coupling on an `s1 + S2` model, and the
    /// third-order term with both third-order heads.
    fn every_family() -> Vec<(Model<f64>, Objective)> {
        let dim = 3;
        let mut rng = test_rng(120);
        let s1 = ModelShape { dim, width: 6, depth: 2, activation: Activation::Softplus, head: None };
        let energy =
            EnergyShape { dim, width: 6, depth: 2, activation: Activation::Tanh, base_precision: 0.3 };
        let score = Model::Score(ScoreModel::init(&s1, &mut rng));
        let energy = Model::Energy(EnergyModel::init(&energy, &mut rng));
        let mut all: Vec<(Model<f64>, Objective)> =
            first_order().into_iter().flat_map(|o| [(score.clone(), o), (energy.clone(), o)]).collect();
        for head in [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }] {
            let model = Model::Score(ScoreModel::init(&ModelShape { head: Some(head), ..s1 }, &mut rng));
            for form in [D2smForm::A, D2smForm::B, D2smForm::AVr] {
                for couple in [0.0, 0.7] {
                    let objective = Objective::SecondOrder { form, weight: 2.0, couple, third_order: false };
                    all.push((model.clone(), objective));
                }
            }
        }
        // The sliced third-order term beside D2SM, for both third-order heads.
        for head in [ThirdOrderHead::DEFAULT, ThirdOrderHead::Directional] {
            let shape = ModelShape { head: Some(SecondOrderHead::LowRank { rank: 2 }), ..s1 };
            let model = Model::Score(ScoreModel::init(&shape, &mut rng).with_third_order(head, &mut rng));
            let objective =
                Objective::SecondOrder { form: D2smForm::B, weight: 2.0, couple: 0.0, third_order: true };
            all.push((model, objective));
        }
        all
    }

    /// The loss and flat gradient of one step run as `shards` shards (1: the whole-batch step).
    fn step(
        model: &Model<f64>,
        objective: Objective,
        shards: usize,
        x: &Mat<f64>,
        z: &Mat<f64>,
    ) -> (f64, Vec<f64>) {
        let mut ws = ModelWorkspace::new(model);
        ws.force_shards(Some(shards));
        let loss = ws.loss_and_gradient(model, objective, 0.4, x, z).expect("the objective fits the model");
        (loss, ws.grad().concat())
    }

    #[test]
    fn sharded_steps_equal_the_whole_batch_step_to_rounding_for_every_objective_family() {
        // 7 points in 3 shards of 3, 2, 2: the loss and gradient are reweighted shard means, equal to the
        // whole-batch ones up to the rounding of the different summation order (f64: 1e-12 relative).
        let n = 7;
        for (model, objective) in every_family() {
            let mut rng = test_rng(121);
            let x = normal_mat(n, model.dim(), &mut rng);
            let z = normal_mat(objective.noise_rows(n), model.dim(), &mut rng);
            let (loss, grad) = step(&model, objective, 1, &x, &z);
            let (sharded_loss, sharded_grad) = step(&model, objective, 3, &x, &z);
            let what = format!("{} {objective:?}", model.description());
            assert!(
                (sharded_loss - loss).abs() <= 1e-12 * loss.abs().max(1.0),
                "{what}: {sharded_loss} vs {loss}"
            );
            let scale = grad.iter().fold(1.0f64, |m, g| m.max(g.abs()));
            for (i, (s, w)) in sharded_grad.iter().zip(&grad).enumerate() {
                assert!((s - w).abs() <= 1e-12 * scale, "{what}: gradient {i}: {s} vs {w}");
            }
            assert_ne!(loss, 0.0, "{what}: a vacuous comparison");
        }
    }

    /// Image models shard too, each shard reading its own rows' noise levels: a noise-conditional U-Net's
    /// DSM step (levels drawn per row) and a shared-layout low-rank head's step with D2SM form A and with
    /// the likelihood fit, 3 shards against the whole batch, equal to rounding.
    #[test]
    fn sharded_image_steps_equal_the_whole_batch_step_to_rounding() {
        let config = tiny_unet(Shape::new(4, 4, 1));
        let mut rng = test_rng(124);
        let schedule = NoiseSchedule { hi: 0.9, lo: 0.1, levels: 4 };
        let plain = ImageScoreModel::init(&config, 0.5, &mut rng).unwrap().noise_conditional(schedule);
        let head = SecondOrderHead::LowRank { rank: 2 };
        let headed =
            ImageScoreModel::init_with_head(&config, 0.5, head, HeadLayout::Shared, &mut rng).unwrap();
        let second = |form| Objective::SecondOrder { form, weight: 2.0, couple: 0.0, third_order: false };
        let n = 7;
        for (model, objective) in [
            (plain, Objective::Dsm),
            (headed.clone(), second(D2smForm::A)),
            (headed, second(D2smForm::Likelihood { pcs: 0 })),
        ] {
            let model = Model::Image(model);
            let x = normal_mat(n, 16, &mut rng);
            let z = normal_mat(n, 16, &mut rng);
            let run = |shards: usize| {
                let mut ws = ModelWorkspace::new(&model);
                ws.force_shards(Some(shards));
                ws.draw_noise_levels(&model, n, &mut test_rng(125));
                let loss = ws.loss_and_gradient(&model, objective, 0.5, &x, &z).expect("fits the model");
                (loss, ws.grad().concat())
            };
            let ((loss, grad), (sharded_loss, sharded_grad)) = (run(1), run(3));
            assert!((sharded_loss - loss).abs() <= 1e-12 * loss.abs().max(1.0), "{objective:?}: loss");
            let scale = grad.iter().fold(1.0f64, |m, g| m.max(g.abs()));
            for (i, (s, w)) in sharded_grad.iter().zip(&grad).enumerate() {
                assert!((s - w).abs() <= 1e-12 * scale, "{objective:?}: gradient {i}: {s} vs {w}");
            }
            assert_ne!(loss, 0.0, "{objective:?}: a vacuous comparison");
        }
    }

    #[test]
    fn one_and_two_threads_agree_to_rounding_but_not_bit_for_bit() {
        // The documented behaviour across thread counts: a batch of 512 runs as one shard on one thread
        // and as two on two, so the f32 sums are rounded differently. The bound: each gradient element
        // is a sum of at most 512 products, whose rounding error in either order is below
        // 512 eps_f32 = 6.1e-5 of the sum of their magnitudes; we allow 1e-4 of the largest element.
        let mut rng = test_rng(122);
        let shape = ModelShape { dim: 8, width: 32, depth: 2, activation: Activation::Softplus, head: None };
        let model = Model::Score(ScoreModel::<f64>::init(&shape, &mut rng).cast::<f32>());
        let objective = Objective::Dsm;
        let x = normal_mat(512, 8, &mut rng).cast::<f32>();
        let z = normal_mat(objective.noise_rows(512), 8, &mut rng).cast::<f32>();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool starts");
            pool.install(|| {
                let mut ws = ModelWorkspace::new(&model);
                let loss = ws.loss_and_gradient(&model, objective, 0.1, &x, &z).expect("DSM fits");
                (loss, ws.grad().concat())
            })
        };
        let ((loss_1, grad_1), (loss_2, grad_2)) = (on(1), on(2));
        assert_eq!(on(2).1, grad_2, "two threads twice: the same bits");
        assert_ne!(grad_1, grad_2, "1 and 2 threads are documented to differ in the last bits");
        assert!((loss_1 - loss_2).abs() <= 1e-4 * loss_1.abs(), "loss {loss_1} vs {loss_2}");
        let scale = grad_1.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        for (i, (a, b)) in grad_1.iter().zip(&grad_2).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "gradient {i}: {a} vs {b} (largest {scale})");
        }
    }

    /// The parallel reduction leaves `sum_s w_s g_s`, added in shard order from zero, bit for bit, on
    /// pools of 1 and 3 threads, for a gradient whose hidden weight spans two reduction chunks (in f32,
    /// where a different order would show in the last bits).
    #[test]
    fn reduced_gradient_is_the_shard_order_sum_bit_for_bit() {
        let mut rng = test_rng(123);
        let shape = ModelShape { dim: 3, width: 130, depth: 2, activation: Activation::Softplus, head: None };
        let model = ScoreModel::<f64>::init(&shape, &mut rng).cast::<f32>();
        let hidden = model.s1.layer(1).0.len();
        assert!(hidden > REDUCE_CHUNK, "the hidden weight ({hidden}) spans more than one chunk");
        let (n, shards) = (7, 3);
        let x = normal_mat(n, 3, &mut rng).cast::<f32>();
        let z = normal_mat(Objective::Dsm.noise_rows(n), 3, &mut rng).cast::<f32>();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool starts");
            pool.install(|| {
                let mut step = ShardedStep::new(StepWorkspace::new(&model));
                step.forced_shards = Some(shards);
                let dsm = |x: &Mat<f32>, z: &Mat<f32>, _: Range<usize>, ws: &mut StepWorkspace<f32>| {
                    crate::train::step::loss_and_gradient(&model, Objective::Dsm, 0.5, x, z, ws)
                };
                step.loss_and_gradient(&x, &z, dsm).expect("DSM fits");
                let mut want: Vec<f32> = vec![0.0; model.num_params()];
                for (s, shard) in step.shards.iter().enumerate() {
                    let (a, b) = bounds(n, shards, s);
                    let weight = ((b - a) as f64 / n as f64) as f32;
                    want.iter_mut().zip(shard.ws.gradient().concat()).for_each(|(w, g)| *w += weight * g);
                }
                let bits = |v: &[f32]| v.iter().map(|g| g.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&step.whole.gradient().concat()), bits(&want), "{threads} threads");
            });
        }
    }

    #[test]
    fn shards_cover_the_batch_in_order_with_sizes_differing_by_at_most_one() {
        for (n, count) in [(512, 2), (7, 3), (100, 8), (33, 32)] {
            let all: Vec<(usize, usize)> = (0..count).map(|s| bounds(n, count, s)).collect();
            assert_eq!(all[0].0, 0);
            assert_eq!(all[count - 1].1, n);
            assert!(all.windows(2).all(|w| w[0].1 == w[1].0), "{n} over {count}: {all:?}");
            let sizes: Vec<usize> = all.iter().map(|(a, b)| b - a).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
    }

    #[test]
    fn the_shard_count_is_the_pool_size_capped_by_the_points() {
        let min = MIN_POINTS_PER_SHARD;
        assert_eq!(shard_count(512, 2, min), 2);
        assert_eq!(shard_count(512, 1, min), 1);
        assert_eq!(shard_count(2 * min - 1, 8, min), 1);
        assert_eq!(shard_count(3 * min, 8, min), 3);
        assert_eq!(shard_count(0, 4, min), 1);
        assert_eq!(shard_count(3, 8, 1), 3);
    }
}

//! Training recovers a Hessian that varies with the point: on the 2-D three-component mixture `gmm2d` at
//! sigma = 0.5, `s2 = ∇² log q_sigma` changes sign between the components, so no constant matrix is close
//! to it (the best one, the mean of the true `s2` over the test points, has relative error 0.63; 0.54 on
//! the diagonal). Every head x form pair must beat it by a wide margin. A head trained at the clean `x`
//! instead of the noisy `x~` learns `E[S2 | x]` at the wrong points and does worse than the constant (this
//! was checked by making that change in the training step: relative errors 0.82 to 1.21 on every pair), a
//! failure the Gaussian test, whose Hessian is constant, cannot see.
//!
//! Threshold: learned error <= 0.75 x best-constant error. Measured over training seeds 0, 1, 2 (27
//! runs), the ratio was at most 0.60 (full head, form A-VR: 0.51, 0.60, 0.55, standard deviation 0.05),
//! so the bound sits about four standard deviations above the worst pair's mean; the wrong-points head
//! gives ratios of 1.3 and more.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tweedie::evaluation::{relative_error, ScoreReport};
use tweedie::models::{ModelKind, SecondOrderHead};
use tweedie::targets::GaussianMixture;
use tweedie::train::{FormName, TrainConfig, Trainer};

const SIGMA: f64 = 0.5;
const POINTS: usize = 2000;
const MAX_RATIO_TO_BEST_CONSTANT: f64 = 0.75;

/// Relative error of the best constant estimate of `s2` on `POINTS` points of `q_sigma`: the mean of the
/// true Hessians (on the diagonal only for a diagonal head).
fn best_constant_error(target: &GaussianMixture, diagonal: bool) -> f64 {
    let dim = target.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let x = target.sample(POINTS, &mut rng);
    let noisy = target.noisy(SIGMA).unwrap();
    let (mut s1, mut truth) = (vec![0.0; dim], vec![0.0; POINTS * dim * dim]);
    for (i, block) in truth.chunks_exact_mut(dim * dim).enumerate() {
        let point: Vec<f64> = x
            .row(i)
            .iter()
            .map(|v| v + SIGMA * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng))
            .collect();
        noisy.score_and_hessian_into(&point, &mut s1, block);
    }
    let mut mean = vec![0.0; dim * dim];
    for block in truth.chunks_exact(dim * dim) {
        mean.iter_mut().zip(block).for_each(|(m, t)| *m += t / POINTS as f64);
    }
    let constant: Vec<f64> = truth.chunks_exact(dim * dim).flat_map(|_| mean.iter().copied()).collect();
    // A diagonal head is scored on the diagonals alone.
    let keep = |m: &[f64]| -> Vec<f64> {
        m.iter()
            .enumerate()
            .filter(|(k, _)| !diagonal || (k % (dim * dim)).is_multiple_of(dim + 1))
            .map(|(_, v)| *v)
            .collect()
    };
    relative_error(&keep(&constant), &keep(&truth))
}

/// Trains `head` with every form (A, B, A-VR) for 2000 steps and checks each against the best constant.
fn every_form_beats_the_best_constant(head: SecondOrderHead) {
    for (form, vr) in [(FormName::A, false), (FormName::B, false), (FormName::A, true)] {
        let config = TrainConfig {
            target: "gmm2d".into(),
            model: ModelKind::S1s2,
            s2: head,
            form,
            vr,
            sigma: SIGMA,
            steps: 2000,
            batch: 256,
            width: 32,
            learning_rate: 1e-2,
            ema: 0.99,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(config, &tweedie::data::DataDir::resolve(None)).unwrap();
        trainer.run(None, &mut ()).unwrap();
        let target = trainer.target().unwrap().clone();
        let report = ScoreReport::evaluate(&trainer.state().eval_model(), &target, SIGMA, POINTS, 9).unwrap();
        let learned = report.s2_rel_err.unwrap();
        let baseline = best_constant_error(&target, head.is_diagonal());
        eprintln!(
            "{head} {form:?} vr={vr}: s1 {:.4} s2 {learned:.4} best constant {baseline:.4}",
            report.s1_rel_err
        );
        assert!(
            learned <= MAX_RATIO_TO_BEST_CONSTANT * baseline,
            "{head} {form:?} vr={vr}: rel_err(s2) = {learned}, best constant {baseline}"
        );
        if let (Some(ensemble), Some(autodiff)) = (report.s2_ensemble_rel_err, report.s2_autodiff_rel_err) {
            // The blend's weight is fitted on 2000 other points of the same q_sigma: a one-parameter
            // least-squares fit, whose excess squared error out of sample is of relative order 1/2000,
            // so the blend must be at least as accurate as the better estimate up to that (2% margin on
            // the relative error, 4% on the squared error). A wrong weight (e.g. 1 - w) breaks this.
            eprintln!("  ensemble {ensemble:.4} (w {:?}) autodiff {autodiff:.4}", report.s2_ensemble_weight);
            assert!(
                ensemble <= 1.02 * learned.min(autodiff),
                "{head} {form:?} vr={vr}: ensemble {ensemble} vs learned {learned}, autodiff {autodiff}"
            );
        }
    }
}

#[test]
fn full_head_beats_the_best_constant_hessian_on_a_mixture() {
    every_form_beats_the_best_constant(SecondOrderHead::Full);
}

#[test]
fn diagonal_head_beats_the_best_constant_hessian_on_a_mixture() {
    every_form_beats_the_best_constant(SecondOrderHead::Diagonal);
}

#[test]
fn low_rank_head_beats_the_best_constant_hessian_on_a_mixture() {
    every_form_beats_the_best_constant(SecondOrderHead::LowRank { rank: 1 });
}

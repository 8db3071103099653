//! Statistical and identity tests of the samplers on targets with known answers.

use super::chains::chain_rng;
use super::*;
use crate::linalg::Mat;
use crate::metrics::MmdEstimator;
use crate::models::NoiseSchedule;
use crate::targets::{parse_target, GaussianMixture, ScoreHessian};
use crate::testing::test_rng;
use rand_distr::{Distribution, StandardNormal};

/// `N(0, 1/l)` in one dimension.
fn gauss_1d(l: f64) -> GaussianMixture {
    GaussianMixture::gaussian(vec![0.0], Mat::from_vec(1, 1, vec![1.0 / l])).unwrap()
}

const SOLVERS: [OzakiSolver; 3] =
    [OzakiSolver::Eigen, OzakiSolver::Diagonal, OzakiSolver::Lanczos { iters: 1 }];

/// Runs one step of `make()` from the single point `x0` with the stream of `seed`, returning `x'`.
fn one_step_1d<S: Sampler>(mut sampler: S, x0: f64, seed: u64) -> f64 {
    let mut c = Chains::new(Mat::from_vec(1, 1, vec![x0]), seed).unwrap();
    sampler.step(&mut c);
    c.positions().at(0, 0)
}

/// The one-step map of an unadjusted sampler on a 1-D Gaussian is `x' = a x + b xi`; reads `a` and `b`
/// from two runs with the same noise (`xi` is the first normal of the chain's stream).
fn affine_map_1d<S: Sampler>(make: impl Fn() -> S) -> (f64, f64) {
    let seed = 9;
    let xi: f64 = StandardNormal.sample(&mut chain_rng(seed, 0));
    let (y1, y0) = (one_step_1d(make(), 1.0, seed), one_step_1d(make(), 0.0, seed));
    (y1 - y0, y0 / xi)
}

#[test]
fn ozaki_stationary_variance_equals_the_targets_for_every_step_size_and_solver() {
    // x' = a x + b xi has stationary variance b^2 / (1 - a^2); Ozaki's a = e^{-hl}, b^2 = (1 - e^{-2hl})/l.
    for l in [0.5, 4.0] {
        let p = gauss_1d(l);
        for h in [0.01, 0.3, 1.0, 5.0, 50.0] {
            for solver in SOLVERS {
                let settings = OzakiSettings { step_size: h, solver, l_max: 0.0 };
                let (a, b) = affine_map_1d(|| Ozaki::new(settings.clone(), &p).unwrap());
                let v = b * b / (1.0 - a * a);
                // Rounding of x' is eps |x'|; 1 - a^2 >= 1 - e^{-0.01} loses at most 3 digits.
                assert!((v * l - 1.0).abs() < 1e-11, "l {l} h {h} {solver:?}: variance {v} vs {}", 1.0 / l);
                assert!((a - (-h * l).exp()).abs() < 1e-14);
            }
        }
    }
}

#[test]
fn ula_stationary_variance_is_inflated_by_one_over_one_minus_h_l_over_two() {
    for l in [0.5, 4.0] {
        let p = gauss_1d(l);
        for hl in [0.01, 0.5, 1.0, 1.5, 1.9] {
            let h = hl / l;
            let (a, b) = affine_map_1d(|| Ula::new(h, &p).unwrap());
            let v = b * b / (1.0 - a * a);
            let want = 1.0 / (l * (1.0 - h * l / 2.0));
            assert!((v / want - 1.0).abs() < 1e-11, "l {l} h {h}: {v} vs {want}");
        }
    }
}

/// Sample variance of column `j` around the known mean `mu`.
fn variance(x: &Mat<f64>, j: usize, mu: f64) -> f64 {
    x.row_iter().map(|r| (r[j] - mu).powi(2)).sum::<f64>() / x.rows() as f64
}

/// `|s2 - v| <= 5 sd` with sd = v sqrt(2 / n), the standard deviation of the variance of n normal draws
/// around their known mean.
fn variance_matches(s2: f64, v: f64, n: usize) -> bool {
    (s2 - v).abs() <= 5.0 * v * (2.0 / n as f64).sqrt()
}

#[test]
fn simulated_stationary_variances_match_ozaki_exact_and_ula_biased() {
    let (l, n) = (4.0, 4000);
    let p = gauss_1d(l);
    for hl in [0.5, 1.5] {
        let h = hl / l;
        let start = || Chains::new(p.sample(n, &mut test_rng(1)), 2).unwrap();
        let mut oz = Ozaki::new(OzakiSettings { step_size: h, ..Default::default() }, &p).unwrap();
        let mut chains = start();
        run(&mut oz, &mut chains, 40, &mut ());
        assert!(variance_matches(variance(chains.positions(), 0, 0.0), 1.0 / l, n));
        let mut ula = Ula::new(h, &p).unwrap();
        let mut chains = start();
        run(&mut ula, &mut chains, 40, &mut ());
        let biased = 1.0 / (l * (1.0 - hl / 2.0));
        let s2 = variance(chains.positions(), 0, 0.0);
        assert!(variance_matches(s2, biased, n), "ULA {s2} vs {biased}");
        assert!(!variance_matches(s2, 1.0 / l, n), "the test can tell ULA's bias at h l = {hl}");
    }
}

#[test]
fn mala_leaves_a_gaussian_invariant_where_ula_is_biased() {
    let (l, n) = (4.0, 4000);
    let p = gauss_1d(l);
    let h = 1.0 / l; // h l = 1: ULA's variance doubles
    let mut mala = Mala::new(h, &p).unwrap();
    let mut chains = Chains::new(p.sample(n, &mut test_rng(3)), 4).unwrap();
    let s = run(&mut mala, &mut chains, 30, &mut ());
    let s2 = variance(chains.positions(), 0, 0.0);
    assert!(variance_matches(s2, 1.0 / l, n), "MALA variance {s2} vs {}", 1.0 / l);
    assert!(s.acceptance_rate() > 0.3 && s.acceptance_rate() < 1.0, "acceptance {}", s.acceptance_rate());
    let mean = chains.positions().as_slice().iter().sum::<f64>() / n as f64;
    assert!(mean.abs() <= 5.0 * (1.0 / (l * n as f64)).sqrt());
}

#[test]
fn mala_keeps_the_mean_and_covariance_of_a_mixture() {
    let n = 4000;
    let p = parse_target("gmm2d").unwrap();
    let mut mala = Mala::new(0.05, &p).unwrap();
    let start = p.sample(n, &mut test_rng(5));
    let mut chains = Chains::new(start.clone(), 6).unwrap();
    let s = run(&mut mala, &mut chains, 30, &mut ());
    let (mu, cov) = (p.mean(), p.covariance());
    let x = chains.positions();
    // Started at exact draws, a MALA that never moves would keep the moments: it must accept most
    // proposals at h = 0.05 (rejections are O(h^{3/2})) and every chain must have left its start (one
    // that accepts with probability >= 0.5 per step stays put for 30 steps with probability <= 1e-9).
    assert!(s.acceptance_rate() > 0.5 && s.acceptance_rate() < 1.0, "acceptance {}", s.acceptance_rate());
    assert!(x.row_iter().zip(start.row_iter()).all(|(a, b)| a != b), "a chain never moved");
    // Each statistic E f(x) within 5 standard errors sd(f) / sqrt(n), f centred at the exact mean.
    let check = |f: &dyn Fn(&[f64]) -> f64, want: f64, what: &str| {
        let vals: Vec<f64> = x.row_iter().map(f).collect();
        let m = vals.iter().sum::<f64>() / n as f64;
        let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        assert!((m - want).abs() <= 5.0 * sd / (n as f64).sqrt(), "{what}: {m} vs {want}");
    };
    for i in 0..2 {
        check(&|r| r[i], mu[i], "mean");
        for j in 0..2 {
            check(&|r| (r[i] - mu[i]) * (r[j] - mu[j]), cov.at(i, j), "covariance");
        }
    }
}

#[test]
fn ozaki_samples_an_ill_conditioned_gaussian_exactly_after_a_few_long_steps() {
    // gauss:dim=3,cond=10; start far out (N(0, 9 I)); h = 5: e^{-h l} <= e^{-5} per step, so after 4
    // steps the start is forgotten to 2e-9 and the draws are exact.
    let p = parse_target("gauss:dim=3,cond=10,seed=2").unwrap();
    let n = 4000;
    let mut oz = Ozaki::new(OzakiSettings { step_size: 5.0, ..Default::default() }, &p).unwrap();
    let mut chains = Chains::from_normal(n, 3, 3.0, 1).unwrap();
    let s = run(&mut oz, &mut chains, 4, &mut ());
    assert_eq!((s.clipped, s.diverged.len()), (0, 0));
    assert_second_moments_match(chains.positions(), &p.covariance());
}

#[test]
fn lanczos_and_diagonal_solvers_agree_with_the_eigen_solver_where_they_are_exact() {
    let step = |p: &GaussianMixture, solver: OzakiSolver| {
        let mut oz = Ozaki::new(OzakiSettings { step_size: 0.7, solver, l_max: 0.0 }, p).unwrap();
        let mut chains = Chains::from_normal(20, p.dim(), 2.0, 3).unwrap();
        oz.step(&mut chains);
        chains.positions().clone()
    };
    let close = |a: &Mat<f64>, b: &Mat<f64>, what: &str| {
        for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
            assert!((x - y).abs() <= 1e-10 * (1.0 + y.abs()), "{what}: {x} vs {y}");
        }
    };
    // Dense H (a mixture: H varies, has positive eigenvalues to clip): Lanczos with k = D is exact.
    let p = parse_target("gmm:dim=6,components=3,seed=4").unwrap();
    close(&step(&p, OzakiSolver::Lanczos { iters: 6 }), &step(&p, OzakiSolver::Eigen), "lanczos");
    // Diagonal H: the diagonal solver is exact.
    let diag = GaussianMixture::gaussian(
        vec![0.5; 4],
        Mat::from_fn(4, 4, |i, j| if i == j { 0.1 + i as f64 } else { 0.0 }),
    )
    .unwrap();
    close(&step(&diag, OzakiSolver::Diagonal), &step(&diag, OzakiSolver::Eigen), "diagonal");
}

#[test]
fn clipping_counts_the_positive_curvature_eigenvalues() {
    let p = parse_target("gmm2d").unwrap();
    let mut chains = Chains::from_normal(200, 2, 2.0, 8).unwrap();
    let mut positive = 0;
    let mut h = vec![0.0; 4];
    for r in chains.positions().row_iter() {
        p.hessian_into(r, &mut h);
        let eig = nalgebra::Matrix2::new(h[0], h[1], h[2], h[3]).symmetric_eigenvalues();
        positive += eig.iter().filter(|&&l| l > 0.0).count();
    }
    assert!(positive > 0, "some start points lie where log p is locally convex");
    let mut oz = Ozaki::new(OzakiSettings { step_size: 0.1, ..Default::default() }, &p).unwrap();
    let info = oz.step(&mut chains);
    assert_eq!((info.eigenvalues, info.clipped), (400, positive));
    let mut free =
        Ozaki::new(OzakiSettings { step_size: 0.1, l_max: f64::INFINITY, ..Default::default() }, &p).unwrap();
    assert_eq!(free.step(&mut chains).clipped, 0);
}

#[test]
fn runs_are_reproducible_across_thread_counts() {
    let p = parse_target("gmm:dim=3,components=3,seed=1").unwrap();
    let settings = AnnealedSettings {
        schedule: NoiseSchedule { hi: 2.0, lo: 0.05, levels: 3 },
        steps_per_level: 3,
        step_size: 0.3,
        denoise: true,
    };
    let go = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let samplers: Vec<Box<dyn Sampler + '_>> = vec![
                Box::new(Ula::new(0.02, &p).unwrap()),
                Box::new(Mala::new(0.05, &p).unwrap()),
                Box::new(Ozaki::new(OzakiSettings { step_size: 0.5, ..Default::default() }, &p).unwrap()),
                Box::new(
                    Ozaki::new(
                        OzakiSettings {
                            step_size: 0.5,
                            solver: OzakiSolver::Lanczos { iters: 2 },
                            l_max: 0.0,
                        },
                        &p,
                    )
                    .unwrap(),
                ),
                Box::new(AnnealedOzaki::new(settings.clone(), OzakiSolver::Eigen, 0.0, &p).unwrap()),
                Box::new(AnnealedUla::new(settings.clone(), &p).unwrap()),
            ];
            samplers
                .into_iter()
                .map(|mut s| {
                    let mut chains = Chains::from_normal(100, 3, 2.0, 42).unwrap();
                    run(&mut s, &mut chains, 9, &mut ());
                    let reference = p.sample(50, &mut test_rng(0));
                    let mmd = MmdEstimator::new(reference).unwrap().mmd2(chains.positions()).unwrap();
                    (chains.positions().clone(), mmd)
                })
                .collect::<Vec<_>>()
        })
    };
    // Bitwise equal.
    assert_eq!(go(1), go(2));
}

#[test]
fn annealed_ozaki_ends_with_the_tweedie_step_on_exact_draws_of_a_gaussian() {
    let p = parse_target("gauss:dim=2,cond=4,seed=1").unwrap();
    let n = 4000;
    let settings = AnnealedSettings {
        schedule: NoiseSchedule { hi: 3.0, lo: 0.01, levels: 6 },
        steps_per_level: 2,
        step_size: 1e4,
        denoise: true,
    };
    let mut s = AnnealedOzaki::new(settings.clone(), OzakiSolver::Eigen, 0.0, &p).unwrap();
    let mut chains = Chains::from_normal(n, 2, 3.0, 5).unwrap();
    let mut infos = Vec::new();
    for _ in 0..settings.total_steps() {
        infos.push(s.step(&mut chains));
    }
    let sigmas: Vec<f64> = infos.iter().map(|i| i.sigma.unwrap()).collect();
    assert_eq!(sigmas[0], 3.0);
    assert_eq!(sigmas[11], 0.01);
    assert!(infos[..11].iter().all(|i| !i.denoised) && infos[11].denoised);
    // Each level is sampled exactly (h_i l >= 1e4 * 1e-4 * 0.9 ~ 1 per step at the last level), and the
    // Tweedie step maps q_sigma to the posterior means: covariance Sigma (Sigma + sigma^2 I)^{-1} Sigma,
    // within 5e-4 of Sigma, far below the sampling error.
    assert_second_moments_match(chains.positions(), &p.covariance());
}

#[test]
fn the_final_denoising_step_is_the_posterior_mean_of_the_last_level() {
    // Two runs with the same chain streams, with and without the final step: on a Gaussian, the score
    // of q_sigma is -(Sigma + sigma^2 I)^{-1} x, so Tweedie's step x + sigma^2 s1(x) must be exactly
    // Sigma (Sigma + sigma^2 I)^{-1} x, with sigma the last level (0.5, large enough that the step moves
    // the points by a third of their norm).
    let p = parse_target("gauss:dim=2,cond=4,seed=1").unwrap();
    let sigma: f64 = 0.5;
    let settings = |denoise| AnnealedSettings {
        schedule: NoiseSchedule { hi: 3.0, lo: sigma, levels: 4 },
        steps_per_level: 2,
        step_size: 1e4,
        denoise,
    };
    let cov = p.covariance();
    let m = nalgebra::Matrix2::new(cov.at(0, 0), cov.at(0, 1), cov.at(1, 0), cov.at(1, 1));
    let shrink = m * (m + nalgebra::Matrix2::identity() * sigma * sigma).try_inverse().unwrap();
    let n = 4000;
    let final_positions = |denoise: bool, ozaki: bool| {
        let mut chains = Chains::from_normal(n, 2, 3.0, 5).unwrap();
        let total = settings(denoise).total_steps();
        let last = if ozaki {
            let mut s = AnnealedOzaki::new(settings(denoise), OzakiSolver::Eigen, 0.0, &p).unwrap();
            (0..total).map(|_| s.step(&mut chains)).last().unwrap()
        } else {
            let mut s =
                AnnealedUla::new(AnnealedSettings { step_size: 0.5, ..settings(denoise) }, &p).unwrap();
            (0..total).map(|_| s.step(&mut chains)).last().unwrap()
        };
        assert_eq!(last.denoised, denoise);
        chains.positions().clone()
    };
    for ozaki in [true, false] {
        let (raw, denoised) = (final_positions(false, ozaki), final_positions(true, ozaki));
        for (r, d) in raw.row_iter().zip(denoised.row_iter()) {
            let want = shrink * nalgebra::Vector2::new(r[0], r[1]);
            assert!(
                (d[0] - want[0]).abs() < 1e-12 && (d[1] - want[1]).abs() < 1e-12,
                "ozaki = {ozaki}: {d:?} vs {want:?}"
            );
        }
    }
    // And in distribution: Ozaki samples q_sigma = N(0, Sigma + sigma^2 I) exactly at h = 1e4, so the
    // denoised points have covariance Sigma (Sigma + sigma^2 I)^{-1} Sigma.
    let want = shrink * m;
    assert_second_moments_match(&final_positions(true, true), &Mat::from_fn(2, 2, |i, j| want[(i, j)]));
}

#[test]
fn the_chain_series_of_an_exact_sampler_has_ess_equal_to_its_length() {
    // Ozaki with h = 50 on gauss (precisions >= 1): a = e^{-50}, successive states are independent.
    let p = parse_target("gauss:dim=2,cond=5").unwrap();
    let mut oz = Ozaki::new(OzakiSettings { step_size: 50.0, ..Default::default() }, &p).unwrap();
    let mut chains = Chains::from_normal(8, 2, 1.0, 0).unwrap();
    let mut obs = (
        ChainSeries::new(1, usize::MAX, 4, 2),
        MmdTrace::new(MmdEstimator::new(p.sample(200, &mut test_rng(1))).unwrap(), 100),
    );
    run(&mut oz, &mut chains, 2000, &mut obs);
    let m = obs.0.summary(&chains).unwrap();
    assert_eq!((m.length, m.chains), (2000, 4));
    // Each ESS estimate has relative sd about sqrt(2 (2W + 1) / n) <= 0.2 for W <= 20 lags; the
    // minimum over 8 series is within 4 of those.
    assert!(m.ess_min > 2000.0 * 0.2 && m.iat_max < 2.5, "{m:?}");
    assert_eq!(obs.1.trace().steps, (0..=2000).step_by(100).collect::<Vec<_>>());
}

#[test]
fn bad_settings_are_typed_errors() {
    let p = gauss_1d(1.0);
    for h in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(Ula::new(h, &p), Err(SamplerError::NonPositiveStepSize { .. })));
        assert!(matches!(Mala::new(h, &p), Err(SamplerError::NonPositiveStepSize { .. })));
    }
    let oz = |s: OzakiSettings| Ozaki::new(s, &p).err();
    assert!(matches!(
        oz(OzakiSettings { l_max: f64::NAN, ..Default::default() }),
        Some(SamplerError::BadClip { .. })
    ));
    assert!(matches!(
        oz(OzakiSettings { solver: OzakiSolver::Lanczos { iters: 0 }, ..Default::default() }),
        Some(SamplerError::ZeroLanczosIterations)
    ));
    for (hi, lo, levels) in [(0.1, 1.0, 3), (1.0, 0.0, 3), (1.0, 0.1, 0), (f64::INFINITY, 0.1, 3)] {
        let settings = AnnealedSettings { schedule: NoiseSchedule { hi, lo, levels }, ..Default::default() };
        assert!(matches!(AnnealedUla::new(settings, &p), Err(SamplerError::BadSchedule { .. })));
    }
    let settings = AnnealedSettings { steps_per_level: 0, ..Default::default() };
    assert!(matches!(AnnealedUla::new(settings, &p), Err(SamplerError::ZeroSteps)));
}

/// Every second moment `E[x_i x_j]` of the chains (zero-mean targets) is within 5 standard errors of the
/// target covariance, the standard error estimated from the chains themselves.
#[track_caller]
fn assert_second_moments_match(x: &Mat<f64>, cov: &Mat<f64>) {
    let n = x.rows();
    for i in 0..cov.rows() {
        for j in 0..cov.cols() {
            let vals: Vec<f64> = x.row_iter().map(|r| r[i] * r[j]).collect();
            let m = vals.iter().sum::<f64>() / n as f64;
            let sd = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            assert!(
                (m - cov.at(i, j)).abs() <= 5.0 * sd / (n as f64).sqrt(),
                "({i},{j}): {m} vs {}",
                cov.at(i, j)
            );
        }
    }
}

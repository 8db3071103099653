//! The image samplers on a Gaussian over 8 x 8 pixels with a low-rank plus diagonal covariance, whose
//! scores and curvature at every noise level are exact: annealed Ozaki (thin-factor solver) and annealed
//! ULA reach its moments, and the thin-factor Ozaki step equals the dense one.

use super::*;
use crate::linalg::Mat;
use crate::models::NoiseSchedule;
use crate::samplers::source::NoiseConditional;
use nalgebra::{DMatrix, DVector};

/// $\mathcal N(\mu, c I + V V^\top)$ with orthogonal columns $v_k$ (the eigenvectors of the covariance,
/// eigenvalues $c + \Vert v_k \Vert^2$; every other direction has variance $c$).
///
/// At noise level $\sigma$, with $a = c + \sigma^2$ and $M = a I + V^\top V = L L^\top$, Woodbury gives
/// $s_2 = -(a I + V V^\top)^{-1} = -a^{-1} I + W W^\top$, $W = a^{-1/2} V L^{-\top}$: the
/// [`CurvatureLayout::LowRank`] structure with a constant diagonal $d = -1/a$.
struct LowRankGaussian {
    mean: Vec<f64>,
    c: f64,
    v: DMatrix<f64>,
}

impl LowRankGaussian {
    /// A smooth mean image and three orthogonal image patterns (horizontal ramp, vertical ramp, centred
    /// blob) with variances `c + [0.6, 0.3, 0.15]`, pixel noise `c = 0.01`.
    fn image(side: usize) -> Self {
        let D = side * side;
        let coord = |p: usize| {
            ((p / side) as f64 / (side - 1) as f64 - 0.5, (p % side) as f64 / (side - 1) as f64 - 0.5)
        };
        let mean = (0..D).map(|p| 0.5 + 0.2 * coord(p).1).collect();
        let patterns = [
            (0..D).map(|p| coord(p).1).collect::<Vec<_>>(),
            (0..D).map(|p| coord(p).0).collect(),
            (0..D).map(|p| (-(coord(p).0.powi(2) + coord(p).1.powi(2)) * 8.0).exp()).collect(),
        ];
        let mut v = DMatrix::zeros(D, 3);
        for (k, (pattern, var)) in patterns.iter().zip([0.6, 0.3, 0.15]).enumerate() {
            let mut col = DVector::from_column_slice(pattern);
            for j in 0..k {
                let prev = v.column(j).normalize();
                col -= &prev * prev.dot(&col);
            }
            v.set_column(k, &(col.normalize() * f64::sqrt(var)));
        }
        Self { mean, c: 0.01, v }
    }

    /// $(W, -1/a)$ at level `sigma`.
    fn factor(&self, sigma: f64) -> (DMatrix<f64>, f64) {
        let a = self.c + sigma * sigma;
        let m = DMatrix::identity(3, 3) * a + self.v.transpose() * &self.v;
        let l = m.cholesky().unwrap().l();
        let w = l.solve_upper_triangular(&self.v.transpose()).unwrap().transpose() / a.sqrt();
        (w, -1.0 / a)
    }

    /// The covariance's eigenvalues along `v_k` and off V's range.
    fn variances(&self) -> ([f64; 3], f64) {
        let along = [0, 1, 2].map(|k| self.c + self.v.column(k).norm_squared());
        (along, self.c)
    }
}

impl NoiseConditionalScore for LowRankGaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn curvature_layout(&self) -> Option<CurvatureLayout> {
        Some(CurvatureLayout::LowRank { rank: 3 })
    }

    fn scores_into(&self, x: &Mat<f64>, sigma: f64, out: &mut Mat<f64>) {
        let mut curvature = CurvatureBatch::new(CurvatureLayout::LowRank { rank: 3 }, self.dim());
        self.scores_and_curvature_into(x, sigma, out, &mut curvature);
    }

    fn scores_and_curvature_into(
        &self,
        x: &Mat<f64>,
        sigma: f64,
        scores: &mut Mat<f64>,
        curvature: &mut CurvatureBatch,
    ) {
        let D = self.dim();
        let (w, d) = self.factor(sigma);
        let blocks = curvature.resize(x.rows());
        for (i, block) in blocks.chunks_exact_mut(4 * D).enumerate() {
            let (u, diag) = block.split_at_mut(3 * D);
            (0..D).for_each(|p| (0..3).for_each(|k| u[p * 3 + k] = w[(p, k)]));
            diag.fill(d);
            // s_1 = s_2 (x - mean).
            let centred: Vec<f64> = x.row(i).iter().zip(&self.mean).map(|(a, m)| a - m).collect();
            CurvatureView::new(CurvatureLayout::LowRank { rank: 3 }, D, block)
                .matvec(&centred, scores.row_mut(i));
        }
    }
}

/// Asserts the chains' mean and variances along the covariance's eigenvectors match
/// `N(mean, var_k)`. Tolerances: 5 standard errors, `sqrt(var/N)` for means and `var sqrt(2/N)` for
/// Gaussian variances (a false alarm has probability below 1e-4 over all checks).
fn assert_moments(p: &LowRankGaussian, x: &Mat<f64>, variance: impl Fn(f64) -> f64, what: &str) {
    let (n, D) = (x.rows(), x.cols());
    let (along, off) = p.variances();
    let mean: Vec<f64> = (0..D).map(|j| (0..n).map(|i| x.at(i, j)).sum::<f64>() / n as f64).collect();
    for (j, (got, want)) in mean.iter().zip(&p.mean).enumerate() {
        let se = (variance(p.c + p.v.row(j).norm_squared()) / n as f64).sqrt();
        assert!((got - want).abs() < 5.0 * se, "{what}: mean of pixel {j} {got} vs {want}");
    }
    let var_along = |dir: &DVector<f64>| {
        let proj: Vec<f64> = (0..n).map(|i| (0..D).map(|j| (x.at(i, j) - mean[j]) * dir[j]).sum()).collect();
        proj.iter().map(|t| t * t).sum::<f64>() / (n - 1) as f64
    };
    // A direction off V's range: a pixel checkerboard made orthogonal to V.
    let mut off_dir = DVector::from_fn(D, |p, _| if (p / 8 + p % 8) % 2 == 0 { 1.0 } else { -1.0 });
    for k in 0..3 {
        let vk = p.v.column(k).normalize();
        off_dir -= &vk * vk.dot(&off_dir);
    }
    let dirs = (0..3).map(|k| (p.v.column(k).normalize(), along[k])).chain([(off_dir.normalize(), off)]);
    for (dir, lambda) in dirs {
        let (got, want) = (var_along(&dir), variance(lambda));
        let se = want * (2.0 / n as f64).sqrt();
        assert!((got - want).abs() < 5.0 * se, "{what}: variance {got} vs {want} (eigenvalue {lambda})");
    }
}

/// Annealing schedule shared by the moment tests: from above the largest standard deviation (0.78) down
/// to `sigma_min`, finishing with the Tweedie step.
fn schedule(steps_per_level: usize, step_size: f64) -> AnnealedSettings {
    AnnealedSettings {
        schedule: NoiseSchedule { hi: 2.0, lo: SIGMA_MIN, levels: 10 },
        steps_per_level,
        step_size,
        denoise: true,
    }
}

const SIGMA_MIN: f64 = 0.01;

/// After the Tweedie step from `q_sigma = N(mean, Sigma + sigma^2 I)` the law is
/// `N(mean, Sigma (Sigma + sigma^2 I)^{-1} Sigma)`: eigenvalue `lambda^2 / (lambda + sigma^2)`.
fn denoised(lambda: f64) -> f64 {
    lambda * lambda / (lambda + SIGMA_MIN * SIGMA_MIN)
}

#[test]
fn annealed_thin_factor_ozaki_reaches_the_moments_of_a_low_rank_image_gaussian() {
    let p = LowRankGaussian::image(8);
    // Ozaki is exact on a Gaussian at any step size: h = 1e3 mixes every level in a few steps.
    let mut s = AnnealedOzaki::new(schedule(4, 1e3), OzakiSolver::LowRank, 0.0, &&p).unwrap();
    let mut chains = Chains::from_normal(4000, 64, 2.0, 11).unwrap();
    let summary = run(&mut s, &mut chains, 40, &mut ());
    assert_eq!((summary.diverged.len(), summary.clipped), (0, 0));
    assert_moments(&p, chains.positions(), denoised, "annealed ozaki");
}

#[test]
fn annealed_ula_reaches_the_moments_of_a_low_rank_image_gaussian() {
    let p = LowRankGaussian::image(8);
    // h = 0.5: ULA's variance bias at the last level is h sigma^2 / (2 (c + sigma^2)) < 0.3%, well
    // inside the 5 standard errors (11%) of the smallest variance; 50 steps per level mix every level.
    let mut s = AnnealedUla::new(schedule(50, 0.5), &&p).unwrap();
    let mut chains = Chains::from_normal(4000, 64, 2.0, 12).unwrap();
    let summary = run(&mut s, &mut chains, 500, &mut ());
    assert_eq!(summary.diverged.len(), 0);
    assert_moments(&p, chains.positions(), denoised, "annealed ula");
}

#[test]
fn the_thin_factor_ozaki_step_equals_the_dense_eigen_step() {
    // Small D = 16 (4 x 4 images): the dense solver forms H and its eigendecomposition.
    let p = LowRankGaussian::image(4);
    for sigma in [0.05, 0.5] {
        let level = (&p).at_level(sigma).unwrap();
        let step = |solver, l_max| {
            let mut oz = Ozaki::new(OzakiSettings { step_size: 0.7, solver, l_max }, &level).unwrap();
            let mut chains = Chains::from_normal(10, 16, 1.0, 3).unwrap();
            oz.step(&mut chains);
            chains.positions().clone()
        };
        // l_max = -2 clips the smaller-magnitude eigenvalues, so clipping is compared as well.
        for l_max in [0.0, -2.0] {
            let (thin, dense) = (step(OzakiSolver::LowRank, l_max), step(OzakiSolver::Eigen, l_max));
            for (a, b) in thin.as_slice().iter().zip(dense.as_slice()) {
                assert!((a - b).abs() <= 1e-10 * (1.0 + b.abs()), "sigma {sigma} l_max {l_max}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn an_ozaki_sampler_without_curvature_is_refused() {
    struct ScoresOnly;
    impl NoiseConditionalScore for ScoresOnly {
        fn dim(&self) -> usize {
            1
        }
        fn curvature_layout(&self) -> Option<CurvatureLayout> {
            None
        }
        fn scores_into(&self, x: &Mat<f64>, _sigma: f64, out: &mut Mat<f64>) {
            out.as_mut_slice().iter_mut().zip(x.as_slice()).for_each(|(o, x)| *o = -x);
        }
        fn scores_and_curvature_into(&self, _: &Mat<f64>, _: f64, _: &mut Mat<f64>, _: &mut CurvatureBatch) {
            unreachable!("no curvature layout")
        }
    }
    let ozaki = AnnealedOzaki::new(schedule(1, 0.5), OzakiSolver::LowRank, 0.0, &&ScoresOnly);
    assert!(matches!(ozaki, Err(SamplerError::NoSecondOrderHead)));
    assert!(AnnealedUla::new(schedule(1, 0.5), &&ScoresOnly).is_ok());
}

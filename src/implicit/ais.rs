//! Annealed importance sampling (AIS) of a decoder's marginal likelihood `log p(x)`, from the prior
//! `N(0, I)` to the posterior `p(z | x)` through Hamiltonian Monte Carlo transitions.

use super::error::ImplicitError;
use crate::linalg::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A latent-variable model with the prior `p(z) = N(0, I)` and a likelihood `p(x | z)` with a gradient.
pub trait LatentDecoder {
    /// The latent dimension.
    fn latent_dim(&self) -> usize;

    /// `log p(x_i | z_i)` for every row pair, writing `grad_z log p(x_i | z_i)` into the rows of `grad`
    /// (resized to the shape of `z`).
    fn log_likelihood(&self, x: &Mat<f64>, z: &Mat<f64>, grad: &mut Mat<f64>) -> Vec<f64>;
}

/// Settings of [`AisEstimate::estimate`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AisSettings {
    /// Independent chains per image, `C >= 2` (their spread gives the standard error).
    pub chains: usize,
    /// Intermediate distributions `K >= 1`.
    pub intermediate: usize,
    /// Leapfrog steps per HMC transition.
    pub leapfrog_steps: usize,
    /// The initial leapfrog step size of every chain.
    pub initial_step_size: f64,
    /// The acceptance probability the step sizes are adapted toward.
    pub target_acceptance: f64,
    /// Steepness `delta` of the sigmoid schedule.
    pub schedule_steepness: f64,
    /// Seed of the prior draws, momenta and acceptance tests.
    pub seed: u64,
}

impl Default for AisSettings {
    /// 16 chains, 500 distributions, 10 leapfrog steps of initial size 0.05, acceptance 0.65, `delta = 4`.
    fn default() -> Self {
        Self {
            chains: 16,
            intermediate: 500,
            leapfrog_steps: 10,
            initial_step_size: 0.05,
            target_acceptance: 0.65,
            schedule_steepness: 4.0,
            seed: 1,
        }
    }
}

/// Per-image AIS estimates of `log p(x)`.
#[derive(Clone, Debug, PartialEq)]
pub struct AisEstimate {
    /// `log p_hat(x_i)`, the log-mean-exp of the chains' log-weights.
    pub log_likelihood: Vec<f64>,
    /// The Monte Carlo standard error of each `log p_hat(x_i)` (delta method over the chains).
    pub std_err: Vec<f64>,
    /// Mean acceptance rate of the HMC transitions.
    pub acceptance: f64,
}

/// The sigmoid schedule `beta_0 = 0 < ... < beta_K = 1`.
///
/// # Definition
/// $$ \tilde\beta_k = \sigma\big(\delta (2k/K - 1)\big),\qquad
///    \beta_k = \frac{\tilde\beta_k - \tilde\beta_0}{\tilde\beta_K - \tilde\beta_0}. $$
///
/// # Reference
/// Wu, Burda, Salakhutdinov, Grosse, "On the Quantitative Analysis of Decoder-Based Generative Models",
/// ICLR 2017, Sec. 2.3 and App. B.
pub fn sigmoid_schedule(k: usize, steepness: f64) -> Vec<f64> {
    let raw: Vec<f64> =
        (0..=k).map(|i| 1.0 / (1.0 + (-steepness * (2.0 * i as f64 / k as f64 - 1.0)).exp())).collect();
    let (lo, hi) = (raw[0], raw[k]);
    raw.iter().map(|b| (b - lo) / (hi - lo)).collect()
}

/// `log (1/C) sum_c exp(a_c)` and its delta-method standard error `sd(w) / (mean(w) sqrt(C))`, with
/// `w_c = exp(a_c - max a)`.
fn log_mean_exp_with_std_err(a: &[f64]) -> (f64, f64) {
    let c = a.len() as f64;
    let max = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = a.iter().map(|v| (v - max).exp()).collect();
    let mean = w.iter().sum::<f64>() / c;
    let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (c - 1.0);
    (max + mean.ln(), var.sqrt() / (mean * c.sqrt()))
}

/// `U(z) = -log N(z; 0, I) - beta log p(x | z)` up to a constant, and its gradient, per row.
fn potential(z: &Mat<f64>, ll: &[f64], grad_ll: &Mat<f64>, beta: f64, u: &mut [f64], grad_u: &mut Mat<f64>) {
    grad_u.resize(z.rows(), z.cols());
    for r in 0..z.rows() {
        let (zr, gr) = (z.row(r), grad_ll.row(r));
        u[r] = 0.5 * zr.iter().map(|v| v * v).sum::<f64>() - beta * ll[r];
        for (g, (zv, gl)) in grad_u.row_mut(r).iter_mut().zip(zr.iter().zip(gr)) {
            *g = zv - beta * gl;
        }
    }
}

impl AisEstimate {
    /// Estimates `log p(x_i)` for every row of `x` by annealed importance sampling.
    ///
    /// # Definition
    /// With `f_k(z) = N(z; 0, I) p(x | z)^{beta_k}` on a sigmoid schedule of `beta_k`, each chain starts at
    /// `z_0 ~ N(0, I)`, accumulates
    /// $$ \log w = \sum_{k=1}^K (\beta_k - \beta_{k-1}) \log p(x \mid z_{k-1}), $$
    /// and moves `z_{k-1} -> z_k` by one HMC transition that leaves `f_k` invariant (unit mass, leapfrog,
    /// Metropolis test). `E[w] = p(x)`, so `log p_hat(x) = log mean_c w_c`. One step size, shared by all
    /// chains, is multiplied by `exp(0.1 (a - a*))` after every transition, `a` the mean acceptance
    /// probability of the round and `a*` the target. (Adapting each chain on its own acceptance makes its
    /// kernel depend on its own past and biases `w` upward, by about one standard error in the test below.)
    ///
    /// # Reference
    /// Neal, "Annealed Importance Sampling", Statistics and Computing 2001; Wu et al. 2017 (as above).
    ///
    /// # Errors
    /// [`ImplicitError`] for fewer than 2 chains, no intermediate distribution, no leapfrog step, a step
    /// size or target acceptance out of range, or `x` empty.
    pub fn estimate<D: LatentDecoder + ?Sized>(
        decoder: &D,
        x: &Mat<f64>,
        settings: &AisSettings,
    ) -> Result<AisEstimate, ImplicitError> {
        let s = settings;
        if s.chains < 2 {
            return Err(ImplicitError::new("--chains", s.chains, "at least 2 chains per image"));
        }
        if s.intermediate == 0 {
            return Err(ImplicitError::new("--intermediate", 0, "at least 1 intermediate distribution"));
        }
        if s.leapfrog_steps == 0 {
            return Err(ImplicitError::new("--leapfrog-steps", 0, "at least 1 leapfrog step"));
        }
        if !(s.initial_step_size > 0.0 && s.initial_step_size.is_finite()) {
            return Err(ImplicitError::new("--step-size", s.initial_step_size, "a finite number > 0"));
        }
        if !(s.target_acceptance > 0.0 && s.target_acceptance < 1.0) {
            return Err(ImplicitError::new(
                "--target-acceptance",
                s.target_acceptance,
                "a fraction in (0, 1)",
            ));
        }
        if x.rows() == 0 {
            return Err(ImplicitError::new("--images", 0, "at least 1 image"));
        }
        let (n, chains, dim) = (x.rows(), s.chains, decoder.latent_dim());
        let rows = n * chains;
        // Image i, chain c at row i C + c.
        let xr = Mat::from_fn(rows, x.cols(), |r, j| x.at(r / chains, j));
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
        let mut normal = |rows: usize| Mat::from_fn(rows, dim, |_, _| StandardNormal.sample(&mut rng));
        let mut z = normal(rows);
        let mut grad_ll = Mat::default();
        let mut ll = decoder.log_likelihood(&xr, &z, &mut grad_ll);
        let mut log_w = vec![0.0; rows];
        let mut step = s.initial_step_size;
        let (mut u0, mut u1) = (vec![0.0; rows], vec![0.0; rows]);
        let (mut grad_u, mut z_new, mut grad_new) = (Mat::default(), Mat::default(), Mat::default());
        let mut accepted = 0.0;
        let betas = sigmoid_schedule(s.intermediate, s.schedule_steepness);
        let mut uniform = ChaCha8Rng::seed_from_u64(s.seed ^ 0x9e37_79b9_7f4a_7c15);
        for k in 1..betas.len() {
            let beta = betas[k];
            for (w, l) in log_w.iter_mut().zip(&ll) {
                *w += (beta - betas[k - 1]) * l;
            }
            // One HMC transition leaving f_k invariant.
            let mut p = normal(rows);
            let kinetic0: Vec<f64> =
                p.row_iter().map(|r| 0.5 * r.iter().map(|v| v * v).sum::<f64>()).collect();
            potential(&z, &ll, &grad_ll, beta, &mut u0, &mut grad_u);
            z_new.clone_from(&z);
            let mut ll_new = ll.clone();
            grad_new.clone_from(&grad_ll);
            for l in 0..s.leapfrog_steps {
                let first = l == 0;
                for r in 0..rows {
                    let h = if first { 0.5 * step } else { step };
                    for ((pv, g), zv) in p.row_mut(r).iter_mut().zip(grad_u.row(r)).zip(z_new.row_mut(r)) {
                        *pv -= h * g;
                        *zv += step * *pv;
                    }
                }
                ll_new = decoder.log_likelihood(&xr, &z_new, &mut grad_new);
                potential(&z_new, &ll_new, &grad_new, beta, &mut u1, &mut grad_u);
            }
            let mut round_acceptance = 0.0;
            for r in 0..rows {
                let mut kinetic1 = 0.0;
                for (pv, g) in p.row_mut(r).iter_mut().zip(grad_u.row(r)) {
                    *pv -= 0.5 * step * g;
                    kinetic1 += 0.5 * *pv * *pv;
                }
                let log_ratio = u0[r] + kinetic0[r] - u1[r] - kinetic1;
                let accept_prob = if log_ratio.is_finite() { log_ratio.min(0.0).exp() } else { 0.0 };
                if uniform.random::<f64>() < accept_prob {
                    z.row_mut(r).copy_from_slice(z_new.row(r));
                    grad_ll.row_mut(r).copy_from_slice(grad_new.row(r));
                    ll[r] = ll_new[r];
                }
                round_acceptance += accept_prob;
            }
            accepted += round_acceptance;
            step *= (0.1 * (round_acceptance / rows as f64 - s.target_acceptance)).exp();
        }
        let (log_likelihood, std_err) = log_w.chunks_exact(chains).map(log_mean_exp_with_std_err).unzip();
        let acceptance = accepted / (rows * s.intermediate) as f64;
        Ok(AisEstimate { log_likelihood, std_err, acceptance })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};
    use nalgebra::{DMatrix, DVector};

    /// `p(x | z) = N(x; W z + b, sigma^2 I)`: the marginal `N(b, W W^T + sigma^2 I)` is closed form.
    struct LinearGaussian {
        w: Mat<f64>,
        b: Vec<f64>,
        sigma: f64,
    }

    impl LatentDecoder for LinearGaussian {
        fn latent_dim(&self) -> usize {
            self.w.cols()
        }

        fn log_likelihood(&self, x: &Mat<f64>, z: &Mat<f64>, grad: &mut Mat<f64>) -> Vec<f64> {
            let (dx, s2) = (x.cols(), self.sigma * self.sigma);
            grad.resize(z.rows(), z.cols());
            let mean = Mat::matmul(z, &self.w, true);
            (0..z.rows())
                .map(|r| {
                    let resid: Vec<f64> = (0..dx).map(|j| x.at(r, j) - mean.at(r, j) - self.b[j]).collect();
                    for (k, g) in grad.row_mut(r).iter_mut().enumerate() {
                        *g = (0..dx).map(|j| self.w.at(j, k) * resid[j]).sum::<f64>() / s2;
                    }
                    let sq: f64 = resid.iter().map(|v| v * v).sum();
                    -0.5 * sq / s2 - 0.5 * dx as f64 * (2.0 * std::f64::consts::PI * s2).ln()
                })
                .collect()
        }
    }

    impl LinearGaussian {
        fn log_marginal(&self, x: &[f64]) -> f64 {
            let dx = x.len();
            let w = DMatrix::from_fn(dx, self.w.cols(), |i, j| self.w.at(i, j));
            let cov = &w * w.transpose() + DMatrix::identity(dx, dx) * self.sigma.powi(2);
            let chol = cov.cholesky().unwrap();
            let r = DVector::from_fn(dx, |i, _| x[i] - self.b[i]);
            let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
            let quad = r.dot(&chol.solve(&r));
            -0.5 * (quad + log_det + dx as f64 * (2.0 * std::f64::consts::PI).ln())
        }
    }

    #[test]
    fn matches_the_closed_form_marginal_of_a_linear_gaussian_decoder() {
        // Latent 3, data 6, sigma 0.3: the posterior is ~10x narrower than the prior, so plain importance
        // sampling from the prior would be far off and the annealing has work to do.
        let mut rng = test_rng(16);
        let model = LinearGaussian {
            w: normal_mat(6, 3, &mut rng),
            b: normal_mat(1, 6, &mut rng).into_vec(),
            sigma: 0.3,
        };
        let images = 24;
        let z = normal_mat(images, 3, &mut rng);
        let noise = normal_mat(images, 6, &mut rng);
        let mean = Mat::matmul(&z, &model.w, true);
        let x = Mat::from_fn(images, 6, |i, j| mean.at(i, j) + model.b[j] + 0.3 * noise.at(i, j));
        let settings =
            AisSettings { chains: 32, intermediate: 1000, leapfrog_steps: 5, ..Default::default() };
        let est = AisEstimate::estimate(&model, &x, &settings).unwrap();
        assert!((0.55..0.75).contains(&est.acceptance), "acceptance {}", est.acceptance);
        let (mut error_sum, mut variance_sum) = (0.0, 0.0);
        for i in 0..images {
            let truth = model.log_marginal(x.row(i));
            let (got, se) = (est.log_likelihood[i], est.std_err[i]);
            // The standard error must be small enough for the checks to mean something; each image
            // within 4 standard errors (the delta-method error of a log-mean-exp has heavy tails).
            assert!(se < 0.25, "image {i}: standard error {se}");
            assert!((got - truth).abs() < 4.0 * se, "image {i}: AIS {got} ± {se}, truth {truth}");
            error_sum += got - truth;
            variance_sum += se * se;
        }
        // The mean error over the images within 3 standard errors of the mean: this is what catches a
        // bias of a fraction of a standard error per image.
        let (mean_error, mean_se) = (error_sum / images as f64, variance_sum.sqrt() / images as f64);
        assert!(mean_error.abs() < 3.0 * mean_se, "mean error {mean_error} ± {mean_se}");
    }

    #[test]
    fn schedule_runs_from_zero_to_one_and_bad_settings_are_errors() {
        let b = sigmoid_schedule(10, 4.0);
        assert!(b[0] == 0.0 && b[10] == 1.0 && b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        // Symmetric around the middle: beta_k + beta_{K-k} = 1.
        assert!((b[3] + b[7] - 1.0).abs() < 1e-15);
        let model = LinearGaussian { w: Mat::zeros(2, 1), b: vec![0.0; 2], sigma: 1.0 };
        let x = Mat::zeros(1, 2);
        let one = AisSettings { chains: 1, ..Default::default() };
        assert_eq!(AisEstimate::estimate(&model, &x, &one).unwrap_err().name, "--chains");
        let none = AisSettings { intermediate: 0, ..Default::default() };
        assert_eq!(AisEstimate::estimate(&model, &x, &none).unwrap_err().name, "--intermediate");
    }
}

//! The log normaliser `log Z = log \int exp(-E(x)) dx` of an energy model by importance sampling with a
//! wide Gaussian proposal, run until its standard error is below a tolerance; and held-out
//! log-likelihoods `-E(x) - log Z`.

use super::energy_model::EnergyModel;
use crate::linalg::{Mat, Real};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Settings of [`log_partition`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogPartitionSettings {
    /// Standard deviation `c` of the proposal `N(0, c^2 I)` (data whitened to unit scale; `c > 1`
    /// covers the tails).
    pub proposal_std: f64,
    /// Stop once the standard error of `log Z` is at most this many nats.
    pub tolerance: f64,
    /// Proposal draws per batch.
    pub batch: usize,
    /// Draws before the first stopping check.
    pub min_samples: usize,
    /// Draws at most (the estimate then reports its larger standard error).
    pub max_samples: usize,
    /// Seed of the proposal draws.
    pub seed: u64,
}

impl Default for LogPartitionSettings {
    /// `c = 1.5`, tolerance 0.01 nats, batches of 2^15, between 2^17 and 2^24 draws, seed 0.
    fn default() -> Self {
        Self {
            proposal_std: 1.5,
            tolerance: 0.01,
            batch: 1 << 15,
            min_samples: 1 << 17,
            max_samples: 1 << 24,
            seed: 0,
        }
    }
}

/// An importance-sampling estimate of `log Z`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogPartition {
    /// The estimate `log Z_hat`.
    pub log_z: f64,
    /// Its standard error in nats (delta method: `sqrt((K sum w^2 / (sum w)^2 - 1) / K)`).
    pub std_err: f64,
    /// Proposal draws used `K`.
    pub samples: usize,
    /// Effective sample size `(sum w)^2 / sum w^2`.
    pub effective_samples: f64,
}

/// Streaming `log sum exp` of the log weights and of twice the log weights.
#[derive(Default)]
struct WeightSums {
    shift: f64,
    sum: f64,
    sum_sq: f64,
    count: usize,
}

impl WeightSums {
    fn push(&mut self, log_w: f64) {
        if self.count == 0 || log_w > self.shift {
            let scale = (self.shift - log_w).exp();
            if self.count > 0 {
                self.sum *= scale;
                self.sum_sq *= scale * scale;
            }
            self.shift = log_w;
        }
        let w = (log_w - self.shift).exp();
        self.sum += w;
        self.sum_sq += w * w;
        self.count += 1;
    }

    fn estimate(&self) -> LogPartition {
        let k = self.count as f64;
        let relative_var = (k * self.sum_sq / (self.sum * self.sum) - 1.0).max(0.0);
        LogPartition {
            log_z: self.shift + (self.sum / k).ln(),
            std_err: (relative_var / k).sqrt(),
            samples: self.count,
            effective_samples: self.sum * self.sum / self.sum_sq,
        }
    }
}

/// Estimates `log Z` of `model` by importance sampling.
///
/// # Definition
/// With proposal `q = N(0, c^2 I)` and draws `x_k ~ q`,
/// $$ \hat Z = \frac1K \sum_k w_k,\qquad w_k = \frac{e^{-E(x_k)}}{q(x_k)}, $$
/// computed in log space. Draws continue in batches until the delta-method standard error of
/// `log Z_hat` is at most `tolerance` (after at least `min_samples`), or `max_samples` is reached.
/// A model with a base precision `lambda >= 1/c^2` has bounded weights whatever its network.
pub fn log_partition<F: Real>(model: &EnergyModel<F>, settings: &LogPartitionSettings) -> LogPartition {
    let dim = model.dim();
    let c = settings.proposal_std;
    let log_q_norm = -0.5 * dim as f64 * (2.0 * std::f64::consts::PI * c * c).ln();
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut sums = WeightSums::default();
    let batch = settings.batch.max(1);
    loop {
        let z: Vec<f64> = (0..batch * dim).map(|_| StandardNormal.sample(&mut rng)).collect();
        let x = Mat::from_fn(batch, dim, |i, j| F::of(c * z[i * dim + j]));
        let energies = model.energy(&x);
        for (e, z_row) in energies.iter().zip(z.chunks_exact(dim)) {
            let log_q = log_q_norm - 0.5 * z_row.iter().map(|v| v * v).sum::<f64>();
            sums.push(-e.to_f64().unwrap_or(f64::NAN) - log_q);
        }
        let estimate = sums.estimate();
        let done = sums.count >= settings.min_samples && estimate.std_err <= settings.tolerance;
        if done || sums.count >= settings.max_samples {
            return estimate;
        }
    }
}

/// The mean log-likelihood `mean_i (-E(x_i)) - log Z` of the rows of `x`.
pub fn mean_log_likelihood<F: Real>(model: &EnergyModel<F>, x: &Mat<F>, log_z: f64) -> f64 {
    let energies = model.energy(x);
    -energies.iter().map(|e| e.to_f64().unwrap_or(f64::NAN)).sum::<f64>() / energies.len() as f64 - log_z
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::EnergyShape;
    use crate::nn::Activation;
    use crate::testing::test_rng;

    #[test]
    fn gaussian_base_with_a_zero_network_has_the_known_normaliser() {
        // f = 0 (zero weights): E = lambda ||x||^2 / 2, Z = (2 pi / lambda)^(D/2).
        let shape =
            EnergyShape { dim: 3, width: 4, depth: 1, activation: Activation::Softplus, base_precision: 0.8 };
        let mut model = EnergyModel::<f64>::init(&shape, &mut test_rng(1));
        let zeros = vec![0.0; model.num_params()];
        model.set_params(&zeros);
        let settings = LogPartitionSettings { batch: 4096, min_samples: 8192, ..Default::default() };
        let est = log_partition(&model, &settings);
        let want = 1.5 * (2.0 * std::f64::consts::PI / 0.8).ln();
        assert!(est.std_err <= 0.01, "{est:?}");
        assert!((est.log_z - want).abs() < 4.0 * est.std_err, "{est:?} vs {want}");
        // Another seed agrees within the combined standard errors.
        let other = log_partition(&model, &LogPartitionSettings { seed: 9, ..settings });
        assert!(
            (other.log_z - est.log_z).abs() < 4.0 * (est.std_err + other.std_err),
            "{other:?} vs {est:?}"
        );
        let x = Mat::from_vec(1, 3, vec![0.0, 0.0, 0.0]);
        assert!((mean_log_likelihood(&model, &x, want) + want).abs() < 1e-12);
    }
}

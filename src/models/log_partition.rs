//! The log normaliser `log Z = log \int exp(-E(x)) dx` of an energy model by importance sampling with a
//! wide Gaussian proposal, run until its standard error is below a tolerance; and held-out
//! log-likelihoods `-E(x) - log Z`.

use super::energy_model::EnergyModel;
use crate::linalg::{Mat, Real};
use crate::nn::MlpTrace;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Settings of [`log_partition`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogPartitionSettings {
    /// Standard deviation `c` of the wide Gaussian `N(0, c^2 I)` of the proposal (data whitened to unit
    /// scale; `c > 1` covers the tails).
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
    /// Weight `a` of the data-centred components of the proposal (0: the wide Gaussian alone).
    pub data_weight: f64,
    /// Standard deviations `h_1, h_2` of the Gaussians of the two data-centred components (weight `a/2`
    /// each): a narrow one for sharp modes at the data, a broader one for the bulk.
    pub data_bandwidths: [f64; 2],
}

/// Most data points used as centres of the proposal's data-centred components.
pub const MAX_CENTRES: usize = 2048;

/// Proposal draws whose data-centred density is evaluated in one GEMM (bounds its memory).
const CENTRE_CHUNK: usize = 1024;

impl Default for LogPartitionSettings {
    /// `c = 3`, tolerance 0.005 nats (so that independent estimates agree to about 0.01), batches of
    /// 2^15, between 2^17 and 2^24 draws, seed 0, data weight `a = 0.5` with `h = (0.2, 0.6)`.
    fn default() -> Self {
        Self {
            proposal_std: 3.0,
            tolerance: 0.005,
            batch: 1 << 15,
            min_samples: 1 << 17,
            max_samples: 1 << 24,
            seed: 0,
            data_weight: 0.5,
            data_bandwidths: [0.2, 0.6],
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

/// `log sum_k exp(a_k)`.
fn log_sum_exp(a: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = a.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + a.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Estimates `log Z` of `model` by importance sampling.
///
/// # Definition
/// The proposal is the defensive mixture of a wide Gaussian and Gaussians on (up to [`MAX_CENTRES`])
/// data points `mu_m` at two bandwidths,
/// $$ q(x) = (1 - a)\,\mathcal N(x; 0, c^2 I) + \frac{a}{2M} \sum_{b=1,2} \sum_m \mathcal N(x; \mu_m, h_b^2 I) $$
/// (`a = 0` or no `data`: the wide Gaussian alone); with draws `x_k ~ q`,
/// $$ \hat Z = \frac1K \sum_k w_k,\qquad w_k = \frac{e^{-E(x_k)}}{q(x_k)}, $$
/// computed in log space. The wide component bounds the weights in the tails (a model with a base
/// precision `lambda >= 1/c^2` has bounded weights whatever its network); the data-centred ones cover
/// the sharp modes that a flexible model trained on finitely many points grows at them (score matching
/// on `x + sigma z` with `n` points is optimal at the kernel density estimate of bandwidth `sigma`).
/// Draws continue in batches until the delta-method standard error of `log Z_hat` is at most
/// `tolerance` (after at least `min_samples`), or `max_samples` is reached. `Z_hat` is unbiased for
/// any proposal.
pub fn log_partition<F: Real>(
    model: &EnergyModel<F>,
    data: Option<&Mat<f64>>,
    settings: &LogPartitionSettings,
) -> LogPartition {
    let dim = model.dim();
    let c = settings.proposal_std;
    let two_pi = 2.0 * std::f64::consts::PI;
    let log_q_norm = -0.5 * dim as f64 * (two_pi * c * c).ln();
    let centres = data
        .filter(|d| settings.data_weight > 0.0 && d.rows() > 0)
        .map(|d| d.slice_rows(0, d.rows().min(MAX_CENTRES)));
    let a = if centres.is_some() { settings.data_weight } else { 0.0 };
    let bandwidths = settings.data_bandwidths;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut sums = WeightSums::default();
    let batch = settings.batch.max(1);
    // Buffers reused across batches: no allocation (and no page faults) for the network in the loop.
    let mut z = vec![0.0f64; batch * dim];
    let mut points = Mat::<f64>::zeros(batch, dim);
    let mut x = Mat::<F>::zeros(batch, dim);
    let mut trace = MlpTrace::default();
    let mu_norms: Vec<f64> = centres
        .as_ref()
        .map_or(Vec::new(), |mu| mu.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect());
    loop {
        z.iter_mut().for_each(|v| *v = StandardNormal.sample(&mut rng));
        for (row, z_row) in z.chunks_exact(dim).enumerate() {
            let point = points.row_mut(row);
            match &centres {
                Some(mu) if rng.random::<f64>() < a => {
                    let centre = mu.row(rng.random_range(0..mu.rows()));
                    let h = bandwidths[rng.random_range(0..2)];
                    point.iter_mut().zip(z_row).zip(centre).for_each(|((p, z), m)| *p = m + h * z);
                }
                _ => point.iter_mut().zip(z_row).for_each(|(p, z)| *p = c * z),
            }
        }
        // log q at every draw; the data-centred part through GEMMs of squared distances, in chunks
        // spread over the rayon pool (each chunk's result depends only on its draws: deterministic).
        let norms: Vec<f64> = points.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect();
        let mut log_q: Vec<f64> =
            norms.iter().map(|r2| (1.0 - a).ln() + log_q_norm - 0.5 * r2 / (c * c)).collect();
        if let Some(mu) = &centres {
            let log_mix: Vec<f64> = bandwidths
                .iter()
                .map(|h| (0.5 * a / mu.rows() as f64).ln() - 0.5 * dim as f64 * (two_pi * h * h).ln())
                .collect();
            log_q.par_chunks_mut(CENTRE_CHUNK).enumerate().for_each(|(chunk, lq)| {
                let start = chunk * CENTRE_CHUNK;
                let block = Mat::from_vec(
                    lq.len(),
                    dim,
                    points.as_slice()[start * dim..(start + lq.len()) * dim].to_vec(),
                );
                let cross = Mat::matmul(&block, mu, true);
                let mut d2 = vec![0.0; mu.rows()];
                for (k, lq) in lq.iter_mut().enumerate() {
                    let r2 = norms[start + k];
                    for ((d, x_mu), m2) in d2.iter_mut().zip(cross.row(k)).zip(&mu_norms) {
                        *d = (r2 - 2.0 * x_mu + m2).max(0.0);
                    }
                    let nearest = d2.iter().copied().fold(f64::INFINITY, f64::min);
                    let mut parts = [*lq, 0.0, 0.0];
                    for (b, h) in bandwidths.iter().enumerate() {
                        // Terms beyond exp(-40) of the nearest centre's do not change the sum.
                        let (scale, cutoff) = (0.5 / (h * h), 80.0 * h * h);
                        let sum: f64 = d2
                            .iter()
                            .filter(|d| **d - nearest <= cutoff)
                            .map(|d| (-(d - nearest) * scale).exp())
                            .sum();
                        parts[b + 1] = log_mix[b] - nearest * scale + sum.ln();
                    }
                    *lq = log_sum_exp(parts.into_iter());
                }
            });
        }
        x.as_mut_slice().iter_mut().zip(points.as_slice()).for_each(|(x, p)| *x = F::of(*p));
        let net = model.net.forward_trace(&x, batch, &mut trace);
        for ((f, x_row), lq) in net.as_slice().iter().zip(x.row_iter()).zip(&log_q) {
            let energy = (*f + model.base_energy(x_row)).to_f64().unwrap_or(f64::NAN);
            sums.push(-energy - lq);
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
        let settings =
            LogPartitionSettings { batch: 4096, min_samples: 8192, tolerance: 0.01, ..Default::default() };
        let est = log_partition(&model, None, &settings);
        let want = 1.5 * (2.0 * std::f64::consts::PI / 0.8).ln();
        assert!(est.std_err <= 0.01, "{est:?}");
        assert!((est.log_z - want).abs() < 4.0 * est.std_err, "{est:?} vs {want}");
        // Another seed agrees within the combined standard errors.
        let other = log_partition(&model, None, &LogPartitionSettings { seed: 9, ..settings });
        assert!(
            (other.log_z - est.log_z).abs() < 4.0 * (est.std_err + other.std_err),
            "{other:?} vs {est:?}"
        );
        // The defensive mixture with data-centred components estimates the same normaliser.
        let data = Mat::from_fn(50, 3, |i, j| ((i * 3 + j) as f64).sin());
        let mixed = log_partition(&model, Some(&data), &LogPartitionSettings { seed: 10, ..settings });
        assert!((mixed.log_z - want).abs() < 4.0 * mixed.std_err, "{mixed:?} vs {want}");
        let x = Mat::from_vec(1, 3, vec![0.0, 0.0, 0.0]);
        assert!((mean_log_likelihood(&model, &x, want) + want).abs() < 1e-12);
    }
}

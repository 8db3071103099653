//! The log normaliser `log Z = log \int exp(-E(x)) dx` of an energy model by importance sampling from a
//! defensive mixture of a wide Gaussian and Gaussians on the training points and on MALA samples of the
//! model (bandwidth tuned by pilot runs), run until its standard error is below a tolerance; and held-out
//! log-likelihoods `-E(x) - log Z`.

use crate::linalg::{Mat, Real};
use crate::models::EnergyModel;
use crate::nn::MlpTrace;
use crate::samplers::{run, Chains, Mala};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Settings of [`LogPartition::estimate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// MALA chains on the model whose end points join the data points as centres (0: data points only).
    pub mcmc_chains: usize,
    /// MALA steps per chain (the step size adapts every 50 steps towards an acceptance rate of 0.57).
    pub mcmc_steps: usize,
    /// Candidate bandwidths `h` of the data-centred Gaussians: a pilot run of `pilot_samples` draws per
    /// candidate keeps the widest whose effective sample size is at least half the largest.
    pub data_bandwidths: Vec<f64>,
    /// Draws of each pilot run (none with a single candidate).
    pub pilot_samples: usize,
}

/// Most centres of the proposal's data-centred components (data points and MALA samples together).
pub const MAX_CENTRES: usize = 4096;

/// MALA steps between step-size adaptations.
const ADAPT_EVERY: usize = 50;

/// End points of `chains` MALA chains on `model` after `steps` steps: half start at data rows, half at
/// `N(0, I)`, so that they also reach mass the model puts away from the data (score matching never sees
/// such regions, so a trained model may hold mass there). Every [`ADAPT_EVERY`] steps the step size `h`
/// moves towards an acceptance rate of 0.57: `h <- h exp(2 (rate - 0.57))`.
fn model_samples<F: Real>(
    model: &EnergyModel<F>,
    data: Option<&Mat<f64>>,
    chains: usize,
    steps: usize,
    seed: u64,
) -> Mat<f64> {
    let dim = model.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x0 = Mat::zeros(chains, dim);
    for i in 0..chains {
        match data.filter(|d| i % 2 == 0 && d.rows() > 0) {
            Some(d) => x0.row_mut(i).copy_from_slice(d.row(rng.random_range(0..d.rows()))),
            None => x0.row_mut(i).iter_mut().for_each(|v| *v = StandardNormal.sample(&mut rng)),
        }
    }
    let mut state = Chains::new(x0, seed).expect("at least one chain");
    let (mut h, mut done) = (0.05, 0);
    while done < steps {
        let k = ADAPT_EVERY.min(steps - done);
        let mut mala = Mala::new(h, model).expect("a positive step size");
        let summary = run(&mut mala, &mut state, k, &mut ());
        h = (h * (2.0 * (summary.acceptance_rate() - 0.57)).exp()).clamp(1e-6, 10.0);
        done += k;
    }
    state.positions().clone()
}

/// Draws after which a collapse of the effective-sample fraction moves to a wider bandwidth.
const COLLAPSE_CHECK: usize = 1 << 20;

/// Proposal draws whose data-centred density is evaluated in one GEMM (bounds its memory).
const CENTRE_CHUNK: usize = 1024;

impl Default for LogPartitionSettings {
    /// `c = 3`, tolerance 0.004 nats (so that independent estimates agree to about 0.01), batches of
    /// 2^14, between 2^16 and 2^24 draws, seed 0, data weight `a = 0.8` on up to 3072 data points and
    /// 1024 MALA samples (500 steps), `h` from
    /// `{0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0}` by pilots of 2^17 draws (large enough that a bandwidth
    /// whose weights are heavy-tailed shows it).
    fn default() -> Self {
        Self {
            proposal_std: 3.0,
            tolerance: 0.004,
            batch: 1 << 14,
            min_samples: 1 << 16,
            max_samples: 1 << 24,
            seed: 0,
            data_weight: 0.8,
            mcmc_chains: 1024,
            mcmc_steps: 500,
            data_bandwidths: vec![0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0],
            pilot_samples: 1 << 17,
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
    /// Proposal draws used `K` (pilot draws not included).
    pub samples: usize,
    /// Effective sample size `(sum w)^2 / sum w^2`.
    pub effective_samples: f64,
    /// The bandwidth `h` of the data-centred components (`None`: the wide Gaussian alone).
    pub bandwidth: Option<f64>,
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

    fn estimate(&self, bandwidth: Option<f64>) -> LogPartition {
        let k = self.count as f64;
        let relative_var = (k * self.sum_sq / (self.sum * self.sum) - 1.0).max(0.0);
        LogPartition {
            log_z: self.shift + (self.sum / k).ln(),
            std_err: (relative_var / k).sqrt(),
            samples: self.count,
            effective_samples: self.sum * self.sum / self.sum_sq,
            bandwidth,
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

/// The proposal `q(x) = (1 - a) N(x; 0, c^2 I) + (a / M) sum_m N(x; mu_m, h^2 I)` and the buffers of
/// one batch of weights.
struct Proposal<'a, F> {
    model: &'a EnergyModel<F>,
    c: f64,
    /// The centres `mu_m` (and in f32, with their squared norms, for the density sums); `None`: `a = 0`.
    centres: Option<(&'a Mat<f64>, Mat<f32>, Vec<f32>)>,
    a: f64,
    h: f64,
    z: Vec<f64>,
    points: Mat<f64>,
    x: Mat<F>,
    trace: MlpTrace<F>,
}

impl<'a, F: Real> Proposal<'a, F> {
    fn new(model: &'a EnergyModel<F>, centres: Option<&'a Mat<f64>>, a: f64, c: f64, batch: usize) -> Self {
        let dim = model.dim();
        let centres = centres.map(|mu| {
            let mu32: Mat<f32> = mu.cast();
            let norms = mu32.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect();
            (mu, mu32, norms)
        });
        let a = if centres.is_some() { a } else { 0.0 };
        Self {
            model,
            c,
            centres,
            a,
            h: 1.0,
            z: vec![0.0; batch * dim],
            points: Mat::zeros(batch, dim),
            x: Mat::zeros(batch, dim),
            trace: MlpTrace::default(),
        }
    }

    /// Draws one batch from the proposal and pushes the log weights `-E(x_k) - log q(x_k)`.
    fn push_batch(&mut self, rng: &mut ChaCha8Rng, sums: &mut WeightSums) {
        let (dim, c, a, h) = (self.model.dim(), self.c, self.a, self.h);
        let two_pi = 2.0 * std::f64::consts::PI;
        self.z.iter_mut().for_each(|v| *v = StandardNormal.sample(rng));
        for (row, z_row) in self.z.chunks_exact(dim).enumerate() {
            let point = self.points.row_mut(row);
            match &self.centres {
                Some((mu, _, _)) if rng.random::<f64>() < a => {
                    let centre = mu.row(rng.random_range(0..mu.rows()));
                    point.iter_mut().zip(z_row).zip(centre).for_each(|((p, z), m)| *p = m + h * z);
                }
                _ => point.iter_mut().zip(z_row).for_each(|(p, z)| *p = c * z),
            }
        }
        // log q at every draw; the data-centred part in f32 (a relative error near 1e-6 in q, far below
        // the Monte Carlo error) through GEMMs of squared distances and the vectorised exp, in chunks
        // spread over the rayon pool (each chunk's result depends only on its draws: deterministic).
        let norms: Vec<f64> = self.points.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect();
        let log_wide = (1.0 - a).ln() - 0.5 * dim as f64 * (two_pi * c * c).ln();
        let mut log_q: Vec<f64> = norms.iter().map(|r2| log_wide - 0.5 * r2 / (c * c)).collect();
        if let Some((_, mu, mu_norms)) = &self.centres {
            let log_mix = (a / mu.rows() as f64).ln() - 0.5 * dim as f64 * (two_pi * h * h).ln();
            let points = &self.points;
            let scale = (0.5 / (h * h)) as f32;
            log_q.par_chunks_mut(CENTRE_CHUNK).enumerate().for_each(|(chunk, lq)| {
                let start = chunk * CENTRE_CHUNK;
                let block =
                    Mat::from_fn(lq.len(), dim, |i, j| points.as_slice()[(start + i) * dim + j] as f32);
                let cross = Mat::matmul(&block, mu, true);
                let mut d2 = vec![0.0f32; mu.rows()];
                for (k, lq) in lq.iter_mut().enumerate() {
                    let r2 = norms[start + k] as f32;
                    for ((d, x_mu), m2) in d2.iter_mut().zip(cross.row(k)).zip(mu_norms) {
                        *d = (r2 - 2.0 * x_mu + m2).max(0.0);
                    }
                    let nearest = d2.iter().copied().fold(f32::INFINITY, f32::min);
                    // sum_m exp(-(d_m - nearest) / (2 h^2)) >= 1: the nearest centre's term.
                    let sum: f32 = d2.iter().map(|d| f32::exp_nonpositive((nearest - d) * scale)).sum();
                    let log_data = log_mix - (nearest * scale) as f64 + (sum as f64).ln();
                    *lq = log_sum_exp([*lq, log_data].into_iter());
                }
            });
        }
        self.x.as_mut_slice().iter_mut().zip(self.points.as_slice()).for_each(|(x, p)| *x = F::of(*p));
        let rows = self.x.rows();
        let net = self.model.net.forward_trace(&self.x, rows, &mut self.trace);
        for ((f, x_row), lq) in net.as_slice().iter().zip(self.x.row_iter()).zip(&log_q) {
            let energy = (*f + self.model.base_energy(x_row)).to_f64().unwrap_or(f64::NAN);
            sums.push(-energy - lq);
        }
    }
}

impl LogPartition {
    /// Estimates `log Z` of `model` by importance sampling.
    ///
    /// # Definition
    /// The proposal is the defensive mixture of a wide Gaussian and Gaussians of bandwidth `h` on centres
    /// `mu_m`: data points and the end points of MALA chains on the model (`MAX_CENTRES` at most),
    /// $$ q(x) = (1 - a)\ \mathcal N(x; 0, c^2 I) + \frac{a}{M} \sum_m \mathcal N(x; \mu_m, h^2 I) $$
    /// (`a = 0`, or neither data nor chains: the wide Gaussian alone); with draws `x_k ~ q`,
    /// $$ \hat Z = \frac1K \sum_k w_k,\qquad w_k = \frac{e^{-E(x_k)}}{q(x_k)}, $$
    /// computed in log space. The wide component bounds the weights in the tails (a model with a base
    /// precision `lambda >= 1/c^2` has bounded weights whatever its network); the data-centred ones cover
    /// the mass near the data, and the model samples whatever mass the model holds away from it (where score
    /// matching saw no data; without them such mass shows as rare, huge weights). Score matching on
    /// `x + sigma z` with `n` points is optimal at the kernel density estimate of bandwidth `sigma`, so a
    /// trained model looks locally like one, and in `D`
    /// dimensions a bandwidth off by a factor `r` costs about `r^D` in effective sample size. `h` is
    /// therefore chosen among `data_bandwidths` by pilot runs: the widest one whose effective sample size is
    /// within a factor 2 of the best (too narrow a bandwidth leaves mass between the centres that only the
    /// wide Gaussian covers: rare, huge weights that a pilot may miss). The estimate uses fresh draws; if
    /// after `2^20` of them its effective-sample fraction falls below an eighth of the pilot's, it starts
    /// again at the next wider bandwidth. Draws continue in batches until the delta-method standard error of
    /// `log Z_hat` is at most `tolerance` (after at least `min_samples`), or `max_samples` is reached.
    /// `Z_hat` is unbiased for any proposal.
    pub fn estimate<F: Real>(
        model: &EnergyModel<F>,
        data: Option<&Mat<f64>>,
        settings: &LogPartitionSettings,
    ) -> LogPartition {
        let chains = settings.mcmc_chains.min(MAX_CENTRES);
        let data = data.filter(|d| d.rows() > 0);
        let centres = (settings.data_weight > 0.0
            && (data.is_some() || chains > 0)
            && !settings.data_bandwidths.is_empty())
        .then(|| {
            let mut parts = Vec::new();
            if let Some(d) = data {
                parts.push(d.slice_rows(0, d.rows().min(MAX_CENTRES - chains)));
            }
            if chains > 0 {
                let seed = settings.seed ^ 0x6d61_6c61;
                parts.push(model_samples(model, data, chains, settings.mcmc_steps, seed));
            }
            Mat::vstack(&parts.iter().collect::<Vec<_>>())
        });
        let batch = settings.batch.max(1);
        let mut proposal =
            Proposal::new(model, centres.as_ref(), settings.data_weight, settings.proposal_std, batch);
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let candidates: &[f64] = if centres.is_some() { &settings.data_bandwidths } else { &[] };
        // Effective-sample fraction of each candidate in its pilot.
        let fractions: Vec<f64> = match candidates {
            [_] => vec![1.0],
            _ => candidates
                .iter()
                .map(|&h| {
                    proposal.h = h;
                    let mut sums = WeightSums::default();
                    while sums.count < settings.pilot_samples.max(1) {
                        proposal.push_batch(&mut rng, &mut sums);
                    }
                    sums.estimate(Some(h)).effective_samples / sums.count as f64
                })
                .collect(),
        };
        // The widest bandwidth within a factor 2 of the best pilot: a pilot overrates narrow bandwidths, whose
        // rare huge weights (mass between the centres) it may not have drawn yet.
        let best = fractions.iter().copied().fold(0.0, f64::max);
        let mut choice = (0..candidates.len())
            .filter(|&i| fractions[i] >= 0.5 * best)
            .max_by(|&i, &j| candidates[i].total_cmp(&candidates[j]));
        loop {
            let bandwidth = choice.map(|k| candidates[k]);
            proposal.h = bandwidth.unwrap_or(1.0);
            let mut sums = WeightSums::default();
            loop {
                proposal.push_batch(&mut rng, &mut sums);
                let estimate = sums.estimate(bandwidth);
                let done = sums.count >= settings.min_samples && estimate.std_err <= settings.tolerance;
                if done || sums.count >= settings.max_samples {
                    return estimate;
                }
                // A huge weight the pilot missed: the effective fraction collapsed below an eighth of the
                // pilot's. Start again with fresh draws at the next wider bandwidth, if there is one.
                if let Some(k) = choice.filter(|&k| k + 1 < candidates.len()) {
                    let fraction = estimate.effective_samples / sums.count as f64;
                    if sums.count >= COLLAPSE_CHECK && fraction < fractions[k] / 8.0 {
                        choice = Some(k + 1);
                        break;
                    }
                }
            }
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
        let settings = LogPartitionSettings {
            batch: 4096,
            min_samples: 8192,
            tolerance: 0.01,
            mcmc_chains: 0,
            ..Default::default()
        };
        let est = LogPartition::estimate(&model, None, &settings);
        assert_eq!(est.bandwidth, None, "neither data nor chains: the wide Gaussian alone");
        let want = 1.5 * (2.0 * std::f64::consts::PI / 0.8).ln();
        assert!(est.std_err <= 0.01, "{est:?}");
        assert!((est.log_z - want).abs() < 4.0 * est.std_err, "{est:?} vs {want}");
        // Another seed agrees within the combined standard errors.
        let other =
            LogPartition::estimate(&model, None, &LogPartitionSettings { seed: 9, ..settings.clone() });
        assert!(
            (other.log_z - est.log_z).abs() < 4.0 * (est.std_err + other.std_err),
            "{other:?} vs {est:?}"
        );
        // The defensive mixture with data-centred components estimates the same normaliser.
        let data = Mat::from_fn(50, 3, |i, j| ((i * 3 + j) as f64).sin());
        let mixed = LogPartition::estimate(
            &model,
            Some(&data),
            &LogPartitionSettings { seed: 10, ..settings.clone() },
        );
        assert!((mixed.log_z - want).abs() < 4.0 * mixed.std_err, "{mixed:?} vs {want}");
        // The pilot picks a bandwidth that matches the model: here N(0, 1.25 I) is broad, so a wide one.
        assert!(mixed.bandwidth.is_some_and(|h| h >= 0.5), "{mixed:?}");
        // A narrow model, N(0, 0.2^2 I) (lambda = 25), with data drawn from it: a narrow one.
        let mut narrow = model.clone();
        narrow.base_precision = 25.0;
        let mut data = crate::testing::normal_mat(200, 3, &mut test_rng(2));
        data.as_mut_slice().iter_mut().for_each(|v| *v *= 0.2);
        let est =
            LogPartition::estimate(&narrow, Some(&data), &LogPartitionSettings { seed: 11, ..settings });
        let want = 1.5 * (2.0 * std::f64::consts::PI / 25.0).ln();
        assert!(est.bandwidth.is_some_and(|h| h <= 0.3), "{est:?}");
        assert!((est.log_z - want).abs() < 4.0 * est.std_err && est.std_err <= 0.01, "{est:?} vs {want}");
        let x = Mat::from_vec(1, 3, vec![0.0, 0.0, 0.0]);
        assert!((mean_log_likelihood(&model, &x, want) + want).abs() < 1e-12);
    }

    /// `E(x) = v softplus(u.x + b) + c + ||x||^2 / 2` with `b` large is `||x - m||^2 / 2 + const`,
    /// `m = -v u`: a Gaussian lump at `m`, with `log Z = (D/2) ln 2 pi + ||m||^2 / 2 - v b - c`.
    fn lump(dim: usize, distance: f64) -> (EnergyModel<f64>, f64) {
        let shape =
            EnergyShape { dim, width: 1, depth: 1, activation: Activation::Softplus, base_precision: 1.0 };
        let mut model = EnergyModel::<f64>::init(&shape, &mut test_rng(3));
        let (b, v, c) = (60.0, -1.0, 0.5);
        let mut u = vec![0.0; dim];
        u[0] = distance; // m = -v u = (distance, 0, ...)
        model.set_params(&[u, vec![b, v, c]].concat());
        let log_z =
            0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln() + 0.5 * distance * distance - v * b - c;
        (model, log_z)
    }

    #[test]
    fn model_samples_cover_mass_away_from_the_data() {
        // Data at the origin, the model's mass at distance 6 in 8 dimensions: only the wide Gaussian of the
        // data-only proposal reaches it, so its weights are huge and few; centres from MALA samples of the
        // model cover it.
        let (model, want) = lump(8, 6.0);
        let mut data = crate::testing::normal_mat(300, 8, &mut test_rng(4));
        data.as_mut_slice().iter_mut().for_each(|v| *v *= 0.5);
        let base = LogPartitionSettings {
            batch: 4096,
            min_samples: 1 << 15,
            max_samples: 1 << 15,
            pilot_samples: 1 << 13,
            ..Default::default()
        };
        let data_only = LogPartition::estimate(
            &model,
            Some(&data),
            &LogPartitionSettings { mcmc_chains: 0, ..base.clone() },
        );
        let with_chains =
            LogPartition::estimate(&model, Some(&data), &LogPartitionSettings { mcmc_chains: 256, ..base });
        let fraction = |e: &LogPartition| e.effective_samples / e.samples as f64;
        assert!(fraction(&with_chains) > 20.0 * fraction(&data_only), "{with_chains:?} vs {data_only:?}");
        assert!(with_chains.std_err < 0.05, "{with_chains:?}");
        assert!((with_chains.log_z - want).abs() < 4.0 * with_chains.std_err, "{with_chains:?} vs {want}");
    }
}

//! Many Markov chains advanced together: positions (`N x D`), one random stream per chain, and the step
//! at which each chain diverged, if it did.

use super::error::SamplerError;
use super::source::ROWS_PER_TASK;
use crate::linalg::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// A chain has diverged once a coordinate is non-finite or larger than this in magnitude.
///
/// Beyond about $\sqrt{f_{\max}} \approx 1.3 \times 10^{154}$ squared distances overflow, so no density
/// or score can be evaluated there (a Gaussian mixture's responsibilities become `NaN`); a chain that
/// far out has left the target, whether or not its coordinates have overflowed yet.
pub const DIVERGENCE_BOUND: f64 = 1e150;

/// True if every coordinate is within [`DIVERGENCE_BOUND`] (false for NaN and infinities).
fn in_bounds(x: &[f64]) -> bool {
    x.iter().all(|v| v.abs() <= DIVERGENCE_BOUND)
}

/// The random stream of chain `chain` under `seed`: `ChaCha8Rng::seed_from_u64(seed)` on stream `chain`.
///
/// Every random number chain `i` uses comes from this stream, so a run is reproducible from its seed
/// whatever the number of threads, and chain `i` draws the same numbers whatever the number of chains.
pub fn chain_rng(seed: u64, chain: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(chain as u64);
    rng
}

/// What one chain did in one step, reduced over chains in chain order (so totals are deterministic).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ChainOutcome {
    /// The proposal was accepted (always, for unadjusted samplers).
    pub accepted: bool,
    /// Metropolis-Hastings acceptance probability (1 for unadjusted samplers).
    pub accept_prob: f64,
    /// Curvature eigenvalues (or Ritz values) the step looked at.
    pub eigenvalues: usize,
    /// Of which were clipped to `l_max`.
    pub clipped: usize,
}

/// Totals of one step over the live chains.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct StepTotals {
    pub live: usize,
    pub accepted: usize,
    pub accept_prob_sum: f64,
    pub eigenvalues: usize,
    pub clipped: usize,
    pub newly_diverged: usize,
}

/// `N` chains in `R^D`.
///
/// # Example
/// ```
/// use tweedie::samplers::Chains;
/// let a = Chains::from_normal(4, 2, 3.0, 7)?;
/// let b = Chains::from_normal(4, 2, 3.0, 7)?;
/// assert_eq!(a.positions(), b.positions());
/// assert_eq!(a.positions().rows(), 4);
/// # Ok::<(), tweedie::samplers::SamplerError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Chains {
    x: Mat<f64>,
    rngs: Vec<ChaCha8Rng>,
    diverged_at: Vec<Option<usize>>,
    steps: usize,
    scratch: Mat<f64>,
}

impl Chains {
    /// Chains starting at the rows of `x0`, chain `i` drawing from its own ChaCha8 stream of `seed` (stream `i`).
    ///
    /// # Errors
    /// [`SamplerError::ZeroChains`] when `x0` has no rows.
    pub fn new(x0: Mat<f64>, seed: u64) -> Result<Self, SamplerError> {
        if x0.rows() == 0 {
            return Err(SamplerError::ZeroChains);
        }
        let n = x0.rows();
        let rngs = (0..n).map(|i| chain_rng(seed, i)).collect();
        Ok(Self { scratch: Mat::zeros(n, x0.cols()), x: x0, rngs, diverged_at: vec![None; n], steps: 0 })
    }

    /// `n` chains started at $x_0 \sim \mathcal N(0, \text{std}^2 I_D)$, chain `i`'s start drawn first from
    /// its own stream.
    ///
    /// # Errors
    /// [`SamplerError::ZeroChains`] when `n == 0`.
    pub fn from_normal(n: usize, dim: usize, std: f64, seed: u64) -> Result<Self, SamplerError> {
        let mut x0 = Mat::zeros(n, dim);
        let mut rngs: Vec<ChaCha8Rng> = (0..n).map(|i| chain_rng(seed, i)).collect();
        for (row, rng) in x0.as_mut_slice().chunks_exact_mut(dim.max(1)).zip(rngs.iter_mut()) {
            for v in row.iter_mut() {
                let z: f64 = StandardNormal.sample(rng);
                *v = std * z;
            }
        }
        let mut chains = Self::new(x0, seed)?;
        chains.rngs = rngs;
        Ok(chains)
    }

    /// Number of chains `N`.
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    /// Always false: a `Chains` holds at least one chain.
    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        self.x.cols()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// All positions (`N x D`). A diverged chain keeps its last finite position.
    pub fn positions(&self) -> &Mat<f64> {
        &self.x
    }

    /// Positions of the chains that have not diverged, in chain order.
    pub fn live_positions(&self) -> Mat<f64> {
        let d = self.dim();
        let mut data = Vec::with_capacity(self.x.as_slice().len());
        for (row, div) in self.x.row_iter().zip(&self.diverged_at) {
            if div.is_none() {
                data.extend_from_slice(row);
            }
        }
        Mat::from_vec(data.len().checked_div(d).unwrap_or(0), d, data)
    }

    /// True if chain `i` has diverged.
    pub fn is_diverged(&self, i: usize) -> bool {
        self.diverged_at[i].is_some()
    }

    /// Number of chains that have not diverged.
    pub fn live(&self) -> usize {
        self.diverged_at.iter().filter(|d| d.is_none()).count()
    }

    /// `(chain, step)` for every chain that diverged (left the finite numbers), in chain order; steps
    /// are 1-based.
    pub fn diverged(&self) -> Vec<(usize, usize)> {
        self.diverged_at.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i, s))).collect()
    }

    /// Advances every live chain by one step.
    ///
    /// `update(i, x_i, out, rng_i)` writes chain `i`'s next position into `out` (length `D`) and reports
    /// what it did. A chain whose `out` is not finite (or beyond [`DIVERGENCE_BOUND`]) keeps its position
    /// and is marked diverged at this step; diverged chains are not updated again. Chains run in parallel with a fixed split of work, and
    /// the totals are summed in chain order, so results do not depend on the number of threads.
    pub(crate) fn advance<F>(&mut self, update: F) -> StepTotals
    where
        F: Fn(usize, &[f64], &mut [f64], &mut ChaCha8Rng) -> ChainOutcome + Sync,
    {
        let d = self.dim();
        let step = self.steps + 1;
        self.scratch.resize(self.len(), d);
        let outcomes: Vec<Option<(ChainOutcome, bool)>> = self
            .x
            .as_mut_slice()
            .par_chunks_mut(d.max(1))
            .zip(self.scratch.as_mut_slice().par_chunks_mut(d.max(1)))
            .zip(self.rngs.par_iter_mut())
            .zip(self.diverged_at.par_iter_mut())
            .with_min_len(ROWS_PER_TASK)
            .enumerate()
            .map(|(i, (((x, out), rng), div))| {
                if div.is_some() {
                    return None;
                }
                let outcome = update(i, x, out, rng);
                let finite = in_bounds(out);
                if finite {
                    x.copy_from_slice(out);
                } else {
                    *div = Some(step);
                }
                Some((outcome, !finite))
            })
            .collect();
        self.steps = step;
        let mut t = StepTotals::default();
        for (o, diverged) in outcomes.into_iter().flatten() {
            t.live += 1;
            t.accepted += usize::from(o.accepted);
            t.accept_prob_sum += o.accept_prob;
            t.eigenvalues += o.eigenvalues;
            t.clipped += o.clipped;
            t.newly_diverged += usize::from(diverged);
        }
        t
    }

    /// Writes a proposal for every live chain into the rows of `y` (`N x D`, resized) without moving the
    /// chains: `propose(i, x_i, y_i, rng_i)`. Rows of diverged chains get their (frozen) position.
    pub(crate) fn propose<F>(&mut self, y: &mut Mat<f64>, propose: F)
    where
        F: Fn(usize, &[f64], &mut [f64], &mut ChaCha8Rng) + Sync,
    {
        let d = self.dim();
        y.resize(self.len(), d);
        y.as_mut_slice()
            .par_chunks_mut(d.max(1))
            .zip(self.x.as_slice().par_chunks(d.max(1)))
            .zip(self.rngs.par_iter_mut())
            .zip(self.diverged_at.par_iter())
            .with_min_len(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(i, (((yi, x), rng), div))| {
                if div.is_some() {
                    yi.copy_from_slice(x);
                } else {
                    propose(i, x, yi, rng);
                }
            });
    }

    /// Applies a deterministic map `x_i -> f(i, x_i)` to every live chain without counting a step (used by
    /// the final Tweedie denoising step); non-finite results mark the chain diverged at the current step.
    pub(crate) fn map_live<F>(&mut self, f: F) -> usize
    where
        F: Fn(usize, &[f64], &mut [f64]) + Sync,
    {
        let d = self.dim();
        let step = self.steps;
        self.scratch.resize(self.len(), d);
        let newly: Vec<bool> = self
            .x
            .as_mut_slice()
            .par_chunks_mut(d.max(1))
            .zip(self.scratch.as_mut_slice().par_chunks_mut(d.max(1)))
            .zip(self.diverged_at.par_iter_mut())
            .with_min_len(ROWS_PER_TASK)
            .enumerate()
            .map(|(i, ((x, out), div))| {
                if div.is_some() {
                    return false;
                }
                f(i, x, out);
                if in_bounds(out) {
                    x.copy_from_slice(out);
                    false
                } else {
                    *div = Some(step);
                    true
                }
            })
            .collect();
        newly.into_iter().filter(|&b| b).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergent_chains_are_frozen_and_reported_with_their_step() {
        let mut c = Chains::new(Mat::from_vec(3, 1, vec![1.0, 2.0, 3.0]), 0).unwrap();
        // Chain 1 overflows at step 1; chain 2 passes the divergence bound (1e150) at step 3 without
        // overflowing.
        for _ in 0..3 {
            c.advance(|i, x, out, _| {
                out[0] = match i {
                    1 => x[0] * f64::MAX,
                    2 => x[0] * 1e60,
                    _ => x[0] + 1.0,
                };
                ChainOutcome { accepted: true, accept_prob: 1.0, ..Default::default() }
            });
        }
        assert_eq!(c.diverged(), vec![(1, 1), (2, 3)]);
        assert_eq!(c.positions().as_slice(), &[4.0, 2.0, 3.0 * 1e60 * 1e60]);
        assert_eq!(c.live_positions().as_slice(), &[4.0]);
        assert_eq!((c.live(), c.steps()), (1, 3));
    }

    #[test]
    fn no_chains_is_an_error() {
        assert!(matches!(Chains::new(Mat::zeros(0, 2), 0), Err(SamplerError::ZeroChains)));
    }
}

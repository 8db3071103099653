//! An observer that records coordinate series of some chains over a window of steps, and their
//! integrated autocorrelation times and effective sample sizes.

use super::chains::Chains;
use super::sampler::{SamplerObserver, SamplerStep};
use crate::metrics::{integrated_autocorrelation_time, Iat};
use serde::Serialize;

/// Records coordinates `0..coords` of chains `0..chains` after every step numbered in
/// `from_step..=to_step`.
#[derive(Clone, Debug)]
pub struct ChainSeries {
    from_step: usize,
    to_step: usize,
    chains: usize,
    coords: usize,
    /// `series[c * coords + j]` is coordinate `j` of chain `c`, one value per recorded step.
    series: Vec<Vec<f64>>,
}

/// The worst mixing over the recorded series of chains that did not diverge.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MixingSummary {
    /// Smallest ESS over (chain, coordinate) pairs: the ESS of a chain is that of its worst coordinate.
    pub ess_min: f64,
    /// Largest integrated autocorrelation time over (chain, coordinate) pairs.
    pub iat_max: f64,
    /// Mean over chains of the per-chain ESS (each chain's worst coordinate).
    pub ess_mean: f64,
    /// Recorded steps per series.
    pub length: usize,
    /// Chains summarised.
    pub chains: usize,
}

impl ChainSeries {
    /// Records at most `chains` chains and `coords` coordinates after every step numbered in
    /// `from_step..=to_step` (steps are 1-based).
    pub fn new(from_step: usize, to_step: usize, chains: usize, coords: usize) -> Self {
        Self { from_step, to_step, chains, coords, series: Vec::new() }
    }

    /// IAT of every recorded (chain, coordinate) series, chain-major; `None` for too-short series.
    pub fn iats(&self) -> Vec<Option<Iat>> {
        self.series.iter().map(|s| integrated_autocorrelation_time(s).ok()).collect()
    }

    /// The worst mixing over recorded chains that have not diverged; `None` when no series has at least
    /// 4 values or every recorded chain diverged.
    pub fn summary(&self, chains: &Chains) -> Option<MixingSummary> {
        let iats = self.iats();
        let (mut ess_min, mut iat_max, mut ess_sum, mut count) = (f64::INFINITY, 0.0_f64, 0.0, 0);
        let mut length = 0;
        for (c, block) in iats.chunks(self.coords.max(1)).enumerate() {
            if chains.is_diverged(c) {
                continue;
            }
            let Some(chain_iats) = block.iter().copied().collect::<Option<Vec<Iat>>>() else { continue };
            let ess = chain_iats.iter().map(Iat::ess).fold(f64::INFINITY, f64::min);
            iat_max = chain_iats.iter().map(|i| i.tau).fold(iat_max, f64::max);
            length = chain_iats.first().map_or(0, |i| i.n);
            ess_min = ess_min.min(ess);
            ess_sum += ess;
            count += 1;
        }
        (count > 0).then(|| MixingSummary {
            ess_min,
            iat_max,
            ess_mean: ess_sum / count as f64,
            length,
            chains: count,
        })
    }
}

impl SamplerObserver for ChainSeries {
    fn on_start(&mut self, chains: &Chains) {
        self.chains = self.chains.min(chains.len());
        self.coords = self.coords.min(chains.dim());
        self.series = vec![Vec::new(); self.chains * self.coords];
    }

    fn on_step(&mut self, info: &SamplerStep, chains: &Chains) {
        if info.step < self.from_step || info.step > self.to_step {
            return;
        }
        let x = chains.positions();
        for c in 0..self.chains {
            for j in 0..self.coords {
                self.series[c * self.coords + j].push(x.at(c, j));
            }
        }
    }
}

//! An observer that traces MMD² of the live chains against a fixed reference sample every few steps.

use super::chains::Chains;
use super::sampler::{SamplerObserver, SamplerStep};
use crate::metrics::{MmdEstimator, Trace};

/// Records $\widehat{\mathrm{MMD}}{}^2_u$ (fixed kernel, see [`MmdEstimator`]) of the live chains
/// against the reference at step 0 and at every multiple of `every` steps. Fewer than two live chains
/// record NaN.
#[derive(Clone, Debug)]
pub struct MmdTrace {
    estimator: MmdEstimator,
    every: usize,
    trace: Trace,
}

impl MmdTrace {
    /// Traces every `every` steps (`every = 0` traces only the initial state).
    pub fn new(estimator: MmdEstimator, every: usize) -> Self {
        Self { estimator, every, trace: Trace::default() }
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    fn record(&mut self, step: usize, chains: &Chains) {
        let value = self.estimator.mmd2(&chains.live_positions()).unwrap_or(f64::NAN);
        self.trace.push(step, value);
    }
}

impl SamplerObserver for MmdTrace {
    fn on_start(&mut self, chains: &Chains) {
        self.record(chains.steps(), chains);
    }

    fn on_step(&mut self, info: &SamplerStep, chains: &Chains) {
        if self.every > 0 && info.step.is_multiple_of(self.every) {
            self.record(info.step, chains);
        }
    }
}

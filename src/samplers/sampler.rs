//! The sampler state machine (`Sampler::step` -> [`SamplerStep`]), observer hooks for diagnostics, and the
//! loop that runs a sampler for a number of steps.

use super::chains::{Chains, StepTotals};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What one step of a sampler did, over all live chains.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SamplerStep {
    /// Steps completed, this one included (1-based).
    pub step: usize,
    /// The step size $h$ used.
    pub step_size: f64,
    /// The noise level $\sigma$ of this step (annealed samplers), else `None`.
    pub sigma: Option<f64>,
    /// Chains that took the step (not diverged before it).
    pub live: usize,
    /// Proposals accepted (MALA); every live chain for unadjusted samplers.
    pub accepted: usize,
    /// Mean Metropolis-Hastings acceptance probability over live chains (1 for unadjusted samplers).
    pub mean_accept_prob: f64,
    /// Curvature eigenvalues (Ritz values for Lanczos) looked at (Ozaki), else 0.
    pub eigenvalues: usize,
    /// Of which were clipped to `l_max`.
    pub clipped: usize,
    /// Chains that diverged (left the finite numbers) in this step.
    pub newly_diverged: usize,
    /// True for the step that ended with the Tweedie denoising step (annealed samplers).
    pub denoised: bool,
}

impl SamplerStep {
    pub(crate) fn from_totals(step: usize, step_size: f64, sigma: Option<f64>, t: StepTotals) -> Self {
        Self {
            step,
            step_size,
            sigma,
            live: t.live,
            accepted: t.accepted,
            mean_accept_prob: if t.live > 0 { t.accept_prob_sum / t.live as f64 } else { f64::NAN },
            eigenvalues: t.eigenvalues,
            clipped: t.clipped,
            newly_diverged: t.newly_diverged,
            denoised: false,
        }
    }
}

/// A Markov chain Monte Carlo sampler advancing many chains at once.
pub trait Sampler {
    /// Advances every live chain of `chains` by one step.
    fn step(&mut self, chains: &mut Chains) -> SamplerStep;
}

impl<S: Sampler + ?Sized> Sampler for &mut S {
    fn step(&mut self, chains: &mut Chains) -> SamplerStep {
        (**self).step(chains)
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn step(&mut self, chains: &mut Chains) -> SamplerStep {
        (**self).step(chains)
    }
}

/// Diagnostics hooks, called by [`run`] after every step with the chains as they are after it. Every
/// method has a no-op default.
pub trait SamplerObserver {
    /// Called once before the first step, with the initial chains.
    fn on_start(&mut self, _chains: &Chains) {}

    /// Called after every step.
    fn on_step(&mut self, _info: &SamplerStep, _chains: &Chains) {}
}

impl SamplerObserver for () {}

impl<A: SamplerObserver, B: SamplerObserver> SamplerObserver for (A, B) {
    fn on_start(&mut self, chains: &Chains) {
        self.0.on_start(chains);
        self.1.on_start(chains);
    }

    fn on_step(&mut self, info: &SamplerStep, chains: &Chains) {
        self.0.on_step(info, chains);
        self.1.on_step(info, chains);
    }
}

impl<O: SamplerObserver + ?Sized> SamplerObserver for &mut O {
    fn on_start(&mut self, chains: &Chains) {
        (**self).on_start(chains);
    }

    fn on_step(&mut self, info: &SamplerStep, chains: &Chains) {
        (**self).on_step(info, chains);
    }
}

/// Totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunSummary {
    /// Steps taken.
    pub steps: usize,
    /// Wall-clock seconds spent in [`Sampler::step`] (observers excluded).
    pub seconds: f64,
    /// Proposals accepted, summed over steps and chains.
    pub accepted: usize,
    /// Proposals made (live chains, summed over steps).
    pub proposed: usize,
    /// Sum over steps of the mean acceptance probability (divide by `steps` for the average).
    pub accept_prob_sum: f64,
    /// Curvature eigenvalues looked at.
    pub eigenvalues: usize,
    /// Of which clipped.
    pub clipped: usize,
    /// `(chain, step)` for every chain that diverged (left the finite numbers), in chain order.
    pub diverged: Vec<(usize, usize)>,
}

impl RunSummary {
    /// The earliest step (1-based) at which a chain diverged.
    pub fn first_divergence(&self) -> Option<usize> {
        self.diverged.iter().map(|&(_, step)| step).min()
    }

    /// Fraction of proposals accepted (1 for unadjusted samplers).
    pub fn acceptance_rate(&self) -> f64 {
        self.accepted as f64 / self.proposed.max(1) as f64
    }

    /// Fraction of curvature eigenvalues clipped (0 when none were looked at).
    pub fn clipped_fraction(&self) -> f64 {
        if self.eigenvalues == 0 {
            0.0
        } else {
            self.clipped as f64 / self.eigenvalues as f64
        }
    }
}

/// Runs `sampler` for `steps` steps, calling `observer` before the first and after every step.
///
/// # Example
/// ```
/// use tweedie::samplers::{run, Chains, Ula};
/// use tweedie::targets::TargetSpec;
/// let p = "gauss:dim=2,cond=4".parse::<TargetSpec>()?.build();
/// let mut chains = Chains::from_normal(64, 2, 1.0, 0)?;
/// let mut ula = Ula::new(0.05, &p)?;
/// let summary = run(&mut ula, &mut chains, 100, &mut ());
/// assert_eq!((summary.steps, chains.steps(), summary.diverged.len()), (100, 100, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run<S: Sampler + ?Sized, O: SamplerObserver + ?Sized>(
    sampler: &mut S,
    chains: &mut Chains,
    steps: usize,
    observer: &mut O,
) -> RunSummary {
    let mut summary = RunSummary::default();
    let mut busy = Duration::ZERO;
    observer.on_start(chains);
    for _ in 0..steps {
        let t = Instant::now();
        let info = sampler.step(chains);
        busy += t.elapsed();
        summary.steps += 1;
        summary.accepted += info.accepted;
        summary.proposed += info.live;
        summary.accept_prob_sum +=
            if info.mean_accept_prob.is_finite() { info.mean_accept_prob } else { 0.0 };
        summary.eigenvalues += info.eigenvalues;
        summary.clipped += info.clipped;
        observer.on_step(&info, chains);
    }
    summary.seconds = busy.as_secs_f64();
    summary.diverged = chains.diverged();
    summary
}

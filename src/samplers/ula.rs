//! The unadjusted Langevin algorithm (ULA): an Euler-Maruyama step of the Langevin diffusion.

use super::chains::{ChainOutcome, Chains, StepTotals};
use super::error::SamplerError;
use super::sampler::{Sampler, SamplerStep};
use super::source::ScoreSource;
use crate::linalg::Mat;
use rand_distr::{Distribution, StandardNormal};

/// Rejects a step size that is not positive and finite (NaN included).
pub(crate) fn check_step_size(h: f64) -> Result<(), SamplerError> {
    if h > 0.0 && h.is_finite() {
        Ok(())
    } else {
        Err(SamplerError::NonPositiveStepSize { step_size: h })
    }
}

/// The unadjusted Langevin algorithm.
///
/// # Definition
/// With $g = s_1(x)$ and $\xi \sim \mathcal N(0, I)$ drawn from the chain's stream,
/// $$ x' = x + h\  g + \sqrt{2h}\  \xi . $$
/// Biased: on $\mathcal N(0, 1/l)$ its stationary variance is $1/(l\ (1 - h l/2))$, and it is unstable
/// for $h l \ge 2$.
///
/// # Reference
/// docs/math.md §10.1; Roberts & Tweedie (1996), *Bernoulli* 2(4), Sec. 1.
///
/// # Example
/// ```
/// use tweedie::samplers::{run, Chains, Ula};
/// use tweedie::targets::TargetSpec;
/// let p = "gmm2d".parse::<TargetSpec>()?.build();
/// let mut ula = Ula::new(0.01, &p)?;
/// let mut chains = Chains::from_normal(8, 2, 1.0, 3)?;
/// let info = tweedie::samplers::Sampler::step(&mut ula, &mut chains);
/// assert_eq!((info.step, info.accepted, info.clipped), (1, 8, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Ula<'a, S: ScoreSource + ?Sized> {
    step_size: f64,
    source: &'a S,
    g: Mat<f64>,
}

impl<'a, S: ScoreSource + ?Sized> Ula<'a, S> {
    /// Builds the sampler.
    ///
    /// # Errors
    /// [`SamplerError::NonPositiveStepSize`].
    pub fn new(step_size: f64, source: &'a S) -> Result<Self, SamplerError> {
        check_step_size(step_size)?;
        Ok(Self { step_size, source, g: Mat::default() })
    }

    /// The step size $h$.
    pub fn step_size(&self) -> f64 {
        self.step_size
    }
}

/// One ULA step of every live chain with the scores of `source`, step size `h`.
pub(crate) fn ula_step<S: ScoreSource + ?Sized>(
    source: &S,
    h: f64,
    chains: &mut Chains,
    g: &mut Mat<f64>,
) -> StepTotals {
    g.resize(chains.len(), chains.dim());
    source.scores_into(chains.positions(), g);
    let noise = (2.0 * h).sqrt();
    let g = &*g;
    chains.advance(|i, x, out, rng| {
        for ((o, xi), gi) in out.iter_mut().zip(x).zip(g.row(i)) {
            let z: f64 = StandardNormal.sample(rng);
            *o = xi + h * gi + noise * z;
        }
        ChainOutcome { accepted: true, accept_prob: 1.0, ..Default::default() }
    })
}

impl<S: ScoreSource + ?Sized> Sampler for Ula<'_, S> {
    #[track_caller]
    fn step(&mut self, chains: &mut Chains) -> SamplerStep {
        assert_eq!(chains.dim(), self.source.dim(), "Ula::step: chains and source differ in dimension");
        let h = self.step_size;
        let t = ula_step(self.source, h, chains, &mut self.g);
        SamplerStep::from_totals(chains.steps(), h, None, t)
    }
}

//! Annealed Langevin and annealed Ozaki: a few steps at each level of a decreasing geometric noise
//! schedule of a noise-conditional source, ending with one Tweedie denoising step.

use super::chains::{Chains, StepTotals};
use super::curvature::CurvatureLayout;
use super::error::SamplerError;
use super::ozaki::{ozaki_step, OzakiSolver, OzakiWorkspace};
use super::sampler::{Sampler, SamplerStep};
use super::source::{CurvatureSource, NoiseConditional, ScoreSource};
use super::ula::{check_step_size, ula_step};
use crate::linalg::Mat;
use crate::models::NoiseSchedule;
use serde::{Deserialize, Serialize};

/// Settings of the annealed samplers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnnealedSettings {
    /// The noise levels, largest first (any `hi >= lo > 0` finite and at least one level).
    pub schedule: NoiseSchedule,
    /// Langevin steps per level (at least 1).
    pub steps_per_level: usize,
    /// Step size per unit noise variance $h > 0$: level $i$ steps with $h_i = h\ \sigma_i^2$ (Song &
    /// Ermon's $\alpha_i = \epsilon\ \sigma_i^2/\sigma_L^2$ with $h = \epsilon/\sigma_L^2$); ULA on
    /// $q_{\sigma_i}$ is stable for $h < 2$ roughly.
    pub step_size: f64,
    /// Apply the Tweedie denoising step $x \leftarrow x + \sigma_L^2 s_1(x;\sigma_L)$ after the last step.
    pub denoise: bool,
}

impl Default for AnnealedSettings {
    fn default() -> Self {
        Self {
            schedule: NoiseSchedule { hi: 5.0, lo: 0.01, levels: 10 },
            steps_per_level: 100,
            step_size: 0.1,
            denoise: true,
        }
    }
}

impl AnnealedSettings {
    fn validate(&self) -> Result<(), SamplerError> {
        let NoiseSchedule { hi, lo, levels } = self.schedule;
        if !(lo > 0.0 && hi >= lo && hi.is_finite() && levels >= 1) {
            return Err(SamplerError::BadSchedule { sigma_max: hi, sigma_min: lo, levels });
        }
        check_step_size(self.step_size)?;
        if self.steps_per_level == 0 {
            return Err(SamplerError::ZeroSteps);
        }
        Ok(())
    }

    /// The total number of Langevin steps, $L \times$ `steps_per_level`.
    pub fn total_steps(&self) -> usize {
        self.schedule.levels * self.steps_per_level
    }
}

/// The level sources and the position in the schedule, shared by both annealed samplers.
struct Levels<L> {
    settings: AnnealedSettings,
    sigmas: Vec<f64>,
    sources: Vec<L>,
    g: Mat<f64>,
}

impl<L: ScoreSource> Levels<L> {
    fn new<N: NoiseConditional<Level = L> + ?Sized>(
        settings: AnnealedSettings,
        source: &N,
    ) -> Result<Self, SamplerError> {
        settings.validate()?;
        let sigmas = settings.schedule.sigmas();
        let sources = sigmas.iter().map(|&s| source.at_level(s)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { settings, sigmas, sources, g: Mat::default() })
    }

    /// The level of the step about to be taken after `steps` steps (the last level once past the end).
    fn level(&self, steps: usize) -> usize {
        (steps / self.settings.steps_per_level).min(self.sigmas.len() - 1)
    }

    /// Finishes a step: the Tweedie denoising step when it was the last of the schedule.
    /// One step at the current level: `inner` moves the chains with that level's source and step size
    /// `h_i = h sigma_i^2` (it may use the score buffer), then [`Levels::finish`] denoises after the last.
    #[track_caller]
    fn advance(
        &mut self,
        chains: &mut Chains,
        sampler: &str,
        inner: impl FnOnce(&L, f64, &mut Chains, &mut Mat<f64>) -> StepTotals,
    ) -> SamplerStep {
        let k = self.level(chains.steps());
        assert_eq!(
            chains.dim(),
            self.sources[k].dim(),
            "{sampler}::step: chains and source differ in dimension"
        );
        let sigma = self.sigmas[k];
        let h = self.settings.step_size * sigma * sigma;
        let t = inner(&self.sources[k], h, chains, &mut self.g);
        let info = SamplerStep::from_totals(chains.steps(), h, Some(sigma), t);
        self.finish(chains, info)
    }

    fn finish(&mut self, chains: &mut Chains, mut info: SamplerStep) -> SamplerStep {
        if self.settings.denoise && chains.steps() == self.settings.total_steps() {
            let (last, sigma) = (self.sources.len() - 1, self.sigmas[self.sigmas.len() - 1]);
            self.g.resize(chains.len(), chains.dim());
            self.sources[last].scores_into(chains.positions(), &mut self.g);
            let (g, s2) = (&self.g, sigma * sigma);
            info.newly_diverged += chains.map_live(|i, x, out| {
                for ((o, xi), gi) in out.iter_mut().zip(x).zip(g.row(i)) {
                    *o = xi + s2 * gi;
                }
            });
            info.denoised = true;
        }
        info
    }
}

/// Annealed Langevin dynamics: ULA at each noise level, then Tweedie denoising.
///
/// # Definition
/// For $i = 1..L$, `steps_per_level` ULA steps on $q_{\sigma_i}$ with step $h_i = h\ \sigma_i^2$; then
/// $x \leftarrow x + \sigma_L^2\  s_1(x; \sigma_L)$ (the posterior mean $\mathbb E[x_0 \mid x]$ by
/// Tweedie's formula). Steps past the end of the schedule continue at the last level without denoising
/// again.
///
/// # Reference
/// docs/math.md §10.5; Song & Ermon (2019), *Generative Modeling by Estimating Gradients of the Data
/// Distribution*, Alg. 1; the final denoising step: Jolicoeur-Martineau et al. (2021), Sec. 3.
///
/// # Example
/// ```
/// use tweedie::models::NoiseSchedule;
/// use tweedie::samplers::{run, AnnealedSettings, AnnealedUla, Chains};
/// use tweedie::targets::TargetSpec;
/// let p = "gmm2d".parse::<TargetSpec>()?.build();
/// let settings = AnnealedSettings {
///     schedule: NoiseSchedule { hi: 3.0, lo: 0.05, levels: 4 }, steps_per_level: 5, step_size: 0.5,
///     denoise: true,
/// };
/// let mut s = AnnealedUla::new(settings, &p)?;
/// let mut chains = Chains::from_normal(8, 2, 3.0, 0)?;
/// let summary = run(&mut s, &mut chains, 20, &mut ());
/// assert_eq!(summary.diverged.len(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AnnealedUla<L: ScoreSource> {
    levels: Levels<L>,
}

impl<L: ScoreSource> AnnealedUla<L> {
    /// Builds the level sources of `source` for every $\sigma_i$.
    ///
    /// # Errors
    /// [`SamplerError::NonPositiveStepSize`], [`SamplerError::ZeroSteps`], [`SamplerError::BadSchedule`], or
    /// the source's error.
    pub fn new<N: NoiseConditional<Level = L> + ?Sized>(
        settings: AnnealedSettings,
        source: &N,
    ) -> Result<Self, SamplerError> {
        Ok(Self { levels: Levels::new(settings, source)? })
    }
}

impl<L: ScoreSource> Sampler for AnnealedUla<L> {
    #[track_caller]
    fn step(&mut self, chains: &mut Chains) -> SamplerStep {
        self.levels.advance(chains, "AnnealedUla", |source, h, chains, g| ula_step(source, h, chains, g))
    }
}

/// Annealed Ozaki: Ozaki steps with the curvature of $q_{\sigma_i}$ at each level, then Tweedie
/// denoising.
///
/// # Definition
/// As [`AnnealedUla`] with the [`Ozaki`](super::Ozaki) step (solver `solver`, clip `l_max`) in place of
/// ULA.
///
/// # Reference
/// docs/math.md §10.5; Meng et al. (2021), Sec. 5.
pub struct AnnealedOzaki<L: CurvatureSource> {
    levels: Levels<L>,
    layout: CurvatureLayout,
    solver: OzakiSolver,
    l_max: f64,
    ws: OzakiWorkspace,
}

impl<L: CurvatureSource> AnnealedOzaki<L> {
    /// Builds the level sources of `source` for every $\sigma_i$.
    ///
    /// # Errors
    /// As [`AnnealedUla::new`], and [`SamplerError::BadClip`], [`SamplerError::ZeroLanczosIterations`],
    /// [`SamplerError::NoSecondOrderHead`] for levels without curvature.
    pub fn new<N: NoiseConditional<Level = L> + ?Sized>(
        settings: AnnealedSettings,
        solver: OzakiSolver,
        l_max: f64,
        source: &N,
    ) -> Result<Self, SamplerError> {
        let check = super::ozaki::OzakiSettings { step_size: settings.step_size, solver, l_max };
        check.validate()?;
        let levels = Levels::new(settings, source)?;
        // Every level is the same model at another sigma: one layout (at least one level is validated).
        let layout = levels.sources[0].layout().ok_or(SamplerError::NoSecondOrderHead)?;
        Ok(Self { levels, layout, solver, l_max, ws: OzakiWorkspace::new() })
    }
}

impl<L: CurvatureSource> Sampler for AnnealedOzaki<L> {
    #[track_caller]
    fn step(&mut self, chains: &mut Chains) -> SamplerStep {
        let (layout, solver, l_max, ws) = (self.layout, self.solver, self.l_max, &mut self.ws);
        self.levels.advance(chains, "AnnealedOzaki", |source, h, chains, _| {
            ozaki_step(source, layout, h, solver, l_max, chains, ws)
        })
    }
}

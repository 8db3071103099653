//! The Metropolis-adjusted Langevin algorithm (MALA): a ULA proposal corrected by Metropolis-Hastings,
//! so that the target is exactly invariant.

use super::chains::{ChainOutcome, Chains};
use super::error::SamplerError;
use super::sampler::{Sampler, SamplerStep};
use super::source::LogDensitySource;
use super::ula::check_step_size;
use crate::linalg::Mat;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The Metropolis-adjusted Langevin algorithm.
///
/// # Definition
/// Proposal $y = x + h\  s_1(x) + \sqrt{2h}\ \xi$, so $q(y \mid x) = \mathcal N(y;\ x + h s_1(x),\ 2h I)$;
/// accept with probability $\min(1, e^{a})$,
/// $$ a = \log p(y) - \log p(x) +
///    \frac{\Vert y - x - h s_1(x)\Vert^2 - \Vert x - y - h s_1(y)\Vert^2}{4h} . $$
/// Random numbers per chain and step: `D` normals ($\xi$), then one uniform. A proposal whose log
/// acceptance ratio is not a number (non-finite $y$, $\log p(y) = -\infty$) is rejected; chains never
/// diverge. Scores and log densities at the current positions are cached between steps.
///
/// # Reference
/// docs/math.md §10.2; Roberts & Tweedie (1996), *Bernoulli* 2(4), Sec. 1.
///
/// # Example
/// ```
/// use tweedie::samplers::{run, Chains, Mala};
/// use tweedie::targets::TargetSpec;
/// let p = "gmm2d".parse::<TargetSpec>()?.build();
/// let mut mala = Mala::new(0.05, &p)?;
/// let mut chains = Chains::from_normal(32, 2, 1.0, 1)?;
/// let s = run(&mut mala, &mut chains, 20, &mut ());
/// assert!(s.acceptance_rate() > 0.3 && s.diverged.len() == 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Mala<'a, S: LogDensitySource + ?Sized> {
    step_size: f64,
    source: &'a S,
    /// Scores and log densities at the current positions, valid for `cached_at` steps taken.
    g_x: Mat<f64>,
    logp_x: Vec<f64>,
    cached_at: Option<usize>,
    y: Mat<f64>,
    g_y: Mat<f64>,
    logp_y: Vec<f64>,
}

impl<'a, S: LogDensitySource + ?Sized> Mala<'a, S> {
    /// Builds the sampler.
    ///
    /// # Errors
    /// [`SamplerError::NonPositiveStepSize`].
    pub fn new(step_size: f64, source: &'a S) -> Result<Self, SamplerError> {
        check_step_size(step_size)?;
        Ok(Self {
            step_size,
            source,
            g_x: Mat::default(),
            logp_x: Vec::new(),
            cached_at: None,
            y: Mat::default(),
            g_y: Mat::default(),
            logp_y: Vec::new(),
        })
    }

    /// The step size $h$.
    pub fn step_size(&self) -> f64 {
        self.step_size
    }
}

/// $\Vert a - b - h g\Vert^2$.
fn proposal_residual(a: &[f64], b: &[f64], g: &[f64], h: f64) -> f64 {
    a.iter().zip(b).zip(g).map(|((ai, bi), gi)| (ai - bi - h * gi).powi(2)).sum()
}

impl<S: LogDensitySource + ?Sized> Sampler for Mala<'_, S> {
    #[track_caller]
    fn step(&mut self, chains: &mut Chains) -> SamplerStep {
        let (n, d) = (chains.len(), chains.dim());
        assert_eq!(d, self.source.dim(), "Mala::step: chains and source differ in dimension");
        let h = self.step_size;
        if self.cached_at != Some(chains.steps()) || self.logp_x.len() != n {
            self.g_x.resize(n, d);
            self.logp_x.resize(n, 0.0);
            self.source.scores_into(chains.positions(), &mut self.g_x);
            self.source.log_densities_into(chains.positions(), &mut self.logp_x);
        }
        let noise = (2.0 * h).sqrt();
        let g_x = &self.g_x;
        chains.propose(&mut self.y, |i, x, y, rng| {
            for ((yi, xi), gi) in y.iter_mut().zip(x).zip(g_x.row(i)) {
                let z: f64 = StandardNormal.sample(rng);
                *yi = xi + h * gi + noise * z;
            }
        });
        self.g_y.resize(n, d);
        self.logp_y.resize(n, 0.0);
        self.source.scores_into(&self.y, &mut self.g_y);
        self.source.log_densities_into(&self.y, &mut self.logp_y);
        let (y, g_y, logp_x, logp_y) = (&self.y, &self.g_y, &self.logp_x, &self.logp_y);
        let totals = chains.advance(|i, x, out, rng| {
            let (yi, gxi, gyi) = (y.row(i), g_x.row(i), g_y.row(i));
            let forward = proposal_residual(yi, x, gxi, h);
            let backward = proposal_residual(x, yi, gyi, h);
            let log_ratio = logp_y[i] - logp_x[i] + (forward - backward) / (4.0 * h);
            let u: f64 = rng.random();
            // ln u < log_ratio is false for a NaN ratio: a rejection.
            let accepted = u.ln() < log_ratio;
            out.copy_from_slice(if accepted { yi } else { x });
            let accept_prob = if log_ratio.is_nan() { 0.0 } else { log_ratio.min(0.0).exp() };
            ChainOutcome { accepted, accept_prob, ..Default::default() }
        });
        // Refresh the cache: an accepted chain sits exactly at its proposal (bitwise), whose score and log
        // density are known; a rejected one keeps its own (a rejected proposal equal to x has the same
        // values anyway).
        for i in 0..n {
            if chains.positions().row(i) == self.y.row(i) {
                self.g_x.row_mut(i).copy_from_slice(self.g_y.row(i));
                self.logp_x[i] = self.logp_y[i];
            }
        }
        self.cached_at = Some(chains.steps());
        SamplerStep::from_totals(chains.steps(), h, None, totals)
    }
}

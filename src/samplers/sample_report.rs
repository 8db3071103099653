//! The quality of a sampler's final chains: distance to reference samples and, when the target is a
//! known mixture, the Stein discrepancy and the error of the mode weights (docs/math.md §12).

use super::{Chains, RunSummary, ScoreSource};
use crate::linalg::Mat;
use crate::metrics::{mixture_weight_tv, ImqKernel, MetricError, MmdEstimator};
use crate::targets::GaussianMixture;
use serde::Serialize;

/// What a sampler run reached, measured on its live (not diverged) chains.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleReport {
    /// Chains that did not diverge.
    pub live_chains: usize,
    /// Unbiased MMD² between the live chains and the reference samples (Gaussian kernel with the
    /// reference's median bandwidth); `None` with fewer than two live chains.
    pub mmd2: Option<f64>,
    /// The bandwidth of the MMD kernel.
    pub mmd2_bandwidth: f64,
    /// Unbiased squared kernel Stein discrepancy (IMQ kernel) against the mixture's score; `None` without
    /// a mixture or with fewer than two live chains.
    pub ksd2: Option<f64>,
    /// Total variation between the mixture's component weights and the fractions of chains nearest to
    /// each component (by posterior responsibility); `None` for one component or no mixture.
    pub mode_tv: Option<f64>,
    /// The same for the reference samples themselves: the level `mode_tv` can reach at this sample size.
    pub mode_tv_reference: Option<f64>,
    /// Fraction of proposals accepted (1 for unadjusted samplers).
    pub acceptance_rate: f64,
    /// Fraction of curvature eigenvalues clipped (Ozaki samplers).
    pub clipped_fraction: f64,
    /// Seconds spent in the sampler's steps.
    pub seconds: f64,
    /// Chains that diverged.
    pub diverged: usize,
}

impl SampleReport {
    /// Measures `chains` after a run that returned `summary`, against the reference samples of
    /// `reference` and, when given, the mixture they come from.
    ///
    /// # Errors
    /// A [`MetricError`] when the chains and the reference differ in dimension.
    pub fn measure(
        chains: &Chains,
        summary: &RunSummary,
        reference: &MmdEstimator,
        mixture: Option<&GaussianMixture>,
    ) -> Result<Self, MetricError> {
        let live = chains.live_positions();
        let two = live.rows() >= 2;
        let mmd2 = if two { Some(reference.mmd2(&live)?) } else { None };
        let ksd2 = match mixture {
            Some(m) if two => {
                let mut scores = Mat::zeros(live.rows(), live.cols());
                ScoreSource::scores_into(m, &live, &mut scores);
                Some(ImqKernel::default().ksd2_unbiased(&live, &scores)?)
            }
            _ => None,
        };
        let multimodal = mixture.filter(|m| m.n_components() > 1);
        let tv = |x: &Mat<f64>| multimodal.map(|m| mixture_weight_tv(m, x).map(|r| r.tv)).transpose();
        Ok(Self {
            live_chains: live.rows(),
            mmd2,
            mmd2_bandwidth: reference.kernel().bandwidth(),
            ksd2,
            mode_tv: if live.rows() > 0 { tv(&live)? } else { None },
            mode_tv_reference: tv(reference.reference())?,
            acceptance_rate: summary.acceptance_rate(),
            clipped_fraction: summary.clipped_fraction(),
            seconds: summary.seconds,
            diverged: summary.diverged.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samplers::{run, Ula};
    use crate::targets::gmm2d;
    use rand::SeedableRng;

    #[test]
    fn exact_draws_score_near_zero_and_a_collapsed_run_does_not() {
        let target = gmm2d();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let reference = MmdEstimator::new(target.sample(1000, &mut rng)).unwrap();
        let summary = RunSummary::default();
        let exact = Chains::new(target.sample(400, &mut rng), 1).unwrap();
        let good = SampleReport::measure(&exact, &summary, &reference, Some(&target)).unwrap();
        // Exact draws: MMD² is unbiased with mean 0 and standard deviation of order 1/n = 2.5e-3; the
        // mode weights of 400 draws are off by about sqrt(K / n) / 2 = 0.04 in total variation.
        assert!(good.mmd2.unwrap().abs() < 0.01 && good.mode_tv.unwrap() < 0.12, "{good:?}");
        assert!(good.ksd2.unwrap().abs() < 0.05 && good.mode_tv_reference.is_some(), "{good:?}");
        // Every chain at one mode: far in MMD, KSD and mode weights.
        let collapsed = Chains::new(Mat::from_fn(400, 2, |_, j| target.means()[0][j]), 1).unwrap();
        let bad = SampleReport::measure(&collapsed, &summary, &reference, Some(&target)).unwrap();
        assert!(bad.mmd2.unwrap() > 0.2 && bad.mode_tv.unwrap() > 0.4, "{bad:?}");
        assert!(bad.ksd2.unwrap() > 10.0 * good.ksd2.unwrap().abs(), "{bad:?} vs {good:?}");
        // A short ULA run reports its own summary.
        let mut chains = Chains::from_normal(64, 2, 1.0, 5).unwrap();
        let mut ula = Ula::new(0.05, &target).unwrap();
        let summary = run(&mut ula, &mut chains, 20, &mut ());
        let report = SampleReport::measure(&chains, &summary, &reference, None).unwrap();
        assert_eq!((report.live_chains, report.acceptance_rate, report.ksd2), (64, 1.0, None));
    }
}

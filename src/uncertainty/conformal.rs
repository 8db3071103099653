//! Split-conformal per-coordinate intervals: one scale factor `q` on the model's standard deviations,
//! fitted on a calibration split so that `|e_ij| <= q sd_ij` holds with the target frequency on new
//! points, whatever the model (distribution-free, for exchangeable points).

use super::UncertaintyError;
use crate::linalg::Mat;
use serde::Serialize;

/// A fitted scale factor and what it gives on a test split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SplitConformal {
    /// The target coverage `1 - alpha`.
    pub level: f64,
    /// `q`: the `ceil((n + 1) level)`-th smallest calibration score `|e_ij| / sd_ij` (pooled over
    /// coordinates, `n` scores).
    pub scale: f64,
}

/// Coverage and mean width of the scaled intervals on a test split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ConformalCoverage {
    /// Fraction of test entries with `|e_ij| <= q sd_ij`.
    pub coverage: f64,
    /// Mean of `2 q sd_ij`.
    pub mean_width: f64,
}

impl SplitConformal {
    /// Fits `q` on calibration errors and standard deviations (`N x D` each).
    ///
    /// # Errors
    /// [`UncertaintyError::BadSetting`] unless `0 < level < 1` and `ceil((n + 1) level) <= n`;
    /// [`UncertaintyError::SizeMismatch`] if the shapes differ.
    pub fn fit(errors: &Mat<f64>, stds: &Mat<f64>, level: f64) -> Result<Self, UncertaintyError> {
        if errors.as_slice().len() != stds.as_slice().len() {
            return Err(UncertaintyError::SizeMismatch {
                what: "calibration standard deviations",
                found: stds.as_slice().len(),
                expected: errors.as_slice().len(),
            });
        }
        let mut scores: Vec<f64> =
            errors.as_slice().iter().zip(stds.as_slice()).map(|(e, s)| e.abs() / s).collect();
        let n = scores.len();
        let rank = ((n + 1) as f64 * level).ceil() as usize;
        if !(level > 0.0 && level < 1.0) || rank == 0 || rank > n {
            return Err(UncertaintyError::BadSetting {
                what: "conformal level",
                value: level,
                expected: "in (0, 1), with at least level / (1 - level) calibration entries",
            });
        }
        scores.sort_by(f64::total_cmp);
        Ok(Self { level, scale: scores[rank - 1] })
    }

    /// Coverage and mean width on test errors and standard deviations.
    #[track_caller]
    pub fn evaluate(&self, errors: &Mat<f64>, stds: &Mat<f64>) -> ConformalCoverage {
        assert_eq!(errors.as_slice().len(), stds.as_slice().len(), "SplitConformal::evaluate: shapes differ");
        let n = errors.as_slice().len() as f64;
        ConformalCoverage {
            coverage: super::interval_coverage(errors, stds, self.scale),
            mean_width: 2.0 * self.scale * stds.as_slice().iter().sum::<f64>() / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn conformal_scaling_repairs_the_coverage_of_overconfident_intervals() {
        // Exact Gaussian errors e_ij ~ N(0, s_j^2) with a model that reports s_j / 1.7: the plain 90 %
        // interval covers P(|Z| <= 1.645 / 1.7) = 0.666. Fitted on 4000 x 4 entries and tested on another
        // 4000 x 4, the coverage is 0.9 up to the binomial standard errors of both splits,
        // sqrt(0.09 (1 / 16000 + 1 / 16000)) = 0.0034; the tolerance is 3 of them.
        let mut rng = test_rng(17);
        let sd = [0.5, 1.0, 2.0, 0.1];
        let draw = |rng: &mut rand_chacha::ChaCha8Rng| {
            Mat::from_fn(4000, 4, |_, j| Normal::new(0.0, sd[j]).unwrap().sample(rng))
        };
        let (cal, test) = (draw(&mut rng), draw(&mut rng));
        let reported = Mat::from_fn(4000, 4, |_, j| sd[j] / 1.7);
        let naive = super::super::interval_coverage(&test, &reported, 1.644_853_626_951_472_2);
        assert!((naive - 0.666).abs() < 0.02, "uncalibrated coverage {naive}");
        let fit = SplitConformal::fit(&cal, &reported, 0.9).unwrap();
        let got = fit.evaluate(&test, &reported);
        let se = (0.09f64 * (2.0 / 16000.0)).sqrt();
        assert!((got.coverage - 0.9).abs() < 3.0 * se, "{got:?}");
        // The scale is 1.645 * 1.7 = 2.796 to within the sampling error of a quantile.
        assert!((fit.scale - 2.796).abs() < 0.1, "{fit:?}");
        let mean_sd = sd.iter().sum::<f64>() / 4.0 / 1.7;
        assert!((got.mean_width - 2.0 * fit.scale * mean_sd).abs() < 1e-12);
        assert!(SplitConformal::fit(&cal, &reported, 1.0).is_err());
        assert!(SplitConformal::fit(&Mat::zeros(1, 2), &Mat::zeros(1, 2), 0.9).is_err());
    }
}

//! Which score estimate `s_hat` feeds the entropy gradient: a score network trained by SSM-VR, or the
//! Stein or spectral Stein (SSGE) kernel estimators on groups of samples.

use super::error::ImplicitError;
use crate::estimators::{Ssge, SsgeSettings, SteinFit, SteinSettings};
use crate::linalg::Mat;
use std::fmt;
use std::str::FromStr;

/// The source of `s_hat(z)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntropyEstimator {
    /// A score network trained alongside by SSM-VR.
    SsmVr,
    /// The Stein gradient estimator at the samples.
    Stein,
    /// The spectral Stein gradient estimator at the samples.
    Ssge,
}

impl EntropyEstimator {
    /// `ssm-vr`, `stein` or `ssge`.
    pub fn name(self) -> &'static str {
        match self {
            EntropyEstimator::SsmVr => "ssm-vr",
            EntropyEstimator::Stein => "stein",
            EntropyEstimator::Ssge => "ssge",
        }
    }

    /// Checks that `samples` samples per distribution are enough for this estimator (the kernel
    /// estimators need two; the network one).
    pub fn check_samples(self, flag: &str, samples: usize) -> Result<(), ImplicitError> {
        let needed = if self == EntropyEstimator::SsmVr { 1 } else { 2 };
        if samples < needed {
            let expected =
                format!("at least {needed} samples per distribution for the {} estimator", self.name());
            return Err(ImplicitError::new(flag, samples, &expected));
        }
        Ok(())
    }

    /// Kernel scores of each group of `group` consecutive rows of `z`, fitted on that group alone (Stein or
    /// SSGE with their default settings: median bandwidth, `eta = 0.1`, `r = 0.99`).
    ///
    /// # Errors
    /// [`ImplicitError`] for [`EntropyEstimator::SsmVr`] (it has no kernel scores), too small groups, or
    /// an estimator that fails on a group (for example all its samples equal).
    pub fn kernel_scores(self, z: &Mat<f64>, group: usize) -> Result<Mat<f64>, ImplicitError> {
        self.check_samples("samples per group", group)?;
        let mut scores = Mat::zeros(z.rows(), z.cols());
        for start in (0..z.rows()).step_by(group) {
            let block = z.slice_rows(start, (start + group).min(z.rows()));
            let fitted = match self {
                EntropyEstimator::SsmVr => {
                    return Err(ImplicitError::new(
                        "--entropy",
                        self.name(),
                        "a kernel estimator (stein, ssge)",
                    ))
                }
                EntropyEstimator::Stein => SteinFit::fit(&block, &SteinSettings::default()).map(|f| f.scores),
                EntropyEstimator::Ssge => {
                    Ssge::fit(&block, &SsgeSettings::default()).and_then(|fit| fit.score(&block))
                }
            }
            .map_err(|e| {
                ImplicitError::new("--entropy", self.name(), &format!("a fit on every group ({e})"))
            })?;
            for r in 0..block.rows() {
                scores.row_mut(start + r).copy_from_slice(fitted.row(r));
            }
        }
        Ok(scores)
    }
}

impl fmt::Display for EntropyEstimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EntropyEstimator {
    type Err = ImplicitError;

    fn from_str(s: &str) -> Result<Self, ImplicitError> {
        match s {
            "ssm-vr" => Ok(EntropyEstimator::SsmVr),
            "stein" => Ok(EntropyEstimator::Stein),
            "ssge" => Ok(EntropyEstimator::Ssge),
            other => Err(ImplicitError::new("--entropy", other, "ssm-vr, stein or ssge")),
        }
    }
}

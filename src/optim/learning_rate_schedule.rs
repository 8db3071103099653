//! How the learning rate changes over a run of `T` steps.

use serde::{Deserialize, Serialize};

/// A learning-rate schedule: the factor that multiplies the base learning rate at each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LearningRateSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Cosine decay from the base rate to 0: `(1 + cos(pi t / T)) / 2` at step `t` of `T`.
    Cosine,
}

impl LearningRateSchedule {
    /// The factor at step `t` (0-based: the step about to be taken) of a run of `total` steps.
    pub fn factor(self, t: u64, total: u64) -> f64 {
        match self {
            LearningRateSchedule::Constant => 1.0,
            LearningRateSchedule::Cosine => {
                let progress = t.min(total) as f64 / total.max(1) as f64;
                0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_decays_from_one_to_zero_through_one_half() {
        let c = LearningRateSchedule::Cosine;
        assert_eq!((c.factor(0, 100), c.factor(100, 100)), (1.0, 0.0));
        assert!((c.factor(50, 100) - 0.5).abs() < 1e-15);
        assert!((c.factor(25, 100) - (0.5 + 0.5 * 0.5f64.sqrt())).abs() < 1e-15);
        assert!((0..100).all(|t| c.factor(t + 1, 100) < c.factor(t, 100)), "strictly decreasing");
        assert_eq!(LearningRateSchedule::Constant.factor(99, 100), 1.0);
    }
}

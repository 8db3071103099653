//! Steps to tolerance: the first traced step at which a decreasing discrepancy (MMD^2 along a run) comes
//! within a tolerance of its stationary level.

use serde::Serialize;

/// A discrepancy traced along a run: `(step, value)` pairs, steps increasing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Trace {
    /// The steps at which the value was measured (0 = the initial state).
    pub steps: Vec<usize>,
    /// The values.
    pub values: Vec<f64>,
}

impl Trace {
    /// Appends one measurement.
    pub fn push(&mut self, step: usize, value: f64) {
        self.steps.push(step);
        self.values.push(value);
    }

    /// The stationary level: the mean of the finite values among the last
    /// $\lceil$ `tail_fraction` $\cdot$ len $\rceil$ points (at least one), or `None` when there are none.
    pub fn stationary_level(&self, tail_fraction: f64) -> Option<f64> {
        let len = self.values.len();
        let tail = ((tail_fraction * len as f64).ceil() as usize).clamp(1.min(len), len);
        let finite: Vec<f64> = self.values[len - tail..].iter().copied().filter(|v| v.is_finite()).collect();
        (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64)
    }

    /// The first traced step whose value is at most `threshold`.
    pub fn first_step_below(&self, threshold: f64) -> Option<usize> {
        self.steps.iter().zip(&self.values).find(|(_, v)| **v <= threshold).map(|(s, _)| *s)
    }

    /// Steps to tolerance.
    ///
    /// # Definition
    /// With the stationary level $\bar m$ = [`stationary_level`](Self::stationary_level)`(tail_fraction)`,
    /// the first traced step $t_j$ with $m_j \le \bar m + \text{tol}$. The resolution is the tracing
    /// interval. `None` when the trace has no finite value.
    ///
    /// # Reference
    /// docs/math.md §12.6.
    pub fn steps_to_tolerance(&self, tol: f64, tail_fraction: f64) -> Option<usize> {
        let level = self.stationary_level(tail_fraction)?;
        self.first_step_below(level + tol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_decay_reaches_tolerance_at_the_predicted_step() {
        // m(t) = e^{-t/50} + 0.01: within tol = 0.005 of 0.01 once e^{-t/50} <= 0.005, t >= 264.9.
        let mut t = Trace::default();
        for s in (0..=2000).step_by(10) {
            t.push(s, (-(s as f64) / 50.0).exp() + 0.01);
        }
        let level = t.stationary_level(0.25).unwrap();
        assert!((level - 0.01).abs() < 1e-9);
        assert_eq!(t.steps_to_tolerance(0.005, 0.25), Some(270));
        assert_eq!(t.first_step_below(0.5), Some(40));
        assert_eq!(Trace::default().steps_to_tolerance(0.1, 0.25), None);
    }

    #[test]
    fn steps_to_tolerance_example() {
        use crate::metrics::Trace;
        let t = Trace { steps: vec![0, 10, 20, 30, 40], values: vec![1.0, 0.3, 0.011, 0.01, 0.009] };
        // Level: mean of the last 2 values (ceil(0.25 * 5)) = 0.0095.
        assert_eq!(t.steps_to_tolerance(0.002, 0.25), Some(20));
    }
}

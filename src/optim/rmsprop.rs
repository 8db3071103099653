//! RMSProp (Tieleman & Hinton 2012) over a list of parameter slices.

use crate::linalg::Real;

/// RMSProp hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropSettings {
    /// Learning rate `eta`.
    pub learning_rate: f64,
    /// Decay `rho` of the running mean of squared gradients.
    pub decay: f64,
    /// Denominator offset `epsilon`.
    pub epsilon: f64,
}

impl Default for RmsPropSettings {
    /// `eta = 1e-3`, `rho = 0.9`, `epsilon = 1e-8`.
    fn default() -> Self {
        Self { learning_rate: 1e-3, decay: 0.9, epsilon: 1e-8 }
    }
}

/// RMSProp state: the running mean `v` of squared gradients (flat, in parameter order).
///
/// # Definition
/// Elementwise, with gradient $g$ and `v` starting at 0:
/// $$ v \leftarrow \rho v + (1 - \rho) g^2, \qquad \theta \leftarrow \theta - \eta \frac{g}{\sqrt v + \epsilon}. $$
///
/// # Reference
/// Tieleman & Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning, 2012.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsProp<F> {
    settings: RmsPropSettings,
    v: Vec<F>,
}

impl<F: Real> RmsProp<F> {
    /// Fresh state for `num_params` parameters.
    pub fn new(settings: RmsPropSettings, num_params: usize) -> Self {
        Self { settings, v: vec![F::zero(); num_params] }
    }

    /// One update of `params` with gradients `grads` (both in the same flat order).
    #[track_caller]
    pub fn step(&mut self, params: Vec<&mut [F]>, grads: Vec<&[F]>) {
        let s = self.settings;
        let (rho, eta, eps) = (F::of(s.decay), F::of(s.learning_rate), F::of(s.epsilon));
        let mut offset = 0;
        for (p, g) in params.into_iter().zip(grads) {
            assert_eq!(p.len(), g.len(), "RmsProp: parameter and gradient lengths differ");
            let v = &mut self.v[offset..offset + p.len()];
            for k in 0..p.len() {
                v[k] = rho * v[k] + (F::one() - rho) * g[k] * g[k];
                p[k] -= eta * g[k] / (v[k].sqrt() + eps);
            }
            offset += p.len();
        }
        assert_eq!(offset, self.v.len(), "RmsProp: parameter count changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_on_a_quadratic_follow_the_formula() {
        // f(theta) = (theta_0 - 1)^2 + 5 (theta_1 + 0.5)^2, so g = (2 (theta_0 - 1), 10 (theta_1 + 0.5)).
        let settings = RmsPropSettings { learning_rate: 0.01, decay: 0.9, epsilon: 1e-8 };
        let mut opt = RmsProp::<f64>::new(settings, 2);
        let mut p = vec![3.0, -1.0];
        let grad = |p: &[f64]| [2.0 * (p[0] - 1.0), 10.0 * (p[1] + 0.5)];
        // Step 1 by hand: g = (4, -5), v = 0.1 g^2 = (1.6, 2.5), theta -= 0.01 g / sqrt(v).
        let g = grad(&p);
        opt.step(vec![&mut p], vec![&g]);
        let want = [3.0 - 0.01 * 4.0 / (1.6f64.sqrt() + 1e-8), -1.0 + 0.01 * 5.0 / (2.5f64.sqrt() + 1e-8)];
        assert!((p[0] - want[0]).abs() < 1e-15 && (p[1] - want[1]).abs() < 1e-15, "{p:?} vs {want:?}");
        // Steps 2..50 against the recurrence written out in scalar arithmetic.
        let (mut q, mut v) = (p.clone(), [1.6, 2.5]);
        for _ in 0..49 {
            let g = grad(&p);
            opt.step(vec![&mut p], vec![&g]);
            let h = grad(&q);
            for k in 0..2 {
                v[k] = 0.9 * v[k] + 0.1 * h[k] * h[k];
                q[k] -= 0.01 * h[k] / (v[k].sqrt() + 1e-8);
            }
            // Equal up to rounding (`1 - 0.9` is not the literal `0.1` in binary).
            for k in 0..2 {
                assert!((p[k] - q[k]).abs() < 1e-13, "{p:?} vs {q:?}");
            }
        }
        // And it descends: the loss fell.
        let loss = |p: &[f64]| (p[0] - 1.0).powi(2) + 5.0 * (p[1] + 0.5).powi(2);
        assert!(loss(&p) < 0.5 * loss(&[3.0, -1.0]), "{p:?}");
    }
}

//! An exponential moving average of weights, used for evaluation.

use crate::linalg::Real;

/// `shadow <- rate * shadow + (1 - rate) * theta` after every step (Polyak averaging).
#[derive(Clone, Debug, PartialEq)]
pub struct Ema<F> {
    rate: F,
    shadow: Vec<F>,
}

impl<F: Real> Ema<F> {
    /// Starts the average at the current parameters.
    pub fn new(rate: f64, params: &[&[F]]) -> Self {
        Self { rate: F::of(rate), shadow: params.concat() }
    }

    /// Restores a saved average.
    pub fn from_shadow(rate: f64, shadow: Vec<F>) -> Self {
        Self { rate: F::of(rate), shadow }
    }

    /// Folds the current parameters into the average.
    pub fn update(&mut self, params: &[&[F]]) {
        let mut k = 0;
        for p in params {
            for v in p.iter() {
                self.shadow[k] = self.rate * self.shadow[k] + (F::one() - self.rate) * *v;
                k += 1;
            }
        }
    }

    /// The averaged parameters, flat.
    pub fn shadow(&self) -> &[F] {
        &self.shadow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_converges_geometrically_to_a_constant_input() {
        let mut ema = Ema::<f64>::new(0.9, &[&[0.0, 10.0]]);
        for _ in 0..10 {
            ema.update(&[&[1.0, 10.0]]);
        }
        let want = 1.0 - 0.9f64.powi(10);
        assert!((ema.shadow()[0] - want).abs() < 1e-12 && ema.shadow()[1] == 10.0);
    }
}

//! An exponential moving average of weights, used for evaluation.

use crate::linalg::Real;

/// `shadow <- r_t * shadow + (1 - r_t) * theta` after update `t = 0, 1, ...` (Polyak averaging), with
/// the warm-up `r_t = min(rate, (1 + t) / (10 + t))`: early updates move the average quickly, so a short
/// run is not evaluated at (nearly) its initial weights; after about `10 / (1 - rate)` updates `r_t = rate`
/// (docs/math.md §15.3).
#[derive(Clone, Debug, PartialEq)]
pub struct Ema<F> {
    rate: f64,
    shadow: Vec<F>,
    updates: u64,
}

impl<F: Real> Ema<F> {
    /// Starts the average at the current parameters.
    pub fn new(rate: f64, params: &[&[F]]) -> Self {
        Self { rate, shadow: params.concat(), updates: 0 }
    }

    /// Restores a saved average after `updates` updates.
    pub fn from_shadow(rate: f64, shadow: Vec<F>, updates: u64) -> Self {
        Self { rate, shadow, updates }
    }

    /// Folds the current parameters into the average.
    pub fn update(&mut self, params: &[&[F]]) {
        let t = self.updates as f64;
        let rate = F::of(self.rate.min((1.0 + t) / (10.0 + t)));
        let mut k = 0;
        for p in params {
            for v in p.iter() {
                self.shadow[k] = rate * self.shadow[k] + (F::one() - rate) * *v;
                k += 1;
            }
        }
        self.updates += 1;
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
    fn average_warms_up_then_decays_at_the_rate() {
        let mut ema = Ema::<f64>::new(0.9, &[&[0.0, 10.0]]);
        let mut want = 0.0;
        for t in 0..100 {
            ema.update(&[&[1.0, 10.0]]);
            let r = f64::min(0.9, (1.0 + t as f64) / (10.0 + t as f64));
            want = r * want + (1.0 - r);
        }
        assert!((ema.shadow()[0] - want).abs() < 1e-12 && ema.shadow()[1] == 10.0);
        // The first update moves 90% of the way (r_0 = 0.1), not 10%.
        let mut fresh = Ema::<f64>::new(0.999, &[&[0.0]]);
        fresh.update(&[&[1.0]]);
        assert!((fresh.shadow()[0] - 0.9).abs() < 1e-12);
        // From t = 81 on the rate is 0.9: one more update is plain exponential averaging.
        let before = ema.shadow()[0];
        ema.update(&[&[2.0, 10.0]]);
        assert!((ema.shadow()[0] - (0.9 * before + 0.2)).abs() < 1e-12);
    }
}

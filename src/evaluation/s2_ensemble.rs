//! The variance-weighted ensemble of the two second-order estimates of a score model (docs/math.md §9.1):
//! the learned head `S2` and the autodiff Jacobian `J_sym = (J + J^T)/2` of `s1`, blended as
//! `w S2 + (1 - w) J_sym` with the weight that minimises the squared error on held-out points where the
//! exact `s2` is known (an analytic target), then scored on other points.

/// The weight `w` of the learned estimate `l` that minimises `sum ||w l + (1 - w) a - t||^2` over all
/// entries, for the autodiff estimate `a` and the truth `t`, clamped to `[0, 1]`. With the errors
/// `e_l = l - t` and `e_a = a - t` the blend's error is `e_a + w (e_l - e_a)`, so
///
/// `w* = sum <e_a, e_a - e_l> / sum ||e_a - e_l||^2`,
///
/// which for uncorrelated errors of mean squares `V_l`, `V_a` is `V_a / (V_l + V_a)`: each estimate is
/// weighted by the other's error variance. Identical estimates (a zero denominator) give `1/2`.
pub(crate) fn ensemble_weight(learned: &[f64], autodiff: &[f64], truth: &[f64]) -> f64 {
    assert!(learned.len() == truth.len() && autodiff.len() == truth.len(), "ensemble_weight: lengths differ");
    let (mut num, mut den) = (0.0, 0.0);
    for ((l, a), t) in learned.iter().zip(autodiff).zip(truth) {
        let (e_a, diff) = (a - t, a - l);
        num += e_a * diff;
        den += diff * diff;
    }
    if den == 0.0 {
        0.5
    } else {
        (num / den).clamp(0.0, 1.0)
    }
}

/// `w l + (1 - w) a`, entry by entry.
pub(crate) fn blend(learned: &[f64], autodiff: &[f64], w: f64) -> Vec<f64> {
    learned.iter().zip(autodiff).map(|(l, a)| w * l + (1.0 - w) * a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::relative_error;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn uncorrelated_errors_weight_each_estimate_by_the_others_variance() {
        // Errors N(0, 0.3^2) (learned) and N(0, 0.4^2) (autodiff): w* = 0.16 / (0.09 + 0.16) = 0.64.
        // Over n = 200000 entries the sample weight's standard error is about
        // sqrt(Var(e_a (e_a - e_l))) / (n E(e_a - e_l)^2) = sqrt(0.16 * 0.25 + 0.16^2) / (0.25 sqrt(n))
        // = 0.0023; the tolerance is 5 standard errors.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 200_000;
        let truth: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let (nl, na) = (Normal::new(0.0, 0.3).unwrap(), Normal::new(0.0, 0.4).unwrap());
        let learned: Vec<f64> = truth.iter().map(|t| t + nl.sample(&mut rng)).collect();
        let autodiff: Vec<f64> = truth.iter().map(|t| t + na.sample(&mut rng)).collect();
        let w = ensemble_weight(&learned, &autodiff, &truth);
        assert!((w - 0.64).abs() < 5.0 * 0.0023, "w = {w}, expected 0.64");
        // The blend's error variance is V_l V_a / (V_l + V_a) = 0.0576, below both: relative errors
        // against |truth| RMS 1/sqrt(2) are sqrt(0.0576 * 2) = 0.339 vs 0.424 and 0.566. The sampled one
        // has a standard error of about 0.339 sqrt(1 / (2n)) = 0.0005 (plus a second-order term from the
        // fitted w); the tolerance 0.005 is 10 of them.
        let e = |est: &[f64]| relative_error(est, &truth);
        let blended = e(&blend(&learned, &autodiff, w));
        assert!((blended - 0.339).abs() < 0.005, "blend error {blended}");
        assert!(blended < e(&learned) && blended < e(&autodiff));
    }

    #[test]
    fn the_weight_minimises_the_squared_error_and_is_clamped() {
        let truth = [1.0, -2.0, 0.5, 3.0];
        let learned = [1.2, -1.7, 0.1, 3.3];
        let autodiff = [0.7, -2.4, 0.9, 2.5];
        let sq = |w: f64| -> f64 {
            blend(&learned, &autodiff, w).iter().zip(&truth).map(|(b, t)| (b - t) * (b - t)).sum()
        };
        let w = ensemble_weight(&learned, &autodiff, &truth);
        assert!(w > 0.0 && w < 1.0, "an interior minimum here: w = {w}");
        // A minimum of a quadratic: neighbours on both sides are worse.
        assert!(sq(w) < sq(w - 1e-3) && sq(w) < sq(w + 1e-3), "w = {w} is not the minimiser");
        // An exact learned estimate takes all the weight, an exact autodiff one none.
        assert_eq!(ensemble_weight(&truth, &autodiff, &truth), 1.0);
        assert_eq!(ensemble_weight(&learned, &truth, &truth), 0.0);
        // An estimate worse in the same direction as the other: the unclamped weight is negative.
        let worse = [1.5, -1.0, -0.3, 4.0];
        assert_eq!(ensemble_weight(&worse, &learned, &truth), 0.0);
        assert_eq!(ensemble_weight(&truth, &truth, &truth), 0.5);
    }
}

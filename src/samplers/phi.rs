//! The scalar factors of the Ozaki step: $h\ \varphi_1(h l)$ (drift) and $2h\ \varphi_1(2 h l)$ (noise
//! variance), with $\varphi_1(a) = (e^a - 1)/a$ evaluated by `expm1` and its exact limit at $a = 0$, and the
//! clipping of curvature eigenvalues.

/// $\varphi_1(a) = (e^a - 1)/a$, with $\varphi_1(0) = 1$.
///
/// Accurate to a few ulps for every finite `a`: `expm1` keeps the relative accuracy for small `|a|`, and
/// the quotient is exact in the limit. Positive for every real `a`; `-1/a` as $a \to -\infty$; `+inf` for
/// `a` above about 709.
pub fn phi1(a: f64) -> f64 {
    if a == 0.0 {
        1.0
    } else {
        a.exp_m1() / a
    }
}

/// The Ozaki drift factor of one eigenvalue: $h\ \varphi_1(h l) = (e^{h l} - 1)/l$, limit $h$ at $l = 0$.
///
/// # Reference
/// docs/math.md §10.3.
pub fn drift_factor(h: f64, l: f64) -> f64 {
    h * phi1(h * l)
}

/// The Ozaki noise-variance factor of one eigenvalue: $2h\ \varphi_1(2 h l) = (e^{2 h l} - 1)/l$, limit
/// $2h$ at $l = 0$; the noise standard deviation along that eigenvector is its square root.
///
/// # Reference
/// docs/math.md §10.3.
pub fn noise_variance_factor(h: f64, l: f64) -> f64 {
    2.0 * h * phi1(2.0 * h * l)
}

/// Clips a curvature eigenvalue to `l <= l_max`; returns the value used and whether it was clipped.
///
/// `e^{h l}` grows where the log density is locally convex (`l > 0`); clipping to `l_max = 0` turns the
/// step there into a Langevin step along that direction.
pub fn clip(l: f64, l_max: f64) -> (f64, bool) {
    if l > l_max {
        (l_max, true)
    } else {
        (l, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_take_their_exact_limits_and_follow_the_series_near_zero() {
        for h in [1e-3, 0.1, 2.0] {
            assert_eq!(drift_factor(h, 0.0), h);
            assert_eq!(noise_variance_factor(h, 0.0), 2.0 * h);
            assert_eq!(drift_factor(h, -0.0), h);
            // Subnormal curvature: h l underflows or nearly so, the factor is h to the last bit.
            assert_eq!(drift_factor(h, 1e-320), h);
            for l in [1e-12, -1e-12, 1e-6, -1e-6] {
                // phi1(a) = 1 + a/2 + a^2/6 + O(a^3).
                let a = h * l;
                let series = h * (1.0 + a / 2.0 + a * a / 6.0);
                assert!((drift_factor(h, l) - series).abs() <= 4.0 * f64::EPSILON * h, "h {h} l {l}");
                let a2 = 2.0 * h * l;
                let series2 = 2.0 * h * (1.0 + a2 / 2.0 + a2 * a2 / 6.0);
                assert!((noise_variance_factor(h, l) - series2).abs() <= 8.0 * f64::EPSILON * h);
            }
        }
    }

    #[test]
    fn factors_are_positive_and_approach_minus_one_over_l_for_stiff_directions() {
        for h in [1e-3, 1.0, 50.0] {
            for l in [-1e6, -100.0, -1.0, -1e-3, 1e-3, 1.0, 3.0] {
                assert!(drift_factor(h, l) > 0.0 && noise_variance_factor(h, l) > 0.0);
            }
        }
        // h l = -1e4: e^{hl} underflows, the factor is -1/l (a Newton step).
        assert_eq!(drift_factor(100.0, -100.0), 0.01);
        assert_eq!(noise_variance_factor(100.0, -100.0), 0.01);
    }

    #[test]
    fn clipping_caps_eigenvalues_above_l_max_only() {
        assert_eq!(clip(2.0, 0.0), (0.0, true));
        assert_eq!(clip(-2.0, 0.0), (-2.0, false));
        assert_eq!(clip(0.0, 0.0), (0.0, false));
        assert_eq!(clip(5.0, f64::INFINITY), (5.0, false));
    }
}

//! Branch-free `exp` and `ln(1 + e)` for f32 that the compiler vectorises (the activation hot loop calls
//! them once per hidden unit; libm's scalar calls took three quarters of a DSM step). f64 keeps libm:
//! it serves ground truth and gradient checks, where exactness beats speed.

/// `exp(x)` for `x <= 0` (Cephes `expf`): `x = k ln 2 + r`, `|r| <= ln 2 / 2`, `exp(r)` by a degree-7
/// polynomial, `2^k` by writing the exponent bits. Inputs below -87 return `exp(-87)`; NaN stays NaN.
/// Relative error about 2 ulp.
#[inline(always)]
pub fn exp_nonpositive_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer in the low bits.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Not `x.max(-87.0)`, which returns -87 for NaN: the comparison is false for NaN, so NaN passes.
    let x = if x < -87.0 { -87.0 } else { x };
    let t = x * LOG2E + ROUND;
    let k = t - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // 5.000_000_1e-1 rounds to exactly 0.5 in f32
    let er = p * r * r + r + 1.0;
    // t's low mantissa bits hold k (two's complement in the integer sense); 2^k = (k + 127) << 23.
    let k_bits = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let scale = f32::from_bits(((k_bits + 127) as u32) << 23);
    er * scale
}

/// `ln(1 + e)` for `e` in `[0, 1]`: `ln(1+e) = 2 atanh(s)`, `s = e / (2 + e) <= 1/3`, by its odd series
/// to `s^13` (truncation below 1e-8 relative).
#[inline(always)]
pub fn ln_1p_unit_f32(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p = 1.0 / 13.0_f32;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    2.0 * s * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_kernels_match_libm() {
        let mut worst = (0.0f64, 0.0f64);
        for k in 0..200_000 {
            let x = -(k as f32) * 4.4e-4; // covers [-88, 0]
            let (got, want) = (exp_nonpositive_f32(x) as f64, (x as f64).exp());
            if x > -87.0 {
                worst.0 = worst.0.max((got - want).abs() / want);
            }
            let e = k as f32 / 200_000.0;
            let (got, want) = (ln_1p_unit_f32(e) as f64, (e as f64).ln_1p());
            worst.1 = worst.1.max((got - want).abs() / want.max(f64::MIN_POSITIVE));
        }
        assert!(worst.0 < 4.0 * f32::EPSILON as f64, "exp relative error {}", worst.0);
        assert!(worst.1 < 4.0 * f32::EPSILON as f64, "ln_1p relative error {}", worst.1);
    }

    #[test]
    fn nan_stays_nan() {
        assert!(exp_nonpositive_f32(f32::NAN).is_nan());
        assert!(ln_1p_unit_f32(f32::NAN).is_nan());
        // The clamp still holds below -87 and at -infinity.
        assert_eq!(exp_nonpositive_f32(-1e9), exp_nonpositive_f32(-87.0));
        assert_eq!(exp_nonpositive_f32(f32::NEG_INFINITY), exp_nonpositive_f32(-87.0));
    }
}

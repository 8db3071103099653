//! Tick positions (1-2-5 steps on linear axes, powers of ten on log axes) and compact tick labels.

/// About `target` ticks at multiples of a 1, 2 or 5 times a power of ten, inside `[lo, hi]`.
pub(crate) fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step =
        [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            // Snap rounding noise such as 3 * 0.1 = 0.30000000000000004 and -1e-17 for zero.
            if v.abs() < step * 1e-9 {
                0.0
            } else {
                v
            }
        })
        .collect()
}

/// Powers of ten inside `[lo, hi]` (`0 < lo < hi`); when that range holds fewer than two, the 1-2-5
/// multiples of powers of ten inside it.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let inside = |v: &f64| *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12);
    let decades: Vec<f64> = (k0..=k1).map(|k| 10f64.powi(k)).filter(inside).collect();
    if decades.len() >= 2 {
        return decades;
    }
    (k0..=k1).flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k))).filter(inside).collect()
}

/// A short label: `0`, up to three significant digits in fixed notation for magnitudes in
/// `[0.01, 100000)`, else scientific with two (`1.5e-3`, `2e5`).
pub(crate) fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if !(1e-2..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 4) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_inside() {
        assert_eq!(linear_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(linear_ticks(-3.0, 3.0, 5), vec![-2.0, 0.0, 2.0]);
        assert_eq!(linear_ticks(0.0, 1000.0, 4), vec![0.0, 500.0, 1000.0]);
        let t = linear_ticks(-0.35, 0.35, 6);
        assert!(t.contains(&0.0), "{t:?}");
        assert!(t.iter().all(|v| (-0.35..=0.35).contains(v)));
        assert!(linear_ticks(1.0, 1.0, 5).is_empty());
    }

    #[test]
    fn log_ticks_are_decades_or_finer_within_one_decade() {
        assert_eq!(log_ticks(1e-4, 0.5), vec![1e-4, 1e-3, 1e-2, 1e-1]);
        assert_eq!(log_ticks(0.15, 0.9), vec![0.2, 0.5]);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn labels_are_short() {
        let cases = [
            (0.0, "0"),
            (0.6000000000000001, "0.6"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (123.456, "123"),
            (0.0123, "0.0123"),
            (1e-3, "1e-3"),
            (-1.53e-4, "-1.5e-4"),
            (25000.0, "25000"),
            (250000.0, "2.5e5"),
        ];
        for (v, want) in cases {
            assert_eq!(format_tick(v), want, "{v}");
        }
    }
}

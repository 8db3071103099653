//! Colour maps (diverging blue-white-red, sequential viridis) and the value-to-colour scale of a figure.

use super::canvas::Rgb;

/// A map from `t` in `[0, 1]` to a colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Blue (`t = 0`) through white (`t = 1/2`) to red (`t = 1`): for signed values such as Hessian
    /// entries, used with a range symmetric around 0 so that white means zero.
    Diverging,
    /// Viridis (dark purple to yellow), perceptually uniform with increasing lightness: for densities.
    Sequential,
}

/// Control points of the diverging map (ColorBrewer RdBu ends, pure white centre).
const DIVERGING: [(u8, u8, u8); 5] =
    [(5, 48, 97), (67, 147, 195), (255, 255, 255), (214, 96, 77), (103, 0, 31)];

/// Viridis sampled at t = 0, 0.1, ..., 1 (matplotlib's values).
const VIRIDIS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

impl Colormap {
    /// The colour at `t`, clamped to `[0, 1]`; NaN gives [`Rgb::MISSING`].
    pub fn color(self, t: f64) -> Rgb {
        if t.is_nan() {
            return Rgb::MISSING;
        }
        let stops: &[(u8, u8, u8)] = match self {
            Self::Diverging => &DIVERGING,
            Self::Sequential => &VIRIDIS,
        };
        let pos = t.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
        let k = (pos.floor() as usize).min(stops.len() - 2);
        let f = pos - k as f64;
        let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
        let (a, b) = (stops[k], stops[k + 1]);
        Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// A colour map with the value range it spans: `lo` maps to `t = 0`, `hi` to `t = 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorScale {
    /// The map.
    pub colormap: Colormap,
    /// Value at `t = 0`.
    pub lo: f64,
    /// Value at `t = 1`.
    pub hi: f64,
}

impl ColorScale {
    /// The scale spanning the finite `values`: `[-m, m]` with `m = max |v|` for the diverging map (so 0 is
    /// white), `[min, max]` for the sequential one. Degenerate or missing data gives a unit range.
    pub fn fit(colormap: Colormap, values: impl IntoIterator<Item = f64>) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let (lo, hi) = match colormap {
            Colormap::Diverging => {
                let m = lo.abs().max(hi.abs());
                if m.is_finite() && m > 0.0 {
                    (-m, m)
                } else {
                    (-1.0, 1.0)
                }
            }
            Colormap::Sequential if lo.is_finite() && hi > lo => (lo, hi),
            Colormap::Sequential if lo.is_finite() => (lo - 0.5, lo + 0.5),
            Colormap::Sequential => (0.0, 1.0),
        };
        Self { colormap, lo, hi }
    }

    /// The position of `v` in the range, in `[0, 1]` (NaN stays NaN).
    pub fn position(&self, v: f64) -> f64 {
        ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }

    /// The colour of value `v`: NaN is [`Rgb::MISSING`], values beyond the range take the end colours.
    pub fn color(&self, v: f64) -> Rgb {
        self.colormap.color(self.position(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luminance(c: Rgb) -> f64 {
        0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2)
    }

    #[test]
    fn diverging_is_white_at_zero_blue_below_red_above() {
        let s = ColorScale::fit(Colormap::Diverging, [-0.5, 2.0, f64::NAN]);
        assert_eq!((s.lo, s.hi), (-2.0, 2.0));
        assert_eq!(s.color(0.0), Rgb::WHITE);
        let (neg, pos) = (s.color(-1.0), s.color(1.0));
        assert!(neg.2 > neg.0 + 50, "{neg:?}");
        assert!(pos.0 > pos.2 + 50, "{pos:?}");
        assert_eq!(s.color(-5.0), Colormap::Diverging.color(0.0));
        assert_eq!(s.color(f64::NAN), Rgb::MISSING);
    }

    #[test]
    fn sequential_lightness_increases_monotonically() {
        let lum: Vec<f64> =
            (0..=100).map(|k| luminance(Colormap::Sequential.color(k as f64 / 100.0))).collect();
        assert!(lum.windows(2).all(|w| w[1] >= w[0] - 0.5), "{lum:?}");
        assert!(lum[100] - lum[0] > 150.0);
        assert_eq!(Colormap::Sequential.color(1.0), Rgb(253, 231, 37));
    }

    #[test]
    fn fit_handles_degenerate_data() {
        assert_eq!(ColorScale::fit(Colormap::Diverging, [0.0, 0.0]).hi, 1.0);
        let s = ColorScale::fit(Colormap::Sequential, [3.0, 3.0]);
        assert_eq!((s.lo, s.hi), (2.5, 3.5));
        let s = ColorScale::fit(Colormap::Sequential, [f64::NAN]);
        assert_eq!((s.lo, s.hi), (0.0, 1.0));
        let s = ColorScale::fit(Colormap::Sequential, [1.0, 4.0, f64::INFINITY]);
        assert_eq!((s.lo, s.hi), (1.0, 4.0));
        assert_eq!(s.position(2.5), 0.5);
    }
}

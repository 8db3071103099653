//! A rectangular plot area with linear or log-10 axes: data-to-pixel mapping, frame, ticks and labels.

use super::canvas::{Canvas, Rgb};
use super::font::{draw_text, text_height, text_width};
use super::ticks::{format_tick, linear_ticks, log_ticks};

/// How an axis maps values to positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AxisScale {
    Linear,
    Log10,
}

/// One axis: the value range shown and its scale (`0 < lo` for log axes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub scale: AxisScale,
}

impl Axis {
    /// Position of `v` along the axis: 0 at `lo`, 1 at `hi` (outside for values beyond; NaN for
    /// non-positive values on a log axis).
    pub fn fraction(&self, v: f64) -> f64 {
        match self.scale {
            AxisScale::Linear => (v - self.lo) / (self.hi - self.lo),
            AxisScale::Log10 if v > 0.0 => (v / self.lo).log10() / (self.hi / self.lo).log10(),
            AxisScale::Log10 => f64::NAN,
        }
    }

    /// The value at position `f` (inverse of [`Axis::fraction`]).
    pub fn value(&self, f: f64) -> f64 {
        match self.scale {
            AxisScale::Linear => self.lo + f * (self.hi - self.lo),
            AxisScale::Log10 => self.lo * (self.hi / self.lo).powf(f),
        }
    }

    fn ticks(&self, target: usize) -> Vec<f64> {
        match self.scale {
            AxisScale::Linear => linear_ticks(self.lo, self.hi, target),
            AxisScale::Log10 => log_ticks(self.lo, self.hi),
        }
    }
}

/// A plot area: the pixel rectangle with top-left `(left, top)` and its two axes (y grows upwards).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PlotArea {
    pub left: i64,
    pub top: i64,
    pub width: u32,
    pub height: u32,
    pub x: Axis,
    pub y: Axis,
}

/// Length of tick marks in pixels.
const TICK: u32 = 4;

impl PlotArea {
    /// Pixel coordinates of the data point `(x, y)` (may lie outside the area, NaN if unmappable).
    pub fn pixel_of(&self, x: f64, y: f64) -> (f64, f64) {
        let px = self.left as f64 + self.x.fraction(x) * f64::from(self.width);
        let py = self.top as f64 + (1.0 - self.y.fraction(y)) * f64::from(self.height);
        (px, py)
    }

    /// Data coordinates at the centre of pixel `(px, py)` of the area (`0 <= px < width`).
    pub fn data_at(&self, px: u32, py: u32) -> (f64, f64) {
        let fx = (f64::from(px) + 0.5) / f64::from(self.width);
        let fy = 1.0 - (f64::from(py) + 0.5) / f64::from(self.height);
        (self.x.value(fx), self.y.value(fy))
    }

    /// True if the pixel position lies inside the area.
    pub fn contains(&self, (px, py): (f64, f64)) -> bool {
        px >= self.left as f64
            && py >= self.top as f64
            && px < (self.left + i64::from(self.width)) as f64
            && py < (self.top + i64::from(self.height)) as f64
    }

    /// Draws the frame, outward tick marks and tick labels of both axes.
    pub fn draw_axes(&self, canvas: &mut Canvas) {
        let ink = Rgb::INK;
        canvas.stroke_rect(self.left - 1, self.top - 1, self.width + 2, self.height + 2, ink);
        let bottom = self.top + i64::from(self.height);
        for v in self.x.ticks(5) {
            let (px, _) = self.pixel_of(v, self.y.lo);
            let px = px.round() as i64;
            canvas.fill_rect(px, bottom, 1, TICK, ink);
            let label = format_tick(v);
            let w = i64::from(text_width(&label, 1));
            draw_text(canvas, px - w / 2, bottom + i64::from(TICK) + 2, &label, 1, ink);
        }
        for v in self.y.ticks(5) {
            let (_, py) = self.pixel_of(self.x.lo, v);
            let py = py.round() as i64;
            canvas.fill_rect(self.left - 1 - i64::from(TICK), py, TICK, 1, ink);
            let label = format_tick(v);
            let w = i64::from(text_width(&label, 1));
            let h = i64::from(text_height(1));
            draw_text(canvas, self.left - i64::from(TICK) - 4 - w, py - h / 2, &label, 1, ink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(scale: AxisScale, lo: f64, hi: f64) -> PlotArea {
        PlotArea {
            left: 10,
            top: 5,
            width: 100,
            height: 50,
            x: Axis { lo: 0.0, hi: 10.0, scale: AxisScale::Linear },
            y: Axis { lo, hi, scale },
        }
    }

    #[test]
    fn mapping_puts_corners_on_the_frame_and_inverts() {
        let a = area(AxisScale::Linear, -1.0, 1.0);
        assert_eq!(a.pixel_of(0.0, 1.0), (10.0, 5.0));
        assert_eq!(a.pixel_of(10.0, -1.0), (110.0, 55.0));
        let (x, y) = a.data_at(49, 24);
        assert!((x - 4.95).abs() < 1e-12 && (y - 0.02).abs() < 1e-12, "{x} {y}");
        assert!(a.contains(a.pixel_of(5.0, 0.0)));
        assert!(!a.contains(a.pixel_of(10.0, 0.0)));
    }

    #[test]
    fn log_axis_spaces_decades_evenly() {
        let a = area(AxisScale::Log10, 1e-4, 1.0);
        let ys: Vec<f64> = [1e-4, 1e-3, 1e-2, 1e-1, 1.0].iter().map(|&v| a.pixel_of(0.0, v).1).collect();
        for w in ys.windows(2) {
            assert!((w[0] - w[1] - 12.5).abs() < 1e-9, "{ys:?}");
        }
        assert!(a.pixel_of(0.0, -1.0).1.is_nan());
        assert!(!a.contains(a.pixel_of(0.0, 0.0)));
        let (_, y) = a.data_at(0, 49);
        assert!((y.log10() - (-4.0 + 0.5 / 50.0 * 4.0)).abs() < 1e-9);
    }

    #[test]
    fn axes_draw_frame_and_tick_labels() {
        let a = area(AxisScale::Linear, -1.0, 1.0);
        let mut c = Canvas::new(130, 80, Rgb::WHITE);
        a.draw_axes(&mut c);
        assert_eq!(c.pixel(9, 30), Rgb::INK); // left frame
        assert_eq!(c.pixel(60, 55), Rgb::INK); // bottom frame
        assert_eq!(c.pixel(60, 30), Rgb::WHITE); // inside untouched
                                                 // x tick labels sit below the frame.
        assert!((62..75).any(|y| (0..130).any(|x| c.pixel(x, y) == Rgb::INK)));
    }
}

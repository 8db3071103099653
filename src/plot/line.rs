//! `LinePlot`: named (x, y) series on linear-x, log-y (or linear-y) axes with a legend.

use super::axes::{Axis, AxisScale, PlotArea};
use super::canvas::{Canvas, Rgb};
use super::font::{draw_text, text_height, text_width};

const MARGIN: i64 = 12;
const TITLE_SCALE: u32 = 2;
const LEFT_AXIS: i64 = 52;
const BOTTOM_AXIS: i64 = 20;
const LEGEND_ROW: i64 = 12;

/// Series colours (matplotlib's tab10), cycled.
const PALETTE: [Rgb; 10] = [
    Rgb(31, 119, 180),
    Rgb(255, 127, 14),
    Rgb(44, 160, 44),
    Rgb(214, 39, 40),
    Rgb(148, 103, 189),
    Rgb(140, 86, 75),
    Rgb(227, 119, 194),
    Rgb(127, 127, 127),
    Rgb(188, 189, 34),
    Rgb(23, 190, 207),
];

/// A named series of `(x, y)` points, drawn in order.
#[derive(Clone, Debug, PartialEq)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// Several named series against a shared x axis, with a legend in the top-right corner.
///
/// The y axis is logarithmic by default (for quantities such as MMD² against step that fall over
/// decades); points that cannot be drawn there (y ≤ 0, NaN) are skipped and break the line. Axis ranges
/// cover the drawable points, the log axis rounded out to whole decades.
#[derive(Clone, Debug, PartialEq)]
pub struct LinePlot {
    title: String,
    x_label: String,
    y_label: String,
    log_y: bool,
    series: Vec<Series>,
    width: u32,
    height: u32,
}

impl LinePlot {
    /// An empty plot with a log-10 y axis, 560 x 360 pixels.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            log_y: true,
            series: Vec::new(),
            width: 560,
            height: 360,
        }
    }

    /// Sets the axis labels (the y label is written above the axis).
    pub fn with_axis_labels(mut self, x: impl Into<String>, y: impl Into<String>) -> Self {
        self.x_label = x.into();
        self.y_label = y.into();
        self
    }

    #[cfg(test)]
    /// Chooses a logarithmic (default) or linear y axis.
    pub fn with_log_y(mut self, log_y: bool) -> Self {
        self.log_y = log_y;
        self
    }

    #[cfg(test)]
    /// Sets the image size in pixels (at least 160 x 120).
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = width.max(160);
        self.height = height.max(120);
        self
    }

    #[cfg(test)]
    /// Adds a series.
    pub fn with_series(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.add_series(name, points);
        self
    }

    /// Adds a series.
    pub fn add_series(&mut self, name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) {
        self.series.push(Series { name: name.into(), points: points.into_iter().collect() });
    }

    /// True if the point can be drawn on these axes.
    fn drawable(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0)
    }

    /// Axis ranges covering the drawable points.
    fn axes(&self) -> (Axis, Axis) {
        let (mut x0, mut x1, mut y0, mut y1) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in self.series.iter().flat_map(|s| &s.points).filter(|&&p| self.drawable(p)) {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        let (x0, x1) = widen(x0, x1, 0.0, 1.0);
        let x = Axis { lo: x0, hi: x1, scale: AxisScale::Linear };
        let y = if self.log_y {
            let (lo, hi) = if y0.is_finite() { (y0.log10().floor(), y1.log10().ceil()) } else { (-1.0, 0.0) };
            let hi = if hi > lo { hi } else { lo + 1.0 };
            Axis { lo: 10f64.powf(lo), hi: 10f64.powf(hi), scale: AxisScale::Log10 }
        } else {
            let (lo, hi) = widen(y0, y1, 0.0, 1.0);
            let pad = 0.05 * (hi - lo);
            Axis { lo: lo - pad, hi: hi + pad, scale: AxisScale::Linear }
        };
        (x, y)
    }

    /// The plot area inside the image.
    fn area(&self) -> PlotArea {
        let (x, y) = self.axes();
        let title = if self.title.is_empty() { 0 } else { i64::from(text_height(TITLE_SCALE)) + 10 };
        let y_label = if self.y_label.is_empty() { 0 } else { 12 };
        let x_label = if self.x_label.is_empty() { 0 } else { 12 };
        let top = MARGIN + title + y_label;
        let left = MARGIN + LEFT_AXIS;
        PlotArea {
            left,
            top,
            width: (i64::from(self.width) - left - MARGIN - 8) as u32,
            height: (i64::from(self.height) - top - BOTTOM_AXIS - x_label - MARGIN) as u32,
            x,
            y,
        }
    }

    /// Draws the plot.
    pub fn render(&self) -> Canvas {
        let mut canvas = Canvas::new(self.width, self.height, Rgb::WHITE);
        let area = self.area();
        for (k, s) in self.series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let mut previous: Option<(f64, f64)> = None;
            for &p in &s.points {
                if !self.drawable(p) {
                    previous = None;
                    continue;
                }
                let q = area.pixel_of(p.0, p.1);
                if let Some(prev) = previous {
                    canvas.line(prev, q, 2, color);
                }
                canvas.disk(q.0.round() as i64, q.1.round() as i64, 2, color);
                previous = Some(q);
            }
        }
        area.draw_axes(&mut canvas);
        self.draw_legend(&mut canvas, &area);
        let ink = Rgb::INK;
        if !self.title.is_empty() {
            let w = i64::from(text_width(&self.title, TITLE_SCALE));
            draw_text(&mut canvas, (i64::from(self.width) - w) / 2, MARGIN, &self.title, TITLE_SCALE, ink);
        }
        if !self.y_label.is_empty() {
            draw_text(&mut canvas, MARGIN, area.top - 14, &self.y_label, 1, ink);
        }
        if !self.x_label.is_empty() {
            let w = i64::from(text_width(&self.x_label, 1));
            let y = area.top + i64::from(area.height) + BOTTOM_AXIS;
            draw_text(&mut canvas, area.left + (i64::from(area.width) - w) / 2, y, &self.x_label, 1, ink);
        }
        canvas
    }

    /// The legend box `(left, top, width, height)` in the top-right corner of the area.
    fn legend_box(&self, area: &PlotArea) -> (i64, i64, u32, u32) {
        let text = self.series.iter().map(|s| text_width(&s.name, 1)).max().unwrap_or(0);
        let w = text + 32;
        let h = (self.series.len() as i64 * LEGEND_ROW + 6) as u32;
        (area.left + i64::from(area.width) - i64::from(w) - 6, area.top + 6, w, h)
    }

    fn draw_legend(&self, canvas: &mut Canvas, area: &PlotArea) {
        if self.series.is_empty() {
            return;
        }
        let (left, top, w, h) = self.legend_box(area);
        canvas.fill_rect(left, top, w, h, Rgb::WHITE);
        canvas.stroke_rect(left, top, w, h, Rgb::INK);
        for (k, s) in self.series.iter().enumerate() {
            let y = top + 4 + k as i64 * LEGEND_ROW;
            let color = PALETTE[k % PALETTE.len()];
            canvas.fill_rect(left + 5, y + 2, 18, 3, color);
            draw_text(canvas, left + 27, y, &s.name, 1, Rgb::INK);
        }
    }
}

/// `(lo, hi)` if it is a finite non-empty range, `lo ± 0.5` if a single value, else the default.
fn widen(lo: f64, hi: f64, default_lo: f64, default_hi: f64) -> (f64, f64) {
    if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (default_lo, default_hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::canvas::decode_png;

    fn mmd_plot() -> LinePlot {
        LinePlot::new("MMD^2 against step")
            .with_axis_labels("step", "MMD^2")
            .with_series("ULA", [(0.0, 0.5), (100.0, 0.05), (200.0, 0.02)])
            .with_series("Ozaki", [(0.0, 0.5), (100.0, 0.004), (200.0, 0.001)])
    }

    fn count(c: &Canvas, color: Rgb) -> usize {
        (0..c.height())
            .flat_map(|y| (0..c.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y) == color)
            .count()
    }

    #[test]
    fn saved_png_decodes_to_the_plot_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mmd.png");
        mmd_plot().with_size(400, 300).render().save_png(&path).unwrap();
        let (w, h, _) = decode_png(&std::fs::read(&path).unwrap());
        assert_eq!((w, h), (400, 300));
    }

    #[test]
    fn log_axis_rounds_out_to_decades_and_places_points() {
        let plot = mmd_plot();
        let a = plot.area();
        assert_eq!((a.x.lo, a.x.hi), (0.0, 200.0));
        assert!((a.y.lo - 1e-3).abs() < 1e-15 && (a.y.hi - 1.0).abs() < 1e-12, "{:?}", a.y);
        let c = plot.render();
        // The Ozaki marker at (100, 4e-3) is drawn in the second colour.
        let (px, py) = a.pixel_of(100.0, 0.004);
        assert_eq!(c.pixel(px.round() as u32, py.round() as u32), PALETTE[1]);
        // Both series are drawn, and the legend swatches add to them.
        assert!(count(&c, PALETTE[0]) > 100 && count(&c, PALETTE[1]) > 100);
    }

    #[test]
    fn non_positive_values_are_skipped_on_log_axes_but_drawn_on_linear() {
        let pts = [(0.0, 1.0), (1.0, -0.5), (2.0, 0.1)];
        let log = LinePlot::new("").with_series("a", pts);
        let a = log.area();
        assert!((a.y.lo - 0.1).abs() < 1e-15 && (a.y.hi - 1.0).abs() < 1e-12);
        let lin = LinePlot::new("").with_log_y(false).with_series("a", pts);
        let a = lin.area();
        assert!(a.y.lo < -0.5 && a.y.hi > 1.0);
        // The broken log line draws less than the connected linear one.
        assert!(count(&log.render(), PALETTE[0]) < count(&lin.render(), PALETTE[0]));
    }

    #[test]
    fn legend_names_each_series() {
        let plot = mmd_plot();
        let c = plot.render();
        let a = plot.area();
        let (left, top, w, h) = plot.legend_box(&a);
        assert_eq!(h as i64, 2 * LEGEND_ROW + 6);
        let ink_inside = (top + 2..top + i64::from(h) - 2)
            .flat_map(|y| (left + 24..left + i64::from(w) - 2).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x as u32, y as u32) == Rgb::INK)
            .count();
        assert!(ink_inside > 40, "{ink_inside}");
        assert_eq!(c.pixel((left + 10) as u32, (top + 7) as u32), PALETTE[0]);
        assert_eq!(c.pixel((left + 10) as u32, (top + 7 + LEGEND_ROW) as u32), PALETTE[1]);
    }

    #[test]
    fn extreme_values_render_without_panicking() {
        let plot = LinePlot::new("extreme")
            .with_series("a", [(-1e308, 1e-300), (1e308, 1e300), (0.0, f64::INFINITY)])
            .with_series("b", [(f64::MIN_POSITIVE, 5e-324), (1.0, f64::MAX)]);
        let c = plot.render();
        assert_eq!((c.width(), c.height()), (560, 360));
        let lin = plot.with_log_y(false).render();
        assert_eq!((lin.width(), lin.height()), (560, 360));
    }

    #[test]
    fn empty_plot_renders_with_default_axes() {
        let plot = LinePlot::new("nothing yet").with_series("none", [(1.0, f64::NAN)]);
        let a = plot.area();
        assert_eq!((a.x.lo, a.x.hi), (0.0, 1.0));
        assert!((a.y.lo - 0.1).abs() < 1e-15 && a.y.hi == 1.0);
        assert_eq!(count(&plot.render(), PALETTE[0]), 18 * 3);
    }

    #[test]
    fn example_renders_default_height() {
        use crate::plot::LinePlot;
        let plot = LinePlot::new("MMD^2 against step")
            .with_axis_labels("step", "MMD^2")
            .with_series("ULA", [(100.0, 0.3), (200.0, 0.05), (400.0, 0.01)])
            .with_series("Ozaki", [(100.0, 0.1), (200.0, 0.004), (400.0, 0.001)]);
        assert_eq!(plot.render().height(), 360);
    }
}

//! `ScatterFigure`: sample points drawn over the filled contours of a density field.

use super::axes::{Axis, AxisScale, PlotArea};
use super::canvas::{Canvas, Rgb};
use super::colormap::{ColorScale, Colormap};
use super::error::PlotError;
use super::field::{check_range, Field};
use super::font::{draw_text, text_height, text_width};

const MARGIN: i64 = 12;
const TITLE_SCALE: u32 = 2;
const LEFT_AXIS: i64 = 52;
const BOTTOM_AXIS: i64 = 20;

/// Points (for example sampler output) over filled density contours on `[x0, x1] x [y0, y1]`.
///
/// The density is drawn with the sequential map quantised into `levels` bands, which reads as filled
/// contours; points are small red dots. Points outside the window or with non-finite coordinates are
/// not drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterFigure {
    title: String,
    x_range: (f64, f64),
    y_range: (f64, f64),
    density: Option<Field>,
    levels: usize,
    points: Vec<[f64; 2]>,
    width: u32,
    height: u32,
}

impl ScatterFigure {
    /// An empty figure showing the window `x_range x y_range`.
    ///
    /// # Errors
    /// [`PlotError::BadRange`] unless both ranges are finite with `lo < hi`.
    pub fn new(
        title: impl Into<String>,
        x_range: (f64, f64),
        y_range: (f64, f64),
    ) -> Result<Self, PlotError> {
        check_range("x", x_range)?;
        check_range("y", y_range)?;
        Ok(Self {
            title: title.into(),
            x_range,
            y_range,
            density: None,
            levels: 10,
            points: Vec::new(),
            width: 480,
            height: 480,
        })
    }

    /// Sets the density field drawn under the points (its rectangle may differ from the window).
    pub fn with_density(mut self, density: Field) -> Self {
        self.density = Some(density);
        self
    }

    #[cfg(test)]
    /// Sets the number of filled contour bands (default 10, at least 2).
    pub fn with_levels(mut self, levels: usize) -> Self {
        self.levels = levels.max(2);
        self
    }

    /// Adds points `[x, y]`.
    pub fn with_points(mut self, points: impl IntoIterator<Item = [f64; 2]>) -> Self {
        self.points.extend(points);
        self
    }

    #[cfg(test)]
    /// Sets the image size in pixels (default 480 x 480, at least 128 x 128).
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = width.max(128);
        self.height = height.max(128);
        self
    }

    /// The plot area inside the image.
    fn area(&self) -> PlotArea {
        let top = MARGIN + i64::from(text_height(TITLE_SCALE)) + 10;
        let left = MARGIN + LEFT_AXIS;
        PlotArea {
            left,
            top,
            width: (i64::from(self.width) - left - MARGIN - 8) as u32,
            height: (i64::from(self.height) - top - BOTTOM_AXIS - MARGIN) as u32,
            x: Axis { lo: self.x_range.0, hi: self.x_range.1, scale: AxisScale::Linear },
            y: Axis { lo: self.y_range.0, hi: self.y_range.1, scale: AxisScale::Linear },
        }
    }

    /// The colour of the band containing density value `v`.
    fn band_color(&self, scale: &ColorScale, v: f64) -> Rgb {
        let t = scale.position(v);
        if t.is_nan() {
            return Rgb::MISSING;
        }
        let band = ((t * self.levels as f64).floor() as usize).min(self.levels - 1);
        Colormap::Sequential.color(band as f64 / (self.levels - 1) as f64)
    }

    /// Draws the figure.
    pub fn render(&self) -> Canvas {
        let mut canvas = Canvas::new(self.width, self.height, Rgb::WHITE);
        let area = self.area();
        if let Some(field) = &self.density {
            let scale = ColorScale::fit(Colormap::Sequential, field.values().iter().copied());
            for py in 0..area.height {
                for px in 0..area.width {
                    let (x, y) = area.data_at(px, py);
                    if let Some(v) = field.nearest(x, y) {
                        let c = self.band_color(&scale, v);
                        canvas.set(area.left + i64::from(px), area.top + i64::from(py), c);
                    }
                }
            }
        }
        for &[x, y] in &self.points {
            let p = area.pixel_of(x, y);
            if area.contains(p) {
                canvas.disk(p.0.floor() as i64, p.1.floor() as i64, 1, POINT);
            }
        }
        // Dots near the border must not cover the frame: the axes go on last.
        area.draw_axes(&mut canvas);
        let w = i64::from(text_width(&self.title, TITLE_SCALE));
        draw_text(&mut canvas, (i64::from(self.width) - w) / 2, MARGIN, &self.title, TITLE_SCALE, Rgb::INK);
        canvas
    }
}

/// Colour of the sample dots.
const POINT: Rgb = Rgb(228, 26, 28);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::canvas::decode_png;
    use std::collections::HashSet;

    fn gaussian() -> Field {
        Field::from_fn(60, 60, (-3.0, 3.0), (-3.0, 3.0), |x, y| (-(x * x + y * y) / 2.0).exp()).unwrap()
    }

    #[test]
    fn saved_png_has_the_requested_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.png");
        let fig = ScatterFigure::new("MALA", (-3.0, 3.0), (-3.0, 3.0)).unwrap().with_size(300, 200);
        fig.render().save_png(&path).unwrap();
        let (w, h, _) = decode_png(&std::fs::read(&path).unwrap());
        assert_eq!((w, h), (300, 200));
    }

    #[test]
    fn density_is_drawn_in_at_most_levels_colours_brightest_at_the_mode() {
        let fig =
            ScatterFigure::new("", (-3.0, 3.0), (-3.0, 3.0)).unwrap().with_density(gaussian()).with_levels(6);
        let c = fig.render();
        let a = fig.area();
        let mut colours = HashSet::new();
        for py in 0..a.height {
            for px in 0..a.width {
                let p = c.pixel((a.left + i64::from(px)) as u32, (a.top + i64::from(py)) as u32);
                colours.insert(p);
            }
        }
        assert!(colours.len() <= 6, "{}", colours.len());
        assert!(colours.len() >= 5, "{}", colours.len());
        let (cx, cy) = a.pixel_of(0.0, 0.0);
        assert_eq!(c.pixel(cx as u32, cy as u32), Colormap::Sequential.color(1.0));
        let (ex, ey) = a.pixel_of(-2.9, 2.9);
        assert_eq!(c.pixel(ex as u32, ey as u32), Colormap::Sequential.color(0.0));
    }

    #[test]
    fn points_are_dots_at_their_positions_and_outliers_are_skipped() {
        let fig = ScatterFigure::new("pts", (0.0, 10.0), (0.0, 10.0)).unwrap().with_points([
            [2.0, 3.0],
            [50.0, 1.0],
            [f64::NAN, 1.0],
            [7.5, 7.5],
        ]);
        let c = fig.render();
        let a = fig.area();
        for (x, y) in [(2.0, 3.0), (7.5, 7.5)] {
            let (px, py) = a.pixel_of(x, y);
            assert_eq!(c.pixel(px as u32, py as u32), POINT);
        }
        let red = (0..c.height())
            .flat_map(|y| (0..c.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y) == POINT)
            .count();
        assert_eq!(red, 2 * 9);
    }

    #[test]
    fn invalid_window_is_an_error() {
        assert!(matches!(
            ScatterFigure::new("", (1.0, 0.0), (0.0, 1.0)),
            Err(PlotError::BadRange { axis: "x", .. })
        ));
        assert!(matches!(
            ScatterFigure::new("", (0.0, 1.0), (0.0, f64::INFINITY)),
            Err(PlotError::BadRange { axis: "y", .. })
        ));
    }

    #[test]
    fn example_renders_default_width() {
        use crate::plot::{Field, ScatterFigure};
        let density =
            Field::from_fn(50, 50, (-3.0, 3.0), (-3.0, 3.0), |x, y| (-(x * x + y * y) / 2.0).exp()).unwrap();
        let fig = ScatterFigure::new("ULA, 1000 steps", (-3.0, 3.0), (-3.0, 3.0))
            .unwrap()
            .with_density(density)
            .with_points([[0.1, -0.2], [1.0, 0.5]]);
        assert_eq!(fig.render().width(), 480);
    }
}

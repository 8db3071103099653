//! `HeatmapFigure`: a grid of field panels, one colour range and colour bar per column.

use super::canvas::{Canvas, Rgb};
use super::colormap::{ColorScale, Colormap};
use super::field::Field;
use super::font::{draw_text, text_height, text_width, ADVANCE};
use super::ticks::format_tick;

const MARGIN: i64 = 12;
const TITLE_SCALE: u32 = 2;
const PANEL_TITLE_BAND: i64 = 12;
const GAP_X: i64 = 18;
const GAP_Y: i64 = 10;
const BAR_GAP: i64 = 10;
const BAR_HEIGHT: u32 = 12;
const LABEL_GAP: i64 = 4;

/// A titled panel.
#[derive(Clone, Debug, PartialEq)]
struct Panel {
    title: String,
    field: Field,
}

/// A `rows x cols` grid of heatmap panels.
///
/// Panels in one column share a colour range (symmetric around 0 for [`Colormap::Diverging`], so that
/// white means zero), shown by a colour bar under the column with its end and middle values. NaN values
/// are drawn grey. Typical use: columns are Hessian entries `H11, H12, H22`, rows are
/// `true / learned / autodiff`, so each entry is compared on one scale.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapFigure {
    rows: usize,
    cols: usize,
    colormap: Colormap,
    title: Option<String>,
    panel_size: u32,
    panels: Vec<Option<Panel>>,
}

impl HeatmapFigure {
    /// An empty `rows x cols` grid. Panics if either count is 0 (a programmer error).
    #[track_caller]
    pub fn new(rows: usize, cols: usize, colormap: Colormap) -> Self {
        assert!(rows > 0 && cols > 0, "HeatmapFigure::new: {rows}x{cols} grid");
        Self { rows, cols, colormap, title: None, panel_size: 160, panels: vec![None; rows * cols] }
    }

    /// Sets the figure title (drawn at twice the panel-title size).
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    #[cfg(test)]
    /// Sets the side of each square panel in pixels (default 160, at least 16).
    pub fn with_panel_size(mut self, pixels: u32) -> Self {
        self.panel_size = pixels.max(16);
        self
    }

    /// Places a panel. Panics if `(row, col)` is outside the grid (a programmer error).
    #[track_caller]
    pub fn set_panel(&mut self, row: usize, col: usize, title: impl Into<String>, field: Field) {
        assert!(
            row < self.rows && col < self.cols,
            "panel ({row}, {col}) outside {}x{}",
            self.rows,
            self.cols
        );
        self.panels[row * self.cols + col] = Some(Panel { title: title.into(), field });
    }

    /// The colour scale shared by the panels of column `col`.
    pub fn column_scale(&self, col: usize) -> ColorScale {
        let values = (0..self.rows)
            .filter_map(|r| self.panels[r * self.cols + col].as_ref())
            .flat_map(|p| p.field.values().iter().copied());
        ColorScale::fit(self.colormap, values)
    }

    /// Height of the figure-title band.
    fn title_band(&self) -> i64 {
        match self.title {
            Some(_) => i64::from(text_height(TITLE_SCALE)) + 10,
            None => 0,
        }
    }

    /// The top-left pixel of panel `(row, col)` (panels are `panel_size` pixels square).
    fn panel_origin(&self, row: usize, col: usize) -> (i64, i64) {
        let p = i64::from(self.panel_size);
        let left = MARGIN + col as i64 * (p + GAP_X);
        let top = MARGIN + self.title_band() + row as i64 * (PANEL_TITLE_BAND + p + GAP_Y) + PANEL_TITLE_BAND;
        (left, top)
    }

    /// Top of the colour bars.
    fn bar_top(&self) -> i64 {
        let p = i64::from(self.panel_size);
        MARGIN + self.title_band() + self.rows as i64 * (PANEL_TITLE_BAND + p + GAP_Y) - GAP_Y + BAR_GAP
    }

    /// Draws the figure.
    pub fn render(&self) -> Canvas {
        let p = i64::from(self.panel_size);
        let grid_width = 2 * MARGIN + self.cols as i64 * p + (self.cols as i64 - 1) * GAP_X;
        let title_width =
            self.title.as_deref().map_or(0, |t| i64::from(text_width(t, TITLE_SCALE)) + 2 * MARGIN);
        let width = grid_width.max(title_width);
        let height = self.bar_top() + i64::from(BAR_HEIGHT) + LABEL_GAP + i64::from(text_height(1)) + MARGIN;
        let mut canvas = Canvas::new(width as u32, height as u32, Rgb::WHITE);
        if let Some(title) = &self.title {
            let w = i64::from(text_width(title, TITLE_SCALE));
            draw_text(&mut canvas, (width - w) / 2, MARGIN, title, TITLE_SCALE, Rgb::INK);
        }
        for col in 0..self.cols {
            let scale = self.column_scale(col);
            for row in 0..self.rows {
                if let Some(panel) = &self.panels[row * self.cols + col] {
                    self.draw_panel(&mut canvas, row, col, panel, &scale);
                }
            }
            self.draw_bar(&mut canvas, col, &scale);
        }
        canvas
    }

    fn draw_panel(&self, canvas: &mut Canvas, row: usize, col: usize, panel: &Panel, scale: &ColorScale) {
        let (left, top) = self.panel_origin(row, col);
        let n = self.panel_size;
        let (x0, x1) = panel.field.x_range();
        let (y0, y1) = panel.field.y_range();
        for py in 0..n {
            // Pixel centres; image rows go down while y goes up.
            let y = y1 - (f64::from(py) + 0.5) / f64::from(n) * (y1 - y0);
            for px in 0..n {
                let x = x0 + (f64::from(px) + 0.5) / f64::from(n) * (x1 - x0);
                let color = panel.field.nearest(x, y).map_or(Rgb::MISSING, |v| scale.color(v));
                canvas.set(left + i64::from(px), top + i64::from(py), color);
            }
        }
        canvas.stroke_rect(left - 1, top - 1, n + 2, n + 2, Rgb::INK);
        let max_chars = ((n + 1) / ADVANCE) as usize;
        let title: String = panel.title.chars().take(max_chars).collect();
        let w = i64::from(text_width(&title, 1));
        draw_text(canvas, left + (i64::from(n) - w) / 2, top - PANEL_TITLE_BAND, &title, 1, Rgb::INK);
    }

    fn draw_bar(&self, canvas: &mut Canvas, col: usize, scale: &ColorScale) {
        let (left, _) = self.panel_origin(0, col);
        let top = self.bar_top();
        let n = self.panel_size;
        for px in 0..n {
            let t = (f64::from(px) + 0.5) / f64::from(n);
            canvas.fill_rect(left + i64::from(px), top, 1, BAR_HEIGHT, scale.colormap.color(t));
        }
        canvas.stroke_rect(left - 1, top - 1, n + 2, BAR_HEIGHT + 2, Rgb::INK);
        let label_top = top + i64::from(BAR_HEIGHT) + LABEL_GAP;
        let (lo, mid, hi) =
            (format_tick(scale.lo), format_tick(0.5 * (scale.lo + scale.hi)), format_tick(scale.hi));
        draw_text(canvas, left, label_top, &lo, 1, Rgb::INK);
        let w = i64::from(text_width(&mid, 1));
        draw_text(canvas, left + (i64::from(n) - w) / 2, label_top, &mid, 1, Rgb::INK);
        let w = i64::from(text_width(&hi, 1));
        draw_text(canvas, left + i64::from(n) - w, label_top, &hi, 1, Rgb::INK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::canvas::decode_png;

    fn square(f: impl FnMut(f64, f64) -> f64) -> Field {
        Field::from_fn(21, 21, (-1.0, 1.0), (-1.0, 1.0), f).unwrap()
    }

    /// A 3 x 3 Hessian-comparison figure: columns H11, H12, H22; rows true / learned / autodiff.
    fn hessian_figure() -> HeatmapFigure {
        let mut fig =
            HeatmapFigure::new(3, 3, Colormap::Diverging).with_title("Hessian of log p").with_panel_size(64);
        let names = ["H11", "H12", "H22"];
        let rows = ["true", "learned", "autodiff"];
        for (r, row) in rows.iter().enumerate() {
            fig.set_panel(r, 0, format!("{row} {}", names[0]), square(|x, _| -1.0 - 0.1 * x));
            fig.set_panel(r, 1, format!("{row} {}", names[1]), square(|x, y| 0.5 * x * y));
            fig.set_panel(r, 2, format!("{row} {}", names[2]), square(|_, y| 2.0 * y));
        }
        fig
    }

    #[test]
    fn png_has_the_layout_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.png");
        let fig = hessian_figure();
        fig.render().save_png(&path).unwrap();
        let (w, h, _) = decode_png(&std::fs::read(&path).unwrap());
        assert_eq!(w as i64, 2 * MARGIN + 3 * 64 + 2 * GAP_X);
        assert_eq!(
            h as i64,
            fig.bar_top() + i64::from(BAR_HEIGHT) + LABEL_GAP + i64::from(text_height(1)) + MARGIN
        );
        assert_eq!((w, h), (fig.render().width(), fig.render().height()));
    }

    #[test]
    fn zero_is_white_and_signs_map_to_blue_and_red() {
        let fig = hessian_figure();
        let c = fig.render();
        // Column H12 = 0.5 x y: zero at the centre, positive in the top-right quadrant.
        let (left, top) = fig.panel_origin(1, 1);
        let centre = c.pixel((left + 32) as u32, (top + 32) as u32);
        assert!(centre.0 > 240 && centre.1 > 240 && centre.2 > 240, "{centre:?}");
        let top_right = c.pixel((left + 60) as u32, (top + 3) as u32);
        assert!(top_right.0 > top_right.2 + 60, "{top_right:?}");
        let top_left = c.pixel((left + 3) as u32, (top + 3) as u32);
        assert!(top_left.2 > top_left.0 + 60, "{top_left:?}");
        // Column H22 = 2 y: red at the top, blue at the bottom, symmetric range [-2, 2].
        let s = fig.column_scale(2);
        assert!((s.lo + 2.0).abs() < 1e-12 && (s.hi - 2.0).abs() < 1e-12);
        let (left, top) = fig.panel_origin(0, 2);
        let (up, down) =
            (c.pixel(left as u32 + 30, top as u32 + 1), c.pixel(left as u32 + 30, top as u32 + 62));
        assert_eq!(up, Colormap::Diverging.color(1.0));
        assert_eq!(down, Colormap::Diverging.color(0.0));
        // Column H11 is all negative: its range is still symmetric, so every pixel is bluish.
        assert!(fig.column_scale(0).lo == -fig.column_scale(0).hi);
        let (left, top) = fig.panel_origin(2, 0);
        let p = c.pixel(left as u32 + 32, top as u32 + 32);
        assert!(p.2 > p.0, "{p:?}");
    }

    #[test]
    fn rows_of_a_column_share_one_scale() {
        let mut fig = HeatmapFigure::new(2, 1, Colormap::Diverging).with_panel_size(32);
        fig.set_panel(0, 0, "small", square(|_, _| 1.0));
        fig.set_panel(1, 0, "large", square(|_, _| 4.0));
        let c = fig.render();
        let (l0, t0) = fig.panel_origin(0, 0);
        let (l1, t1) = fig.panel_origin(1, 0);
        let (small, large) =
            (c.pixel(l0 as u32 + 16, t0 as u32 + 16), c.pixel(l1 as u32 + 16, t1 as u32 + 16));
        assert_eq!(large, Colormap::Diverging.color(1.0));
        assert_eq!(small, Colormap::Diverging.color(0.625));
    }

    #[test]
    fn nan_is_grey_and_titles_and_bars_are_drawn() {
        let mut fig = HeatmapFigure::new(1, 1, Colormap::Sequential).with_panel_size(40);
        fig.set_panel(0, 0, "density", square(|x, _| if x < 0.0 { f64::NAN } else { x }));
        let c = fig.render();
        let (left, top) = fig.panel_origin(0, 0);
        assert_eq!(c.pixel(left as u32 + 2, top as u32 + 20), Rgb::MISSING);
        assert_ne!(c.pixel(left as u32 + 38, top as u32 + 20), Rgb::MISSING);
        // The panel title band and the label row under the bar contain ink.
        let band_has_ink =
            |y0: i64, y1: i64| (y0..y1).any(|y| (0..c.width()).any(|x| c.pixel(x, y as u32) == Rgb::INK));
        assert!(band_has_ink(top - PANEL_TITLE_BAND, top - 2));
        let label_top = fig.bar_top() + i64::from(BAR_HEIGHT) + LABEL_GAP;
        assert!(band_has_ink(label_top, label_top + i64::from(text_height(1))));
        // The bar runs from the darkest to the lightest colour of the map.
        let bar_y = (fig.bar_top() + 5) as u32;
        assert_eq!(c.pixel(left as u32, bar_y), Colormap::Sequential.color(0.5 / 40.0));
        assert_eq!(c.pixel(left as u32 + 39, bar_y), Colormap::Sequential.color(39.5 / 40.0));
    }

    #[test]
    fn empty_panels_and_long_titles_do_not_break_layout() {
        let mut fig = HeatmapFigure::new(2, 2, Colormap::Diverging)
            .with_title("a very long figure title that is wider than the panels")
            .with_panel_size(16);
        fig.set_panel(1, 1, "a title far too long for a tiny panel", square(|x, _| x));
        let c = fig.render();
        assert!(
            i64::from(c.width())
                >= i64::from(text_width("a very long figure title that is wider than the panels", 2))
        );
        let (left, top) = fig.panel_origin(0, 0);
        assert_eq!(c.pixel(left as u32 + 8, top as u32 + 8), Rgb::WHITE);
    }

    #[test]
    fn example_renders_two_panels() {
        use crate::plot::{Colormap, Field, HeatmapFigure};
        let mut fig = HeatmapFigure::new(1, 2, Colormap::Diverging).with_title("x and y");
        fig.set_panel(0, 0, "x", Field::from_fn(20, 20, (-1.0, 1.0), (-1.0, 1.0), |x, _| x).unwrap());
        fig.set_panel(0, 1, "y", Field::from_fn(20, 20, (-1.0, 1.0), (-1.0, 1.0), |_, y| y).unwrap());
        let canvas = fig.render();
        assert!(canvas.width() > 2 * 160);
    }
}

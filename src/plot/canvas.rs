//! An RGB8 raster canvas with clipped drawing primitives, encoded to PNG with the `png` crate.

use super::error::PlotError;
use crate::data::write_atomic;
use std::path::Path;

/// An sRGB colour, 8 bits per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// White.
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    #[cfg(test)]
    /// Black.
    pub const BLACK: Rgb = Rgb(0, 0, 0);
    /// The grey drawn for missing (NaN) values.
    pub const MISSING: Rgb = Rgb(150, 150, 150);
    /// Dark grey for frames and text.
    pub const INK: Rgb = Rgb(40, 40, 40);
}

/// A `width x height` image, row-major from the top-left corner. Drawing outside it is clipped.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        let n = width as usize * height as usize;
        let mut pixels = Vec::with_capacity(3 * n);
        for _ in 0..n {
            pixels.extend_from_slice(&[background.0, background.1, background.2]);
        }
        Self { width, height, pixels }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    #[cfg(test)]
    /// The RGB bytes, row-major.
    pub fn as_bytes(&self) -> &[u8] {
        &self.pixels
    }

    /// The colour at `(x, y)`. Panics outside the canvas (a programmer error).
    #[track_caller]
    pub fn pixel(&self, x: u32, y: u32) -> Rgb {
        assert!(x < self.width && y < self.height, "pixel ({x}, {y}) outside {}x{}", self.width, self.height);
        let k = 3 * (y as usize * self.width as usize + x as usize);
        Rgb(self.pixels[k], self.pixels[k + 1], self.pixels[k + 2])
    }

    /// Sets one pixel; ignored outside the canvas.
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && x < i64::from(self.width) && y < i64::from(self.height) {
            let k = 3 * (y as usize * self.width as usize + x as usize);
            self.pixels[k..k + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    /// Fills the rectangle with top-left `(x, y)` and size `w x h`, clipped.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: u32, h: u32, c: Rgb) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = x.saturating_add(i64::from(w)).min(i64::from(self.width));
        let y1 = y.saturating_add(i64::from(h)).min(i64::from(self.height));
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.set(xx, yy, c);
            }
        }
    }

    /// Draws the 1-pixel outline of the rectangle with top-left `(x, y)` and size `w x h`.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: u32, h: u32, c: Rgb) {
        if w == 0 || h == 0 {
            return;
        }
        self.fill_rect(x, y, w, 1, c);
        self.fill_rect(x, y + i64::from(h) - 1, w, 1, c);
        self.fill_rect(x, y, 1, h, c);
        self.fill_rect(x + i64::from(w) - 1, y, 1, h, c);
    }

    /// Draws a line from `p0` to `p1` (pixel coordinates, may lie far outside the canvas), `thickness`
    /// pixels wide. The segment is clipped to the canvas first, so drawing cost is bounded
    /// by the canvas size; a segment with a non-finite end is skipped.
    pub fn line(&mut self, p0: (f64, f64), p1: (f64, f64), thickness: u32, c: Rgb) {
        let margin = f64::from(thickness);
        let bounds = (-margin, f64::from(self.width) + margin, -margin, f64::from(self.height) + margin);
        let Some(((x0, y0), (x1, y1))) = clip_segment(p0, p1, bounds) else {
            return;
        };
        let (x0, y0, x1, y1) = (x0.round() as i64, y0.round() as i64, x1.round() as i64, y1.round() as i64);
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let t = i64::from(thickness.max(1));
        let off = (t - 1) / 2;
        loop {
            self.fill_rect(x - off, y - off, t as u32, t as u32, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Fills a disk of radius `r` centred on `(cx, cy)`.
    pub fn disk(&mut self, cx: i64, cy: i64, r: u32, c: Rgb) {
        let r = i64::from(r);
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        if cx < -r || cy < -r || cx > w.saturating_add(r) || cy > h.saturating_add(r) {
            return; // entirely outside (also keeps cx + dx from overflowing)
        }
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r + r {
                    self.set(cx + dx, cy + dy, c);
                }
            }
        }
    }

    /// The PNG encoding of the canvas (8-bit RGB).
    ///
    /// # Errors
    /// The `png` crate's encoding error (for example a zero-sized canvas).
    pub fn encode_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }

    /// Writes the canvas as a PNG file, atomically.
    ///
    /// # Errors
    /// [`PlotError::Encode`] or [`PlotError::Io`], naming `path`.
    pub fn save_png(&self, path: &Path) -> Result<(), PlotError> {
        let bytes =
            self.encode_png().map_err(|source| PlotError::Encode { path: path.to_path_buf(), source })?;
        write_atomic(path, &bytes).map_err(|source| PlotError::Io { path: path.to_path_buf(), source })
    }
}

/// Clips the segment `p0 -> p1` to the box `(x_min, x_max, y_min, y_max)` (Cohen-Sutherland, which moves
/// an outside end along the segment's slope and so stays accurate for ends at huge coordinates); `None`
/// when nothing of it is inside or an end is not finite.
fn clip_segment(
    mut p0: (f64, f64),
    mut p1: (f64, f64),
    (x_min, x_max, y_min, y_max): (f64, f64, f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    let outcode = |(x, y): (f64, f64)| {
        u8::from(x < x_min) | u8::from(x > x_max) << 1 | u8::from(y < y_min) << 2 | u8::from(y > y_max) << 3
    };
    // Each step moves one end onto a box edge; four per end suffice.
    for _ in 0..8 {
        if ![p0.0, p0.1, p1.0, p1.1].iter().all(|v| v.is_finite()) {
            return None;
        }
        let (c0, c1) = (outcode(p0), outcode(p1));
        if c0 | c1 == 0 {
            return Some((p0, p1));
        }
        if c0 & c1 != 0 {
            return None;
        }
        let code = if c0 != 0 { c0 } else { c1 };
        let ((x0, y0), (x1, y1)) = (p0, p1);
        let moved = if code & 8 != 0 {
            (x0 + (x1 - x0) * ((y_max - y0) / (y1 - y0)), y_max)
        } else if code & 4 != 0 {
            (x0 + (x1 - x0) * ((y_min - y0) / (y1 - y0)), y_min)
        } else if code & 2 != 0 {
            (x_max, y0 + (y1 - y0) * ((x_max - x0) / (x1 - x0)))
        } else {
            (x_min, y0 + (y1 - y0) * ((x_min - x0) / (x1 - x0)))
        };
        if code == c0 {
            p0 = moved;
        } else {
            p1 = moved;
        }
    }
    None
}

/// Decodes PNG bytes into `(width, height, rgb bytes)`; shared by the plot tests.
#[cfg(test)]
pub(crate) fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(bytes);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_preserves_size_and_pixels() {
        let mut c = Canvas::new(7, 5, Rgb::WHITE);
        c.set(0, 0, Rgb(1, 2, 3));
        c.set(6, 4, Rgb(250, 0, 9));
        let (w, h, px) = decode_png(&c.encode_png().unwrap());
        assert_eq!((w, h), (7, 5));
        assert_eq!(px, c.as_bytes());
        assert_eq!(&px[..3], &[1, 2, 3]);
        assert_eq!(&px[px.len() - 3..], &[250, 0, 9]);
    }

    #[test]
    fn primitives_clip_and_draw_where_expected() {
        let mut c = Canvas::new(10, 10, Rgb::WHITE);
        c.fill_rect(-5, -5, 8, 8, Rgb::BLACK);
        assert_eq!(c.pixel(2, 2), Rgb::BLACK);
        assert_eq!(c.pixel(3, 3), Rgb::WHITE);
        c.line((0.0, 9.0), (9.0, 0.0), 1, Rgb(255, 0, 0));
        assert!((0..10).all(|k| c.pixel(k, 9 - k) == Rgb(255, 0, 0)));
        c.stroke_rect(5, 5, 5, 5, Rgb(0, 0, 255));
        assert_eq!(c.pixel(9, 7), Rgb(0, 0, 255));
        assert_eq!(c.pixel(7, 7), Rgb::WHITE);
        c.line((-1e300, 2.0), (1e300, 2.0), 1, Rgb(0, 255, 0));
        assert!((0..10).all(|x| c.pixel(x, 2) == Rgb(0, 255, 0)));
        let before = c.clone();
        c.line((f64::NAN, 0.0), (3.0, 3.0), 1, Rgb::BLACK);
        c.line((-50.0, -50.0), (-20.0, 40.0), 3, Rgb::BLACK);
        assert_eq!(c, before);
        c.disk(i64::MAX, i64::MIN, 2, Rgb::BLACK);
        c.fill_rect(i64::MAX - 1, i64::MAX - 1, u32::MAX, u32::MAX, Rgb::BLACK);
        assert_eq!(c, before);
        c.disk(5, 5, 1, Rgb(9, 9, 9));
        assert_eq!(c.pixel(5, 4), Rgb(9, 9, 9));
        assert_eq!(c.pixel(7, 7), Rgb::WHITE);
    }

    #[test]
    fn save_png_writes_a_decodable_file_and_reports_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let c = Canvas::new(3, 4, Rgb(10, 20, 30));
        c.save_png(&path).unwrap();
        let (w, h, px) = decode_png(&std::fs::read(&path).unwrap());
        assert_eq!((w, h), (3, 4));
        assert_eq!(&px[..3], &[10, 20, 30]);
        let bad = dir.path().join("no").join("c.png");
        assert!(matches!(c.save_png(&bad).unwrap_err(), PlotError::Io { path, .. } if path == bad));
        let empty = Canvas::new(0, 0, Rgb::WHITE);
        assert!(matches!(empty.save_png(&path).unwrap_err(), PlotError::Encode { .. }));
    }
}

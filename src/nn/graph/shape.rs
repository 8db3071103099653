//! The shape of a channels-last image: a point row holds `height * width * channels` values, pixel
//! `(y, x)` at offset `(y * width + x) * channels`.

use std::fmt;

/// Height, width and channels of one image (one point row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Rows of pixels.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
    /// Values per pixel.
    pub channels: usize,
}

impl Shape {
    /// A `height x width x channels` image.
    pub fn new(height: usize, width: usize, channels: usize) -> Self {
        Self { height, width, channels }
    }

    /// Number of pixels, `height * width`.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Values per point row, `height * width * channels`.
    pub fn len(&self) -> usize {
        self.pixels() * self.channels
    }

    /// The same pixels with another channel count.
    pub fn with_channels(&self, channels: usize) -> Self {
        Self { channels, ..*self }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.height, self.width, self.channels)
    }
}

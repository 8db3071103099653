//! The error type of figures: invalid fields and failures to encode or write a PNG.

use std::path::PathBuf;

/// A failure to build or save a figure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The image could not be encoded as PNG.
    #[error("{}: cannot encode PNG: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The PNG encoder's error.
        source: png::EncodingError,
    },
    /// A field's value count does not match its grid.
    #[error("field of {nx} x {ny} grid points has {found} values (expected {})", nx * ny)]
    FieldSize {
        /// Grid points along x.
        nx: usize,
        /// Grid points along y.
        ny: usize,
        /// Values given.
        found: usize,
    },
    /// An axis range is empty, reversed or not finite.
    #[error("{axis} range [{lo}, {hi}] (expected finite bounds with lo < hi)")]
    BadRange {
        /// `"x"` or `"y"`.
        axis: &'static str,
        /// Lower bound given.
        lo: f64,
        /// Upper bound given.
        hi: f64,
    },
}

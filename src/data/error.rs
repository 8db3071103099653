//! The error type of data loading and writing: every variant names the file and what was expected.

use std::path::PathBuf;

/// A failure to read or write a data file.
///
/// Rows and columns are 1-based; in text files `row` is the line number, so an editor jumps straight to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The operating system refused to read or write the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no data rows.
    #[error("{}: no data rows (expected at least one row of numbers)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A row has a different number of fields than the first data row.
    #[error("{}: row {row} has {found} fields (expected {expected}, like the first data row)", path.display())]
    Ragged {
        /// The file.
        path: PathBuf,
        /// The offending row (line number in text files).
        row: usize,
        /// Fields found on that row.
        found: usize,
        /// Fields on the first data row.
        expected: usize,
    },
    /// A value is NaN or infinite.
    #[error("{}: row {row}, column {column}: value {value} is not finite (expected a finite number)", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The offending row.
        row: usize,
        /// The offending column.
        column: usize,
        /// The value as written in the file (text) or as read (binary).
        value: String,
    },
    /// A value is finite but too large (magnitude above `1e16`) for the f32 arithmetic of training and
    /// evaluation.
    #[error("{}: row {row}, column {column}: value {value} is too large (expected a magnitude at most 1e16, so that f32 arithmetic on it stays finite)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The offending row.
        row: usize,
        /// The offending column.
        column: usize,
        /// The value as written in the file (text) or as read (binary).
        value: String,
    },
    /// A field is not a number.
    #[error("{}: row {row}, column {column}: cannot read {text:?} as a number (expected a decimal number)", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The offending row.
        row: usize,
        /// The offending column.
        column: usize,
        /// The field's text.
        text: String,
    },
    /// An array has a shape the reader cannot use.
    #[error("{}: array of shape {shape:?} (expected {expected})", path.display())]
    BadShape {
        /// The file.
        path: PathBuf,
        /// The shape found.
        shape: Vec<usize>,
        /// What was expected, in words.
        expected: String,
    },
    /// An array has an element type the reader cannot convert.
    #[error("{}: element type {dtype} (expected f32, f64, i32, i64 or u8)", path.display())]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The element type as written in the file.
        dtype: String,
    },
    /// The file's extension names no supported format.
    #[error("{}: unknown file format (expected .npy, .csv, .csv.gz, .tsv, .txt, optionally gzipped)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The points have the wrong dimension for the model or target.
    #[error("{}: points have {found} columns (expected {expected})", path.display())]
    WrongWidth {
        /// The file.
        path: PathBuf,
        /// Columns found.
        found: usize,
        /// Columns expected.
        expected: usize,
    },
    /// Too few rows for what the file is used for (for example a held-out split).
    #[error("{}: {found} rows (expected at least {expected})", path.display())]
    TooFewRows {
        /// The file.
        path: PathBuf,
        /// Rows found.
        found: usize,
        /// Rows needed.
        expected: usize,
    },
    /// A column selection names a column the file does not have.
    #[error("{}: column index {index} selected, but rows have {width} columns (expected an index below {width})", path.display())]
    ColumnOutOfRange {
        /// The file.
        path: PathBuf,
        /// The selected column index (0-based, as given in the selection).
        index: usize,
        /// Columns in the file.
        width: usize,
    },
    /// A `.npy` file whose header cannot be read.
    #[error("{}: invalid .npy header: {problem} (expected a NumPy .npy file)", path.display())]
    NpyHeader {
        /// The file.
        path: PathBuf,
        /// What the header parser reported, on one line.
        problem: String,
    },
    /// The file ends before the data its header announces.
    #[error("{}: {found} data bytes, but the header announces {expected} (file truncated?)", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Data bytes present.
        found: u64,
        /// Data bytes announced.
        expected: u64,
    },
}

impl DataError {
    /// Wraps an I/O error with the file it concerns.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    /// The error of a parsed value that is not finite ([`DataError::NonFinite`]) or too large
    /// ([`DataError::TooLarge`]), if it is either; `text` is how the file writes it.
    pub(crate) fn out_of_range(
        value: f64,
        path: &std::path::Path,
        row: usize,
        column: usize,
        text: &str,
    ) -> Option<Self> {
        let (path, value_text) = (path.to_path_buf(), quoted(text));
        if !value.is_finite() {
            Some(Self::NonFinite { path, row, column, value: value_text })
        } else if value.abs() > super::MAX_ABS_VALUE {
            Some(Self::TooLarge { path, row, column, value: value_text })
        } else {
            None
        }
    }
}

/// At most the first 80 characters of a field, for an error message (`...` marks a cut).
pub fn quoted(text: &str) -> String {
    const LIMIT: usize = 80;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

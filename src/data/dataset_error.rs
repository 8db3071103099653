//! Why a named data set could not be found, fetched, verified or read: every variant names the file or
//! the places looked in, and what was expected.

use super::dataset::Dataset;
use std::path::PathBuf;

/// A failure of a named data set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// No copy of the set in any of the places looked in.
    #[error("data set {dataset} not found (looked in {looked}); get it with `tweedie data fetch {dataset}{dir_flag}`")]
    NotFound {
        /// The set.
        dataset: Dataset,
        /// Every place looked in, in order, each with why it was looked in.
        looked: String,
        /// ` --data-dir DIR` when a data directory was given explicitly, else empty.
        dir_flag: String,
    },
    /// A file's content has another checksum than the catalogue's.
    #[error("{}: sha256 of the content is {found} with {bytes} bytes (expected {expected} with {expected_bytes} bytes for {dataset})", path.display())]
    ChecksumMismatch {
        /// The set.
        dataset: Dataset,
        /// The file (or the URL it came from).
        path: PathBuf,
        /// The checksum found.
        found: String,
        /// Bytes of content found.
        bytes: u64,
        /// The catalogue's checksum.
        expected: String,
        /// The catalogue's byte count.
        expected_bytes: u64,
    },
    /// A download failed (HTTP status, connection, truncated transfer).
    #[error("{url}: download failed: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A data file whose content is not what the set needs (an IDX file with a bad header or length,
    /// a digits table of another shape).
    #[error("{}: {problem} (expected {expected})", path.display())]
    BadContent {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// What the reader needs.
        expected: String,
    },
    /// Reading or writing a file of the data directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `uci:` name that is not `uci:redwine`, `uci:whitewine` or `uci:parkinsons`.
    #[error("unknown UCI target `{spec}` (expected uci:redwine, uci:whitewine or uci:parkinsons, optionally =PATH)")]
    UnknownUci {
        /// The spec as given.
        spec: String,
    },
    /// A UCI file whose header differs from the data set's.
    #[error("{}: header has columns [{found}] (expected the {dataset} columns [{expected}])", path.display())]
    WrongColumns {
        /// The data set.
        dataset: super::uci::UciDataset,
        /// The file.
        path: PathBuf,
        /// The columns found, comma-separated.
        found: String,
        /// The columns expected, comma-separated.
        expected: String,
    },
    /// A kept UCI column takes a single value, so it cannot be dequantised or whitened.
    #[error("{}: column `{column}` is constant (expected at least two distinct values)", path.display())]
    ConstantColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// Too few rows for the UCI splits.
    #[error("{}: {rows} rows (expected at least 30 for test, validation and training splits)", path.display())]
    TooFewRows {
        /// The file.
        path: PathBuf,
        /// Rows read.
        rows: usize,
    },
    /// A data file of the set that cannot be read as a table.
    #[error(transparent)]
    Data(#[from] super::DataError),
}

impl DatasetError {
    /// Wraps an I/O error with the file it concerns.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

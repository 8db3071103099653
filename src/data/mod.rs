//! Data files: point clouds from CSV/NPY, arrays to NPY, the atomic write and the output guard every
//! output goes through, and the UCI density-estimation datasets.

mod atomic;
mod csv;
mod error;
mod npy;
mod output_guard;
mod points;
mod uci;

/// The largest magnitude a data value may have: training and evaluation compute in f32, where a squared
/// norm of points with up to 10^6 coordinates of magnitude 1e16 (10^38) still fits (f32 reaches 3.4e38);
/// finiteness alone is checked in f64 and would pass 1e39, which is infinite in f32.
pub const MAX_ABS_VALUE: f64 = 1e16;

pub use atomic::write_atomic;
pub use csv::{read_csv, Columns, CsvOptions};
pub use error::{quoted, DataError};
pub use npy::{read_npy, write_npy};
pub use output_guard::{claim_output, lock_path, OutputClaim, OutputError};
pub use points::{expect_width, load_points, load_points_with, PointFormat};
pub use uci::{
    drop_correlated, load_uci, UciData, UciDataset, UciError, UciSpec, Whitening, CORRELATION_THRESHOLD,
    UCI_HELP,
};

//! Data files: point clouds from CSV/NPY, arrays to NPY, and the atomic write every output goes through.

mod atomic;
mod csv;
mod error;
mod npy;
mod points;

pub use atomic::write_atomic;
pub use csv::{read_csv, Columns, CsvOptions};
pub use error::DataError;
pub use npy::{read_npy, write_npy};
pub use points::{expect_width, load_points, load_points_with, PointFormat};

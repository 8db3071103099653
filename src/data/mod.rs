//! Data: point clouds from CSV/NPY, arrays to NPY, the atomic write and the output guard every output
//! goes through, and the named data sets (a catalogue with checksums, the data directory, downloads, IDX
//! images, the UCI density-estimation sets).

mod atomic;
mod csv;
mod dataset;
mod dataset_error;
mod error;
mod fetch;
mod idx;
mod image_set;
mod image_spec;
mod locate;
mod npy;
mod output_guard;
mod points;
mod source;
mod subset;
mod uci;
mod verify;

/// The largest magnitude a data value may have: training and evaluation compute in f32, where a squared
/// norm of points with up to 10^6 coordinates of magnitude 1e16 (10^38) still fits (f32 reaches 3.4e38);
/// finiteness alone is checked in f64 and would pass 1e39, which is infinite in f32.
pub const MAX_ABS_VALUE: f64 = 1e16;

pub use atomic::write_atomic;
pub use csv::{read_csv, read_csv_from, Columns, CsvOptions};
pub use dataset::{Dataset, DatasetFile, UnknownDataset};
pub use dataset_error::DatasetError;
pub use error::{quoted, DataError};
pub use fetch::{fetch_dataset, FetchProgress};
pub use idx::{read_idx, IdxArray, MAX_IDX_BYTES};
pub use image_set::{load_image_set, ImageSet, Split, PIXEL_SCALING};
pub use image_spec::ImageSpec;
pub use locate::{locate_dataset, DataDir, DataDirOrigin, Found, LocatedDataset, DATA_DIR_ENV};
pub use npy::{read_npy, write_npy};
pub use output_guard::{claim_output, lock_path, OutputClaim, OutputError};
pub use points::{expect_width, load_points, load_points_with, PointFormat};
pub(crate) use source::sha256_hex;
pub use source::{content_sha256, DataSource};
pub use subset::Subset;
pub use uci::{
    drop_correlated, load_uci, UciData, UciDataset, UciError, UciSpec, Whitening, CORRELATION_THRESHOLD,
};
pub use verify::{verify_dataset, FileStatus};

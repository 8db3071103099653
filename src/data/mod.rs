//! Data: point clouds from CSV/NPY, arrays to NPY, the atomic write every output goes through, and the
//! named data sets (a catalogue with checksums, the data directory, downloads, IDX images, the UCI
//! density-estimation sets).

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
mod points;
mod source;
mod subset;
mod uci;
mod verify;

pub use atomic::write_atomic;
pub use csv::{read_csv, read_csv_from, Columns, CsvOptions};
pub use dataset::{Dataset, DatasetFile, UnknownDataset};
pub use dataset_error::DatasetError;
pub use error::DataError;
pub use fetch::{fetch_dataset, FetchProgress};
pub use idx::{read_idx, IdxArray, MAX_IDX_BYTES};
pub use image_set::{load_image_set, ImageSet, Split, PIXEL_SCALING};
pub use image_spec::ImageSpec;
pub use locate::{locate_dataset, DataDir, DataDirOrigin, Found, LocatedDataset, DATA_DIR_ENV};
pub use npy::{read_npy, write_npy};
pub use points::{expect_width, load_points, load_points_with, PointFormat};
pub use source::{content_sha256, DataSource};
pub use subset::Subset;
pub use uci::{
    drop_correlated, load_uci, UciData, UciDataset, UciError, UciSpec, Whitening, CORRELATION_THRESHOLD,
    UCI_HELP,
};
pub use verify::{verify_dataset, FileStatus};

//! Data: point clouds from CSV/NPY, arrays to NPY, the atomic write and the output guard every output
//! goes through, and the named data sets (a catalogue with checksums, the data directory, downloads, IDX
//! images, the UCI density-estimation sets).

mod atomic;
mod cifar;
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
mod pixel_range;
#[cfg(feature = "png-images")]
mod png_folder;
mod points;
mod source;
mod subset;
mod uci;
mod verify;

/// The largest magnitude a data value may have: training and evaluation compute in f32, where a squared
/// norm of points with up to 10^6 coordinates of magnitude 1e16 (10^38) still fits (f32 reaches 3.4e38);
/// finiteness alone is checked in f64 and would pass 1e39, which is infinite in f32.
pub(crate) const MAX_ABS_VALUE: f64 = 1e16;

pub(crate) use atomic::write_atomic;
pub(crate) use csv::CsvOptions;
pub use dataset::Dataset;

pub use dataset_error::DatasetError;
pub(crate) use error::quoted;
pub use error::DataError;
pub(crate) use fetch::{fetch_dataset, FetchProgress};

pub(crate) use image_set::{load_image_set, load_image_spec, png_folder_shape, ImageSet, Split};
pub(crate) use image_spec::{ImageSource, ImageSpec};
pub use locate::DataDir;
pub(crate) use locate::Found;
pub(crate) use locate::{locate_dataset, LocatedDataset};
pub use npy::{read_npy, write_npy};
pub(crate) use output_guard::claim_output;
pub use pixel_range::PixelRange;
pub(crate) use points::expect_width;
pub use points::load_points;
pub(crate) use source::sha256_hex;

pub(crate) use subset::Subset;
pub use uci::{UciData, UciSpec, Whitening};

pub(crate) use verify::verify_dataset;

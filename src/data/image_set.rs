//! Image data sets as point clouds: MNIST and Fashion-MNIST (IDX files), the 8 x 8 digits (CSV), CIFAR-10
//! (binary batches) and folders of PNG files, each image a row of `H W C` values, channels-last (pixel
//! `(row, column)` channel `c` at `(row W + column) C + c`), scaled to `[0, 1]` (the scaling of the
//! second-order DSM paper's MNIST experiments, where `sigma = 0.5`), with its label kept beside it.

use super::cifar::{is_extracted_folder, load_cifar10_archive, load_cifar10_folder};
use super::csv::read_csv_from;
use super::dataset::Dataset;
use super::dataset_error::DatasetError;
use super::idx::read_idx;
use super::image_spec::{ImageSource, ImageSpec};
use super::locate::{locate_dataset, DataDir, LocatedDataset};
use super::CsvOptions;
use crate::linalg::Mat;
use std::fmt;
use std::str::FromStr;

/// The 8 x 8 digits have no official split: the last rows are the test split.
const DIGITS_TEST_ROWS: usize = 297;

/// Which part of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images.
    Train,
    /// The test images.
    Test,
}

impl Split {
    /// `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            other => Err(format!("split `{other}` (expected train or test)")),
        }
    }
}

/// Images of one split as rows, with their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Values per pixel: 1 (grey) or 3 (red, green, blue).
    pub channels: usize,
    /// `N x (height width channels)`, row-major channels-last images, values in `[0, 1]` (a model's
    /// [`PixelRange`](super::PixelRange) maps them on).
    pub pixels: Mat<f64>,
    /// The class of each image.
    pub labels: Vec<u8>,
}

/// Loads one split of the images a target names: a catalogued set (found through `data_dir` unless the
/// spec gives a path; a CIFAR-10 path may also be a folder of the extracted batch files) or a folder of
/// PNG files.
///
/// # Errors
/// As [`load_image_set`], [`locate_dataset`], and the PNG folder's errors.
pub fn load_image_spec(spec: &ImageSpec, split: Split, data_dir: &DataDir) -> Result<ImageSet, DatasetError> {
    match &spec.source {
        ImageSource::Catalogue { dataset: Dataset::Cifar10, path: Some(path) }
            if path.is_dir() && is_extracted_folder(path) =>
        {
            load_cifar10_folder(path, split)
        }
        ImageSource::Catalogue { dataset, path } => {
            load_image_set(&locate_dataset(*dataset, path.as_deref(), data_dir)?, split)
        }
        ImageSource::PngFolder(folder) => load_png_split(folder, split),
    }
}

#[cfg(feature = "png-images")]
fn load_png_split(folder: &std::path::Path, split: Split) -> Result<ImageSet, DatasetError> {
    super::png_folder::load_png_folder(folder, split)
}

/// `(height, width, channels)` of the images of a PNG folder, from its first file's header.
///
/// # Errors
/// As [`load_image_spec`] for a PNG folder.
#[cfg(feature = "png-images")]
pub(crate) fn png_folder_shape(folder: &std::path::Path) -> Result<(usize, usize, usize), DatasetError> {
    super::png_folder::png_folder_shape(folder)
}

/// `(height, width, channels)` of the images of a PNG folder: this build has no PNG reader.
///
/// # Errors
/// Always, as [`load_image_spec`] for a PNG folder.
#[cfg(not(feature = "png-images"))]
pub(crate) fn png_folder_shape(folder: &std::path::Path) -> Result<(usize, usize, usize), DatasetError> {
    load_png_split(folder, Split::Train).map(|set| (set.height, set.width, set.channels))
}

#[cfg(not(feature = "png-images"))]
fn load_png_split(folder: &std::path::Path, _split: Split) -> Result<ImageSet, DatasetError> {
    Err(DatasetError::BadContent {
        path: folder.into(),
        problem: "a PNG folder, and this build has no PNG reader".into(),
        expected: "a build with the `png-images` feature (on with the default `cli` feature)".into(),
    })
}

/// Loads one split of an image data set (MNIST, Fashion-MNIST, CIFAR-10 or digits).
///
/// # Errors
/// [`DatasetError::BadContent`] for a malformed IDX file, or label and image counts that differ; the data
/// errors of the digits CSV; [`DatasetError::Io`] for unreadable files.
pub fn load_image_set(located: &LocatedDataset, split: Split) -> Result<ImageSet, DatasetError> {
    match located.dataset {
        Dataset::Digits => load_digits(located, split),
        Dataset::Mnist | Dataset::FashionMnist => load_idx_pair(located, split),
        Dataset::Cifar10 => load_cifar10_archive(&located.files[0], split),
        other => Err(DatasetError::BadContent {
            path: other.name().into(),
            problem: "not an image data set".into(),
            expected: "mnist, fashion-mnist, cifar10 or digits".into(),
        }),
    }
}

/// Images and labels of MNIST-format files (`files` in catalogue order: train images, train labels, test
/// images, test labels).
fn load_idx_pair(located: &LocatedDataset, split: Split) -> Result<ImageSet, DatasetError> {
    let first = match split {
        Split::Train => 0,
        Split::Test => 2,
    };
    let (image_file, label_file) = (&located.files[first], &located.files[first + 1]);
    let images = read_idx(image_file, 3)?;
    let labels = read_idx(label_file, 1)?;
    let (n, height, width) = (images.shape[0], images.shape[1], images.shape[2]);
    if labels.shape[0] != n {
        return Err(DatasetError::BadContent {
            path: label_file.label().into(),
            problem: format!("{} labels", labels.shape[0]),
            expected: format!("one label per image of {} ({n} images)", image_file.label().display()),
        });
    }
    let pixels = Mat::from_vec(n, height * width, images.data.iter().map(|&p| p as f64 / 255.0).collect());
    Ok(ImageSet { height, width, channels: 1, pixels, labels: labels.data })
}

/// The digits CSV: 64 grey levels in `0..=16`, then the label.
fn load_digits(located: &LocatedDataset, split: Split) -> Result<ImageSet, DatasetError> {
    let source = &located.files[0];
    let table = read_csv_from(source, &CsvOptions::default())?;
    let bad = |problem: String| DatasetError::BadContent {
        path: source.label().into(),
        problem,
        expected: "rows of 64 grey levels in 0..=16 and a label in 0..=9".into(),
    };
    if table.cols() != 65 || table.rows() <= DIGITS_TEST_ROWS {
        return Err(bad(format!("a table of {} x {}", table.rows(), table.cols())));
    }
    if let Some(v) = table.as_slice().iter().find(|v| !(0.0..=16.0).contains(*v) || v.fract() != 0.0) {
        return Err(bad(format!("value {v}")));
    }
    let rows = match split {
        Split::Train => 0..table.rows() - DIGITS_TEST_ROWS,
        Split::Test => table.rows() - DIGITS_TEST_ROWS..table.rows(),
    };
    let pick = table.slice_rows(rows.start, rows.end);
    let pixels = Mat::from_fn(pick.rows(), 64, |i, j| pick.at(i, j) / 16.0);
    let labels = (0..pick.rows()).map(|i| pick.at(i, 64) as u8).collect();
    Ok(ImageSet { height: 8, width: 8, channels: 1, pixels, labels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{locate_dataset, DataDir};

    #[test]
    fn shipped_digits_split_into_train_and_test_scaled_to_the_unit_interval() {
        let empty = tempfile::tempdir().unwrap();
        let digits = locate_dataset(Dataset::Digits, None, &DataDir::new(empty.path())).unwrap();
        let train = load_image_set(&digits, Split::Train).unwrap();
        let test = load_image_set(&digits, Split::Test).unwrap();
        assert_eq!((train.pixels.rows(), test.pixels.rows(), train.pixels.cols()), (1500, 297, 64));
        assert_eq!((train.labels.len(), train.height, train.width), (1500, 8, 8));
        let all = train.pixels.as_slice().iter().chain(test.pixels.as_slice());
        let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((lo, hi), (0.0, 1.0), "grey levels 0..16 map onto [0, 1]");
        assert!(train.labels.iter().all(|&l| l <= 9));
        // The first digit of the file is a 0: 5/16 at pixel 2 (its CSV row starts 0,0,5,13,9,1).
        assert_eq!((train.labels[0], train.pixels.at(0, 2)), (0, 5.0 / 16.0));
    }
}

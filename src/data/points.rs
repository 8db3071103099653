//! Loading a point cloud from a file whose format is chosen by its extension, and checking its width.

use super::csv::{read_csv, CsvOptions};
use super::error::DataError;
use super::npy::read_npy;
use crate::linalg::Mat;
use std::path::Path;

/// The file formats [`load_points`] recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointFormat {
    /// NumPy `.npy`.
    Npy,
    /// A numeric text table: `.csv`, `.tsv`, `.txt`, each optionally followed by `.gz`.
    Text,
}

impl PointFormat {
    /// The format named by the extension of `path` (case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".npy") {
            Some(Self::Npy)
        } else if [".csv", ".tsv", ".txt"].iter().any(|ext| name.ends_with(ext)) {
            Some(Self::Text)
        } else {
            None
        }
    }
}

/// Loads an `N x D` point cloud (one point per row) from `.npy`, `.csv`, `.csv.gz`, `.tsv` or `.txt`.
///
/// All values are checked finite, rows equally long and the file non-empty; see [`read_npy`] and
/// `read_csv` (`src/data/csv.rs`) for the details of each format.
///
/// # Errors
/// [`DataError::UnknownFormat`] for another extension, and every error of the format's reader.
pub fn load_points(path: &Path) -> Result<Mat<f64>, DataError> {
    load_points_with(path, &CsvOptions::default())
}

/// [`load_points`] with column selection for text tables (ignored for `.npy`).
pub fn load_points_with(path: &Path, options: &CsvOptions) -> Result<Mat<f64>, DataError> {
    match PointFormat::from_path(path) {
        Some(PointFormat::Npy) => read_npy(path),
        Some(PointFormat::Text) => read_csv(path, options),
        None => Err(DataError::UnknownFormat { path: path.to_path_buf() }),
    }
}

/// Checks that `points` has `d` columns, naming `path` in the error otherwise.
///
/// # Errors
/// [`DataError::WrongWidth`] with the width found and expected.
pub fn expect_width(points: &Mat<f64>, path: &Path, d: usize) -> Result<(), DataError> {
    if points.cols() == d {
        Ok(())
    } else {
        Err(DataError::WrongWidth { path: path.to_path_buf(), found: points.cols(), expected: d })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::write_npy;

    #[test]
    fn extension_picks_the_format() {
        assert_eq!(PointFormat::from_path(Path::new("a/x.npy")), Some(PointFormat::Npy));
        for name in ["x.csv", "x.CSV", "x.csv.gz", "x.tsv", "x.txt", "dir.v2/x.txt.gz"] {
            assert_eq!(PointFormat::from_path(Path::new(name)), Some(PointFormat::Text), "{name}");
        }
        for name in ["x.json", "x", "x.gz", "csv"] {
            assert_eq!(PointFormat::from_path(Path::new(name)), None, "{name}");
        }
    }

    #[test]
    fn npy_and_text_files_load_the_same_points() {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("p.npy");
        let tsv = dir.path().join("p.tsv");
        write_npy(&npy, &[2, 3], &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        std::fs::write(&tsv, "a\tb\tc\n1\t2\t3\n4\t5\t6.5\n").unwrap();
        let a = load_points(&npy).unwrap();
        let b = load_points(&tsv).unwrap();
        assert_eq!(a, b);
        assert_eq!((a.rows(), a.cols()), (2, 3));
    }

    #[test]
    fn unknown_extension_and_wrong_width_are_reported() {
        let err = load_points(Path::new("points.json")).unwrap_err();
        assert!(matches!(&err, DataError::UnknownFormat { path } if path == Path::new("points.json")));
        let x = Mat::<f64>::zeros(4, 3);
        let err = expect_width(&x, Path::new("points.csv"), 2).unwrap_err();
        assert!(matches!(err, DataError::WrongWidth { found: 3, expected: 2, .. }));
        assert_eq!(err.to_string(), "points.csv: points have 3 columns (expected 2)");
        assert!(expect_width(&x, Path::new("points.csv"), 3).is_ok());
    }

    #[test]
    fn column_selection_applies_to_text_files() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("uci.csv");
        std::fs::write(&csv, "1,2,a\n3,4,b\n").unwrap();
        let opts = CsvOptions { columns: crate::data::csv::Columns::Keep(vec![0, 1]) };
        let x = load_points_with(&csv, &opts).unwrap();
        assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
        // Without the selection the first line is data (it has numbers) and its label is an error.
        assert!(matches!(load_points(&csv).unwrap_err(), DataError::Parse { row: 1, column: 3, .. }));
    }

    #[test]
    fn load_points_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.txt");
        std::fs::write(&path, "0 1\n2 3\n4 5\n").unwrap();
        let x = crate::data::load_points(&path).unwrap();
        assert_eq!((x.rows(), x.cols()), (3, 2));
        crate::data::expect_width(&x, &path, 2).unwrap();
    }
}

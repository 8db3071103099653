//! Where named data sets are found. The order (`docs/data.md`):
//! 1. an explicit path (`NAME=PATH` in a target: the file itself, or a folder holding the set's files);
//! 2. the data directory: `--data-dir DIR`, else `$TWEEDIE_DATA`, else the platform cache directory
//!    (`~/.cache/tweedie` on Linux), each holding one folder per set (`DIR/mnist/...`);
//! 3. the copy shipped inside the binary, for the small sets.
//!
//! Files are matched by their published names, with or without `.gz`, and with the `.idx` spelling of
//! IDX names (`train-images.idx3-ubyte.gz`) that some copies use.

use super::dataset::{Dataset, DatasetFile};
use super::dataset_error::DatasetError;
use super::source::DataSource;
use std::path::{Path, PathBuf};

/// The environment variable that sets the data directory.
pub const DATA_DIR_ENV: &str = "TWEEDIE_DATA";

/// Why a data directory is the one in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDirOrigin {
    /// `--data-dir`.
    Flag,
    /// `$TWEEDIE_DATA`.
    Environment,
    /// The platform cache directory.
    Cache,
}

/// The data directory: one folder per data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    path: PathBuf,
    origin: DataDirOrigin,
}

impl DataDir {
    /// A data directory given explicitly.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), origin: DataDirOrigin::Flag }
    }

    /// `flag` if given, else `$TWEEDIE_DATA` if set and not empty, else `<cache dir>/tweedie`
    /// (`<temporary dir>/tweedie-data` on a platform without a cache directory).
    pub fn resolve(flag: Option<&Path>) -> Self {
        if let Some(path) = flag {
            return Self::new(path);
        }
        match std::env::var_os(DATA_DIR_ENV) {
            Some(v) if !v.is_empty() => Self { path: PathBuf::from(v), origin: DataDirOrigin::Environment },
            _ => Self {
                path: dirs::cache_dir()
                    .map_or_else(|| std::env::temp_dir().join("tweedie-data"), |c| c.join("tweedie")),
                origin: DataDirOrigin::Cache,
            },
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why it is the one in use.
    pub fn origin(&self) -> DataDirOrigin {
        self.origin
    }

    /// The folder of one data set.
    pub fn set_folder(&self, dataset: Dataset) -> PathBuf {
        self.path.join(dataset.name())
    }

    /// How messages describe the directory, e.g. `/data/mnist (--data-dir)`.
    fn describe(&self, dataset: Dataset) -> String {
        let why = match self.origin {
            DataDirOrigin::Flag => "--data-dir",
            DataDirOrigin::Environment => "$TWEEDIE_DATA",
            DataDirOrigin::Cache => "the cache directory",
        };
        format!("{} ({why})", self.set_folder(dataset).display())
    }
}

/// Where a set was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// At the explicit path.
    Explicit(PathBuf),
    /// In the data directory's folder for the set.
    DataDir(PathBuf),
    /// Inside the binary.
    Shipped,
}

/// A data set with a source for each of its files, in catalogue order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedDataset {
    /// The set.
    pub dataset: Dataset,
    /// Where it was found.
    pub found: Found,
    /// One source per file of [`Dataset::files`].
    pub files: Vec<DataSource>,
}

/// The names a file may have on disk: as published, with or without `.gz`, and with `.idx` for `-idx`.
fn name_variants(name: &str) -> Vec<String> {
    let base = name.strip_suffix(".gz").unwrap_or(name);
    let mut names = vec![base.to_string(), base.replacen("-idx", ".idx", 1)];
    names.dedup();
    names.into_iter().flat_map(|n| [format!("{n}.gz"), n]).collect()
}

/// The file of `file` inside `folder`, if there.
fn find_in(folder: &Path, file: &DatasetFile) -> Option<PathBuf> {
    name_variants(file.name).into_iter().map(|n| folder.join(n)).find(|p| p.is_file())
}

/// Every file of `dataset` inside `folder`, or `None` if one is missing.
fn all_in(folder: &Path, dataset: Dataset) -> Option<Vec<DataSource>> {
    dataset.files().iter().map(|f| find_in(folder, f).map(DataSource::File)).collect()
}

/// Finds `dataset`: at `explicit` if given (a file for a one-file set, or a folder), else in the data
/// directory, else shipped.
///
/// # Errors
/// [`DatasetError::NotFound`], naming every place looked in and the fetch command.
pub fn locate_dataset(
    dataset: Dataset,
    explicit: Option<&Path>,
    dir: &DataDir,
) -> Result<LocatedDataset, DatasetError> {
    let located = |found, files| LocatedDataset { dataset, found, files };
    if let Some(path) = explicit {
        if path.is_file() && dataset.files().len() == 1 {
            return Ok(located(Found::Explicit(path.into()), vec![DataSource::File(path.into())]));
        }
        return match all_in(path, dataset) {
            Some(files) => Ok(located(Found::Explicit(path.into()), files)),
            None => Err(not_found(dataset, format!("{} (given explicitly)", path.display()), dir)),
        };
    }
    let folder = dir.set_folder(dataset);
    if let Some(files) = all_in(&folder, dataset) {
        return Ok(located(Found::DataDir(folder), files));
    }
    if dataset.is_shipped() {
        let files = dataset
            .files()
            .iter()
            .map(|f| DataSource::Shipped {
                label: PathBuf::from(format!("<shipped>/{}", f.name)),
                bytes: f.shipped.expect("a shipped set ships every file"),
            })
            .collect();
        return Ok(located(Found::Shipped, files));
    }
    Err(not_found(dataset, dir.describe(dataset), dir))
}

fn not_found(dataset: Dataset, looked: String, dir: &DataDir) -> DatasetError {
    let dir_flag = match dir.origin {
        DataDirOrigin::Flag => format!(" --data-dir {}", dir.path.display()),
        _ => String::new(),
    };
    DatasetError::NotFound { dataset, looked, dir_flag }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_names_match_every_common_spelling() {
        let names = name_variants("train-images-idx3-ubyte.gz");
        for n in [
            "train-images-idx3-ubyte.gz",
            "train-images-idx3-ubyte",
            "train-images.idx3-ubyte.gz",
            "train-images.idx3-ubyte",
        ] {
            assert!(names.iter().any(|v| v == n), "{n} in {names:?}");
        }
        assert_eq!(name_variants("winequality-red.csv"), ["winequality-red.csv.gz", "winequality-red.csv"]);
    }

    #[test]
    fn explicit_path_then_data_dir_then_shipped() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path().join("root"));
        let shipped = locate_dataset(Dataset::UciRedWine, None, &data_dir).unwrap();
        assert_eq!(shipped.found, Found::Shipped);
        let folder = data_dir.set_folder(Dataset::UciRedWine);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("winequality-red.csv"), "x").unwrap();
        let in_dir = locate_dataset(Dataset::UciRedWine, None, &data_dir).unwrap();
        assert_eq!(in_dir.found, Found::DataDir(folder.clone()));
        assert_eq!(in_dir.files, [DataSource::File(folder.join("winequality-red.csv"))]);
        let own = dir.path().join("mine.csv");
        std::fs::write(&own, "y").unwrap();
        let explicit = locate_dataset(Dataset::UciRedWine, Some(&own), &data_dir).unwrap();
        assert_eq!(explicit.files, [DataSource::File(own)]);
        let missing = locate_dataset(Dataset::UciRedWine, Some(&dir.path().join("nope")), &data_dir);
        let msg = missing.unwrap_err().to_string();
        assert!(
            msg.contains("nope (given explicitly)") && msg.contains("tweedie data fetch uci-redwine"),
            "{msg}"
        );
    }

    #[test]
    fn a_set_with_a_missing_file_is_not_found_and_the_message_names_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        let folder = data_dir.set_folder(Dataset::Mnist);
        std::fs::create_dir_all(&folder).unwrap();
        for f in &Dataset::Mnist.files()[..3] {
            std::fs::write(folder.join(f.name), "x").unwrap();
        }
        let msg = locate_dataset(Dataset::Mnist, None, &data_dir).unwrap_err().to_string();
        assert!(msg.contains(&format!("{} (--data-dir)", folder.display())), "{msg}");
        assert!(
            msg.contains(&format!("tweedie data fetch mnist --data-dir {}", dir.path().display())),
            "{msg}"
        );
        std::fs::write(folder.join("t10k-labels.idx1-ubyte"), "x").unwrap();
        assert!(locate_dataset(Dataset::Mnist, None, &data_dir).is_ok(), "an uncompressed .idx copy counts");
    }

    #[test]
    fn locate_dataset_example() {
        use crate::data::{locate_dataset, DataDir, Dataset, Found};
        let empty = tempfile::tempdir().unwrap();
        let wine = locate_dataset(Dataset::UciRedWine, None, &DataDir::new(empty.path())).unwrap();
        assert_eq!(wine.found, Found::Shipped, "the UCI sets work with no set-up");
        let err = locate_dataset(Dataset::Mnist, None, &DataDir::new(empty.path())).unwrap_err();
        assert!(err.to_string().contains("tweedie data fetch mnist --data-dir"));
    }
}

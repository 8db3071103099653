//! The catalogue of named data sets: what each one is, where it comes from, its licence, the files it
//! consists of with the sha256 of their content, and the copy shipped inside the binary where there is
//! one (the small sets: digits and the three UCI files, gzip-compressed, from the repository's `data/`).
//! `docs/data.md` explains how names are resolved to files.

use std::fmt;
use std::str::FromStr;

/// One file of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetFile {
    /// The file name as published (and as stored in the data directory).
    pub name: &'static str,
    /// sha256 of the file's content, decompressed when the file is gzip-compressed, so that a copy
    /// recompressed by a mirror (or stored uncompressed) verifies too; for an archive
    /// ([`DatasetFile::is_archive`]) the sha256 of the bytes as published, the checksum its publishers
    /// and every mirror list.
    pub sha256: &'static str,
    /// Bytes of that content.
    pub content_bytes: u64,
    /// The gzip-compressed copy shipped in the binary, if any.
    pub shipped: Option<&'static [u8]>,
}

impl DatasetFile {
    /// True for a `.tar.gz` archive: checked as the compressed bytes it is published as, and read in
    /// place by its loader.
    pub fn is_archive(&self) -> bool {
        self.name.ends_with(".tar.gz")
    }
}

/// A named data set of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// MNIST handwritten digits, 60000 + 10000 images of 28 x 28.
    Mnist,
    /// Fashion-MNIST, the same layout as MNIST with clothing items.
    FashionMnist,
    /// CIFAR-10, 50000 + 10000 colour images of 32 x 32 in 10 classes (the binary version).
    Cifar10,
    /// The 8 x 8 optical-recognition digits (1797 images, grey levels 0..16), shipped.
    Digits,
    /// UCI Wine Quality, red, shipped.
    UciRedWine,
    /// UCI Wine Quality, white, shipped.
    UciWhiteWine,
    /// UCI Parkinsons Telemonitoring, shipped.
    UciParkinsons,
}

const MNIST_FILES: [DatasetFile; 4] = [
    DatasetFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        content_bytes: 47_040_016,
        shipped: None,
    },
    DatasetFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        content_bytes: 60_008,
        shipped: None,
    },
    DatasetFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        content_bytes: 7_840_016,
        shipped: None,
    },
    DatasetFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        content_bytes: 10_008,
        shipped: None,
    },
];

const FASHION_MNIST_FILES: [DatasetFile; 4] = [
    DatasetFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        content_bytes: 47_040_016,
        shipped: None,
    },
    DatasetFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        content_bytes: 60_008,
        shipped: None,
    },
    DatasetFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        content_bytes: 7_840_016,
        shipped: None,
    },
    DatasetFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        content_bytes: 10_008,
        shipped: None,
    },
];

/// The binary version as published by its authors; the archive-level checksum is the one published
/// (tensorflow-datasets' url_checksums, MLDatasets.jl and torchvision ports list the same sha256 and
/// size); the batch files inside are read from the archive without extracting it.
const CIFAR10_FILES: [DatasetFile; 1] = [DatasetFile {
    name: "cifar-10-binary.tar.gz",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    content_bytes: 170_052_171,
    shipped: None,
}];

const DIGITS_FILES: [DatasetFile; 1] = [DatasetFile {
    name: "digits.csv.gz",
    sha256: "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8",
    content_bytes: 264_712,
    shipped: Some(include_bytes!("../../data/digits.csv.gz")),
}];

const RED_WINE_FILES: [DatasetFile; 1] = [DatasetFile {
    name: "winequality-red.csv",
    sha256: "4a402cf041b025d4566d954c3b9ba8635a3a8a01e039005d97d6a710278cf05e",
    content_bytes: 84_199,
    shipped: Some(include_bytes!("../../data/winequality-red.csv.gz")),
}];

const WHITE_WINE_FILES: [DatasetFile; 1] = [DatasetFile {
    name: "winequality-white.csv",
    sha256: "76c3f809815c17c07212622f776311faeb31e87610d52c26d87d6e361b169836",
    content_bytes: 264_426,
    shipped: Some(include_bytes!("../../data/winequality-white.csv.gz")),
}];

const PARKINSONS_FILES: [DatasetFile; 1] = [DatasetFile {
    name: "parkinsons_updrs.data",
    sha256: "f2c7d5025dec4e92e7feae367a5f7ccf58789a10ac6b54bdf15976c599f9dd39",
    content_bytes: 911_261,
    shipped: Some(include_bytes!("../../data/parkinsons_updrs.data.gz")),
}];

impl Dataset {
    /// Every data set, in the order `tweedie data list` prints them.
    pub const ALL: [Dataset; 7] = [
        Dataset::Mnist,
        Dataset::FashionMnist,
        Dataset::Cifar10,
        Dataset::Digits,
        Dataset::UciRedWine,
        Dataset::UciWhiteWine,
        Dataset::UciParkinsons,
    ];

    /// The name used by `tweedie data` and as the folder in the data directory.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Digits => "digits",
            Dataset::UciRedWine => "uci-redwine",
            Dataset::UciWhiteWine => "uci-whitewine",
            Dataset::UciParkinsons => "uci-parkinsons",
        }
    }

    /// One line on what the set is.
    pub fn description(self) -> &'static str {
        match self {
            Dataset::Mnist => "handwritten digits, 60000 train + 10000 test, 28x28, grey 0..255",
            Dataset::FashionMnist => "clothing items, 60000 train + 10000 test, 28x28, grey 0..255",
            Dataset::Cifar10 => "colour images in 10 classes, 50000 train + 10000 test, 32x32 RGB 0..255",
            Dataset::Digits => "8x8 handwritten digits, 1797 images, grey 0..16, with labels",
            Dataset::UciRedWine => "Wine Quality (red): 1599 rows, 11 inputs + quality",
            Dataset::UciWhiteWine => "Wine Quality (white): 4898 rows, 11 inputs + quality",
            Dataset::UciParkinsons => "Parkinsons Telemonitoring: 5875 rows, 22 columns",
        }
    }

    /// The licence of the data.
    pub fn licence(self) -> &'static str {
        match self {
            Dataset::Mnist => "CC BY-SA 3.0 (LeCun, Cortes, Burges)",
            Dataset::FashionMnist => "MIT (Zalando Research)",
            Dataset::Cifar10 => "no licence stated; cite Krizhevsky (2009), Learning Multiple Layers of Features from Tiny Images",
            Dataset::Digits | Dataset::UciRedWine | Dataset::UciWhiteWine | Dataset::UciParkinsons => {
                "CC BY 4.0 (UCI Machine Learning Repository)"
            }
        }
    }

    /// The base URLs its files are downloaded from, tried in order (`{base}/{file}`).
    pub fn sources(self) -> &'static [&'static str] {
        match self {
            // The original host often refuses scripted downloads; the mirror used by torchvision first.
            Dataset::Mnist => {
                &["https://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist"]
            }
            Dataset::FashionMnist => &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"],
            Dataset::Cifar10 => &["https://www.cs.toronto.edu/~kriz"],
            Dataset::Digits => {
                &["https://raw.githubusercontent.com/scikit-learn/scikit-learn/main/sklearn/datasets/data"]
            }
            Dataset::UciRedWine | Dataset::UciWhiteWine => {
                &["https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality"]
            }
            Dataset::UciParkinsons => {
                &["https://archive.ics.uci.edu/ml/machine-learning-databases/parkinsons/telemonitoring"]
            }
        }
    }

    /// The files of the set.
    pub fn files(self) -> &'static [DatasetFile] {
        match self {
            Dataset::Mnist => &MNIST_FILES,
            Dataset::FashionMnist => &FASHION_MNIST_FILES,
            Dataset::Cifar10 => &CIFAR10_FILES,
            Dataset::Digits => &DIGITS_FILES,
            Dataset::UciRedWine => &RED_WINE_FILES,
            Dataset::UciWhiteWine => &WHITE_WINE_FILES,
            Dataset::UciParkinsons => &PARKINSONS_FILES,
        }
    }

    /// True when every file has a copy inside the binary (the set works with no set-up).
    pub fn is_shipped(self) -> bool {
        self.files().iter().all(|f| f.shipped.is_some())
    }

    /// Total bytes of the files' content.
    pub fn content_bytes(self) -> u64 {
        self.files().iter().map(|f| f.content_bytes).sum()
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not in the catalogue.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown data set `{0}` (expected one of mnist, fashion-mnist, cifar10, digits, uci-redwine, uci-whitewine, uci-parkinsons)")]
pub struct UnknownDataset(pub String);

impl FromStr for Dataset {
    type Err = UnknownDataset;

    fn from_str(s: &str) -> Result<Self, UnknownDataset> {
        let wanted = s.trim().to_ascii_lowercase();
        Dataset::ALL.into_iter().find(|d| d.name() == wanted).ok_or_else(|| UnknownDataset(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::source::content_sha256;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_catalogue() {
        for d in Dataset::ALL {
            assert_eq!(d.name().parse::<Dataset>(), Ok(d));
        }
        let err = "cifar".parse::<Dataset>().unwrap_err().to_string();
        for d in Dataset::ALL {
            assert!(err.contains(d.name()), "{err}");
        }
    }

    #[test]
    fn shipped_copies_have_the_catalogued_content() {
        for d in Dataset::ALL.into_iter().filter(|d| d.is_shipped()) {
            for file in d.files() {
                let (hash, bytes) = content_sha256(file.shipped.unwrap()).unwrap();
                assert_eq!((hash.as_str(), bytes), (file.sha256, file.content_bytes), "{d}/{}", file.name);
            }
        }
        assert!(!Dataset::Mnist.is_shipped() && Dataset::UciParkinsons.is_shipped());
    }
}

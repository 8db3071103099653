//! Image-set targets: `mnist[:train|test][=PATH]`, `fashion-mnist[...]`, `cifar10[...]`, `digits[...]`
//! (the split trained on, the other one held out; `PATH` a folder with the set's files, or the digits
//! file or CIFAR-10 archive, or a folder of the extracted CIFAR-10 batches), and `images:DIR` (a folder
//! of same-size PNG files; the last tenth in file-name order is the test split).

use super::dataset::Dataset;
use super::image_set::Split;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the images of a target come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A set of the catalogue: MNIST, Fashion-MNIST, CIFAR-10 or digits.
    Catalogue {
        /// The set.
        dataset: Dataset,
        /// Where its files are, if given explicitly (else found through the data directory).
        path: Option<PathBuf>,
    },
    /// A folder of PNG files.
    PngFolder(PathBuf),
}

/// A parsed image-set target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// The catalogued set, or a PNG folder.
    pub source: ImageSource,
    /// The split whose images are the data (default: train).
    pub split: Split,
}

impl ImageSpec {
    /// True when `spec` names an image set (its family is `mnist`, `fashion-mnist`, `cifar10`, `digits`
    /// or `images`).
    pub fn matches(spec: &str) -> bool {
        let family = spec.split(['=', ':']).next().unwrap_or_default().trim();
        ["mnist", "fashion-mnist", "cifar10", "digits", "images"].contains(&family)
    }

    /// The catalogued set, if the images come from one.
    pub fn dataset(&self) -> Option<Dataset> {
        match self.source {
            ImageSource::Catalogue { dataset, .. } => Some(dataset),
            ImageSource::PngFolder(_) => None,
        }
    }
}

impl fmt::Display for ImageSpec {
    /// The canonical form; the split is always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            ImageSource::Catalogue { dataset, path } => {
                write!(f, "{dataset}:{}", self.split)?;
                if let Some(path) = path {
                    write!(f, "={}", path.display())?;
                }
                Ok(())
            }
            ImageSource::PngFolder(folder) => write!(f, "images:{}", folder.display()),
        }
    }
}

impl FromStr for ImageSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "(expected mnist, fashion-mnist, cifar10 or digits, then optionally :train or :test, then optionally =PATH; or images:DIR)";
        if let Some(folder) = s.strip_prefix("images:") {
            if folder.trim().is_empty() {
                return Err(format!("target `{s}`: empty DIR after `images:` {expected}"));
            }
            return Ok(Self {
                source: ImageSource::PngFolder(PathBuf::from(folder.trim())),
                split: Split::Train,
            });
        }
        let (name, path) = match s.split_once('=') {
            Some((name, path)) if !path.trim().is_empty() => (name, Some(PathBuf::from(path.trim()))),
            Some(_) => return Err(format!("target `{s}`: empty PATH after `=` {expected}")),
            None => (s, None),
        };
        let (family, split) = match name.split_once(':') {
            Some((family, split)) => (family, split.parse().map_err(|e| format!("target `{s}`: {e}"))?),
            None => (name, Split::Train),
        };
        let dataset = match family.trim() {
            "mnist" => Dataset::Mnist,
            "fashion-mnist" => Dataset::FashionMnist,
            "cifar10" => Dataset::Cifar10,
            "digits" => Dataset::Digits,
            _ => return Err(format!("unknown image set in `{s}` {expected}")),
        };
        Ok(Self { source: ImageSource::Catalogue { dataset, path }, split })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_canonically() {
        for (text, dataset, split, path, canonical) in [
            ("mnist", Dataset::Mnist, Split::Train, None, "mnist:train"),
            ("mnist:test", Dataset::Mnist, Split::Test, None, "mnist:test"),
            ("fashion-mnist=/d", Dataset::FashionMnist, Split::Train, Some("/d"), "fashion-mnist:train=/d"),
            (
                "digits:test=/x/d.csv.gz",
                Dataset::Digits,
                Split::Test,
                Some("/x/d.csv.gz"),
                "digits:test=/x/d.csv.gz",
            ),
            ("cifar10:test", Dataset::Cifar10, Split::Test, None, "cifar10:test"),
        ] {
            let spec: ImageSpec = text.parse().unwrap();
            assert_eq!(spec.source, ImageSource::Catalogue { dataset, path: path.map(PathBuf::from) });
            assert_eq!((spec.dataset(), spec.split), (Some(dataset), split));
            assert_eq!(spec.to_string(), canonical);
            assert_eq!(canonical.parse::<ImageSpec>().unwrap(), spec);
            assert!(ImageSpec::matches(text));
        }
        let folder: ImageSpec = "images:/my/pngs".parse().unwrap();
        assert_eq!(folder.source, ImageSource::PngFolder(PathBuf::from("/my/pngs")));
        assert_eq!(folder.to_string(), "images:/my/pngs");
        assert!(ImageSpec::matches("images:/my/pngs"));
        for bad in ["mnist:val", "mnist=", "kmnist", "images:"] {
            assert!(bad.parse::<ImageSpec>().is_err(), "{bad}");
        }
        assert!(!ImageSpec::matches("gmm:dim=2") && !ImageSpec::matches("uci:redwine"));
    }
}

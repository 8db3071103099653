//! Image-set targets: `mnist[:train|test][=PATH]`, `fashion-mnist[...]`, `digits[...]` (the split
//! trained on, the other one held out; `PATH` a folder with the set's files, or the digits file).

use super::dataset::Dataset;
use super::image_set::Split;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed image-set target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// MNIST, Fashion-MNIST or digits.
    pub dataset: Dataset,
    /// The split whose images are the data (default: train).
    pub split: Split,
    /// Where the files are, if given explicitly.
    pub path: Option<PathBuf>,
}

impl ImageSpec {
    /// True when `spec` names an image set (its family is `mnist`, `fashion-mnist` or `digits`).
    pub fn matches(spec: &str) -> bool {
        let family = spec.split(['=', ':']).next().unwrap_or_default().trim();
        ["mnist", "fashion-mnist", "digits"].contains(&family)
    }
}

impl fmt::Display for ImageSpec {
    /// The canonical form; the split is always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dataset, self.split)?;
        if let Some(path) = &self.path {
            write!(f, "={}", path.display())?;
        }
        Ok(())
    }
}

impl FromStr for ImageSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "(expected mnist, fashion-mnist or digits, then optionally :train or :test, then optionally =PATH)";
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
            "digits" => Dataset::Digits,
            _ => return Err(format!("unknown image set in `{s}` {expected}")),
        };
        Ok(Self { dataset, split, path })
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
        ] {
            let spec: ImageSpec = text.parse().unwrap();
            assert_eq!(
                (spec.dataset, spec.split, spec.path.clone()),
                (dataset, split, path.map(PathBuf::from))
            );
            assert_eq!(spec.to_string(), canonical);
            assert_eq!(canonical.parse::<ImageSpec>().unwrap(), spec);
            assert!(ImageSpec::matches(text));
        }
        for bad in ["mnist:val", "mnist=", "kmnist"] {
            assert!(bad.parse::<ImageSpec>().is_err(), "{bad}");
        }
        assert!(!ImageSpec::matches("gmm:dim=2") && !ImageSpec::matches("uci:redwine"));
    }
}

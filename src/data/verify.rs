//! Checking a data set's files against the catalogue: the sha256 and byte count of each file's content.

use super::dataset::{Dataset, DatasetFile};
use super::dataset_error::DatasetError;
use super::locate::LocatedDataset;
use super::source::{content_sha256, sha256_hex, DataSource};
use std::path::Path;

/// The outcome of checking one file.
#[derive(Debug)]
pub struct FileStatus {
    /// The file checked.
    pub source: DataSource,
    /// `Ok` when its content matches the catalogue.
    pub outcome: Result<(), DatasetError>,
}

/// Checks the content of `file` of `dataset`, read from `source`; `named` names it in the error (a path,
/// or the URL it was downloaded from).
pub(crate) fn check_file(
    dataset: Dataset,
    file: &DatasetFile,
    source: &DataSource,
    named: &Path,
) -> Result<(), DatasetError> {
    let io = |e| DatasetError::io(named, e);
    let (found, bytes) = match source {
        DataSource::File(path) if file.is_archive() => {
            sha256_hex(std::fs::File::open(path).map_err(io)?).map_err(io)?
        }
        _ => content_sha256(source.open().map_err(io)?).map_err(io)?,
    };
    if found == file.sha256 && bytes == file.content_bytes {
        Ok(())
    } else {
        Err(DatasetError::ChecksumMismatch {
            dataset,
            path: named.into(),
            found,
            bytes,
            expected: file.sha256.into(),
            expected_bytes: file.content_bytes,
        })
    }
}

/// Checks every file of a located data set.
pub fn verify_dataset(located: &LocatedDataset) -> Vec<FileStatus> {
    located
        .dataset
        .files()
        .iter()
        .zip(&located.files)
        .map(|(file, source)| FileStatus {
            source: source.clone(),
            outcome: check_file(located.dataset, file, source, source.label()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{locate_dataset, DataDir};

    #[test]
    fn a_changed_byte_fails_and_the_message_names_both_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        let folder = data_dir.set_folder(Dataset::UciRedWine);
        std::fs::create_dir_all(&folder).unwrap();
        let file = &Dataset::UciRedWine.files()[0];
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut DataSource::Shipped { label: "x".into(), bytes: file.shipped.unwrap() }.open().unwrap(),
            &mut text,
        )
        .unwrap();
        std::fs::write(folder.join(file.name), &text).unwrap();
        let located = locate_dataset(Dataset::UciRedWine, None, &data_dir).unwrap();
        assert!(verify_dataset(&located)[0].outcome.is_ok(), "an uncompressed exact copy verifies");
        let last = text.len() - 2;
        text[last] = b'9';
        std::fs::write(folder.join(file.name), &text).unwrap();
        let msg = verify_dataset(&located).remove(0).outcome.unwrap_err().to_string();
        assert!(
            msg.contains(file.sha256) && msg.contains("winequality-red.csv") && msg.contains("84199 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn verify_dataset_example() {
        use crate::data::{locate_dataset, verify_dataset, DataDir, Dataset};
        let empty = tempfile::tempdir().unwrap();
        let digits = locate_dataset(Dataset::Digits, None, &DataDir::new(empty.path())).unwrap();
        assert!(verify_dataset(&digits).iter().all(|f| f.outcome.is_ok()), "the shipped copy verifies");
    }
}

#[cfg(test)]
mod archive_tests {
    use super::*;
    use crate::data::source::sha256_hex;
    use crate::data::{locate_dataset, DataDir};

    #[test]
    fn archives_are_checked_as_the_compressed_bytes_they_are_published_as() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        let folder = data_dir.set_folder(Dataset::Cifar10);
        std::fs::create_dir_all(&folder).unwrap();
        let file = &Dataset::Cifar10.files()[0];
        assert!(file.is_archive());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"not the archive").unwrap();
        let bytes = gz.finish().unwrap();
        std::fs::write(folder.join(file.name), &bytes).unwrap();
        let located = locate_dataset(Dataset::Cifar10, None, &data_dir).unwrap();
        let msg = verify_dataset(&located).remove(0).outcome.unwrap_err().to_string();
        let (raw, n) = sha256_hex(bytes.as_slice()).unwrap();
        assert!(msg.contains(&raw) && msg.contains(&format!("{n} bytes")), "{msg}");
        assert!(msg.contains(file.sha256) && msg.contains("170052171 bytes"), "{msg}");
    }
}

//! The CIFAR-10 binary format: batches of records of 1 label byte and 3072 pixel bytes (the red, green
//! and blue planes of a 32 x 32 image, each row-major), read from the published archive
//! `cifar-10-binary.tar.gz` in place or from a folder of its extracted batch files, and turned into
//! channels-last rows (`(row, column, channel)`, the channel fastest) scaled to `[0, 1]`.

use super::dataset_error::DatasetError;
use super::image_set::{ImageSet, Split};
use super::source::DataSource;
use crate::linalg::Mat;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Image side in pixels.
const SIDE: usize = 32;
/// Colour channels.
const CHANNELS: usize = 3;
/// Bytes of one record: the label, then the three planes.
const RECORD: usize = 1 + SIDE * SIDE * CHANNELS;

/// The batch files of a split, in the order their images are concatenated.
pub(crate) fn batch_names(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &[
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
        ],
        Split::Test => &["test_batch.bin"],
    }
}

/// Records of CIFAR-10 binary batches to an image set; `named` names the file in errors.
fn decode(batches: &[(String, Vec<u8>)]) -> Result<ImageSet, DatasetError> {
    let n: usize = batches.iter().map(|(_, b)| b.len() / RECORD).sum();
    let (mut pixels, mut labels) = (Vec::with_capacity(n * (RECORD - 1)), Vec::with_capacity(n));
    for (named, bytes) in batches {
        let bad = |problem: String| DatasetError::BadContent {
            path: named.into(),
            problem,
            expected: format!(
                "CIFAR-10 binary records of {RECORD} bytes (a label 0..=9, then 3072 pixel bytes)"
            ),
        };
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(bad(format!("{} bytes", bytes.len())));
        }
        for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
            if record[0] > 9 {
                return Err(bad(format!("label {} in record {i}", record[0])));
            }
            labels.push(record[0]);
            let planes = &record[1..];
            for p in 0..SIDE * SIDE {
                pixels.extend((0..CHANNELS).map(|c| f64::from(planes[c * SIDE * SIDE + p]) / 255.0));
            }
        }
    }
    let pixels = Mat::from_vec(labels.len(), SIDE * SIDE * CHANNELS, pixels);
    Ok(ImageSet { height: SIDE, width: SIDE, channels: CHANNELS, pixels, labels })
}

/// One split read from the archive `cifar-10-binary.tar.gz` (a gzip-compressed tar whose batch files
/// lie in `cifar-10-batches-bin/`), streamed: nothing is extracted to disk.
///
/// # Errors
/// [`DatasetError::Io`] for an unreadable or malformed archive, [`DatasetError::BadContent`] for a
/// missing batch file or malformed records.
pub(crate) fn load_cifar10_archive(source: &DataSource, split: Split) -> Result<ImageSet, DatasetError> {
    let archive = source.label();
    let io = |e| DatasetError::io(archive, e);
    let wanted = batch_names(split);
    let mut found = BTreeMap::new();
    // `open` undoes the gzip layer; the tar entries are read from the stream in place.
    let mut tar = tar::Archive::new(source.open().map_err(io)?);
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).filter(|n| wanted.contains(n)) else {
            continue;
        };
        let name = name.to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(io)?;
        found.insert(name, (format!("{}:{}", archive.display(), path.display()), bytes));
    }
    let batches = wanted
        .iter()
        .map(|name| {
            found.remove(*name).ok_or_else(|| DatasetError::BadContent {
                path: archive.into(),
                problem: format!("no {name} inside"),
                expected: format!("the CIFAR-10 binary archive with {}", wanted.join(", ")),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    decode(&batches)
}

/// One split read from a folder holding the extracted batch files (or their `cifar-10-batches-bin`
/// folder).
///
/// # Errors
/// [`DatasetError::Io`] naming a missing or unreadable batch file, [`DatasetError::BadContent`] for
/// malformed records.
pub(crate) fn load_cifar10_folder(folder: &Path, split: Split) -> Result<ImageSet, DatasetError> {
    let inner = folder.join("cifar-10-batches-bin");
    let folder = if inner.is_dir() { inner } else { folder.to_path_buf() };
    let batches = batch_names(split)
        .iter()
        .map(|name| {
            let path = folder.join(name);
            let bytes = std::fs::read(&path).map_err(|e| DatasetError::io(&path, e))?;
            Ok((path.display().to_string(), bytes))
        })
        .collect::<Result<Vec<_>, DatasetError>>()?;
    decode(&batches)
}

/// True when `folder` holds the extracted batch files (directly or in `cifar-10-batches-bin/`).
pub(crate) fn is_extracted_folder(folder: &Path) -> bool {
    [folder.to_path_buf(), folder.join("cifar-10-batches-bin")]
        .iter()
        .any(|f| f.join("test_batch.bin").is_file())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs::File;

    /// `n` records whose label is `(seed + i) % 10` and whose pixel byte at plane `c`, position `p` is
    /// `(seed + 7 i + 3 c + p) % 256`.
    pub(crate) fn records(n: usize, seed: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * RECORD);
        for i in 0..n {
            out.push(((seed + i) % 10) as u8);
            for c in 0..CHANNELS {
                out.extend((0..SIDE * SIDE).map(|p| ((seed + 7 * i + 3 * c + p) % 256) as u8));
            }
        }
        out
    }

    /// Writes a gzip-compressed tar holding `cifar-10-batches-bin/{name}` for every batch.
    fn write_archive(path: &Path, batches: &[(&str, Vec<u8>)]) {
        let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in batches {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, format!("cifar-10-batches-bin/{name}"), bytes.as_slice()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }

    fn check_channels_last(set: &ImageSet, first_seed: usize) {
        assert_eq!((set.height, set.width, set.channels, set.pixels.cols()), (32, 32, 3, 3072));
        // Image 1 of the first batch, pixel (row 2, column 5) = plane position 69, green channel:
        // byte (seed + 7 + 3 + 69) % 256, at column (2 * 32 + 5) * 3 + 1.
        let want = ((first_seed + 7 + 3 + 69) % 256) as f64 / 255.0;
        assert_eq!(set.pixels.at(1, 69 * 3 + 1), want);
        assert_eq!(set.labels[1] as usize, (first_seed + 1) % 10);
    }

    #[test]
    fn archives_and_extracted_folders_give_the_same_channels_last_images() {
        let dir = tempfile::tempdir().unwrap();
        let train: Vec<(&str, Vec<u8>)> =
            batch_names(Split::Train).iter().enumerate().map(|(k, n)| (*n, records(2 + k, 10 * k))).collect();
        let test = vec![("test_batch.bin", records(3, 99))];
        let archive = dir.path().join("cifar-10-binary.tar.gz");
        write_archive(&archive, &[train.clone(), test.clone()].concat());
        let from_archive = load_cifar10_archive(&DataSource::File(archive.clone()), Split::Train).unwrap();
        assert_eq!(from_archive.pixels.rows(), 2 + 3 + 4 + 5 + 6, "all five batches, in order");
        check_channels_last(&from_archive, 0);
        assert_eq!(
            load_cifar10_archive(&DataSource::File(archive.clone()), Split::Test).unwrap().labels,
            vec![9, 0, 1]
        );

        let extracted = dir.path().join("x").join("cifar-10-batches-bin");
        std::fs::create_dir_all(&extracted).unwrap();
        for (name, bytes) in train.iter().chain(&test) {
            std::fs::write(extracted.join(name), bytes).unwrap();
        }
        assert!(is_extracted_folder(&dir.path().join("x")));
        assert_eq!(load_cifar10_folder(&dir.path().join("x"), Split::Train).unwrap(), from_archive);
    }

    #[test]
    fn malformed_batches_and_archives_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (bytes, needle) in
            [(records(2, 0)[..5000].to_vec(), "5000 bytes"), (vec![10; RECORD], "label 10")]
        {
            std::fs::write(dir.path().join("test_batch.bin"), &bytes).unwrap();
            let msg = load_cifar10_folder(dir.path(), Split::Test).unwrap_err().to_string();
            assert!(msg.contains("test_batch.bin") && msg.contains(needle), "{msg}");
        }
        let msg = load_cifar10_folder(dir.path(), Split::Train).unwrap_err().to_string();
        assert!(msg.contains("data_batch_1.bin"), "{msg}");
        let archive = dir.path().join("a.tar.gz");
        write_archive(&archive, &[("test_batch.bin", records(1, 0))]);
        let msg =
            load_cifar10_archive(&DataSource::File(archive.clone()), Split::Train).unwrap_err().to_string();
        assert!(msg.contains("a.tar.gz") && msg.contains("data_batch_1.bin"), "{msg}");
    }
}

//! Downloading a data set into the data directory. Every file goes to a temporary name in the set's
//! folder, is checked against the catalogue's sha256, and only when every file of the set has arrived
//! and verified are they renamed to their published names: a failed, refused or interrupted download
//! leaves no file under a name that a loader reads (temporary files of a killed run are removed by the
//! next fetch).

use super::dataset::{Dataset, DatasetFile};
use super::dataset_error::DatasetError;
use super::locate::DataDir;
use super::source::DataSource;
use super::verify::check_file;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The prefix of temporary download files.
const TEMPORARY_PREFIX: &str = ".tweedie-fetch-";

/// Receives download progress; every method defaults to doing nothing.
pub trait FetchProgress {
    /// A download starts; `total` is the announced length, if any.
    fn start(&mut self, _url: &str, _total: Option<u64>) {}
    /// `bytes` more bytes arrived.
    fn advance(&mut self, _bytes: u64) {}
    /// The download ended (successfully or not).
    fn finish(&mut self) {}
}

impl FetchProgress for () {}

/// Downloads every file of `dataset` into `dir`'s folder for it, from `from` (a base URL: files are
/// fetched from `{from}/{file name}`) or else from the catalogue's sources in order, and verifies each.
/// Returns the folder.
///
/// # Errors
/// [`DatasetError::Download`] naming the URL (HTTP status, refused connection, transfer cut short),
/// [`DatasetError::ChecksumMismatch`] naming the URL, [`DatasetError::Io`] for the data directory. In
/// every case no file of the set is left behind under its published name, and a folder this call
/// created is removed again.
pub fn fetch_dataset(
    dataset: Dataset,
    dir: &DataDir,
    from: Option<&str>,
    progress: &mut dyn FetchProgress,
) -> Result<PathBuf, DatasetError> {
    let folder = dir.set_folder(dataset);
    let created = !folder.exists();
    fs::create_dir_all(&folder).map_err(|e| DatasetError::io(&folder, e))?;
    remove_temporaries(&folder);
    let sources: Vec<&str> = match from {
        Some(base) => vec![base],
        None => dataset.sources().to_vec(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut arrived: Vec<(PathBuf, &DatasetFile)> = Vec::new();
    let result = dataset.files().iter().try_for_each(|file| {
        let temporary = folder.join(format!("{TEMPORARY_PREFIX}{}-{}", std::process::id(), file.name));
        arrived.push((temporary.clone(), file));
        fetch_file(&agent, dataset, file, &sources, &temporary, progress)
    });
    let result = result.and_then(|()| {
        arrived.iter().try_for_each(|(temporary, file)| {
            let target = folder.join(file.name);
            fs::rename(temporary, &target).map_err(|e| DatasetError::io(&target, e))
        })
    });
    if result.is_err() {
        arrived.iter().for_each(|(temporary, _)| {
            let _ = fs::remove_file(temporary);
        });
        if created {
            let _ = fs::remove_dir(&folder);
        }
    }
    result.map(|()| folder)
}

/// Tries each source in turn until one gives a verified copy of `file` at `temporary`; the error is the
/// last source's.
fn fetch_file(
    agent: &ureq::Agent,
    dataset: Dataset,
    file: &DatasetFile,
    sources: &[&str],
    temporary: &Path,
    progress: &mut dyn FetchProgress,
) -> Result<(), DatasetError> {
    let mut last = None;
    for base in sources {
        let url = format!("{}/{}", base.trim_end_matches('/'), file.name);
        let outcome = download(agent, &url, temporary, progress)
            .and_then(|()| check_file(dataset, file, &DataSource::File(temporary.into()), Path::new(&url)));
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) => {
                let _ = fs::remove_file(temporary);
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| DatasetError::Download { url: String::new(), reason: "no source".into() }))
}

/// Streams `url` into a new file at `path` and syncs it.
fn download(
    agent: &ureq::Agent,
    url: &str,
    path: &Path,
    progress: &mut dyn FetchProgress,
) -> Result<(), DatasetError> {
    let failed = |reason: String| DatasetError::Download { url: url.into(), reason };
    let mut response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let total = response.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok());
    progress.start(url, total);
    let mut file = File::create(path).map_err(|e| DatasetError::io(path, e))?;
    let mut reader = response.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    let copied = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                received += n as u64;
                progress.advance(n as u64);
                if let Err(e) = file.write_all(&buf[..n]) {
                    break Err(DatasetError::io(path, e));
                }
            }
            Err(e) => break Err(failed(format!("transfer cut short after {received} bytes ({e})"))),
        }
    };
    progress.finish();
    copied?;
    if let Some(total) = total.filter(|&t| t != received) {
        return Err(failed(format!("received {received} bytes (expected the announced {total})")));
    }
    file.sync_all().map_err(|e| DatasetError::io(path, e))
}

/// Removes the temporary files that a killed download left in `folder`.
fn remove_temporaries(folder: &Path) {
    let Ok(entries) = fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMPORARY_PREFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

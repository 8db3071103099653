//! The data file a run trained on, identified by content: its path (stored relative to the checkpoint's
//! folder, so a checkpoint and its data can move together) and the SHA-256 of its bytes, so that resuming
//! or evaluating on a file that changed since is an error rather than a silently different run.

use super::config::{TargetSource, TrainConfig};
use super::TrainError;
use crate::checkpoint::{CheckpointError, TensorStore};
use crate::data::{sha256_hex, DataError};
use std::path::{Component, Path, PathBuf};

/// Metadata key of the data file's path, relative to the checkpoint's folder when it was given relative.
const PATH_KEY: &str = "data.path";
/// Metadata key of the data file's SHA-256 (lowercase hex).
const HASH_KEY: &str = "data.sha256";

/// A data file and the SHA-256 of its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFile {
    /// The file, as the run reads it (relative to the working directory, or absolute).
    pub path: PathBuf,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl DataFile {
    /// The data file of a configuration (`csv:PATH` or `npy:PATH`) with its current hash, if it has one.
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read.
    pub fn of(config: &TrainConfig) -> Result<Option<Self>, DataError> {
        match config.target_source() {
            Ok(TargetSource::Csv(path) | TargetSource::Npy(path)) => {
                Ok(Some(Self { sha256: sha256_of(&path)?, path }))
            }
            _ => Ok(None),
        }
    }

    /// Checks that the file still has the hash recorded here.
    ///
    /// # Errors
    /// [`TrainError::DataChanged`] (wrapped in [`crate::Error`]), or [`DataError::Io`] when it cannot be read.
    pub fn verify(&self, checkpoint: &Path) -> Result<(), crate::Error> {
        let found = sha256_of(&self.path)?;
        if found == self.sha256 {
            Ok(())
        } else {
            let (path, checkpoint) = (self.path.clone(), checkpoint.to_path_buf());
            Err(TrainError::DataChanged { path, checkpoint, stored: self.sha256.clone(), found }.into())
        }
    }

    /// Records the file in a checkpoint that will be written to `checkpoint`: a relative path is stored
    /// relative to the checkpoint's folder.
    pub fn store(&self, store: &mut TensorStore, checkpoint: &Path) {
        let path = if self.path.is_absolute() {
            self.path.clone()
        } else {
            relative_from(&folder_of(checkpoint), &self.path)
        };
        store.set_metadata(PATH_KEY, path.to_string_lossy());
        store.set_metadata(HASH_KEY, self.sha256.clone());
    }

    /// The file recorded in a checkpoint read from `checkpoint`, its path resolved against the checkpoint's
    /// folder; `None` for a checkpoint without a data file.
    ///
    /// # Errors
    /// [`CheckpointError::MissingMetadata`] when only one of the two entries is present.
    pub fn load(store: &TensorStore, checkpoint: &Path) -> Result<Option<Self>, CheckpointError> {
        if store.metadata(PATH_KEY).is_err() && store.metadata(HASH_KEY).is_err() {
            return Ok(None);
        }
        let stored = Path::new(store.metadata(PATH_KEY)?);
        let path =
            if stored.is_absolute() { stored.to_path_buf() } else { folder_of(checkpoint).join(stored) };
        Ok(Some(Self { path: tidy(&path), sha256: store.metadata(HASH_KEY)?.to_string() }))
    }

    /// `config` with its data path replaced by this file's (the path resolved against the checkpoint).
    pub fn retarget(&self, config: &mut TrainConfig) {
        if let Some((kind, _)) = config.target.split_once(':') {
            config.target = format!("{kind}:{}", self.path.display());
        }
    }
}

/// SHA-256 of a file's bytes, lowercase hex.
fn sha256_of(path: &Path) -> Result<String, DataError> {
    let io = |e| DataError::Io { path: path.to_path_buf(), source: e };
    Ok(sha256_hex(std::fs::File::open(path).map_err(io)?).map_err(io)?.0)
}

/// The folder of a file path (`.` for a bare file name).
fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `.` components and `x/..` pairs removed lexically (`..` at the start is kept).
fn tidy(path: &Path) -> PathBuf {
    let mut parts: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

/// The path that leads from `folder` to `target` (each absolute, or relative to the working directory):
/// `a/b` to `a/c/x.csv` is `../c/x.csv`.
fn relative_from(folder: &Path, target: &Path) -> PathBuf {
    let absolute = |p: &Path| tidy(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    let (folder, target) = (absolute(folder), absolute(target));
    let f: Vec<Component> = folder.components().collect();
    let t: Vec<Component> = target.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    if common == 0 || f[common..].contains(&Component::ParentDir) {
        // No common root (another drive), or a folder above the root: only the absolute path is reliable.
        return target;
    }
    let ups = std::iter::repeat_n(Component::ParentDir, f.len() - common);
    let path: PathBuf = ups.chain(t[common..].iter().copied()).collect();
    if path.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_lead_from_the_checkpoint_folder_to_the_data() {
        for (folder, target, want) in [
            (".", "d.csv", "d.csv"),
            ("runs", "d.csv", "../d.csv"),
            ("runs/a", "data/d.csv", "../../data/d.csv"),
            ("runs", "runs/d.csv", "d.csv"),
            ("./runs/", "./runs/x/../d.csv", "d.csv"),
            ("..", "../d.csv", "d.csv"),
        ] {
            let rel = relative_from(Path::new(folder), Path::new(target));
            assert_eq!(rel, Path::new(want), "{folder} -> {target}");
            assert_eq!(tidy(&Path::new(folder).join(&rel)), tidy(Path::new(target)), "{folder} -> {target}");
        }
        // An absolute checkpoint folder and a data path relative to the working directory (and back).
        let cwd = std::env::current_dir().unwrap();
        let rel = relative_from(&cwd.join("runs"), Path::new("data/d.csv"));
        assert_eq!(rel, Path::new("../data/d.csv"));
        let rel = relative_from(Path::new("runs"), &cwd.join("d.csv"));
        assert_eq!(rel, Path::new("../d.csv"));
        let up = relative_from(Path::new(".."), Path::new("d.csv"));
        assert_eq!(tidy(&std::path::absolute(Path::new("..").join(&up)).unwrap()), tidy(&cwd.join("d.csv")));
    }

    #[test]
    fn a_changed_file_fails_verification_and_the_path_survives_a_move_of_both() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        std::fs::create_dir(&runs).unwrap();
        let data = runs.join("d.csv");
        std::fs::write(&data, "1,2\n3,4\n").unwrap();
        let config = TrainConfig { target: format!("csv:{}", data.display()), ..Default::default() };
        let file = DataFile::of(&config).unwrap().unwrap();
        // printf '1,2\n3,4\n' | sha256sum
        assert_eq!(file.sha256, "96bbd5de61f36b0e10c5771d180998d066192e8986aa34a8cb7c453f62959274");
        let checkpoint = runs.join("m.safetensors");
        assert!(file.verify(&checkpoint).is_ok());
        let mut store = TensorStore::new();
        file.store(&mut store, &checkpoint);
        assert_eq!(DataFile::load(&store, &checkpoint).unwrap().unwrap(), file, "absolute paths stay");
        std::fs::write(&data, "1,2\n3,5\n").unwrap();
        let err = file.verify(&checkpoint).unwrap_err().to_string();
        assert!(err.contains("d.csv: the data file changed") && err.contains("--allow-new-data"), "{err}");
        // A relative path is stored relative to the checkpoint and resolved against it when loaded.
        let relative = DataFile { path: PathBuf::from("runs/d.csv"), sha256: file.sha256.clone() };
        let mut store = TensorStore::new();
        relative.store(&mut store, Path::new("runs/m.safetensors"));
        assert_eq!(store.metadata(PATH_KEY).unwrap(), "d.csv");
        let moved = DataFile::load(&store, Path::new("elsewhere/m.safetensors")).unwrap().unwrap();
        assert_eq!(moved.path, Path::new("elsewhere/d.csv"));
        let mut retargeted = config.clone();
        moved.retarget(&mut retargeted);
        assert_eq!(retargeted.target, "csv:elsewhere/d.csv");
        assert_eq!(DataFile::load(&TensorStore::new(), &checkpoint).unwrap(), None);
    }
}

//! Atomic file replacement: write a temporary file beside the target, fsync it, rename it over the target.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writers within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one, never a
/// partial write.
///
/// The bytes go to a temporary file in the target's folder (same file system, so the final `rename` is
/// atomic), which is flushed to disk with `fsync` before the rename; the folder is then synced so the rename
/// itself survives a crash. On any failure the temporary file is removed and whatever was at `path` before
/// is left untouched. The error is returned as is: callers attach `path` in their own error type.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path names no file (expected a file name)")
    })?;
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{unique}.tmp", std::process::id()));
    let tmp = folder.join(tmp_name);

    let result = write_and_sync(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        // Best effort: the temporary file may not exist if creating it is what failed.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_folder(&folder);
    Ok(())
}

/// Creates `tmp` (failing if it exists), writes `bytes` and fsyncs the file.
fn write_and_sync(tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Syncs a folder so a rename inside it is durable. Best effort: not every platform can open folders.
fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_existing_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        fs::write(&path, b"a much longer old content").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(dir.path()), vec!["a.bin".to_string()]);
    }

    #[test]
    fn missing_folder_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("a.bin");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn failed_rename_leaves_target_and_folder_intact() {
        // A non-empty folder at the target path makes the final rename fail after the temporary file was
        // written: the folder and its content must survive and the temporary file must be cleaned up.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ckpt");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old.bin"), b"old").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(fs::read(target.join("old.bin")).unwrap(), b"old");
        assert_eq!(entries(dir.path()), vec!["ckpt".to_string()]);
    }

    #[test]
    fn path_without_file_name_is_rejected() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn write_atomic_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        crate::data::write_atomic(&path, b"first").unwrap();
        crate::data::write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
    }
}

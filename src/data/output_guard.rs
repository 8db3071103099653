//! Output safety, one rule set for every command that writes a file: an output is never one of the
//! inputs, never anything but a regular file (or a new one), and has one writer at a time.
//!
//! [`claim_output`] checks the first two rules and takes a lock file `OUT.lock` (created with
//! `create_new`, holding the writer's process id) that [`OutputClaim`] removes when dropped. A lock
//! whose process no longer runs, and the temporary files that [`write_atomic`](super::write_atomic)
//! left behind in a killed run, are removed by the next claim.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why an output path is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The output is the same file as an input (writing it would destroy the input).
    #[error("{}: the output is the same file as {flag} {} (expected an output path different from every input)", out.display(), input.display())]
    SameAsInput {
        /// The output path.
        out: PathBuf,
        /// The flag (or config key) that names the input.
        flag: String,
        /// The input path.
        input: PathBuf,
    },
    /// The output exists and is not a regular file (a folder, a symbolic link, a device, a pipe).
    #[error("{}: is a {kind} (expected a new file or a regular file to replace)", path.display())]
    NotRegularFile {
        /// The output path.
        path: PathBuf,
        /// What it is, in words.
        kind: &'static str,
    },
    /// Another running process holds the output's lock file.
    #[error("{}: another process (pid {pid}) is writing it (lock file {}; expected one writer at a time: wait for it, or delete the lock file if no such run is going on)", path.display(), lock.display())]
    Locked {
        /// The output path.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The process id written in the lock file.
        pid: String,
    },
    /// This process already holds the output: two outputs of one command name the same file.
    #[error("{}: named by two outputs of this command (expected a different file for each output)", path.display())]
    ClaimedTwice {
        /// The output path.
        path: PathBuf,
    },
    /// The lock file could not be created or read.
    #[error("{}: cannot create the lock file: {source}", lock.display())]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// The right to write one output path: holds its lock file, which is removed on drop.
#[derive(Debug)]
pub struct OutputClaim {
    #[cfg(test)]
    path: PathBuf,
    lock: PathBuf,
}

impl OutputClaim {
    #[cfg(test)]
    /// The claimed output path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        // Best effort: a lock left behind is stale once this process ends, and the next claim removes it.
        let _ = fs::remove_file(&self.lock);
    }
}

/// Claims `out` for writing: refuses it when it is the same file as one of `inputs` (`(flag, path)`
/// pairs; hard links and symbolic links to an input count as the same file) or exists as anything but a
/// regular file, then takes its lock file `OUT.lock` and removes stale temporary files of killed runs.
///
/// # Errors
/// [`OutputError::SameAsInput`], [`OutputError::NotRegularFile`], [`OutputError::Locked`] while another
/// live process holds the lock, [`OutputError::ClaimedTwice`] when this process holds it, [`OutputError::Io`] when the lock cannot be created (for example a
/// missing or read-only folder, which would also make the output itself unwritable).
pub fn claim_output(out: &Path, inputs: &[(&str, &Path)]) -> Result<OutputClaim, OutputError> {
    if let Ok(meta) = fs::symlink_metadata(out) {
        let kind = meta.file_type();
        let refused = if kind.is_symlink() {
            Some("symbolic link")
        } else if kind.is_dir() {
            Some("folder")
        } else if !kind.is_file() {
            Some("special file (device, pipe or socket)")
        } else {
            None
        };
        if let Some(kind) = refused {
            return Err(OutputError::NotRegularFile { path: out.to_path_buf(), kind });
        }
    }
    for &(flag, input) in inputs {
        if same_file(out, input) {
            return Err(OutputError::SameAsInput {
                out: out.to_path_buf(),
                flag: flag.to_string(),
                input: input.to_path_buf(),
            });
        }
    }
    let claim = take_lock(out)?;
    remove_stale_temporaries(out);
    Ok(claim)
}

/// The lock file of `out`: `OUT.lock` beside it.
pub fn lock_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Creates `OUT.lock` with this process's id; replaces a lock whose process has ended (once).
fn take_lock(out: &Path) -> Result<OutputClaim, OutputError> {
    let lock = lock_path(out);
    let io = |source| OutputError::Io { lock: lock.clone(), source };
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(mut file) => {
                write!(file, "{}", std::process::id()).map_err(io)?;
                return Ok(OutputClaim {
                    #[cfg(test)]
                    path: out.to_path_buf(),
                    lock,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let pid = fs::read_to_string(&lock).unwrap_or_default().trim().to_string();
                match pid.parse::<u32>() {
                    Ok(p) if p == std::process::id() => {
                        return Err(OutputError::ClaimedTwice { path: out.to_path_buf() });
                    }
                    Ok(p) if process_is_running(p) => {
                        return Err(OutputError::Locked { path: out.to_path_buf(), lock, pid });
                    }
                    // The writer was killed (or the file is not a lock we wrote): the lock is stale.
                    _ => fs::remove_file(&lock).or_else(ignore_not_found).map_err(io)?,
                }
            }
            Err(e) => return Err(io(e)),
        }
    }
    let pid = fs::read_to_string(&lock).unwrap_or_default().trim().to_string();
    Err(OutputError::Locked { path: out.to_path_buf(), lock, pid })
}

fn ignore_not_found(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Whether process `pid` exists. Where the OS offers no `/proc` it is assumed to run (so a lock is
/// never broken by guesswork; the error then says to delete the lock file by hand).
fn process_is_running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Removes `.NAME.PID.K.tmp` files beside `out` (the temporaries of [`write_atomic`](super::write_atomic))
/// whose process has ended: what a run killed in the middle of a write leaves behind.
fn remove_stale_temporaries(out: &Path) {
    let (Some(name), folder) = (out.file_name(), out.parent()) else { return };
    let folder = match folder {
        Some(f) if !f.as_os_str().is_empty() => f,
        _ => Path::new("."),
    };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(middle) = file_name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else {
            continue;
        };
        let pid = middle.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !process_is_running(p)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether `a` and `b` name the same existing file (same device and inode on Unix; same canonical path
/// elsewhere).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        match (fs::canonicalize(a), fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_reached_by_another_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.npy");
        fs::write(&data, b"data").unwrap();
        let other_name = dir.path().join(".").join("data.npy");
        let err = claim_output(&other_name, &[("--input", &data)]).unwrap_err();
        assert!(matches!(&err, OutputError::SameAsInput { flag, .. } if flag == "--input"), "{err}");
        let hard = dir.path().join("hard.npy");
        fs::hard_link(&data, &hard).unwrap();
        assert!(matches!(claim_output(&hard, &[("--input", &data)]), Err(OutputError::SameAsInput { .. })));
        assert_eq!(fs::read(&data).unwrap(), b"data");
        assert!(!lock_path(&hard).exists(), "a refused claim takes no lock");
        let fresh = dir.path().join("new.npy");
        assert_eq!(claim_output(&fresh, &[("--input", &data)]).unwrap().path(), fresh.as_path());
    }

    #[cfg(unix)]
    #[test]
    fn folders_symbolic_links_and_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.npy");
        fs::write(&target, b"real").unwrap();
        let link = dir.path().join("link.npy");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for (path, kind) in [
            (link.as_path(), "symbolic link"),
            (dir.path(), "folder"),
            (Path::new("/dev/null"), "special file (device, pipe or socket)"),
        ] {
            let err = claim_output(path, &[]).unwrap_err();
            assert!(matches!(&err, OutputError::NotRegularFile { kind: k, .. } if *k == kind), "{err}");
        }
        assert!(claim_output(&target, &[]).is_ok(), "a regular file may be replaced");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_lock_refuses_and_a_stale_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        let held = claim_output(&out, &[]).unwrap();
        assert_eq!(fs::read_to_string(lock_path(&out)).unwrap(), std::process::id().to_string());
        assert!(matches!(claim_output(&out, &[]), Err(OutputError::ClaimedTwice { .. })));
        drop(held);
        // The lock of another live process (pid 1, init, always runs).
        fs::write(lock_path(&out), "1").unwrap();
        let err = claim_output(&out, &[]).unwrap_err();
        assert!(matches!(&err, OutputError::Locked { pid, .. } if pid == "1"), "{err}");
        assert!(err.to_string().contains("m.safetensors.lock"), "{err}");
        fs::remove_file(lock_path(&out)).unwrap();
        assert!(!lock_path(&out).exists(), "dropping the claim removes the lock");
        // A lock of a process that no longer runs (pid beyond Linux's pid_max), and a lock with no pid.
        for stale in ["4194305", "not a pid"] {
            fs::write(lock_path(&out), stale).unwrap();
            let _claim = claim_output(&out, &[]).unwrap();
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn temporaries_of_ended_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        let dead = dir.path().join(".m.safetensors.4194305.0.tmp");
        let live = dir.path().join(format!(".m.safetensors.{}.3.tmp", std::process::id()));
        let unrelated = dir.path().join(".other.safetensors.4194305.0.tmp");
        for p in [&dead, &live, &unrelated] {
            fs::write(p, b"partial").unwrap();
        }
        let _claim = claim_output(&out, &[]).unwrap();
        assert!(!dead.exists(), "the temporary of a killed run is removed");
        assert!(live.exists() && unrelated.exists());
    }

    #[test]
    fn claim_output_example() {
        let dir = tempfile::tempdir().unwrap();
        let (data, out) = (dir.path().join("data.csv"), dir.path().join("model.safetensors"));
        std::fs::write(&data, "1,2\n").unwrap();
        let claim = claim_output(&out, &[("--target", &data)]).unwrap();
        assert!(matches!(claim_output(&out, &[]), Err(OutputError::ClaimedTwice { .. })));
        drop(claim);
        assert!(matches!(claim_output(&data, &[("--target", &data)]), Err(OutputError::SameAsInput { .. })));
    }
}

//! Atomic output files: the one way this crate and slimzoo write a file.
//!
//! A file is written under a temporary name in its destination folder, then renamed onto the
//! destination. A reader never sees half a file, and a failure (or a dropped [`AtomicFile`])
//! leaves nothing behind.
//!
//! **Durability policy** (decided once, here): the data is *not* fsynced before the rename. The
//! write is atomic for other processes, not durable across a power cut (the renamed file may
//! then be empty). This is what TensorFlow's own checkpoint writers do on POSIX (`Close`, then
//! `RenameFile`, no `Sync`), and it keeps converting a 250 MB checkpoint at memory speed.
//!
//! **No overwriting by accident**: with `overwrite = false` an existing destination is an error
//! before anything is written, and the final rename refuses to replace a file that appeared
//! meanwhile. A destination that exists but is not a regular file (a folder, a device such as
//! `/dev/null`, a FIFO) is never replaced, whatever `overwrite` says.
//!
//! **Interruption**: every temporary file in progress is listed in a process-wide registry, so
//! that a SIGINT/SIGTERM handler can remove them ([`remove_in_progress`]) before the process
//! exits. Once that has run, no new temporary file can be started, so none is left behind by a
//! writer that was still running.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files being written by this process, and whether [`remove_in_progress`] has run.
static IN_PROGRESS: Mutex<(BTreeSet<PathBuf>, bool)> = Mutex::new((BTreeSet::new(), false));

fn registry() -> std::sync::MutexGuard<'static, (BTreeSet<PathBuf>, bool)> {
    IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why an atomic write failed, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    /// The destination exists and overwriting was not asked for.
    #[error("{}: already exists and overwriting was not asked for", .0.display())]
    Exists(PathBuf),
    /// The destination's folder does not exist.
    #[error("{}: output folder does not exist", .0.display())]
    NoFolder(PathBuf),
    /// The destination exists and is not a regular file (a folder, a device, a FIFO).
    #[error("{path}: {what}; it is not replaced", path = .0.display(), what = .1)]
    NotAFile(PathBuf, String),
    /// The process is being interrupted: no new file is started.
    #[error("{}: not written: the program is being interrupted", .0.display())]
    Interrupted(PathBuf),
    /// An I/O error on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

impl AtomicError {
    /// As an `io::Error` (the kind kept, the path in the message).
    pub fn into_io(self) -> io::Error {
        match self {
            AtomicError::Io { path, source } => io::Error::new(source.kind(), format!("{}: {source}", path.display())),
            other => io::Error::new(io::ErrorKind::AlreadyExists, other.to_string()),
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
        AtomicError::Io { path: path.to_path_buf(), source }
    }
}

/// A file being written to a temporary name next to `dest`; [`AtomicFile::commit`] renames it
/// into place, dropping it without committing removes it.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    overwrite: bool,
}

impl AtomicFile {
    /// Starts writing `dest`. Fails when `dest` exists and `overwrite` is false, or when its
    /// folder does not exist.
    pub fn create(dest: &Path, overwrite: bool) -> Result<AtomicFile, AtomicError> {
        if let Ok(meta) = std::fs::metadata(dest)
            && !meta.is_file()
        {
            return Err(AtomicError::NotAFile(dest.to_path_buf(), crate::blob::not_a_file(&meta)));
        }
        if !overwrite && std::fs::symlink_metadata(dest).is_ok() {
            return Err(AtomicError::Exists(dest.to_path_buf()));
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(AtomicError::NoFolder(dir));
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // The registry stays locked from the file's creation to its registration, so that
        // `remove_in_progress` (a signal handler, on another thread) runs either before (then
        // no file is made) or after (then it removes it), never in between.
        let mut reg = registry();
        if reg.1 {
            return Err(AtomicError::Interrupted(dest.to_path_buf()));
        }
        let (file, tmp) = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| AtomicError::io(&dir, e))?
            .keep()
            .map_err(|e| AtomicError::io(&dir, e.error))?;
        reg.0.insert(tmp.clone());
        drop(reg);
        Ok(AtomicFile { file, tmp, dest: dest.to_path_buf(), overwrite })
    }

    /// The file being written.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temporary path (for messages).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Closes the file and renames it onto the destination (never replacing a file that
    /// appeared meanwhile unless `overwrite`).
    pub fn commit(self) -> Result<(), AtomicError> {
        let result = if self.overwrite {
            std::fs::rename(&self.tmp, &self.dest).map_err(|e| AtomicError::io(&self.dest, e))
        } else {
            // A hard link fails if the destination exists: no race with another writer.
            match std::fs::hard_link(&self.tmp, &self.dest) {
                Ok(()) => std::fs::remove_file(&self.tmp).map_err(|e| AtomicError::io(&self.tmp, e)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(AtomicError::Exists(self.dest.clone())),
                // File systems without hard links: check, then rename.
                Err(_) if std::fs::symlink_metadata(&self.dest).is_err() => {
                    std::fs::rename(&self.tmp, &self.dest).map_err(|e| AtomicError::io(&self.dest, e))
                }
                Err(_) => Err(AtomicError::Exists(self.dest.clone())),
            }
        };
        if result.is_ok() {
            registry().0.remove(&self.tmp);
        }
        result
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if registry().0.remove(&self.tmp) {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Removes every temporary file this process is writing, and makes every later
/// [`AtomicFile::create`] fail (for a SIGINT/SIGTERM handler, which then exits). Returns how
/// many were removed.
pub fn remove_in_progress() -> usize {
    remove_registered(true)
}

/// Removes the registered temporary files; `close` makes later creations fail. (Tests remove
/// without closing: the registry is process-wide and other tests keep writing files.)
fn remove_registered(close: bool) -> usize {
    let mut reg = registry();
    reg.1 |= close;
    let n = reg.0.len();
    for p in reg.0.iter() {
        let _ = std::fs::remove_file(p);
    }
    reg.0.clear();
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn commit_renames_and_never_overwrites_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&p, false).unwrap();
        f.file().write_all(b"one").unwrap();
        assert!(!p.exists(), "nothing under the final name before commit");
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let err = AtomicFile::create(&p, false).unwrap_err();
        assert!(matches!(err, AtomicError::Exists(_)), "{err}");
        let mut f = AtomicFile::create(&p, true).unwrap();
        f.file().write_all(b"two").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(files(dir.path()), 1);
    }

    #[test]
    fn a_file_that_appears_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&p, false).unwrap();
        f.file().write_all(b"mine").unwrap();
        std::fs::write(&p, b"theirs").unwrap();
        assert!(matches!(f.commit(), Err(AtomicError::Exists(_))));
        assert_eq!(std::fs::read(&p).unwrap(), b"theirs");
        assert_eq!(files(dir.path()), 1, "the temporary file is gone");
    }

    #[test]
    fn dropping_and_signals_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        {
            let mut f = AtomicFile::create(&p, false).unwrap();
            f.file().write_all(b"half").unwrap();
        }
        assert_eq!(files(dir.path()), 0);
        let f = AtomicFile::create(&p, false).unwrap();
        assert!(f.temp_path().exists());
        assert!(remove_registered(false) >= 1);
        assert_eq!(files(dir.path()), 0);
        drop(f);
        let err = AtomicFile::create(&dir.path().join("no/such/folder/x"), true).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn folders_and_devices_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let err = AtomicFile::create(dir.path(), true).unwrap_err();
        assert!(matches!(err, AtomicError::NotAFile(..)), "{err}");
        assert!(err.to_string().ends_with(": is a folder, not a regular file; it is not replaced"), "{err}");
        let err = AtomicFile::create(Path::new("/dev/null"), true).unwrap_err();
        assert_eq!(err.to_string(), "/dev/null: is a device, not a regular file; it is not replaced");
        assert_eq!(files(dir.path()), 0);
    }
}

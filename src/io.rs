//! Output files, written atomically with the one writer and durability policy of
//! [`crate::ckpt::atomic`]: a temporary file in the destination folder, renamed into place when
//! complete (no fsync: atomic for other processes, not durable across a power cut, like TF's own
//! writers); an existing destination is only replaced when asked; a failure or an interrupted
//! process (see [`crate::ckpt::atomic::remove_in_progress`]) leaves nothing behind.

use crate::ckpt::atomic::{AtomicError, AtomicFile};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

impl From<AtomicError> for Error {
    fn from(e: AtomicError) -> Error {
        match e {
            AtomicError::Io { path, source } => Error::Io { path, source },
            AtomicError::Exists(p) => Error::Output(format!("{}: already exists (use --force to overwrite)", p.display())),
            other => Error::Output(other.to_string()),
        }
    }
}

/// Writes `path` through `fill` (which gets the file itself). An existing `path` is replaced
/// only when `overwrite`.
pub fn write_atomic(path: &Path, overwrite: bool, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let mut f = AtomicFile::create(path, overwrite)?;
    fill(f.file())?;
    Ok(f.commit()?)
}

/// Like [`write_atomic`], through a buffered writer.
pub fn write_atomic_buffered(
    path: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> Result<()> {
    write_atomic(path, overwrite, |file| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w).and_then(|()| w.flush()).map_err(|e| Error::io(path, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write_atomic_buffered(&p, false, |w| w.write_all(b"one")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let err = write_atomic_buffered(&p, false, |w| w.write_all(b"two")).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        // A failing writer leaves the old file and no temporary behind.
        let err = write_atomic_buffered(&p, true, |_| Err(std::io::Error::other("disk on fire"))).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic_buffered(&p, true, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }
}

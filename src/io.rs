//! Output files are written atomically: into a temporary file in the destination folder, then
//! renamed over the destination, so a reader never sees half a file and a failure leaves nothing.
//! (No fsync: atomic for other processes, not durable across a power cut — like TF's own writers.)

use crate::error::{Error, Result};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The temporary name used while `path` is being written.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `path` through `fill`. An existing `path` is replaced only when `overwrite`.
pub fn write_atomic(
    path: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    write_atomic_with(path, overwrite, |w| fill(w).map_err(|e| Error::io(path, e)))
}

/// Like [`write_atomic`], for writers that fail with the library's errors.
pub fn write_atomic_with(
    path: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    if !overwrite && path.exists() {
        return Err(Error::bad_file(path, "already exists (use --force to overwrite)"));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::bad_file(dir, "output folder does not exist"));
        }
    }
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn atomic_write_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write_atomic(&p, false, |w| w.write_all(b"one")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let err = write_atomic(&p, false, |w| w.write_all(b"two")).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        // A failing writer leaves the old file and no temporary behind.
        let err = write_atomic(&p, true, |_| Err(std::io::Error::other("disk on fire"))).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&p, true, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }
}

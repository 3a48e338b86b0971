//! Random-access bytes that a table or a data shard is read from: a file on disk, a window
//! of a file (a zip member stored without compression), or bytes in memory (a compressed
//! archive member, decompressed on first use, once).
//!
//! Reads go to exactly the requested range (positioned reads, no whole-file buffering), and
//! every range is checked against the real length before a buffer is allocated.

use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::error::{CkptError, Result};

type Loader = Box<dyn Fn() -> Result<Vec<u8>> + Send + Sync>;

enum Kind {
    File { file: File, len: u64 },
    Window { file: File, start: u64, len: u64 },
    Lazy { load: Loader, cell: OnceLock<Vec<u8>>, lock: Mutex<()> },
}

/// Named random-access bytes.
pub(crate) struct Blob {
    name: String,
    kind: Kind,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("name", &self.name).finish_non_exhaustive()
    }
}

/// What a path that exists is when it is not a regular file: "a folder", "a named pipe
/// (FIFO)", "a socket", "a device", "a special file"; `None` for a regular file. Reading a FIFO blocks until
/// someone writes to it and a device may never end, so neither is ever opened as a file.
pub fn special_file_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a folder");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_block_device() || t.is_char_device() {
            return Some("a device");
        }
    }
    Some("a special file")
}

/// "is a folder, not a regular file" and the like.
pub(crate) fn not_a_file(meta: &std::fs::Metadata) -> String {
    format!("is {}, not a regular file", special_file_kind(meta).unwrap_or("a regular file after all"))
}

impl Blob {
    /// Opens a file on disk (named by its path in errors).
    /// Opens a regular file on disk (named by its path in errors). Anything else (a folder, a
    /// FIFO, a device) is refused before it is opened: opening a FIFO would wait for a writer.
    pub fn open_file(path: &Path) -> Result<Blob> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| CkptError::io(&name, "could not open the file", e))?;
        if !meta.is_file() {
            return Err(CkptError::Resolve { path: name, reason: not_a_file(&meta) });
        }
        let file = File::open(path).map_err(|e| CkptError::io(&name, "could not open the file", e))?;
        let meta = file.metadata().map_err(|e| CkptError::io(&name, "could not read the file's metadata", e))?;
        if !meta.is_file() {
            return Err(CkptError::Resolve { path: name, reason: not_a_file(&meta) });
        }
        Ok(Blob { name, kind: Kind::File { file, len: meta.len() } })
    }

    /// A window `start..start+len` of an open file.
    pub fn window(name: String, file: File, start: u64, len: u64) -> Blob {
        Blob { name, kind: Kind::Window { file, start, len } }
    }

    /// Bytes already in memory (tests and fuzzing).
    #[cfg(any(test, fuzzing))]
    pub fn memory(name: String, data: Vec<u8>) -> Blob {
        Blob::lazy(name, Box::new(move || Ok(data.clone())))
    }

    /// Bytes produced by `load` the first time they are needed (and kept).
    pub fn lazy(name: String, load: Loader) -> Blob {
        Blob { name, kind: Kind::Lazy { load, cell: OnceLock::new(), lock: Mutex::new(()) } }
    }

    /// The name used in error messages (a path, or `archive!member`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn loaded(&self) -> Result<Option<&[u8]>> {
        match &self.kind {
            Kind::Lazy { load, cell, lock } => {
                if let Some(v) = cell.get() {
                    return Ok(Some(v));
                }
                let _guard = lock.lock().map_err(|_| CkptError::Corrupt {
                    file: self.name.clone(),
                    reason: "an earlier attempt to load this archive member panicked".into(),
                })?;
                if cell.get().is_none() {
                    let data = load()?;
                    let _ = cell.set(data);
                }
                Ok(cell.get().map(Vec::as_slice))
            }
            Kind::File { .. } | Kind::Window { .. } => Ok(None),
        }
    }

    /// The length in bytes if it is known without loading anything (a lazy member not read yet
    /// gives `None`).
    pub fn known_len(&self) -> Option<u64> {
        match &self.kind {
            Kind::File { len, .. } | Kind::Window { len, .. } => Some(*len),
            Kind::Lazy { cell, .. } => cell.get().map(|d| d.len() as u64),
        }
    }

    /// The length in bytes (loads a lazy member).
    pub fn len(&self) -> Result<u64> {
        match &self.kind {
            Kind::File { len, .. } | Kind::Window { len, .. } => Ok(*len),
            _ => Ok(self.loaded()?.map_or(0, |d| d.len() as u64)),
        }
    }

    /// Fills `buf` with the bytes at `offset`. The range must lie inside the blob.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = self.len()?;
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= len).ok_or_else(|| CkptError::Corrupt {
            file: self.name.clone(),
            reason: format!("a read of {} bytes at offset {offset} is past the end of the file ({len} bytes)", buf.len()),
        })?;
        let n = buf.len();
        let action = || format!("could not read {n} bytes at offset {offset}");
        match &self.kind {
            Kind::File { file, .. } => pread(file, offset, buf).map_err(|e| CkptError::io(&self.name, action(), e)),
            Kind::Window { file, start, .. } => {
                let at = start
                    .checked_add(offset)
                    .ok_or_else(|| CkptError::Corrupt { file: self.name.clone(), reason: "offset overflows".into() })?;
                pread(file, at, buf).map_err(|e| CkptError::io(&self.name, action(), e))
            }
            Kind::Lazy { .. } => {
                let data = self.loaded()?.unwrap_or_default();
                let src = usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(end).ok())
                    .and_then(|(s, e)| data.get(s..e))
                    .ok_or_else(|| CkptError::Corrupt { file: self.name.clone(), reason: "range out of memory".into() })?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Reads `len` bytes at `offset` into a new buffer, after checking the range.
    pub fn read_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let file_len = self.len()?;
        if offset.checked_add(len).is_none_or(|e| e > file_len) {
            return Err(CkptError::Corrupt {
                file: self.name.clone(),
                reason: format!("a read of {len} bytes at offset {offset} is past the end of the file ({file_len} bytes)"),
            });
        }
        let n = usize::try_from(len)
            .map_err(|_| CkptError::Corrupt { file: self.name.clone(), reason: format!("{len} bytes do not fit in memory") })?;
        let mut buf = vec![0u8; n];
        self.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }
}

#[cfg(unix)]
fn pread(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn pread(file: &File, mut offset: u64, mut buf: &mut [u8]) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn file_window_memory_and_lazy_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..=255u8).collect();
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        let blobs = [
            Blob::open_file(&path).unwrap(),
            Blob::window("w".into(), File::open(&path).unwrap(), 0, 256),
            Blob::memory("m".into(), data.clone()),
            Blob::lazy("l".into(), Box::new(move || Ok((0..=255u8).collect()))),
        ];
        for b in &blobs {
            assert_eq!(b.len().unwrap(), 256);
            assert_eq!(b.read_vec(10, 3).unwrap(), [10, 11, 12]);
            assert_eq!(b.read_vec(256, 0).unwrap(), Vec::<u8>::new());
            let e = b.read_vec(250, 10).unwrap_err().to_string();
            assert!(e.contains("past the end of the file (256 bytes)"), "{e}");
            assert!(b.read_vec(u64::MAX, 2).is_err());
            assert!(b.read_vec(0, u64::MAX).is_err(), "no huge allocation");
        }
        let w = Blob::window("w".into(), File::open(&path).unwrap(), 100, 10);
        assert_eq!(w.read_vec(0, 2).unwrap(), [100, 101]);
        assert!(w.read_vec(9, 2).is_err());
    }

    #[test]
    fn lazy_errors_propagate_and_folders_are_refused() {
        let b = Blob::lazy("x".into(), Box::new(|| Err(CkptError::Corrupt { file: "x".into(), reason: "boom".into() })));
        assert!(b.len().unwrap_err().to_string().contains("boom"));
        let dir = tempfile::tempdir().unwrap();
        assert!(Blob::open_file(dir.path()).is_err());
        assert!(Blob::open_file(&dir.path().join("missing")).is_err());
    }
}

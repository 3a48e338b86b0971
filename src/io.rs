//! Output files, written atomically with the one writer and durability policy of
//! [`crate::ckpt::atomic`]: a temporary file in the destination folder, renamed into place when
//! complete (no fsync: atomic for other processes, not durable across a power cut, like TF's own
//! writers); an existing destination is only replaced when asked; a failure or an interrupted
//! process (see [`crate::ckpt::atomic::remove_in_progress`]) leaves nothing behind.
//!
//! [`check_output`] is the one check a command makes before it computes anything: the output can
//! be written, and it is none of the command's inputs ([`same_file`]), with or without
//! `--force`. [`check_input`] refuses inputs that are not regular files or folders.

use crate::ckpt::atomic::{AtomicError, AtomicFile};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Whether `a` and `b` are the same file, however spelled: `./x/../x/f`, a symbolic link to it
/// and a hard link all are (same device and inode, links followed). False when either does not
/// exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Checks that `output` can be written before any work is done: its folder exists, it is not a
/// folder, a device or a FIFO, it exists only when `overwrite`, and it is not one of `inputs`
/// (the files the command reads, e.g. [`crate::ckpt::Checkpoint::files`]) — writing over an
/// input is refused even with `overwrite`.
pub fn check_output(output: &Path, overwrite: bool, inputs: &[PathBuf]) -> Result<()> {
    let shown = output.display();
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    use std::os::unix::ffi::OsStrExt;
    if output.file_name().is_none() || output.as_os_str().as_bytes().ends_with(b"/") {
        return Err(Error::Output(format!("{shown}: is not a file name")));
    }
    if let Some(input) = inputs.iter().find(|i| same_file(output, i)) {
        let also = if input.as_path() == output { String::new() } else { format!(" ({})", input.display()) };
        return Err(Error::Output(format!("{shown}: is an input of this command{also}; it is never overwritten, choose another output")));
    }
    match std::fs::metadata(output) {
        Ok(meta) => {
            if let Some(kind) = crate::ckpt::special_file_kind(&meta) {
                return Err(Error::Output(format!("{shown}: is {kind}, not a file that can be written")));
            }
            if !overwrite {
                return Err(Error::Output(format!("{shown}: already exists (use --force to overwrite)")));
            }
        }
        Err(_) if dir.exists() && !dir.is_dir() => {
            return Err(Error::Output(format!("{shown}: {} is not a folder", dir.display())));
        }
        Err(_) if !dir.is_dir() => {
            return Err(Error::Output(format!("{shown}: the output folder {} does not exist", dir.display())));
        }
        Err(_) => {}
    }
    Ok(())
}

/// Checks that an input exists and is a regular file or a folder: a FIFO or a device would
/// block or never end when read.
pub fn check_input(input: &Path) -> Result<()> {
    let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    not_special(input, &meta)
}

/// Like [`check_input`], for a path that may name something that is not a file (a checkpoint
/// prefix): only an existing FIFO, device or socket is refused (a broken link or a loop too).
pub fn check_not_special(input: &Path) -> Result<()> {
    match std::fs::metadata(input) {
        Ok(meta) => not_special(input, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(input, e)),
    }
}

fn not_special(input: &Path, meta: &std::fs::Metadata) -> Result<()> {
    match crate::ckpt::special_file_kind(meta) {
        Some(kind) if !meta.is_dir() => Err(Error::bad_file(input, format!("is {kind}, not a regular file"))),
        _ => Ok(()),
    }
}

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

    #[test]
    fn outputs_are_never_inputs_however_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("in.ckpt");
        std::fs::write(&input, b"x").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(&input, d.join("link.ckpt")).unwrap();
        std::fs::hard_link(&input, d.join("hard.ckpt")).unwrap();
        let inputs = [input.clone()];
        for spelled in [input.clone(), d.join("sub/../in.ckpt"), d.join("./in.ckpt"), d.join("link.ckpt"), d.join("hard.ckpt")] {
            for force in [false, true] {
                let e = check_output(&spelled, force, &inputs).unwrap_err().to_string();
                assert!(e.contains("is an input of this command"), "{}: {e}", spelled.display());
            }
        }
        check_output(&d.join("new.st"), false, &inputs).unwrap();
        let e = check_output(&d.join("missing/new.st"), true, &inputs).unwrap_err().to_string();
        assert!(e.ends_with(&format!("missing/new.st: the output folder {}/missing does not exist", d.display())), "{e}");
        let e = check_output(&d.join("sub"), true, &inputs).unwrap_err().to_string();
        assert!(e.ends_with("sub: is a folder, not a file that can be written"), "{e}");
        let e = check_output(&d.join("new.st/"), true, &inputs).unwrap_err().to_string();
        assert!(e.ends_with("new.st/: is not a file name"), "{e}");
        let e = check_output(&input.join("new.st"), true, &inputs).unwrap_err().to_string();
        assert!(e.ends_with(&format!("in.ckpt/new.st: {} is not a folder", input.display())), "{e}");
        let e = check_output(Path::new("/dev/null"), true, &inputs).unwrap_err().to_string();
        assert_eq!(e, "/dev/null: is a device, not a file that can be written");
        std::fs::write(d.join("old.st"), b"y").unwrap();
        let e = check_output(&d.join("old.st"), false, &inputs).unwrap_err().to_string();
        assert!(e.ends_with("old.st: already exists (use --force to overwrite)"), "{e}");
        check_output(&d.join("old.st"), true, &inputs).unwrap();
        assert!(same_file(&input, &d.join("hard.ckpt")) && !same_file(&input, &d.join("old.st")));
        check_input(&input).unwrap();
        check_input(d).unwrap();
        assert!(check_input(Path::new("/dev/null")).unwrap_err().to_string().ends_with("is a device, not a regular file"));
        assert!(check_input(&d.join("nope")).is_err());
        check_not_special(&d.join("nope")).unwrap();
        check_not_special(&input).unwrap();
        assert!(check_not_special(Path::new("/dev/null")).is_err());
    }
}

//! Checkpoints inside archives, read in place: `.zip` (facenet's releases) and `.tar.gz` /
//! `.tgz` / `.tar` (the TF-slim model zoo).
//!
//! * Listing reads the zip central directory, or streams once through the tar(.gz).
//! * Every member name is checked: a name with a `..` component, an absolute name or a drive
//!   prefix makes the archive an error naming that member. Symbolic and hard links are never
//!   followed: they are not files here.
//! * A zip member stored without compression is read in place (a window of the zip file).
//!   Any other member is decompressed into memory once, when first needed, never to disk.
//! * A zip with two members of the same name is refused, as a tar(.gz) is (readers disagree on
//!   which one counts: the zip crate keeps the last, others the first).
//! * Decompression bombs ([`OpenOptions`] has the limits and their defaults): a member whose
//!   declared size is over `max_member_bytes` (2 GiB), or whose real decompressed size exceeds
//!   its declared size, is refused; so is a member that decompresses to more than
//!   `max_member_ratio` (100) times its compressed size, unless it is at most
//!   [`OpenOptions::RATIO_FREE_BYTES`] (16 MiB). A zip member's ratio is checked from its
//!   declared sizes before anything is decompressed; a `.tar.gz` member's (tar has no
//!   compressed sizes) while the stream is decompressed, listing included, counting the
//!   compressed bytes read for it. Buffers grow with the data actually produced; declared sizes
//!   are not trusted for allocation.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::OpenOptions;
use super::blob::Blob;
use super::error::{CkptError, Result};

/// Initial capacity of a member buffer, whatever the member claims.
const INITIAL_CAPACITY: u64 = 64 << 20;
/// Read buffer under a gzip decoder: small, so that the count of compressed bytes read runs
/// little ahead of what the decoder has used.
const GZ_READ_BUFFER: usize = 64 << 10;
/// Largest zip central directory read to name a duplicate member.
const MAX_CENTRAL_DIRECTORY: u64 = 64 << 20;

/// Kinds of archive, from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
}

impl ArchiveKind {
    /// The kind implied by a file name's extension.
    pub fn of(path: &Path) -> Option<ArchiveKind> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".zip") {
            Some(ArchiveKind::Zip)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(ArchiveKind::TarGz)
        } else if name.ends_with(".tar") {
            Some(ArchiveKind::Tar)
        } else {
            None
        }
    }
}

/// One member of an archive.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Normalized name (`/`-separated, no `./` components).
    pub name: String,
    /// Declared (uncompressed) size.
    pub size: u64,
    /// Zip: declared compressed size.
    compressed: u64,
    /// A regular file (not a folder, not a link).
    pub is_file: bool,
    /// Zip: index in the central directory.
    zip_index: usize,
    /// Zip: data offset of a member stored without compression.
    stored_at: Option<u64>,
}

/// An archive and its member list.
#[derive(Debug)]
pub(crate) struct Archive {
    path: PathBuf,
    display: String,
    kind: ArchiveKind,
    members: Vec<Member>,
    limits: OpenOptions,
}

/// Normalizes a member name; `Err` for names that could escape the archive's folder
/// (checked textually, the same on every platform).
fn normalize(raw: &str) -> std::result::Result<String, &'static str> {
    if raw.contains('\0') {
        return Err("its name contains a NUL byte");
    }
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err("its name is an absolute path");
    }
    let mut parts = Vec::new();
    for part in raw.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err("its name goes up with '..' (path traversal)"),
            p if parts.is_empty() && p.as_bytes().get(1) == Some(&b':') => {
                return Err("its name starts with a drive letter");
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

impl Archive {
    /// Lists the members of the archive at `path`; `limits` apply when members are read (and,
    /// for a `.tar.gz`, the ratio limit while it is listed).
    pub fn open(path: &Path, kind: ArchiveKind, limits: &OpenOptions) -> Result<Arc<Archive>> {
        let display = path.display().to_string();
        let raw = match kind {
            ArchiveKind::Zip => list_zip(path, &display)?,
            ArchiveKind::Tar | ArchiveKind::TarGz => list_tar(path, &display, kind, limits)?,
        };
        let mut members: Vec<Member> = Vec::with_capacity(raw.len());
        for (raw_name, mut m) in raw {
            m.name = normalize(&raw_name).map_err(|reason| CkptError::ArchiveMember {
                archive: display.clone(),
                member: raw_name.clone(),
                reason: reason.to_string(),
            })?;
            if m.is_file && members.iter().any(|o| o.is_file && o.name == m.name) {
                return Err(CkptError::ArchiveMember {
                    archive: display,
                    member: m.name,
                    reason: "the archive holds two files with this name".into(),
                });
            }
            members.push(m);
        }
        Ok(Arc::new(Archive { path: path.to_path_buf(), display, kind, members, limits: *limits }))
    }

    /// The archive file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive's path as shown in messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// `archive!member`.
    pub fn member_display(&self, name: &str) -> String {
        format!("{}!{name}", self.display)
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    fn member_err(&self, name: &str, reason: impl Into<String>) -> CkptError {
        CkptError::ArchiveMember { archive: self.display.clone(), member: name.to_string(), reason: reason.into() }
    }

    fn file_member(&self, name: &str) -> Result<&Member> {
        let m = self.member(name).ok_or_else(|| self.member_err(name, "no such member"))?;
        if !m.is_file {
            return Err(self.member_err(name, "is not a regular file (folders and links inside archives are not followed)"));
        }
        Ok(m)
    }

    /// Random access to a member: in place if stored, else decompressed on first use.
    pub fn blob(self: &Arc<Self>, name: &str) -> Result<Blob> {
        let m = self.file_member(name)?.clone();
        let display = self.member_display(name);
        if let Some(start) = m.stored_at {
            let file = File::open(&self.path).map_err(|e| CkptError::io(&self.display, "could not open the archive", e))?;
            let len = file.metadata().map_err(|e| CkptError::io(&self.display, "could not read the archive's metadata", e))?.len();
            if start.checked_add(m.size).is_none_or(|end| end > len) {
                return Err(self.member_err(name, "its data lies past the end of the archive"));
            }
            return Ok(Blob::window(display, file, start, m.size));
        }
        let archive = Arc::clone(self);
        let member = name.to_string();
        Ok(Blob::lazy(display, Box::new(move || archive.read(&member))))
    }

    /// Decompresses a member into memory now.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let m = self.file_member(name)?;
        let max = self.limits.max_member_bytes;
        if m.size > max {
            return Err(self.member_err(
                name,
                format!(
                    "its declared size of {} bytes is over the limit of {max} bytes (set SLIMZOO_MAX_MEMBER_BYTES to raise it)",
                    m.size
                ),
            ));
        }
        match self.kind {
            ArchiveKind::Zip => {
                self.check_zip_ratio(name, m)?;
                let file = File::open(&self.path).map_err(|e| CkptError::io(&self.display, "could not open the archive", e))?;
                let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| self.zip_err(e))?;
                let entry = zip.by_index(m.zip_index).map_err(|e| self.member_err(name, format!("cannot be read: {e}")))?;
                self.read_capped(name, entry, m.size)
            }
            ArchiveKind::Tar | ArchiveKind::TarGz => {
                let (stream, meter) = tar_stream(&self.path, &self.display, self.kind, &self.limits)?;
                let mut tar = tar::Archive::new(stream);
                let stream_err = |e: std::io::Error| match meter.tripped() {
                    Some(member) => self.ratio_err(&member),
                    None => CkptError::io(&self.display, "could not read the tar stream", e),
                };
                let entries = tar.entries().map_err(stream_err)?;
                for entry in entries {
                    let entry = entry.map_err(stream_err)?;
                    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                    meter.start_member(&raw);
                    if normalize(&raw).as_deref() == Ok(name) && is_tar_file(entry.header().entry_type()) {
                        let size = entry.size();
                        return self.read_capped(name, entry, size).map_err(|e| match meter.tripped() {
                            Some(_) => self.ratio_err(name),
                            None => e,
                        });
                    }
                }
                Err(self.member_err(name, "disappeared from the archive while it was being read"))
            }
        }
    }

    /// A zip member's declared sizes against the ratio limit (before decompressing it).
    fn check_zip_ratio(&self, name: &str, m: &Member) -> Result<()> {
        let ratio = self.limits.max_member_ratio;
        if m.size <= OpenOptions::RATIO_FREE_BYTES || m.size <= m.compressed.saturating_mul(ratio) {
            return Ok(());
        }
        Err(self.member_err(
            name,
            format!(
                "its declared size of {} bytes is more than {ratio} times its compressed size of {} bytes {BOMB_HINT}",
                m.size, m.compressed
            ),
        ))
    }

    fn ratio_err(&self, member: &str) -> CkptError {
        ratio_exceeded(&self.display, member, self.limits.max_member_ratio)
    }

    fn zip_err(&self, e: zip::result::ZipError) -> CkptError {
        CkptError::Archive { archive: self.display.clone(), reason: format!("not a readable zip archive: {e}") }
    }

    /// Reads at most `declared` bytes (≤ the limit); more data than declared is an error.
    fn read_capped(&self, name: &str, reader: impl Read, declared: u64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(declared.min(INITIAL_CAPACITY) as usize);
        reader
            .take(declared.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| self.member_err(name, format!("could not be decompressed: {e}")))?;
        let got = out.len() as u64;
        if got > declared {
            return Err(
                self.member_err(name, format!("decompresses to more than its declared size of {declared} bytes (a decompression bomb?)"))
            );
        }
        if got < declared {
            return Err(self.member_err(name, format!("is truncated: {got} of its {declared} bytes could be read")));
        }
        Ok(out)
    }
}

/// What follows a ratio error: why, and what to do.
const BOMB_HINT: &str =
    "(a decompression bomb?); real checkpoint files compress about 1.1:1 (set SLIMZOO_MAX_MEMBER_RATIO to raise the limit)";

/// The error for a `.tar.gz` member that exceeded the ratio limit.
fn ratio_exceeded(archive: &str, raw_member: &str, max_ratio: u64) -> CkptError {
    CkptError::ArchiveMember {
        archive: archive.to_string(),
        member: normalize(raw_member).unwrap_or_else(|_| raw_member.to_string()),
        reason: format!("decompresses to more than {max_ratio} times its compressed size {BOMB_HINT}"),
    }
}

/// Counts, for a `.tar.gz`, the compressed bytes read and the bytes decompressed since the
/// current member started, and trips when a member above [`OpenOptions::RATIO_FREE_BYTES`]
/// exceeds the ratio limit. Shared by the two readers around the decoder.
#[derive(Debug, Default)]
struct Meter {
    compressed: Cell<u64>,
    produced: Cell<u64>,
    /// (compressed, produced) when the current member started.
    start: Cell<(u64, u64)>,
    member: RefCell<String>,
    tripped: RefCell<Option<String>>,
}

impl Meter {
    /// The member whose data comes next.
    fn start_member(&self, name: &str) {
        self.start.set((self.compressed.get(), self.produced.get()));
        name.clone_into(&mut self.member.borrow_mut());
    }

    /// The member that exceeded the ratio, if one did.
    fn tripped(&self) -> Option<String> {
        self.tripped.borrow().clone()
    }
}

/// Counts the compressed bytes read from the file.
struct CountIn<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for CountIn<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.compressed.set(self.meter.compressed.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// Counts the decompressed bytes and stops the stream when the ratio limit is exceeded.
struct RatioGuard<R> {
    inner: R,
    meter: Rc<Meter>,
    max_ratio: u64,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let m = &self.meter;
        m.produced.set(m.produced.get().saturating_add(n as u64));
        let (c0, p0) = m.start.get();
        let out = m.produced.get().saturating_sub(p0);
        let used = m.compressed.get().saturating_sub(c0);
        if out > OpenOptions::RATIO_FREE_BYTES && out > used.saturating_mul(self.max_ratio) {
            *m.tripped.borrow_mut() = Some(m.member.borrow().clone());
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "decompression ratio limit exceeded"));
        }
        Ok(n)
    }
}

/// The decompressed tar stream of a `.tar` or `.tar.gz`, with its meter (the ratio limit
/// applies to `.tar.gz` only: a plain tar's members are their own bytes).
fn tar_stream(path: &Path, display: &str, kind: ArchiveKind, limits: &OpenOptions) -> Result<(Box<dyn Read>, Rc<Meter>)> {
    let file = File::open(path).map_err(|e| CkptError::io(display, "could not open the archive", e))?;
    let meter = Rc::new(Meter::default());
    let stream: Box<dyn Read> = match kind {
        ArchiveKind::TarGz => {
            let counted = BufReader::with_capacity(GZ_READ_BUFFER, CountIn { inner: file, meter: Rc::clone(&meter) });
            let decoder = flate2::read::MultiGzDecoder::new(counted);
            Box::new(RatioGuard { inner: decoder, meter: Rc::clone(&meter), max_ratio: limits.max_member_ratio })
        }
        _ => Box::new(BufReader::with_capacity(1 << 20, file)),
    };
    Ok((stream, meter))
}

fn is_tar_file(t: tar::EntryType) -> bool {
    matches!(t, tar::EntryType::Regular | tar::EntryType::Continuous)
}

fn list_zip(path: &Path, display: &str) -> Result<Vec<(String, Member)>> {
    let file = File::open(path).map_err(|e| CkptError::io(display, "could not open the archive", e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| CkptError::Archive { archive: display.to_string(), reason: format!("not a readable zip archive: {e}") })?;
    if zip.has_duplicate_names() {
        let reason = "the archive holds two files with this name (readers disagree on which one counts)".to_string();
        return Err(match zip_duplicate_name(path, zip.central_directory_start()) {
            Some(member) => CkptError::ArchiveMember { archive: display.to_string(), member, reason },
            None => CkptError::Archive { archive: display.to_string(), reason: "holds two files with the same name".into() },
        });
    }
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| CkptError::Archive { archive: display.to_string(), reason: format!("entry {i} cannot be read: {e}") })?;
        let raw = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let is_file = entry.is_file() && !entry.encrypted();
        let stored_at = if is_file && entry.compression() == zip::CompressionMethod::Stored && entry.compressed_size() == entry.size() {
            entry.data_start()
        } else {
            None
        };
        let m = Member { name: String::new(), size: entry.size(), compressed: entry.compressed_size(), is_file, zip_index: i, stored_at };
        out.push((raw, m));
    }
    Ok(out)
}

/// The first name that occurs twice in a zip's central directory (the zip crate keeps only one
/// entry per name, so its list cannot tell). A central directory header is
/// `signature 0x02014b50 | 24 bytes | name length u16 @28 | extra length u16 @30 |
/// comment length u16 @32 | 12 bytes | name | extra | comment` (46 fixed bytes).
fn zip_duplicate_name(path: &Path, dir_start: u64) -> Option<String> {
    const HEADER: usize = 46;
    const SIGNATURE: [u8; 4] = 0x0201_4b50u32.to_le_bytes();
    let mut file = File::open(path).ok()?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(dir_start)).ok()?;
    let mut dir = Vec::new();
    file.take(MAX_CENTRAL_DIRECTORY).read_to_end(&mut dir).ok()?;
    let u16_at = |d: &[u8], at: usize| d.get(at..at + 2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let mut seen = HashSet::new();
    let mut pos = 0usize;
    while dir.get(pos..pos + 4) == Some(&SIGNATURE[..]) {
        let h = dir.get(pos..pos + HEADER)?;
        let (n, extra, comment) = (u16_at(h, 28)?, u16_at(h, 30)?, u16_at(h, 32)?);
        let name = String::from_utf8_lossy(dir.get(pos + HEADER..pos + HEADER + n)?).into_owned();
        if !seen.insert(name.clone()) {
            return Some(name);
        }
        pos += HEADER + n + extra + comment;
    }
    None
}

fn list_tar(path: &Path, display: &str, kind: ArchiveKind, limits: &OpenOptions) -> Result<Vec<(String, Member)>> {
    let (stream, meter) = tar_stream(path, display, kind, limits)?;
    let stream_err = |e: std::io::Error| match meter.tripped() {
        Some(member) => ratio_exceeded(display, &member, limits.max_member_ratio),
        None => CkptError::io(display, "could not read the tar stream", e),
    };
    let mut tar = tar::Archive::new(stream);
    let mut out = Vec::new();
    let entries = tar.entries().map_err(stream_err)?;
    for entry in entries {
        let entry = entry.map_err(stream_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        meter.start_member(&raw);
        let is_file = is_tar_file(entry.header().entry_type());
        out.push((raw, Member { name: String::new(), size: entry.size(), compressed: 0, is_file, zip_index: 0, stored_at: None }));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    fn limits(max_member_bytes: u64) -> OpenOptions {
        OpenOptions { max_member_bytes, ..Default::default() }
    }

    pub(crate) fn make_zip(path: &Path, files: &[(&str, &[u8])], stored: bool) {
        let f = File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let method = if stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, data) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    /// A tar(.gz) written with raw header names (so that hostile names can be made).
    pub(crate) fn make_tar(path: &Path, files: &[(&str, &[u8])], gz: bool) {
        let mut bytes = Vec::new();
        {
            let mut b = tar::Builder::new(&mut bytes);
            for (name, data) in files {
                let mut h = tar::Header::new_gnu();
                let field = &mut h.as_old_mut().name;
                field.fill(0);
                field[..name.len()].copy_from_slice(name.as_bytes());
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            b.finish().unwrap();
        }
        let out = if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            e.finish().unwrap()
        } else {
            bytes
        };
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn names_are_normalized_and_traversal_refused() {
        assert_eq!(normalize("./a/b").unwrap(), "a/b");
        assert_eq!(normalize("a//b/").unwrap(), "a/b");
        assert!(normalize("../x").is_err());
        assert!(normalize("a/../../x").is_err());
        assert!(normalize("/etc/passwd").is_err());
        assert!(normalize("C:/x").is_err());
        assert!(normalize("a\0b").is_err());
    }

    #[test]
    fn zip_members_stored_and_deflated() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        for stored in [true, false] {
            let p = dir.path().join(format!("a{stored}.zip"));
            make_zip(&p, &[("d/x.bin", &data), ("d/y.txt", b"hi")], stored);
            let a = Archive::open(&p, ArchiveKind::Zip, &limits(1 << 30)).unwrap();
            assert_eq!(a.members().len(), 2);
            let b = a.blob("d/x.bin").unwrap();
            assert_eq!(b.len().unwrap(), 10_000);
            assert_eq!(b.read_vec(7, 3).unwrap(), [0, 1, 2]);
            assert!(b.name().ends_with("!d/x.bin"));
            assert!(a.blob("nope").is_err());
        }
    }

    #[test]
    fn tar_and_tgz_members() {
        let dir = tempfile::tempdir().unwrap();
        for gz in [false, true] {
            let p = dir.path().join(if gz { "a.tar.gz" } else { "a.tar" });
            make_tar(&p, &[("./m/x.ckpt", b"hello"), ("m/eval.graph", b"g")], gz);
            let kind = ArchiveKind::of(&p).unwrap();
            let a = Archive::open(&p, kind, &limits(1 << 30)).unwrap();
            assert_eq!(a.members()[0].name, "m/x.ckpt");
            assert_eq!(a.read("m/x.ckpt").unwrap(), b"hello");
            assert_eq!(a.blob("m/eval.graph").unwrap().read_vec(0, 1).unwrap(), b"g");
        }
    }

    #[test]
    fn traversal_members_make_the_archive_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("evil.tar.gz");
        make_tar(&p, &[("ok.ckpt", b"x"), ("../evil.ckpt", b"y")], true);
        let e = Archive::open(&p, ArchiveKind::TarGz, &limits(1 << 30)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("evil.tar.gz!../evil.ckpt"), "{msg}");
        assert!(msg.contains("path traversal"), "{msg}");
        let p = dir.path().join("evil.zip");
        make_zip(&p, &[("/abs.ckpt", b"x")], false);
        let e = Archive::open(&p, ArchiveKind::Zip, &limits(1 << 30)).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }

    #[test]
    fn size_limit_and_lying_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![0u8; 100_000];
        let p = dir.path().join("bomb.zip");
        make_zip(&p, &[("x.ckpt", &big)], false);
        // a small limit: refused before decompressing, naming the member
        let a = Archive::open(&p, ArchiveKind::Zip, &limits(1000)).unwrap();
        let e = a.read("x.ckpt").unwrap_err().to_string();
        assert!(e.contains("bomb.zip!x.ckpt") && e.contains("over the limit of 1000 bytes"), "{e}");
        let p2 = dir.path().join("bomb.tar.gz");
        make_tar(&p2, &[("x.ckpt", &big)], true);
        let a = Archive::open(&p2, ArchiveKind::TarGz, &limits(1000)).unwrap();
        assert!(a.read("x.ckpt").unwrap_err().to_string().contains("over the limit"));

        // a member whose real size exceeds its declared size: patch the declared size
        // (central directory and local header) of a deflated member to 10 bytes
        let mut bytes = std::fs::read(&p).unwrap();
        let size_le = (big.len() as u32).to_le_bytes();
        let mut patched = 0;
        let mut i = 0;
        while i + 4 <= bytes.len() {
            if bytes[i..i + 4] == size_le {
                bytes[i..i + 4].copy_from_slice(&10u32.to_le_bytes());
                patched += 1;
            }
            i += 1;
        }
        assert!(patched >= 1);
        let p3 = dir.path().join("liar.zip");
        std::fs::write(&p3, &bytes).unwrap();
        match Archive::open(&p3, ArchiveKind::Zip, &limits(1 << 30)) {
            Ok(a) => {
                let e = a.read("x.ckpt").unwrap_err().to_string();
                assert!(e.contains("liar.zip!x.ckpt"), "{e}");
            }
            Err(e) => assert!(e.to_string().contains("liar.zip"), "{e}"),
        }
    }

    #[test]
    fn zip_duplicate_names_are_refused_naming_the_member() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dup.zip");
        make_zip(&p, &[("m/x.ckpt", b"first"), ("m/y.ckpt", b"second")], true);
        // Rename the second member to the first one's name (local header and central directory).
        let mut bytes = std::fs::read(&p).unwrap();
        let mut renamed = 0;
        for i in 0..bytes.len() - 8 {
            if &bytes[i..i + 8] == b"m/y.ckpt" {
                bytes[i..i + 8].copy_from_slice(b"m/x.ckpt");
                renamed += 1;
            }
        }
        assert_eq!(renamed, 2);
        std::fs::write(&p, &bytes).unwrap();
        let e = Archive::open(&p, ArchiveKind::Zip, &OpenOptions::default()).unwrap_err();
        assert!(matches!(e, CkptError::ArchiveMember { .. }), "{e}");
        assert!(
            e.to_string().ends_with("dup.zip!m/x.ckpt: the archive holds two files with this name (readers disagree on which one counts)"),
            "{e}"
        );
        // Names that differ only in spelling are the same member too.
        make_zip(&p, &[("m/x.ckpt", b"first"), ("./m//x.ckpt", b"second")], false);
        let e = Archive::open(&p, ArchiveKind::Zip, &OpenOptions::default()).unwrap_err().to_string();
        assert!(e.contains("dup.zip!m/x.ckpt: the archive holds two files with this name"), "{e}");
        // And in a tar.
        let t = dir.path().join("dup.tar");
        make_tar(&t, &[("x.ckpt", b"a"), ("./x.ckpt", b"b")], false);
        let e = Archive::open(&t, ArchiveKind::Tar, &OpenOptions::default()).unwrap_err().to_string();
        assert!(e.contains("dup.tar!x.ckpt: the archive holds two files with this name"), "{e}");
    }

    #[test]
    fn compression_ratio_limit_per_member() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 32 << 20]; // deflates about 1000:1
        let small = vec![0u8; 1 << 20];
        let loose = OpenOptions { max_member_ratio: 5000, ..Default::default() };
        // zip: refused from the declared sizes, before decompressing; small members are exempt.
        let p = dir.path().join("bomb.zip");
        make_zip(&p, &[("big.bin", &zeros), ("small.bin", &small)], false);
        let a = Archive::open(&p, ArchiveKind::Zip, &OpenOptions::default()).unwrap();
        let e = a.read("big.bin").unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}!big.bin: its declared size of 33554432 bytes is more than 100 times", p.display())), "{e}");
        assert!(e.contains("SLIMZOO_MAX_MEMBER_RATIO"), "{e}");
        assert_eq!(a.read("small.bin").unwrap().len(), 1 << 20);
        let a = Archive::open(&p, ArchiveKind::Zip, &loose).unwrap();
        assert_eq!(a.read("big.bin").unwrap().len(), 32 << 20);
        // tar.gz: refused while listing (the stream is decompressed to list it), naming the member.
        let t = dir.path().join("bomb.tar.gz");
        make_tar(&t, &[("small.bin", &small), ("./big.bin", &zeros), ("after.bin", b"x")], true);
        let e = Archive::open(&t, ArchiveKind::TarGz, &OpenOptions::default()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}!big.bin: decompresses to more than 100 times its compressed size", t.display())), "{e}");
        let a = Archive::open(&t, ArchiveKind::TarGz, &loose).unwrap();
        assert_eq!(a.read("big.bin").unwrap().len(), 32 << 20);
        assert_eq!(a.read("after.bin").unwrap(), b"x");
        // Data that compresses like real weights is far from the limit.
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..(20 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        let n = dir.path().join("noise.tar.gz");
        make_tar(&n, &[("w.bin", &noise)], true);
        let a = Archive::open(&n, ArchiveKind::TarGz, &OpenOptions::default()).unwrap();
        assert_eq!(a.read("w.bin").unwrap().len(), 20 << 20);
    }

    #[test]
    fn links_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.tar");
        let mut bytes = Vec::new();
        {
            let mut b = tar::Builder::new(&mut bytes);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_path("m.ckpt").unwrap();
            h.set_link_name("/etc/passwd").unwrap();
            h.set_size(0);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
            b.finish().unwrap();
        }
        std::fs::write(&p, bytes).unwrap();
        let a = Archive::open(&p, ArchiveKind::Tar, &limits(1 << 30)).unwrap();
        assert!(!a.members()[0].is_file);
        assert!(a.read("m.ckpt").unwrap_err().to_string().contains("not followed"));
    }
}

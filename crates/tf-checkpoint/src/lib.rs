//! Pure-Rust reading (and writing) of TensorFlow checkpoints, V1 and V2.
//!
//! [`Checkpoint::open`] accepts a checkpoint prefix, an `.index` or `.data-*` file, a V1 file
//! or the prefix of sharded V1 files, a folder, or a `.zip` / `.tar.gz` archive (read in
//! place). [`Checkpoint::tensors`] lists what is inside without reading tensor data;
//! [`Checkpoint::read`] returns one tensor's bytes (little-endian, row-major), verifying
//! checksums, swapping big-endian data and reassembling partitioned variables.
//! [`write_v2`] writes a V2 checkpoint that TensorFlow reads; [`atomic`] is how every output
//! file is written (temporary name, then rename).
//!
//! One file per format layer, each documenting the layout it parses:
//! [`crc`] (masked CRC32C), `coding` (varints), `proto` (protobuf wire format and the
//! checkpoint messages), `block` and `table` (the SSTable), [`ordered_code`] (V1 and slice
//! keys), `dtype`, `slice` (shapes and slices), `bundle` (V2), `v1` (V1), `archive` and
//! `source` (where the files are), `blob` (random-access reads), [`writer`]; `fuzzing` holds
//! the entry points of the cargo-fuzz harness in `fuzz/` (built only with `--cfg fuzzing`).
//!
//! File bytes are never trusted: every offset, size and element count is checked (with
//! checked arithmetic) against the real file before anything is allocated, and every
//! problem is a [`CkptError`] naming the file and the reason. Nothing here panics on file
//! contents.

mod archive;
pub mod atomic;
mod blob;
mod block;
mod bundle;
mod coding;
pub mod crc;
mod dtype;
mod error;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod ordered_code;
mod proto;
mod slice;
mod source;
mod table;
mod v1;
pub mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use atomic::{AtomicError, AtomicFile};
pub use blob::special_file_kind;

pub use dtype::DType;
pub use error::{CkptError, Result};

/// The two on-disk checkpoint formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One SSTable per shard holding `SavedSlice` protos (TF's old `Saver` format).
    V1,
    /// `.index` table + raw `.data-*` shards ("tensor bundle", the default since TF 0.12).
    V2,
}

/// A tensor as listed in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    /// Full tensor shape, outermost dimension first (empty for a scalar).
    pub shape: Vec<u64>,
}

impl TensorInfo {
    /// Number of elements, `None` if it overflows u64.
    pub fn num_elements(&self) -> Option<u64> {
        slice::num_elements(&self.shape)
    }

    /// Bytes of the tensor's data, `None` for types without a fixed element size or on overflow.
    pub fn byte_size(&self) -> Option<u64> {
        slice::byte_size(&self.shape, self.dtype.size()?)
    }
}

/// A tensor's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorData {
    pub dtype: DType,
    pub shape: Vec<u64>,
    /// Little-endian, row-major, contiguous.
    pub data: Vec<u8>,
}

/// Options of [`Checkpoint::open_with`]: the limits on archive members, which are decompressed
/// into memory when read.
///
/// | field | default | environment variable ([`OpenOptions::from_env`]) |
/// |---|---|---|
/// | [`max_member_bytes`](Self::max_member_bytes) | 2 GiB | `SLIMZOO_MAX_MEMBER_BYTES` (bytes) |
/// | [`max_member_ratio`](Self::max_member_ratio) | 100 | `SLIMZOO_MAX_MEMBER_RATIO` (decompressed : compressed) |
///
/// The defaults are sized to real checkpoints: the largest file the TF-slim model zoo
/// publishes is under 1 GB, and checkpoint data (trained or freshly initialized weights)
/// deflates about 1.1:1, an `.index` about 3.5:1 (measured on a ResNet-v2-152 checkpoint: data
/// 241.5 MB → 224.2 MB, index 33.7 kB → 9.0 kB). Only all-zero data compresses much better
/// (about 1030:1, deflate's limit); members up to [`RATIO_FREE_BYTES`](Self::RATIO_FREE_BYTES)
/// are exempt from the ratio limit, so small all-zero files (tests, untrained toy nets) open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Largest archive member that is decompressed into memory (declared and real size).
    pub max_member_bytes: u64,
    /// Largest ratio of an archive member's decompressed size to its compressed size (for
    /// members above [`RATIO_FREE_BYTES`](Self::RATIO_FREE_BYTES)).
    pub max_member_ratio: u64,
}

impl OpenOptions {
    /// 2 GiB.
    pub const DEFAULT_MAX_MEMBER_BYTES: u64 = 2 << 30;
    /// 100:1.
    pub const DEFAULT_MAX_MEMBER_RATIO: u64 = 100;
    /// 16 MiB: members that decompress to at most this are never refused for their ratio.
    pub const RATIO_FREE_BYTES: u64 = 16 << 20;

    /// The defaults, with `SLIMZOO_MAX_MEMBER_BYTES` (a number of bytes) and
    /// `SLIMZOO_MAX_MEMBER_RATIO` (a whole number ≥ 1) applied if set.
    pub fn from_env() -> Result<OpenOptions> {
        let mut o = OpenOptions::default();
        if let Some(v) = env_number("SLIMZOO_MAX_MEMBER_BYTES", 0, "a number of bytes")? {
            o.max_member_bytes = v;
        }
        if let Some(v) = env_number("SLIMZOO_MAX_MEMBER_RATIO", 1, "a whole number of at least 1")? {
            o.max_member_ratio = v;
        }
        Ok(o)
    }
}

/// The environment variable `name` as a number ≥ `min`, if it is set.
fn env_number(name: &str, min: u64, what: &str) -> Result<Option<u64>> {
    let Some(v) = std::env::var_os(name) else { return Ok(None) };
    let s = v.to_string_lossy();
    match s.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(CkptError::Resolve { path: format!("environment variable {name}"), reason: format!("'{s}' is not {what}") }),
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { max_member_bytes: Self::DEFAULT_MAX_MEMBER_BYTES, max_member_ratio: Self::DEFAULT_MAX_MEMBER_RATIO }
    }
}

#[derive(Debug)]
enum Reader {
    V1(v1::V1Checkpoint),
    V2(bundle::Bundle),
}

/// An open checkpoint: its tensor list is in memory, tensor data is read on demand.
#[derive(Debug)]
pub struct Checkpoint {
    description: String,
    reader: Reader,
    files: Vec<std::path::PathBuf>,
}

pub(crate) fn not_numeric(file: &str, tensor: &str, dtype: DType) -> CkptError {
    let reason = if dtype == DType::String {
        "is not numeric (read it with read_string)".to_string()
    } else {
        "is not numeric and cannot be read as bytes".to_string()
    };
    CkptError::WrongDtype { file: file.to_string(), tensor: tensor.to_string(), dtype: dtype.tf_name(), reason }
}

pub(crate) fn not_string(file: &str, tensor: &str, dtype: DType) -> CkptError {
    CkptError::WrongDtype {
        file: file.to_string(),
        tensor: tensor.to_string(),
        dtype: dtype.tf_name(),
        reason: "is not a string type (read it with read)".into(),
    }
}

impl Checkpoint {
    /// Opens a checkpoint (see the module docs for what `path` may be), reading only its
    /// metadata. The limits on archive members come from the environment
    /// ([`OpenOptions::from_env`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        Self::open_with(path, &OpenOptions::from_env()?)
    }

    /// [`open`](Self::open) with explicit options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Checkpoint> {
        match source::resolve(path.as_ref(), opts)? {
            source::Target::V2 { prefix } => {
                let b = bundle::Bundle::open(&prefix)?;
                let n = b.num_shards();
                let description = format!("V2 checkpoint {} ({n} shard{})", prefix.display(), if n == 1 { "" } else { "s" });
                let mut locs = vec![prefix.with_suffix(".index")];
                locs.extend((0..n).map(|i| prefix.with_suffix(&format!(".data-{i:05}-of-{n:05}"))));
                Ok(Checkpoint { description, reader: Reader::V2(b), files: source::disk_files(&locs) })
            }
            source::Target::V1 { files, shown } => {
                let c = v1::V1Checkpoint::open(&files)?;
                let n = c.num_files();
                let description =
                    if n == 1 { format!("V1 checkpoint {shown}") } else { format!("V1 checkpoint {shown} ({n} shard files)") };
                Ok(Checkpoint { description, reader: Reader::V1(c), files: source::disk_files(&files) })
            }
        }
    }

    /// The files on disk the checkpoint is read from: its `.index` and data shards, its V1
    /// table files, or the archive that holds them. A program that writes files checks its
    /// outputs against these, so that it never writes over its input.
    pub fn files(&self) -> &[std::path::PathBuf] {
        &self.files
    }

    pub fn format(&self) -> Format {
        match self.reader {
            Reader::V1(_) => Format::V1,
            Reader::V2(_) => Format::V2,
        }
    }

    /// What was opened, e.g. "V2 checkpoint /x/model.ckpt (1 shard)".
    pub fn description(&self) -> String {
        self.description.clone()
    }

    /// Every tensor, sorted by name (bytewise), slices of partitioned variables merged.
    pub fn tensors(&self) -> &[TensorInfo] {
        match &self.reader {
            Reader::V1(c) => c.tensors(),
            Reader::V2(b) => b.tensors(),
        }
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        let t = self.tensors();
        t.binary_search_by(|i| i.name.as_str().cmp(name)).ok().and_then(|i| t.get(i))
    }

    /// Reads a numeric tensor: checksums verified, little-endian, slices reassembled.
    pub fn read(&self, name: &str) -> Result<TensorData> {
        match &self.reader {
            Reader::V1(c) => c.read(name),
            Reader::V2(b) => b.read(name),
        }
    }

    /// Reads a `DT_STRING` tensor, one byte string per element (row-major).
    pub fn read_string(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        match &self.reader {
            Reader::V1(c) => c.read_string(name),
            Reader::V2(b) => b.read_string(name),
        }
    }
}

/// Writes `PREFIX.index` and `PREFIX.data-00000-of-00001`, a V2 checkpoint that
/// `tf.train.load_checkpoint` reads: one shard, little-endian, no compression, a masked CRC
/// per tensor, entries sorted by name (the input may come in any order; duplicate names are
/// an error). The prefix's folder is created if needed (as TF's BundleWriter does). Tensor data
/// is streamed to disk as it arrives. Both files are written with [`atomic::AtomicFile`] and
/// renamed into place at the end (data first, then index), so a failure leaves no partial
/// checkpoint behind; existing files of the same prefix are replaced.
pub fn write_v2(prefix: &Path, tensors: &mut dyn Iterator<Item = Result<(String, TensorData)>>) -> Result<()> {
    use std::io::{BufWriter, Write};
    let shown = prefix.display().to_string();
    let dir = match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if prefix.file_name().is_none() {
        return Err(CkptError::Write { file: shown, reason: "the prefix has no file name".into() });
    }
    // Like TF's BundleWriter, create the folder if needed.
    std::fs::create_dir_all(&dir).map_err(|e| CkptError::io(dir.display().to_string(), "could not create the folder", e))?;
    let index_path = source::Loc::Disk(prefix.to_path_buf()).with_suffix(".index");
    let data_path = source::Loc::Disk(prefix.to_path_buf()).with_suffix(".data-00000-of-00001");
    let (source::Loc::Disk(index_path), source::Loc::Disk(data_path)) = (index_path, data_path) else {
        return Err(CkptError::Write { file: shown, reason: "internal: not a disk path".into() });
    };
    let atomic =
        |path: &Path| AtomicFile::create(path, true).map_err(|e| CkptError::io(path.display().to_string(), "could not write", e.into_io()));
    let mut data_tmp = atomic(&data_path)?;
    let mut writer =
        writer::BundleWriter::new(&shown, vec![BufWriter::with_capacity(8 << 20, data_tmp.file())], writer::BundleOptions::default())?;
    for item in tensors {
        let (name, t) = item?;
        writer.add(&name, &t)?;
    }
    let (index, mut sinks) = writer.finish()?;
    let shard = sinks.pop();
    drop(sinks);
    shard
        .ok_or_else(|| CkptError::Write { file: shown.clone(), reason: "internal: no data shard".into() })?
        .into_inner()
        .map_err(|e| CkptError::io(&shown, "could not write the data shard", e.into_error()))?;
    let mut index_tmp = atomic(&index_path)?;
    index_tmp.file().write_all(&index).map_err(|e| CkptError::io(&shown, "could not write the index", e))?;
    let commit = |f: AtomicFile, what: &str| {
        let dest = f.dest().display().to_string();
        f.commit().map_err(|e| CkptError::io(dest, what, e.into_io()))
    };
    // Data first, then the index that makes the checkpoint visible.
    commit(data_tmp, "could not move the data shard into place")?;
    commit(index_tmp, "could not move the index into place")?;
    Ok(())
}

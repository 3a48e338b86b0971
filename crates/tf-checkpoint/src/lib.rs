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

/// Options of [`Checkpoint::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Largest archive member that is decompressed into memory.
    pub max_member_bytes: u64,
}

impl OpenOptions {
    /// 16 GiB.
    pub const DEFAULT_MAX_MEMBER_BYTES: u64 = 16 << 30;

    /// The defaults, with `SLIMZOO_MAX_MEMBER_BYTES` (a number of bytes) applied if set.
    pub fn from_env() -> Result<OpenOptions> {
        let mut o = OpenOptions::default();
        if let Some(v) = std::env::var_os("SLIMZOO_MAX_MEMBER_BYTES") {
            let s = v.to_string_lossy();
            o.max_member_bytes = s.trim().parse().map_err(|_| CkptError::Resolve {
                path: "SLIMZOO_MAX_MEMBER_BYTES".into(),
                reason: format!("'{s}' is not a number of bytes"),
            })?;
        }
        Ok(o)
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { max_member_bytes: Self::DEFAULT_MAX_MEMBER_BYTES }
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
    /// metadata. `SLIMZOO_MAX_MEMBER_BYTES` caps archive members.
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
                Ok(Checkpoint { description, reader: Reader::V2(b) })
            }
            source::Target::V1 { files, shown } => {
                let c = v1::V1Checkpoint::open(&files)?;
                let n = c.num_files();
                let description =
                    if n == 1 { format!("V1 checkpoint {shown}") } else { format!("V1 checkpoint {shown} ({n} shard files)") };
                Ok(Checkpoint { description, reader: Reader::V1(c) })
            }
        }
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

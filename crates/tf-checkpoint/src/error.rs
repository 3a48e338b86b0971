//! The one error type of the checkpoint layer.
//!
//! Every variant names the file it is about: a path on disk, or `archive.zip!member` for a
//! member of an archive. Messages are plain sentences; the structured fields let callers
//! react to a specific failure (e.g. a checksum mismatch) without parsing text.

use thiserror::Error;

/// `Result` with [`CkptError`] as the error type.
pub type Result<T> = std::result::Result<T, CkptError>;

/// What went wrong while finding, reading or writing a TensorFlow checkpoint.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CkptError {
    /// The operating system refused an operation on a file.
    #[error("{file}: {action}: {source}")]
    Io {
        file: String,
        /// What was being done, e.g. "could not read 64 bytes at offset 10".
        action: String,
        #[source]
        source: std::io::Error,
    },

    /// Nothing at the given path (no file, no `.index`, no V1 shards).
    #[error("{file}: not found ({reason})")]
    NotFound { file: String, reason: String },

    /// The path could not be resolved to exactly one checkpoint (empty folder, several
    /// candidates, bad `checkpoint` state file, ...).
    #[error("{path}: {reason}")]
    Resolve { path: String, reason: String },

    /// The file does not end with a table footer.
    #[error("{file}: not a TensorFlow checkpoint table: {reason}")]
    NotATable { file: String, reason: String },

    /// A V2 `.data-*` shard was given where a table (V1 checkpoint or `.index`) was expected.
    #[error("{file}: is a V2 data shard, not a V1 table; open its .index or its prefix instead")]
    DataShardAsTable { file: String },

    /// A table block's masked CRC32C does not match its contents.
    #[error("{file}: checksum mismatch in block at offset {offset} (stored {stored:#010x}, computed {computed:#010x})")]
    BlockChecksum { file: String, offset: u64, stored: u32, computed: u32 },

    /// A table block is structurally broken (bad restart array, entry past the end, ...).
    #[error("{file}: corrupt block at offset {offset}: {reason}")]
    CorruptBlock { file: String, offset: u64, reason: String },

    /// The table as a whole is inconsistent (bad footer handle, keys out of order, ...).
    #[error("{file}: corrupt table: {reason}")]
    CorruptTable { file: String, reason: String },

    /// A protobuf message stored in the file cannot be decoded.
    #[error("{file}: malformed {message}: {reason} (at byte {offset} of the record)")]
    Proto { file: String, message: String, offset: usize, reason: String },

    /// The checkpoint's metadata is inconsistent (bad header, bad meta record, ...).
    #[error("{file}: {reason}")]
    Corrupt { file: String, reason: String },

    /// The metadata or data of one tensor is invalid (absurd shape, size mismatch, ...).
    #[error("{file}: tensor '{tensor}': {reason}")]
    BadTensor { file: String, tensor: String, reason: String },

    /// The masked CRC32C of a tensor's bytes in a V2 data shard does not match.
    #[error("{file}: tensor '{tensor}' in shard {shard}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    TensorChecksum { file: String, tensor: String, shard: u32, stored: u32, computed: u32 },

    /// A tensor's byte range lies (partly) outside its data shard.
    #[error("{file}: tensor '{tensor}' in shard {shard}: data range {start}..{end} is past the end of the file ({len} bytes)")]
    DataOutOfRange { file: String, tensor: String, shard: u32, start: u64, end: u64, len: u64 },

    /// A data shard (V2) or a shard file (sharded V1) is missing.
    #[error("{file}: shard {shard} of {num_shards} is missing: {missing} does not exist")]
    MissingShard { file: String, shard: u32, num_shards: u32, missing: String },

    /// No tensor with that name in the checkpoint.
    #[error("{file}: no tensor named '{tensor}'")]
    TensorNotFound { file: String, tensor: String },

    /// `read` was called on a string/variant/resource tensor, or `read_string` on a numeric one.
    #[error("{file}: tensor '{tensor}': dtype {dtype} {reason}")]
    WrongDtype { file: String, tensor: String, dtype: &'static str, reason: String },

    /// A feature of the file that this reader does not implement.
    #[error("{file}: {what} is not supported")]
    Unsupported { file: String, what: String },

    /// An archive member cannot be used (path traversal, size over the limit, symlink, ...).
    #[error("{archive}!{member}: {reason}")]
    ArchiveMember { archive: String, member: String, reason: String },

    /// The archive itself cannot be read.
    #[error("{archive}: {reason}")]
    Archive { archive: String, reason: String },

    /// Writing a checkpoint failed for a reason other than I/O (duplicate names, bad input).
    #[error("{file}: cannot write: {reason}")]
    Write { file: String, reason: String },
}

impl CkptError {
    pub(crate) fn io(file: impl Into<String>, action: impl Into<String>, source: std::io::Error) -> Self {
        CkptError::Io { file: file.into(), action: action.into(), source }
    }
}

/// Shows a table key for an error message: printable ASCII as is, other bytes escaped.
pub(crate) fn show_key(key: &[u8]) -> String {
    const MAX: usize = 80;
    let shown: String = key.iter().take(MAX).flat_map(|b| b.escape_ascii()).map(char::from).collect();
    if key.len() > MAX { format!("{shown}...") } else { shown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_the_reason() {
        let e = CkptError::BlockChecksum { file: "/x/a.index".into(), offset: 1234, stored: 0xdeadbeef, computed: 1 };
        assert_eq!(e.to_string(), "/x/a.index: checksum mismatch in block at offset 1234 (stored 0xdeadbeef, computed 0x00000001)");
        let e = CkptError::DataOutOfRange {
            file: "m.data-00001-of-00002".into(),
            tensor: "a/b".into(),
            shard: 1,
            start: 100,
            end: 2000,
            len: 1500,
        };
        assert_eq!(
            e.to_string(),
            "m.data-00001-of-00002: tensor 'a/b' in shard 1: data range 100..2000 is past the end of the file (1500 bytes)"
        );
        let e = CkptError::NotATable { file: "f".into(), reason: "bad magic number".into() };
        assert_eq!(e.to_string(), "f: not a TensorFlow checkpoint table: bad magic number");
        let e = CkptError::ArchiveMember { archive: "a.zip".into(), member: "../x".into(), reason: "r".into() };
        assert_eq!(e.to_string(), "a.zip!../x: r");
    }

    #[test]
    fn keys_are_escaped_and_shortened() {
        assert_eq!(show_key(b"a/b"), "a/b");
        assert_eq!(show_key(&[0, 0x77, 0xff]), "\\x00w\\xff");
        assert!(show_key(&[b'a'; 200]).ends_with("..."));
    }
}

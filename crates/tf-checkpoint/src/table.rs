//! The immutable sorted string table ("SSTable") that holds V2 `.index` files and V1
//! checkpoints: LevelDB's table format without filter blocks (TF `core/lib/io/table.cc`,
//! `format.cc`, `table_format.txt`).
//!
//! ```text
//! file   := data_block* metaindex_block index_block footer
//! footer := metaindex_handle index_handle zero padding to 40 bytes
//!           | magic: fixed64 = 0xdb4775248b80fb57          (48 bytes in all)
//! handle := offset: varint64 | size: varint64              (size excludes the trailer)
//! block on disk := contents[size] | type: u8 | crc: fixed32
//! ```
//!
//! `crc` is the *masked* CRC32C of the contents followed by the type byte. Type 0 means the
//! contents are stored as is, type 1 that they are a raw Snappy block (no framing). The index
//! block has one entry per data block: a separator key (≥ every key of that block and < the
//! first key of the next) mapping to the block's handle. The metaindex block is empty in TF
//! files; only its checksum is verified. The footer's padding must be zero (as TF writes it).

use std::ops::Range;

use super::blob::Blob;
use super::block::Block;
use super::coding::{decode_varint64, fixed32_at};
use super::crc;
use super::error::{CkptError, Result, show_key};

/// Size of the footer at the end of every table.
pub(crate) const FOOTER_LEN: u64 = 48;
/// `kTableMagicNumber`, stored as a little-endian fixed64 at the very end of the file.
pub(crate) const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Compression type byte + masked CRC after each block.
pub(crate) const BLOCK_TRAILER_LEN: u64 = 5;
/// Block type byte: stored as is.
pub(crate) const NO_COMPRESSION: u8 = 0;
/// Block type byte: raw Snappy.
pub(crate) const SNAPPY_COMPRESSION: u8 = 1;
/// Raw Snappy cannot expand data more than ~21.3× (a 3-byte copy yields at most 64 bytes),
/// so a claimed decompressed length above this ratio is a lie.
const MAX_SNAPPY_RATIO: u64 = 22;

/// Where a block is: offset and size of its contents (without the trailer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

impl BlockHandle {
    /// Decodes a handle from the start of `buf`; returns it and the bytes used.
    pub fn decode(buf: &[u8]) -> Option<(BlockHandle, usize)> {
        let (offset, n1) = decode_varint64(buf)?;
        let (size, n2) = decode_varint64(buf.get(n1..)?)?;
        Some((BlockHandle { offset, size }, n1 + n2))
    }
}

/// A value found in a table: the block it lives in and its range there.
#[derive(Debug)]
pub(crate) struct TableValue {
    block: Block,
    range: Range<usize>,
}

impl TableValue {
    pub fn bytes(&self) -> &[u8] {
        self.block.value(self.range.clone())
    }
}

/// An open table: the footer and the index block are read and checked.
#[derive(Debug)]
pub(crate) struct Table {
    blob: Blob,
    file_len: u64,
    /// Separator key and handle of every data block, in order.
    index: Vec<(Vec<u8>, BlockHandle)>,
}

impl Table {
    /// Reads the footer (magic number first) and the index block.
    pub fn open(blob: Blob) -> Result<Table> {
        let file_len = blob.len()?;
        if file_len < FOOTER_LEN {
            return Err(CkptError::NotATable {
                file: blob.name().to_string(),
                reason: format!("the file is too short ({file_len} bytes) to hold a table footer (48 bytes)"),
            });
        }
        let footer = blob.read_vec(file_len - FOOTER_LEN, FOOTER_LEN)?;
        let magic_lo = fixed32_at(&footer, 40).unwrap_or_default();
        let magic_hi = fixed32_at(&footer, 44).unwrap_or_default();
        if (u64::from(magic_hi) << 32 | u64::from(magic_lo)) != TABLE_MAGIC {
            return Err(CkptError::NotATable { file: blob.name().to_string(), reason: "bad magic number".into() });
        }
        let corrupt = |reason: String| CkptError::CorruptTable { file: blob.name().to_string(), reason };
        let (metaindex, n) =
            BlockHandle::decode(&footer).ok_or_else(|| corrupt("the footer's metaindex handle is not a valid varint pair".into()))?;
        let (index_handle, n2) = BlockHandle::decode(footer.get(n..).unwrap_or_default())
            .ok_or_else(|| corrupt("the footer's index handle is not a valid varint pair".into()))?;
        if n + n2 > 40 {
            return Err(corrupt("the footer's block handles are longer than 40 bytes".into()));
        }
        // TF (LevelDB) pads the handles with zeros; it does not check them, this reader does,
        // so that a changed byte anywhere in the footer is noticed.
        if footer.get(n + n2..40).is_some_and(|pad| pad.iter().any(|&b| b != 0)) {
            return Err(corrupt("the footer's padding after the block handles is not zero".into()));
        }
        let mut table = Table { blob, file_len, index: Vec::new() };
        // TF never uses the metaindex block (it is empty), but its checksum is verified so
        // that no byte of the file goes unchecked.
        table.read_block(metaindex, "metaindex block")?;
        let index_block = table.read_block(index_handle, "index block")?;
        let mut index = Vec::new();
        for item in index_block.iter() {
            let entry = item.map_err(|reason| table.corrupt_block(index_handle.offset, reason))?;
            let value = index_block.value(entry.value.clone());
            let handle = match BlockHandle::decode(value) {
                Some((h, used)) if used == value.len() => h,
                _ => {
                    return Err(table.corrupt_block(
                        index_handle.offset,
                        format!("the index entry for '{}' is not a block handle", show_key(&entry.key)),
                    ));
                }
            };
            table.check_handle(handle, &format!("data block for index entry '{}'", show_key(&entry.key)))?;
            index.push((entry.key, handle));
        }
        table.index = index;
        Ok(table)
    }

    /// The name of the file (for messages).
    pub fn name(&self) -> &str {
        self.blob.name()
    }

    fn corrupt_block(&self, offset: u64, reason: String) -> CkptError {
        CkptError::CorruptBlock { file: self.blob.name().to_string(), offset, reason }
    }

    /// A block (with its trailer) must lie before the footer.
    fn check_handle(&self, h: BlockHandle, what: &str) -> Result<()> {
        let limit = self.file_len - FOOTER_LEN;
        let end = h.offset.checked_add(h.size).and_then(|e| e.checked_add(BLOCK_TRAILER_LEN));
        match end {
            Some(end) if end <= limit => Ok(()),
            _ => Err(CkptError::CorruptTable {
                file: self.blob.name().to_string(),
                reason: format!(
                    "the {what} (offset {}, {} bytes + 5-byte trailer) lies outside the file's {limit} bytes of blocks",
                    h.offset, h.size
                ),
            }),
        }
    }

    /// Reads a block and its trailer in one read, checks the CRC, decompresses.
    fn read_block(&self, h: BlockHandle, what: &str) -> Result<Block> {
        self.check_handle(h, what)?;
        let mut raw = self.blob.read_vec(h.offset, h.size + BLOCK_TRAILER_LEN)?;
        let n = raw.len() - BLOCK_TRAILER_LEN as usize;
        let block_type = raw.get(n).copied().unwrap_or_default();
        let stored = crc::unmask(fixed32_at(&raw, n + 1).unwrap_or_default());
        let computed = crc::value(raw.get(..=n).unwrap_or_default());
        if stored != computed && !cfg!(fuzzing) {
            return Err(CkptError::BlockChecksum { file: self.blob.name().to_string(), offset: h.offset, stored, computed });
        }
        raw.truncate(n);
        let contents = match block_type {
            NO_COMPRESSION => raw,
            SNAPPY_COMPRESSION => self.decompress(&raw, h.offset)?,
            other => {
                return Err(self.corrupt_block(h.offset, format!("unknown block compression type {other}")));
            }
        };
        Block::new(contents).map_err(|reason| self.corrupt_block(h.offset, reason))
    }

    fn decompress(&self, compressed: &[u8], offset: u64) -> Result<Vec<u8>> {
        let claimed =
            snap::raw::decompress_len(compressed).map_err(|e| self.corrupt_block(offset, format!("bad snappy block header: {e}")))?;
        let limit = (compressed.len() as u64).saturating_mul(MAX_SNAPPY_RATIO).saturating_add(64);
        if claimed as u64 > limit {
            return Err(
                self.corrupt_block(offset, format!("snappy block of {} bytes claims to expand to {claimed} bytes", compressed.len()))
            );
        }
        let mut out = vec![0u8; claimed];
        let written = snap::raw::Decoder::new()
            .decompress(compressed, &mut out)
            .map_err(|e| self.corrupt_block(offset, format!("corrupt snappy block: {e}")))?;
        if written != claimed {
            return Err(self.corrupt_block(offset, format!("snappy block expanded to {written} bytes, not {claimed}")));
        }
        Ok(out)
    }

    /// Calls `f(key, value)` for every entry, in order. Checks that keys strictly increase
    /// across blocks and stay within their block's index separator.
    pub fn scan(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        let mut prev: Option<Vec<u8>> = None;
        for (separator, handle) in &self.index {
            let block = self.read_block(*handle, "data block")?;
            for item in block.iter() {
                let entry = item.map_err(|reason| self.corrupt_block(handle.offset, reason))?;
                if let Some(p) = &prev
                    && entry.key <= *p
                {
                    return Err(self.corrupt_block(
                        handle.offset,
                        format!("keys out of order: '{}' does not sort after '{}'", show_key(&entry.key), show_key(p)),
                    ));
                }
                if entry.key > *separator {
                    return Err(self.corrupt_block(
                        handle.offset,
                        format!("key '{}' sorts after its index entry '{}'", show_key(&entry.key), show_key(separator)),
                    ));
                }
                f(&entry.key, block.value(entry.value.clone()))?;
                prev = Some(entry.key);
            }
        }
        Ok(())
    }

    /// Point lookup through the index: the first block whose separator is ≥ `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<TableValue>> {
        let i = self.index.partition_point(|(sep, _)| sep.as_slice() < key);
        let Some((_, handle)) = self.index.get(i) else {
            return Ok(None);
        };
        let block = self.read_block(*handle, "data block")?;
        let found = block.seek(key).map_err(|reason| self.corrupt_block(handle.offset, reason))?;
        Ok(found.map(|range| TableValue { block, range }))
    }

    /// Size of the file.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::writer::{Compression, TableBuilder, TableOptions};

    pub(crate) fn opts(block_size: usize, restart_interval: usize, compression: Compression) -> TableOptions {
        TableOptions { block_size, restart_interval, compression }
    }

    pub(crate) fn build(entries: &[(Vec<u8>, Vec<u8>)], o: TableOptions) -> Vec<u8> {
        let mut t = TableBuilder::new(o);
        for (k, v) in entries {
            t.add(k, v).unwrap();
        }
        t.finish()
    }

    fn open(bytes: Vec<u8>) -> Result<Table> {
        Table::open(Blob::memory("t.index".into(), bytes))
    }

    fn all(t: &Table) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        t.scan(|k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    pub(crate) fn sample(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> =
            (0..n).map(|i| (format!("layer{}/w{i:03}", i % 7).into_bytes(), vec![(i % 251) as u8; 1 + i % 40])).collect();
        v.sort();
        v.insert(0, (Vec::new(), b"header".to_vec()));
        v
    }

    #[test]
    fn empty_table_has_tf_layout() {
        let bytes = build(&[], TableOptions::default());
        // empty data? none: metaindex block (8 + 5), index block (8 + 5), footer 48.
        assert_eq!(bytes.len(), 13 + 13 + 48);
        assert_eq!(&bytes[bytes.len() - 8..], [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]);
        assert_eq!(&bytes[..8], [0, 0, 0, 0, 1, 0, 0, 0]);
        let t = open(bytes).unwrap();
        assert_eq!(t.index.len(), 0);
        assert!(all(&t).unwrap().is_empty());
        assert!(t.get(b"").unwrap().is_none());
    }

    #[test]
    fn roundtrip_multi_block_with_restarts_and_snappy() {
        let data = sample(300);
        for compression in [Compression::None, Compression::Snappy] {
            for (bs, ri) in [(32, 1), (64, 2), (200, 3), (262_144, 16)] {
                let bytes = build(&data, opts(bs, ri, compression));
                let t = open(bytes).unwrap();
                if bs < 1000 {
                    assert!(t.index.len() > 10, "{bs}");
                }
                assert_eq!(all(&t).unwrap(), data);
                for (k, v) in &data {
                    assert_eq!(t.get(k).unwrap().unwrap().bytes(), v.as_slice(), "{}", show_key(k));
                }
                assert!(t.get(b"layer0/w0000").unwrap().is_none());
                assert!(t.get(b"zzz").unwrap().is_none());
                assert!(t.get(b"\x00").unwrap().is_none());
            }
        }
    }

    #[test]
    fn snappy_blocks_are_really_compressed() {
        let data = sample(300);
        let plain = build(&data, opts(4096, 16, Compression::None));
        let snappy = build(&data, opts(4096, 16, Compression::Snappy));
        assert!(snappy.len() < plain.len());
        // find a block with type byte 1
        let t = open(snappy.clone()).unwrap();
        let (_, h) = t.index[0];
        assert_eq!(snappy[(h.offset + h.size) as usize], SNAPPY_COMPRESSION);
    }

    #[test]
    fn wrong_magic_and_short_files() {
        let mut bytes = build(&sample(5), TableOptions::default());
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        let e = open(bytes).unwrap_err();
        assert!(matches!(e, CkptError::NotATable { .. }));
        assert!(e.to_string().contains("bad magic number"), "{e}");
        let e = open(vec![0; 10]).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let data = sample(40);
        let bytes = build(&data, opts(64, 2, Compression::None));
        let footer_start = bytes.len() - 48;
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            let result = open(b).and_then(|t| all(&t));
            match result {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with("t.index: "), "{msg}");
                    if i < footer_start {
                        assert!(matches!(e, CkptError::BlockChecksum { .. } | CkptError::CorruptTable { .. }), "byte {i}: {msg}");
                    }
                }
                // Flips in the footer padding or in a handle's unused high bits may be harmless.
                Ok(got) => {
                    assert!(i >= footer_start, "byte {i} flipped without error");
                    assert_eq!(got, data);
                }
            }
        }
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        let bytes = build(&sample(30), opts(64, 2, Compression::Snappy));
        for cut in 0..bytes.len() {
            let r = open(bytes[..cut].to_vec()).and_then(|t| all(&t));
            assert!(r.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn index_handle_outside_the_file() {
        let mut bytes = build(&sample(5), TableOptions::default());
        let n = bytes.len();
        // Rewrite the footer: same metaindex handle, index at a huge offset.
        let (meta, used) = BlockHandle::decode(&bytes[n - 48..]).unwrap();
        let mut footer = bytes[n - 48..n - 48 + used].to_vec();
        assert_eq!(BlockHandle::decode(&footer).unwrap().0, meta);
        crate::coding::put_varint64(&mut footer, 1 << 40);
        crate::coding::put_varint64(&mut footer, 10);
        footer.resize(40, 0);
        bytes[n - 48..n - 8].copy_from_slice(&footer);
        let e = open(bytes).unwrap_err();
        assert!(matches!(e, CkptError::CorruptTable { .. }), "{e}");
        assert!(e.to_string().contains("outside the file"), "{e}");
    }

    #[test]
    fn unknown_compression_type() {
        let data = sample(3);
        let mut bytes = build(&data, TableOptions::default());
        // the first data block starts at 0; patch its type byte and fix its crc
        let t = open(bytes.clone()).unwrap();
        let (_, h) = t.index[0];
        let n = h.size as usize;
        bytes[n] = 7;
        let c = crc::mask(crc::value(&bytes[..=n]));
        bytes[n + 1..n + 5].copy_from_slice(&c.to_le_bytes());
        let t = open(bytes).unwrap();
        let e = all(&t).unwrap_err();
        assert!(e.to_string().contains("unknown block compression type 7"), "{e}");
    }

    #[test]
    fn lying_snappy_length_is_refused_before_allocating() {
        let mut bytes = build(&[(b"a".to_vec(), vec![1; 1000])], opts(4096, 16, Compression::Snappy));
        let t = open(bytes.clone()).unwrap();
        let (_, h) = t.index[0];
        let start = h.offset as usize;
        let n = h.size as usize;
        assert_eq!(bytes[start + n], SNAPPY_COMPRESSION);
        // replace the block by: varint(1<<31) + 3 junk bytes
        let mut fake = Vec::new();
        crate::coding::put_varint64(&mut fake, 1 << 31);
        fake.resize(n, 0);
        bytes[start..start + n].copy_from_slice(&fake);
        let c = crc::mask(crc::value(&bytes[start..=start + n]));
        bytes[start + n + 1..start + n + 5].copy_from_slice(&c.to_le_bytes());
        let e = all(&open(bytes).unwrap()).unwrap_err();
        assert!(e.to_string().contains("claims to expand"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn roundtrip_any_entries(
            mut entries in proptest::collection::vec(
                (proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                 proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
                0..60),
            block_size in 1usize..300,
            restart_interval in 1usize..5,
            snappy in proptest::prelude::any::<bool>(),
        ) {
            entries.sort();
            entries.dedup_by(|a, b| a.0 == b.0);
            let compression = if snappy { Compression::Snappy } else { Compression::None };
            let t = open(build(&entries, opts(block_size, restart_interval, compression))).unwrap();
            proptest::prop_assert_eq!(all(&t).unwrap(), entries.clone());
            for (k, v) in &entries {
                let got = t.get(k).unwrap().unwrap();
                proptest::prop_assert_eq!(got.bytes(), v.as_slice());
            }
        }

        #[test]
        fn mutated_tables_never_panic(
            edits in proptest::collection::vec((0usize..4000, proptest::prelude::any::<u8>()), 1..6),
            cut in 0usize..5000,
        ) {
            let bytes = build(&sample(60), opts(48, 2, Compression::Snappy));
            let mut b = bytes.clone();
            for (pos, val) in edits {
                let i = pos % b.len();
                b[i] = val;
            }
            b.truncate(cut.max(1));
            if let Ok(t) = open(b) {
                let _ = all(&t);
                let _ = t.get(b"layer3/w010");
            }
        }

        #[test]
        fn random_bytes_never_panic(mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), magic in proptest::prelude::any::<bool>()) {
            if magic {
                bytes.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
            }
            if let Ok(t) = open(bytes) {
                let _ = all(&t);
                let _ = t.get(b"");
            }
        }
    }

    #[test]
    fn keys_out_of_order_across_blocks() {
        let mut t = TableBuilder::new(opts(16, 1, Compression::None));
        t.add(b"b", &[1; 20]).unwrap();
        t.add_unchecked(b"a", &[2; 20]);
        let bytes = t.finish();
        let e = open(bytes).and_then(|t| all(&t)).unwrap_err();
        assert!(e.to_string().contains("out of order") || e.to_string().contains("sorts after"), "{e}");
        // the checked builder refuses it
        let mut t = TableBuilder::new(TableOptions::default());
        t.add(b"b", b"").unwrap();
        assert!(t.add(b"a", b"").is_err());
        assert!(t.add(b"b", b"").is_err());
    }
}

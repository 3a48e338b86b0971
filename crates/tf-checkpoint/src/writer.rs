//! Writers for the formats this module reads: table blocks and tables, V2 bundles (`.index`
//! + `.data-*` shards) and V1 checkpoint tables.
//!
//! [`write_v2`](super::write_v2) uses them to export checkpoints that TensorFlow reads.
//! Tests use their options (tiny blocks, restart interval 1–2, Snappy blocks, big-endian
//! data, several shards, partitioned variables, unpacked V1 values) and their raw entry
//! points ([`TableBuilder::add_unchecked`], [`BundleWriter::add_raw_entry`],
//! [`BundleWriter::append_raw`]) to build unusual and hostile files.

use std::collections::BTreeMap;
use std::io::Write;

use super::TensorData;
use super::coding::put_varint64;
use super::crc;
use super::dtype::DType;
use super::error::{CkptError, Result, show_key};
use super::ordered_code::encode_tensor_name_slice;
use super::proto::{
    BundleHeaderProto, SavedSliceMeta, SavedTensorSliceMeta, TensorShapeProto, ValueField, VersionDef, encode_saved_meta,
    encode_saved_slice, encode_string_values, encode_tensor_values,
};
use super::table::{NO_COMPRESSION, SNAPPY_COMPRESSION, TABLE_MAGIC};

pub use super::proto::{BundleEntryProto, Extent, TensorSliceProto};

/// Block compression of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Blocks stored as is (what TF writes today).
    #[default]
    None,
    /// Raw Snappy, kept only where it saves at least 12.5% (as TF's `TableBuilder`).
    Snappy,
}

/// Options of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// A data block is closed once its size estimate reaches this many bytes.
    pub block_size: usize,
    /// Every this many entries a data block stores a full key (a restart point).
    pub restart_interval: usize,
    pub compression: Compression,
}

impl Default for TableOptions {
    /// TF's values: 256 KiB blocks, restart interval 16, no compression.
    fn default() -> Self {
        TableOptions { block_size: 262_144, restart_interval: 16, compression: Compression::None }
    }
}

/// Builds one table block (layout: `src/ckpt/block.rs`).
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder { buf: Vec::new(), restarts: vec![0], counter: 0, interval: restart_interval.max(1), last_key: Vec::new() }
    }

    /// Appends an entry (no order check).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.counter < self.interval {
            key.iter().zip(&self.last_key).take_while(|(a, b)| a == b).count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
            0
        };
        put_varint64(&mut self.buf, shared as u64);
        put_varint64(&mut self.buf, (key.len() - shared) as u64);
        put_varint64(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
    }

    /// Size of the finished block.
    pub fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The block contents: entries, restart array, restart count.
    pub fn finish(mut self) -> Vec<u8> {
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.buf
    }
}

/// Shortest key `k` with `start <= k < limit` (LevelDB's bytewise `FindShortestSeparator`).
fn shortest_separator(start: &[u8], limit: &[u8]) -> Vec<u8> {
    let common = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if common < start.len() && common < limit.len() {
        let b = start[common];
        if b < 0xff && b + 1 < limit[common] {
            let mut k = start[..=common].to_vec();
            k[common] = b + 1;
            return k;
        }
    }
    start.to_vec()
}

/// Shortest key ≥ `key` (LevelDB's bytewise `FindShortSuccessor`).
fn short_successor(key: &[u8]) -> Vec<u8> {
    match key.iter().position(|&b| b != 0xff) {
        Some(i) => {
            let mut k = key[..=i].to_vec();
            k[i] += 1;
            k
        }
        None => key.to_vec(),
    }
}

/// Builds a table in memory (layout: `src/ckpt/table.rs`).
#[derive(Debug)]
pub struct TableBuilder {
    opts: TableOptions,
    out: Vec<u8>,
    data: BlockBuilder,
    index: BlockBuilder,
    last_key: Vec<u8>,
    pending: Option<(u64, u64)>,
    entries: usize,
}

impl TableBuilder {
    pub fn new(opts: TableOptions) -> Self {
        TableBuilder {
            opts,
            out: Vec::new(),
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            last_key: Vec::new(),
            pending: None,
            entries: 0,
        }
    }

    /// Adds an entry; keys must be strictly increasing (bytewise).
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.entries > 0 && key <= self.last_key.as_slice() {
            return Err(CkptError::Write {
                file: "table".into(),
                reason: format!("key '{}' does not sort after '{}'", show_key(key), show_key(&self.last_key)),
            });
        }
        self.add_unchecked(key, value);
        Ok(())
    }

    /// Adds an entry without checking the key order (for building malformed test files).
    pub fn add_unchecked(&mut self, key: &[u8], value: &[u8]) {
        if let Some((offset, size)) = self.pending.take() {
            let sep = shortest_separator(&self.last_key, key);
            let sep = if sep.as_slice() < key { sep } else { self.last_key.clone() };
            self.index.add(&sep, &encode_handle(offset, size));
        }
        self.data.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        if self.data.size_estimate() >= self.opts.block_size {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.data.is_empty() {
            return;
        }
        let block = std::mem::replace(&mut self.data, BlockBuilder::new(self.opts.restart_interval));
        self.pending = Some(self.write_block(block.finish()));
    }

    fn write_block(&mut self, raw: Vec<u8>) -> (u64, u64) {
        let (contents, block_type) = match self.opts.compression {
            Compression::Snappy => match snap::raw::Encoder::new().compress_vec(&raw) {
                Ok(c) if c.len() < raw.len() - raw.len() / 8 => (c, SNAPPY_COMPRESSION),
                _ => (raw, NO_COMPRESSION),
            },
            Compression::None => (raw, NO_COMPRESSION),
        };
        let offset = self.out.len() as u64;
        self.out.extend_from_slice(&contents);
        self.out.push(block_type);
        let c = crc::mask(crc::extend(crc::value(&contents), &[block_type]));
        self.out.extend_from_slice(&c.to_le_bytes());
        (offset, contents.len() as u64)
    }

    /// Writes the last data block, the (empty) metaindex block, the index block and the
    /// footer, and returns the file's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        let meta = self.write_block(BlockBuilder::new(self.opts.restart_interval).finish());
        if let Some((offset, size)) = self.pending.take() {
            let sep = short_successor(&self.last_key);
            self.index.add(&sep, &encode_handle(offset, size));
        }
        let index_block = std::mem::replace(&mut self.index, BlockBuilder::new(1)).finish();
        let index = self.write_block(index_block);
        let mut footer = encode_handle(meta.0, meta.1);
        footer.extend_from_slice(&encode_handle(index.0, index.1));
        footer.resize(40, 0);
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        self.out.extend_from_slice(&footer);
        self.out
    }
}

fn encode_handle(offset: u64, size: u64) -> Vec<u8> {
    let mut v = Vec::new();
    put_varint64(&mut v, offset);
    put_varint64(&mut v, size);
    v
}

fn bad_input(file: &str, reason: String) -> CkptError {
    CkptError::Write { file: file.to_string(), reason }
}

/// Checks that `t.data` holds exactly `numel × element size` bytes.
fn check_tensor_data(file: &str, name: &str, t: &TensorData) -> Result<usize> {
    let elem = t.dtype.size().ok_or_else(|| bad_input(file, format!("tensor '{name}': dtype {} has no fixed element size", t.dtype)))?;
    let expected = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(elem as u64))
        .ok_or_else(|| bad_input(file, format!("tensor '{name}': shape {:?} is too large", t.shape)))?;
    if expected != t.data.len() as u64 {
        return Err(bad_input(
            file,
            format!("tensor '{name}': {} data bytes for shape {:?} of {} ({expected} bytes)", t.data.len(), t.shape, t.dtype),
        ));
    }
    Ok(elem)
}

fn shape_proto(shape: &[u64]) -> TensorShapeProto {
    TensorShapeProto { dims: shape.iter().map(|&d| d as i64).collect(), unknown_rank: false }
}

/// Slice extents `(start, length)` per dimension → TF's `TensorSlice` proto and key extents.
/// A dimension covered whole is written as a full extent, as TF does.
fn slice_protos(file: &str, name: &str, full_shape: &[u64], extents: &[(u64, u64)]) -> Result<(TensorSliceProto, Vec<(i64, i64)>)> {
    if extents.len() != full_shape.len() {
        return Err(bad_input(file, format!("tensor '{name}': slice of rank {} for a tensor of rank {}", extents.len(), full_shape.len())));
    }
    let mut proto = TensorSliceProto::default();
    let mut key = Vec::new();
    for (&(start, len), &dim) in extents.iter().zip(full_shape) {
        if start == 0 && len == dim {
            proto.extents.push(Extent { start: 0, length: None });
            key.push((0, -1));
        } else if start.checked_add(len).is_none_or(|e| e > dim) || len == 0 {
            return Err(bad_input(file, format!("tensor '{name}': slice extent {start}+{len} does not fit dimension {dim}")));
        } else {
            proto.extents.push(Extent { start: start as i64, length: Some(len as i64) });
            key.push((start as i64, len as i64));
        }
    }
    Ok((proto, key))
}

/// Options of a V2 bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BundleOptions {
    /// Options of the `.index` table.
    pub index: TableOptions,
    /// Write tensor bytes big-endian (and say so in the header).
    pub big_endian: bool,
}

/// Writes a V2 bundle: tensor bytes to the shard sinks, entries to an index built in memory.
#[derive(Debug)]
pub struct BundleWriter<W: Write> {
    name: String,
    opts: BundleOptions,
    shards: Vec<(W, u64)>,
    entries: BTreeMap<Vec<u8>, BundleEntryProto>,
    next_shard: usize,
}

impl<W: Write> BundleWriter<W> {
    /// A writer over `shards.len()` (≥ 1) data shards; `name` is used in error messages.
    pub fn new(name: impl Into<String>, shards: Vec<W>, opts: BundleOptions) -> Result<Self> {
        let name = name.into();
        if shards.is_empty() {
            return Err(bad_input(&name, "a bundle needs at least one data shard".into()));
        }
        Ok(BundleWriter { name, opts, shards: shards.into_iter().map(|w| (w, 0)).collect(), entries: BTreeMap::new(), next_shard: 0 })
    }

    /// Appends raw bytes to a shard; returns their offset.
    pub fn append_raw(&mut self, shard: usize, bytes: &[u8]) -> Result<u64> {
        let name = self.name.clone();
        let (w, pos) = self.shards.get_mut(shard).ok_or_else(|| bad_input(&name, format!("no shard {shard}")))?;
        w.write_all(bytes).map_err(|e| CkptError::io(&name, format!("could not write data shard {shard}"), e))?;
        let offset = *pos;
        *pos += bytes.len() as u64;
        Ok(offset)
    }

    /// Adds an entry as given, under any key (for building unusual or malformed test files).
    pub fn add_raw_entry(&mut self, key: &[u8], entry: BundleEntryProto) -> Result<()> {
        if self.entries.insert(key.to_vec(), entry).is_some() {
            return Err(bad_input(&self.name, format!("duplicate tensor name '{}'", show_key(key))));
        }
        Ok(())
    }

    fn check_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || name.starts_with('\0') {
            return Err(bad_input(&self.name, format!("invalid tensor name '{}'", show_key(name.as_bytes()))));
        }
        if self.entries.contains_key(name.as_bytes()) {
            return Err(bad_input(&self.name, format!("duplicate tensor name '{name}'")));
        }
        Ok(())
    }

    fn pick_shard(&mut self) -> usize {
        let s = self.next_shard % self.shards.len();
        self.next_shard = self.next_shard.wrapping_add(1);
        s
    }

    fn write_data(&mut self, shard: usize, t: &TensorData, elem: usize) -> Result<BundleEntryProto> {
        let stored: std::borrow::Cow<[u8]> = if self.opts.big_endian {
            let unit = t.dtype.swap_unit().unwrap_or(elem);
            let mut v = t.data.clone();
            if unit > 1 {
                v.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
            }
            v.into()
        } else {
            t.data.as_slice().into()
        };
        let offset = self.append_raw(shard, &stored)?;
        Ok(BundleEntryProto {
            dtype: t.dtype.to_tf(),
            shape: shape_proto(&t.shape),
            shard_id: shard as i32,
            offset: offset as i64,
            size: stored.len() as i64,
            crc32c: crc::mask(crc::value(&stored)),
            slices: vec![],
        })
    }

    /// Adds a numeric tensor to the next shard (round robin).
    pub fn add(&mut self, name: &str, t: &TensorData) -> Result<()> {
        let shard = self.pick_shard();
        self.add_to_shard(shard, name, t)
    }

    /// Adds a numeric tensor to a given shard.
    pub fn add_to_shard(&mut self, shard: usize, name: &str, t: &TensorData) -> Result<()> {
        self.check_name(name)?;
        let elem = check_tensor_data(&self.name, name, t)?;
        let entry = self.write_data(shard, t, elem)?;
        self.entries.insert(name.as_bytes().to_vec(), entry);
        Ok(())
    }

    /// Adds a string tensor in TF's layout: varint lengths, masked length checksum, bytes.
    pub fn add_strings(&mut self, name: &str, shape: &[u64], strings: &[Vec<u8>]) -> Result<()> {
        self.check_name(name)?;
        let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if numel != Some(strings.len() as u64) {
            return Err(bad_input(&self.name, format!("tensor '{name}': {} strings for shape {shape:?}", strings.len())));
        }
        let be = self.opts.big_endian;
        let mut bytes = Vec::new();
        let mut c = 0u32;
        for s in strings {
            put_varint64(&mut bytes, s.len() as u64);
            c = match u32::try_from(s.len()) {
                Ok(l) => crc::extend(c, &if be { l.to_be_bytes() } else { l.to_le_bytes() }),
                Err(_) => crc::extend(c, &if be { (s.len() as u64).to_be_bytes() } else { (s.len() as u64).to_le_bytes() }),
            };
        }
        let masked = crc::mask(c);
        let raw = if be { masked.to_be_bytes() } else { masked.to_le_bytes() };
        bytes.extend_from_slice(&raw);
        c = crc::extend(c, &raw);
        for s in strings {
            bytes.extend_from_slice(s);
            c = crc::extend(c, s);
        }
        let shard = self.pick_shard();
        let offset = self.append_raw(shard, &bytes)?;
        let entry = BundleEntryProto {
            dtype: DType::String.to_tf(),
            shape: shape_proto(shape),
            shard_id: shard as i32,
            offset: offset as i64,
            size: bytes.len() as i64,
            crc32c: crc::mask(c),
            slices: vec![],
        };
        self.entries.insert(name.as_bytes().to_vec(), entry);
        Ok(())
    }

    /// Adds a partitioned variable: the full entry lists the slices, each slice is stored
    /// under its OrderedCode key (TF's `BundleWriter::AddSlice`). Slices go round robin over
    /// the shards. `extents` are `(start, length)` per dimension.
    pub fn add_partitioned(
        &mut self,
        name: &str,
        dtype: DType,
        full_shape: &[u64],
        slices: &[(Vec<(u64, u64)>, TensorData)],
    ) -> Result<()> {
        self.check_name(name)?;
        let mut full = BundleEntryProto { dtype: dtype.to_tf(), shape: shape_proto(full_shape), ..Default::default() };
        for (extents, t) in slices {
            let (proto, key_extents) = slice_protos(&self.name, name, full_shape, extents)?;
            if t.dtype != dtype || t.shape != extents.iter().map(|e| e.1).collect::<Vec<_>>() {
                return Err(bad_input(&self.name, format!("tensor '{name}': slice data does not match its extents")));
            }
            let elem = check_tensor_data(&self.name, name, t)?;
            let shard = self.pick_shard();
            let entry = self.write_data(shard, t, elem)?;
            let key = encode_tensor_name_slice(name.as_bytes(), &key_extents);
            self.add_raw_entry(&key, entry)?;
            full.slices.push(proto);
        }
        self.entries.insert(name.as_bytes().to_vec(), full);
        Ok(())
    }

    /// Builds the index (header under key `""`, then entries sorted by key) and returns it
    /// with the shard sinks (flushed).
    pub fn finish(self) -> Result<(Vec<u8>, Vec<W>)> {
        let header = BundleHeaderProto {
            num_shards: self.shards.len() as i32,
            endianness: i32::from(self.opts.big_endian),
            version: VersionDef { producer: 1, min_consumer: 0, bad_consumers: vec![] },
        };
        let mut table = TableBuilder::new(self.opts.index);
        table.add(b"", &header.encode())?;
        for (key, entry) in &self.entries {
            table.add(key, &entry.encode())?;
        }
        let mut sinks = Vec::with_capacity(self.shards.len());
        for (i, (mut w, _)) in self.shards.into_iter().enumerate() {
            w.flush().map_err(|e| CkptError::io(&self.name, format!("could not flush data shard {i}"), e))?;
            sinks.push(w);
        }
        Ok((table.finish(), sinks))
    }
}

/// Options of a V1 checkpoint table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V1Options {
    pub table: TableOptions,
    /// Store values as packed repeated fields (what TF does) or one field per value.
    pub packed: bool,
}

impl Default for V1Options {
    fn default() -> Self {
        V1Options { table: TableOptions::default(), packed: true }
    }
}

/// Writes one V1 checkpoint table (TF's `TensorSliceWriter`): a meta record under key `""`
/// listing every tensor and its slices, then one `SavedSlice` record per slice.
#[derive(Debug, Default)]
pub struct V1Writer {
    opts: V1Options,
    meta: BTreeMap<String, SavedSliceMeta>,
    data: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl V1Writer {
    pub fn new(opts: V1Options) -> Self {
        V1Writer { opts, meta: BTreeMap::new(), data: BTreeMap::new() }
    }

    fn add_record(&mut self, name: &str, dtype: DType, full_shape: &[u64], extents: &[(u64, u64)], tensor_proto: Vec<u8>) -> Result<()> {
        let (proto, key_extents) = slice_protos("V1 table", name, full_shape, extents)?;
        let m = self.meta.entry(name.to_string()).or_insert_with(|| SavedSliceMeta {
            name: name.as_bytes().to_vec(),
            shape: shape_proto(full_shape),
            dtype: dtype.to_tf(),
            slices: vec![],
        });
        if m.dtype != dtype.to_tf() || m.shape != shape_proto(full_shape) {
            return Err(bad_input("V1 table", format!("tensor '{name}': slices disagree on dtype or shape")));
        }
        m.slices.push(proto.clone());
        let key = encode_tensor_name_slice(name.as_bytes(), &key_extents);
        let record = encode_saved_slice(name.as_bytes(), &proto, &tensor_proto);
        if self.data.insert(key, record).is_some() {
            return Err(bad_input("V1 table", format!("tensor '{name}': slice {extents:?} added twice")));
        }
        Ok(())
    }

    /// Adds a whole tensor (one full slice).
    pub fn add(&mut self, name: &str, t: &TensorData) -> Result<()> {
        let extents: Vec<(u64, u64)> = t.shape.iter().map(|&d| (0, d)).collect();
        self.add_slice(name, &t.shape.clone(), &extents, t)
    }

    /// Adds one slice of a tensor of shape `full_shape`.
    pub fn add_slice(&mut self, name: &str, full_shape: &[u64], extents: &[(u64, u64)], t: &TensorData) -> Result<()> {
        check_tensor_data("V1 table", name, t)?;
        let vf =
            ValueField::of(t.dtype).ok_or_else(|| bad_input("V1 table", format!("tensor '{name}': V1 cannot store dtype {}", t.dtype)))?;
        let tp = encode_tensor_values(&t.data, vf, self.opts.packed);
        self.add_record(name, t.dtype, full_shape, extents, tp)
    }

    /// Adds a whole string tensor.
    pub fn add_strings(&mut self, name: &str, shape: &[u64], strings: &[Vec<u8>]) -> Result<()> {
        let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if numel != Some(strings.len() as u64) {
            return Err(bad_input("V1 table", format!("tensor '{name}': {} strings for shape {shape:?}", strings.len())));
        }
        let tp = encode_string_values(strings);
        let extents: Vec<(u64, u64)> = shape.iter().map(|&d| (0, d)).collect();
        self.add_record(name, DType::String, shape, &extents, tp)
    }

    /// The table bytes.
    pub fn finish(self) -> Result<Vec<u8>> {
        let meta = SavedTensorSliceMeta {
            tensors: self.meta.into_values().collect(),
            versions: VersionDef { producer: 1, min_consumer: 0, bad_consumers: vec![] },
        };
        let mut table = TableBuilder::new(self.opts.table);
        table.add(b"", &encode_saved_meta(&meta))?;
        for (k, v) in &self.data {
            table.add(k, v)?;
        }
        Ok(table.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_follow_leveldb() {
        assert_eq!(shortest_separator(b"abc1", b"abd"), b"abc1".to_vec()); // 'c'+1 == 'd'
        assert_eq!(shortest_separator(b"abc", b"abx"), b"abd".to_vec());
        assert_eq!(shortest_separator(b"ab", b"abc"), b"ab".to_vec());
        assert_eq!(shortest_separator(b"", b"a"), b"".to_vec());
        assert_eq!(short_successor(b"abc"), b"b".to_vec());
        assert_eq!(short_successor(&[0xff, 0xff, 3]), vec![0xff, 0xff, 4]);
        assert_eq!(short_successor(&[0xff]), vec![0xff]);
    }

    #[test]
    fn tensor_data_must_match_its_shape() {
        let mut w = BundleWriter::new("x", vec![Vec::new()], BundleOptions::default()).unwrap();
        let t = TensorData { dtype: DType::F32, shape: vec![2], data: vec![0; 7] };
        assert!(w.add("a", &t).is_err());
        let t = TensorData { dtype: DType::F32, shape: vec![2], data: vec![0; 8] };
        w.add("a", &t).unwrap();
        assert!(w.add("a", &t).unwrap_err().to_string().contains("duplicate"));
        assert!(w.add("", &t).is_err());
        let t = TensorData { dtype: DType::F32, shape: vec![u64::MAX, 2], data: vec![] };
        assert!(w.add("b", &t).is_err());
        let t = TensorData { dtype: DType::String, shape: vec![], data: vec![] };
        assert!(w.add("c", &t).is_err());
        assert!(BundleWriter::<Vec<u8>>::new("x", vec![], BundleOptions::default()).is_err());
    }

    #[test]
    fn single_tensor_bundle_bytes() {
        let mut w = BundleWriter::new("x", vec![Vec::new()], BundleOptions::default()).unwrap();
        w.add("a", &TensorData { dtype: DType::F32, shape: vec![], data: 1.0f32.to_le_bytes().to_vec() }).unwrap();
        let (index, shards) = w.finish().unwrap();
        assert_eq!(shards[0], 1.0f32.to_le_bytes());
        // first block: entry "" → header 08 01 1a 02 08 01
        assert_eq!(&index[..9], [0, 0, 6, 0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
    }
}

//! The V2 checkpoint reader ("tensor bundle", TF `core/util/tensor_bundle/`).
//!
//! Files: `PREFIX.index`, a [table](super::table) whose first entry (key `""`) is a
//! `BundleHeaderProto` (`num_shards`, `endianness`, `version`) and whose other entries map a
//! tensor name to a `BundleEntryProto`; and `PREFIX.data-SSSSS-of-NNNNN` data shards holding
//! raw tensor bytes with no header: entry `e`'s bytes are `[e.offset, e.offset + e.size)` of
//! shard `e.shard_id`, and `e.crc32c` is the masked CRC32C of exactly those bytes.
//!
//! * Numeric tensors are row-major, in the byte order the header declares (big-endian data
//!   is swapped after the CRC check, which covers the bytes as stored).
//! * Strings: `varint64 len[n] | fixed32 masked length-checksum | bytes`; the length checksum
//!   covers each length as a u32 (u64 above 4 GiB) in the writer's byte order, and the entry
//!   CRC continues over the 4 checksum bytes and every string's bytes.
//! * Partitioned variables: the full name's entry has `dtype`, the full `shape` and a list of
//!   `slices`; each slice is stored as its own entry under the OrderedCode key
//!   `EncodeTensorNameSlice(name, slice)` (it starts with byte 0). Those keys are hidden from
//!   the listing; reading the full name reassembles the slices.
//!
//! Listing reads only the `.index`. Reading a tensor reads exactly its byte range(s).

use std::collections::HashMap;

use super::blob::Blob;
use super::coding::decode_varint64;
use super::crc;
use super::dtype::DType;
use super::error::{CkptError, Result, show_key};
use super::ordered_code::encode_tensor_name_slice;
use super::proto::{BundleEntryProto, BundleHeaderProto, Message};
use super::slice::{Slice, byte_size, check_coverage, copy_slice, num_elements, resolve_slice, validate_shape};
use super::source::Loc;
use super::table::Table;
use super::{TensorData, TensorInfo};

/// `kTensorBundleVersion`: the bundle format version this reader implements.
const BUNDLE_VERSION: i32 = 1;
/// More data shards than this in a header is taken as corruption.
const MAX_SHARDS: i32 = 100_000;

/// Where one tensor's (or slice's) bytes are.
#[derive(Debug, Clone, Copy)]
struct DataRef {
    shard: u32,
    offset: u64,
    size: u64,
    crc: u32,
}

#[derive(Debug)]
enum Layout {
    Whole(DataRef),
    Sliced(Vec<(Slice, DataRef)>),
}

#[derive(Debug)]
struct Entry {
    dtype: DType,
    shape: Vec<u64>,
    layout: Layout,
}

/// An open V2 checkpoint.
#[derive(Debug)]
pub(crate) struct Bundle {
    index_file: String,
    big_endian: bool,
    shards: Vec<Blob>,
    entries: HashMap<String, Entry>,
    infos: Vec<TensorInfo>,
}

fn data_ref(p: &BundleEntryProto, num_shards: u32) -> std::result::Result<DataRef, String> {
    let shard = u32::try_from(p.shard_id)
        .ok()
        .filter(|&s| s < num_shards)
        .ok_or_else(|| format!("its shard_id {} is not one of the {num_shards} data shards", p.shard_id))?;
    let offset = u64::try_from(p.offset).map_err(|_| format!("its offset {} is negative", p.offset))?;
    let size = u64::try_from(p.size).map_err(|_| format!("its size {} is negative", p.size))?;
    if offset.checked_add(size).is_none() {
        return Err(format!("its data range {offset} + {size} overflows"));
    }
    Ok(DataRef { shard, offset, size, crc: p.crc32c })
}

fn check_size(dtype: DType, shape: &[u64], size: u64) -> std::result::Result<(), String> {
    if let Some(elem) = dtype.size() {
        let expected = byte_size(shape, elem).ok_or_else(|| format!("its shape {shape:?} of {dtype} is too large"))?;
        if expected != size {
            return Err(format!("its size of {size} bytes does not match its shape {shape:?} of {dtype} ({expected} bytes)"));
        }
    } else if dtype == DType::String {
        let n = num_elements(shape).unwrap_or(u64::MAX);
        if n > 0 && n.checked_add(4).is_none_or(|min| size < min) {
            return Err(format!("its size of {size} bytes is too small for {n} strings"));
        }
    }
    Ok(())
}

impl Bundle {
    /// Opens `PREFIX.index`, checks every entry and that every data shard exists.
    pub fn open(prefix: &Loc) -> Result<Bundle> {
        let blob = prefix.with_suffix(".index").open()?;
        let file = blob.name().to_string();
        let table = Table::open(blob)?;

        let mut header: Option<BundleHeaderProto> = None;
        let mut full: Vec<(String, BundleEntryProto)> = Vec::new();
        let mut slice_entries: HashMap<Vec<u8>, BundleEntryProto> = HashMap::new();
        table.scan(|key, value| {
            if header.is_none() {
                if !key.is_empty() {
                    return Err(CkptError::Corrupt {
                        file: file.clone(),
                        reason: format!("the first entry is '{}', not the bundle header (key \"\")", show_key(key)),
                    });
                }
                let h = BundleHeaderProto::parse(value).map_err(|e| e.in_file(&file, "BundleHeaderProto (key \"\")"))?;
                header = Some(h);
                return Ok(());
            }
            let entry = BundleEntryProto::parse(value).map_err(|e| e.in_file(&file, format!("BundleEntryProto of '{}'", show_key(key))))?;
            if key.first() == Some(&0) {
                slice_entries.insert(key.to_vec(), entry);
            } else {
                let name = String::from_utf8(key.to_vec()).map_err(|_| CkptError::Corrupt {
                    file: file.clone(),
                    reason: format!("the tensor name '{}' is not valid UTF-8", show_key(key)),
                })?;
                full.push((name, entry));
            }
            Ok(())
        })?;
        let header = header.ok_or_else(|| CkptError::Corrupt {
            file: file.clone(),
            reason: "the index is empty: it has no bundle header (key \"\")".into(),
        })?;
        if !(1..=MAX_SHARDS).contains(&header.num_shards) {
            return Err(CkptError::Corrupt { file, reason: format!("the header declares {} data shards", header.num_shards) });
        }
        let num_shards = header.num_shards as u32;
        let big_endian = match header.endianness {
            0 => false,
            1 => true,
            other => {
                return Err(CkptError::Corrupt { file, reason: format!("the header declares an unknown byte order ({other})") });
            }
        };
        header
            .version
            .check(BUNDLE_VERSION)
            .map_err(|r| CkptError::Unsupported { file: file.clone(), what: format!("a bundle whose version says {r}") })?;

        let mut entries = HashMap::with_capacity(full.len());
        let mut infos = Vec::with_capacity(full.len());
        for (name, p) in full {
            let bad = |reason: String| CkptError::BadTensor { file: file.clone(), tensor: name.clone(), reason };
            let dtype = DType::from_stored(p.dtype).map_err(bad)?;
            let shape = validate_shape(&p.shape).map_err(bad)?;
            let layout = if p.slices.is_empty() {
                let r = data_ref(&p, num_shards).map_err(bad)?;
                check_size(dtype, &shape, r.size).map_err(bad)?;
                Layout::Whole(r)
            } else {
                let mut slices = Vec::with_capacity(p.slices.len());
                for sp in &p.slices {
                    let s = resolve_slice(&shape, sp).map_err(bad)?;
                    let key = encode_tensor_name_slice(name.as_bytes(), &s.key_extents);
                    let se = slice_entries
                        .get(&key)
                        .ok_or_else(|| bad(format!("slice {} is listed but its entry is missing from the index", s.describe())))?;
                    let bad_slice = |r: String| bad(format!("slice {}: {r}", s.describe()));
                    let sdtype = DType::from_stored(se.dtype).map_err(bad_slice)?;
                    if sdtype != dtype {
                        return Err(bad_slice(format!("its dtype {sdtype} differs from the tensor's {dtype}")));
                    }
                    let sshape = validate_shape(&se.shape).map_err(bad_slice)?;
                    if sshape != s.shape() {
                        return Err(bad_slice(format!("its entry has shape {sshape:?}, the slice is {:?}", s.shape())));
                    }
                    if !se.slices.is_empty() {
                        return Err(bad_slice("its entry is itself partitioned".into()));
                    }
                    let r = data_ref(se, num_shards).map_err(bad_slice)?;
                    check_size(dtype, &sshape, r.size).map_err(bad_slice)?;
                    slices.push((s, r));
                }
                let only: Vec<Slice> = slices.iter().map(|(s, _)| s.clone()).collect();
                check_coverage(&shape, &only).map_err(bad)?;
                Layout::Sliced(slices)
            };
            infos.push(TensorInfo { name: name.clone(), dtype, shape: shape.clone() });
            entries.insert(name, Entry { dtype, shape, layout });
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name));

        let mut shards = Vec::with_capacity(num_shards as usize);
        for i in 0..num_shards {
            let loc = prefix.with_suffix(&format!(".data-{i:05}-of-{num_shards:05}"));
            if !loc.is_file() {
                return Err(CkptError::MissingShard { file, shard: i, num_shards, missing: loc.display() });
            }
            shards.push(loc.open()?);
        }
        let bundle = Bundle { index_file: file, big_endian, shards, entries, infos };
        bundle.check_known_ranges()?;
        Ok(bundle)
    }

    /// Checks every data range against its shard's length where that length is known without
    /// reading the shard (files on disk, zip members stored uncompressed): an offset past the
    /// end or a truncated shard is an error when the checkpoint is opened, not only when the
    /// tensor is read. (Compressed archive members are checked when they are first read.)
    fn check_known_ranges(&self) -> Result<()> {
        for info in &self.infos {
            let Some(e) = self.entries.get(&info.name) else { continue };
            let refs: Vec<&DataRef> = match &e.layout {
                Layout::Whole(r) => vec![r],
                Layout::Sliced(slices) => slices.iter().map(|(_, r)| r).collect(),
            };
            for r in refs {
                if self.shard(r)?.known_len().is_some() {
                    self.check_range(&info.name, r)?;
                }
            }
        }
        Ok(())
    }

    /// The tensors, sorted by name.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.infos
    }

    /// Number of data shards.
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries.get(name).ok_or_else(|| CkptError::TensorNotFound { file: self.index_file.clone(), tensor: name.to_string() })
    }

    fn shard(&self, r: &DataRef) -> Result<&Blob> {
        self.shards
            .get(r.shard as usize)
            .ok_or_else(|| CkptError::Corrupt { file: self.index_file.clone(), reason: format!("no data shard {}", r.shard) })
    }

    /// Checks that a range lies inside its shard (before anything is allocated).
    fn check_range(&self, name: &str, r: &DataRef) -> Result<()> {
        let blob = self.shard(r)?;
        let len = blob.len()?;
        let end = r.offset.saturating_add(r.size);
        if end > len {
            return Err(CkptError::DataOutOfRange {
                file: blob.name().to_string(),
                tensor: name.to_string(),
                shard: r.shard,
                start: r.offset,
                end,
                len,
            });
        }
        Ok(())
    }

    /// Reads a range, verifies its CRC (over the stored bytes) and byte-swaps big-endian data.
    fn read_ref(&self, name: &str, r: &DataRef, dtype: DType) -> Result<Vec<u8>> {
        self.check_range(name, r)?;
        let blob = self.shard(r)?;
        let mut data = blob.read_vec(r.offset, r.size)?;
        let stored = crc::unmask(r.crc);
        let computed = crc::value(&data);
        if stored != computed && !cfg!(fuzzing) {
            return Err(CkptError::TensorChecksum {
                file: blob.name().to_string(),
                tensor: name.to_string(),
                shard: r.shard,
                stored,
                computed,
            });
        }
        if self.big_endian
            && let Some(unit) = dtype.swap_unit().filter(|&u| u > 1)
        {
            data.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
        }
        Ok(data)
    }

    /// Reads a numeric tensor (little-endian, row-major), reassembling partitioned ones.
    pub fn read(&self, name: &str) -> Result<TensorData> {
        let e = self.entry(name)?;
        let bad = |reason: String| CkptError::BadTensor { file: self.index_file.clone(), tensor: name.to_string(), reason };
        let elem = e.dtype.size().ok_or_else(|| super::not_numeric(&self.index_file, name, e.dtype))?;
        let data = match &e.layout {
            Layout::Whole(r) => self.read_ref(name, r, e.dtype)?,
            Layout::Sliced(slices) => {
                for (_, r) in slices {
                    self.check_range(name, r)?;
                }
                // The slices tile the tensor and each lies inside its shard, so this size is
                // bounded by the shards' real sizes.
                let total = byte_size(&e.shape, elem)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| bad("the tensor is too large for memory".into()))?;
                let mut full = vec![0u8; total];
                for (s, r) in slices {
                    let part = self.read_ref(name, r, e.dtype)?;
                    copy_slice(&mut full, &e.shape, s, &part, elem).map_err(|r| bad(format!("slice {}: {r}", s.describe())))?;
                }
                full
            }
        };
        Ok(TensorData { dtype: e.dtype, shape: e.shape.clone(), data })
    }

    /// Reads a string tensor.
    pub fn read_string(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        let e = self.entry(name)?;
        if e.dtype != DType::String {
            return Err(super::not_string(&self.index_file, name, e.dtype));
        }
        let r = match &e.layout {
            Layout::Whole(r) => r,
            Layout::Sliced(_) => {
                return Err(CkptError::Unsupported {
                    file: self.index_file.clone(),
                    what: format!("the partitioned string tensor '{name}'"),
                });
            }
        };
        let blob = self.shard(r)?;
        let bad = |reason: String| CkptError::BadTensor { file: blob.name().to_string(), tensor: name.to_string(), reason };
        let n = num_elements(&e.shape).and_then(|n| usize::try_from(n).ok()).ok_or_else(|| bad("too many strings".into()))?;
        if r.size == 0 {
            return if n == 0 { Ok(Vec::new()) } else { Err(bad(format!("{n} strings but no data"))) };
        }
        self.check_range(name, r)?;
        let buf = blob.read_vec(r.offset, r.size)?;
        if n.checked_add(4).is_none_or(|min| buf.len() < min) {
            return Err(bad(format!("{} bytes cannot hold {n} strings", buf.len())));
        }
        let mut pos = 0usize;
        let mut lengths = Vec::with_capacity(n);
        let mut c = 0u32;
        for i in 0..n {
            let (len, used) = decode_varint64(buf.get(pos..).unwrap_or_default())
                .ok_or_else(|| bad(format!("the length of string {i} is not a valid varint")))?;
            pos += used;
            c = match u32::try_from(len) {
                Ok(l) => crc::extend(c, &if self.big_endian { l.to_be_bytes() } else { l.to_le_bytes() }),
                Err(_) => crc::extend(c, &if self.big_endian { len.to_be_bytes() } else { len.to_le_bytes() }),
            };
            lengths.push(len);
        }
        let raw: [u8; 4] = buf
            .get(pos..pos + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the string lengths run into the end of the data".into()))?;
        let stored_len_crc = crc::unmask(if self.big_endian { u32::from_be_bytes(raw) } else { u32::from_le_bytes(raw) });
        if stored_len_crc != c && !cfg!(fuzzing) {
            return Err(bad(format!("the string length checksum does not match (stored {stored_len_crc:#010x}, computed {c:#010x})")));
        }
        c = crc::extend(c, &raw);
        pos += 4;
        let body = buf.get(pos..).unwrap_or_default();
        let total = lengths.iter().try_fold(0u64, |a, &l| a.checked_add(l));
        if total != Some(body.len() as u64) {
            return Err(bad(format!("the string lengths add up to {total:?} bytes but {} bytes follow them", body.len())));
        }
        c = crc::extend(c, body);
        let stored = crc::unmask(r.crc);
        if stored != c && !cfg!(fuzzing) {
            return Err(CkptError::TensorChecksum {
                file: blob.name().to_string(),
                tensor: name.to_string(),
                shard: r.shard,
                stored,
                computed: c,
            });
        }
        let mut out = Vec::with_capacity(n);
        let mut at = 0usize;
        for len in lengths {
            let end = at + len as usize; // the lengths sum to body.len()
            out.push(body.get(at..end).unwrap_or_default().to_vec());
            at = end;
        }
        Ok(out)
    }
}

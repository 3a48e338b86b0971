//! A minimal protobuf wire-format reader and writer, and the few checkpoint messages.
//!
//! Wire format (protobuf encoding guide): a message is a sequence of fields, each
//! `tag: varint = (field_number << 3) | wire_type` followed by the value:
//!
//! | wire type | meaning | value |
//! |---|---|---|
//! | 0 | varint | LEB128, up to 10 bytes (int32/int64/bool/enum; negative int32 is 10 bytes) |
//! | 1 | fixed64 | 8 bytes little-endian |
//! | 2 | length-delimited | `len: varint` + `len` bytes (bytes, strings, sub-messages, packed repeated) |
//! | 3 / 4 | start / end group | (deprecated) fields until the matching end-group tag |
//! | 5 | fixed32 | 4 bytes little-endian |
//!
//! Parsing rules implemented here: unknown fields of every wire type are skipped; groups are
//! skipped iteratively with an explicit, bounded stack (no recursion driven by file data);
//! every length is checked against the bytes left; a known field with the wrong wire type is
//! an error; repeated scalar fields accept both packed and unpacked encodings; a singular
//! sub-message that appears several times is merged, as protobuf does. The known messages
//! only nest a fixed number of levels (the schema's), so recursion is bounded.
//!
//! Messages (field number, tag byte):
//! * `VersionDef` (`versions.proto`): producer=1 int32 (0x08), min_consumer=2 int32 (0x10),
//!   bad_consumers=3 repeated int32 (0x18 / packed 0x1a).
//! * `BundleHeaderProto` (`tensor_bundle.proto`): num_shards=1 int32 (0x08), endianness=2 enum
//!   LITTLE=0/BIG=1 (0x10), version=3 VersionDef (0x1a).
//! * `BundleEntryProto`: dtype=1 (0x08), shape=2 TensorShapeProto (0x12), shard_id=3 (0x18),
//!   offset=4 int64 (0x20), size=5 int64 (0x28), crc32c=6 fixed32 (0x35),
//!   slices=7 repeated TensorSliceProto (0x3a).
//! * `TensorShapeProto`: dim=2 repeated Dim (0x12), unknown_rank=3 bool (0x18);
//!   `Dim`: size=1 int64 (0x08), name=2 string (0x12).
//! * `TensorSliceProto`: extent=1 repeated Extent (0x0a); `Extent`: start=1 int64 (0x08),
//!   oneof length=2 int64 (0x10). A missing length means the whole dimension.
//! * `SavedTensorSlices` (`saved_tensor_slice.proto`): meta=1 SavedTensorSliceMeta (0x0a),
//!   data=2 SavedSlice (0x12).
//! * `SavedTensorSliceMeta`: tensor=1 repeated SavedSliceMeta (0x0a), versions=2 VersionDef (0x12).
//! * `SavedSliceMeta`: name=1 string (0x0a), shape=2 TensorShapeProto (0x12), type=3 DataType
//!   (0x18), slice=4 repeated TensorSliceProto (0x22).
//! * `SavedSlice`: name=1 string (0x0a), slice=2 TensorSliceProto (0x12), data=3 TensorProto (0x1a).
//! * `TensorProto` (`tensor.proto`), value fields only: float_val=5, double_val=6, int_val=7,
//!   string_val=8, scomplex_val=9, int64_val=10, bool_val=11, dcomplex_val=12, half_val=13,
//!   uint32_val=16, uint64_val=17 (numeric ones declared packed).

use super::coding::{decode_varint64, fixed32_at, fixed64_at, put_varint64};
use super::dtype::DType;

/// Why a message could not be decoded, and where (byte offset in the top-level record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProtoError {
    pub offset: usize,
    pub reason: String,
}

pub(crate) type PResult<T> = std::result::Result<T, ProtoError>;

impl ProtoError {
    /// The error for `message` (e.g. "BundleEntryProto of 'a/b'") stored in `file`.
    pub fn in_file(self, file: &str, message: impl Into<String>) -> super::error::CkptError {
        super::error::CkptError::Proto { file: file.to_string(), message: message.into(), offset: self.offset, reason: self.reason }
    }
}

/// Deepest nesting of (unknown) groups that is skipped before giving up.
pub(crate) const MAX_GROUP_DEPTH: usize = 64;

const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// The value of one field, as found on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// Bytes and their absolute offset in the top-level record.
    Len(&'a [u8], usize),
    Fixed32(u32),
    /// A group (wire types 3..4), already skipped.
    Group,
}

impl Value<'_> {
    fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "fixed64",
            Value::Len(..) => "length-delimited",
            Value::Fixed32(_) => "fixed32",
            Value::Group => "group",
        }
    }
}

/// One decoded field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    /// Absolute offset of the tag.
    pub offset: usize,
}

impl<'a> Field<'a> {
    fn wrong_type(&self, expected: &str) -> ProtoError {
        ProtoError {
            offset: self.offset,
            reason: format!("field {} has wire type {}, expected {expected}", self.number, self.value.wire_name()),
        }
    }

    pub fn varint(&self) -> PResult<u64> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.wrong_type("varint")),
        }
    }

    /// An `int32`/enum field: protobuf truncates the 64-bit varint to 32 bits.
    pub fn int32(&self) -> PResult<i32> {
        Ok(self.varint()? as i32)
    }

    pub fn int64(&self) -> PResult<i64> {
        Ok(self.varint()? as i64)
    }

    pub fn boolean(&self) -> PResult<bool> {
        Ok(self.varint()? != 0)
    }

    pub fn fixed32(&self) -> PResult<u32> {
        match self.value {
            Value::Fixed32(v) => Ok(v),
            _ => Err(self.wrong_type("fixed32")),
        }
    }

    /// Bytes of a length-delimited field and their absolute offset.
    pub fn bytes(&self) -> PResult<(&'a [u8], usize)> {
        match self.value {
            Value::Len(b, at) => Ok((b, at)),
            _ => Err(self.wrong_type("length-delimited")),
        }
    }

    /// Calls `f` for every varint of a repeated varint field (packed or not).
    fn for_each_varint(&self, mut f: impl FnMut(u64)) -> PResult<()> {
        match self.value {
            Value::Varint(v) => {
                f(v);
                Ok(())
            }
            Value::Len(b, at) => {
                let mut pos = 0;
                while pos < b.len() {
                    let rest = b.get(pos..).unwrap_or_default();
                    let (v, n) = decode_varint64(rest).ok_or_else(|| ProtoError { offset: at + pos, reason: bad_varint_reason(rest) })?;
                    f(v);
                    pos += n;
                }
                Ok(())
            }
            _ => Err(self.wrong_type("varint or packed varints")),
        }
    }
}

fn bad_varint_reason(rest: &[u8]) -> String {
    if rest.len() < 10 && rest.iter().all(|b| b & 0x80 != 0) {
        "truncated varint".to_string()
    } else {
        "invalid varint (longer than 10 bytes or over 64 bits)".to_string()
    }
}

/// Iterates over the fields of one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn err(&self, at: usize, reason: impl Into<String>) -> ProtoError {
        ProtoError { offset: self.base.saturating_add(at), reason: reason.into() }
    }

    fn varint(&mut self) -> PResult<u64> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match decode_varint64(rest) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(self.err(self.pos, bad_varint_reason(rest))),
        }
    }

    fn take(&mut self, n: u64, what: &str) -> PResult<(&'a [u8], usize)> {
        let left = self.buf.len() - self.pos.min(self.buf.len());
        let n_usize = usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or_else(|| self.err(self.pos, format!("{what} of {n} bytes runs past the end of the message ({left} bytes left)")))?;
        let start = self.pos;
        self.pos += n_usize;
        Ok((self.buf.get(start..self.pos).unwrap_or_default(), self.base.saturating_add(start)))
    }

    fn tag(&mut self) -> PResult<(u32, u8)> {
        let at = self.pos;
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(self.err(at, format!("invalid field number {number}")));
        }
        Ok((number as u32, (tag & 7) as u8))
    }

    /// The next field, or `None` at the end of the message. Groups are skipped.
    pub fn next_field(&mut self) -> PResult<Option<Field<'a>>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let (number, wire) = self.tag()?;
        let value = match wire {
            0 => Value::Varint(self.varint()?),
            1 => {
                let (b, _) = self.take(8, "fixed64 value")?;
                Value::Fixed64(fixed64_at(b, 0).unwrap_or_default())
            }
            2 => {
                let len = self.varint()?;
                let (b, abs) = self.take(len, "length-delimited field")?;
                Value::Len(b, abs)
            }
            3 => {
                self.skip_group(number)?;
                Value::Group
            }
            4 => {
                return Err(self.err(at, format!("end-group tag for field {number} without a start-group tag")));
            }
            5 => {
                let (b, _) = self.take(4, "fixed32 value")?;
                Value::Fixed32(fixed32_at(b, 0).unwrap_or_default())
            }
            w => return Err(self.err(at, format!("invalid wire type {w} for field {number}"))),
        };
        Ok(Some(Field { number, value, offset: self.base.saturating_add(at) }))
    }

    /// Skips a group whose start tag (for field `first`) was just read, including any nested
    /// groups, without recursion.
    fn skip_group(&mut self, first: u32) -> PResult<()> {
        let mut open: Vec<u32> = vec![first];
        while let Some(&current) = open.last() {
            if self.pos >= self.buf.len() {
                return Err(self.err(self.pos, format!("group for field {current} is not terminated")));
            }
            let at = self.pos;
            let (number, wire) = self.tag()?;
            match wire {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8, "fixed64 value")?;
                }
                2 => {
                    let len = self.varint()?;
                    self.take(len, "length-delimited field")?;
                }
                3 => {
                    if open.len() >= MAX_GROUP_DEPTH {
                        return Err(self.err(at, format!("groups nested deeper than {MAX_GROUP_DEPTH} levels")));
                    }
                    open.push(number);
                }
                4 => {
                    if number != current {
                        return Err(self.err(at, format!("end-group tag for field {number} inside the group of field {current}")));
                    }
                    open.pop();
                }
                5 => {
                    self.take(4, "fixed32 value")?;
                }
                w => return Err(self.err(at, format!("invalid wire type {w} for field {number}"))),
            }
        }
        Ok(())
    }
}

/// A message that can be merged from its wire encoding.
pub(crate) trait Message<'a>: Default {
    /// Merges one field into `self`; unknown fields must be ignored.
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()>;

    /// Merges every field of `buf` (whose first byte is at absolute offset `base`).
    fn merge(&mut self, buf: &'a [u8], base: usize) -> PResult<()> {
        let mut r = Reader::new(buf, base);
        while let Some(f) = r.next_field()? {
            self.merge_field(&f)?;
        }
        Ok(())
    }

    /// Parses a message from `buf`.
    fn parse(buf: &'a [u8]) -> PResult<Self> {
        let mut m = Self::default();
        m.merge(buf, 0)?;
        Ok(m)
    }
}

fn merge_sub<'a, M: Message<'a>>(m: &mut M, f: &Field<'a>) -> PResult<()> {
    let (b, at) = f.bytes()?;
    m.merge(b, at)
}

fn parse_sub<'a, M: Message<'a>>(f: &Field<'a>) -> PResult<M> {
    let mut m = M::default();
    merge_sub(&mut m, f)?;
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers (used by the writer). Proto3 rules: zero scalars are omitted.

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint64(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(out, field, 0);
        put_varint64(out, v);
    }
}

fn put_len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, 2);
    put_varint64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

// ---------------------------------------------------------------------------------------------
// Messages

/// `VersionDef`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VersionDef {
    pub producer: i32,
    pub min_consumer: i32,
    pub bad_consumers: Vec<i32>,
}

impl<'a> Message<'a> for VersionDef {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => self.producer = f.int32()?,
            2 => self.min_consumer = f.int32()?,
            3 => f.for_each_varint(|v| self.bad_consumers.push(v as i32))?,
            _ => {}
        }
        Ok(())
    }
}

impl VersionDef {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint_field(&mut out, 1, self.producer as i64 as u64);
        put_varint_field(&mut out, 2, self.min_consumer as i64 as u64);
        if !self.bad_consumers.is_empty() {
            let mut packed = Vec::new();
            for &b in &self.bad_consumers {
                put_varint64(&mut packed, b as i64 as u64);
            }
            put_len_field(&mut out, 3, &packed);
        }
        out
    }

    /// Whether a reader of version `consumer` may read data with these versions
    /// (TF's `CheckVersions`).
    pub(crate) fn check(&self, consumer: i32) -> Result<(), String> {
        if self.min_consumer > consumer {
            return Err(format!("it needs a reader of version {} or newer (this reader implements version {consumer})", self.min_consumer));
        }
        if self.bad_consumers.contains(&consumer) {
            return Err(format!("it disallows readers of version {consumer}"));
        }
        Ok(())
    }
}

/// `BundleHeaderProto`, the value of key `""` in a V2 `.index`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BundleHeaderProto {
    pub num_shards: i32,
    /// 0 = little-endian, 1 = big-endian (of the tensor bytes in the data shards).
    pub endianness: i32,
    pub version: VersionDef,
}

impl<'a> Message<'a> for BundleHeaderProto {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => self.num_shards = f.int32()?,
            2 => self.endianness = f.int32()?,
            3 => merge_sub(&mut self.version, f)?,
            _ => {}
        }
        Ok(())
    }
}

impl BundleHeaderProto {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint_field(&mut out, 1, self.num_shards as i64 as u64);
        put_varint_field(&mut out, 2, self.endianness as i64 as u64);
        put_len_field(&mut out, 3, &self.version.encode());
        out
    }
}

/// `TensorShapeProto`: dimension sizes, outermost first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TensorShapeProto {
    pub dims: Vec<i64>,
    pub unknown_rank: bool,
}

#[derive(Default)]
struct Dim {
    size: i64,
}

impl<'a> Message<'a> for Dim {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        if f.number == 1 {
            self.size = f.int64()?;
        }
        Ok(())
    }
}

impl<'a> Message<'a> for TensorShapeProto {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            2 => self.dims.push(parse_sub::<Dim>(f)?.size),
            3 => self.unknown_rank = f.boolean()?,
            _ => {}
        }
        Ok(())
    }
}

impl TensorShapeProto {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for &d in &self.dims {
            let mut dim = Vec::new();
            put_varint_field(&mut dim, 1, d as u64);
            put_len_field(&mut out, 2, &dim);
        }
        if self.unknown_rank {
            put_varint_field(&mut out, 3, 1);
        }
        out
    }
}

/// One `TensorSliceProto.Extent`: `length == None` means the whole dimension.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub start: i64,
    pub length: Option<i64>,
}

impl<'a> Message<'a> for Extent {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => self.start = f.int64()?,
            2 => self.length = Some(f.int64()?),
            _ => {}
        }
        Ok(())
    }
}

/// `TensorSliceProto`: one extent per dimension.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TensorSliceProto {
    pub extents: Vec<Extent>,
}

impl<'a> Message<'a> for TensorSliceProto {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        if f.number == 1 {
            self.extents.push(parse_sub::<Extent>(f)?);
        }
        Ok(())
    }
}

impl TensorSliceProto {
    /// Encodes like TF's `TensorSlice::AsProto`: an empty `Extent` for a full dimension,
    /// `start` (omitted when 0) and `length` (always, it is in a oneof) otherwise.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.extents {
            let mut ext = Vec::new();
            if let Some(len) = e.length {
                put_varint_field(&mut ext, 1, e.start as u64);
                put_tag(&mut ext, 2, 0);
                put_varint64(&mut ext, len as u64);
            } else {
                put_varint_field(&mut ext, 1, e.start as u64);
            }
            put_len_field(&mut out, 1, &ext);
        }
        out
    }
}

/// `BundleEntryProto`, the value of a tensor name in a V2 `.index`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BundleEntryProto {
    pub dtype: i32,
    pub shape: TensorShapeProto,
    pub shard_id: i32,
    pub offset: i64,
    pub size: i64,
    /// Masked CRC32C of the tensor bytes.
    pub crc32c: u32,
    /// Non-empty for a partitioned variable: the slices stored under their own keys.
    pub slices: Vec<TensorSliceProto>,
}

impl<'a> Message<'a> for BundleEntryProto {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => self.dtype = f.int32()?,
            2 => merge_sub(&mut self.shape, f)?,
            3 => self.shard_id = f.int32()?,
            4 => self.offset = f.int64()?,
            5 => self.size = f.int64()?,
            6 => self.crc32c = f.fixed32()?,
            7 => self.slices.push(parse_sub(f)?),
            _ => {}
        }
        Ok(())
    }
}

impl BundleEntryProto {
    /// Encodes in field order, omitting zero scalars, as TF's serializer does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint_field(&mut out, 1, self.dtype as i64 as u64);
        put_len_field(&mut out, 2, &self.shape.encode());
        put_varint_field(&mut out, 3, self.shard_id as i64 as u64);
        put_varint_field(&mut out, 4, self.offset as u64);
        put_varint_field(&mut out, 5, self.size as u64);
        if self.crc32c != 0 {
            put_tag(&mut out, 6, 5);
            out.extend_from_slice(&self.crc32c.to_le_bytes());
        }
        for s in &self.slices {
            put_len_field(&mut out, 7, &s.encode());
        }
        out
    }
}

/// `SavedSliceMeta`: one tensor in the V1 table of contents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SavedSliceMeta {
    pub name: Vec<u8>,
    pub shape: TensorShapeProto,
    pub dtype: i32,
    pub slices: Vec<TensorSliceProto>,
}

impl<'a> Message<'a> for SavedSliceMeta {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => self.name = f.bytes()?.0.to_vec(),
            2 => merge_sub(&mut self.shape, f)?,
            3 => self.dtype = f.int32()?,
            4 => self.slices.push(parse_sub(f)?),
            _ => {}
        }
        Ok(())
    }
}

impl SavedSliceMeta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_len_field(&mut out, 1, &self.name);
        put_len_field(&mut out, 2, &self.shape.encode());
        put_varint_field(&mut out, 3, self.dtype as i64 as u64);
        for s in &self.slices {
            put_len_field(&mut out, 4, &s.encode());
        }
        out
    }
}

/// `SavedTensorSliceMeta`: the V1 table of contents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SavedTensorSliceMeta {
    pub tensors: Vec<SavedSliceMeta>,
    pub versions: VersionDef,
}

impl<'a> Message<'a> for SavedTensorSliceMeta {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => self.tensors.push(parse_sub(f)?),
            2 => merge_sub(&mut self.versions, f)?,
            _ => {}
        }
        Ok(())
    }
}

impl SavedTensorSliceMeta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for t in &self.tensors {
            put_len_field(&mut out, 1, &t.encode());
        }
        put_len_field(&mut out, 2, &self.versions.encode());
        out
    }
}

/// `SavedSlice`: the data of one slice of one tensor (V1). The `TensorProto` is kept as the
/// raw bytes of each occurrence (several occurrences merge, i.e. their values concatenate).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SavedSlice<'a> {
    pub name: Vec<u8>,
    pub slice: Option<TensorSliceProto>,
    pub data: Vec<(&'a [u8], usize)>,
}

impl<'a> Message<'a> for SavedSlice<'a> {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => self.name = f.bytes()?.0.to_vec(),
            2 => merge_sub(self.slice.get_or_insert_with(TensorSliceProto::default), f)?,
            3 => self.data.push(f.bytes()?),
            _ => {}
        }
        Ok(())
    }
}

/// `SavedTensorSlices`: the value of every record of a V1 checkpoint table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SavedTensorSlices<'a> {
    pub meta: Option<SavedTensorSliceMeta>,
    pub data: Option<SavedSlice<'a>>,
}

impl<'a> Message<'a> for SavedTensorSlices<'a> {
    fn merge_field(&mut self, f: &Field<'a>) -> PResult<()> {
        match f.number {
            1 => merge_sub(self.meta.get_or_insert_with(SavedTensorSliceMeta::default), f)?,
            2 => merge_sub(self.data.get_or_insert_with(SavedSlice::default), f)?,
            _ => {}
        }
        Ok(())
    }
}

/// Encodes `SavedTensorSlices { meta }`.
pub(crate) fn encode_saved_meta(meta: &SavedTensorSliceMeta) -> Vec<u8> {
    let mut out = Vec::new();
    put_len_field(&mut out, 1, &meta.encode());
    out
}

/// Encodes `SavedTensorSlices { data: SavedSlice { name, slice, data: tensor_proto } }`.
pub(crate) fn encode_saved_slice(name: &[u8], slice: &TensorSliceProto, tensor_proto: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    put_len_field(&mut inner, 1, name);
    put_len_field(&mut inner, 2, &slice.encode());
    put_len_field(&mut inner, 3, tensor_proto);
    let mut out = Vec::new();
    put_len_field(&mut out, 2, &inner);
    out
}

// ---------------------------------------------------------------------------------------------
// TensorProto values (V1 data)

/// How one dtype's values are stored in a `TensorProto` (TF `saved_tensor_slice_util.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueField {
    /// The `*_val` field number.
    pub field: u32,
    /// Bytes each wire value becomes in the output (little-endian).
    pub width: usize,
    /// Fixed-width wire values (float/double/complex parts) instead of varints.
    pub fixed: bool,
    /// Varint values are booleans (any non-zero value becomes 1).
    pub boolean: bool,
}

impl ValueField {
    /// The value field for `dtype`, or `None` for types V1 cannot store this way.
    pub fn of(dtype: DType) -> Option<ValueField> {
        let (field, width, fixed, boolean) = match dtype {
            DType::F32 => (5, 4, true, false),
            DType::F64 => (6, 8, true, false),
            DType::Complex64 => (9, 4, true, false),
            DType::Complex128 => (12, 8, true, false),
            DType::I32 => (7, 4, false, false),
            DType::I16 | DType::U16 => (7, 2, false, false),
            DType::I8 | DType::U8 => (7, 1, false, false),
            DType::Other(11 | 12) => (7, 1, false, false), // qint8, quint8
            DType::Other(15 | 16) => (7, 2, false, false), // qint16, quint16
            DType::Other(13) => (7, 4, false, false),      // qint32
            DType::I64 => (10, 8, false, false),
            DType::Bool => (11, 1, false, true),
            DType::F16 | DType::BF16 => (13, 2, false, false),
            DType::U32 => (16, 4, false, false),
            DType::U64 => (17, 8, false, false),
            _ => return None,
        };
        Some(ValueField { field, width, fixed, boolean })
    }

    /// The fewest encoded bytes `n_values` wire values can take (1 per varint).
    pub fn min_encoded_len(&self, n_values: u64) -> Option<u64> {
        if self.fixed { n_values.checked_mul(self.width as u64) } else { Some(n_values) }
    }
}

/// Decodes the values of `TensorProto` occurrences `segments` into `out` (little-endian,
/// `out.len() / vf.width` wire values). Fields other than `vf.field` are ignored, as TF does.
/// The number of values must fill `out` exactly.
pub(crate) fn decode_tensor_values(segments: &[(&[u8], usize)], vf: ValueField, out: &mut [u8]) -> PResult<()> {
    let expected = out.len() / vf.width;
    let mut filled = 0usize; // bytes written
    let mut last_offset = 0usize;
    for &(seg, base) in segments {
        last_offset = base;
        let mut r = Reader::new(seg, base);
        while let Some(f) = r.next_field()? {
            if f.number != vf.field {
                continue;
            }
            let too_many = || ProtoError { offset: f.offset, reason: format!("more values than the {expected} the slice has") };
            if vf.fixed {
                let mut tmp = [0u8; 8];
                let chunk: &[u8] = match (f.value, vf.width) {
                    (Value::Len(b, _), _) => b,
                    (Value::Fixed32(v), 4) => {
                        tmp[..4].copy_from_slice(&v.to_le_bytes());
                        &tmp[..4]
                    }
                    (Value::Fixed64(v), 8) => {
                        tmp = v.to_le_bytes();
                        &tmp[..]
                    }
                    _ => {
                        return Err(f.wrong_type(if vf.width == 4 { "fixed32" } else { "fixed64" }));
                    }
                };
                if !chunk.len().is_multiple_of(vf.width) {
                    return Err(ProtoError {
                        offset: f.offset,
                        reason: format!("packed field of {} bytes is not a multiple of {}", chunk.len(), vf.width),
                    });
                }
                let end = filled.checked_add(chunk.len()).ok_or_else(too_many)?;
                let dst = out.get_mut(filled..end).ok_or_else(too_many)?;
                dst.copy_from_slice(chunk);
                filled = end;
            } else {
                let mut overflow = false;
                f.for_each_varint(|v| {
                    let v = if vf.boolean { u64::from(v != 0) } else { v };
                    let bytes = v.to_le_bytes();
                    match (out.get_mut(filled..filled + vf.width), bytes.get(..vf.width)) {
                        (Some(dst), Some(src)) if !overflow => {
                            dst.copy_from_slice(src);
                            filled += vf.width;
                        }
                        _ => overflow = true,
                    }
                })?;
                if overflow {
                    return Err(too_many());
                }
            }
        }
    }
    if filled != out.len() {
        return Err(ProtoError {
            offset: last_offset,
            reason: format!("tensor data has {} values, the slice has {expected}", filled / vf.width),
        });
    }
    Ok(())
}

/// Decodes the `string_val` (field 8) values of `TensorProto` occurrences.
pub(crate) fn decode_string_values(segments: &[(&[u8], usize)]) -> PResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for &(seg, base) in segments {
        let mut r = Reader::new(seg, base);
        while let Some(f) = r.next_field()? {
            if f.number == 8 {
                out.push(f.bytes()?.0.to_vec());
            }
        }
    }
    Ok(out)
}

/// Encodes values (little-endian bytes, `vf.width` per wire value) as a `TensorProto` holding
/// only the `*_val` field, packed or not.
pub(crate) fn encode_tensor_values(data: &[u8], vf: ValueField, packed: bool) -> Vec<u8> {
    let mut body = Vec::new();
    let mut out = Vec::new();
    for chunk in data.chunks(vf.width) {
        let mut buf = [0u8; 8];
        if let Some(dst) = buf.get_mut(..chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        let raw = u64::from_le_bytes(buf);
        let dst = if packed { &mut body } else { &mut out };
        if vf.fixed {
            if !packed {
                put_tag(dst, vf.field, if vf.width == 4 { 5 } else { 1 });
            }
            dst.extend_from_slice(chunk);
        } else {
            // Sign-extend signed 32-bit-or-narrower ints stored in int_val (int32 varints).
            let v = match (vf.field, vf.width) {
                (7, 1) => raw as u8 as i8 as i64 as u64,
                (7, 2) => raw as u16 as i16 as i64 as u64,
                (7, 4) | (13, _) => raw as u32 as i32 as i64 as u64,
                _ => raw,
            };
            if !packed {
                put_tag(dst, vf.field, 0);
            }
            put_varint64(dst, v);
        }
    }
    if packed && !data.is_empty() {
        put_len_field(&mut out, vf.field, &body);
    }
    out
}

/// Encodes strings as a `TensorProto` with `string_val` entries.
pub(crate) fn encode_string_values(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        put_len_field(&mut out, 8, s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_bytes_match_tf() {
        let h = BundleHeaderProto { num_shards: 1, endianness: 0, version: VersionDef { producer: 1, ..Default::default() } };
        assert_eq!(h.encode(), [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
        assert_eq!(BundleHeaderProto::parse(&[0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]).unwrap(), h);
    }

    #[test]
    fn entry_roundtrip_and_known_bytes() {
        let e = BundleEntryProto {
            dtype: 1,
            shape: TensorShapeProto { dims: vec![2, 3], unknown_rank: false },
            shard_id: 0,
            offset: 0,
            size: 24,
            crc32c: 0x1234_5678,
            slices: vec![],
        };
        let bytes = e.encode();
        assert_eq!(
            bytes,
            [0x08, 0x01, 0x12, 0x08, 0x12, 0x02, 0x08, 0x02, 0x12, 0x02, 0x08, 0x03, 0x28, 0x18, 0x35, 0x78, 0x56, 0x34, 0x12]
        );
        assert_eq!(BundleEntryProto::parse(&bytes).unwrap(), e);
        let s = TensorSliceProto { extents: vec![Extent { start: 0, length: None }, Extent { start: 2, length: Some(3) }] };
        assert_eq!(s.encode(), [0x0a, 0x00, 0x0a, 0x04, 0x08, 0x02, 0x10, 0x03]);
        assert_eq!(TensorSliceProto::parse(&s.encode()).unwrap(), s);
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let mut b = vec![0x08, 0x02]; // num_shards = 2
        b.extend([0x78, 0x05]); // field 15, varint
        b.extend([0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]); // field 16, fixed64
        b.extend([0x8a, 0x01, 0x02, 0xaa, 0xbb]); // field 17, bytes
        b.extend([0x9d, 0x01, 1, 2, 3, 4]); // field 19, fixed32
        // group 20 { field 1 = 1; group 21 { } }
        b.extend([0xa3, 0x01, 0x08, 0x01, 0xab, 0x01, 0xac, 0x01, 0xa4, 0x01]);
        b.extend([0x10, 0x01]); // endianness = 1
        let h = BundleHeaderProto::parse(&b).unwrap();
        assert_eq!(h.num_shards, 2);
        assert_eq!(h.endianness, 1);
    }

    #[test]
    fn malformed_messages_are_errors() {
        // truncated varint
        assert!(BundleEntryProto::parse(&[0x08, 0x80]).unwrap_err().reason.contains("truncated varint"));
        // length past the end
        let e = BundleEntryProto::parse(&[0x12, 0x05, 0x00]).unwrap_err();
        assert!(e.reason.contains("runs past the end"), "{e:?}");
        // wrong wire type for a known field (crc32c as varint)
        let e = BundleEntryProto::parse(&[0x30, 0x01]).unwrap_err();
        assert!(e.reason.contains("wire type varint, expected fixed32"), "{e:?}");
        // field number 0
        assert!(BundleEntryProto::parse(&[0x00, 0x01]).is_err());
        // wire types 6 and 7
        assert!(BundleEntryProto::parse(&[0x0e]).is_err());
        assert!(BundleEntryProto::parse(&[0x0f]).is_err());
        // stray end-group
        assert!(BundleEntryProto::parse(&[0x0c]).is_err());
        // unterminated group
        assert!(BundleEntryProto::parse(&[0x0b, 0x08, 0x01]).is_err());
        // mismatched end-group
        assert!(BundleEntryProto::parse(&[0x0b, 0x14]).is_err());
        // error offsets are absolute: the bad varint inside the nested shape is at byte 4
        let e = BundleEntryProto::parse(&[0x08, 0x01, 0x12, 0x02, 0x08, 0x80]).unwrap_err();
        assert_eq!(e.offset, 5);
    }

    #[test]
    fn deeply_nested_groups_do_not_recurse() {
        // 100_000 nested start-groups of (unknown) field 15: bounded stack → error, no
        // stack overflow.
        let b = vec![0x7b; 100_000];
        let e = BundleEntryProto::parse(&b).unwrap_err();
        assert!(e.reason.contains("nested deeper"), "{e:?}");
        // 60 levels, properly closed, are skipped.
        let mut b = vec![0x7b; 60];
        b.extend(vec![0x7c; 60]);
        b.extend([0x08, 0x03]);
        assert_eq!(BundleEntryProto::parse(&b).unwrap().dtype, 3);
    }

    #[test]
    fn negative_and_big_ints() {
        let e = BundleEntryProto { dtype: 1, shape: TensorShapeProto { dims: vec![-1], unknown_rank: false }, ..Default::default() };
        let p = BundleEntryProto::parse(&e.encode()).unwrap();
        assert_eq!(p.shape.dims, [-1]);
        // int32 field holding a 64-bit value is truncated like protobuf does.
        let mut b = vec![0x18];
        put_varint64(&mut b, 0x1_0000_0005);
        assert_eq!(BundleEntryProto::parse(&b).unwrap().shard_id, 5);
    }

    #[test]
    fn repeated_messages_and_merge() {
        let meta = SavedTensorSliceMeta {
            tensors: vec![
                SavedSliceMeta {
                    name: b"a".to_vec(),
                    shape: TensorShapeProto { dims: vec![2], unknown_rank: false },
                    dtype: 1,
                    slices: vec![TensorSliceProto { extents: vec![Extent::default()] }],
                },
                SavedSliceMeta {
                    name: b"b".to_vec(),
                    shape: TensorShapeProto::default(),
                    dtype: 9,
                    slices: vec![TensorSliceProto::default()],
                },
            ],
            versions: VersionDef { producer: 1, min_consumer: 0, bad_consumers: vec![3, 4] },
        };
        let enc = encode_saved_meta(&meta);
        let parsed = SavedTensorSlices::parse(&enc).unwrap();
        assert_eq!(parsed.meta.as_ref(), Some(&meta));
        assert!(parsed.data.is_none());
        // the meta given twice merges (repeated tensors concatenate)
        let twice = [enc.clone(), enc].concat();
        assert_eq!(SavedTensorSlices::parse(&twice).unwrap().meta.unwrap().tensors.len(), 4);
        // unpacked bad_consumers
        let v = VersionDef::parse(&[0x18, 0x03, 0x18, 0x04]).unwrap();
        assert_eq!(v.bad_consumers, [3, 4]);
        assert!(v.check(3).is_err());
        assert!(v.check(1).is_ok());
        assert!(VersionDef { min_consumer: 2, ..Default::default() }.check(1).is_err());
    }

    fn roundtrip_values(dtype: DType, data: &[u8], packed: bool) -> Vec<u8> {
        let vf = ValueField::of(dtype).unwrap();
        let enc = encode_tensor_values(data, vf, packed);
        let mut out = vec![0u8; data.len()];
        decode_tensor_values(&[(&enc, 0)], vf, &mut out).unwrap();
        out
    }

    #[test]
    fn tensor_values_packed_and_unpacked() {
        let f32s: Vec<u8> = [1.5f32, -2.0, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let i8s: Vec<u8> = [-1i8, 127, -128, 0].iter().map(|&v| v as u8).collect();
        let i32s: Vec<u8> = [-5i32, i32::MAX, i32::MIN].iter().flat_map(|v| v.to_le_bytes()).collect();
        let i64s: Vec<u8> = [-5i64, i64::MAX].iter().flat_map(|v| v.to_le_bytes()).collect();
        let u64s: Vec<u8> = [u64::MAX, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bools = vec![1u8, 0, 1];
        let halfs: Vec<u8> = [0x3c00u16, 0xfbff].iter().flat_map(|v| v.to_le_bytes()).collect();
        let c128: Vec<u8> = [1.0f64, -1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        for packed in [true, false] {
            assert_eq!(roundtrip_values(DType::F32, &f32s, packed), f32s);
            assert_eq!(roundtrip_values(DType::I8, &i8s, packed), i8s);
            assert_eq!(roundtrip_values(DType::I32, &i32s, packed), i32s);
            assert_eq!(roundtrip_values(DType::I64, &i64s, packed), i64s);
            assert_eq!(roundtrip_values(DType::U64, &u64s, packed), u64s);
            assert_eq!(roundtrip_values(DType::Bool, &bools, packed), bools);
            assert_eq!(roundtrip_values(DType::F16, &halfs, packed), halfs);
            assert_eq!(roundtrip_values(DType::Complex128, &c128, packed), c128);
        }
        // packed float_val for [1.0, 2.0]: tag 0x2a, length 8, raw LE floats
        let enc = encode_tensor_values(&[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40], ValueField::of(DType::F32).unwrap(), true);
        assert_eq!(enc, [0x2a, 0x08, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
        // negative int8 is a 10-byte int32 varint
        let enc = encode_tensor_values(&[0xff], ValueField::of(DType::I8).unwrap(), false);
        assert_eq!(enc.len(), 1 + 10);
    }

    #[test]
    fn tensor_value_count_mismatch_is_an_error() {
        let vf = ValueField::of(DType::F32).unwrap();
        let enc = encode_tensor_values(&[0u8; 12], vf, true);
        let mut out = vec![0u8; 8];
        assert!(decode_tensor_values(&[(&enc, 0)], vf, &mut out).unwrap_err().reason.contains("more values"));
        let mut out = vec![0u8; 16];
        assert!(decode_tensor_values(&[(&enc, 0)], vf, &mut out).unwrap_err().reason.contains("has 3 values"));
        // packed length not a multiple of 4
        let bad = [0x2a, 0x03, 0, 0, 0];
        let mut out = vec![0u8; 4];
        assert!(decode_tensor_values(&[(&bad, 0)], vf, &mut out).is_err());
        // float_val as varint: wrong wire type
        let bad = [0x28, 0x01];
        assert!(decode_tensor_values(&[(&bad, 0)], vf, &mut out).is_err());
        let vf = ValueField::of(DType::I32).unwrap();
        let enc = encode_tensor_values(&[0u8; 12], vf, false);
        let mut out = vec![0u8; 8];
        assert!(decode_tensor_values(&[(&enc, 0)], vf, &mut out).is_err());
    }

    #[test]
    fn strings() {
        let s = vec![b"abc".to_vec(), vec![], vec![0, 255]];
        let enc = encode_string_values(&s);
        assert_eq!(decode_string_values(&[(&enc, 0)]).unwrap(), s);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = BundleHeaderProto::parse(&bytes);
            let _ = BundleEntryProto::parse(&bytes);
            let _ = SavedTensorSlices::parse(&bytes);
            let mut out = vec![0u8; 16];
            for d in [DType::F32, DType::I8, DType::Bool, DType::Complex128] {
                let _ = decode_tensor_values(&[(&bytes, 0)], ValueField::of(d).unwrap(), &mut out);
            }
            let _ = decode_string_values(&[(&bytes, 0)]);
        }

        #[test]
        fn entry_roundtrip(dtype in 0i32..30, dims in proptest::collection::vec(-1i64..1_000_000, 0..5),
                           shard in 0i32..5, offset in 0i64..i64::MAX, size in 0i64..i64::MAX, crc in any::<u32>()) {
            let e = BundleEntryProto { dtype, shape: TensorShapeProto { dims, unknown_rank: false }, shard_id: shard, offset, size, crc32c: crc, slices: vec![] };
            prop_assert_eq!(BundleEntryProto::parse(&e.encode()).unwrap(), e);
        }
    }
}

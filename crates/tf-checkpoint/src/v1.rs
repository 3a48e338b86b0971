//! The V1 checkpoint reader (TF `core/util/tensor_slice_reader.cc`, `saved_tensor_slice.proto`).
//!
//! A V1 checkpoint is one [table](super::table) (or N tables named `P-SSSSS-of-NNNNN`, each
//! holding some of the slices). In each table:
//!
//! * key `""` → `SavedTensorSlices { meta }`: every tensor saved in this file with its name,
//!   full shape, dtype and the slices stored here;
//! * key `EncodeTensorNameSlice(name, slice)` ([OrderedCode](super::ordered_code)) →
//!   `SavedTensorSlices { data: SavedSlice { name, slice, data: TensorProto } }` with the
//!   slice's values, row-major, in the `TensorProto` field of its dtype (`float_val`,
//!   `int_val`, ...; see [`ValueField`]). A whole variable is one full slice.
//!
//! Listing reads only the meta record (in the first block). Reading a tensor looks up each
//! of its slices by key through the table index; nothing is scanned.

use std::collections::HashMap;

use super::dtype::DType;
use super::error::{CkptError, Result};
use super::ordered_code::encode_tensor_name_slice;
use super::proto::{Message, SavedTensorSlices, ValueField, decode_string_values, decode_tensor_values};
use super::slice::{Slice, byte_size, check_coverage, copy_slice, num_elements, resolve_slice, validate_shape};
use super::source::{Loc, split_shard_suffix};
use super::table::{Table, TableValue};
use super::{TensorData, TensorInfo};

/// `TF_CHECKPOINT_VERSION`: the V1 format version this reader implements.
const CHECKPOINT_VERSION: i32 = 1;
/// Decoded bytes per stored byte can reach 8 (an int64 from a 1-byte varint) times the
/// Snappy expansion bound; used to refuse absurd sizes before allocating.
const MAX_EXPANSION: u64 = 8 * 22;

#[derive(Debug)]
struct V1Tensor {
    dtype: DType,
    shape: Vec<u64>,
    /// (index of the file, slice)
    slices: Vec<(usize, Slice)>,
}

/// An open V1 checkpoint (one or several table files).
#[derive(Debug)]
pub(crate) struct V1Checkpoint {
    files: Vec<Table>,
    tensors: HashMap<String, V1Tensor>,
    infos: Vec<TensorInfo>,
}

fn open_table(loc: &Loc) -> Result<Table> {
    let blob = loc.open()?;
    let name = blob.name().to_string();
    match Table::open(blob) {
        Err(CkptError::NotATable { .. }) if split_shard_suffix(&name, ".data").is_some() => Err(CkptError::DataShardAsTable { file: name }),
        other => other,
    }
}

impl V1Checkpoint {
    /// Opens the table files and merges their meta records.
    pub fn open(files: &[Loc]) -> Result<V1Checkpoint> {
        let mut tables = Vec::with_capacity(files.len());
        let mut tensors: HashMap<String, V1Tensor> = HashMap::new();
        for (fi, loc) in files.iter().enumerate() {
            let table = open_table(loc)?;
            let file = table.name().to_string();
            let corrupt = |reason: String| CkptError::Corrupt { file: file.clone(), reason };
            let value =
                table.get(b"")?.ok_or_else(|| corrupt("the table has no meta record (key \"\"), so it is not a V1 checkpoint".into()))?;
            let sts = SavedTensorSlices::parse(value.bytes()).map_err(|e| e.in_file(&file, "SavedTensorSlices meta record"))?;
            let meta = sts.meta.ok_or_else(|| {
                corrupt("the record under key \"\" has no V1 meta, so this is not a V1 checkpoint (a V2 .index? open the checkpoint prefix instead)".into())
            })?;
            meta.versions
                .check(CHECKPOINT_VERSION)
                .map_err(|r| CkptError::Unsupported { file: file.clone(), what: format!("a checkpoint whose version says {r}") })?;
            for t in meta.tensors {
                let name = String::from_utf8(t.name.clone())
                    .map_err(|_| corrupt(format!("a tensor name is not valid UTF-8: '{}'", super::error::show_key(&t.name))))?;
                let bad = |reason: String| CkptError::BadTensor { file: file.clone(), tensor: name.clone(), reason };
                let dtype = DType::from_stored(t.dtype).map_err(bad)?;
                let shape = validate_shape(&t.shape).map_err(bad)?;
                let entry = tensors.entry(name.clone()).or_insert_with(|| V1Tensor { dtype, shape: shape.clone(), slices: Vec::new() });
                if entry.dtype != dtype || entry.shape != shape {
                    return Err(bad(format!(
                        "this file says {dtype} {shape:?}, an earlier shard file says {} {:?}",
                        entry.dtype, entry.shape
                    )));
                }
                for sp in &t.slices {
                    let s = resolve_slice(&shape, sp).map_err(bad)?;
                    entry.slices.push((fi, s));
                }
            }
            tables.push(table);
        }
        let first = tables.first().map(|t| t.name().to_string()).unwrap_or_default();
        let mut infos = Vec::with_capacity(tensors.len());
        for (name, t) in &tensors {
            let only: Vec<Slice> = t.slices.iter().map(|(_, s)| s.clone()).collect();
            check_coverage(&t.shape, &only).map_err(|reason| CkptError::BadTensor { file: first.clone(), tensor: name.clone(), reason })?;
            infos.push(TensorInfo { name: name.clone(), dtype: t.dtype, shape: t.shape.clone() });
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(V1Checkpoint { files: tables, tensors, infos })
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.infos
    }

    pub fn num_files(&self) -> usize {
        self.files.len()
    }

    fn first_file(&self) -> String {
        self.files.first().map(|t| t.name().to_string()).unwrap_or_default()
    }

    fn tensor(&self, name: &str) -> Result<&V1Tensor> {
        self.tensors.get(name).ok_or_else(|| CkptError::TensorNotFound { file: self.first_file(), tensor: name.to_string() })
    }

    /// Point lookup of one slice record; returns its file name and value.
    fn lookup(&self, name: &str, fi: usize, s: &Slice) -> Result<(String, TableValue)> {
        let table =
            self.files.get(fi).ok_or_else(|| CkptError::Corrupt { file: self.first_file(), reason: "no such shard file".into() })?;
        let file = table.name().to_string();
        let key = encode_tensor_name_slice(name.as_bytes(), &s.key_extents);
        let value = table.get(&key)?.ok_or_else(|| CkptError::BadTensor {
            file: file.clone(),
            tensor: name.to_string(),
            reason: format!("slice {} is listed in the meta record but its record is missing", s.describe()),
        })?;
        Ok((file, value))
    }

    /// Parses a slice record and checks that it is the slice asked for.
    fn parse_record<'v>(file: &str, name: &str, s: &Slice, shape: &[u64], value: &'v TableValue) -> Result<Vec<(&'v [u8], usize)>> {
        let bad = |reason: String| CkptError::BadTensor { file: file.to_string(), tensor: name.to_string(), reason };
        let sts = SavedTensorSlices::parse(value.bytes())
            .map_err(|e| e.in_file(file, format!("SavedTensorSlices record of '{name}' slice {}", s.describe())))?;
        let saved = sts.data.ok_or_else(|| bad(format!("the record of slice {} has no data", s.describe())))?;
        if saved.name != name.as_bytes() {
            return Err(bad(format!("the record of slice {} names the tensor '{}'", s.describe(), super::error::show_key(&saved.name))));
        }
        let stored = saved.slice.as_ref().map(|p| resolve_slice(shape, p));
        match stored {
            Some(Ok(ref got)) if got.extents == s.extents => {}
            _ => {
                return Err(bad(format!("the record stored under slice {} holds a different slice", s.describe())));
            }
        }
        Ok(saved.data)
    }

    /// Reads a numeric tensor.
    pub fn read(&self, name: &str) -> Result<TensorData> {
        let t = self.tensor(name)?;
        let first = self.first_file();
        let elem = t.dtype.size().ok_or_else(|| super::not_numeric(&first, name, t.dtype))?;
        let vf = ValueField::of(t.dtype).ok_or_else(|| CkptError::Unsupported {
            file: first.clone(),
            what: format!("dtype {} in a V1 checkpoint (tensor '{name}')", t.dtype),
        })?;
        let bad = |file: &str, reason: String| CkptError::BadTensor { file: file.to_string(), tensor: name.to_string(), reason };
        // Decodes one slice's record into a buffer of exactly its size, after checking that the
        // record is big enough to hold that many values.
        let decode = |fi: usize, s: &Slice| -> Result<Vec<u8>> {
            let (file, value) = self.lookup(name, fi, s)?;
            let segments = Self::parse_record(&file, name, s, &t.shape, &value)?;
            let bytes = s.num_elements().checked_mul(elem as u64).ok_or_else(|| bad(&file, "the slice is too large".into()))?;
            let n_values = bytes / vf.width as u64;
            let encoded: u64 = segments.iter().map(|(b, _)| b.len() as u64).sum();
            if vf.min_encoded_len(n_values).is_none_or(|min| min > encoded) {
                return Err(bad(
                    &file,
                    format!("slice {} needs {n_values} values but its record holds only {encoded} bytes of data", s.describe()),
                ));
            }
            let mut out = vec![0u8; usize::try_from(bytes).map_err(|_| bad(&file, "the slice is too large".into()))?];
            decode_tensor_values(&segments, vf, &mut out)
                .map_err(|e| e.in_file(&file, format!("TensorProto of '{name}' slice {}", s.describe())))?;
            Ok(out)
        };
        let data = match t.slices.as_slice() {
            [(fi, s)] if s.is_full(&t.shape) => decode(*fi, s)?,
            slices => {
                let total = byte_size(&t.shape, elem).ok_or_else(|| bad(&first, "the tensor is too large".into()))?;
                let stored: u64 = self.files.iter().map(Table::file_len).sum();
                if total > stored.saturating_mul(MAX_EXPANSION) {
                    return Err(bad(&first, format!("its shape {:?} needs {total} bytes, more than the files can hold", t.shape)));
                }
                let mut full = vec![0u8; usize::try_from(total).map_err(|_| bad(&first, "the tensor is too large".into()))?];
                for (fi, s) in slices {
                    let part = decode(*fi, s)?;
                    copy_slice(&mut full, &t.shape, s, &part, elem).map_err(|r| bad(&first, format!("slice {}: {r}", s.describe())))?;
                }
                full
            }
        };
        Ok(TensorData { dtype: t.dtype, shape: t.shape.clone(), data })
    }

    /// Reads a string tensor (stored as one whole slice).
    pub fn read_string(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        let t = self.tensor(name)?;
        let first = self.first_file();
        if t.dtype != DType::String {
            return Err(super::not_string(&first, name, t.dtype));
        }
        let (fi, s) = match t.slices.as_slice() {
            [(fi, s)] if s.is_full(&t.shape) => (*fi, s),
            _ => {
                return Err(CkptError::Unsupported { file: first, what: format!("the partitioned string tensor '{name}'") });
            }
        };
        let (file, value) = self.lookup(name, fi, s)?;
        let segments = Self::parse_record(&file, name, s, &t.shape, &value)?;
        let strings = decode_string_values(&segments).map_err(|e| e.in_file(&file, format!("TensorProto of '{name}'")))?;
        let n = num_elements(&t.shape).unwrap_or(u64::MAX);
        if strings.len() as u64 != n {
            return Err(CkptError::BadTensor {
                file,
                tensor: name.to_string(),
                reason: format!("its record holds {} strings, the shape {:?} has {n}", strings.len(), t.shape),
            });
        }
        Ok(strings)
    }
}

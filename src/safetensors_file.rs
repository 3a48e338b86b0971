//! safetensors files: the one module that reads and writes them.
//!
//! Layout (the safetensors spec): a little-endian u64 header length `n`, an `n`-byte JSON
//! header `{"__metadata__": {..}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, …}`
//! padded with spaces to a multiple of 8 bytes, then the tensors' bytes back to back. Parsing and
//! validation (offsets contiguous, sizes equal to shape × dtype, no overflow) are the
//! `safetensors` crate's; dtypes go through the one table in [`crate::dtype`].
//!
//! Writing streams: tensors are produced one at a time by a callback and written at their
//! offsets by a few threads, so memory holds a tensor per thread, not the file. Every file is
//! written atomically ([`crate::io`]).

use crate::ckpt::{DType, TensorData};
use crate::dtype;
use crate::error::{Error, Result};
use crate::weights::Weights;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use tch::Tensor;

/// A read-only map of a safetensors file, parsed and validated.
pub struct Mapped {
    map: memmap2::Mmap,
    path: std::path::PathBuf,
}

impl Mapped {
    /// Maps and validates `path` (a regular file: a FIFO or a device is refused unopened).
    pub fn open(path: &Path) -> Result<Mapped> {
        crate::io::check_input(path)?;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::bad_file(path, "not a regular file"));
        }
        // SAFETY: the map is read-only; a file truncated by another process while it is mapped
        // is the one case memmap2 cannot guard against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        safetensors::SafeTensors::deserialize(&map).map_err(|e| Error::bad_file(path, format!("not a safetensors file: {e}")))?;
        Ok(Mapped { map, path: path.to_path_buf() })
    }

    fn parsed(&self) -> Result<safetensors::SafeTensors<'_>> {
        safetensors::SafeTensors::deserialize(&self.map).map_err(|e| Error::bad_file(&self.path, format!("not a safetensors file: {e}")))
    }

    /// The `__metadata__` map.
    pub fn metadata(&self) -> Result<BTreeMap<String, String>> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(&self.map)
            .map_err(|e| Error::bad_file(&self.path, format!("not a safetensors file: {e}")))?;
        Ok(meta.metadata().clone().unwrap_or_default().into_iter().collect())
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.parsed()?.names().into_iter().map(str::to_string).collect();
        names.sort();
        Ok(names)
    }

    /// One tensor's bytes with its TF dtype and shape.
    pub fn tensor_data(&self, name: &str) -> Result<TensorData> {
        let st = self.parsed()?;
        let view = st.tensor(name).map_err(|e| Error::bad_file(&self.path, format!("tensor '{name}': {e}")))?;
        let dtype = dtype::from_safetensors(view.dtype())
            .ok_or_else(|| Error::Tensor { name: name.to_string(), reason: format!("dtype {:?} has no TF equivalent", view.dtype()) })?;
        Ok(TensorData { dtype, shape: view.shape().iter().map(|&d| d as u64).collect(), data: view.data().to_vec() })
    }

    /// Every tensor as a tch tensor (CPU), with the metadata.
    pub fn weights(&self) -> Result<Weights> {
        let st = self.parsed()?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let kind = dtype::kind_of(view.dtype()).ok_or_else(|| Error::Tensor {
                name: name.clone(),
                reason: format!("dtype {:?} has no torch equivalent (in {})", view.dtype(), self.path.display()),
            })?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            tensors.insert(name, Tensor::f_from_data_size(view.data(), &shape, kind)?);
        }
        Ok(Weights { source: self.path.display().to_string(), tensors, metadata: self.metadata()? })
    }
}

/// Reads a whole safetensors file as [`Weights`].
pub fn read(path: &Path) -> Result<Weights> {
    Mapped::open(path)?.weights()
}

/// True when `path` is a regular file that starts like a safetensors file: a little-endian u64
/// header length followed by `{`.
pub fn looks_like(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 9];
    let is_file = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    is_file
        && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head[8] == b'{'
        && u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]) > 1
}

/// One tensor of a file being written.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Its dtype.
    pub dtype: DType,
    /// Its shape.
    pub shape: Vec<u64>,
}

/// Writes a safetensors file whose tensors are produced by `fill(i)` (in any order, on a few
/// threads that each hold one tensor at a time and write it at its offset). `progress` is
/// called after each tensor with (bytes done, bytes total).
pub fn write(
    out: &Path,
    overwrite: bool,
    metadata: &BTreeMap<String, String>,
    entries: &[Entry],
    fill: &(dyn Fn(usize) -> Result<TensorData> + Sync),
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<()> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(metadata).map_err(|e| Error::invalid(e.to_string()))?);
    }
    let mut offset = 0u64;
    let mut offsets = Vec::with_capacity(entries.len());
    let mut seen = BTreeSet::new();
    for e in entries {
        if !seen.insert(&e.name) {
            return Err(Error::invalid(format!("duplicate tensor name '{}'", e.name)));
        }
        let st = dtype::to_safetensors(e.dtype)
            .ok_or_else(|| Error::Tensor { name: e.name.clone(), reason: format!("dtype {} cannot be stored in safetensors", e.dtype) })?;
        let size = e
            .shape
            .iter()
            .try_fold(e.dtype.size().unwrap_or(0) as u64, |a, &d| a.checked_mul(d))
            .and_then(|s| offset.checked_add(s).map(|_| s))
            .ok_or_else(|| Error::Tensor { name: e.name.clone(), reason: format!("shape {:?} overflows", e.shape) })?;
        header.insert(
            e.name.clone(),
            serde_json::json!({"dtype": st.to_string(), "shape": e.shape, "data_offsets": [offset, offset + size]}),
        );
        offsets.push((offset, size));
        offset += size;
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| Error::invalid(e.to_string()))?;
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let total = offset;
    let data_start = 8 + json.len() as u64;
    crate::io::write_atomic(out, overwrite, |file| {
        use std::os::unix::fs::FileExt;
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
        let io = |e: std::io::Error| Error::io(out, e);
        file.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
        file.write_all(&json).map_err(io)?;
        file.set_len(data_start + total).map_err(io)?;
        let file = &*file;
        let (next, done) = (AtomicUsize::new(0), AtomicU64::new(0));
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let work = || -> Result<()> {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= entries.len() || failed.lock().map_or(true, |f| f.is_some()) {
                    return Ok(());
                }
                let (e, (off, size)) = (&entries[i], offsets[i]);
                let d = fill(i)?;
                if d.data.len() as u64 != size || d.shape != e.shape {
                    return Err(Error::Tensor {
                        name: e.name.clone(),
                        reason: format!("produced shape {:?} ({} bytes), expected {:?}", d.shape, d.data.len(), e.shape),
                    });
                }
                file.write_all_at(&d.data, data_start + off).map_err(io)?;
                progress(done.fetch_add(size, Ordering::Relaxed) + size, total);
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    if let Err(e) = work()
                        && let Ok(mut f) = failed.lock()
                    {
                        f.get_or_insert(e);
                    }
                });
            }
        });
        match failed.into_inner() {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(e),
            Err(_) => Err(Error::invalid("a writer thread panicked")),
        }
    })
}

/// A CPU tensor's bytes with its dtype and shape (contiguous, little-endian).
pub fn tensor_data(t: &Tensor) -> Result<TensorData> {
    let t = t.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
    let st = dtype::safetensors_of(t.kind())
        .ok_or_else(|| Error::invalid(format!("a {:?} tensor cannot be stored in safetensors", t.kind())))?;
    let dtype = dtype::from_safetensors(st).ok_or_else(|| Error::invalid(format!("no TF dtype for {st:?}")))?;
    let shape: Vec<u64> = t.size().iter().map(|&d| d as u64).collect();
    let mut data = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
    t.f_copy_data_u8(&mut data, t.numel())?;
    Ok(TensorData { dtype, shape, data })
}

/// Writes named tch tensors as they are (any layout the caller chose) to `out`.
pub fn write_tensors(out: &Path, overwrite: bool, tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
    let datas = tensors.iter().map(|(_, t)| tensor_data(t)).collect::<Result<Vec<_>>>()?;
    let entries: Vec<Entry> =
        tensors.iter().zip(&datas).map(|((n, _), d)| Entry { name: n.clone(), dtype: d.dtype, shape: d.shape.clone() }).collect();
    write(out, overwrite, metadata, &entries, &|i| Ok(datas[i].clone()), &|_, _| {})
}

//! Named weights (TF names, tch layout) and strict loading into a built net.
//!
//! Loading compares the two name sets in both directions and every shape, and reports every
//! missing, unexpected and mis-shaped name in one [`Mismatch`] error; nothing is copied unless all
//! of them agree. Nothing is ever skipped silently.

use crate::arch::{Model, Shapes};
use crate::error::{Error, Mismatch, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// Tensors under their TF names, in tch layout (see [`crate::layout`]), on the CPU.
#[derive(Debug, Default)]
pub struct Weights {
    /// Where they came from, for messages.
    pub source: String,
    pub tensors: BTreeMap<String, Tensor>,
    /// The safetensors `__metadata__` (or what the converter recorded).
    pub metadata: BTreeMap<String, String>,
}

impl Weights {
    pub fn shapes(&self) -> Shapes {
        self.tensors.iter().map(|(k, t)| (k.clone(), t.size())).collect()
    }

    /// Reads a safetensors file (as `slimzoo convert` writes it, or any file with TF names in tch
    /// layout).
    pub fn from_safetensors(path: &Path) -> Result<Weights> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only and lives only inside this function; a file truncated by
        // another process while it is mapped is the one case memmap2 cannot guard against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let bad = |reason: String| Error::bad_file(path, reason);
        let (_, meta) = safetensors::SafeTensors::read_metadata(&map)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let st = safetensors::SafeTensors::deserialize(&map).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let kind = kind_of(view.dtype()).ok_or_else(|| {
                Error::Tensor { name: name.clone(), reason: format!("dtype {:?} has no torch equivalent", view.dtype()) }
            })?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let t = Tensor::f_from_data_size(view.data(), &shape, kind)?;
            tensors.insert(name, t);
        }
        let metadata = meta.metadata().clone().unwrap_or_default().into_iter().collect();
        Ok(Weights { source: path.display().to_string(), tensors, metadata })
    }
}

/// The safetensors dtype's torch kind.
pub fn kind_of(dtype: safetensors::Dtype) -> Option<Kind> {
    use safetensors::Dtype as D;
    Some(match dtype {
        D::F32 => Kind::Float,
        D::F64 => Kind::Double,
        D::F16 => Kind::Half,
        D::BF16 => Kind::BFloat16,
        D::I64 => Kind::Int64,
        D::I32 => Kind::Int,
        D::I16 => Kind::Int16,
        D::I8 => Kind::Int8,
        D::U8 => Kind::Uint8,
        D::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// Compares a net's variables (`want`) with weights (`got`): names both ways, then shapes.
pub fn compare(want: &Shapes, got: &Shapes, net: &str, source: &str) -> Mismatch {
    let mut m = Mismatch { net: net.to_string(), source: source.to_string(), ..Default::default() };
    for (name, shape) in want {
        match got.get(name) {
            None => m.missing.push((name.clone(), shape.clone())),
            Some(s) if s != shape => m.shape.push((name.clone(), shape.clone(), s.clone())),
            Some(_) => {}
        }
    }
    m.unexpected = got.iter().filter(|(k, _)| !want.contains_key(*k)).map(|(k, s)| (k.clone(), s.clone())).collect();
    m
}

impl Model {
    /// Loads `w` strictly: the names must be exactly the net's variables, each with its shape,
    /// and floating point. All disagreements are reported together; on error nothing is changed.
    pub fn load(&mut self, w: &Weights) -> Result<()> {
        let vars = self.variables();
        let want: Shapes = vars.iter().map(|(k, t)| (k.clone(), t.size())).collect();
        let mismatch = compare(&want, &w.shapes(), &self.spec.to_string(), &w.source);
        if !mismatch.is_empty() {
            return Err(Error::Mismatch(Box::new(mismatch)));
        }
        for (name, t) in &w.tensors {
            if !t.is_floating_point() {
                return Err(Error::Tensor {
                    name: name.clone(),
                    reason: format!("is {:?} in {}, but the net's variable is floating point", t.kind(), w.source),
                });
            }
        }
        self.fast = None;
        tch::no_grad(|| -> Result<()> {
            for (name, var) in &vars {
                let mut var = var.shallow_clone();
                var.f_copy_(&w.tensors[name])?;
            }
            Ok(())
        })
    }

    /// This net's current variables as [`Weights`] (copies, on the CPU).
    pub fn weights(&self) -> Result<Weights> {
        let tensors = self
            .variables()
            .into_iter()
            .map(|(k, t)| Ok((k, t.f_detach()?.f_to_device(tch::Device::Cpu)?.f_contiguous()?)))
            .collect::<Result<_>>()?;
        let metadata = self.spec.metadata().into_iter().collect();
        Ok(Weights { source: format!("the {} net", self.spec.name()), tensors, metadata })
    }
}

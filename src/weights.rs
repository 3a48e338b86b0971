//! Named weights (TF names, tch layout) and the strict comparison of weight names and shapes
//! with a net's variables.
//!
//! The comparison checks the two name sets in both directions and every shape, and reports every
//! missing, unexpected and mis-shaped name in one [`Mismatch`]; nothing is ever skipped silently.

use crate::error::Mismatch;
use crate::layout::Layout;
use crate::models::TfShapes;
use std::collections::BTreeMap;
use tch::Tensor;

/// Variable names (TF) and shapes (tch layout).
pub type Shapes = BTreeMap<String, Vec<i64>>;

/// Tensors under their TF names, in tch layout (see [`crate::layout`]), on the CPU.
#[derive(Debug, Default)]
pub struct Weights {
    /// Where they came from, for messages.
    pub source: String,
    /// TF name → tensor.
    pub tensors: BTreeMap<String, Tensor>,
    /// The safetensors `__metadata__` (or what the converter recorded).
    pub metadata: BTreeMap<String, String>,
}

impl Weights {
    /// Names and shapes (tch layout).
    pub fn shapes(&self) -> Shapes {
        self.tensors.iter().map(|(k, t)| (k.clone(), t.size())).collect()
    }

    /// Names and shapes in TF layout (what nets are recognized from).
    pub fn tf_shapes(&self) -> TfShapes {
        to_tf_shapes(&self.shapes())
    }

    /// Reads a safetensors file (as `slimzoo convert` writes it, or any file with TF names in tch
    /// layout); see [`crate::safetensors_file::read`].
    pub fn from_safetensors(path: &std::path::Path) -> crate::Result<Weights> {
        crate::safetensors_file::read(path)
    }
}

/// tch-layout shapes → TF-layout shapes (conv kernels OIHW → HWIO, dense `[out, in]` → `[in, out]`).
pub fn to_tf_shapes(shapes: &Shapes) -> TfShapes {
    shapes.iter().map(|(k, s)| (k.clone(), crate::layout::permute_shape(s, Layout::of(k, s.len()).to_tf_perm()))).collect()
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

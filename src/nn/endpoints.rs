//! slim's `end_points`: an ordered map from slim's keys to activations.
//!
//! Tensors are NCHW (libtorch's layout) — rank-4 end points are `[batch, channels, height, width]`.
//! TF's NHWC is `t.permute([0, 2, 3, 1])`; [`to_nhwc`] does it.

use std::collections::BTreeSet;
use tch::Tensor;

#[derive(Debug, Default)]
/// slim's `end_points` of one forward pass (see the module documentation).
pub struct EndPoints {
    /// `None` keeps every end point; `Some(keys)` keeps only those (saves memory on big nets).
    wanted: Option<BTreeSet<String>>,
    items: Vec<(String, Tensor)>,
    /// Every key the net produced, wanted or not (for error messages).
    seen: Vec<String>,
}

impl EndPoints {
    /// Collects every end point.
    pub fn all() -> Self {
        EndPoints { wanted: None, items: Vec::new(), seen: Vec::new() }
    }

    /// Collects none (the fastest forward pass).
    pub fn none() -> Self {
        EndPoints { wanted: Some(BTreeSet::new()), items: Vec::new(), seen: Vec::new() }
    }

    /// Collects only `keys`.
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        EndPoints { wanted: Some(keys.into_iter().map(Into::into).collect()), items: Vec::new(), seen: Vec::new() }
    }

    /// A collector wanting the same keys as this one, empty.
    pub fn empty_like(&self) -> Self {
        EndPoints { wanted: self.wanted.clone(), items: Vec::new(), seen: Vec::new() }
    }

    /// Appends the end points of several sub-batches (same keys in the same order), each
    /// concatenated along the batch dimension.
    pub fn concatenate(&mut self, parts: Vec<EndPoints>) -> crate::Result<()> {
        let Some(first) = parts.first() else { return Ok(()) };
        for (i, (key, _)) in first.items.iter().enumerate() {
            let tensors: Vec<&Tensor> = parts.iter().filter_map(|p| p.items.get(i).map(|(_, t)| t)).collect();
            if tensors.len() != parts.len() {
                return Err(crate::Error::invalid(format!("end point {key} is missing from a sub-batch")));
            }
            self.items.push((key.clone(), Tensor::f_cat(&tensors, 0)?));
        }
        self.seen.extend(first.seen.iter().cloned());
        Ok(())
    }

    /// Whether `key` would be kept; nets use it to skip copies for end points nobody asked for.
    pub fn wants(&self, key: &str) -> bool {
        self.wanted.as_ref().is_none_or(|w| w.contains(key))
    }

    /// Records `t` under `key` (a shallow handle: the tensor must not be modified in place later).
    pub fn add(&mut self, key: impl Into<String>, t: &Tensor) {
        let key = key.into();
        if self.wants(&key) {
            self.items.push((key.clone(), t.shallow_clone()));
        }
        self.seen.push(key);
    }

    /// The end point `key`, if collected.
    pub fn get(&self, key: &str) -> Option<&Tensor> {
        self.items.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }

    /// The collected keys, in the order the net produced them.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|(k, _)| k.as_str())
    }

    /// (key, tensor) pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.items.iter().map(|(k, t)| (k.as_str(), t))
    }

    /// How many were collected.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none was collected.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The collected (key, tensor) pairs.
    pub fn into_vec(self) -> Vec<(String, Tensor)> {
        self.items
    }

    /// Every key the net produced in the last forward pass, in order.
    pub fn available(&self) -> &[String] {
        &self.seen
    }

    /// The requested keys that were not produced (misspelled, or absent for these options).
    pub fn unmatched(&self) -> Vec<String> {
        match &self.wanted {
            None => Vec::new(),
            Some(w) => w.iter().filter(|k| self.get(k).is_none()).cloned().collect(),
        }
    }
}

/// NCHW → NHWC for rank-4 tensors; other ranks unchanged.
pub fn to_nhwc(t: &Tensor) -> Tensor {
    if t.dim() == 4 { t.permute([0, 2, 3, 1]).contiguous() } else { t.shallow_clone() }
}

//! Faces from photos as facenet finds them: MTCNN detection ([`detect`], facenet's
//! `detect_face.py`) and alignment ([`align`], `align_dataset_mtcnn.py` and `compare.py`).
//!
//! The three nets are ordinary slimzoo nets ([`crate::models::mtcnn`]), loaded from the weights
//! facenet ships (`det1-3.npy`, shipped with slimzoo) and frozen.
//!
//! ```
//! use slimzoo::faces::{DetectOptions, Detector};
//! use slimzoo::photo::Rgb8;
//! let detector = Detector::shipped(tch::Device::Cpu)?;
//! let gray = Rgb8 { height: 120, width: 160, data: vec![128; 120 * 160 * 3] };
//! let faces = detector.detect(&gray, &DetectOptions::default())?;
//! assert!(faces.is_empty(), "a flat gray picture has no face");
//! # Ok::<(), slimzoo::Error>(())
//! ```

pub mod align;
pub mod detect;
mod numpy_pow;

use crate::error::{Error, Result};
use crate::models::Arch;
use crate::models::mtcnn::{Stage, WEIGHTS};
use crate::photo::Rgb8;
use crate::weights::Weights;
use crate::{Frozen, Model, Rewrites};
use std::path::Path;
use tch::Device;

/// One face as `detect_face` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in pixels (float64, as facenet computes them).
    pub bbox: [f64; 4],
    /// O-Net's face probability.
    pub score: f64,
    /// `(x, y)` of the left eye, right eye, nose, left and right mouth corners (as seen), rounded
    /// to float32 like facenet's `points`.
    pub landmarks: [[f64; 2]; 5],
}

/// `detect_face`'s parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    /// `minsize`: the smallest face searched for, in pixels (facenet: 20).
    pub min_size: f64,
    /// `threshold`: P-Net, R-Net and O-Net score thresholds (facenet: 0.6, 0.7, 0.7).
    pub thresholds: [f64; 3],
    /// `factor`: the pyramid's scale step (facenet: 0.709).
    pub factor: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions { min_size: 20.0, thresholds: [0.6, 0.7, 0.7], factor: 0.709 }
    }
}

/// Largest pyramid level (pixels) a detection may build: a tiny `min_size` enlarges the photo.
pub const MAX_LEVEL_PIXELS: f64 = 1.0e8;

/// Most pyramid levels a detection may build (a `factor` close to 1 makes many).
pub const MAX_LEVELS: usize = 200;

impl DetectOptions {
    /// Checks the values (before any work), with the allowed ranges in the message.
    pub fn validate(&self) -> Result<()> {
        if !(self.min_size >= 1.0 && self.min_size <= 1e6) {
            return Err(Error::invalid(format!("the minimum face size must be in 1..=1000000 pixels, got {}", self.min_size)));
        }
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::invalid(format!("the pyramid factor must be in (0, 1), got {}", self.factor)));
        }
        if let Some(t) = self.thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
            return Err(Error::invalid(format!("detection thresholds must be in [0, 1], got {t}")));
        }
        Ok(())
    }

    /// Checks what detecting on an `h` x `w` photo would build.
    pub fn check_image(&self, h: usize, w: usize) -> Result<()> {
        let scales = detect::scales(h.min(w), self);
        if scales.len() > MAX_LEVELS {
            return Err(Error::invalid(format!(
                "factor {} gives {} pyramid levels on a {h}x{w} photo (at most {MAX_LEVELS}); use a smaller factor",
                self.factor,
                scales.len()
            )));
        }
        if let Some(&s) = scales.first() {
            let pixels = detect::scaled(h, s) as f64 * detect::scaled(w, s) as f64;
            if pixels > MAX_LEVEL_PIXELS {
                return Err(Error::invalid(format!(
                    "minimum face size {} enlarges the {h}x{w} photo {s:.3} times ({pixels:.0} pixels, at most {MAX_LEVEL_PIXELS:.0}); use a larger minimum size",
                    self.min_size
                )));
            }
        }
        Ok(())
    }
}

/// MTCNN's three nets, frozen.
#[derive(Debug)]
pub struct Detector {
    pnet: Frozen,
    rnet: Frozen,
    onet: Frozen,
}

impl Detector {
    /// From MTCNN weights under detect_face's names (`pnet/…`, `rnet/…`, `onet/…`), strictly.
    pub fn new(weights: Weights, device: Device) -> Result<Detector> {
        let mut w = weights;
        let mut nets = Vec::with_capacity(3);
        for stage in Stage::ALL {
            let prefix = format!("{}/", stage.scope());
            let names: Vec<String> = w.tensors.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
            let tensors = names.iter().filter_map(|n| w.tensors.remove_entry(n)).collect();
            let part = Weights { source: w.source.clone(), tensors, metadata: Default::default() };
            let arch = Arch::resolve(&format!("mtcnn_{}", stage.scope()), None, &Default::default())?;
            nets.push(Model::from_weights(&arch, part, device)?.freeze(Rewrites::default())?);
        }
        if !w.tensors.is_empty() {
            let extra: Vec<&str> = w.tensors.keys().map(String::as_str).take(5).collect();
            return Err(Error::invalid(format!("{}: not MTCNN weights (unexpected {})", w.source, extra.join(", "))));
        }
        let mut it = nets.into_iter();
        match (it.next(), it.next(), it.next()) {
            (Some(pnet), Some(rnet), Some(onet)) => Ok(Detector { pnet, rnet, onet }),
            _ => Err(Error::invalid("internal error: three MTCNN nets expected")),
        }
    }

    /// The weights shipped with slimzoo (facenet's `det1.npy`, `det2.npy`, `det3.npy`).
    pub fn shipped(device: Device) -> Result<Detector> {
        let st = safetensors::SafeTensors::deserialize(WEIGHTS).map_err(|e| Error::invalid(format!("shipped MTCNN weights: {e}")))?;
        let mut tensors = std::collections::BTreeMap::new();
        for (name, view) in st.tensors() {
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            tensors.insert(name, tch::Tensor::f_from_data_size(view.data(), &shape, tch::Kind::Float)?);
        }
        Detector::new(Weights { source: "the shipped MTCNN weights".into(), tensors, metadata: Default::default() }, device)
    }

    /// From a safetensors file of MTCNN weights (as `tools/mtcnn_weights.py` writes them).
    pub fn from_file(path: &Path, device: Device) -> Result<Detector> {
        Detector::new(Weights::from_safetensors(path)?, device)
    }

    /// The frozen net of `stage`.
    pub fn net(&self, stage: Stage) -> &Frozen {
        match stage {
            Stage::P => &self.pnet,
            Stage::R => &self.rnet,
            Stage::O => &self.onet,
        }
    }

    /// `detect_face(img, minsize, pnet, rnet, onet, threshold, factor)`.
    pub fn detect(&self, img: &Rgb8, opts: &DetectOptions) -> Result<Vec<Face>> {
        Ok(self.detect_batch(&[img], opts)?.into_iter().next().unwrap_or_default())
    }

    /// `detect_face` on several photos, R-Net and O-Net batched across them (each photo's
    /// result is what `detect_face` gives for it alone).
    pub fn detect_batch(&self, images: &[&Rgb8], opts: &DetectOptions) -> Result<Vec<Vec<Face>>> {
        Ok(self.trace_batch(images, opts)?.into_iter().map(|(f, _)| f).collect())
    }

    /// Like [`Detector::detect_batch`], with each photo's intermediate stages.
    pub fn trace_batch(&self, images: &[&Rgb8], opts: &DetectOptions) -> Result<Vec<(Vec<Face>, detect::Trace)>> {
        opts.validate()?;
        for img in images {
            if img.data.len() != img.height * img.width * 3 || img.height == 0 || img.width == 0 {
                return Err(Error::invalid(format!("not an RGB image of {}x{}", img.height, img.width)));
            }
            opts.check_image(img.height, img.width)?;
        }
        detect::run_stages(&self.pnet, &self.rnet, &self.onet, images, opts)
    }
}

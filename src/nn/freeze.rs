//! The frozen inference form: each layer of a net's table, prepared on its own.
//!
//! - **BN folding**: a convolution (or dense layer) followed by batch norm becomes one with
//!   `w * gamma / sqrt(var + eps)` and bias `beta - mean * gamma / sqrt(var + eps)`; a constant
//!   output factor (facenet's residual scale) is folded the same way. A batch norm on its own
//!   (ResNet v2's `preact`, `postnorm`) becomes one per-channel `x * scale + shift`.
//! - **channels-last** weights and activations (oneDNN's native layout; no reorder per layer).
//! - **fused oneDNN convolutions**: ReLU inside the convolution, and a residual addition done by
//!   the convolution into the shortcut tensor, in place (see [`super::Cx::conv_add`]), with the
//!   weights reordered once into oneDNN's blocked layout for the geometry of their first call
//!   (not on every call; `Packed`).
//! - **bf16**: weights and activations in bfloat16.
//!
//! Nothing here knows a net: the transformation is per layer kind, so every net gets it.

use super::build::{Act, Description, Layer, NormVars};
use super::fused;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::sync::OnceLock;
use tch::{Kind, Tensor};

/// Which rewrites the frozen form applies (each one builds on the previous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrites {
    /// Fold batch norm into convolutions (the base of every rewrite; off only in [`Rewrites::NONE`]).
    pub fold_bn: bool,
    /// Channels-last activations and weights.
    pub channels_last: bool,
    /// oneDNN fused convolution + ReLU and convolution + residual add.
    pub fused_ops: bool,
    /// Compute type: `Float` or `BFloat16` (weights and activations; outputs stay in it).
    pub kind: Kind,
}

impl Default for Rewrites {
    /// Every rewrite, in float32.
    fn default() -> Self {
        Rewrites { fold_bn: true, channels_last: true, fused_ops: true, kind: Kind::Float }
    }
}

impl Rewrites {
    /// No rewrite: the frozen form runs the reference layers on a copy of the weights.
    pub const NONE: Rewrites = Rewrites { fold_bn: false, channels_last: false, fused_ops: false, kind: Kind::Float };

    /// `none`, `fold`, `fold,channels-last`, `fold,channels-last,fused` (= `all`).
    pub fn parse(s: &str) -> Result<Rewrites> {
        let mut r = Rewrites { fused_ops: false, channels_last: false, ..Rewrites::default() };
        for part in s.split(',').map(str::trim) {
            match part {
                "none" => return Ok(Rewrites::NONE),
                "all" => return Ok(Rewrites::default()),
                "fold" => r.fold_bn = true,
                "channels-last" | "cl" => r.channels_last = true,
                "fused" => r.fused_ops = true,
                other => {
                    return Err(Error::invalid(format!("unknown rewrite '{other}' (none, fold, channels-last, fused, all)")));
                }
            }
        }
        Ok(r)
    }

    /// The same rewrites computing in `kind`.
    pub fn with_kind(self, kind: Kind) -> Rewrites {
        Rewrites { kind, ..self }
    }

    /// `t` in the compute type and layout (no copy when it already is).
    pub(crate) fn layout(&self, t: &Tensor) -> Result<Tensor> {
        let t = if t.is_floating_point() { t.f_to_kind(self.kind)? } else { t.shallow_clone() };
        if self.channels_last { fused::channels_last(&t) } else { Ok(t) }
    }

    /// `t` itself when nobody else can see it and it is in the compute type and layout;
    /// otherwise a copy that is. Safe to write into in place.
    pub(crate) fn owned(&self, t: Tensor) -> Result<Tensor> {
        let right_layout =
            t.kind() == self.kind && if self.channels_last && t.dim() == 4 { fused::is_channels_last(&t) } else { t.is_contiguous() };
        if right_layout && fused::is_exclusive(&t) {
            return Ok(t);
        }
        let y = self.layout(&t)?;
        if y.data_ptr() != t.data_ptr() {
            return Ok(y);
        }
        fused::deep_copy(&y)
    }
}

/// One layer, prepared.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// A convolution with its normalization and output scale folded in.
    Conv(PreparedConv),
    /// A batch norm on its own: `x * scale + shift`, both `[1, C, 1, 1]`.
    Affine {
        scale: Tensor,
        shift: Tensor,
    },
    /// A dense layer with its normalization folded in.
    Dense {
        w: Tensor,
        b: Tensor,
    },
    PRelu {
        alpha: Tensor,
    },
}

/// A convolution with its normalization and output scale folded in.
#[derive(Debug)]
pub(crate) struct PreparedConv {
    /// The weights (the frozen form's layout and kind).
    pub(crate) w: Tensor,
    pub(crate) b: Tensor,
    pub(crate) act: Act,
    /// `w` in oneDNN's blocked layout (on the CPU with fused operations and channels-last).
    packed: Option<Packed>,
}

impl PreparedConv {
    /// The weights for a fused convolution `g` on `x` (already padded): the packed ones when this
    /// frozen form packs weights and they were packed for this geometry and input size, else `w`.
    pub(crate) fn weights(&self, g: fused::Geometry, x: &Tensor) -> Result<&Tensor> {
        match &self.packed {
            Some(p) => p.weights(&self.w, g, x),
            None => Ok(&self.w),
        }
    }
}

/// A convolution's weights in oneDNN's blocked layout, made on the first call for that call's
/// geometry and input size: the layout oneDNN picks depends on both (packed once for a nominal
/// geometry, facenet's 1x7 and strided VALID convolutions were reordered back on every call: batch
/// 1 in bfloat16 took 198 ms instead of 13). Calls with another geometry or input size use the
/// plain weights, reordered by oneDNN on each call as without packing. Measured with packing:
/// resnet_v2_50 batch 1 f32 38 ms instead of 51, facenet 25 instead of 34; batch 32 unchanged.
#[derive(Debug, Default)]
struct Packed(OnceLock<(fused::Geometry, Vec<i64>, Tensor)>);

impl Packed {
    /// The weights for a convolution `g` on `x` (already padded): the packed ones when they were
    /// made for this geometry and input size, else `plain`.
    fn weights<'a>(&'a self, plain: &'a Tensor, g: fused::Geometry, x: &Tensor) -> Result<&'a Tensor> {
        let size = x.size();
        if self.0.get().is_none() {
            let [n, c, h, w] = size[..] else { return Ok(plain) };
            let packed = fused::prepack(plain, g, [n, c, h, w])?;
            // Concurrent first calls (streams) may both pack; the first one stored is kept.
            let _ = self.0.set((g, size.clone(), packed));
        }
        Ok(match self.0.get() {
            Some((pg, ps, t)) if *pg == g && *ps == size => t,
            _ => plain,
        })
    }
}

/// (weights, bias) of a layer with its normalization folded in and its output scaled.
fn fold(w: &Tensor, norm: &NormVars, vars: &[Tensor], scale: f64) -> Result<(Tensor, Tensor)> {
    let (w, b) = match norm {
        NormVars::Bias(b) => (w.shallow_clone(), vars[b.0].shallow_clone()),
        NormVars::Bn(bn) => {
            let (s, shift) = bn.tensors(vars).affine()?;
            let mut shape = vec![w.size()[0]];
            shape.extend(std::iter::repeat_n(1, w.dim() - 1));
            (w.f_mul(&s.f_view(shape.as_slice())?)?, shift)
        }
    };
    if scale == 1.0 { Ok((w, b)) } else { Ok((w.f_mul_scalar(scale)?, b.f_mul_scalar(scale)?)) }
}

/// Prepares every layer of `desc` from `vars` (in `desc.vars` order) with rewrites `r`.
/// The results share no memory with `vars`: a later training step cannot change them.
pub(crate) fn prepare(desc: &Description, vars: &[Tensor], r: Rewrites) -> Result<Vec<Prepared>> {
    let sources: HashSet<usize> = vars.iter().map(|v| v.data_ptr() as usize).collect();
    let fresh = |t: Tensor| -> Result<Tensor> {
        let t = t.f_detach()?;
        if sources.contains(&(t.data_ptr() as usize)) { fused::deep_copy(&t) } else { Ok(t) }
    };
    let kind = |t: Tensor| -> Result<Tensor> { fresh(t.f_to_kind(r.kind)?) };
    tch::no_grad(|| {
        desc.layers
            .iter()
            .map(|layer| {
                Ok(match layer {
                    Layer::Conv { weights, norm, act, scale } => {
                        let (w, b) = fold(&vars[weights.0], norm, vars, *scale)?;
                        let w = r.layout(&w.f_contiguous()?)?;
                        // Reordered once into oneDNN's blocked layout (on the first call, for its
                        // geometry) instead of on every call.
                        let packed = (r.fused_ops && r.channels_last && w.device() == tch::Device::Cpu).then(Packed::default);
                        Prepared::Conv(PreparedConv { w: fresh(w)?, b: kind(b)?, act: *act, packed })
                    }
                    Layer::BatchNorm(bn) => {
                        let (scale, shift) = bn.tensors(vars).affine()?;
                        let c = scale.size()[0];
                        Prepared::Affine { scale: kind(scale.f_view([1, c, 1, 1])?)?, shift: kind(shift.f_view([1, c, 1, 1])?)? }
                    }
                    Layer::Dense { weights, norm, .. } => {
                        let (w, b) = fold(&vars[weights.0], norm, vars, 1.0)?;
                        Prepared::Dense { w: kind(w)?, b: kind(b)? }
                    }
                    Layer::PRelu { alpha } => Prepared::PRelu { alpha: kind(vars[alpha.0].shallow_clone())? },
                })
            })
            .collect()
    })
}

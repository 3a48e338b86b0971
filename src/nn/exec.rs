//! The execution context a net's forward pass runs in.
//!
//! A net's `forward` is written once, against [`Cx`]: it asks for `conv`, `conv_add`, `bn`,
//! `dense`, `prelu`, `dropout` and `record(end_point)`. The context decides how:
//!
//! - **reference**: the trainable variables as TF defines the layers (convolution, batch norm,
//!   ReLU as separate ops; `train` reaches batch norm and dropout only), autograd-friendly;
//! - **frozen**: the prepared layers of a [`crate::Frozen`] (batch norm folded into the
//!   convolutions, channels-last, oneDNN fused convolution + ReLU and convolution + residual add
//!   written in place into tensors nobody else can see).
//!
//! Both use the same TF padding rules ([`super::tf`]).

use super::build::{Act, BatchNorm, Conv, Dense, Description, Layer, NormVars, PRelu};
use super::endpoints::EndPoints;
use super::freeze::{Prepared, PreparedConv, Rewrites};
use super::fused;
use super::tf::{self, At};
use crate::error::{Error, Result};
use std::cell::Cell;
use tch::Tensor;

/// How the layers are run.
pub(crate) enum Mode<'a> {
    /// The variables as they are (`vars` in the order of [`Description::vars`]).
    Reference { vars: &'a [Tensor], train: bool, keep_prob: Option<f64> },
    /// Prepared layers (in the order of the layer table).
    Frozen { layers: &'a [Prepared], rewrites: Rewrites, nan_safe: bool },
}

/// A forward pass in progress: the layers' parameters, how to run them, and the end points.
pub struct Cx<'a> {
    desc: &'a Description,
    mode: Mode<'a>,
    ep: &'a mut EndPoints,
}

thread_local! {
    static MACS: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` and returns its result with the convolution multiply-adds the frozen path did on
/// this thread meanwhile (for GFLOPS figures: 2 FLOPs per multiply-add).
pub fn count_macs<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = MACS.with(Cell::get);
    let out = f();
    (out, MACS.with(Cell::get) - before)
}

fn count(w: &Tensor, y: &Tensor) {
    let s = w.size();
    let per_output: i64 = s[1..].iter().product();
    MACS.with(|m| m.set(m.get() + (y.numel() as u64) * per_output as u64));
}

fn relu_if(act: Act, mut y: Tensor) -> Result<Tensor> {
    Ok(match act {
        Act::Relu => y.f_relu_()?,
        Act::None => y,
    })
}

impl<'a> Cx<'a> {
    pub(crate) fn new(desc: &'a Description, mode: Mode<'a>, ep: &'a mut EndPoints) -> Cx<'a> {
        Cx { desc, mode, ep }
    }

    fn layer(&self, id: super::build::LayerId) -> &'a Layer {
        &self.desc.layers[id.0]
    }

    fn var(vars: &'a [Tensor], id: super::build::VarId) -> &'a Tensor {
        &vars[id.0]
    }

    /// `y` normalized as `norm` says (biases already added by the op when `Bias`).
    fn normalize(vars: &'a [Tensor], norm: &NormVars, y: Tensor, train: bool) -> Result<Tensor> {
        match norm {
            NormVars::Bias(_) => Ok(y),
            NormVars::Bn(b) => b.tensors(vars).forward(&y, train),
        }
    }

    fn bias(vars: &'a [Tensor], norm: &NormVars) -> Option<&'a Tensor> {
        match norm {
            NormVars::Bias(b) => Some(Self::var(vars, *b)),
            NormVars::Bn(_) => None,
        }
    }

    fn prepared(&self, id: super::build::LayerId, layers: &'a [Prepared]) -> &'a Prepared {
        &layers[id.0]
    }

    /// The net's input in the form the layers want (the frozen path's type and memory format).
    pub fn input(&self, x: &Tensor) -> Result<Tensor> {
        match &self.mode {
            Mode::Reference { .. } => Ok(x.shallow_clone()),
            Mode::Frozen { rewrites, .. } => rewrites.layout(x),
        }
    }

    /// Whether end point `key` is being collected (nets skip work for end points nobody wants).
    pub fn wants(&self, key: &str) -> bool {
        self.ep.wants(key)
    }

    /// Records `t` as end point `key` (a handle, not a copy: later in-place work copies first).
    pub fn record(&mut self, key: impl Into<String>, t: &Tensor) {
        self.ep.add(key, t);
    }

    /// `act(scale * norm(conv(x)))`, the layer as built, `at` a stride, rate and padding.
    pub fn conv(&mut self, c: &Conv, x: &Tensor, at: At) -> Result<Tensor> {
        let Layer::Conv { weights, norm, act, scale } = self.layer(c.id) else {
            return Err(internal("conv"));
        };
        match &self.mode {
            Mode::Reference { vars, train, .. } => {
                let y = tf::conv2d(x, Self::var(vars, *weights), Self::bias(vars, norm), at)?;
                let mut y = Self::normalize(vars, norm, y, *train)?;
                if *scale != 1.0 {
                    y = y.f_mul_scalar(*scale)?;
                }
                relu_if(*act, y)
            }
            Mode::Frozen { layers, rewrites, nan_safe } => {
                let Prepared::Conv(conv) = self.prepared(c.id, layers) else { return Err(internal("conv")) };
                frozen_conv(x, conv, at, *rewrites, *nan_safe)
            }
        }
    }

    /// `act_after(acc + conv(x))`: a residual addition. `conv_key` names the convolution's own
    /// output as an end point. The frozen path adds into `acc` in place when nobody else holds
    /// it (and copies it first otherwise), with the addition fused into the convolution.
    pub fn conv_add(&mut self, c: &Conv, acc: Tensor, x: &Tensor, at: At, act_after: Act, conv_key: Option<&str>) -> Result<Tensor> {
        let (fused_add, rewrites, nan_safe) = match &self.mode {
            Mode::Reference { .. } => {
                let y = self.conv(c, x, at)?;
                if let Some(k) = conv_key {
                    self.record(k, &y);
                }
                return relu_if(act_after, acc.f_add(&y)?);
            }
            Mode::Frozen { rewrites, nan_safe, .. } => {
                let want_y = conv_key.is_some_and(|k| self.wants(k));
                (rewrites.fused_ops && !want_y && c.spec.act == Act::None, *rewrites, *nan_safe)
            }
        };
        let mut acc = rewrites.owned(acc)?;
        if fused_add {
            let Mode::Frozen { layers, .. } = &self.mode else { return Err(internal("conv_add")) };
            let Prepared::Conv(conv) = self.prepared(c.id, layers) else { return Err(internal("conv_add")) };
            let k = conv.w.size();
            let g = tf::conv_geometry(tf::hw(x)?, (k[2], k[3]), at)?;
            if g.explicit.is_none() {
                let relu = act_after == Act::Relu && !nan_safe;
                let g = g.symmetric();
                let w = conv.weights(g, x)?;
                fused::conv_add_(&acc, x, w, Some(&conv.b), g, relu)?;
                count(w, &acc);
                return if act_after == Act::Relu && !relu { Ok(acc.f_relu_()?) } else { Ok(acc) };
            }
        }
        let y = self.conv(c, x, at)?;
        if let Some(k) = conv_key {
            self.record(k, &y);
        }
        let _ = acc.f_add_(&y)?;
        relu_if(act_after, acc)
    }

    /// `act(batch_norm(x))` for a batch norm on its own.
    pub fn bn(&mut self, b: &BatchNorm, x: &Tensor, act: Act) -> Result<Tensor> {
        match &self.mode {
            Mode::Reference { vars, train, .. } => {
                let Layer::BatchNorm(bv) = self.layer(b.id) else { return Err(internal("bn")) };
                relu_if(act, bv.tensors(vars).forward(x, *train)?)
            }
            Mode::Frozen { layers, .. } => {
                let Prepared::Affine { scale, shift } = self.prepared(b.id, layers) else { return Err(internal("bn")) };
                relu_if(act, shift.f_addcmul(x, scale)?)
            }
        }
    }

    /// `act(norm(x · weightsᵀ))` on a `[batch, features]` tensor.
    pub fn dense(&mut self, d: &Dense, x: &Tensor) -> Result<Tensor> {
        let Layer::Dense { weights, norm, act } = self.layer(d.id) else { return Err(internal("dense")) };
        match &self.mode {
            Mode::Reference { vars, train, .. } => {
                let y = x.f_linear(Self::var(vars, *weights), Self::bias(vars, norm))?;
                relu_if(*act, Self::normalize(vars, norm, y, *train)?)
            }
            Mode::Frozen { layers, .. } => {
                let Prepared::Dense { w, b } = self.prepared(d.id, layers) else { return Err(internal("dense")) };
                relu_if(*act, x.f_linear(w, Some(b))?)
            }
        }
    }

    /// `max(0, x) + alpha * min(0, x)` with `alpha` per channel (dim 1). The frozen path writes
    /// into `x` when nobody else holds it.
    pub fn prelu(&mut self, p: &PRelu, x: Tensor) -> Result<Tensor> {
        match &self.mode {
            Mode::Reference { vars, .. } => {
                let Layer::PRelu { alpha } = self.layer(p.id) else { return Err(internal("prelu")) };
                Ok(x.f_prelu(Self::var(vars, *alpha))?)
            }
            Mode::Frozen { layers, rewrites, .. } => {
                let Prepared::PRelu { alpha } = self.prepared(p.id, layers) else { return Err(internal("prelu")) };
                if !fused::prelu_applies(&x) {
                    return Ok(x.f_prelu(alpha)?);
                }
                let x = rewrites.owned(x)?;
                fused::prelu_(&x, alpha)?;
                Ok(x)
            }
        }
    }

    /// `slim.max_pool2d` with TF's padding semantics ([`tf::max_pool`]). NaN propagates (as in
    /// facenet's TF graph, where one NaN pixel makes the whole embedding NaN).
    pub fn max_pool(&mut self, x: &Tensor, k: i64, stride: i64, padding: tf::Padding) -> Result<Tensor> {
        tf::max_pool(x, k, stride, padding)
    }

    /// slim's `dropout(x, keep_prob, is_training)`: active only when training; `keep_prob` is
    /// the net's default unless the run options override it.
    pub fn dropout(&mut self, x: Tensor, keep_prob: f64) -> Result<Tensor> {
        match &self.mode {
            Mode::Reference { train: true, keep_prob: over, .. } => Ok(x.f_dropout(1.0 - over.unwrap_or(keep_prob), true)?),
            _ => Ok(x),
        }
    }
}

/// A prepared convolution on `x`, ReLU included when the layer has it.
fn frozen_conv(x: &Tensor, conv: &PreparedConv, at: At, r: Rewrites, nan_safe: bool) -> Result<Tensor> {
    let PreparedConv { w, b, act, .. } = conv;
    let k = w.size();
    let g = tf::conv_geometry(tf::hw(x)?, (k[2], k[3]), at)?;
    let padded;
    let x = match g.explicit {
        Some(p) => {
            padded = r.layout(&x.f_constant_pad_nd(p)?)?;
            &padded
        }
        None => x,
    };
    let y = if r.fused_ops {
        // oneDNN's fused ReLU turns NaN into 0; libtorch's (and TF's) keeps it.
        let relu = *act == Act::Relu && !nan_safe;
        let g = g.symmetric();
        let y = fused::conv(x, conv.weights(g, x)?, Some(b), g, relu)?;
        if relu { y } else { relu_if(*act, y)? }
    } else {
        relu_if(*act, x.f_conv2d(w, Some(b), g.stride, g.pad, g.dilation, 1)?)?
    };
    count(w, &y);
    Ok(y)
}

fn internal(op: &str) -> Error {
    Error::invalid(format!("internal error: {op} called with a layer of another kind"))
}

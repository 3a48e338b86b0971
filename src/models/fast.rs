//! Inference rewrites: the same nets, evaluated faster when `is_training` is false.
//!
//! - **BN folding**: a convolution followed by batch norm (slim's `normalizer_fn`) becomes one
//!   convolution with `w * gamma / sqrt(var + eps)` and bias `beta - mean * gamma / sqrt(var + eps)`.
//!   (ResNet v2's `preact` and `postnorm` follow an addition, not a convolution, and stay a
//!   per-channel affine map.)
//! - **channels-last** activations and weights (oneDNN's native layout; no reorders per layer).
//! - **fused oneDNN convolutions** ([`super::fused`]): ReLU applied inside the convolution, and the
//!   residual addition done by the convolution into the shortcut tensor, in place.
//! - **in-place** ReLU and additions everywhere else; `preact`/`postnorm` as one `addcmul` + ReLU.
//!
//! Every rewrite is checked against the reference forward pass by the tests (max relative
//! difference far below 1e-4), and `slimzoo bench --rewrites` measures what each buys.

use super::endpoints::EndPoints;
use super::fused::{self, Geometry};
use super::inception_resnet_v1::{Branch, InceptionResnetV1, ResBlock};
use super::layers::{BatchNorm, Padding, SlimConv, SlimDense, hw, max_pool_tf, tf_padding};
use super::resnet_v2::{Options, ResNetV2, subsample};
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// Which rewrites to apply (each one builds on the previous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrites {
    /// Fold batch norm into convolutions (the base of the inference path).
    pub fold_bn: bool,
    /// Channels-last activations and weights.
    pub channels_last: bool,
    /// oneDNN fused convolution + ReLU and convolution + residual add.
    pub fused_ops: bool,
    /// Compute type: `Float` or `BFloat16` (weights and activations; outputs stay in it).
    pub kind: Kind,
}

impl Default for Rewrites {
    fn default() -> Self {
        Rewrites { fold_bn: true, channels_last: true, fused_ops: true, kind: Kind::Float }
    }
}

impl Rewrites {
    /// The reference forward pass (no rewrite).
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
                    return Err(Error::invalid(format!(
                        "unknown rewrite '{other}' (none, fold, channels-last, fused, all)"
                    )));
                }
            }
        }
        Ok(r)
    }

    /// `t` in the compute type and layout (no copy when it already is).
    fn layout(&self, t: &Tensor) -> Result<Tensor> {
        let t = t.f_to_kind(self.kind)?;
        if self.channels_last { fused::channels_last(&t) } else { Ok(t) }
    }

    /// A copy of `t` in the compute type and layout that nothing else holds.
    fn fresh(&self, t: &Tensor) -> Result<Tensor> {
        let y = self.layout(t)?;
        if y.data_ptr() == t.data_ptr() { clone_of(&y) } else { Ok(y) }
    }
}

/// A convolution with its batch norm folded in (or its bias), an optional ReLU, and an optional
/// scale (facenet's residual `scale * up`).
#[derive(Debug)]
pub struct FastConv {
    w: Tensor,
    b: Tensor,
    relu: bool,
    r: Rewrites,
}

impl FastConv {
    fn new(conv: &SlimConv, scale: f64, r: Rewrites) -> Result<Self> {
        let (w, b) = fold(&conv.weight, conv.bias.as_ref(), conv.bn.as_ref())?;
        Ok(FastConv { w: r.layout(&(w * scale))?, b: (b * scale).f_to_kind(r.kind)?, relu: conv.relu, r })
    }

    /// The convolution on `x` with TF's padding semantics; ReLU included when the layer has it.
    fn run(&self, x: &Tensor, stride: i64, rate: i64, padding: Padding) -> Result<Tensor> {
        let (x, g) = self.geometry(x, stride, rate, padding)?;
        let y = if self.r.fused_ops {
            fused::conv(&x, &self.w, Some(&self.b), g, self.relu)?
        } else {
            let mut y = x.f_conv2d(&self.w, Some(&self.b), g.stride, g.pad, g.dilation, 1)?;
            if self.relu { y.f_relu_()? } else { y }
        };
        self.count(&y);
        Ok(y)
    }

    /// Adds this convolution's multiply-adds for output `y` to the counter of [`count_macs`].
    fn count(&self, y: &Tensor) {
        let s = self.w.size();
        let per_output = s[1] * s[2] * s[3];
        MACS.with(|m| m.set(m.get() + (y.numel() as u64) * per_output as u64));
    }

    /// `acc += conv(x)` in place (then ReLU when `relu_after`).
    fn run_add_(&self, acc: &mut Tensor, x: &Tensor, relu_after: bool) -> Result<()> {
        let (x, g) = self.geometry(x, 1, 1, Padding::Same)?;
        self.count(acc);
        if self.r.fused_ops {
            return fused::conv_add_(acc, &x, &self.w, Some(&self.b), g, relu_after);
        }
        let y = x.f_conv2d(&self.w, Some(&self.b), g.stride, g.pad, g.dilation, 1)?;
        let _ = acc.f_add_(&y)?;
        if relu_after {
            let _ = acc.f_relu_()?;
        }
        Ok(())
    }

    /// Symmetric padding goes into the convolution; TF's asymmetric SAME padding is applied first.
    fn geometry(&self, x: &Tensor, stride: i64, rate: i64, padding: Padding) -> Result<(Tensor, Geometry)> {
        let (h, w) = hw(x)?;
        let s = self.w.size();
        let (kh, kw) = (s[2], s[3]);
        let (pt, pb) = tf_padding(padding, h, kh + (kh - 1) * (rate - 1), stride);
        let (pl, pr) = tf_padding(padding, w, kw + (kw - 1) * (rate - 1), stride);
        let g = |pad| Geometry { pad, stride: [stride, stride], dilation: [rate, rate] };
        if pt == pb && pl == pr {
            Ok((x.shallow_clone(), g([pt, pl])))
        } else {
            let padded = self.r.layout(&x.f_constant_pad_nd([pl, pr, pt, pb])?)?;
            Ok((padded, g([0, 0])))
        }
    }
}

thread_local! {
    static MACS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Runs `f` and returns its result with the convolution multiply-adds the inference path did on
/// this thread meanwhile (for GFLOPS figures: 2 FLOPs per multiply-add).
pub fn count_macs<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = MACS.with(|m| m.get());
    let out = f();
    (out, MACS.with(|m| m.get()) - before)
}

/// (weights, bias) of a convolution or dense layer with its batch norm folded in.
fn fold(w: &Tensor, bias: Option<&Tensor>, bn: Option<&BatchNorm>) -> Result<(Tensor, Tensor)> {
    let out = w.size()[0];
    let mut shape = vec![out];
    shape.extend(std::iter::repeat_n(1, w.dim() - 1));
    match (bn, bias) {
        (Some(bn), _) => {
            let (scale, shift) = bn.folded()?;
            Ok((w.f_mul(&scale.f_view(shape.as_slice())?)?, shift))
        }
        (None, Some(b)) => Ok((w.shallow_clone(), b.shallow_clone())),
        (None, None) => Ok((w.shallow_clone(), Tensor::f_zeros([out], (w.kind(), w.device()))?)),
    }
}

/// A batch norm + ReLU as `relu(x * scale + shift)` in one `addcmul` and an in-place ReLU.
#[derive(Debug)]
struct FastBnRelu {
    scale: Tensor,
    shift: Tensor,
}

impl FastBnRelu {
    fn new(bn: &BatchNorm, r: Rewrites) -> Result<Self> {
        let (s, t) = bn.folded()?;
        let c = s.size()[0];
        Ok(FastBnRelu { scale: s.f_view([1, c, 1, 1])?.f_to_kind(r.kind)?, shift: t.f_view([1, c, 1, 1])?.f_to_kind(r.kind)? })
    }

    fn run(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.shift.f_addcmul(x, &self.scale)?.f_relu_()?)
    }
}

/// A copy of `t` in the same memory format.
fn clone_of(t: &Tensor) -> Result<Tensor> {
    let mut y = t.f_empty_like()?;
    y.f_copy_(t)?;
    Ok(y)
}

/// A copy when `key` is wanted and the tensor will be modified in place later.
fn record(ep: &mut EndPoints, key: &str, t: &Tensor) -> Result<()> {
    if ep.wants(key) {
        ep.add(key, &clone_of(t)?);
    }
    Ok(())
}

#[derive(Debug)]
struct FastUnit {
    preact: FastBnRelu,
    shortcut: Option<FastConv>,
    conv1: FastConv,
    conv2: FastConv,
    conv3: FastConv,
}

/// ResNet v2 with the rewrites applied.
#[derive(Debug)]
pub struct FastResNetV2 {
    r: Rewrites,
    conv1: Option<FastConv>,
    /// (block scope, units)
    blocks: Vec<(String, Vec<FastUnit>)>,
    postnorm: FastBnRelu,
    logits: Option<FastConv>,
}

impl FastResNetV2 {
    pub fn new(net: &ResNetV2, r: Rewrites) -> Result<Self> {
        let blocks = net
            .blocks
            .iter()
            .map(|b| {
                let units = b
                    .units
                    .iter()
                    .map(|u| {
                        Ok(FastUnit {
                            preact: FastBnRelu::new(&u.preact, r)?,
                            shortcut: u.shortcut.as_ref().map(|c| FastConv::new(c, 1.0, r)).transpose()?,
                            conv1: FastConv::new(&u.conv1, 1.0, r)?,
                            conv2: FastConv::new(&u.conv2, 1.0, r)?,
                            conv3: FastConv::new(&u.conv3, 1.0, r)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((b.scope.clone(), units))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FastResNetV2 {
            r,
            conv1: net.conv1.as_ref().map(|c| FastConv::new(c, 1.0, r)).transpose()?,
            blocks,
            postnorm: FastBnRelu::new(&net.postnorm, r)?,
            logits: net.logits.as_ref().map(|c| FastConv::new(c, 1.0, r)).transpose()?,
        })
    }

    /// The inference forward pass of [`ResNetV2::forward`] (same output and end points).
    pub fn forward(&self, net: &ResNetV2, x: &Tensor, opts: &Options, ep: &mut EndPoints) -> Result<Tensor> {
        net.input_check(x)?;
        let schedule = net.unit_schedule(opts.output_stride)?;
        let sc = net.cfg.scope.as_str();
        let mut h = self.r.layout(x)?;
        let mut owned = h.data_ptr() != x.data_ptr();
        if let Some(conv1) = &self.conv1 {
            h = conv1.run(&h, 2, 1, Padding::Explicit { beg: 3, end: 3 })?;
            ep.add(format!("{sc}/conv1"), &h);
            h = max_pool_tf(&h, 3, 2, Padding::Same)?;
            owned = true;
        }
        for ((scope, units), sched) in self.blocks.iter().zip(&schedule) {
            let n = units.len();
            for (i, (u, &(stride, rate))) in units.iter().zip(sched).enumerate() {
                let key = format!("{sc}/{scope}/unit_{}/bottleneck_v2", i + 1);
                let preact = u.preact.run(&h)?;
                let mut acc = match &u.shortcut {
                    Some(c) => {
                        let s = c.run(&preact, stride, 1, Padding::Same)?;
                        record(ep, &format!("{key}/shortcut"), &s)?;
                        s
                    }
                    // The unit's input becomes its output (in place) unless someone else holds it.
                    None if stride == 1 && owned => h.shallow_clone(),
                    None => self.r.fresh(&subsample(&h, stride)?)?,
                };
                let r1 = u.conv1.run(&preact, 1, 1, Padding::Same)?;
                ep.add(format!("{key}/conv1"), &r1);
                let k = 3;
                let k_eff = k + (k - 1) * (rate - 1);
                let pad = if stride == 1 { Padding::Same } else { Padding::Explicit { beg: (k_eff - 1) / 2, end: k_eff - 1 - (k_eff - 1) / 2 } };
                let r2 = u.conv2.run(&r1, stride, rate, pad)?;
                ep.add(format!("{key}/conv2"), &r2);
                let conv3_key = format!("{key}/conv3");
                if ep.wants(&conv3_key) {
                    let r3 = u.conv3.run(&r2, 1, 1, Padding::Same)?;
                    ep.add(conv3_key, &r3);
                    let _ = acc.f_add_(&r3)?;
                } else {
                    u.conv3.run_add_(&mut acc, &r2, false)?;
                }
                h = acc;
                owned = true;
                record(ep, &key, &h)?;
                if i + 1 == n {
                    record(ep, &format!("{sc}/{scope}"), &h)?;
                }
            }
        }
        let net_out = self.postnorm.run(&h)?;
        let logits = self.logits.as_ref().map(|l| |x: &Tensor| l.run(x, 1, 1, Padding::Same));
        net.head(net_out, opts, ep, logits)
    }
}

/// A residual block with its up-projection scaled and fused into the residual addition.
#[derive(Debug)]
struct FastBlock {
    branches: Vec<Vec<FastConv>>,
    up: FastConv,
    relu: bool,
}

impl FastBlock {
    fn new(b: &ResBlock, r: Rewrites) -> Result<Self> {
        let branches = b.branches.iter().map(|br| br.iter().map(|c| FastConv::new(c, 1.0, r)).collect()).collect::<Result<_>>()?;
        Ok(FastBlock { branches, up: FastConv::new(&b.up, b.scale, r)?, relu: b.relu })
    }

    /// `x = relu?(x + scale * up(concat(branches(x))))`, in place.
    fn run_(&self, x: &mut Tensor) -> Result<()> {
        let outs = self
            .branches
            .iter()
            .map(|br| br.iter().try_fold(x.shallow_clone(), |y, c| c.run(&y, 1, 1, Padding::Same)))
            .collect::<Result<Vec<_>>>()?;
        let mixed = Tensor::f_cat(&outs, 1)?;
        self.up.run_add_(x, &mixed, self.relu)
    }
}

/// facenet's Inception-ResNet-v1 with the rewrites applied.
#[derive(Debug)]
pub struct FastInceptionResnetV1 {
    r: Rewrites,
    stem: Vec<FastConv>,
    repeats: [Vec<FastBlock>; 3],
    reductions: [Vec<Option<Vec<(FastConv, i64, Padding)>>>; 2],
    block8: FastBlock,
    bottleneck: (Tensor, Tensor),
}

impl FastInceptionResnetV1 {
    pub fn new(net: &InceptionResnetV1, r: Rewrites) -> Result<Self> {
        let blocks = |bs: &[ResBlock]| bs.iter().map(|b| FastBlock::new(b, r)).collect::<Result<Vec<_>>>();
        let reduction = |red: &super::inception_resnet_v1::Reduction| {
            red.branches
                .iter()
                .map(|b| match b {
                    Branch::MaxPool => Ok(None),
                    Branch::Convs(cs) => {
                        cs.iter().map(|(c, s, p)| Ok((FastConv::new(c, 1.0, r)?, *s, *p))).collect::<Result<Vec<_>>>().map(Some)
                    }
                })
                .collect::<Result<Vec<_>>>()
        };
        let SlimDense { weight, bias, bn } = &net.bottleneck;
        let (w, b) = fold(weight, bias.as_ref(), bn.as_ref())?;
        Ok(FastInceptionResnetV1 {
            r,
            stem: net.stem.iter().map(|(_, c, _, _)| FastConv::new(c, 1.0, r)).collect::<Result<_>>()?,
            repeats: [blocks(&net.repeat)?, blocks(&net.repeat_1)?, blocks(&net.repeat_2)?],
            reductions: [reduction(&net.mixed_6a)?, reduction(&net.mixed_7a)?],
            block8: FastBlock::new(&net.block8, r)?,
            bottleneck: (w.f_to_kind(r.kind)?, b.f_to_kind(r.kind)?),
        })
    }

    /// The inference forward pass of [`InceptionResnetV1::forward`].
    pub fn forward(&self, net: &InceptionResnetV1, x: &Tensor, ep: &mut EndPoints) -> Result<Tensor> {
        net.input_check(x)?;
        let mut h = self.r.layout(x)?;
        for (i, ((key, _, stride, pad), c)) in net.stem.iter().zip(&self.stem).enumerate() {
            h = c.run(&h, *stride, 1, *pad)?;
            // Conv2d_4b_3x3's output is the first residual block's accumulator.
            if i + 1 == net.stem.len() { record(ep, key, &h)? } else { ep.add(*key, &h) }
            if i == 2 {
                h = max_pool_tf(&h, 3, 2, Padding::Valid)?;
                ep.add("MaxPool_3a_3x3", &h);
            }
        }
        let keys = [("Mixed_5a", Some("Mixed_6a")), ("Mixed_6b", Some("Mixed_7a")), ("Mixed_8a", None)];
        for (j, ((after_repeat, after_reduction), blocks)) in keys.iter().zip(&self.repeats).enumerate() {
            for b in blocks {
                b.run_(&mut h)?;
            }
            if j == 2 {
                record(ep, after_repeat, &h)?;
                break;
            }
            ep.add(*after_repeat, &h);
            let outs = self.reductions[j]
                .iter()
                .map(|b| match b {
                    None => max_pool_tf(&h, 3, 2, Padding::Valid),
                    Some(cs) => cs.iter().try_fold(h.shallow_clone(), |y, (c, s, p)| c.run(&y, *s, 1, *p)),
                })
                .collect::<Result<Vec<_>>>()?;
            h = Tensor::f_cat(&outs, 1)?;
            if let Some(k) = after_reduction {
                record(ep, k, &h)?;
            }
        }
        self.block8.run_(&mut h)?;
        ep.add("Mixed_8b", &h);
        ep.add("PrePool", &h);
        let pooled = h.f_mean_dim(&[2i64, 3][..], false, None)?;
        ep.add("PreLogitsFlatten", &pooled);
        Ok(pooled.f_linear(&self.bottleneck.0, Some(&self.bottleneck.1))?)
    }
}

/// Keeps glibc's malloc from returning large blocks to the kernel after each use.
///
/// libtorch allocates every activation with `posix_memalign`; blocks above 32 MB are `mmap`ed and
/// `munmap`ed on free by default, so every forward pass page-faults its activations in again
/// (measured: ~25% of a ResNet-152 batch). With `M_MMAP_MAX = 0` and a high trim threshold the
/// freed memory stays in the heap and is reused, as TF's own allocator does. Process-wide; call
/// once at start-up. Set `SLIMZOO_NO_MALLOC_TUNING` to skip it. Returns whether it was applied.
pub fn tune_allocator() -> bool {
    if std::env::var_os("SLIMZOO_NO_MALLOC_TUNING").is_some() {
        return false;
    }
    // SAFETY: mallopt only changes allocator parameters; it is called before heavy allocation.
    unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1 }
}

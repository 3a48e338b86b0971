//! slim's pre-activation ResNet v2 (`research/slim/nets/resnet_v2.py`, `resnet_utils.py`, newest
//! version), with TF's variable names, padding, atrous `output_stride` and `end_points`.
//!
//! He et al., "Identity Mappings in Deep Residual Networks", <https://arxiv.org/abs/1603.05027>.
//!
//! Variables live under one tch path component per TF scope, so `resnet_v2_50/block1/unit_1/
//! bottleneck_v2/conv1/BatchNorm/gamma` is exactly that path. End points are NCHW.

use super::endpoints::EndPoints;
use super::layers::{BatchNorm, BnConfig, Norm, Padding, SlimConv, hw, max_pool_tf};
use crate::error::{Error, Result};
use tch::{Tensor, nn};

/// One residual unit's arguments (`bottleneck(depth, depth_bottleneck, stride)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitArgs {
    pub depth: i64,
    pub depth_bottleneck: i64,
    pub stride: i64,
}

/// `resnet_utils.Block(scope, unit_fn, args)`; the unit function is always `bottleneck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub scope: String,
    pub units: Vec<UnitArgs>,
}

/// `resnet_v2_block(scope, base_depth, num_units, stride)`: `num_units - 1` units of stride 1 and
/// a last unit carrying `stride`, each of depth `4 * base_depth`.
pub fn resnet_v2_block(scope: &str, base_depth: i64, num_units: usize, stride: i64) -> Block {
    let unit = |stride| UnitArgs { depth: 4 * base_depth, depth_bottleneck: base_depth, stride };
    let mut units = vec![unit(1); num_units.saturating_sub(1)];
    if num_units > 0 {
        units.push(unit(stride));
    }
    Block { scope: scope.to_string(), units }
}

/// The four named depths of slim's model zoo.
pub fn standard_blocks(depth: u32) -> Option<Vec<Block>> {
    let units = match depth {
        50 => [3, 4, 6, 3],
        101 => [3, 4, 23, 3],
        152 => [3, 8, 36, 3],
        200 => [3, 24, 36, 3],
        _ => return None,
    };
    Some(vec![
        resnet_v2_block("block1", 64, units[0], 2),
        resnet_v2_block("block2", 128, units[1], 2),
        resnet_v2_block("block3", 256, units[2], 2),
        resnet_v2_block("block4", 512, units[3], 1),
    ])
}

/// What decides a ResNet v2's variables. Options that do not (`global_pool`, `output_stride`,
/// `spatial_squeeze`, `is_training`) are given to [`ResNetV2::forward`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetV2Config {
    pub blocks: Vec<Block>,
    /// `None` (or 0): no `logits` layer; the net returns features.
    pub num_classes: Option<i64>,
    pub include_root_block: bool,
    /// Channels of the input (3 for images; the depth of a given feature map when
    /// `include_root_block` is false).
    pub in_channels: i64,
    /// The variable scope, e.g. `resnet_v2_50` (may contain `/` for outer scopes).
    pub scope: String,
    /// `resnet_arg_scope`'s batch norm: decay 0.997, epsilon 1e-5, scale true.
    pub bn: BnConfig,
    /// `resnet_arg_scope`'s weight decay (used by [`ResNetV2::regularization_loss`]).
    pub weight_decay: f64,
}

impl ResNetV2Config {
    /// `resnet_v2_50/101/152/200`.
    pub fn standard(depth: u32, num_classes: Option<i64>) -> Option<Self> {
        Some(Self::custom(format!("resnet_v2_{depth}"), standard_blocks(depth)?, num_classes))
    }

    pub fn custom(scope: impl Into<String>, blocks: Vec<Block>, num_classes: Option<i64>) -> Self {
        ResNetV2Config {
            blocks,
            num_classes: num_classes.filter(|&n| n > 0),
            include_root_block: true,
            in_channels: 3,
            scope: scope.into(),
            bn: BnConfig { decay: 0.997, epsilon: 1e-5, scale: true },
            weight_decay: 1e-4,
        }
    }
}

/// Call-time options of `resnet_v2(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub global_pool: bool,
    /// `None`: nominal stride (32 for the zoo nets). Else a multiple of 4 that the strides reach.
    pub output_stride: Option<i64>,
    pub spatial_squeeze: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { global_pool: true, output_stride: None, spatial_squeeze: true }
    }
}

/// `bottleneck` (scope `bottleneck_v2`).
#[derive(Debug)]
pub struct Bottleneck {
    pub args: UnitArgs,
    pub preact: BatchNorm,
    /// Projection shortcut, present when the unit changes the depth.
    pub shortcut: Option<SlimConv>,
    pub conv1: SlimConv,
    pub conv2: SlimConv,
    pub conv3: SlimConv,
}

impl Bottleneck {
    fn new(p: &nn::Path, depth_in: i64, args: UnitArgs, bn: BnConfig) -> Self {
        let UnitArgs { depth, depth_bottleneck: db, .. } = args;
        let bn_relu = Norm::Bn(bn);
        Bottleneck {
            args,
            preact: BatchNorm::new(&(p / "preact"), depth_in, bn),
            shortcut: (depth != depth_in).then(|| SlimConv::new(&(p / "shortcut"), depth_in, depth, (1, 1), Norm::Bias, false)),
            conv1: SlimConv::new(&(p / "conv1"), depth_in, db, (1, 1), bn_relu, true),
            conv2: SlimConv::new(&(p / "conv2"), db, db, (3, 3), bn_relu, true),
            conv3: SlimConv::new(&(p / "conv3"), db, depth, (1, 1), Norm::Bias, false),
        }
    }

    /// `key` is the unit's end-point prefix, e.g. `resnet_v2_50/block1/unit_1/bottleneck_v2`.
    fn forward(&self, x: &Tensor, stride: i64, rate: i64, train: bool, key: &str, ep: &mut EndPoints) -> Result<Tensor> {
        let preact = self.preact.forward(x, train)?.f_relu_()?;
        let shortcut = match &self.shortcut {
            Some(conv) => {
                let s = conv.forward(&preact, stride, 1, Padding::Same, train)?;
                ep.add(format!("{key}/shortcut"), &s);
                s
            }
            None => subsample(x, stride)?,
        };
        let r = self.conv1.forward(&preact, 1, 1, Padding::Same, train)?;
        ep.add(format!("{key}/conv1"), &r);
        let r = conv2d_same(&self.conv2, &r, stride, rate, train)?;
        ep.add(format!("{key}/conv2"), &r);
        let r = self.conv3.forward(&r, 1, 1, Padding::Same, train)?;
        ep.add(format!("{key}/conv3"), &r);
        let out = shortcut.f_add(&r)?;
        ep.add(key, &out);
        Ok(out)
    }
}

/// `resnet_utils.subsample`: a 1x1 max pool with stride `factor`, i.e. every `factor`-th pixel.
///
/// Without gradients this is a strided view. With gradients it is the 1x1 max pool itself (the
/// same values): libtorch's backward of a strided slice scatters into a fresh NCHW tensor, and
/// that gradient then flows down the block's identity shortcuts, so every convolution backward
/// of the block would first copy its gradient back to channels-last (resnet_v2_152's training
/// step was ~10% slower); the max pool's backward keeps the input's memory format.
pub fn subsample(x: &Tensor, factor: i64) -> Result<Tensor> {
    if factor == 1 {
        return Ok(x.shallow_clone());
    }
    if x.requires_grad() {
        return Ok(x.f_max_pool2d([1, 1], [factor, factor], [0, 0], [1, 1], false)?);
    }
    Ok(x.f_slice(2, 0, None, factor)?.f_slice(3, 0, None, factor)?)
}

/// `resnet_utils.conv2d_same`: stride 1 is a SAME convolution with `rate`; a larger stride pads
/// `k_eff - 1` explicitly (`pad_beg = (k_eff - 1) / 2`, the rest at the end) and runs VALID, so the
/// result does not depend on whether the input size is even or odd.
pub fn conv2d_same(conv: &SlimConv, x: &Tensor, stride: i64, rate: i64, train: bool) -> Result<Tensor> {
    if stride == 1 {
        return conv.forward(x, 1, rate, Padding::Same, train);
    }
    let k = conv.weight.size()[2];
    let k_eff = k + (k - 1) * (rate - 1);
    let beg = (k_eff - 1) / 2;
    conv.forward(x, stride, rate, Padding::Explicit { beg, end: k_eff - 1 - beg }, train)
}

/// A block: its scope and units.
#[derive(Debug)]
pub struct BlockLayers {
    pub scope: String,
    pub units: Vec<Bottleneck>,
}

/// slim's `resnet_v2(...)` with its variables.
#[derive(Debug)]
pub struct ResNetV2 {
    pub cfg: ResNetV2Config,
    /// Root `conv1` (7x7/2, 64, biases, no BN): present when `include_root_block`.
    pub conv1: Option<SlimConv>,
    pub blocks: Vec<BlockLayers>,
    pub postnorm: BatchNorm,
    pub logits: Option<SlimConv>,
}

impl ResNetV2 {
    /// Creates every variable under `p / scope` with TF's names and shapes.
    pub fn new(p: &nn::Path, cfg: &ResNetV2Config) -> Result<Self> {
        if cfg.blocks.is_empty() || cfg.blocks.iter().any(|b| b.units.is_empty()) {
            return Err(Error::invalid("a ResNet v2 needs at least one block and one unit per block"));
        }
        let mut p = p.clone();
        for part in cfg.scope.split('/') {
            p = &p / part;
        }
        let conv1 = cfg
            .include_root_block
            .then(|| SlimConv::new(&(&p / "conv1"), cfg.in_channels, 64, (7, 7), Norm::Bias, false));
        let mut depth_in = if cfg.include_root_block { 64 } else { cfg.in_channels };
        let mut blocks = Vec::with_capacity(cfg.blocks.len());
        for block in &cfg.blocks {
            let bp = &p / block.scope.as_str();
            let mut units = Vec::with_capacity(block.units.len());
            for (i, args) in block.units.iter().enumerate() {
                let up = &bp / format!("unit_{}", i + 1).as_str() / "bottleneck_v2";
                units.push(Bottleneck::new(&up, depth_in, *args, cfg.bn));
                depth_in = args.depth;
            }
            blocks.push(BlockLayers { scope: block.scope.clone(), units });
        }
        let postnorm = BatchNorm::new(&(&p / "postnorm"), depth_in, cfg.bn);
        let logits = cfg
            .num_classes
            .map(|n| SlimConv::new(&(&p / "logits"), depth_in, n, (1, 1), Norm::Bias, false));
        Ok(ResNetV2 { cfg: cfg.clone(), conv1, blocks, postnorm, logits })
    }

    /// Checks `output_stride` the way `resnet_v2` and `stack_blocks_dense` do, and returns the
    /// (stride, rate) each unit runs with.
    pub fn unit_schedule(&self, output_stride: Option<i64>) -> Result<Vec<Vec<(i64, i64)>>> {
        let mut target = output_stride;
        if self.cfg.include_root_block {
            if let Some(os) = target {
                if os % 4 != 0 {
                    return Err(Error::invalid("The output_stride needs to be a multiple of 4."));
                }
                target = Some(os / 4);
            }
        }
        let unreachable = || Error::invalid("The target output_stride cannot be reached.");
        let (mut current, mut rate) = (1i64, 1i64);
        let mut schedule = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let mut units = Vec::with_capacity(block.units.len());
            for unit in &block.units {
                if target.is_some_and(|t| current > t) {
                    return Err(unreachable());
                }
                if target == Some(current) {
                    units.push((1, rate));
                    rate *= unit.args.stride;
                } else {
                    units.push((unit.args.stride, 1));
                    current *= unit.args.stride;
                }
            }
            schedule.push(units);
        }
        if target.is_some_and(|t| t != current) {
            return Err(unreachable());
        }
        Ok(schedule)
    }

    /// The forward pass of `resnet_v2(...)` on an NCHW batch. Returns `net` (squeezed logits,
    /// unsqueezed logits, or features, as TF returns them) and fills `ep` with slim's end points.
    pub fn forward(&self, x: &Tensor, train: bool, opts: &Options, ep: &mut EndPoints) -> Result<Tensor> {
        self.input_check(x)?;
        let schedule = self.unit_schedule(opts.output_stride)?;
        let sc = self.cfg.scope.as_str();
        let mut net = x.shallow_clone();
        if let Some(conv1) = &self.conv1 {
            // conv2d_same(net, 64, 7, stride=2): explicit symmetric pad of 3, then VALID.
            net = conv2d_same(conv1, &net, 2, 1, train)?;
            ep.add(format!("{sc}/conv1"), &net);
            net = max_pool_tf(&net, 3, 2, Padding::Same)?;
        }
        for (block, units) in self.blocks.iter().zip(&schedule) {
            for (i, (unit, &(stride, rate))) in block.units.iter().zip(units).enumerate() {
                let key = format!("{sc}/{}/unit_{}/bottleneck_v2", block.scope, i + 1);
                net = unit.forward(&net, stride, rate, train, &key, ep)?;
            }
            ep.add(format!("{sc}/{}", block.scope), &net);
        }
        let net = self.postnorm.forward(&net, train)?.f_relu_()?;
        let logits = self.logits.as_ref().map(|l| move |x: &Tensor| l.forward(x, 1, 1, Padding::Same, train));
        self.head(net, opts, ep, logits)
    }

    /// What follows `postnorm`: `global_pool`, the logits (run by `logits`, the reference or the
    /// rewritten layer), `spatial_squeeze` and `predictions`, with slim's end points.
    pub(crate) fn head(
        &self,
        mut net: Tensor,
        opts: &Options,
        ep: &mut EndPoints,
        logits: Option<impl FnOnce(&Tensor) -> Result<Tensor>>,
    ) -> Result<Tensor> {
        let sc = self.cfg.scope.as_str();
        if opts.global_pool {
            net = net.f_mean_dim(&[2i64, 3][..], true, None)?;
            ep.add("global_pool", &net);
        }
        if let Some(logits) = logits {
            net = logits(&net)?;
            ep.add(format!("{sc}/logits"), &net);
            if opts.spatial_squeeze {
                net = self.squeeze(&net)?;
                ep.add(format!("{sc}/spatial_squeeze"), &net);
            }
            ep.add("predictions", &net.f_softmax(1, net.kind())?);
        }
        Ok(net)
    }

    /// `spatial_squeeze`: [B, C, 1, 1] logits to [B, C]; an error (as in TF) when they are not 1x1.
    pub fn squeeze(&self, logits: &Tensor) -> Result<Tensor> {
        let (h, w) = hw(logits)?;
        if (h, w) != (1, 1) {
            return Err(Error::invalid(format!(
                "spatial_squeeze needs 1x1 logits, but they are {h}x{w} (TF fails here too: \
                 'Can not squeeze dim[1], expected a dimension of 1, got {}'); use \
                 global_pool, a smaller input, or turn spatial_squeeze off",
                if h != 1 { h } else { w }
            )));
        }
        Ok(logits.f_flatten(1, 3)?)
    }

    /// Every conv `weights` tensor (those `resnet_arg_scope` regularizes).
    pub fn conv_weights(&self) -> Vec<&Tensor> {
        let mut w: Vec<&Tensor> = self.conv1.iter().map(|c| &c.weight).collect();
        for unit in self.blocks.iter().flat_map(|b| &b.units) {
            w.extend(unit.shortcut.iter().map(|c| &c.weight));
            w.extend([&unit.conv1.weight, &unit.conv2.weight, &unit.conv3.weight]);
        }
        w.extend(self.logits.iter().map(|c| &c.weight));
        w
    }

    /// TF's `tf.losses.get_regularization_losses()` total: `weight_decay * sum(w^2) / 2` over every
    /// conv's weights.
    pub fn regularization_loss(&self) -> Result<Tensor> {
        super::layers::l2_regularization(self.conv_weights(), self.cfg.weight_decay)
    }

    /// Checks that `x` is an NCHW batch with the channels the net takes.
    pub fn input_check(&self, x: &Tensor) -> Result<()> {
        let s = x.size();
        if s.len() != 4 || s[1] != self.cfg.in_channels {
            return Err(Error::invalid(format!(
                "{} expects an NCHW batch with {} channels, got shape {s:?}",
                self.cfg.scope, self.cfg.in_channels
            )));
        }
        Ok(())
    }
}

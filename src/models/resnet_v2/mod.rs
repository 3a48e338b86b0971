//! slim's pre-activation ResNet v2 (`research/slim/nets/resnet_v2.py`, `resnet_utils.py`, newest
//! version), with TF's variable names, padding, atrous `output_stride` and `end_points`.
//!
//! He et al., "Identity Mappings in Deep Residual Networks", <https://arxiv.org/abs/1603.05027>.
//!
//! Variables are created one scope component at a time, so `resnet_v2_50/block1/unit_1/
//! bottleneck_v2/conv1/BatchNorm/gamma` is exactly that path. End points are NCHW.
//!
//! - [`ResNetV2Config`]: blocks, classes, root block, scope (presets: the zoo's 50/101/152/200);
//! - [`FAMILY`]: the names `--arch` takes and the rule that recognizes the net from TF shapes;
//! - [`ResNetV2`]: the net, built once and run by the reference or the frozen path;
//! - [`zoo`]: the published checkpoints.

pub mod zoo;

use super::{Arch, Family, Hints, Net, NetConfig, NetOptions, TfShapes};
use crate::error::{Error, Result};
use crate::nn::tf::{self, At, Padding, hw};
use crate::nn::{Act, BatchNorm, BnConfig, Builder, Conv, ConvSpec, Cx, Scope};
use crate::preprocess::Preprocessing;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use tch::Tensor;

/// One residual unit's arguments (`bottleneck(depth, depth_bottleneck, stride)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitArgs {
    /// Output depth (channels).
    pub depth: i64,
    /// Depth of the bottleneck (conv1, conv2).
    pub depth_bottleneck: i64,
    /// Stride of conv2 and the shortcut.
    pub stride: i64,
}

/// `resnet_utils.Block(scope, unit_fn, args)`; the unit function is always `bottleneck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// `block1`, …
    pub scope: String,
    /// Its units, in order.
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

/// The four depths of slim's model zoo.
pub const DEPTHS: [u32; 4] = [50, 101, 152, 200];

/// The blocks of `resnet_v2_{depth}` for the zoo's depths.
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

/// `resnet_arg_scope`'s batch norm: decay 0.997, epsilon 1e-5, with `gamma`.
pub const RESNET_BN: BnConfig = BnConfig { decay: 0.997, epsilon: 1e-5, scale: true };

/// What decides a ResNet v2's variables. Options that do not (`global_pool`, `output_stride`,
/// `spatial_squeeze`, `is_training`) are given at call time ([`NetOptions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetV2Config {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
    /// `None`: no `logits` layer; the net returns features.
    pub num_classes: Option<i64>,
    /// Whether the root `conv1` (7x7/2) and `pool1` exist.
    pub include_root_block: bool,
    /// Channels of the input (3 for images; the depth of a given feature map when
    /// `include_root_block` is false).
    pub in_channels: i64,
    /// The variable scope, e.g. `resnet_v2_50` (may contain `/` for outer scopes).
    pub scope: String,
    /// `resnet_arg_scope`'s batch norm (decay 0.997, epsilon 1e-5, with gamma).
    pub bn: BnConfig,
    /// `resnet_arg_scope`'s weight decay (the regularization loss).
    pub weight_decay: f64,
}

impl ResNetV2Config {
    /// `resnet_v2_50/101/152/200`.
    pub fn standard(depth: u32, num_classes: Option<i64>) -> Option<Self> {
        Some(Self::custom(format!("resnet_v2_{depth}"), standard_blocks(depth)?, num_classes))
    }

    /// A ResNet v2 with `blocks` under `scope`.
    pub fn custom(scope: impl Into<String>, blocks: Vec<Block>, num_classes: Option<i64>) -> Self {
        ResNetV2Config {
            blocks,
            num_classes: num_classes.filter(|&n| n > 0),
            include_root_block: true,
            in_channels: 3,
            scope: scope.into(),
            bn: RESNET_BN,
            weight_decay: 1e-4,
        }
    }

    /// The zoo depth (50/101/152/200) when this is exactly that net (under any scope).
    pub fn standard_depth(&self) -> Option<u32> {
        DEPTHS.into_iter().find(|&d| standard_blocks(d).as_ref() == Some(&self.blocks) && self.include_root_block && self.in_channels == 3)
    }
}

impl fmt::Display for ResNetV2Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (scope {}", self.name(), self.scope)?;
        if self.standard_depth().is_none() {
            write!(f, ", blocks {}", blocks_to_string(&self.blocks))?;
        }
        match self.num_classes {
            Some(n) => write!(f, ", {n} classes)"),
            None => write!(f, ", no logits)"),
        }
    }
}

impl NetConfig for ResNetV2Config {
    fn name(&self) -> String {
        match self.standard_depth() {
            Some(d) => format!("resnet_v2_{d}"),
            None => "resnet_v2".into(),
        }
    }

    fn build(&self, b: &mut Builder) -> Result<Box<dyn Net>> {
        Ok(Box::new(ResNetV2::build(self, b)?))
    }

    fn num_classes(&self) -> Option<i64> {
        self.num_classes
    }

    fn with_num_classes(&self, n: Option<i64>) -> Result<Arch> {
        Ok(Arch::new(ResNetV2Config { num_classes: n.filter(|&n| n > 0), ..self.clone() }))
    }

    fn classifier_scope(&self) -> Option<String> {
        Some(format!("{}/logits", self.scope))
    }

    fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("slimzoo.arch".into(), self.name()),
            ("slimzoo.scope".into(), self.scope.clone()),
            ("slimzoo.blocks".into(), blocks_to_string(&self.blocks)),
            ("slimzoo.num_classes".into(), self.num_classes.map_or("none".into(), |n| n.to_string())),
        ]
    }

    fn input_channels(&self) -> i64 {
        self.in_channels
    }

    fn default_image_size(&self) -> i64 {
        224
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::Inception
    }

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
}

/// Blocks as `BASExUNITS/STRIDE,…` (e.g. the zoo's ResNet-50 is `64x3/2,128x4/2,256x6/2,512x3/1`);
/// units whose depth is not 4x their bottleneck depth are written `DEPTH:BASExUNITS/STRIDE`.
pub fn blocks_to_string(blocks: &[Block]) -> String {
    blocks
        .iter()
        .map(|b| {
            let first = b.units.first().copied().unwrap_or(UnitArgs { depth: 0, depth_bottleneck: 0, stride: 1 });
            let stride = b.units.last().map_or(1, |u| u.stride);
            let prefix = if first.depth == 4 * first.depth_bottleneck { String::new() } else { format!("{}:", first.depth) };
            format!("{prefix}{}x{}/{stride}", first.depth_bottleneck, b.units.len())
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses [`blocks_to_string`]'s format; blocks are named `block1`, `block2`, ….
pub fn parse_blocks(spec: &str) -> Result<Vec<Block>> {
    let re = Regex::new(r"^(?:(\d+):)?(\d+)x(\d+)(?:/(\d+))?$").map_err(|e| Error::invalid(e.to_string()))?;
    let bad = |part: &str| {
        Error::invalid(format!(
            "bad block '{part}' in '{spec}': expected BASExUNITS/STRIDE (e.g. 64x3/2), optionally DEPTH: first, \
             with base and depth in 1..=1048576, units in 1..=10000, stride in 1..=64"
        ))
    };
    let mut blocks = Vec::new();
    for (i, part) in spec.split(',').map(str::trim).enumerate() {
        let c = re.captures(part).ok_or_else(|| bad(part))?;
        let num = |j: usize| c.get(j).map(|m| m.as_str().parse::<i64>()).transpose().map_err(|_| bad(part));
        let base = num(2)?.ok_or_else(|| bad(part))?;
        let units = num(3)?.ok_or_else(|| bad(part))?;
        let stride = num(4)?.unwrap_or(1);
        let depth = num(1)?.unwrap_or(4 * base);
        if !(1..=1 << 20).contains(&base)
            || !(1..=10_000).contains(&units)
            || !(1..=64).contains(&stride)
            || !(1..=1 << 20).contains(&depth)
        {
            return Err(bad(part));
        }
        let mut b = resnet_v2_block(&format!("block{}", i + 1), base, units as usize, stride);
        for u in &mut b.units {
            u.depth = depth;
        }
        blocks.push(b);
    }
    Ok(blocks)
}

/// The ResNet v2 family: the zoo's depths and custom blocks (`resnet_v2`).
#[derive(Debug)]
pub struct ResNetV2Family;

/// The registered family.
pub static FAMILY: ResNetV2Family = ResNetV2Family;

/// Output channels of a conv kernel in TF layout (HWIO).
fn tf_out(s: &[i64]) -> Option<i64> {
    (s.len() == 4).then(|| s[3])
}

impl Family for ResNetV2Family {
    fn name(&self) -> &'static str {
        "resnet_v2"
    }

    fn names(&self) -> &'static [&'static str] {
        &["resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200", "resnet_v2"]
    }

    fn resolve(&self, name: &str, vars: Option<&TfShapes>, hints: &Hints) -> Result<Arch> {
        let mut cfg = if name == "resnet_v2" {
            let detected = vars.map(|v| detect(v, hints)).transpose()?.flatten();
            match (hints.get("slimzoo.blocks"), detected) {
                (Some(b), d) => {
                    let scope = d.map_or_else(|| "resnet_v2".to_string(), |c| c.scope);
                    ResNetV2Config::custom(scope, parse_blocks(b)?, None)
                }
                (None, Some(cfg)) => cfg,
                (None, None) => {
                    return Err(Error::invalid(
                        "a custom resnet_v2 needs its blocks (BASExUNITS/STRIDE,…), or weights with ResNet v2 names to read them from",
                    ));
                }
            }
        } else {
            let depth = name.strip_prefix("resnet_v2_").and_then(|d| d.parse::<u32>().ok());
            depth
                .and_then(|d| ResNetV2Config::standard(d, Some(1001)))
                .ok_or_else(|| Error::invalid(format!("unknown architecture '{name}' (ResNet v2 depths: 50, 101, 152, 200)")))?
        };
        if let Some(v) = vars {
            cfg.num_classes = v.get(&format!("{}/logits/weights", cfg.scope)).and_then(|s| tf_out(s));
        }
        Ok(Arch::new(cfg))
    }

    fn detect(&self, vars: &TfShapes, hints: &Hints) -> Result<Option<Arch>> {
        Ok(detect(vars, hints)?.map(Arch::new))
    }

    fn zoo(&self) -> &'static [crate::zoo::ZooEntry] {
        zoo::ENTRIES
    }
}

/// Recognizes a ResNet v2 from TF names and shapes: the scope, each block's units and depths and
/// the class count come from the names and shapes; block strides cannot, so slim's convention (2
/// for every block but the last, which has 1) is assumed unless the `slimzoo.blocks` hint gives
/// them.
fn detect(vars: &TfShapes, hints: &Hints) -> Result<Option<ResNetV2Config>> {
    let re = Regex::new(r"^(.*)/(block\d+)/unit_(\d+)/bottleneck_v2/conv1/weights$").map_err(|e| Error::invalid(e.to_string()))?;
    let mut found: BTreeMap<&str, BTreeMap<u32, (String, u32)>> = BTreeMap::new();
    for k in vars.keys() {
        let Some(c) = re.captures(k) else { continue };
        let (Some(scope), Some(block), Some(unit)) = (c.get(1), c.get(2), c.get(3)) else { continue };
        let (Ok(unit), Ok(num)) = (unit.as_str().parse::<u32>(), block.as_str()[5..].parse::<u32>()) else { continue };
        let e = found.entry(scope.as_str()).or_default().entry(num).or_insert((block.as_str().to_string(), 0));
        e.1 = e.1.max(unit);
    }
    let scopes: BTreeSet<&str> = found.keys().copied().collect();
    let scope = match scopes.len() {
        0 => return Ok(None),
        1 => scopes.into_iter().next().unwrap_or_default(),
        _ => {
            return Err(Error::invalid(format!(
                "the weights hold several ResNet v2 nets (scopes {}); keep one",
                scopes.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
    };
    let blocks_found = &found[scope];
    let n = blocks_found.len();
    let strides: Option<Vec<i64>> = hints
        .get("slimzoo.blocks")
        .map(|b| parse_blocks(b))
        .transpose()?
        .map(|bs| bs.iter().map(|b| b.units.last().map_or(1, |u| u.stride)).collect());
    if let Some(s) = &strides
        && s.len() != n
    {
        return Err(Error::invalid(format!("{} block strides given, but the weights have {n} blocks", s.len())));
    }
    let mut blocks = Vec::with_capacity(n);
    for (i, (block, units)) in blocks_found.values().enumerate() {
        let stride = strides.as_ref().map_or(if i + 1 == n { 1 } else { 2 }, |s| s[i]);
        let mut args = Vec::with_capacity(*units as usize);
        for u in 1..=*units {
            let unit = format!("{scope}/{block}/unit_{u}/bottleneck_v2");
            let out = |conv: &str| vars.get(&format!("{unit}/{conv}/weights")).and_then(|s| tf_out(s));
            let (Some(db), Some(depth)) = (out("conv1"), out("conv3")) else {
                return Err(Error::invalid(format!("ResNet v2 weights lack {unit}/conv1 or conv3 weights (or they are not 4-D)")));
            };
            args.push(UnitArgs { depth, depth_bottleneck: db, stride: if u == *units { stride } else { 1 } });
        }
        blocks.push(Block { scope: block.clone(), units: args });
    }
    let logits = vars.get(&format!("{scope}/logits/weights")).and_then(|s| tf_out(s));
    let mut cfg = ResNetV2Config::custom(scope, blocks, logits);
    match vars.get(&format!("{scope}/conv1/weights")) {
        Some(s) if s.len() == 4 => cfg.in_channels = s[2],
        Some(s) => return Err(Error::invalid(format!("{scope}/conv1/weights has shape {s:?}, not a 4-D kernel"))),
        None => {
            cfg.include_root_block = false;
            let first = format!("{scope}/{}/unit_1/bottleneck_v2/preact/beta", cfg.blocks[0].scope);
            cfg.in_channels = vars.get(&first).and_then(|s| s.first().copied()).unwrap_or(64);
        }
    }
    Ok(Some(cfg))
}

/// `bottleneck` (scope `bottleneck_v2`).
#[derive(Debug)]
struct Bottleneck {
    preact: BatchNorm,
    /// Projection shortcut, present when the unit changes the depth.
    shortcut: Option<Conv>,
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
}

/// `resnet_utils.conv2d_same`: stride 1 is a SAME convolution with `rate`; a larger stride pads
/// `k_eff - 1` explicitly (`pad_beg = (k_eff - 1) / 2`, the rest at the end) and runs VALID, so the
/// result does not depend on whether the input size is even or odd.
pub fn conv2d_same(kernel: i64, stride: i64, rate: i64) -> At {
    if stride == 1 {
        return At::SAME.rate(rate);
    }
    let k_eff = kernel + (kernel - 1) * (rate - 1);
    let beg = (k_eff - 1) / 2;
    At { stride, rate, padding: Padding::Explicit { beg, end: k_eff - 1 - beg } }
}

impl Bottleneck {
    fn build(b: &mut Builder, s: &Scope, depth_in: i64, args: UnitArgs, bn: BnConfig) -> Result<Self> {
        let UnitArgs { depth, depth_bottleneck: db, .. } = args;
        Ok(Bottleneck {
            preact: b.batch_norm(&(s / "preact"), depth_in, bn)?,
            shortcut: if depth != depth_in { Some(b.conv(&(s / "shortcut"), ConvSpec::new(depth_in, depth, (1, 1)))?) } else { None },
            conv1: b.conv(&(s / "conv1"), ConvSpec::new(depth_in, db, (1, 1)).bn(bn).relu())?,
            conv2: b.conv(&(s / "conv2"), ConvSpec::new(db, db, (3, 3)).bn(bn).relu())?,
            conv3: b.conv(&(s / "conv3"), ConvSpec::new(db, depth, (1, 1)))?,
        })
    }

    /// `key` is the unit's end-point prefix, e.g. `resnet_v2_50/block1/unit_1/bottleneck_v2`.
    fn forward(&self, cx: &mut Cx<'_>, x: Tensor, stride: i64, rate: i64, key: &str) -> Result<Tensor> {
        let preact = cx.bn(&self.preact, &x, Act::Relu)?;
        let shortcut = match &self.shortcut {
            Some(conv) => {
                let s = cx.conv(conv, &preact, At::SAME.stride(stride))?;
                cx.record(format!("{key}/shortcut"), &s);
                s
            }
            None => tf::subsample(&x, stride)?,
        };
        // The identity shortcut is now the only handle to the input: the frozen path adds the
        // residual into it in place.
        drop(x);
        let r = cx.conv(&self.conv1, &preact, At::SAME)?;
        cx.record(format!("{key}/conv1"), &r);
        let r = cx.conv(&self.conv2, &r, conv2d_same(3, stride, rate))?;
        cx.record(format!("{key}/conv2"), &r);
        let out = cx.conv_add(&self.conv3, shortcut, &r, At::SAME, Act::None, Some(&format!("{key}/conv3")))?;
        cx.record(key, &out);
        Ok(out)
    }
}

/// slim's `resnet_v2(...)`.
#[derive(Debug)]
pub struct ResNetV2 {
    cfg: ResNetV2Config,
    /// Root `conv1` (7x7/2, 64, biases, no BN): present when `include_root_block`.
    conv1: Option<Conv>,
    /// (block scope, units)
    blocks: Vec<(String, Vec<Bottleneck>)>,
    postnorm: BatchNorm,
    logits: Option<Conv>,
}

impl ResNetV2 {
    /// Records every variable under `cfg.scope` with TF's names and shapes.
    pub fn build(cfg: &ResNetV2Config, b: &mut Builder) -> Result<Self> {
        if cfg.blocks.is_empty() || cfg.blocks.iter().any(|b| b.units.is_empty()) {
            return Err(Error::invalid("a ResNet v2 needs at least one block and one unit per block"));
        }
        let s = Scope::new(&cfg.scope);
        let conv1 = if cfg.include_root_block { Some(b.conv(&(&s / "conv1"), ConvSpec::new(cfg.in_channels, 64, (7, 7)))?) } else { None };
        let mut depth_in = if cfg.include_root_block { 64 } else { cfg.in_channels };
        let mut blocks = Vec::with_capacity(cfg.blocks.len());
        for block in &cfg.blocks {
            let bs = &s / &block.scope;
            let mut units = Vec::with_capacity(block.units.len());
            for (i, args) in block.units.iter().enumerate() {
                let us = &(&bs / format!("unit_{}", i + 1)) / "bottleneck_v2";
                units.push(Bottleneck::build(b, &us, depth_in, *args, cfg.bn)?);
                depth_in = args.depth;
            }
            blocks.push((block.scope.clone(), units));
        }
        let postnorm = b.batch_norm(&(&s / "postnorm"), depth_in, cfg.bn)?;
        let logits = match cfg.num_classes {
            Some(n) => Some(b.conv(&(&s / "logits"), ConvSpec::new(depth_in, n, (1, 1)))?),
            None => None,
        };
        Ok(ResNetV2 { cfg: cfg.clone(), conv1, blocks, postnorm, logits })
    }

    /// Checks `output_stride` the way `resnet_v2` and `stack_blocks_dense` do, and returns the
    /// (stride, rate) each unit runs with.
    pub fn unit_schedule(&self, output_stride: Option<i64>) -> Result<Vec<Vec<(i64, i64)>>> {
        let mut target = output_stride;
        if let Some(os) = target
            && os < 1
        {
            return Err(Error::invalid(format!("output_stride must be positive, got {os}")));
        }
        if self.cfg.include_root_block
            && let Some(os) = target
        {
            if os % 4 != 0 {
                return Err(Error::invalid("The output_stride needs to be a multiple of 4."));
            }
            target = Some(os / 4);
        }
        let unreachable = || Error::invalid("The target output_stride cannot be reached.");
        let (mut current, mut rate) = (1i64, 1i64);
        let mut schedule = Vec::with_capacity(self.cfg.blocks.len());
        for block in &self.cfg.blocks {
            let mut units = Vec::with_capacity(block.units.len());
            for unit in &block.units {
                if target.is_some_and(|t| current > t) {
                    return Err(unreachable());
                }
                if target == Some(current) {
                    units.push((1, rate));
                    rate = rate.saturating_mul(unit.stride);
                } else {
                    units.push((unit.stride, 1));
                    current = current.saturating_mul(unit.stride);
                }
            }
            schedule.push(units);
        }
        if target.is_some_and(|t| t != current) {
            return Err(unreachable());
        }
        Ok(schedule)
    }
}

/// `spatial_squeeze`: [B, C, 1, 1] logits to [B, C]; an error (as in TF) when they are not 1x1.
fn squeeze(logits: &Tensor) -> Result<Tensor> {
    let (h, w) = hw(logits)?;
    if (h, w) != (1, 1) {
        return Err(Error::invalid(format!(
            "spatial_squeeze needs 1x1 logits, but they are {h}x{w} (TF fails here too: \
             'Can not squeeze dim[1], expected a dimension of 1, got {}'); use global_pool, a \
             smaller input, or turn spatial_squeeze off",
            if h != 1 { h } else { w }
        )));
    }
    Ok(logits.f_flatten(1, 3)?)
}

impl Net for ResNetV2 {
    /// `resnet_v2(inputs, num_classes, is_training, global_pool, output_stride, …)`: returns `net`
    /// (squeezed logits, unsqueezed logits, or features, as TF returns them).
    fn forward(&self, cx: &mut Cx<'_>, x: Tensor, opts: &NetOptions) -> Result<Tensor> {
        let schedule = self.unit_schedule(opts.output_stride)?;
        let sc = self.cfg.scope.as_str();
        let mut net = cx.input(&x)?;
        drop(x);
        if let Some(conv1) = &self.conv1 {
            // conv2d_same(net, 64, 7, stride=2): explicit symmetric pad of 3, then VALID.
            net = cx.conv(conv1, &net, conv2d_same(7, 2, 1))?;
            cx.record(format!("{sc}/conv1"), &net);
            net = cx.max_pool(&net, 3, 2, Padding::Same)?;
        }
        for ((scope, units), sched) in self.blocks.iter().zip(&schedule) {
            for (i, (unit, &(stride, rate))) in units.iter().zip(sched).enumerate() {
                net = unit.forward(cx, net, stride, rate, &format!("{sc}/{scope}/unit_{}/bottleneck_v2", i + 1))?;
            }
            cx.record(format!("{sc}/{scope}"), &net);
        }
        let mut net = cx.bn(&self.postnorm, &net, Act::Relu)?;
        if opts.global_pool {
            net = net.f_mean_dim(&[2i64, 3][..], true, None)?;
            cx.record("global_pool", &net);
        }
        if let Some(logits) = &self.logits {
            net = cx.conv(logits, &net, At::SAME)?;
            cx.record(format!("{sc}/logits"), &net);
            if opts.spatial_squeeze {
                net = squeeze(&net)?;
                cx.record(format!("{sc}/spatial_squeeze"), &net);
            }
            cx.record("predictions", &net.f_softmax(1, net.kind())?);
        }
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let b = standard_blocks(50).unwrap();
        assert_eq!(blocks_to_string(&b), "64x3/2,128x4/2,256x6/2,512x3/1");
        assert_eq!(parse_blocks("64x3/2,128x4/2,256x6/2,512x3/1").unwrap(), b);
        let custom = parse_blocks("40:4x2/2, 8x1").unwrap();
        assert_eq!(custom[0].units[0], UnitArgs { depth: 40, depth_bottleneck: 4, stride: 1 });
        assert_eq!(custom[0].units[1].stride, 2);
        assert_eq!(custom[1].scope, "block2");
        assert_eq!(blocks_to_string(&custom), "40:4x2/2,8x1/1");
        for bad in ["", "64x", "x3/2", "64x0/2", "64x3/0", "64x3/2,", "-4x3/2", "64x3/99999999999999999999"] {
            assert!(parse_blocks(bad).is_err(), "{bad}");
        }
    }

    /// Building, listing and recognizing agree for every zoo depth (on TF shapes).
    #[test]
    fn detect_recovers_every_named_architecture() {
        for depth in DEPTHS {
            let arch = Arch::named(&format!("resnet_v2_{depth}")).unwrap();
            let tf = crate::weights::to_tf_shapes(&arch.variables().unwrap().shapes());
            assert_eq!(Arch::detect(&tf, &Hints::new()).unwrap(), arch, "{depth}");
        }
    }
}

//! Architectures: their names, how they are recognized from variable names, and the built net.

use crate::error::{Error, Result};
use crate::models::endpoints::EndPoints;
use crate::models::fast::{FastInceptionResnetV1, FastResNetV2, Rewrites};
use crate::models::inception_resnet_v1::{InceptionResnetV1, InceptionResnetV1Config};
use crate::models::resnet_v2::{self, Block, ResNetV2, ResNetV2Config, UnitArgs};
use crate::names;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use tch::{Device, Tensor, nn};

/// Variable names (TF) and shapes (tch layout).
pub type Shapes = BTreeMap<String, Vec<i64>>;

/// What to build: an architecture with everything that decides its variables.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchSpec {
    ResNetV2(ResNetV2Config),
    InceptionResnetV1(InceptionResnetV1Config),
}

/// The names `--arch` takes.
pub const ARCH_NAMES: &[&str] =
    &["resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200", "resnet_v2", "inception_resnet_v1"];

impl ArchSpec {
    /// A named architecture with defaults: the zoo ResNets with 1001 classes, facenet with a
    /// 512-d bottleneck and no classifier head.
    pub fn named(name: &str) -> Result<ArchSpec> {
        if let Some(depth) = name.strip_prefix("resnet_v2_").and_then(|d| d.parse::<u32>().ok()) {
            if let Some(cfg) = ResNetV2Config::standard(depth, Some(1001)) {
                return Ok(ArchSpec::ResNetV2(cfg));
            }
        }
        match name {
            "inception_resnet_v1" | "facenet" => Ok(ArchSpec::InceptionResnetV1(InceptionResnetV1Config::new(512))),
            _ => Err(Error::invalid(format!(
                "unknown architecture '{name}' (known: {}; a custom ResNet v2 is 'resnet_v2' with blocks)",
                ARCH_NAMES.join(", ")
            ))),
        }
    }

    /// The family name: `resnet_v2_50` for the zoo depths, `resnet_v2` for custom blocks,
    /// `inception_resnet_v1`.
    pub fn name(&self) -> String {
        match self {
            ArchSpec::ResNetV2(cfg) => match standard_depth(cfg) {
                Some(d) => format!("resnet_v2_{d}"),
                None => "resnet_v2".into(),
            },
            ArchSpec::InceptionResnetV1(_) => "inception_resnet_v1".into(),
        }
    }

    /// The number of classes of the classifier, if any.
    pub fn num_classes(&self) -> Option<i64> {
        match self {
            ArchSpec::ResNetV2(c) => c.num_classes,
            ArchSpec::InceptionResnetV1(c) => c.logits_classes,
        }
    }

    pub fn set_num_classes(&mut self, n: Option<i64>) {
        let n = n.filter(|&n| n > 0);
        match self {
            ArchSpec::ResNetV2(c) => c.num_classes = n,
            ArchSpec::InceptionResnetV1(c) => c.logits_classes = n,
        }
    }

    /// The default input size (`default_image_size`): 224 for ResNet v2, 160 for facenet.
    pub fn default_image_size(&self) -> i64 {
        match self {
            ArchSpec::ResNetV2(_) => 224,
            ArchSpec::InceptionResnetV1(_) => 160,
        }
    }

    /// Key/value pairs recorded in converted files so the spec can be rebuilt exactly
    /// (block strides cannot be read from variable names).
    pub fn metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![("slimzoo.arch".to_string(), self.name())];
        match self {
            ArchSpec::ResNetV2(c) => {
                m.push(("slimzoo.scope".into(), c.scope.clone()));
                m.push(("slimzoo.blocks".into(), blocks_to_string(&c.blocks)));
                m.push(("slimzoo.num_classes".into(), c.num_classes.map_or("none".into(), |n| n.to_string())));
            }
            ArchSpec::InceptionResnetV1(c) => {
                m.push(("slimzoo.scope".into(), c.scope.clone()));
                m.push(("slimzoo.bottleneck".into(), c.bottleneck_layer_size.to_string()));
                m.push(("slimzoo.num_classes".into(), c.logits_classes.map_or("none".into(), |n| n.to_string())));
            }
        }
        m
    }
}

impl fmt::Display for ArchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchSpec::ResNetV2(c) => {
                write!(f, "{} (scope {}", self.name(), c.scope)?;
                if standard_depth(c).is_none() {
                    write!(f, ", blocks {}", blocks_to_string(&c.blocks))?;
                }
                match c.num_classes {
                    Some(n) => write!(f, ", {n} classes)"),
                    None => write!(f, ", no logits)"),
                }
            }
            ArchSpec::InceptionResnetV1(c) => {
                write!(f, "inception_resnet_v1 (bottleneck {}", c.bottleneck_layer_size)?;
                match c.logits_classes {
                    Some(n) => write!(f, ", Logits head of {n} classes)"),
                    None => write!(f, ")"),
                }
            }
        }
    }
}

/// The zoo depth (50/101/152/200) when `cfg` is exactly that net (under any scope).
fn standard_depth(cfg: &ResNetV2Config) -> Option<u32> {
    [50, 101, 152, 200].into_iter().find(|&d| {
        resnet_v2::standard_blocks(d).as_ref() == Some(&cfg.blocks) && cfg.include_root_block && cfg.in_channels == 3
    })
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
            "bad block '{part}' in '{spec}': expected BASExUNITS/STRIDE (e.g. 64x3/2), optionally DEPTH: first"
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
        if base <= 0 || units <= 0 || stride <= 0 || depth <= 0 || units > 10_000 || base > 1 << 20 || depth > 1 << 20 {
            return Err(bad(part));
        }
        let mut b = resnet_v2::resnet_v2_block(&format!("block{}", i + 1), base, units as usize, stride);
        for u in &mut b.units {
            u.depth = depth;
        }
        blocks.push(b);
    }
    Ok(blocks)
}

/// Recognizes the architecture from variable names and (tch-layout) shapes.
///
/// ResNet v2: the scope, each block's units and depths and the class count come from the names and
/// shapes; block strides cannot, so slim's convention (2 for every block but the last, which has 1)
/// is assumed unless `strides` gives them. facenet: the bottleneck size and the `Logits` head.
pub fn detect(shapes: &Shapes, strides: Option<&[i64]>) -> Result<ArchSpec> {
    if let Some(spec) = detect_facenet(shapes)? {
        return Ok(spec);
    }
    if let Some(spec) = detect_resnet_v2(shapes, strides)? {
        return Ok(spec);
    }
    let sample: Vec<&str> = shapes.keys().take(8).map(String::as_str).collect();
    Err(Error::invalid(format!(
        "cannot tell the architecture from the {} variable names (first ones: {}); pass --arch",
        shapes.len(),
        sample.join(", ")
    )))
}

/// The spec for `--arch NAME`, sized from the weights: the class count (none when the weights
/// have no logits), facenet's bottleneck and head. `resnet_v2` (custom) takes its blocks from
/// `blocks` (`BASExUNITS/STRIDE,…`) or, without it, from the names.
pub fn spec_for(name: &str, blocks: Option<&str>, shapes: &Shapes) -> Result<ArchSpec> {
    let mut spec = if name == "resnet_v2" {
        let detected = detect_resnet_v2(shapes, None)?;
        match (blocks, detected) {
            (Some(b), d) => {
                let scope = match &d {
                    Some(ArchSpec::ResNetV2(c)) => c.scope.clone(),
                    _ => "resnet_v2".to_string(),
                };
                ArchSpec::ResNetV2(ResNetV2Config::custom(scope, parse_blocks(b)?, None))
            }
            (None, Some(spec)) => spec,
            (None, None) => {
                return Err(Error::invalid(
                    "--arch resnet_v2 needs --blocks, or weights with ResNet v2 names to read the blocks from",
                ));
            }
        }
    } else {
        if blocks.is_some() {
            return Err(Error::invalid(format!("--blocks goes with --arch resnet_v2, not {name}")));
        }
        ArchSpec::named(name)?
    };
    match &mut spec {
        ArchSpec::ResNetV2(cfg) => cfg.num_classes = shapes.get(&format!("{}/logits/weights", cfg.scope)).map(|s| s[0]),
        ArchSpec::InceptionResnetV1(cfg) => {
            if let Some(s) = shapes.get(&format!("{}/Bottleneck/weights", cfg.scope)) {
                cfg.bottleneck_layer_size = s[0];
            }
            cfg.logits_classes = shapes.get("Logits/weights").map(|s| s[0]);
        }
    }
    Ok(spec)
}

fn detect_facenet(shapes: &Shapes) -> Result<Option<ArchSpec>> {
    let re = Regex::new(r"^(.*)/Repeat/block35_1/Branch_0/Conv2d_1x1/weights$").map_err(|e| Error::invalid(e.to_string()))?;
    let scopes: BTreeSet<&str> = shapes.keys().filter_map(|k| re.captures(k)).filter_map(|c| c.get(1)).map(|m| m.as_str()).collect();
    let Some(scope) = single(&scopes, "Inception-ResNet-v1")? else { return Ok(None) };
    let mut cfg = InceptionResnetV1Config::new(512);
    cfg.scope = scope.to_string();
    if let Some(s) = shapes.get(&format!("{scope}/Bottleneck/weights")) {
        cfg.bottleneck_layer_size = s[0];
    }
    cfg.logits_classes = shapes.get("Logits/weights").map(|s| s[0]);
    Ok(Some(ArchSpec::InceptionResnetV1(cfg)))
}

fn single<'a>(scopes: &BTreeSet<&'a str>, what: &str) -> Result<Option<&'a str>> {
    match scopes.len() {
        0 => Ok(None),
        1 => Ok(scopes.iter().next().copied()),
        _ => Err(Error::invalid(format!(
            "the weights hold several {what} nets (scopes {}); keep one with --rename or pick it with --scope",
            scopes.iter().copied().collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn detect_resnet_v2(shapes: &Shapes, strides: Option<&[i64]>) -> Result<Option<ArchSpec>> {
    let re = Regex::new(r"^(.*)/(block\d+)/unit_(\d+)/bottleneck_v2/conv1/weights$").map_err(|e| Error::invalid(e.to_string()))?;
    let mut found: BTreeMap<&str, BTreeMap<u32, (String, u32)>> = BTreeMap::new();
    for k in shapes.keys() {
        if let Some(c) = re.captures(k) {
            let (Some(scope), Some(block), Some(unit)) = (c.get(1), c.get(2), c.get(3)) else { continue };
            let Ok(unit) = unit.as_str().parse::<u32>() else { continue };
            let Ok(num) = block.as_str()[5..].parse::<u32>() else { continue };
            let e = found.entry(scope.as_str()).or_default().entry(num).or_insert((block.as_str().to_string(), 0));
            e.1 = e.1.max(unit);
        }
    }
    let scopes: BTreeSet<&str> = found.keys().copied().collect();
    let Some(scope) = single(&scopes, "ResNet v2")? else { return Ok(None) };
    let blocks_found = &found[scope];
    let n = blocks_found.len();
    if let Some(s) = strides {
        if s.len() != n {
            return Err(Error::invalid(format!("{} block strides given, but the weights have {n} blocks", s.len())));
        }
    }
    let mut blocks = Vec::with_capacity(n);
    for (i, (block, units)) in blocks_found.values().enumerate() {
        let stride = strides.map_or(if i + 1 == n { 1 } else { 2 }, |s| s[i]);
        let mut args = Vec::with_capacity(*units as usize);
        for u in 1..=*units {
            let unit = format!("{scope}/{block}/unit_{u}/bottleneck_v2");
            let out = |conv: &str| shapes.get(&format!("{unit}/{conv}/weights")).map(|s| s[0]);
            let (Some(db), Some(depth)) = (out("conv1"), out("conv3")) else {
                return Err(Error::invalid(format!("ResNet v2 weights lack {unit}/conv1 or conv3 weights")));
            };
            args.push(UnitArgs { depth, depth_bottleneck: db, stride: if u == *units { stride } else { 1 } });
        }
        blocks.push(Block { scope: block.clone(), units: args });
    }
    let mut cfg = ResNetV2Config::custom(scope, blocks, shapes.get(&format!("{scope}/logits/weights")).map(|s| s[0]));
    match shapes.get(&format!("{scope}/conv1/weights")) {
        Some(s) => cfg.in_channels = s[1],
        None => {
            cfg.include_root_block = false;
            let first = format!("{scope}/{}/unit_1/bottleneck_v2/preact/beta", cfg.blocks[0].scope);
            cfg.in_channels = shapes.get(&first).map_or(64, |s| s[0]);
        }
    }
    Ok(Some(ArchSpec::ResNetV2(cfg)))
}

/// A built net.
#[derive(Debug)]
pub enum Net {
    ResNetV2(ResNetV2),
    InceptionResnetV1(InceptionResnetV1),
}

/// Call-time options for [`Model::forward`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub train: bool,
    /// ResNet v2's `global_pool`, `output_stride`, `spatial_squeeze` (ignored by facenet).
    pub resnet: resnet_v2::Options,
}

/// The inference-rewritten form of a [`Net`] (see [`crate::models::fast`]).
#[derive(Debug)]
pub enum FastNet {
    ResNetV2(FastResNetV2),
    InceptionResnetV1(FastInceptionResnetV1),
}

/// A net with its variables.
pub struct Model {
    pub spec: ArchSpec,
    pub vs: nn::VarStore,
    pub net: Net,
    /// Built by [`Model::prepare_inference`]; used by `forward` when not training. Loading new
    /// weights drops it.
    pub fast: Option<FastNet>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Model({})", self.spec)
    }
}

impl Model {
    /// Builds `spec` on `device`, every variable under its TF name.
    pub fn new(spec: &ArchSpec, device: Device) -> Result<Model> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net = match spec {
            ArchSpec::ResNetV2(cfg) => Net::ResNetV2(ResNetV2::new(&root, cfg)?),
            ArchSpec::InceptionResnetV1(cfg) => Net::InceptionResnetV1(InceptionResnetV1::new(&root, cfg)?),
        };
        let model = Model { spec: spec.clone(), vs, net, fast: None };
        // tch renames clashing variables to `name__N`; a clash would be a bug in a net definition.
        if let Some(bad) = model.vs.variables().keys().find(|k| k.contains("__")) {
            return Err(Error::invalid(format!("internal error: variable name clash at {bad}")));
        }
        Ok(model)
    }

    /// TF name → shape (tch layout) of every variable.
    pub fn shapes(&self) -> Shapes {
        self.vs.variables().into_iter().map(|(k, t)| (names::vs_to_tf(&k), t.size())).collect()
    }

    /// TF name → variable.
    pub fn variables(&self) -> BTreeMap<String, Tensor> {
        self.vs.variables().into_iter().map(|(k, t)| (names::vs_to_tf(&k), t)).collect()
    }

    /// Builds the inference path with `rewrites` from the current weights (call again after
    /// changing them; [`Model::load`] drops it). `Rewrites::NONE` removes it.
    pub fn prepare_inference(&mut self, rewrites: Rewrites) -> Result<()> {
        self.fast = None;
        if rewrites == Rewrites::NONE {
            return Ok(());
        }
        self.fast = Some(tch::no_grad(|| -> Result<FastNet> {
            Ok(match &self.net {
                Net::ResNetV2(n) => FastNet::ResNetV2(FastResNetV2::new(n, rewrites)?),
                Net::InceptionResnetV1(n) => FastNet::InceptionResnetV1(FastInceptionResnetV1::new(n, rewrites)?),
            })
        })?);
        Ok(())
    }

    /// Stores every 4-D variable (conv kernels) channels-last, oneDNN's native layout, so that
    /// training steps do not reorder them on every call. Values and names are unchanged.
    pub fn channels_last_weights(&mut self) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for (_, mut v) in self.vs.variables() {
                if v.dim() == 4 {
                    let cl = crate::models::fused::channels_last(&v.f_contiguous()?)?;
                    v.f_set_data(&cl)?;
                }
            }
            Ok(())
        })
    }

    /// Runs the net on an NCHW float batch. Returns the net's output (ResNet: `net` as
    /// `resnet_v2()` returns it; facenet: the `Bottleneck` output) and fills `ep`. Inference
    /// (`train = false`) takes the rewritten path when [`Model::prepare_inference`] built one.
    pub fn forward(&self, x: &Tensor, opts: &RunOptions, ep: &mut EndPoints) -> Result<Tensor> {
        let x = x.f_to_device(self.vs.device())?;
        match (&self.net, &self.fast, opts.train) {
            (Net::ResNetV2(n), Some(FastNet::ResNetV2(f)), false) => tch::no_grad(|| f.forward(n, &x, &opts.resnet, ep)),
            (Net::InceptionResnetV1(n), Some(FastNet::InceptionResnetV1(f)), false) => tch::no_grad(|| f.forward(n, &x, ep)),
            (Net::ResNetV2(n), _, _) => n.forward(&x, opts.train, &opts.resnet, ep),
            (Net::InceptionResnetV1(n), _, _) => n.forward(&x, opts.train, ep),
        }
    }

    /// TF's regularization loss total (`tf.losses.get_regularization_losses()` summed).
    pub fn regularization_loss(&self) -> Result<Tensor> {
        match &self.net {
            Net::ResNetV2(n) => n.regularization_loss(),
            Net::InceptionResnetV1(n) => n.regularization_loss(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let b = resnet_v2::standard_blocks(50).unwrap();
        assert_eq!(blocks_to_string(&b), "64x3/2,128x4/2,256x6/2,512x3/1");
        assert_eq!(parse_blocks("64x3/2,128x4/2,256x6/2,512x3/1").unwrap(), b);
        let custom = parse_blocks("40:4x2/2, 8x1").unwrap();
        assert_eq!(custom[0].units[0], UnitArgs { depth: 40, depth_bottleneck: 4, stride: 1 });
        assert_eq!(custom[0].units[1].stride, 2);
        assert_eq!(custom[1].scope, "block2");
        assert_eq!(blocks_to_string(&custom), "40:4x2/2,8x1/1");
        for bad in ["", "64x", "x3/2", "64x0/2", "64x3/0", "64x3/2,", "-4x3/2"] {
            assert!(parse_blocks(bad).is_err(), "{bad}");
        }
    }

    /// Building, listing and detecting agree for every zoo net and facenet.
    #[test]
    fn detect_recovers_every_named_architecture() {
        for name in ["resnet_v2_50", "resnet_v2_101", "inception_resnet_v1"] {
            let spec = ArchSpec::named(name).unwrap();
            let shapes = tch::no_grad(|| Model::new(&spec, Device::Cpu)).unwrap().shapes();
            assert_eq!(detect(&shapes, None).unwrap(), spec, "{name}");
        }
    }
}

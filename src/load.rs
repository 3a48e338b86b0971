//! Opening whatever weights a user has — a converted safetensors file or any TF checkpoint
//! (prefix, folder, `.zip`, `.tar.gz`) — and building the net they fit.

use crate::arch::{self, ArchSpec, Model};
use crate::ckpt::Checkpoint;
use crate::convert::{ConvertOptions, Plan};
use crate::error::{Error, Result};
use crate::weights::Weights;
use std::io::Read;
use std::path::Path;
use tch::Device;

/// The two kinds of weight files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    Safetensors,
    /// Anything [`Checkpoint::open`] takes.
    TfCheckpoint,
}

impl WeightsFormat {
    /// Looks at the file itself: a safetensors file starts with a little-endian u64 header length
    /// followed by `{`. Folders, prefixes and archives are checkpoints.
    pub fn of(path: &Path) -> WeightsFormat {
        let mut head = [0u8; 9];
        let is_st = path.is_file()
            && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
            && head[8] == b'{'
            && u64::from_le_bytes(head[..8].try_into().unwrap_or_default()) > 1;
        if is_st { WeightsFormat::Safetensors } else { WeightsFormat::TfCheckpoint }
    }
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--arch` (detected from the names when `None`).
    pub arch: Option<String>,
    /// Custom ResNet v2 blocks (`BASExUNITS/STRIDE,…`).
    pub blocks: Option<String>,
    /// `Some(None)`: no classifier (the weights' logits are left out); `Some(Some(n))`: `n`
    /// classes; `None`: as the weights have it.
    pub num_classes: Option<Option<i64>>,
    /// Filtering for TF checkpoints (`--ema`, `--rename`, …).
    pub convert: ConvertOptions,
}

/// A net with its weights loaded, and what was decided on the way.
#[derive(Debug)]
pub struct Loaded {
    pub model: Model,
    /// One line each, for stderr.
    pub notes: Vec<String>,
}

/// Reads the weights at `path` in tch layout (a checkpoint is converted in memory).
pub fn read_weights(path: &Path, convert: &ConvertOptions) -> Result<(Weights, Vec<String>)> {
    match WeightsFormat::of(path) {
        WeightsFormat::Safetensors => Ok((Weights::from_safetensors(path)?, vec![])),
        WeightsFormat::TfCheckpoint => {
            let ckpt = Checkpoint::open(path)?;
            let opts = ConvertOptions { no_validate: true, ..convert.clone() };
            let plan = Plan::new(&ckpt, &opts)?;
            let mut notes = vec![format!("read {}", plan.source)];
            if !plan.dropped.is_empty() {
                notes.push(plan.dropped_summary());
            }
            Ok((plan.to_weights(&ckpt)?, notes))
        }
    }
}

/// Loads the weights at `path` into the net they fit, strictly.
pub fn load_model(path: &Path, opts: &LoadOptions, device: Device) -> Result<Loaded> {
    let (mut weights, mut notes) = read_weights(path, &opts.convert)?;
    let shapes = weights.shapes();
    let mut spec = match &opts.arch {
        Some(name) => arch::spec_for(name, opts.blocks.as_deref(), &shapes)?,
        None => {
            let strides = match (&opts.blocks, weights.metadata.get("slimzoo.blocks")) {
                (Some(b), _) | (None, Some(b)) => Some(arch::parse_blocks(b)?),
                (None, None) => None,
            };
            let strides: Option<Vec<i64>> =
                strides.map(|bs| bs.iter().map(|b| b.units.last().map_or(1, |u| u.stride)).collect());
            arch::detect(&shapes, strides.as_deref())?
        }
    };
    match opts.num_classes {
        None => notes.push(match (&spec, spec.num_classes()) {
            (_, Some(n)) => format!("{n} classes, from the weights' logits"),
            (ArchSpec::ResNetV2(_), None) => "no logits in the weights: the net returns features".to_string(),
            (ArchSpec::InceptionResnetV1(_), None) => "no classifier head: the net returns the bottleneck (embedding) layer".to_string(),
        }),
        Some(None) => {
            if spec.num_classes().is_some() {
                let removed = drop_classifier(&spec, &mut weights);
                notes.push(format!("--num-classes none: left out {}", removed.join(", ")));
            }
            spec.set_num_classes(None);
        }
        Some(Some(n)) => spec.set_num_classes(Some(n)),
    }
    let mut model = tch::no_grad(|| Model::new(&spec, device))?;
    model.load(&weights)?;
    notes.insert(0, format!("net: {spec}"));
    Ok(Loaded { model, notes })
}

/// Removes the classifier's variables from `w`; returns their names.
fn drop_classifier(spec: &ArchSpec, w: &mut Weights) -> Vec<String> {
    let prefix = match spec {
        ArchSpec::ResNetV2(c) => format!("{}/logits/", c.scope),
        ArchSpec::InceptionResnetV1(_) => "Logits/".to_string(),
    };
    let names: Vec<String> = w.tensors.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
    for n in &names {
        w.tensors.remove(n);
    }
    names
}

/// Parses `--num-classes` (`N` or `none`).
pub fn parse_num_classes(s: &str) -> Result<Option<i64>> {
    match s {
        "none" | "None" | "0" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(Error::invalid(format!("--num-classes takes a positive number or 'none', got '{s}'"))),
        },
    }
}

//! Opening whatever weights a user has — a converted safetensors file or any TF checkpoint
//! (prefix, folder, `.zip`, `.tar.gz`) — and building the net they fit.

use crate::ckpt::Checkpoint;
use crate::convert::{ConvertOptions, Plan};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::models::{Arch, Hints, Task};
use crate::weights::Weights;
use std::collections::BTreeMap;
use std::path::Path;
use tch::Device;

/// The two kinds of weight files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// A safetensors file.
    Safetensors,
    /// Anything [`Checkpoint::open`] takes.
    TfCheckpoint,
}

impl WeightsFormat {
    /// Looks at the file itself: a safetensors file starts with a little-endian u64 header length
    /// followed by `{`. Folders, prefixes and archives are checkpoints.
    pub fn of(path: &Path) -> WeightsFormat {
        if crate::safetensors_file::looks_like(path) { WeightsFormat::Safetensors } else { WeightsFormat::TfCheckpoint }
    }
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The architecture's name (recognized from the names when `None`).
    pub arch: Option<String>,
    /// Custom ResNet v2 blocks (`BASExUNITS/STRIDE,…`), passed as the `slimzoo.blocks` hint.
    pub blocks: Option<String>,
    /// `Some(None)`: no classifier (the weights' classifier is left out); `Some(Some(n))`: `n`
    /// classes; `None`: as the weights have it.
    pub num_classes: Option<Option<i64>>,
    /// Filtering for TF checkpoints (EMA shadows, renames, …).
    pub convert: ConvertOptions,
}

/// A net with its weights loaded, and what was decided on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The net, loaded.
    pub model: Model,
    /// One line each, for people.
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

/// The `slimzoo.*` entries of `metadata`, with `blocks` (if given) as `slimzoo.blocks`.
pub fn hints(metadata: &BTreeMap<String, String>, blocks: Option<&str>) -> Hints {
    let mut h: Hints = metadata.iter().filter(|(k, _)| k.starts_with("slimzoo.")).map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(b) = blocks {
        h.insert("slimzoo.blocks".into(), b.to_string());
    }
    h
}

/// Loads the weights at `path` into the net they fit, strictly (the weights are moved into the
/// net, not copied).
///
/// ```
/// let ckpt = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny/v1/model.ckpt");
/// let loaded = slimzoo::load::load_model(&ckpt, &Default::default(), tch::Device::Cpu)?;
/// assert_eq!(loaded.model.arch().num_classes(), Some(7));
/// # Ok::<(), slimzoo::Error>(())
/// ```
pub fn load_model(path: &Path, opts: &LoadOptions, device: Device) -> Result<Loaded> {
    let (mut weights, mut notes) = read_weights(path, &opts.convert)?;
    let hints = hints(&weights.metadata, opts.blocks.as_deref());
    let tf = weights.tf_shapes();
    let mut arch = match &opts.arch {
        Some(name) => Arch::resolve(name, Some(&tf), &hints)?,
        None => Arch::detect(&tf, &hints)?,
    };
    match opts.num_classes {
        None => notes.push(match (arch.num_classes(), arch.task()) {
            (Some(n), _) => format!("{n} classes, from the weights' classifier"),
            (None, Task::Embedding { .. }) => "no classifier head: the net returns the bottleneck (embedding) layer".to_string(),
            (None, _) => "no classifier in the weights: the net returns features".to_string(),
        }),
        Some(None) => {
            if let (Some(_), Some(scope)) = (arch.num_classes(), arch.classifier_scope()) {
                let prefix = format!("{scope}/");
                let removed: Vec<String> = weights.tensors.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
                for n in &removed {
                    weights.tensors.remove(n);
                }
                notes.push(format!("no classifier: left out {}", removed.join(", ")));
            }
            arch = arch.with_num_classes(None)?;
        }
        Some(Some(n)) => arch = arch.with_num_classes(Some(n))?,
    }
    let model = Model::from_weights(&arch, weights, device)?;
    notes.insert(0, format!("net: {arch}"));
    Ok(Loaded { model, notes })
}

/// Parses a class count: `N` (1..=1048576) or `none`.
pub fn parse_num_classes(s: &str) -> Result<Option<i64>> {
    match s {
        "none" | "None" | "0" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(n) if (1..=crate::nn::build::MAX_DIM).contains(&n) => Ok(Some(n)),
            _ => Err(Error::invalid(format!("the number of classes must be in 1..={} or 'none', got '{s}'", crate::nn::build::MAX_DIM))),
        },
    }
}

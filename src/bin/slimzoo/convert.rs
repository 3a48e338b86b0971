//! `slimzoo convert`, `export` and `zoo`.

use crate::common::progress_bar;
use anyhow::{Context, Result};
use clap::Args;
use slimzoo::ckpt::Checkpoint;
use slimzoo::convert::{ConvertOptions, Plan, Rename};
use slimzoo::zoo;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Convert a TF checkpoint to safetensors under the exact TF variable names (tch layout).
#[derive(Debug, Args)]
pub struct Convert {
    /// Checkpoint prefix, .index/.data path, V1 file, folder, .zip or .tar.gz
    checkpoint: PathBuf,
    /// Output .safetensors file
    #[arg(short, long)]
    output: PathBuf,
    /// Architecture to validate names and shapes against (detected when absent); see `slimzoo zoo`
    /// for the names
    #[arg(long)]
    arch: Option<String>,
    /// Custom ResNet v2 blocks, BASExUNITS/STRIDE per block (e.g. 64x3/2,128x4/2,256x6/2,512x3/1)
    #[arg(long)]
    blocks: Option<String>,
    /// Use ExponentialMovingAverage shadows instead of the raw weights where they exist
    #[arg(long)]
    ema: bool,
    /// Keep facenet's training-only classifier head (Logits/*) and centers
    #[arg(long)]
    keep_head: bool,
    /// Rename variables: 'REGEX=REPLACEMENT' (first '=' separates; $1 for groups); repeatable, in order
    #[arg(long = "rename", value_name = "REGEX=REPLACEMENT")]
    renames: Vec<String>,
    /// Do not check the names against a net (for checkpoints of other nets)
    #[arg(long)]
    no_validate: bool,
    /// Overwrite the output if it exists
    #[arg(long)]
    force: bool,
}

impl Convert {
    pub fn options(&self) -> Result<ConvertOptions> {
        Ok(ConvertOptions {
            arch: self.arch.clone(),
            blocks: self.blocks.clone(),
            no_validate: self.no_validate,
            ema: self.ema,
            keep_head: self.keep_head,
            renames: self.renames.iter().map(|r| r.parse::<Rename>().with_context(|| format!("--rename {r:?}"))).collect::<Result<_>>()?,
        })
    }

    pub fn run(self) -> Result<()> {
        let opts = self.options()?;
        let ckpt = Checkpoint::open(&self.checkpoint).with_context(|| format!("cannot open {}", self.checkpoint.display()))?;
        let mut inputs = ckpt.files().to_vec();
        inputs.push(self.checkpoint.clone());
        slimzoo::io::check_output(&self.output, self.force, &inputs)?;
        eprintln!("slimzoo: reading {}", ckpt.description());
        let plan = Plan::new(&ckpt, &opts).with_context(|| format!("cannot convert {}", self.checkpoint.display()))?;
        eprintln!("slimzoo: net: {}", plan.arch_note);
        eprintln!("slimzoo: {}", plan.dropped_summary());
        if opts.ema {
            let missing = &plan.ema_missing;
            let listed = match missing.len() {
                0 => String::new(),
                1..=3 => format!(" and are kept as they are: {}", missing.join(", ")),
                n => format!(" and are kept as they are: {}, … and {} more", missing[..2].join(", "), n - 2),
            };
            eprintln!(
                "slimzoo: --ema: {} weights replaced by their ExponentialMovingAverage shadow; {} had none{listed}",
                plan.ema_used,
                missing.len()
            );
        }
        let mut extra = BTreeMap::new();
        if let Some(e) = zoo::lookup(&self.checkpoint) {
            eprintln!(
                "slimzoo: zoo file {}: {}, {} classes, trained on {}, {}; expects {}x{} input, {}",
                e.file,
                e.arch,
                e.classes,
                e.trained_on,
                e.accuracy,
                e.image_size,
                e.image_size,
                e.preprocessing.describe()
            );
            extra.insert("slimzoo.zoo".to_string(), e.file.to_string());
            extra.insert("slimzoo.preprocessing".to_string(), e.preprocessing.describe().to_string());
            extra.insert("slimzoo.image_size".to_string(), e.image_size.to_string());
        }
        let total: u64 = plan.tensors.iter().filter_map(|t| t.dtype.size().map(|s| s as u64 * t.tf_shape.iter().product::<u64>())).sum();
        let bar = progress_bar(total, "converting");
        plan.write_safetensors(&ckpt, &self.output, self.force, &extra, &|done, _| bar.set_position(done))
            .with_context(|| format!("cannot write {}", self.output.display()))?;
        bar.finish_and_clear();
        eprintln!("slimzoo: wrote {} tensors ({:.1} MB) to {}", plan.tensors.len(), total as f64 / 1e6, self.output.display());
        Ok(())
    }
}

/// Write a safetensors file (TF names, tch layout) back as a V2 TF checkpoint.
#[derive(Debug, Args)]
pub struct Export {
    /// A .safetensors file as `convert` writes it
    input: PathBuf,
    /// Checkpoint prefix to write (PREFIX.index, PREFIX.data-00000-of-00001; its folder is
    /// created if needed, as TF does)
    #[arg(short, long)]
    output: PathBuf,
    /// Overwrite an existing checkpoint
    #[arg(long)]
    force: bool,
}

impl Export {
    pub fn run(self) -> Result<()> {
        let n = slimzoo::convert::export(&self.input, &self.output, self.force)
            .with_context(|| format!("cannot export {} to {}", self.input.display(), self.output.display()))?;
        eprintln!("slimzoo: wrote {n} tensors to {}.index/.data-00000-of-00001", self.output.display());
        Ok(())
    }
}

/// List the published checkpoints slimzoo knows by file name.
#[derive(Debug, Args)]
pub struct Zoo {}

impl Zoo {
    pub fn run(self) -> Result<()> {
        println!("{:<32} {:<20} {:>7} {:>5}  {:<16} {:<14} preprocessing", "file", "arch", "classes", "size", "trained on", "accuracy");
        for e in slimzoo::models::zoo() {
            let classes = if e.embedding > 0 { format!("{}d", e.embedding) } else { e.classes.to_string() };
            println!(
                "{:<32} {:<20} {:>7} {:>5}  {:<16} {:<14} {}",
                e.file,
                e.arch,
                classes,
                e.image_size,
                e.trained_on,
                e.accuracy,
                e.preprocessing.describe()
            );
        }
        println!("(ResNet v2: 1001 classes, index 0 = background. facenet: 512-d embeddings; its Logits head is left out.)");
        Ok(())
    }
}

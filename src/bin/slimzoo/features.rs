//! `slimzoo features`: run a net and save slim's end points, as TF computes them.

use crate::common::{
    JpegDct, ModelInput, check_device, check_output, load_weights, non_finite_rows, parse_device, warn_non_finite, write_nhwc,
};
use anyhow::{Context, Result, bail};
use clap::Args;
use slimzoo::convert::{ConvertOptions, Rename};
use slimzoo::load::{LoadOptions, parse_num_classes};
use slimzoo::models::Task;
use slimzoo::{EndPoints, NetOptions, Rewrites, RunOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// `--num-classes`: a class count, or `none` (also `0`, as slim's `if num_classes:`) for a net
/// without logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumClasses(pub Option<i64>);

fn num_classes(s: &str) -> Result<NumClasses, String> {
    parse_num_classes(s.trim()).map(NumClasses).map_err(|e| e.to_string())
}

/// Run a net on a batch and write its end points (NHWC, slim's keys), its final output ('output')
/// and, for facenet, the embeddings ('embeddings') to safetensors.
#[derive(Debug, Args)]
pub struct Features {
    /// Architecture (detected from the weights when absent)
    #[arg(long)]
    pub arch: Option<String>,
    /// Custom ResNet v2 blocks, BASExUNITS/STRIDE per block
    #[arg(long)]
    pub blocks: Option<String>,
    /// Converted .safetensors, or a TF checkpoint (converted in memory)
    #[arg(long)]
    pub weights: PathBuf,
    /// A float32 NHWC .npy batch (fed as is), or image files/folders (preprocessed for the arch)
    #[arg(long, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Output .safetensors
    #[arg(short, long)]
    pub output: PathBuf,
    /// Classes of the logits layer (1..=1048576), or 'none' (or 0) for features (default: as in
    /// the weights)
    #[arg(long, value_parser = num_classes, allow_negative_numbers = true)]
    pub num_classes: Option<NumClasses>,
    /// ResNet v2 output stride (1..=1024): a multiple of 4 that the blocks reach (4, 8, 16 or 32
    /// for the zoo's nets); atrous convolution past it
    #[arg(long, value_parser = crate::int_in(1i64, 1024), allow_negative_numbers = true)]
    pub output_stride: Option<i64>,
    /// ResNet v2: no global average pooling (fully convolutional)
    #[arg(long)]
    pub no_global_pool: bool,
    /// ResNet v2: keep logits [B,1,1,C] instead of [B,C]
    #[arg(long)]
    pub no_spatial_squeeze: bool,
    /// Only these end points (comma-separated keys)
    #[arg(long, value_delimiter = ',')]
    pub end_points: Option<Vec<String>>,
    /// Image size for image inputs, 1..=4096 (default: 299 for ResNet v2 zoo weights, 160 for facenet)
    #[arg(long, value_parser = crate::int_in(1usize, 4096), allow_negative_numbers = true)]
    pub image_size: Option<usize>,
    /// JPEG decoding of image inputs: fast (TF's default decode_jpeg, as TF-slim's input pipelines) or
    /// accurate (decode_jpeg's INTEGER_ACCURATE)
    #[arg(long, value_enum, default_value = "fast")]
    pub jpeg_dct: JpegDct,
    /// Use ExponentialMovingAverage shadows of a TF checkpoint
    #[arg(long)]
    pub ema: bool,
    /// Rename variables of a TF checkpoint: 'REGEX=REPLACEMENT', repeatable
    #[arg(long = "rename", value_name = "REGEX=REPLACEMENT")]
    pub renames: Vec<String>,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Inference rewrites: all (default), none (the reference forward pass), or fold,channels-last,fused
    #[arg(long, default_value = "all")]
    pub rewrites: String,
    /// Split the batch into N sub-batches run in parallel, each with threads/N intra-op threads
    /// (1..=64; default 1)
    #[arg(long, default_value_t = 1, value_parser = crate::int_in(1usize, 64), allow_negative_numbers = true)]
    pub streams: usize,
    /// Overwrite the output
    #[arg(long)]
    pub force: bool,
}

impl Features {
    pub fn load_options(&self) -> Result<LoadOptions> {
        Ok(LoadOptions {
            arch: self.arch.clone(),
            blocks: self.blocks.clone(),
            num_classes: self.num_classes.map(|n| n.0),
            convert: ConvertOptions {
                ema: self.ema,
                renames: self
                    .renames
                    .iter()
                    .map(|r| r.parse::<Rename>().with_context(|| format!("--rename {r:?}")))
                    .collect::<Result<_>>()?,
                ..Default::default()
            },
        })
    }

    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            net: NetOptions {
                global_pool: !self.no_global_pool,
                output_stride: self.output_stride,
                spatial_squeeze: !self.no_spatial_squeeze,
            },
            ..Default::default()
        }
    }

    pub fn run(self) -> Result<()> {
        let device = check_device(parse_device(&self.device)?)?;
        let rewrites = Rewrites::parse(&self.rewrites)?;
        let load = self.load_options()?;
        // The inputs and the output before the weights: a bad file is reported before any work.
        let input = ModelInput::gather(&self.input)?;
        check_output(&self.output, self.force, &self.weights, &input.files())?;
        let loaded = load_weights(&self.weights, &load, device)?;
        let model = loaded.model.freeze(rewrites)?;
        drop(loaded.model);
        let x = input.batch(model.arch(), self.image_size, self.jpeg_dct.tf_decoder())?;
        let mut ep = match &self.end_points {
            Some(keys) => EndPoints::only(keys.iter().cloned()),
            None => EndPoints::all(),
        };
        let out = tch::no_grad(|| model.forward_streams(&x, &self.run_options(), &mut ep, self.streams))?;
        let missing = ep.unmatched();
        if !missing.is_empty() {
            bail!("no end point named {} (this net has: {})", missing.join(", "), ep.available().join(", "));
        }
        let mut tensors: Vec<(String, tch::Tensor)> = ep.into_vec();
        if let Task::Embedding { epsilon } = model.arch().task() {
            // facenet's `embeddings` tensor: l2_normalize(Bottleneck output, epsilon 1e-10).
            tensors.push(("embeddings".to_string(), slimzoo::nn::tf::l2_normalize(&out, epsilon)?));
        }
        tensors.push(("output".to_string(), out));
        let meta = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("slimzoo.layout".to_string(), "NHWC (TF's), float32".to_string()),
            ("slimzoo.net".to_string(), model.arch().to_string()),
            ("slimzoo.options".to_string(), format!("{:?}", self.run_options())),
        ]);
        write_nhwc(&self.output, self.force, &tensors, meta)?;
        eprintln!("slimzoo: wrote {} tensors to {}", tensors.len(), self.output.display());
        for (k, t) in &tensors {
            eprintln!("  {k} {:?}", slimzoo::nn::to_nhwc(t).size());
        }
        warn_non_finite_tensors(&tensors, &input.labels())
    }
}

/// Warns about the batch rows with NaN or infinities in any of `tensors`, naming the rows and
/// the tensors.
fn warn_non_finite_tensors(tensors: &[(String, tch::Tensor)], labels: &[String]) -> Result<()> {
    let (mut rows, mut keys) = (BTreeSet::new(), Vec::new());
    for (k, t) in tensors {
        let bad = non_finite_rows(t)?;
        if !bad.is_empty() {
            keys.push(k.as_str());
            rows.extend(bad);
        }
    }
    let listed = match keys.as_slice() {
        [] => return Ok(()),
        [a] => a.to_string(),
        [a, b] => format!("{a} and {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    };
    let context = format!("of the batch (in {} of {} tensors: {listed})", keys.len(), tensors.len());
    warn_non_finite(&rows.into_iter().collect::<Vec<_>>(), labels, &context);
    Ok(())
}

//! `slimzoo features`: run a net and save slim's end points, as TF computes them.

use crate::common::{JpegDct, check_device, model_input, note, parse_device, write_nhwc};
use anyhow::{Context, Result, bail};
use clap::Args;
use slimzoo::convert::{ConvertOptions, Rename};
use slimzoo::load::{LoadOptions, load_model, parse_num_classes};
use slimzoo::models::Task;
use slimzoo::{EndPoints, NetOptions, Rewrites, RunOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Classes of the logits layer, or 'none' for features (default: as in the weights)
    #[arg(long)]
    pub num_classes: Option<String>,
    /// ResNet v2 output stride: 4, 8, 16 or 32 (atrous convolution past it)
    #[arg(long)]
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
    /// Image size for image inputs (default: 299 for ResNet v2 zoo weights, 160 for facenet)
    #[arg(long)]
    pub image_size: Option<i64>,
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
    /// Overwrite the output
    #[arg(long)]
    pub force: bool,
}

impl Features {
    pub fn load_options(&self) -> Result<LoadOptions> {
        Ok(LoadOptions {
            arch: self.arch.clone(),
            blocks: self.blocks.clone(),
            num_classes: self.num_classes.as_deref().map(parse_num_classes).transpose()?,
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
        if !self.force && self.output.exists() {
            bail!("{} already exists (use --force to overwrite)", self.output.display());
        }
        let loaded =
            load_model(&self.weights, &self.load_options()?, device).with_context(|| format!("cannot load {}", self.weights.display()))?;
        note(&loaded.notes);
        let model = loaded.model.freeze(Rewrites::parse(&self.rewrites)?)?;
        drop(loaded.model);
        let x = model_input(&self.input, model.arch(), self.image_size, self.jpeg_dct.tf_decoder())?;
        let mut ep = match &self.end_points {
            Some(keys) => EndPoints::only(keys.iter().cloned()),
            None => EndPoints::all(),
        };
        let out = tch::no_grad(|| model.forward(&x, &self.run_options(), &mut ep))?;
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
        Ok(())
    }
}

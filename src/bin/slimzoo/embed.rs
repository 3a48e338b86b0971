//! `slimzoo embed` and `slimzoo compare`: facenet embeddings of aligned face images.

use crate::common::{check_device, collect_images, nhwc_to_nchw, note, parse_device, progress_bar, read_npy_batch};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use slimzoo::load::{LoadOptions, load_model};
use slimzoo::models::Task;
use slimzoo::preprocess::{self, Image, Standardize};
use slimzoo::{EndPoints, Frozen, Rewrites, RunOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Std {
    /// (x - 127.5) / 128, what the 2018 models were trained with
    Fixed,
    /// per-image (x - mean) / max(std, 1/sqrt(N)), facenet's prewhiten
    Prewhiten,
}

/// Files embedded (rows of the tensor, in order) and files that failed, with why.
type Embedded = (Vec<PathBuf>, Tensor, Vec<(PathBuf, String)>);

/// What embed and compare share: the weights and the preprocessing.
#[derive(Debug, Args)]
pub struct FaceArgs {
    /// facenet weights: converted .safetensors, a TF checkpoint, or a release .zip
    #[arg(long)]
    weights: PathBuf,
    /// Image standardization
    #[arg(long, value_enum, default_value = "fixed")]
    standardize: Std,
    /// Side of the (square) input; images of another size are resized with TF's bilinear resize
    #[arg(long, default_value_t = 160)]
    image_size: usize,
    /// Also embed the mirrored image and concatenate, as facenet's evaluation does
    #[arg(long)]
    flip: bool,
    /// Images per forward pass
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl FaceArgs {
    fn load(&self) -> Result<Frozen> {
        let device = check_device(parse_device(&self.device)?)?;
        let loaded = load_model(&self.weights, &LoadOptions::default(), device)
            .with_context(|| format!("cannot load {}", self.weights.display()))?;
        note(&loaded.notes);
        if !matches!(loaded.model.arch().task(), Task::Embedding { .. }) {
            bail!("{} is a {}, not a net that computes embeddings", self.weights.display(), loaded.model.arch());
        }
        Ok(loaded.model.freeze(Rewrites::default())?)
    }

    fn preprocess(&self, img: &Image) -> Image {
        let how = match self.standardize {
            Std::Fixed => Standardize::Fixed,
            Std::Prewhiten => Standardize::Prewhiten,
        };
        preprocess::facenet(img, self.image_size, how)
    }

    /// Embeddings of an NCHW batch: l2_normalize(Bottleneck output), concatenated with those of
    /// the mirrored batch when `--flip`.
    fn embed_batch(&self, model: &Frozen, x: &Tensor) -> Result<Tensor> {
        let Task::Embedding { epsilon } = model.arch().task() else { bail!("{} computes no embeddings", model.arch()) };
        let run = |x: &Tensor| -> Result<Tensor> {
            let pre = model.forward(x, &RunOptions::default(), &mut EndPoints::none())?;
            Ok(slimzoo::nn::tf::l2_normalize(&pre, epsilon)?.f_to_device(Device::Cpu)?)
        };
        let e = run(x)?;
        if !self.flip {
            return Ok(e);
        }
        let mirrored = x.f_flip([3])?;
        Ok(Tensor::f_cat(&[e, run(&mirrored)?], 1)?)
    }

    /// Embeds every image file; files that fail to decode are reported and skipped.
    fn embed_files(&self, model: &Frozen, files: &[PathBuf]) -> Result<Embedded> {
        let bar = progress_bar(files.len() as u64, "embedding");
        let (mut ok, mut failed, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in files.chunks(self.batch.max(1)) {
            let mut images = Vec::new();
            for f in chunk {
                match preprocess::load_rgb(f) {
                    Ok(img) => {
                        images.push(self.preprocess(&img));
                        ok.push(f.clone());
                    }
                    Err(e) => {
                        eprintln!("slimzoo: skipping {}: {e}", f.display());
                        failed.push((f.clone(), e.to_string()));
                    }
                }
            }
            if !images.is_empty() {
                let (shape, data) = preprocess::stack(&images)?;
                rows.push(self.embed_batch(model, &nhwc_to_nchw(&shape, &data)?)?);
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        if rows.is_empty() {
            bail!("no image could be embedded ({} failed)", failed.len());
        }
        Ok((ok, Tensor::f_cat(&rows, 0)?, failed))
    }
}

/// Compute facenet embeddings of aligned face images (or of a preprocessed NHWC .npy batch).
#[derive(Debug, Args)]
pub struct Embed {
    #[command(flatten)]
    face: FaceArgs,
    /// Image files or folders of aligned faces
    images: Vec<PathBuf>,
    /// A preprocessed float32 NHWC .npy batch instead of images
    #[arg(long, conflicts_with = "images")]
    input: Option<PathBuf>,
    /// Output: .npy ([N, D] float32), .csv (file name, then D values) or .safetensors; default CSV on stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Overwrite the output
    #[arg(long)]
    force: bool,
}

impl Embed {
    pub fn run(self) -> Result<()> {
        let model = self.face.load()?;
        let (names, emb, failed) = match &self.input {
            Some(npy) => {
                let x = read_npy_batch(npy)?;
                let n = x.size()[0];
                let names = (0..n).map(|i| PathBuf::from(format!("{}[{i}]", npy.display()))).collect();
                let rows: Vec<Tensor> = (0..n)
                    .step_by(self.face.batch.max(1))
                    .map(|s| self.face.embed_batch(&model, &x.narrow(0, s, (self.face.batch as i64).min(n - s))))
                    .collect::<Result<_>>()?;
                (names, Tensor::f_cat(&rows, 0)?, vec![])
            }
            None => {
                if self.images.is_empty() {
                    bail!("give image files/folders or --input X.npy");
                }
                self.face.embed_files(&model, &collect_images(&self.images)?)?
            }
        };
        write_embeddings(self.output.as_deref(), self.force, &names, &emb)?;
        eprintln!("slimzoo: {} embeddings of dimension {}", emb.size()[0], emb.size()[1]);
        if !failed.is_empty() {
            let list: Vec<String> = failed.iter().map(|(f, e)| format!("  {}: {e}", f.display())).collect();
            bail!("{} files could not be embedded:\n{}", failed.len(), list.join("\n"));
        }
        Ok(())
    }
}

fn write_embeddings(out: Option<&Path>, force: bool, names: &[PathBuf], emb: &Tensor) -> Result<()> {
    let d = slimzoo::safetensors_file::tensor_data(&emb.f_to_kind(tch::Kind::Float)?)?;
    let (n, dim) = (d.shape[0] as usize, d.shape[1] as usize);
    let vals: Vec<f32> = d.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let csv = |w: &mut dyn Write| -> std::io::Result<()> {
        for (i, name) in names.iter().enumerate() {
            write!(w, "{}", name.display())?;
            for v in &vals[i * dim..(i + 1) * dim] {
                write!(w, ",{v}")?;
            }
            writeln!(w)?;
        }
        Ok(())
    };
    let Some(out) = out else {
        return Ok(csv(&mut std::io::stdout().lock())?);
    };
    match out.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            slimzoo::npy::write(out, force, &[n, dim], &vals)?;
        }
        Some("csv") => slimzoo::io::write_atomic_buffered(out, force, |w| csv(w))?,
        Some("safetensors") => {
            let files: Vec<String> = names.iter().map(|p| p.display().to_string()).collect();
            let meta = std::collections::BTreeMap::from([("files".to_string(), serde_json::to_string(&files)?)]);
            crate::common::write_nhwc(out, force, &[("embeddings".to_string(), emb.shallow_clone())], meta)?;
        }
        _ => bail!("{}: the output must end in .npy, .csv or .safetensors", out.display()),
    }
    Ok(())
}

/// Print the distance matrix of face images' embeddings, as facenet's compare.py does.
#[derive(Debug, Args)]
pub struct Compare {
    #[command(flatten)]
    face: FaceArgs,
    /// Aligned face images (two or more)
    #[arg(required = true, num_args = 2..)]
    images: Vec<PathBuf>,
    /// Cosine distance (1 - cosine similarity) instead of Euclidean
    #[arg(long)]
    cosine: bool,
}

impl Compare {
    pub fn run(self) -> Result<()> {
        let model = self.face.load()?;
        let (names, emb, failed) = self.face.embed_files(&model, &self.images)?;
        println!("Images:");
        for (i, n) in names.iter().enumerate() {
            println!("{i}: {}", n.display());
        }
        println!();
        println!("Distance matrix ({})", if self.cosine { "cosine: 1 - cos" } else { "Euclidean" });
        print!("    ");
        for i in 0..names.len() {
            print!("    {i}     ");
        }
        println!();
        let n = names.len() as i64;
        for i in 0..n {
            print!("{i}  ");
            for j in 0..n {
                let (a, b) = (emb.get(i), emb.get(j));
                let d = if self.cosine {
                    let cos = a.dot(&b).double_value(&[]) / (a.norm().double_value(&[]) * b.norm().double_value(&[])).max(1e-12);
                    1.0 - cos
                } else {
                    (&a - &b).square().sum(tch::Kind::Double).sqrt().double_value(&[])
                };
                print!("  {d:1.4}  ");
            }
            println!();
        }
        if !failed.is_empty() {
            bail!("{} files could not be embedded", failed.len());
        }
        Ok(())
    }
}

//! `slimzoo embed` and `slimzoo compare`: facenet embeddings of aligned face images.

use crate::common::{
    JpegDct, ModelInput, check_device, check_output, collect_images, load_weights, nhwc_to_nchw, non_finite_rows, note_skipped,
    parse_device, progress_bar, read_npy_batch, reason, warn_non_finite,
};
use crate::faces::{DetectArgs, detect_files};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use slimzoo::load::LoadOptions;
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

/// One row of the embeddings: the image, and with `--detect` which face of it.
#[derive(Debug, Clone)]
struct Row {
    file: PathBuf,
    face: Option<(usize, slimzoo::faces::Face)>,
}

impl Row {
    fn label(&self) -> String {
        match &self.face {
            None => self.file.display().to_string(),
            Some((i, _)) => format!("{}#{i}", self.file.display()),
        }
    }
}

/// Rows embedded (of the tensor, in order) and files that failed, with why.
type Embedded = (Vec<Row>, Tensor, Vec<(PathBuf, String)>);

/// What embed and compare share: the weights and the preprocessing.
#[derive(Debug, Args)]
pub struct FaceArgs {
    /// facenet weights: converted .safetensors, a TF checkpoint, or a release .zip
    #[arg(long)]
    weights: PathBuf,
    /// Image standardization
    #[arg(long, value_enum, default_value = "fixed")]
    standardize: Std,
    /// Side of the (square) input, 1..=4096; images of another size are resized with TF's bilinear resize
    #[arg(long, default_value_t = 160, value_parser = crate::int_in(1usize, 4096), allow_negative_numbers = true)]
    image_size: usize,
    /// Also embed the mirrored image and concatenate, as facenet's evaluation does
    #[arg(long)]
    flip: bool,
    /// Split each batch into N sub-batches run in parallel, each with threads/N intra-op threads
    /// (1..=64; default 1)
    #[arg(long, default_value_t = 1, value_parser = crate::int_in(1usize, 64), allow_negative_numbers = true)]
    streams: usize,
    /// Images per forward pass, 1..=1024
    #[arg(long, default_value_t = 32, value_parser = crate::int_in(1usize, 1024), allow_negative_numbers = true)]
    batch: usize,
    /// JPEG decoding: accurate (Pillow's, what facenet's compare.py reads images with) or fast (TF's default
    /// decode_jpeg, as facenet's TF input pipelines)
    #[arg(long, value_enum, default_value = "accurate")]
    jpeg_dct: JpegDct,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The images are photos: find every face with facenet's MTCNN, crop it as align_dataset_mtcnn.py
    /// does (--margin, --image-size), and embed each face (one row per face)
    #[arg(long)]
    detect: bool,
    /// With --detect: pixels added around each face box in total (half on each side), 0..=100000
    #[arg(long, default_value_t = 44.0, value_parser = crate::float_in(0.0, 1e5), allow_negative_numbers = true)]
    margin: f64,
    #[command(flatten)]
    mtcnn: DetectArgs,
}

impl FaceArgs {
    /// Checks what can be checked before any work: the device and, with `--detect`, the
    /// detection options.
    fn check(&self) -> Result<Device> {
        if self.detect {
            self.mtcnn.options()?;
        }
        check_device(parse_device(&self.device)?)
    }

    fn load(&self, device: Device) -> Result<Frozen> {
        let loaded = load_weights(&self.weights, &LoadOptions::default(), device)?;
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
            let pre = model.forward_streams(x, &RunOptions::default(), &mut EndPoints::none(), self.streams)?;
            Ok(slimzoo::nn::tf::l2_normalize(&pre, epsilon)?.f_to_device(Device::Cpu)?)
        };
        let e = run(x)?;
        if !self.flip {
            return Ok(e);
        }
        let mirrored = x.f_flip([3])?;
        Ok(Tensor::f_cat(&[e, run(&mirrored)?], 1)?)
    }

    /// Embeds the images, or with `--detect` every face of the photos, or a prepared batch.
    fn embed_inputs(&self, model: &Frozen, input: &ModelInput) -> Result<Embedded> {
        match input {
            ModelInput::Images(files) if self.detect => self.embed_faces(model, files),
            ModelInput::Images(files) => self.embed_files(model, files),
            ModelInput::Array(_, x) => {
                let n = x.size()[0];
                let rows = input.labels().into_iter().map(|l| Row { file: PathBuf::from(l), face: None }).collect();
                let batch = self.batch as i64;
                let embs: Vec<Tensor> = (0..n)
                    .step_by(self.batch)
                    .map(|s| self.embed_batch(model, &x.f_narrow(0, s, batch.min(n - s))?))
                    .collect::<Result<_>>()?;
                Ok((rows, Tensor::f_cat(&embs, 0)?, vec![]))
            }
        }
    }

    /// Finds every face of every photo, crops it like align_dataset_mtcnn.py and embeds it.
    fn embed_faces(&self, model: &Frozen, files: &[PathBuf]) -> Result<Embedded> {
        let align = slimzoo::faces::align::AlignOptions { image_size: self.image_size, margin: self.margin };
        let (mut rows, mut embs, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        let mut pending: Vec<Image> = Vec::new();
        let decoder = self.jpeg_dct.facenet_decoder();
        detect_files(&self.mtcnn, decoder, self.batch, files, |d| {
            let (img, faces) = match d.result {
                Ok(r) => r,
                Err(e) => {
                    failed.push((d.file, e));
                    return Ok(());
                }
            };
            for (i, face) in faces.into_iter().enumerate() {
                let (crop, _) =
                    slimzoo::faces::align::aligned(&img, &face, &align).with_context(|| format!("{}: face {i}", d.file.display()))?;
                pending.push(self.preprocess(&Image::from_rgb8(&crop)?));
                rows.push(Row { file: d.file.clone(), face: Some((i, face)) });
                if pending.len() == self.batch {
                    let (shape, data) = preprocess::stack(&pending)?;
                    embs.push(self.embed_batch(model, &nhwc_to_nchw(&shape, &data)?)?);
                    pending.clear();
                }
            }
            Ok(())
        })?;
        if !pending.is_empty() {
            let (shape, data) = preprocess::stack(&pending)?;
            embs.push(self.embed_batch(model, &nhwc_to_nchw(&shape, &data)?)?);
        }
        if rows.is_empty() {
            bail!("no face found in {} ({} could not be read)", files.len(), failed.len());
        }
        Ok((rows, Tensor::f_cat(&embs, 0)?, failed))
    }

    /// Embeds every image file; files that fail to decode are reported and skipped.
    fn embed_files(&self, model: &Frozen, files: &[PathBuf]) -> Result<Embedded> {
        let bar = progress_bar(files.len() as u64, "embedding");
        let (mut ok, mut failed, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in files.chunks(self.batch) {
            let mut images = Vec::new();
            for f in chunk {
                match preprocess::load_rgb(f, self.jpeg_dct.facenet_decoder()) {
                    Ok(img) => {
                        images.push(self.preprocess(&img));
                        ok.push(Row { file: f.clone(), face: None });
                    }
                    Err(e) => {
                        note_skipped(f, &e.to_string());
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
    #[arg(required_unless_present = "input")]
    images: Vec<PathBuf>,
    /// A preprocessed float32 NHWC .npy batch instead of images
    #[arg(long, conflicts_with_all = ["images", "detect"])]
    input: Option<PathBuf>,
    /// Output: .npy ([N, D] float32), .csv (file name, then D values; RFC 4180) or .safetensors; default CSV on stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Overwrite the output
    #[arg(long)]
    force: bool,
}

impl Embed {
    pub fn run(self) -> Result<()> {
        // Options, inputs and the output before the weights: nothing is computed in vain.
        let format = self.output.as_deref().map(OutFormat::of).transpose()?;
        let device = self.face.check()?;
        let input = match &self.input {
            Some(npy) => ModelInput::Array(npy.clone(), read_npy_batch(npy)?),
            None => ModelInput::Images(collect_images(&self.images)?),
        };
        if let Some(out) = &self.output {
            check_output(out, self.force, &self.face.weights, &input.files())?;
        }
        let model = self.face.load(device)?;
        let (rows, emb, failed) = self.face.embed_inputs(&model, &input)?;
        write_embeddings(self.output.as_deref().zip(format), self.force, &rows, &emb)?;
        eprintln!("slimzoo: {} embeddings of dimension {}", emb.size()[0], emb.size()[1]);
        let labels: Vec<String> = rows.iter().map(Row::label).collect();
        warn_non_finite(&non_finite_rows(&emb)?, &labels, "of the embeddings");
        if !failed.is_empty() {
            let list: Vec<String> = failed.iter().map(|(f, e)| format!("  {}: {}", f.display(), reason(f, e))).collect();
            bail!("{} files could not be embedded:\n{}", failed.len(), list.join("\n"));
        }
        Ok(())
    }
}

/// What `embed -o` writes, from the output's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutFormat {
    Csv,
    Npy,
    Safetensors,
}

impl OutFormat {
    fn of(path: &Path) -> Result<OutFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Ok(OutFormat::Csv),
            Some("npy") => Ok(OutFormat::Npy),
            Some("safetensors") => Ok(OutFormat::Safetensors),
            _ => bail!("{}: the output must end in .npy, .csv or .safetensors", path.display()),
        }
    }
}

/// A CSV field per RFC 4180: quoted (quotes doubled) when it holds a comma, a quote or a line
/// break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Writes the embeddings: CSV rows `file,values…` (with `--detect`: `file,face,x1,y1,x2,y2,score,values…`),
/// `.npy` `[N, D]` float32, or `.safetensors` (`embeddings` plus the rows in the metadata).
fn write_embeddings(out: Option<(&Path, OutFormat)>, force: bool, rows: &[Row], emb: &Tensor) -> Result<()> {
    let d = slimzoo::safetensors_file::tensor_data(&emb.f_to_kind(tch::Kind::Float)?)?;
    let (n, dim) = (d.shape[0] as usize, d.shape[1] as usize);
    let vals: Vec<f32> = d.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let csv = |w: &mut dyn Write| -> std::io::Result<()> {
        for (i, row) in rows.iter().enumerate() {
            write!(w, "{}", csv_field(&row.file.display().to_string()))?;
            if let Some((k, f)) = &row.face {
                write!(w, ",{k},{},{},{},{},{}", f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3], f.score)?;
            }
            for v in &vals[i * dim..(i + 1) * dim] {
                write!(w, ",{v}")?;
            }
            writeln!(w)?;
        }
        Ok(())
    };
    let Some((out, format)) = out else {
        return Ok(csv(&mut std::io::stdout().lock())?);
    };
    match format {
        OutFormat::Npy => slimzoo::npy::write(out, force, &[n, dim], &vals)?,
        OutFormat::Csv => slimzoo::io::write_atomic_buffered(out, force, |w| csv(w))?,
        OutFormat::Safetensors => {
            let files: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| match &r.face {
                    None => serde_json::json!(r.file.display().to_string()),
                    Some((k, f)) => serde_json::json!({"file": r.file.display().to_string(), "face": k, "box": f.bbox, "score": f.score}),
                })
                .collect();
            let meta = std::collections::BTreeMap::from([("files".to_string(), serde_json::to_string(&files)?)]);
            crate::common::write_nhwc(out, force, &[("embeddings".to_string(), emb.shallow_clone())], meta)?;
        }
    }
    Ok(())
}

/// Print the distance matrix of face images' embeddings, as facenet's compare.py does.
#[derive(Debug, Args)]
pub struct Compare {
    #[command(flatten)]
    face: FaceArgs,
    /// Aligned face images (two or more), or photos with --detect
    #[arg(required = true, num_args = 1..)]
    images: Vec<PathBuf>,
    /// Cosine distance (1 - cosine similarity) instead of Euclidean
    #[arg(long)]
    cosine: bool,
}

impl Compare {
    pub fn run(self) -> Result<()> {
        let device = self.face.check()?;
        let files = collect_images(&self.images)?;
        if !self.face.detect && files.len() < 2 {
            bail!("compare needs two or more face images, got {}", files.len());
        }
        let model = self.face.load(device)?;
        let (rows, emb, failed) = self.face.embed_inputs(&model, &ModelInput::Images(files))?;
        if rows.len() < 2 {
            bail!("compare needs two or more faces, got {}", rows.len());
        }
        let (n, dim) = (rows.len(), emb.size()[1] as usize);
        let vals = Vec::<f64>::try_from(&emb.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?)?;
        let v: Vec<&[f64]> = vals.chunks_exact(dim).collect();
        println!("Images:");
        for (i, r) in rows.iter().enumerate() {
            println!("{i}: {}", r.label());
        }
        println!();
        println!("Distance matrix ({})", if self.cosine { "cosine: 1 - cos" } else { "Euclidean" });
        print!("    ");
        for i in 0..n {
            print!("    {i}     ");
        }
        println!();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        for i in 0..n {
            print!("{i}  ");
            for j in 0..n {
                let (a, b) = (v[i], v[j]);
                let d = if self.cosine {
                    1.0 - dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt()).max(1e-12)
                } else {
                    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
                };
                print!("  {d:1.4}  ");
            }
            println!();
        }
        let labels: Vec<String> = rows.iter().map(Row::label).collect();
        warn_non_finite(&non_finite_rows(&emb)?, &labels, "of the embeddings");
        if !failed.is_empty() {
            bail!("{} files could not be embedded", failed.len());
        }
        Ok(())
    }
}

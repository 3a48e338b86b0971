//! Helpers shared by the subcommands: devices, inputs, outputs, progress.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use slimzoo::arch::ArchSpec;
use slimzoo::ckpt::{DType, TensorData};
use slimzoo::convert::{StEntry, write_safetensors};
use slimzoo::models::endpoints::to_nhwc;
use slimzoo::preprocess::{self, Image};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// `--device cpu|cuda|cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Ok(Device::Cuda(n)),
            None => bail!("unknown device '{s}' (cpu, cuda or cuda:N)"),
        },
    }
}

/// Checks that the device exists before any work is done.
pub fn check_device(d: Device) -> Result<Device> {
    if let Device::Cuda(n) = d {
        let count = tch::Cuda::device_count();
        if n as i64 >= count {
            bail!("CUDA device {n} requested, but {count} CUDA devices are available");
        }
    }
    Ok(d)
}

/// An NHWC float32 batch from a `.npy` file.
pub fn read_npy_batch(path: &Path) -> Result<Tensor> {
    let a = slimzoo::npy::read(path)?;
    if a.shape.len() != 4 || a.shape[3] != 3 {
        bail!("{}: expected an NHWC batch [N, H, W, 3], got shape {:?}", path.display(), a.shape);
    }
    nhwc_to_nchw(&a.shape, &a.data)
}

/// An NCHW tensor from NHWC data.
pub fn nhwc_to_nchw(shape: &[usize], data: &[f32]) -> Result<Tensor> {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::f_from_slice(data)?.f_view(dims.as_slice())?.f_permute([0, 3, 1, 2])?.f_contiguous()?)
}

/// True when `path` starts with numpy's magic.
pub fn is_npy(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 6];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"\x93NUMPY"
}

/// Image files given directly or found in folders (sorted), with their decoding.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    const EXT: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"];
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = walk(p).with_context(|| format!("listing {}", p.display()))?;
            files.retain(|f| f.extension().is_some_and(|e| EXT.contains(&e.to_string_lossy().to_lowercase().as_str())));
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() { out.extend(walk(&p)?) } else { out.push(p) }
    }
    Ok(out)
}

/// The model input for `inputs`: one `.npy` NHWC batch as is, or image files preprocessed the way
/// the architecture's zoo weights expect (ResNet v2: inception at `size`, default 299; facenet:
/// fixed standardization at 160).
pub fn model_input(inputs: &[PathBuf], spec: &ArchSpec, size: Option<i64>) -> Result<Tensor> {
    if let [one] = inputs {
        if is_npy(one) {
            return read_npy_batch(one);
        }
    }
    let files = collect_images(inputs)?;
    if files.is_empty() {
        bail!("no input images found in {inputs:?}");
    }
    let images = files
        .iter()
        .map(|f| {
            let img = preprocess::load_rgb(f)?;
            Ok(match spec {
                ArchSpec::ResNetV2(_) => preprocess::inception_eval(&img, size.unwrap_or(299) as usize),
                ArchSpec::InceptionResnetV1(_) => {
                    preprocess::facenet(&img, size.unwrap_or(160) as usize, preprocess::Standardize::Fixed)
                }
            })
        })
        .collect::<Result<Vec<Image>>>()?;
    let (shape, data) = preprocess::stack(&images)?;
    nhwc_to_nchw(&shape, &data)
}

/// A float32 CPU tensor's bytes and shape.
pub fn tensor_data(t: &Tensor) -> Result<TensorData> {
    let t = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?;
    let shape: Vec<u64> = t.size().iter().map(|&d| d as u64).collect();
    let n = t.numel();
    let mut vals = vec![0f32; n];
    t.f_copy_data(&mut vals, n)?;
    Ok(TensorData { dtype: DType::F32, shape, data: vals.iter().flat_map(|v| v.to_le_bytes()).collect() })
}

/// Writes named tensors (rank 4 converted to NHWC) as a float32 safetensors file.
pub fn write_nhwc(out: &Path, force: bool, tensors: &[(String, Tensor)], metadata: BTreeMap<String, String>) -> Result<()> {
    let datas = tensors.iter().map(|(_, t)| tensor_data(&to_nhwc(t))).collect::<Result<Vec<_>>>()?;
    let entries: Vec<StEntry> =
        tensors.iter().zip(&datas).map(|((n, _), d)| StEntry { name: n.clone(), dtype: DType::F32, shape: d.shape.clone() }).collect();
    write_safetensors(out, force, &metadata, &entries, &|i| Ok(datas[i].clone()), &|_, _| {})?;
    Ok(())
}

/// A progress bar on stderr when it is a terminal, for `total` units.
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(&format!("{what} {{bar:40}} {{percent:>3}}% {{msg}} ({{eta}})"))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Prints notes from the library on stderr.
pub fn note(lines: &[String]) {
    for l in lines {
        eprintln!("slimzoo: {l}");
    }
}

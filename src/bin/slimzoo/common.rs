//! Helpers shared by the subcommands: devices, inputs, outputs, progress.

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use slimzoo::Arch;
use slimzoo::nn::to_nhwc;
use slimzoo::photo::{self, Decoder};
use slimzoo::preprocess::{self, Image, Preprocessing};
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

/// True when `path` is a regular file that starts with numpy's magic (anything else, FIFOs
/// included, is not opened).
pub fn is_npy(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 6];
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
        && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && &head == b"\x93NUMPY"
}

/// `--jpeg-dct`: which JPEG inverse DCT to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JpegDct {
    /// libjpeg's accurate integer DCT, as Pillow decodes (facenet)
    Accurate,
    /// libjpeg's fast integer DCT, as TF's decode_jpeg decodes by default (TF-slim)
    Fast,
}

impl JpegDct {
    /// The decoder of facenet's commands (detect, align, embed, compare; default accurate):
    /// Pillow's, or for `fast` TF's default decoder (facenet's TF input pipeline).
    pub fn facenet_decoder(self) -> Decoder {
        match self {
            JpegDct::Accurate => Decoder::Pillow,
            JpegDct::Fast => Decoder::Tf,
        }
    }

    /// The decoder of the TF-slim commands (classify, features; default fast): TF's
    /// `decode_jpeg` with this DCT.
    pub fn tf_decoder(self) -> Decoder {
        match self {
            JpegDct::Accurate => Decoder::TfAccurate,
            JpegDct::Fast => Decoder::Tf,
        }
    }
}

/// Image files given directly or found in folders ([`photo::collect_images`]); what was skipped
/// is noted on stderr. An error when an input yields no image.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let found = photo::collect_images(inputs)?;
    note(&found.notes);
    Ok(found.files)
}

/// The model input for `inputs`: one `.npy` NHWC batch as is, or image files decoded by `decoder`
/// and preprocessed the way the architecture's zoo weights expect (ResNet v2: inception at
/// `size`, default 299; facenet: fixed standardization at 160).
pub fn model_input(inputs: &[PathBuf], arch: &Arch, size: Option<i64>, decoder: Decoder) -> Result<Tensor> {
    if let [one] = inputs
        && is_npy(one)
    {
        return read_npy_batch(one);
    }
    let files = collect_images(inputs)?;
    let images = files
        .iter()
        .map(|f| {
            let img = preprocess::load_rgb(f, decoder)?;
            let how = arch.preprocessing();
            let size = size.map_or(how.default_size(), |s| s as usize);
            match how {
                Preprocessing::Inception => Ok(preprocess::inception_eval(&img, size)),
                Preprocessing::FacenetFixed => Ok(preprocess::facenet(&img, size, preprocess::Standardize::Fixed)),
                Preprocessing::Mtcnn | Preprocessing::None => {
                    bail!("{} has no image preprocessing; give it a prepared NHWC .npy batch", arch.name())
                }
            }
        })
        .collect::<Result<Vec<Image>>>()?;
    let (shape, data) = preprocess::stack(&images)?;
    nhwc_to_nchw(&shape, &data)
}

/// Writes named tensors (rank 4 converted to NHWC) as a float32 safetensors file.
pub fn write_nhwc(out: &Path, force: bool, tensors: &[(String, Tensor)], metadata: BTreeMap<String, String>) -> Result<()> {
    let nhwc = tensors.iter().map(|(n, t)| Ok((n.clone(), to_nhwc(t).f_to_kind(Kind::Float)?))).collect::<Result<Vec<_>>>()?;
    slimzoo::safetensors_file::write_tensors(out, force, &nhwc, &metadata)?;
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

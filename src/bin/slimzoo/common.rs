//! Helpers shared by the subcommands: devices, inputs, outputs, progress.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use slimzoo::Arch;
use slimzoo::load::{LoadOptions, Loaded, load_model};
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

/// An NHWC float32 batch from a `.npy` file, as NCHW. NaN and infinities are kept (TF computes on
/// them too), with a warning naming the first.
pub fn read_npy_batch(path: &Path) -> Result<Tensor> {
    let a = slimzoo::npy::read(path)?;
    if a.shape.len() != 4 || a.shape[3] != 3 {
        bail!("{}: expected an NHWC batch [N, H, W, 3], got shape {:?}", path.display(), a.shape);
    }
    if a.shape.contains(&0) {
        bail!("{}: the batch {:?} holds no value", path.display(), a.shape);
    }
    if let Some(nf) = a.non_finite() {
        let values = if nf.count == 1 { "1 value is".to_string() } else { format!("{} values are", nf.count) };
        eprintln!(
            "slimzoo: warning: {}: {values} NaN or infinite (the first: element {:?} = {}); the net runs on them, as TF does",
            path.display(),
            nf.first,
            nf.value
        );
    }
    nhwc_to_nchw(&a.shape, &a.data)
}

/// An NCHW tensor from NHWC data.
pub fn nhwc_to_nchw(shape: &[usize], data: &[f32]) -> Result<Tensor> {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::f_from_slice(data)?.f_view(dims.as_slice())?.f_permute([0, 3, 1, 2])?.f_contiguous()?)
}

/// The rows (first dimension) of `t` that hold a NaN or an infinity.
pub fn non_finite_rows(t: &Tensor) -> Result<Vec<usize>> {
    let t = t.f_to_device(Device::Cpu)?;
    let flat = if t.dim() > 1 { t.f_flatten(1, -1)? } else { t.f_reshape([-1, 1])? };
    let bad = flat.f_isfinite()?.f_logical_not()?.f_any_dim(1, false)?.f_nonzero()?.f_flatten(0, -1)?;
    Ok(Vec::<i64>::try_from(&bad)?.into_iter().map(|i| i as usize).collect())
}

/// Warns about the rows of a result that hold NaN or infinities, naming them by `labels`;
/// `context` says which result (`"of the embeddings"`).
pub fn warn_non_finite(rows: &[usize], labels: &[String], context: &str) {
    if rows.is_empty() {
        return;
    }
    let named: Vec<String> = rows.iter().map(|&r| labels.get(r).cloned().unwrap_or_else(|| format!("row {r}"))).collect();
    let n = rows.len();
    eprintln!("slimzoo: warning: NaN or infinity in {n} row{} {context}: {}", if n == 1 { "" } else { "s" }, named.join(", "));
}

/// Loads the weights for a subcommand (a FIFO or a device is refused without being opened),
/// printing the loader's notes.
pub fn load_weights(weights: &Path, opts: &LoadOptions, device: Device) -> Result<Loaded> {
    slimzoo::io::check_not_special(weights)?;
    let loaded = load_model(weights, opts, device).with_context(|| format!("cannot load {}", weights.display()))?;
    note(&loaded.notes);
    Ok(loaded)
}

/// Checks `output` before any work ([`slimzoo::io::check_output`]): it can be written, exists
/// only with `force`, and is none of `inputs`, the weights or the files of a weights checkpoint.
pub fn check_output(output: &Path, force: bool, weights: &Path, inputs: &[PathBuf]) -> Result<()> {
    slimzoo::io::check_not_special(weights)?;
    let mut all: Vec<PathBuf> = inputs.to_vec();
    all.push(weights.to_path_buf());
    // Only an existing output can be one of the checkpoint's files (an unreadable checkpoint is
    // reported when it is loaded).
    if std::fs::symlink_metadata(output).is_ok()
        && let Ok(ckpt) = slimzoo::ckpt::Checkpoint::open(weights)
    {
        all.extend(ckpt.files().iter().cloned());
    }
    slimzoo::io::check_output(output, force, &all)?;
    Ok(())
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

/// What a model runs on: one `.npy` NHWC batch (read at once), or image files (decoded when the
/// architecture, and so the preprocessing, is known).
pub enum ModelInput {
    /// A prepared batch: the file and the NCHW tensor.
    Array(PathBuf, Tensor),
    /// Image files, given directly or found in folders.
    Images(Vec<PathBuf>),
}

impl ModelInput {
    /// Reads `inputs`: one `.npy` file as a batch, else image files and folders
    /// ([`collect_images`]; an input without an image is an error).
    pub fn gather(inputs: &[PathBuf]) -> Result<ModelInput> {
        if let [one] = inputs
            && is_npy(one)
        {
            return Ok(ModelInput::Array(one.clone(), read_npy_batch(one)?));
        }
        Ok(ModelInput::Images(collect_images(inputs)?))
    }

    /// The files read.
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            ModelInput::Array(p, _) => vec![p.clone()],
            ModelInput::Images(files) => files.clone(),
        }
    }

    /// A label per row of the batch, for messages: `file.npy[i]`, or the image file.
    pub fn labels(&self) -> Vec<String> {
        match self {
            ModelInput::Array(path, x) => (0..x.size()[0]).map(|i| format!("{}[{i}]", path.display())).collect(),
            ModelInput::Images(files) => files.iter().map(|f| f.display().to_string()).collect(),
        }
    }

    /// The NCHW batch: images decoded by `decoder` and preprocessed the way the architecture's
    /// zoo weights expect (ResNet v2: inception at `size`, default 299; facenet: fixed
    /// standardization at 160).
    pub fn batch(&self, arch: &Arch, size: Option<usize>, decoder: Decoder) -> Result<Tensor> {
        match self {
            ModelInput::Array(_, x) => Ok(x.shallow_clone()),
            ModelInput::Images(files) => {
                let images = files.iter().map(|f| preprocessed(f, arch, size, decoder)).collect::<Result<Vec<Image>>>()?;
                let (shape, data) = preprocess::stack(&images)?;
                nhwc_to_nchw(&shape, &data)
            }
        }
    }
}

/// One image file decoded and preprocessed for `arch` (see [`ModelInput::batch`]).
pub fn preprocessed(file: &Path, arch: &Arch, size: Option<usize>, decoder: Decoder) -> Result<Image> {
    let how = arch.preprocessing();
    let prepare: fn(&Image, usize) -> Image = match how {
        Preprocessing::Inception => preprocess::inception_eval,
        Preprocessing::FacenetFixed => |img, size| preprocess::facenet(img, size, preprocess::Standardize::Fixed),
        Preprocessing::Mtcnn | Preprocessing::None => {
            bail!("{} has no image preprocessing; give it a prepared NHWC .npy batch", arch.name())
        }
    };
    Ok(prepare(&preprocess::load_rgb(file, decoder)?, size.unwrap_or(how.default_size())))
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

/// Why `file` failed, from an error message that may start by naming it (`FILE: why`).
pub fn reason<'a>(file: &Path, message: &'a str) -> &'a str {
    let shown = file.display().to_string();
    message.strip_prefix(shown.as_str()).and_then(|r| r.strip_prefix(": ")).unwrap_or(message)
}

/// Notes on stderr that `file` is skipped, and why.
pub fn note_skipped(file: &Path, message: &str) {
    eprintln!("slimzoo: skipping {}: {}", file.display(), reason(file, message));
}

/// Prints notes from the library on stderr.
pub fn note(lines: &[String]) {
    for l in lines {
        eprintln!("slimzoo: {l}");
    }
}

//! `slimzoo bench`: the seed's timing protocol (burn-in, then timed batches; every 10th step's
//! duration; `MODE across N steps, MEAN +/- SD sec / batch`), and read/convert throughput.

use crate::common::{check_device, parse_device};
use crate::int_in;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use slimzoo::ckpt::Checkpoint;
use slimzoo::convert::{ConvertOptions, Plan};
use slimzoo::faces::align::AlignOptions;
use slimzoo::faces::{DetectOptions, Detector};
use slimzoo::models::Task;
use slimzoo::photo;
use slimzoo::{Arch, EndPoints, Model, Rewrites, RunOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Largest --batch, --size and --threads: beyond any machine this runs on, and small enough that
/// their products cannot overflow.
const MAX_BATCH: i64 = 4096;
const MAX_SIZE: i64 = 4096;
const MAX_THREADS: i32 = 1024;
/// Largest input batch (values, batch × 3 × size²): 4 GiB of float32 before the first layer.
const MAX_INPUT_VALUES: i64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Forward,
    ForwardBackward,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    Bf16,
}

/// Time a net (the seed's protocol), or reading / converting a checkpoint (--read / --convert).
#[derive(Debug, Args)]
pub struct Bench {
    /// Architecture: resnet_v2_50|101|152|200, inception_resnet_v1
    #[arg(long, default_value = "resnet_v2_152")]
    arch: String,
    /// Images per batch (1..=4096)
    #[arg(long, default_value_t = 32, value_parser = int_in(1i64, MAX_BATCH), allow_negative_numbers = true)]
    batch: i64,
    /// Timed batches (1..=1000000)
    #[arg(long, default_value_t = 100, value_parser = int_in(1usize, 1_000_000), allow_negative_numbers = true)]
    batches: usize,
    /// Untimed warm-up batches (0..=100000)
    #[arg(long, default_value_t = 10, value_parser = int_in(0usize, 100_000), allow_negative_numbers = true)]
    burn_in: usize,
    /// Input height and width, 1..=4096 (default: 224 for ResNet v2, 160 for facenet)
    #[arg(long, value_parser = int_in(1i64, MAX_SIZE), allow_negative_numbers = true)]
    size: Option<i64>,
    #[arg(long, value_enum, default_value = "forward")]
    mode: Mode,
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
    /// Intra-op threads, 1..=1024 (default: libtorch's, i.e. all cores)
    #[arg(long, value_parser = int_in(1i32, MAX_THREADS), allow_negative_numbers = true)]
    threads: Option<i32>,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Inference rewrites: all, none, or a list of fold, channels-last, fused (forward mode only)
    #[arg(long, default_value = "all")]
    rewrites: String,
    /// Time reading every tensor of this checkpoint instead of a net
    #[arg(long, conflicts_with = "convert")]
    read: Option<PathBuf>,
    /// Time converting this checkpoint to safetensors (written to --output) instead of a net
    #[arg(long)]
    convert: Option<PathBuf>,
    /// Output of --convert (default: a temporary file, removed afterwards)
    #[arg(short, long, requires = "convert")]
    output: Option<PathBuf>,
    /// Overwrite the --output of --convert if it exists
    #[arg(long, requires = "output")]
    force: bool,
    /// Repetitions of --read / --convert, 1..=1000 (the best is reported)
    #[arg(long, default_value_t = 3, value_parser = int_in(1usize, 1000), allow_negative_numbers = true)]
    repeat: usize,
    /// Measure the machine's peak instead: a 4096x4096 matmul in f32 and bf16 (GFLOPS)
    #[arg(long)]
    peak: bool,
    /// Forward mode: split each batch into N sub-batches run in parallel, each with threads/N
    /// intra-op threads (1..=64; default 1)
    #[arg(long, default_value_t = 1, value_parser = int_in(1usize, 64), allow_negative_numbers = true)]
    streams: usize,
    /// Time face detection (facenet's detect_face) on these photos instead of a net: each photo is
    /// decoded once, then detected --batches times (ms/image)
    #[arg(long, num_args = 1.., conflicts_with_all = ["read", "convert", "peak"])]
    detect: Vec<PathBuf>,
    /// With --detect: time facenet's compare.py pipeline instead, photos → embeddings with these
    /// facenet weights (decode with Pillow's rules, detect, first face ± 22 px, 160x160 crop,
    /// prewhiten, one forward pass over all crops; images/s)
    #[arg(long, requires = "detect")]
    pipeline: Option<PathBuf>,
}

impl Bench {
    pub fn run(self) -> Result<()> {
        if let Some(n) = self.threads {
            tch::set_num_threads(n);
        }
        if let Some(p) = &self.read {
            return self.read_bench(p);
        }
        if let Some(p) = &self.convert {
            return self.convert_bench(p);
        }
        if self.peak {
            return peak();
        }
        if let Some(w) = &self.pipeline {
            return self.pipeline_bench(w);
        }
        if !self.detect.is_empty() {
            return self.detect_bench();
        }
        self.net_bench()
    }

    fn net_bench(&self) -> Result<()> {
        let device = check_device(parse_device(&self.device)?)?;
        let arch = Arch::named(&self.arch)?;
        let size = self.size.unwrap_or(arch.default_image_size());
        let values = self.batch * 3 * size * size;
        if values > MAX_INPUT_VALUES {
            bail!(
                "--batch {} at --size {size}: the input alone would hold {values} values ({:.1} GB), more than the {MAX_INPUT_VALUES} \
                 this bench allows; use a smaller batch or size",
                self.batch,
                values as f64 * 4e-9
            );
        }
        let rewrites = Rewrites::parse(&self.rewrites)?;
        let train = self.mode == Mode::ForwardBackward;
        let mut model = Model::new(&arch, device)?;
        let kind = match self.dtype {
            Dtype::F32 => Kind::Float,
            Dtype::Bf16 => Kind::BFloat16,
        };
        if kind != Kind::Float && (train || rewrites == Rewrites::NONE) {
            model.set_kind(kind);
        }
        let frozen = if train {
            model.channels_last_weights()?;
            None
        } else {
            Some(model.freeze(if rewrites == Rewrites::NONE { rewrites } else { rewrites.with_kind(kind) })?)
        };
        let x = slimzoo::nn::fused::channels_last(&Tensor::f_randn([self.batch, 3, size, size], (kind, device))?)?;
        let info = match self.mode {
            Mode::Forward => "Forward",
            Mode::ForwardBackward => "Forward-backward",
        };
        eprintln!(
            "slimzoo bench: {} batch {} at {size}x{size}, {info}, {:?}, rewrites {}, {} threads, {} streams, {:?}",
            arch,
            self.batch,
            self.dtype,
            if train { "none (training)" } else { self.rewrites.as_str() },
            tch::get_num_threads(),
            if train { 1 } else { self.streams },
            device
        );
        let opts = RunOptions { train, ..Default::default() };
        let step = || -> Result<()> {
            match &frozen {
                None => {
                    let out = model.forward(&x, &opts, &mut EndPoints::none())?;
                    let loss = out.f_to_kind(Kind::Float)?.f_square()?.f_sum(Kind::Float)? / 2.0;
                    for v in model.var_store().trainable_variables() {
                        let mut g = v.f_grad()?;
                        if g.defined() {
                            let _ = g.f_zero_()?;
                        }
                    }
                    loss.f_backward()?;
                }
                Some(f) => {
                    let out = f.forward_streams(&x, &opts, &mut EndPoints::none(), self.streams)?;
                    // Make sure the work is done (matters on CUDA).
                    let _ = out.f_sum(Kind::Float)?.double_value(&[]);
                }
            }
            if let Device::Cuda(_) = device {
                tch::Cuda::synchronize(0);
            }
            Ok(())
        };
        // Convolution work of one batch, counted on the inference path.
        let macs = if train {
            0
        } else {
            let (r, macs) = slimzoo::nn::count_macs(step);
            r?;
            macs
        };
        let (mean, sd) = self.time_steps(info, step)?;
        let gflops = 2.0 * macs as f64 / 1e9;
        if macs > 0 {
            eprintln!(
                "slimzoo bench: {gflops:.1} GFLOP of convolutions per batch: {:.1} GFLOPS achieved, {:.2} ms per image",
                gflops / mean,
                1e3 * mean / self.batch as f64
            );
        }
        let result = serde_json::json!({
            "runner": "slimzoo", "arch": self.arch, "mode": info, "dtype": format!("{:?}", self.dtype).to_lowercase(),
            "batch": self.batch, "size": size, "batches": self.batches, "mean": mean, "sd": sd,
            "threads": tch::get_num_threads(), "images_per_s": self.batch as f64 / mean,
            "rewrites": if train { "none" } else { self.rewrites.as_str() }, "streams": if train { 1 } else { self.streams },
            "conv_gflop_per_batch": gflops, "gflops": if macs > 0 { gflops / mean } else { 0.0 },
        });
        println!("RESULT {result}");
        Ok(())
    }

    /// The seed's timing protocol: `--burn-in` untimed steps, then `--batches` timed ones, every
    /// 10th printed, then `WHAT across N steps, MEAN +/- SD sec / batch`. Returns (mean, sd).
    fn time_steps(&self, what: &str, mut step: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
        let (mut total, mut total_sq) = (0f64, 0f64);
        for i in 0..self.burn_in + self.batches {
            let t = Instant::now();
            step()?;
            let d = t.elapsed().as_secs_f64();
            if i >= self.burn_in {
                let j = i - self.burn_in;
                if j.is_multiple_of(10) {
                    println!("{}: step {j}, duration = {d:.3}", now());
                }
                total += d;
                total_sq += d * d;
            }
        }
        let n = self.batches as f64;
        let mean = total / n;
        let sd = (total_sq / n - mean * mean).max(0.0).sqrt();
        println!("{}: {what} across {} steps, {mean:.3} +/- {sd:.3} sec / batch", now(), self.batches);
        Ok((mean, sd))
    }

    /// `--detect`: detect_face on each photo (decoded once), ms/image.
    fn detect_bench(&self) -> Result<()> {
        let detector = Detector::shipped(Device::Cpu)?;
        let opts = DetectOptions::default();
        for path in &self.detect {
            let img = photo::read_rgb8(path, photo::Decoder::Pillow).with_context(|| format!("cannot read {}", path.display()))?;
            let size = format!("{}x{}", img.width, img.height);
            let mut faces = 0;
            let (mean, sd) = self.time_steps(&format!("Detect {size}"), || {
                faces = detector.detect(&img, &opts)?.len();
                Ok(())
            })?;
            let result = serde_json::json!({
                "runner": "slimzoo-detect", "photo": path.display().to_string(), "size": size, "faces": faces,
                "batches": self.batches, "burn_in": self.burn_in, "mean": mean, "sd": sd, "ms_per_image": mean * 1e3,
                "threads": tch::get_num_threads(),
            });
            println!("RESULT {result}");
        }
        Ok(())
    }

    /// `--pipeline`: facenet's compare.py on the photos (decode, detect, first face, crop,
    /// prewhiten, embed all crops in one pass), images/s.
    fn pipeline_bench(&self, weights: &Path) -> Result<()> {
        let detector = Detector::shipped(Device::Cpu)?;
        let model = slimzoo::load::load_model(weights, &Default::default(), Device::Cpu)
            .with_context(|| format!("cannot load {}", weights.display()))?
            .model
            .freeze(Rewrites::default())?;
        let Task::Embedding { epsilon } = model.arch().task() else { bail!("{} computes no embeddings", model.arch()) };
        let opts = DetectOptions::default();
        let align = AlignOptions::default();
        let mut kept = 0;
        let (mean, sd) = self.time_steps("Pipeline", || {
            let mut crops = Vec::with_capacity(self.detect.len());
            for path in &self.detect {
                let img = photo::read_rgb8(path, photo::Decoder::Pillow)?;
                // compare.py: the first (highest-scoring) face.
                let Some(face) = detector.detect(&img, &opts)?.into_iter().next() else { continue };
                let (crop, _) = slimzoo::faces::align::aligned(&img, &face, &align)?;
                crops.push(slimzoo::preprocess::prewhiten(slimzoo::preprocess::Image::from_rgb8(&crop)?));
            }
            kept = crops.len();
            if !crops.is_empty() {
                let (shape, data) = slimzoo::preprocess::stack(&crops)?;
                let x = crate::common::nhwc_to_nchw(&shape, &data)?;
                let out = model.forward(&x, &RunOptions::default(), &mut EndPoints::none())?;
                let _ = slimzoo::nn::tf::l2_normalize(&out, epsilon)?.f_sum(Kind::Float)?.double_value(&[]);
            }
            Ok(())
        })?;
        let n = self.detect.len();
        let result = serde_json::json!({
            "runner": "slimzoo-pipeline", "photos": n, "faces": kept, "batches": self.batches, "burn_in": self.burn_in,
            "mean": mean, "sd": sd, "images_per_s": n as f64 / mean, "threads": tch::get_num_threads(),
        });
        println!("RESULT {result}");
        Ok(())
    }

    fn read_bench(&self, path: &PathBuf) -> Result<()> {
        let mut best = f64::INFINITY;
        let mut bytes = 0u64;
        for _ in 0..self.repeat {
            let t = Instant::now();
            let ckpt = Checkpoint::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            bytes = 0;
            for info in ckpt.tensors() {
                if info.dtype.is_numeric() {
                    bytes += ckpt.read(&info.name)?.data.len() as u64;
                }
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        self.report("read", best, bytes)
    }

    fn convert_bench(&self, path: &PathBuf) -> Result<()> {
        let tmp = crate::temp_dir()?;
        let out = self.output.clone().unwrap_or_else(|| tmp.path().join("bench.safetensors"));
        {
            let ckpt = Checkpoint::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let mut inputs = ckpt.files().to_vec();
            inputs.push(path.clone());
            slimzoo::io::check_output(&out, self.force, &inputs)?;
        }
        let mut best = f64::INFINITY;
        for i in 0..self.repeat {
            let t = Instant::now();
            let ckpt = Checkpoint::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let plan = Plan::new(&ckpt, &ConvertOptions { no_validate: true, ..Default::default() })?;
            // The first run replaces an existing --output only with --force; later runs replace
            // the first one's.
            plan.write_safetensors(&ckpt, &out, self.force || i > 0, &Default::default(), &|_, _| {})?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let bytes = std::fs::metadata(&out)?.len();
        self.report("convert", best, bytes)
    }

    fn report(&self, what: &str, seconds: f64, bytes: u64) -> Result<()> {
        if bytes == 0 {
            bail!("nothing was read");
        }
        let mb = bytes as f64 / 1e6;
        let rss = peak_rss_mb();
        println!("{what}: {mb:.1} MB in {seconds:.3} s (best of {}) = {:.0} MB/s, peak RSS {rss:.0} MB", self.repeat, mb / seconds);
        let result = serde_json::json!({"what": what, "seconds": seconds, "mb": mb, "mb_per_s": mb / seconds, "peak_rss_mb": rss});
        println!("RESULT {result}");
        Ok(())
    }
}

/// Peak matmul throughput of this machine through libtorch (f32 and bf16, 4096x4096).
fn peak() -> Result<()> {
    let n = 4096i64;
    for kind in [Kind::Float, Kind::BFloat16] {
        let a = Tensor::f_randn([n, n], (kind, Device::Cpu))?;
        let b = Tensor::f_randn([n, n], (kind, Device::Cpu))?;
        let _ = a.f_matmul(&b)?;
        let reps = 5;
        let t = Instant::now();
        for _ in 0..reps {
            let _ = a.f_matmul(&b)?;
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        let gflops = 2.0 * (n as f64).powi(3) / s / 1e9;
        println!("matmul {n}x{n} {kind:?}: {:.1} ms, {gflops:.1} GFLOPS ({} threads)", s * 1e3, tch::get_num_threads());
        println!("RESULT {}", serde_json::json!({"what": "peak", "dtype": format!("{kind:?}"), "gflops": gflops}));
    }
    Ok(())
}

/// The process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())))
        .flatten()
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Local time like Python's `datetime.now()` (UTC here: no time zone database needed).
fn now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}", rem / 3600, rem / 60 % 60, rem % 60, d.subsec_micros())
}

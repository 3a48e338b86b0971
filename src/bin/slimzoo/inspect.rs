//! `slimzoo inspect`: what TF's inspect_checkpoint prints, without TF.

use anyhow::{Context, Result};
use clap::Args;
use slimzoo::ckpt::{Checkpoint, DType, TensorData};
use std::io::Write;
use std::path::PathBuf;

/// List a TF checkpoint's variables (name, dtype, shape, sorted by name) and totals, or one tensor.
#[derive(Debug, Args)]
pub struct Inspect {
    /// Checkpoint prefix, .index/.data path, V1 file, folder, .zip or .tar.gz
    path: PathBuf,
    /// Print this tensor's statistics and first values
    #[arg(long)]
    tensor: Option<String>,
    /// JSON output: an array of {name, dtype, shape} (with --tensor: one object with statistics)
    #[arg(long)]
    json: bool,
    /// How many values --tensor prints (0..=1000000)
    #[arg(long, default_value_t = 10, value_parser = crate::int_in(0usize, 1_000_000), allow_negative_numbers = true)]
    values: usize,
}

impl Inspect {
    pub fn run(self) -> Result<()> {
        let ckpt = Checkpoint::open(&self.path).with_context(|| format!("cannot open {}", self.path.display()))?;
        let mut out = std::io::stdout().lock();
        if let Some(name) = &self.tensor {
            return self.tensor(&ckpt, name, &mut out);
        }
        eprintln!("slimzoo: {}", ckpt.description());
        if self.json {
            let rows: Vec<_> =
                ckpt.tensors().iter().map(|t| serde_json::json!({"name": t.name, "dtype": t.dtype.py_name(), "shape": t.shape})).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            return Ok(());
        }
        let (mut params, mut bytes) = (0u64, 0u64);
        for t in ckpt.tensors() {
            writeln!(out, "{} ({}) {:?}", t.name, t.dtype.py_name(), t.shape)?;
            params = params.saturating_add(t.num_elements().unwrap_or(0));
            bytes = bytes.saturating_add(t.byte_size().unwrap_or(0));
        }
        writeln!(out, "# {} variables, {} parameters, {} bytes ({:.1} MB)", ckpt.tensors().len(), params, bytes, bytes as f64 / 1e6)?;
        Ok(())
    }

    fn tensor(&self, ckpt: &Checkpoint, name: &str, out: &mut impl Write) -> Result<()> {
        let info =
            ckpt.get(name).with_context(|| format!("no tensor '{name}' in {} (see `slimzoo inspect` for the list)", ckpt.description()))?;
        let values: Vec<String> = if info.dtype == DType::String {
            ckpt.read_string(name)?.iter().take(self.values).map(|s| format!("{:?}", String::from_utf8_lossy(s))).collect()
        } else {
            let data = ckpt.read(name)?;
            let v = as_f64(&data).with_context(|| format!("tensor '{name}'"))?;
            let n = v.len().max(1) as f64;
            let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            let mean = v.iter().sum::<f64>() / n;
            if self.json {
                let obj = serde_json::json!({"name": name, "dtype": info.dtype.py_name(), "shape": info.shape,
                    "min": min, "max": max, "mean": mean, "values": v.iter().take(self.values).collect::<Vec<_>>()});
                writeln!(out, "{}", serde_json::to_string_pretty(&obj)?)?;
                return Ok(());
            }
            writeln!(out, "{name} ({}) {:?}", info.dtype.py_name(), info.shape)?;
            writeln!(out, "min {min} max {max} mean {mean}")?;
            v.iter().take(self.values).map(|x| x.to_string()).collect()
        };
        if self.json {
            let obj = serde_json::json!({"name": name, "dtype": info.dtype.py_name(), "shape": info.shape, "values": values});
            writeln!(out, "{}", serde_json::to_string_pretty(&obj)?)?;
        } else {
            writeln!(out, "first values: [{}]", values.join(", "))?;
        }
        Ok(())
    }
}

/// Every element as f64, whatever the numeric dtype.
fn as_f64(d: &TensorData) -> Result<Vec<f64>> {
    let t = slimzoo::convert::tensor_from("", d)?;
    let t = t.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?;
    let n = t.numel();
    let mut v = vec![0f64; n];
    t.f_copy_data(&mut v, n)?;
    Ok(v)
}

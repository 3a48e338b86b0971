//! `slimzoo check`: the whole path on one checkpoint — read it, convert it, load the converted file
//! into the net, run it, and compare every end point with what TensorFlow computed.

use anyhow::{Context, Result, bail};
use clap::Args;
use slimzoo::ckpt::Checkpoint;
use slimzoo::convert::{ConvertOptions, Plan};
use slimzoo::load::{LoadOptions, load_model};
use slimzoo::nn::to_nhwc;
use slimzoo::weights::Weights;
use slimzoo::{EndPoints, Rewrites, RunOptions};
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The shipped default: the narrow ResNet v2 that real TF wrote into fixtures/tiny.
const DEFAULT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tiny");

/// Read a TF checkpoint, convert it, load it, run it, and compare the end points with TF's
/// (defaults: the committed fixture net in fixtures/tiny).
#[derive(Debug, Args)]
pub struct Check {
    /// TF checkpoint [default: fixtures/tiny/v2]
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// NHWC float32 .npy input batch [default: fixtures/tiny/input.npy]
    #[arg(long)]
    input: Option<PathBuf>,
    /// TF's end points for that input (.safetensors, NHWC) [default: fixtures/tiny/endpoints.safetensors]
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Architecture (detected when absent)
    #[arg(long)]
    arch: Option<String>,
    /// Relative tolerance: max|ours - tf| <= tol * max(1, max|tf|); a finite number in 0..=1
    #[arg(long, default_value_t = 1e-4, value_parser = tolerance, allow_negative_numbers = true)]
    tol: f64,
    /// Inference rewrites: all (default), none (the reference forward pass), or fold,channels-last,fused
    #[arg(long, default_value = "all")]
    rewrites: String,
}

impl Check {
    pub fn run(self) -> Result<()> {
        let dir = PathBuf::from(DEFAULT_DIR);
        let ckpt_path = self.checkpoint.clone().unwrap_or_else(|| dir.join("v2"));
        let input = self.input.clone().unwrap_or_else(|| dir.join("input.npy"));
        let expect = self.expect.clone().unwrap_or_else(|| dir.join("endpoints.safetensors"));
        // Options and inputs first: a bad value or file is reported before any work is done.
        let rewrites = Rewrites::parse(&self.rewrites)?;
        let x = crate::common::read_npy_batch(&input)?;
        let tf = Weights::from_safetensors(&expect).with_context(|| format!("cannot read TF's end points {}", expect.display()))?;

        let t = Instant::now();
        let ckpt = Checkpoint::open(&ckpt_path).with_context(|| format!("cannot open {}", ckpt_path.display()))?;
        println!("read      {} ({} variables) in {:.1} ms", ckpt.description(), ckpt.tensors().len(), ms(t));

        let t = Instant::now();
        let opts = ConvertOptions { arch: self.arch.clone(), ..Default::default() };
        let plan = Plan::new(&ckpt, &opts)?;
        let tmp = crate::temp_dir()?;
        let converted = tmp.path().join("converted.safetensors");
        plan.write_safetensors(&ckpt, &converted, false, &Default::default(), &|_, _| {})?;
        println!(
            "convert   {} tensors -> {} ({} bytes) in {:.1} ms; {}",
            plan.tensors.len(),
            converted.display(),
            std::fs::metadata(&converted)?.len(),
            ms(t),
            plan.dropped_summary()
        );

        let t = Instant::now();
        let loaded = load_model(&converted, &LoadOptions { arch: self.arch.clone(), ..Default::default() }, Device::Cpu)?;
        let model = loaded.model.freeze(rewrites)?;
        println!("load      {} (strict: every name and shape matched) in {:.1} ms", model.arch(), ms(t));

        let t = Instant::now();
        let mut ep = EndPoints::all();
        let out = model.forward(&x, &RunOptions::default(), &mut ep)?;
        println!("run       input {} {:?} (NHWC), rewrites {}, in {:.1} ms", input.display(), to_nhwc(&x).size(), self.rewrites, ms(t));

        println!("\n{:<58} {:<18} {:>11} {:>11}  ok", "end point (TF's key)", "shape (NHWC)", "max|diff|", "tolerance");
        let mut results: Vec<(String, tch::Tensor)> = ep.into_vec();
        results.push(("output".into(), out));
        let mut failed = Vec::new();
        for (key, ours) in &results {
            let ours = to_nhwc(ours);
            let Some(theirs) = tf.tensors.get(key) else {
                failed.push(format!("{key}: TF has no such end point"));
                println!("{key:<58} {:<18} {:>11} {:>11}  NO TF VALUE", format!("{:?}", ours.size()), "-", "-");
                continue;
            };
            let (diff, tol) = if ours.size() == theirs.size() {
                let (o, t) = (ours.f_to_kind(Kind::Double)?, theirs.f_to_kind(Kind::Double)?);
                max_diff(&o, &t)?
            } else {
                (f64::INFINITY, 0.0)
            };
            let tol = self.tol * tol;
            // A NaN difference (NaN or infinity at different places) is a mismatch.
            let ok = diff <= tol;
            if !ok {
                failed.push(format!("{key}: ours {:?} vs TF {:?}, max|diff| {diff:e}", ours.size(), theirs.size()));
            }
            println!("{key:<58} {:<18} {diff:>11.3e} {tol:>11.3e}  {}", format!("{:?}", ours.size()), if ok { "yes" } else { "NO" });
        }
        for key in tf.tensors.keys().filter(|k| !results.iter().any(|(r, _)| r == *k)) {
            failed.push(format!("{key}: TF has it, slimzoo did not produce it"));
        }
        println!();
        if !failed.is_empty() {
            bail!("{} of {} end points differ from TF:\n  {}", failed.len(), results.len(), failed.join("\n  "));
        }
        println!("all {} end points match TF within {:e} x max(1, max|tf|)", results.len(), self.tol);
        Ok(())
    }
}

/// `--tol`: a finite number in 0..=1 (a NaN tolerance would pass nothing, an infinite one
/// everything).
fn tolerance(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err("expected a number in 0..=1 (a relative tolerance, e.g. 1e-4)".into()),
    }
}

/// max|ours - tf| over the finite values and the tolerance's scale max(1, max|tf|). NaN and
/// infinities must stand at the same places in both (the same infinity), else the difference is
/// NaN: a mismatch.
fn max_diff(ours: &Tensor, tf: &Tensor) -> Result<(f64, f64)> {
    let finite = ours.f_isfinite()?.f_logical_and(&tf.f_isfinite()?)?;
    let both_nan = ours.f_isnan()?.f_logical_and(&tf.f_isnan()?)?;
    let same_inf = ours.f_isinf()?.f_logical_and(&ours.f_eq_tensor(tf)?)?;
    if finite.f_logical_or(&both_nan)?.f_logical_or(&same_inf)?.f_all()?.f_int64_value(&[])? == 0 {
        return Ok((f64::NAN, 1.0));
    }
    let zero = Tensor::f_zeros_like(ours)?;
    let diff = ours.f_sub(tf)?.f_abs()?.f_where_self(&finite, &zero)?.f_max()?.f_double_value(&[])?;
    let scale = tf.f_abs()?.f_where_self(&finite, &zero)?.f_max()?.f_double_value(&[])?.max(1.0);
    Ok((diff, scale))
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

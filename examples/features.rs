//! Library usage: load a TF checkpoint (converted in memory), freeze it, run it, read slim's end
//! points.
//!
//!     cargo run --release --example features -- fixtures/tiny/v2 fixtures/tiny/input.npy
use slimzoo::load::{LoadOptions, load_model};
use slimzoo::nn::to_nhwc;
use slimzoo::{EndPoints, Rewrites, RunOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (weights, input) = match (args.next(), args.next()) {
        (Some(w), Some(i)) => (w, i),
        _ => anyhow::bail!("usage: features CHECKPOINT_OR_SAFETENSORS INPUT.npy"),
    };
    // Any TF checkpoint (prefix, folder, .zip, .tar.gz) or a converted .safetensors file; the
    // architecture is recognized from the variable names and loading is strict.
    let model = load_model(weights.as_ref(), &LoadOptions::default(), tch::Device::Cpu)?.model;
    // The inference form: BN folded, channels-last, fused convolutions.
    let frozen = model.freeze(Rewrites::default())?;

    // An NHWC float32 batch, as one would feed TF; the nets take NCHW.
    let x = slimzoo::npy::read_nchw(input.as_ref())?;
    let mut ep = EndPoints::all();
    let logits = frozen.forward(&x, &RunOptions::default(), &mut ep)?;
    println!("{}: output {:?}", frozen.arch(), logits.size());
    for (key, t) in ep.iter() {
        println!("  {key} {:?}", to_nhwc(t).size()); // NHWC, as TF reports them
    }
    Ok(())
}

//! Library usage: load a TF checkpoint (converted in memory), run the net, read slim's end points.
//!
//!     cargo run --release --example features -- fixtures/tiny/v2 fixtures/tiny/input.npy
use slimzoo::arch::RunOptions;
use slimzoo::load::{LoadOptions, load_model};
use slimzoo::models::endpoints::{EndPoints, to_nhwc};
use slimzoo::models::fast::Rewrites;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (weights, input) = match (args.next(), args.next()) {
        (Some(w), Some(i)) => (w, i),
        _ => anyhow::bail!("usage: features CHECKPOINT_OR_SAFETENSORS INPUT.npy"),
    };
    // Any TF checkpoint (prefix, folder, .zip, .tar.gz) or a converted .safetensors file; the
    // architecture is recognized from the variable names and loading is strict.
    let mut model = load_model(weights.as_ref(), &LoadOptions::default(), tch::Device::Cpu)?.model;
    model.prepare_inference(Rewrites::default())?; // BN folding, channels-last, fused convs

    // An NHWC float32 batch, as one would feed TF; the nets take NCHW.
    let a = slimzoo::npy::read(input.as_ref())?;
    let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    let x = tch::Tensor::from_slice(&a.data).view(dims.as_slice()).permute([0, 3, 1, 2]);

    let mut ep = EndPoints::all();
    let logits = model.forward(&x, &RunOptions::default(), &mut ep)?;
    println!("{}: output {:?}", model.spec, logits.size());
    for (key, t) in ep.iter() {
        println!("  {key} {:?}", to_nhwc(t).size()); // NHWC, as TF reports them
    }
    Ok(())
}

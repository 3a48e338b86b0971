//! bf16 inference against f32 on the golden inputs: the error is measured and bounded.
//! Logits: max relative error and top-1 agreement; facenet: embedding cosine similarity >= 0.999.

mod common;

use common::*;
use slimzoo::load::load_model;
use slimzoo::models::inception_resnet_v1::embed;
use slimzoo::{EndPoints, Model, Rewrites, RunOptions};
use tch::{Device, Kind, Tensor};

fn run(model: &mut Model, x: &Tensor, kind: Kind) -> Tensor {
    let frozen = model.freeze(Rewrites { kind, ..Rewrites::default() }).unwrap();
    let out = frozen.forward(x, &RunOptions::default(), &mut EndPoints::none()).unwrap();
    assert_eq!(out.kind(), kind);
    out.to_kind(Kind::Float)
}

#[test]
fn bf16_resnet_logits_close_to_f32() {
    for depth in [50, 152] {
        let dir = reference(&format!("resnet_v2_{depth}"));
        let mut model = load_model(&dir.join("v2"), &Default::default(), Device::Cpu).unwrap().model;
        let x = npy_nchw(&dir.join("input.npy"));
        let f32_logits = run(&mut model, &x, Kind::Float);
        let bf16_logits = run(&mut model, &x, Kind::BFloat16);
        let rel = ((&bf16_logits - &f32_logits).abs().max() / f32_logits.abs().max()).double_value(&[]);
        let agree =
            f32_logits.argmax(1, false).eq_tensor(&bf16_logits.argmax(1, false)).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
        eprintln!("resnet_v2_{depth} bf16 vs f32: max relative logit error {rel:.3e}, top-1 agreement {agree}");
        assert!(rel < 0.05, "bf16 logits off by {rel}");
        assert_eq!(agree, 1.0);
    }
}

#[test]
fn bf16_facenet_embeddings_cosine_at_least_0_999() {
    let dir = reference("facenet_512");
    let mut model = load_model(&dir.join("20990101-000000"), &Default::default(), Device::Cpu).unwrap().model;
    for input in ["input_160.npy", "input_odd.npy"] {
        let x = npy_nchw(&dir.join(input));
        let a = embed(&run(&mut model, &x, Kind::Float)).unwrap();
        let b = embed(&run(&mut model, &x, Kind::BFloat16)).unwrap();
        let cos = (&a * &b).sum_dim_intlist(&[1i64][..], false, Kind::Float);
        let min = cos.min().double_value(&[]);
        eprintln!("facenet_512 {input}: bf16 vs f32 embedding cosine min {min:.6}");
        assert!(min >= 0.999, "cosine {min}");
    }
}

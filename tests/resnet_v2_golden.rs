//! ResNet v2 against TensorFlow: the committed fixture net and its TF-made variants (odd sizes,
//! output strides, no global pool, no classes, training mode), and the four zoo depths.

mod common;

use common::*;
use slimzoo::models::Hints;
use slimzoo::{Arch, EndPoints, Model, NetOptions, Rewrites, RunOptions};
use std::path::Path;
use tch::Device;

const TOL: f64 = 1e-4;

/// The fixture net built from its names, with TF's values loaded.
fn tiny_model(num_classes: Option<Option<i64>>) -> Model {
    let mut w = tf_values_as_weights(&fixture("tiny/v2/tf_values.safetensors"));
    let mut arch = Arch::detect(&w.tf_shapes(), &Hints::new()).unwrap();
    if let Some(n) = num_classes {
        arch = arch.with_num_classes(n).unwrap();
        if n.is_none() {
            w.tensors.retain(|k, _| !k.contains("/logits/"));
        }
    }
    let mut model = Model::new(&arch, Device::Cpu).unwrap();
    model.load(&w).unwrap();
    model
}

fn options(v: &serde_json::Value) -> RunOptions {
    RunOptions {
        train: v["is_training"].as_bool().unwrap(),
        net: NetOptions {
            global_pool: v["global_pool"].as_bool().unwrap(),
            output_stride: v["output_stride"].as_i64(),
            spatial_squeeze: v["spatial_squeeze"].as_bool().unwrap(),
        },
        ..Default::default()
    }
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The reference path and every inference rewrite level.
fn rewrite_levels() -> Vec<Rewrites> {
    ["none", "fold", "fold,channels-last", "all"].iter().map(|s| Rewrites::parse(s).unwrap()).collect()
}

#[test]
fn tiny_fixture_matches_tf_end_points() {
    let model = tiny_model(None);
    let x = npy_nchw(&fixture("tiny/input.npy"));
    for r in rewrite_levels() {
        let frozen = model.freeze(r).unwrap();
        let mut ep = EndPoints::all();
        let out = frozen.forward(&x, &RunOptions::default(), &mut ep).unwrap();
        let worst = assert_endpoints_match(&with_output(ep, out), &fixture("tiny/endpoints.safetensors"), TOL);
        eprintln!("{r:?}: worst relative error {worst:e}");
    }
    // The input is left untouched by the in-place rewrites.
    assert!(x.equal(&npy_nchw(&fixture("tiny/input.npy"))));
}

/// Every case TF ran on the fixture net: odd sizes, output strides 4/8/16, no global pool, no
/// classes, batch 1 and 3, and TF's errors for impossible options.
#[test]
fn tiny_variants_match_tf() {
    let dir = reference("tiny_variants");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 10, "too few TF cases in {}", dir.display());
    let mut checked = 0;
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let opts_json = read_json(&case.join("options.json"));
        if opts_json["is_training"].as_bool() == Some(true) {
            continue; // tiny_training_mode_matches_tf
        }
        let num_classes = match opts_json["num_classes"].as_i64() {
            Some(_) => None,
            None => Some(None),
        };
        let model = tiny_model(num_classes);
        let x = npy_nchw(&case.join("input.npy"));
        for r in rewrite_levels() {
            let frozen = model.freeze(r).unwrap();
            let mut ep = EndPoints::all();
            let got = frozen.forward(&x, &options(&opts_json), &mut ep);
            match opts_json["tf_error"].as_str() {
                Some(tf_error) => {
                    let err = got.expect_err(&format!("{name}: TF failed with '{tf_error}', slimzoo did not")).to_string();
                    let head = tf_error.split(" for ").next().unwrap().split('.').next().unwrap();
                    assert!(err.contains(head), "{name}: TF says '{tf_error}', slimzoo says '{err}'");
                }
                None => {
                    let out = got.unwrap_or_else(|e| panic!("{name} {r:?}: {e}"));
                    let worst = assert_endpoints_match(&with_output(ep, out), &case.join("endpoints.safetensors"), TOL);
                    eprintln!("{name} {r:?}: worst relative error {worst:e}");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 10);
}

/// `is_training = true`: batch statistics, TF's moving-average update (decay 0.997, unbiased batch
/// variance), and TF's weight-decay total.
#[test]
fn tiny_training_mode_matches_tf() {
    let case = reference("tiny_variants").join("training");
    let opts_json = read_json(&case.join("options.json"));
    let model = tiny_model(None);
    let x = npy_nchw(&case.join("input.npy"));
    let mut ep = EndPoints::all();
    let out = tch::no_grad(|| model.forward(&x, &options(&opts_json), &mut ep)).unwrap();
    assert_endpoints_match(&with_output(ep, out), &case.join("endpoints.safetensors"), TOL);
    let stats = slimzoo::weights::Weights::from_safetensors(&case.join("updated_stats.safetensors")).unwrap();
    let vars = model.variables();
    assert!(stats.tensors.len() > 20);
    for (name, want) in &stats.tensors {
        let got = &vars[name];
        let diff = (got - want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]).max(1.0);
        assert!(diff <= 1e-5 * scale, "{name}: updated moving statistic differs by {diff:e}");
    }
    let reg = model.regularization_loss().unwrap().double_value(&[]);
    let tf_reg = opts_json["reg_loss"].as_f64().unwrap();
    assert!((reg - tf_reg).abs() <= 1e-6 * tf_reg.abs(), "weight decay loss {reg} vs TF {tf_reg}");
}

/// Training-mode gradients of `l2_loss(logits)` (what `slimzoo bench --mode forward-backward`
/// computes) equal TF's `tf.gradients`, on the reference layout and on the channels-last one.
#[test]
fn tiny_training_gradients_match_tf() {
    let case = reference("tiny_variants").join("training");
    let opts = options(&read_json(&case.join("options.json")));
    let x = npy_nchw(&case.join("input.npy"));
    for channels_last in [false, true] {
        let mut model = tiny_model(None);
        let worst = assert_gradients_match(&mut model, &x, &opts, channels_last, &case.join("gradients.safetensors"), TOL);
        eprintln!("channels_last {channels_last}: worst relative gradient error {worst:e}");
    }
}

/// The zoo depths at 224 with 1001 classes: names equal TF's, every end point within tolerance.
fn zoo_depth(depth: u32) {
    let dir = reference(&format!("resnet_v2_{depth}"));
    let arch = Arch::named(&format!("resnet_v2_{depth}")).unwrap();
    let model = arch.variables().unwrap();
    let tf_vars: Vec<serde_json::Value> = serde_json::from_value(read_json(&dir.join("tf_variables.json"))).unwrap();
    let tf_names: Vec<String> = tf_vars.iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
    let ours: Vec<String> = model.shapes().keys().cloned().collect();
    assert_eq!(ours, tf_names, "variable names of resnet_v2_{depth} differ from TF's");
    for v in &tf_vars {
        let tf_shape: Vec<i64> = v["shape"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
        let name = v["name"].as_str().unwrap();
        let perm = slimzoo::layout::Layout::of(name, tf_shape.len()).to_torch_perm();
        assert_eq!(model.shapes()[name], slimzoo::layout::permute_shape(&tf_shape, perm), "{name}");
    }
}

/// The zoo depth's TF checkpoint (V2; V1 for 152), loaded through the converter, run at 224
/// with 1001 classes: every end point within tolerance of TF's.
fn zoo_golden(depth: u32) {
    let dir = reference(&format!("resnet_v2_{depth}"));
    let ckpt = if depth == 152 { dir.join("v1/model.ckpt") } else { dir.join("v2") };
    let model = slimzoo::load::load_model(&ckpt, &Default::default(), Device::Cpu).unwrap().model;
    assert_eq!(model.arch().name(), format!("resnet_v2_{depth}"));
    assert_eq!(model.arch().num_classes(), Some(1001));
    let x = npy_nchw(&dir.join("input.npy"));
    for r in [Rewrites::NONE, Rewrites::default()] {
        let frozen = model.freeze(r).unwrap();
        let mut ep = EndPoints::all();
        let out = frozen.forward(&x, &RunOptions::default(), &mut ep).unwrap();
        let worst = assert_endpoints_match(&with_output(ep, out), &dir.join("endpoints.safetensors"), TOL);
        eprintln!("resnet_v2_{depth} {r:?}: worst relative error {worst:e}");
    }
}

#[test]
fn zoo_resnet_v2_50() {
    zoo_depth(50);
    zoo_golden(50);
}
#[test]
fn zoo_resnet_v2_101() {
    zoo_depth(101);
    zoo_golden(101);
}
#[test]
fn zoo_resnet_v2_152() {
    zoo_depth(152);
    zoo_golden(152);
}
#[test]
fn zoo_resnet_v2_200() {
    zoo_depth(200);
    zoo_golden(200);
}

//! facenet's Inception-ResNet-v1 against facenet's TF code: end points, bottleneck output and
//! embeddings for 128- and 512-d models at 160 and at an odd size, training mode, and loading a
//! release-style folder and .zip with default flags.

mod common;

use common::*;
use slimzoo::load::{LoadOptions, load_model};
use slimzoo::models::inception_resnet_v1::{InceptionResnetV1Config, embed};
use slimzoo::weights::Weights;
use slimzoo::{EndPoints, Frozen, Model, Rewrites, RunOptions};
use std::path::Path;
use tch::Device;

const TOL: f64 = 1e-4;
const RELEASE: &str = "20990101-000000";

fn load(path: &Path) -> Model {
    let loaded = load_model(path, &LoadOptions::default(), Device::Cpu).unwrap();
    assert!(loaded.model.arch().downcast::<InceptionResnetV1Config>().is_some(), "{:?}", loaded.model.arch());
    loaded.model
}

/// How a case is run: the reference path of a model (training mode included) or a frozen form.
enum Runner<'a> {
    Model(&'a Model),
    Frozen(&'a Frozen),
}

/// All end points, the bottleneck output and the embeddings, as TF computed them.
fn check_case(model: Runner, input: &Path, expected: &Path, train: bool) {
    let x = npy_nchw(input);
    let mut ep = EndPoints::all();
    // TF ran training mode with keep_probability 1.0 (dropout is the identity).
    let opts = RunOptions { train, dropout_keep_prob: train.then_some(1.0), ..Default::default() };
    let out = match model {
        Runner::Model(m) => tch::no_grad(|| m.forward(&x, &opts, &mut ep)).unwrap(),
        Runner::Frozen(f) => f.forward(&x, &opts, &mut ep).unwrap(),
    };
    let emb = embed(&out).unwrap();
    let mut all = with_output(ep, out);
    all.push(("embeddings".to_string(), emb.shallow_clone()));
    let worst = assert_endpoints_match(&all, expected, TOL);
    let tf_emb = &Weights::from_safetensors(expected).unwrap().tensors["embeddings"];
    let diff = (&emb - tf_emb).abs().max().double_value(&[]);
    assert!(diff <= 1e-5, "embeddings differ from TF by {diff:e} (> 1e-5 absolute)");
    eprintln!("{}: worst relative error {worst:e}, embeddings max|diff| {diff:e}", expected.display());
}

fn golden(name: &str, bottleneck: i64) {
    let dir = reference(name);
    // The release .zip, with its Logits head, loads with default flags (the head is left out).
    let model = load(&dir.join(format!("{RELEASE}.zip")));
    let cfg = model.arch().downcast::<InceptionResnetV1Config>().unwrap();
    assert_eq!(cfg.bottleneck_layer_size, bottleneck);
    assert_eq!(cfg.logits_classes, None);
    for r in [Rewrites::NONE, Rewrites::default()] {
        let frozen = model.freeze(r).unwrap();
        for tag in ["160", "odd"] {
            let (input, expected) = (dir.join(format!("input_{tag}.npy")), dir.join(format!("endpoints_{tag}.safetensors")));
            check_case(Runner::Frozen(&frozen), &input, &expected, false);
        }
    }
}

#[test]
fn facenet_512_matches_tf() {
    golden("facenet_512", 512);
}

#[test]
fn facenet_128_matches_tf() {
    golden("facenet_128", 128);
}

/// The release folder loads too, and the variable names equal TF's list minus the training head.
#[test]
fn facenet_release_folder_loads_and_names_equal_tf() {
    let dir = reference("facenet_512");
    let model = load(&dir.join(RELEASE));
    let tf: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("tf_variables.json")).unwrap()).unwrap();
    let tf_names: Vec<&str> = tf.iter().map(|v| v["name"].as_str().unwrap()).filter(|n| !n.starts_with("Logits/")).collect();
    let ours: Vec<String> = model.shapes().into_keys().collect();
    assert_eq!(ours, tf_names);
}

/// `--keep-head`: the classifier head loads as well and gives TF's variable set exactly.
#[test]
fn facenet_with_head_has_tf_variable_set() {
    let dir = reference("facenet_512");
    let mut opts = LoadOptions::default();
    opts.convert.keep_head = true;
    let model = load_model(&dir.join(RELEASE), &opts, Device::Cpu).unwrap().model;
    let tf: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("tf_variables.json")).unwrap()).unwrap();
    let tf_names: Vec<&str> = tf.iter().map(|v| v["name"].as_str().unwrap()).collect();
    let ours: Vec<String> = model.shapes().into_keys().collect();
    assert_eq!(ours, tf_names);
    assert!(model.arch().num_classes().is_some());
}

/// phase_train=True: batch statistics, and the moving statistics updated as TF does.
#[test]
fn facenet_training_mode_matches_tf() {
    let dir = reference("facenet_train");
    let model = load(&reference("facenet_512").join(RELEASE));
    check_case(Runner::Model(&model), &dir.join("input.npy"), &dir.join("endpoints.safetensors"), true);
    let stats = Weights::from_safetensors(&dir.join("updated_stats.safetensors")).unwrap();
    let vars = model.variables();
    assert!(stats.tensors.len() > 100);
    for (name, want) in &stats.tensors {
        let diff = (&vars[name] - want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]).max(1.0);
        assert!(diff <= 1e-5 * scale, "{name}: updated moving statistic differs by {diff:e}");
    }
}

/// phase_train=True gradients of `l2_loss(prelogits)` equal TF's, on the reference layout and on
/// the channels-last one (`slimzoo bench`'s training layout).
///
/// The tolerance is TF's own float32 error here, not ours: against the same gradients computed in
/// float64 (this model in f64), TF's float32 gradients are off by up to 1.2e-2 relative
/// (Conv2d_4b_3x3/weights, deep in the backward pass through 130 training-mode batch norms with
/// batch 4) and slimzoo's float32 ones by 3.4e-4 (measured 2026-11-28).
#[test]
fn facenet_training_gradients_match_tf() {
    let dir = reference("facenet_train");
    let x = npy_nchw(&dir.join("input.npy"));
    // TF ran with keep_probability 1.0 (dropout is the identity).
    let opts = RunOptions { train: true, dropout_keep_prob: Some(1.0), ..Default::default() };
    for channels_last in [false, true] {
        let mut model = load(&reference("facenet_512").join(RELEASE));
        let worst = assert_gradients_match(&mut model, &x, &opts, channels_last, &dir.join("gradients.safetensors"), 2e-2);
        eprintln!("channels_last {channels_last}: worst relative gradient error {worst:e}");
    }
}

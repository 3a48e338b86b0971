//! `convert` and `export` against TF: converted values equal TF's after the documented layout
//! change, Python's safetensors opens the files, TF reads exported checkpoints back with the same
//! names and values, training leftovers and `--ema`, `--rename`, strict architecture errors.

mod common;

use common::*;
use slimzoo::ckpt::Checkpoint;
use slimzoo::convert::{ConvertOptions, Dropped, Plan, export};
use slimzoo::error::Error;
use slimzoo::layout::Layout;
use slimzoo::weights::Weights;
use std::path::{Path, PathBuf};
use std::process::Command;

fn convert(ckpt: &Path, opts: &ConvertOptions, out: &Path) -> Plan {
    let c = Checkpoint::open(ckpt).unwrap();
    let plan = Plan::new(&c, opts).unwrap();
    plan.write_safetensors(&c, out, true, &Default::default(), &|_, _| {}).unwrap();
    plan
}

/// TF's values (TF layout) permuted with tch — an independent path from the converter's own.
fn tf_in_torch_layout(tf_values: &Path) -> Weights {
    tf_values_as_weights(tf_values)
}

fn assert_same(a: &tch::Tensor, b: &tch::Tensor, what: &str) {
    assert_eq!(a.size(), b.size(), "{what}: shape");
    assert_eq!(a.kind(), b.kind(), "{what}: dtype");
    assert!(a.equal(b), "{what}: values differ");
}

#[test]
fn converted_fixtures_equal_tf_values_in_torch_layout() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in ["tiny/v2", "tiny/v1", "tiny/sharded", "tiny/partitioned", "dtypes/v2", "dtypes/v1"] {
        let out = tmp.path().join("out.safetensors");
        let opts = ConvertOptions { no_validate: dir.starts_with("dtypes"), ..Default::default() };
        let plan = convert(&fixture(dir), &opts, &out);
        let ours = Weights::from_safetensors(&out).unwrap();
        let tf = tf_in_torch_layout(&fixture(&format!("{dir}/tf_values.safetensors")));
        let kept: Vec<&String> = tf.tensors.keys().collect();
        assert_eq!(ours.tensors.keys().collect::<Vec<_>>(), kept, "{dir}: names");
        for (name, t) in &tf.tensors {
            assert_same(&ours.tensors[name], t, &format!("{dir}: {name}"));
        }
        if !dir.starts_with("dtypes") {
            assert_eq!(plan.arch.as_ref().unwrap().name(), "resnet_v2", "{dir}");
            assert_eq!(ours.metadata["slimzoo.blocks"], "4x2/2,8x2/2,8x2/2,16x1/1");
        }
    }
}

/// A conv kernel checked element by element: TF [h, w, in, out] is ours [out, in, h, w].
#[test]
fn conv_kernel_layout_on_real_values() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    convert(&fixture("tiny/v2"), &ConvertOptions::default(), &out);
    let ours = &Weights::from_safetensors(&out).unwrap().tensors["resnet_v2_tiny/conv1/weights"];
    let tf = &Weights::from_safetensors(&fixture("tiny/v2/tf_values.safetensors")).unwrap().tensors["resnet_v2_tiny/conv1/weights"];
    assert_eq!(tf.size(), vec![7, 7, 3, 64]);
    assert_eq!(ours.size(), vec![64, 3, 7, 7]);
    for (h, w, i, o) in [(0, 0, 0, 0), (6, 2, 1, 63), (3, 5, 2, 17)] {
        assert_eq!(ours.double_value(&[o, i, h, w]), tf.double_value(&[h, w, i, o]));
    }
}

/// Full size: converts `ckpt` (default options) and checks that every kept tensor, put back in TF
/// layout, hashes to what TF read (`tf_json`: name + SHA-256 per variable), and that the kept names
/// are exactly TF's minus the ones the plan reports as dropped.
fn assert_converted_equals_tf(ckpt: &Path, tf_json: &Path, arch: &str) {
    use sha2::{Digest, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("converted.safetensors");
    let plan = convert(ckpt, &ConvertOptions::default(), &out);
    assert_eq!(plan.arch.as_ref().map(|a| a.name()), Some(arch.to_string()), "{}", ckpt.display());
    let ours = Weights::from_safetensors(&out).unwrap();
    let tf: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(tf_json).unwrap()).unwrap();
    let dropped: std::collections::BTreeSet<&str> = plan.dropped.iter().map(|(n, _)| n.as_str()).collect();
    let kept: Vec<&serde_json::Value> = tf.iter().filter(|v| !dropped.contains(v["name"].as_str().unwrap())).collect();
    assert_eq!(ours.tensors.len(), kept.len(), "{}", ckpt.display());
    for v in kept {
        let name = v["name"].as_str().unwrap();
        let mut t = ours.tensors[name].shallow_clone();
        if let Some(p) = Layout::of(name, t.dim()).to_tf_perm() {
            t = t.permute(p.iter().map(|&x| x as i64).collect::<Vec<_>>().as_slice()).contiguous();
        }
        let n = t.numel();
        let mut vals = vec![0f32; n];
        t.copy_data(&mut vals, n);
        let bytes: Vec<u8> = vals.iter().flat_map(|x| x.to_le_bytes()).collect();
        let hash: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash, v["sha256"].as_str().unwrap(), "{}: {name}", ckpt.display());
    }
}

fn assert_resnet_converts(depth: u32) {
    let arch = format!("resnet_v2_{depth}");
    let dir = reference(&arch);
    assert_converted_equals_tf(&dir.join("v2/model.ckpt"), &dir.join("tf_variables.json"), &arch);
    assert_converted_equals_tf(&dir.join("v1/model.ckpt"), &dir.join("tf_variables_v1.json"), &arch);
}

#[test]
fn converted_resnet_v2_50_equals_tf_bit_for_bit() {
    assert_resnet_converts(50);
}

#[test]
fn converted_resnet_v2_101_equals_tf_bit_for_bit() {
    assert_resnet_converts(101);
}

#[test]
fn converted_resnet_v2_152_equals_tf_bit_for_bit() {
    assert_resnet_converts(152);
}

#[test]
fn converted_resnet_v2_200_equals_tf_bit_for_bit() {
    assert_resnet_converts(200);
}

/// facenet's release layout (folder and .zip); its training head is dropped by default.
#[test]
fn converted_facenet_equals_tf_bit_for_bit() {
    for name in ["facenet_128", "facenet_512"] {
        let dir = reference(name);
        let json = dir.join("tf_variables.json");
        assert_converted_equals_tf(&dir.join("20990101-000000"), &json, "inception_resnet_v1");
        assert_converted_equals_tf(&dir.join("20990101-000000.zip"), &json, "inception_resnet_v1");
    }
}

fn python(venv: &str) -> PathBuf {
    let p = repo().join(format!(".venv/{venv}/bin/python"));
    assert!(p.exists(), "{} missing: run tools/bootstrap.sh all", p.display());
    p
}

/// Python's safetensors reads our files: same names, shapes and values, and our metadata.
#[test]
fn python_safetensors_opens_converted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tiny.safetensors");
    convert(&fixture("tiny/v1"), &ConvertOptions::default(), &out);
    let script = r#"
import sys, json
from safetensors import safe_open
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], "numpy") as f:
    meta = f.metadata()
w = t["resnet_v2_tiny/conv1/weights"]
print(json.dumps({"n": len(t), "shape": list(w.shape), "v": float(w[17, 1, 3, 5]), "arch": meta["slimzoo.arch"], "layout": meta["slimzoo.layout"]}))
"#;
    let out_py = Command::new(python("torch")).arg("-c").arg(script).arg(&out).output().unwrap();
    assert!(out_py.status.success(), "{}", String::from_utf8_lossy(&out_py.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out_py.stdout).unwrap();
    let ours = Weights::from_safetensors(&out).unwrap();
    assert_eq!(v["n"].as_u64().unwrap() as usize, ours.tensors.len());
    assert_eq!(v["shape"], serde_json::json!([64, 3, 7, 7]));
    // Compared as f32: the JSON text round-trips through f64 parsing.
    assert_eq!(v["v"].as_f64().unwrap() as f32, ours.tensors["resnet_v2_tiny/conv1/weights"].double_value(&[17, 1, 3, 5]) as f32);
    assert_eq!(v["arch"], "resnet_v2");
    assert!(v["layout"].as_str().unwrap().contains("OIHW"));
}

/// `export` then TF's reader: the original names and values (TF layout), bit for bit.
#[test]
fn export_round_trips_through_tf() {
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("tiny.safetensors");
    convert(&fixture("tiny/v2"), &ConvertOptions::default(), &st);
    let prefix = tmp.path().join("exported/model.ckpt");
    let n = export(&st, &prefix, false).unwrap();
    assert_eq!(n, 126);
    assert!(export(&st, &prefix, false).unwrap_err().to_string().contains("--force"));
    let dump = tmp.path().join("dump");
    let out = Command::new(python("tf")).arg(repo().join("tools/tfref.py")).arg("dump").arg(&prefix).arg("-o").arg(&dump).output().unwrap();
    assert!(out.status.success(), "TF could not read the export: {}", String::from_utf8_lossy(&out.stderr));
    let a = std::fs::read(dump.join("tf_values.safetensors")).unwrap();
    let b = std::fs::read(fixture("tiny/v2/tf_values.safetensors")).unwrap();
    let (a, b) = (safetensors::SafeTensors::deserialize(&a).unwrap(), safetensors::SafeTensors::deserialize(&b).unwrap());
    let mut na: Vec<&str> = a.names();
    let mut nb: Vec<&str> = b.names();
    na.sort();
    nb.sort();
    assert_eq!(na, nb);
    for name in nb {
        let (x, y) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
        assert_eq!(x.shape(), y.shape(), "{name}");
        assert_eq!(x.data(), y.data(), "{name}");
    }
}

/// A training checkpoint: leftovers dropped with a summary; `--ema` takes the shadows.
#[test]
fn training_checkpoint_leftovers_and_ema() {
    let ckpt = Checkpoint::open(fixture("tiny/train")).unwrap();
    let plan = Plan::new(&ckpt, &ConvertOptions::default()).unwrap();
    assert_eq!(plan.tensors.len(), 126);
    let count = |d: &Dropped| plan.dropped.iter().filter(|(_, x)| x == d).count();
    assert_eq!(count(&Dropped::GlobalStep), 1);
    assert_eq!(count(&Dropped::OptimizerSlot("Momentum".into())), 82);
    assert_eq!(count(&Dropped::EmaShadow), 82);
    let summary = plan.dropped_summary();
    assert!(summary.contains("165") && summary.contains("Momentum") && summary.contains("global_step"), "{summary}");

    let ema = Plan::new(&ckpt, &ConvertOptions { ema: true, ..Default::default() }).unwrap();
    assert_eq!(ema.ema_used, 82);
    // Moving statistics have no shadow (EMA covers trainable variables only).
    assert_eq!(ema.ema_missing.len(), 126 - 82);
    assert!(ema.ema_missing.iter().all(|n| n.contains("moving_")), "{:?}", ema.ema_missing);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ema.safetensors");
    ema.write_safetensors(&ckpt, &out, false, &Default::default(), &|_, _| {}).unwrap();
    let ours = Weights::from_safetensors(&out).unwrap();
    let tf = tf_values_as_weights(&fixture("tiny/train/tf_values.safetensors"));
    assert_eq!(ours.tensors.len(), 126);
    let mut swapped = 0;
    for (name, t) in &ours.tensors {
        match tf.tensors.get(&format!("{name}/ExponentialMovingAverage")) {
            Some(shadow) => {
                // The shadow is in TF layout (its name does not end in `weights`): permute it as its weight.
                let shadow = tf_to_torch_layout(name, shadow);
                assert_same(t, &shadow, name);
                assert!(!t.equal(&tf.tensors[name]), "{name}: the shadow should differ from the raw weight");
                swapped += 1;
            }
            None => assert_same(t, &tf.tensors[name], name),
        }
    }
    assert_eq!(swapped, 82);
}

/// `--rename` maps scopes; the renamed net is detected and loads under the new scope.
#[test]
fn rename_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("renamed.safetensors");
    let opts = ConvertOptions { renames: vec!["^resnet_v2_tiny/=outer/resnet_small/".parse().unwrap()], ..Default::default() };
    let plan = convert(&fixture("tiny/v2"), &opts, &out);
    assert!(plan.tensors.iter().all(|t| t.name.starts_with("outer/resnet_small/")));
    let loaded = slimzoo::load::load_model(&out, &Default::default(), tch::Device::Cpu).unwrap();
    assert!(loaded.model.arch().to_string().contains("scope outer/resnet_small"), "{}", loaded.model.arch());
}

/// The wrong architecture: one error listing every missing, unexpected and mis-shaped name.
#[test]
fn wrong_architecture_lists_every_offending_name() {
    let dir = reference("resnet_v2_50");
    let ckpt = Checkpoint::open(dir.join("v2")).unwrap();
    let r101 = slimzoo::Arch::named("resnet_v2_101").unwrap().variables().unwrap();
    let r101_names: Vec<String> = r101.shapes().into_keys().collect();

    // Under its own scope: every resnet_v2_101 name is missing (no logits: the weights have none
    // under that scope) and every resnet_v2_50 name is unexpected.
    let err = Plan::new(&ckpt, &ConvertOptions { arch: Some("resnet_v2_101".into()), ..Default::default() }).unwrap_err();
    let Error::Mismatch(m) = &err else { panic!("expected a mismatch, got {err}") };
    let want: Vec<&String> = r101_names.iter().filter(|k| !k.contains("/logits/")).collect();
    assert_eq!(m.missing.iter().map(|(n, _)| n).collect::<Vec<_>>(), want);
    assert_eq!(m.unexpected.len(), ckpt.tensors().len());
    let text = err.to_string();
    assert!(m.missing.iter().chain(&m.unexpected).all(|(n, _)| text.contains(&format!("{n} "))));

    // Renamed into resnet_v2_101's scope: exactly the 17 extra block3 units are missing.
    let opts = ConvertOptions {
        arch: Some("resnet_v2_101".into()),
        renames: vec!["^resnet_v2_50/=resnet_v2_101/".parse().unwrap()],
        ..Default::default()
    };
    let err = Plan::new(&ckpt, &opts).unwrap_err();
    let Error::Mismatch(m) = &err else { panic!("expected a mismatch, got {err}") };
    let want_missing: Vec<&String> = r101_names
        .iter()
        .filter(|k| k.contains("/block3/unit_") && k.split("/unit_").nth(1).unwrap().split('/').next().unwrap().parse::<u32>().unwrap() > 6)
        .collect();
    assert_eq!(want_missing.len(), 17 * 16);
    assert_eq!(m.missing.iter().map(|(n, _)| n).collect::<Vec<_>>(), want_missing);
    assert!(m.unexpected.is_empty() && m.shape.is_empty(), "{err}");
    let text = err.to_string();
    for name in &want_missing {
        assert!(text.contains(name.as_str()), "error does not list {name}");
    }

    // facenet weights checked as a ResNet: every name unexpected and every ResNet name missing.
    let face = Checkpoint::open(reference("facenet_512").join("20990101-000000")).unwrap();
    let err = Plan::new(&face, &ConvertOptions { arch: Some("resnet_v2_50".into()), ..Default::default() }).unwrap_err();
    let Error::Mismatch(m) = &err else { panic!("{err}") };
    assert_eq!(m.unexpected.len(), face.tensors().len() - 2); // minus the dropped Logits head
    assert_eq!(m.missing.len(), 270); // resnet_v2_50 without logits
    let text = err.to_string();
    assert!(m.unexpected.iter().all(|(n, _)| text.contains(n.as_str())));
    assert!(m.missing.iter().all(|(n, _)| text.contains(n.as_str())));

    // Mis-shaped: 1001-class weights loaded into a 10-class net.
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("r50.safetensors");
    let c = Checkpoint::open(dir.join("v2")).unwrap();
    Plan::new(&c, &Default::default()).unwrap().write_safetensors(&c, &st, false, &Default::default(), &|_, _| {}).unwrap();
    let opts = slimzoo::load::LoadOptions { num_classes: Some(Some(10)), ..Default::default() };
    let err = slimzoo::load::load_model(&st, &opts, tch::Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("resnet_v2_50/logits/weights: [10, 2048, 1, 1] vs [1001, 2048, 1, 1]"), "{err}");
    assert!(err.contains("resnet_v2_50/logits/biases: [10] vs [1001]"), "{err}");
}

/// An existing output is kept without --force, and nothing half-written is left on failure.
#[test]
fn output_is_atomic_and_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    std::fs::write(&out, b"precious").unwrap();
    let c = Checkpoint::open(fixture("tiny/v2")).unwrap();
    let plan = Plan::new(&c, &Default::default()).unwrap();
    let err = plan.write_safetensors(&c, &out, false, &Default::default(), &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

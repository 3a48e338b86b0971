//! The pure-Rust reader against TF's own reader (`tf.train.list_variables` and
//! `tf.train.load_checkpoint(...).get_tensor`): the listing is equal and every tensor is equal bit
//! for bit, on every committed fixture (V2, V1, training, multi-shard, partitioned, every dtype)
//! and every full-size reference (resnet_v2_50/101/152/200 in V2 and V1, facenet 128/512).

mod common;

use common::*;
use sha2::{Digest, Sha256};
use slimzoo::ckpt::{Checkpoint, DType, Format};
use std::path::Path;

fn tf_list(path: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Listing equal to TF's: names (sorted), dtypes and shapes.
fn assert_listing(ckpt: &Checkpoint, tf: &[serde_json::Value]) {
    let ours: Vec<(String, String, Vec<u64>)> =
        ckpt.tensors().iter().map(|t| (t.name.clone(), t.dtype.py_name().to_string(), t.shape.clone())).collect();
    let theirs: Vec<(String, String, Vec<u64>)> = tf
        .iter()
        .map(|v| {
            let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
            (v["name"].as_str().unwrap().to_string(), v["dtype"].as_str().unwrap().to_string(), shape)
        })
        .collect();
    assert_eq!(ours, theirs, "listing of {} differs from TF's", ckpt.description());
}

/// A committed fixture: listing, every numeric tensor's bytes, every string.
fn fixture_checkpoint(dir: &str, expect_format: Format) {
    let dir = fixture(dir);
    let ckpt = Checkpoint::open(&dir).unwrap();
    assert_eq!(ckpt.format(), expect_format);
    assert_listing(&ckpt, &tf_list(&dir.join("tf_variables.json")));
    let tf_bytes = std::fs::read(dir.join("tf_values.safetensors")).unwrap();
    let tf = safetensors::SafeTensors::deserialize(&tf_bytes).unwrap();
    let mut numeric = 0;
    for info in ckpt.tensors() {
        if info.dtype == DType::String {
            continue;
        }
        let ours = ckpt.read(&info.name).unwrap();
        let theirs = tf.tensor(&info.name).unwrap();
        assert_eq!(ours.data, theirs.data(), "{}: bytes differ from TF's get_tensor", info.name);
        assert_eq!(ours.shape, info.shape);
        numeric += 1;
    }
    assert!(numeric > 0);
    let strings_file = dir.join("tf_strings.json");
    if strings_file.exists() {
        let tf: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(strings_file).unwrap()).unwrap();
        for (name, v) in tf.as_object().unwrap() {
            let want: Vec<String> = v["hex"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect();
            let got: Vec<String> = ckpt.read_string(name).unwrap().iter().map(|s| s.iter().map(|b| format!("{b:02x}")).collect()).collect();
            assert_eq!(got, want, "string tensor {name}");
        }
    }
}

#[test]
fn tiny_v2() {
    fixture_checkpoint("tiny/v2", Format::V2);
}
#[test]
fn tiny_v1() {
    fixture_checkpoint("tiny/v1", Format::V1);
}
#[test]
fn tiny_training_checkpoint() {
    fixture_checkpoint("tiny/train", Format::V2);
}
#[test]
fn tiny_two_shards() {
    assert!(fixture("tiny/sharded/model.ckpt.data-00001-of-00002").exists());
    fixture_checkpoint("tiny/sharded", Format::V2);
}
#[test]
fn tiny_partitioned() {
    fixture_checkpoint("tiny/partitioned", Format::V2);
}
#[test]
fn every_dtype_v2() {
    fixture_checkpoint("dtypes/v2", Format::V2);
}
#[test]
fn every_dtype_v1() {
    fixture_checkpoint("dtypes/v1", Format::V1);
}

/// The ways a user names the same checkpoint all open it.
#[test]
fn every_input_form_opens_the_same_checkpoint() {
    let dir = fixture("tiny/v2");
    let forms = [dir.clone(), dir.join("model.ckpt"), dir.join("model.ckpt.index"), dir.join("model.ckpt.data-00000-of-00001")];
    let want = Checkpoint::open(&forms[1]).unwrap().tensors().to_vec();
    for f in &forms {
        assert_eq!(Checkpoint::open(f).unwrap().tensors(), &want[..], "{}", f.display());
    }
    let v1 = Checkpoint::open(fixture("tiny/v1/model.ckpt")).unwrap();
    assert_eq!(v1.tensors(), &want[..]);
    assert_eq!(Checkpoint::open(fixture("tiny/v1")).unwrap().tensors(), &want[..]);
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A full-size reference: listing and the sha256 of every tensor TF read.
fn full_size(ckpt_path: &Path, tf_json: &Path) {
    let ckpt = Checkpoint::open(ckpt_path).unwrap();
    let tf = tf_list(tf_json);
    assert_listing(&ckpt, &tf);
    for v in &tf {
        let name = v["name"].as_str().unwrap();
        let want = v["sha256"].as_str().unwrap_or_else(|| panic!("{}: no sha256 (stale reference?)", tf_json.display()));
        assert_eq!(sha256(&ckpt.read(name).unwrap().data), want, "{name} in {}", ckpt.description());
    }
}

fn resnet_reference(depth: u32) {
    let dir = reference(&format!("resnet_v2_{depth}"));
    full_size(&dir.join("v2"), &dir.join("tf_variables.json"));
    full_size(&dir.join("v1/model.ckpt"), &dir.join("tf_variables_v1.json"));
}

#[test]
fn resnet_v2_50_v1_and_v2_bit_exact() {
    resnet_reference(50);
}
#[test]
fn resnet_v2_101_v1_and_v2_bit_exact() {
    resnet_reference(101);
}
#[test]
fn resnet_v2_152_v1_and_v2_bit_exact() {
    resnet_reference(152);
}
#[test]
fn resnet_v2_200_v1_and_v2_bit_exact() {
    resnet_reference(200);
}

#[test]
fn facenet_release_zip_and_folder_bit_exact() {
    for name in ["facenet_128", "facenet_512"] {
        let dir = reference(name);
        full_size(&dir.join("20990101-000000.zip"), &dir.join("tf_variables.json"));
        full_size(&dir.join("20990101-000000"), &dir.join("tf_variables.json"));
    }
}

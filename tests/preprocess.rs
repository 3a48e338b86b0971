//! Image decoding and preprocessing against TF's own ops (decode, convert_image_dtype,
//! central_crop, legacy resize_bilinear, per_image_standardization) on the fixture images,
//! decoded with TF's decoder (`tf.io.decode_image`: JPEG with the fast integer DCT).

mod common;

use common::*;
use slimzoo::photo::Decoder;
use slimzoo::preprocess::{self, Image, Standardize};
use slimzoo::weights::Weights;

fn image_of(t: &tch::Tensor) -> Image {
    let s = t.size();
    let n = t.numel();
    let mut data = vec![0f32; n];
    t.to_kind(tch::Kind::Float).copy_data(&mut data, n);
    Image { height: s[0] as usize, width: s[1] as usize, data }
}

/// (max, mean) of |a - b|.
fn diffs(a: &Image, b: &Image) -> (f32, f32) {
    assert_eq!((a.height, a.width), (b.height, b.width));
    let d: Vec<f32> = a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).collect();
    (d.iter().copied().fold(0.0, f32::max), d.iter().sum::<f32>() / d.len() as f32)
}

fn check(tf: &Weights, which: &[&str]) -> usize {
    let mut n = 0;
    for (key, want) in &tf.tensors {
        let (file, kind) = key.rsplit_once('/').unwrap();
        if !which.contains(&kind) {
            continue;
        }
        let img = preprocess::load_rgb(&fixture(&format!("images/{file}")), Decoder::Tf).unwrap();
        let want = image_of(want);
        // Value range of the result, to scale the allowance for prewhiten below.
        let (got, range) = match kind {
            "decoded" => (img.clone(), 255.0),
            "inception_224" => (preprocess::inception_eval(&img, 224), 2.0),
            "inception_299" => (preprocess::inception_eval(&img, 299), 2.0),
            "facenet_fixed_160" => (preprocess::facenet(&img, 160, Standardize::Fixed), 2.0),
            "facenet_prewhiten_160" => (preprocess::facenet(&img, 160, Standardize::Prewhiten), 4.0),
            other => panic!("unknown TF preprocessing '{other}'"),
        };
        let (max, mean) = diffs(&got, &want);
        if kind == "facenet_prewhiten_160" {
            // Mean and std are summed in another order than TF's reduction: a few ulps.
            assert!(max <= 1e-5 * range, "{key}: max|ours - tf| = {max}");
        } else {
            // The decoders are TF's own (JPEG: the fast integer DCT) and the float ops are TF's,
            // in its order: identical values.
            assert!(max == 0.0, "{key}: max|ours - tf| = {max}, mean {mean}");
        }
        n += 1;
    }
    n
}

#[test]
fn committed_images_match_tf() {
    let tf = Weights::from_safetensors(&fixture("images/preprocessed.safetensors")).unwrap();
    let n = check(&tf, &["decoded", "inception_224", "facenet_fixed_160", "facenet_prewhiten_160"]);
    assert_eq!(n, tf.tensors.len());
}

#[test]
fn every_preprocessing_variant_matches_tf() {
    let tf = Weights::from_safetensors(&reference("preprocessing").join("preprocessed.safetensors")).unwrap();
    let n = check(&tf, &["decoded", "inception_224", "inception_299", "facenet_fixed_160", "facenet_prewhiten_160"]);
    assert_eq!(n, tf.tensors.len());
    assert!(n >= 20);
}

//! Freezing is explicit and cannot go stale: train a few steps through the library, then a
//! freshly frozen form equals the reference path on the new weights (every rewrite level), and a
//! frozen form made before the steps refuses to run.

mod common;

use common::*;
use slimzoo::load::{LoadOptions, load_model};
use slimzoo::{EndPoints, Error, Rewrites, RunOptions};
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Float) - b.to_kind(Kind::Float)).abs().max().double_value(&[])
}

#[test]
fn frozen_forms_follow_training_or_refuse() {
    let mut model = load_model(&fixture("tiny/v2"), &LoadOptions::default(), Device::Cpu).unwrap().model;
    let x = npy_nchw(&fixture("tiny/input.npy"));
    let infer = RunOptions::default();
    let before = model.freeze(Rewrites::default()).unwrap();
    let before_none = model.freeze(Rewrites::NONE).unwrap();
    let out_before = before.forward(&x, &infer, &mut EndPoints::none()).unwrap();

    // A few SGD steps on l2_loss(logits) + weight decay, in training mode (batch statistics,
    // moving averages updated), through the model's variable store.
    model.channels_last_weights().unwrap();
    let mut opt = tch::nn::Sgd::default().build(model.var_store(), 0.05).unwrap();
    let train = RunOptions { train: true, ..Default::default() };
    for _ in 0..3 {
        let out = model.forward(&x, &train, &mut EndPoints::none()).unwrap();
        let loss = out.square().sum(Kind::Float) / 2.0 + model.regularization_loss().unwrap();
        opt.backward_step(&loss);
    }

    // The forms made before the steps notice and refuse.
    for stale in [&before, &before_none] {
        assert!(stale.stale_variable().is_some());
        let err = stale.forward(&x, &infer, &mut EndPoints::none()).unwrap_err();
        assert!(matches!(err, Error::Stale { .. }), "{err}");
        assert!(err.to_string().contains("freeze it again"), "{err}");
    }

    // Fresh forms equal the reference path on the new weights, end point by end point.
    let mut ep_ref = EndPoints::all();
    let reference = tch::no_grad(|| model.forward(&x, &infer, &mut ep_ref)).unwrap();
    assert!(max_diff(&reference, &out_before) > 1e-3, "training did not change the output");
    for r in ["none", "fold", "fold,channels-last", "all"].map(|s| Rewrites::parse(s).unwrap()) {
        let frozen = model.freeze(r).unwrap();
        assert_eq!(frozen.stale_variable(), None);
        let mut ep = EndPoints::all();
        let out = frozen.forward(&x, &infer, &mut ep).unwrap();
        let scale = reference.abs().max().double_value(&[]).max(1.0);
        assert!(max_diff(&out, &reference) <= 1e-5 * scale, "{r:?}: output differs from the reference path");
        assert_eq!(ep.keys().collect::<Vec<_>>(), ep_ref.keys().collect::<Vec<_>>());
        for (key, t) in ep.iter() {
            let want = ep_ref.get(key).unwrap();
            let scale = want.abs().max().double_value(&[]).max(1.0);
            assert!(max_diff(t, want) <= 1e-5 * scale, "{r:?}: end point {key} differs");
        }
        // Training mode is the model's: a frozen form runs inference only.
        assert!(frozen.forward(&x, &train, &mut EndPoints::none()).is_err());
    }

    // Loading new weights stales a frozen form too.
    let fresh = model.freeze(Rewrites::default()).unwrap();
    let w = load_model(&fixture("tiny/v2"), &LoadOptions::default(), Device::Cpu).unwrap().model.weights().unwrap();
    model.load(&w).unwrap();
    assert!(matches!(fresh.forward(&x, &infer, &mut EndPoints::none()), Err(Error::Stale { .. })));
    let reloaded = model.freeze(Rewrites::default()).unwrap().forward(&x, &infer, &mut EndPoints::none()).unwrap();
    assert!(max_diff(&reloaded, &out_before) <= 1e-6, "reloaded weights give the first output back");
}

/// The inference form keeps NaN and infinity where the reference path (and TF) do: one NaN pixel
/// makes every output row it reaches NaN on both paths.
#[test]
fn nan_propagates_like_the_reference_path() {
    let model = load_model(&fixture("tiny/v2"), &LoadOptions::default(), Device::Cpu).unwrap().model;
    let x = npy_nchw(&fixture("tiny/input.npy"));
    let _ = x.get(0).get(0).get(5).get(5).fill_(f64::NAN);
    let _ = x.get(1).get(2).get(9).get(9).fill_(f64::INFINITY);
    let reference = tch::no_grad(|| model.forward(&x, &RunOptions::default(), &mut EndPoints::none())).unwrap();
    let frozen = model.freeze(Rewrites::default()).unwrap().forward(&x, &RunOptions::default(), &mut EndPoints::none()).unwrap();
    let finite = |t: &Tensor| t.isfinite().to_kind(Kind::Float);
    assert_eq!(finite(&reference).sum(Kind::Float).double_value(&[]), 0.0, "TF's result here is all NaN");
    assert!(finite(&frozen).equal(&finite(&reference)), "non-finite rows differ:\n{frozen}\n{reference}");
}

/// Streams (sub-batches in parallel) give the results and end points of one pass.
#[test]
fn streams_equal_one_pass() {
    let model = load_model(&fixture("tiny/v2"), &LoadOptions::default(), Device::Cpu).unwrap().model;
    let x = npy_nchw(&fixture("tiny/input.npy"));
    let x = Tensor::cat(&[&x, &x.flip([3]), &(&x * 0.5)], 0).narrow(0, 0, 5);
    let frozen = model.freeze(Rewrites::default()).unwrap();
    let mut ep1 = EndPoints::all();
    let one = frozen.forward(&x, &RunOptions::default(), &mut ep1).unwrap();
    let threads = tch::get_num_threads();
    for streams in [2, 3, 8] {
        let mut ep = EndPoints::all();
        let out = frozen.forward_streams(&x, &RunOptions::default(), &mut ep, streams).unwrap();
        assert!(max_diff(&out, &one) <= 1e-5, "{streams} streams: output differs");
        assert_eq!(ep.keys().collect::<Vec<_>>(), ep1.keys().collect::<Vec<_>>());
        for (key, t) in ep.iter() {
            assert!(max_diff(t, ep1.get(key).unwrap()) <= 1e-5, "{streams} streams: {key}");
        }
    }
    assert_eq!(tch::get_num_threads(), threads, "the intra-op thread count is restored");
}

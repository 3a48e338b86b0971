//! tf_slim's `resnet_v2_test.py` checks, ported: conv2d_same on even and odd inputs, end point
//! names, classification / fully convolutional / rootless / atrous shapes, atrous values equal to
//! the nominal-stride values subsampled, unknown batch size and unknown height/width.

use slimzoo::models::resnet_v2::{self, Block, ResNetV2Config, conv2d_same};
use slimzoo::nn::tf::{At, Padding, conv2d, subsample};
use slimzoo::{Arch, EndPoints, Model, NetOptions, RunOptions};
use tch::{Device, Kind, Tensor};

/// `create_input`: an NCHW batch whose value at (y, x) is y + x, in every channel.
fn create_input(batch: i64, height: i64, width: i64, channels: i64) -> Tensor {
    let y = Tensor::arange(height, (Kind::Float, Device::Cpu)).view([height, 1]);
    let x = Tensor::arange(width, (Kind::Float, Device::Cpu)).view([1, width]);
    (y + x).view([1, 1, height, width]).repeat([batch, channels, 1, 1])
}

fn grid(rows: &[&[f32]]) -> Tensor {
    let n = rows.len() as i64;
    let m = rows[0].len() as i64;
    Tensor::from_slice(&rows.concat()).view([1, 1, n, m])
}

/// slim's `conv2d` with a 3x3 kernel holding `create_input(1, 3, 3, 1)`, zero bias and ReLU, at `at`.
fn grid_conv(x: &Tensor, at: At) -> Tensor {
    conv2d(x, &create_input(1, 3, 3, 1), Some(&Tensor::zeros([1], (Kind::Float, Device::Cpu))), at).unwrap().relu()
}

fn assert_close(a: &Tensor, b: &Tensor) {
    assert_eq!(a.size(), b.size());
    let d = (a - b).abs().max().double_value(&[]);
    assert!(d <= 1e-5, "max diff {d}\n{a}\n{b}");
}

#[test]
fn conv2d_same_even() {
    let x = create_input(1, 4, 4, 1);
    let y1 = grid_conv(&x, At::SAME);
    assert_close(&y1, &grid(&[&[14., 28., 43., 26.], &[28., 48., 66., 37.], &[43., 66., 84., 46.], &[26., 37., 46., 22.]]));
    let y2 = subsample(&y1, 2).unwrap();
    assert_close(&y2, &grid(&[&[14., 43.], &[43., 84.]]));
    let y3 = grid_conv(&x, conv2d_same(3, 2, 1));
    assert_close(&y3, &y2);
    // TF's own SAME with stride 2 on an even input pads bottom/right only: different values.
    let y4 = grid_conv(&x, At::SAME.stride(2));
    assert_close(&y4, &grid(&[&[48., 37.], &[37., 22.]]));
}

#[test]
fn conv2d_same_odd() {
    let x = create_input(1, 5, 5, 1);
    let y1 = grid_conv(&x, At::SAME);
    assert_close(
        &y1,
        &grid(&[
            &[14., 28., 43., 58., 34.],
            &[28., 48., 66., 84., 46.],
            &[43., 66., 84., 102., 55.],
            &[58., 84., 102., 120., 64.],
            &[34., 46., 55., 64., 30.],
        ]),
    );
    let expected = grid(&[&[14., 43., 34.], &[43., 84., 55.], &[34., 55., 30.]]);
    assert_close(&subsample(&y1, 2).unwrap(), &expected);
    assert_close(&grid_conv(&x, conv2d_same(3, 2, 1)), &expected);
    assert_close(&grid_conv(&x, At { stride: 2, rate: 1, padding: Padding::Same }), &expected);
}

/// `_resnet_small`: base depths 1, 2, 4, 8 with 3, 3, 3, 2 units.
fn small(num_classes: Option<i64>, include_root_block: bool) -> Model {
    let blocks: Vec<Block> = vec![
        resnet_v2::resnet_v2_block("block1", 1, 3, 2),
        resnet_v2::resnet_v2_block("block2", 2, 3, 2),
        resnet_v2::resnet_v2_block("block3", 4, 3, 2),
        resnet_v2::resnet_v2_block("block4", 8, 2, 1),
    ];
    let mut cfg = ResNetV2Config::custom("resnet", blocks, num_classes);
    cfg.include_root_block = include_root_block;
    Model::new(&Arch::new(cfg), Device::Cpu).unwrap()
}

fn run(model: &Model, x: &Tensor, train: bool, global_pool: bool, output_stride: Option<i64>) -> (Tensor, EndPoints) {
    let mut ep = EndPoints::all();
    let opts = RunOptions { train, net: NetOptions { global_pool, output_stride, spatial_squeeze: false }, ..Default::default() };
    let out = tch::no_grad(|| model.forward(x, &opts, &mut ep)).unwrap();
    (out, ep)
}

fn nhwc(t: &Tensor) -> Vec<i64> {
    slimzoo::nn::to_nhwc(t).size()
}

fn block_shapes(ep: &EndPoints) -> Vec<Vec<i64>> {
    (1..=4).map(|b| nhwc(ep.get(&format!("resnet/block{b}")).unwrap())).collect()
}

/// testEndPointsV2 (on the whole small net, newest keys) and testClassificationEndPoints.
#[test]
fn end_point_names_and_classification_end_points() {
    let model = small(Some(10), true);
    let (logits, ep) = run(&model, &create_input(2, 224, 224, 3), true, true, None);
    assert_eq!(nhwc(&logits), vec![2, 1, 1, 10]);
    let mut want = vec!["resnet/conv1".to_string()];
    for (b, units) in [(1, 3), (2, 3), (3, 3), (4, 2)] {
        for u in 1..=units {
            let unit = format!("resnet/block{b}/unit_{u}/bottleneck_v2");
            if u == 1 {
                want.push(format!("{unit}/shortcut"));
            }
            want.extend(["conv1", "conv2", "conv3"].map(|c| format!("{unit}/{c}")));
            want.push(unit);
        }
        want.push(format!("resnet/block{b}"));
    }
    want.extend(["global_pool", "resnet/logits", "predictions"].map(String::from));
    assert_eq!(ep.keys().collect::<Vec<_>>(), want);
    assert_eq!(nhwc(ep.get("predictions").unwrap()), vec![2, 1, 1, 10]);
}

#[test]
fn classification_shapes() {
    let (_, ep) = run(&small(Some(10), true), &create_input(2, 224, 224, 3), true, true, None);
    assert_eq!(block_shapes(&ep), vec![vec![2, 28, 28, 4], vec![2, 14, 14, 8], vec![2, 7, 7, 16], vec![2, 7, 7, 32]]);
}

#[test]
fn fully_convolutional_endpoint_shapes() {
    let (_, ep) = run(&small(Some(10), true), &create_input(2, 321, 321, 3), true, false, None);
    assert_eq!(block_shapes(&ep), vec![vec![2, 41, 41, 4], vec![2, 21, 21, 8], vec![2, 11, 11, 16], vec![2, 11, 11, 32]]);
}

#[test]
fn rootless_fully_convolutional_endpoint_shapes() {
    let (_, ep) = run(&small(Some(10), false), &create_input(2, 128, 128, 3), true, false, None);
    assert_eq!(block_shapes(&ep), vec![vec![2, 64, 64, 4], vec![2, 32, 32, 8], vec![2, 16, 16, 16], vec![2, 16, 16, 32]]);
}

#[test]
fn atrous_fully_convolutional_endpoint_shapes() {
    let (_, ep) = run(&small(Some(10), true), &create_input(2, 321, 321, 3), true, false, Some(8));
    assert_eq!(block_shapes(&ep), vec![vec![2, 41, 41, 4], vec![2, 41, 41, 8], vec![2, 41, 41, 16], vec![2, 41, 41, 32]]);
}

/// Dense extraction at output_stride 4/8/16/32, subsampled, equals the nominal-stride output.
#[test]
fn atrous_fully_convolutional_values() {
    tch::manual_seed(0);
    let model = small(None, true);
    let x = create_input(2, 81, 81, 3);
    let (expected, _) = run(&model, &x, false, false, None);
    for os in [Some(4), Some(8), Some(16), Some(32), None] {
        let (out, _) = run(&model, &x, false, false, os);
        let factor = os.map_or(1, |s| 32 / s);
        let out = subsample(&out, factor).unwrap();
        assert_eq!(out.size(), expected.size(), "output_stride {os:?}");
        let diff = (&out - &expected).abs().max().double_value(&[]);
        let tol = 1e-4 + 1e-4 * expected.abs().max().double_value(&[]);
        assert!(diff <= tol, "output_stride {os:?}: {diff}");
    }
}

#[test]
fn unknown_batch_size() {
    let model = small(Some(10), true);
    for batch in [1, 2, 5] {
        let (logits, _) = run(&model, &create_input(batch, 65, 65, 3), true, true, None);
        assert_eq!(nhwc(&logits), vec![batch, 1, 1, 10]);
    }
}

#[test]
fn fully_convolutional_unknown_height_width() {
    let model = small(None, true);
    let (out, _) = run(&model, &create_input(2, 65, 65, 3), true, false, None);
    assert_eq!(nhwc(&out), vec![2, 3, 3, 32]);
    let (out, _) = run(&model, &create_input(2, 65, 65, 3), true, false, Some(8));
    assert_eq!(nhwc(&out), vec![2, 9, 9, 32]);
}

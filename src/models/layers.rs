//! TF-slim's layers with TF's exact semantics, on tch.
//!
//! Variables are created under the same scope names slim gives them (`weights`, `biases`,
//! `BatchNorm/beta`, …). Tensors are NCHW; kernels are stored OIHW (TF's HWIO, permuted), which is
//! the layout `convert` writes.

use crate::error::{Error, Result};
use tch::{Tensor, nn};

/// Settings of slim's `batch_norm` that change the variables or the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnConfig {
    /// `decay` of the moving averages: `moving = decay * moving + (1 - decay) * batch`.
    pub decay: f64,
    pub epsilon: f64,
    /// slim's `scale`: whether a `gamma` variable exists.
    pub scale: bool,
}

/// slim's `batch_norm`: `beta` always (center=True), `gamma` when `scale`, and the moving statistics.
#[derive(Debug)]
pub struct BatchNorm {
    pub beta: Tensor,
    pub gamma: Option<Tensor>,
    pub moving_mean: Tensor,
    pub moving_variance: Tensor,
    pub cfg: BnConfig,
}

impl BatchNorm {
    /// Creates the variables in scope `p` (slim names them `p/beta`, `p/gamma`, …).
    pub fn new(p: &nn::Path, channels: i64, cfg: BnConfig) -> Self {
        let beta = p.zeros("beta", &[channels]);
        let gamma = cfg.scale.then(|| p.ones("gamma", &[channels]));
        let moving_mean = p.zeros_no_train("moving_mean", &[channels]);
        let moving_variance = p.ones_no_train("moving_variance", &[channels]);
        BatchNorm { beta, gamma, moving_mean, moving_variance, cfg }
    }

    /// Normalizes over every dimension but dim 1 (channels).
    ///
    /// `train = true` uses the batch statistics and updates the moving averages in place, as slim
    /// does with `is_training=True` (the update op runs with the forward pass); `train = false`
    /// uses the moving statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(x.f_batch_norm(
            self.gamma.as_ref(),
            Some(&self.beta),
            Some(&self.moving_mean),
            Some(&self.moving_variance),
            train,
            1.0 - self.cfg.decay,
            self.cfg.epsilon,
            false,
        )?)
    }

    /// The inference-time affine form `x * scale + shift` of this layer (per channel).
    pub fn folded(&self) -> Result<(Tensor, Tensor)> {
        let inv = (&self.moving_variance + self.cfg.epsilon).f_rsqrt()?;
        let scale = match &self.gamma {
            Some(g) => g * inv,
            None => inv,
        };
        let shift = &self.beta - &self.moving_mean * &scale;
        Ok((scale, shift))
    }
}

/// TF's padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
    /// An explicit zero pad of `beg` before and `end` after, on both spatial dimensions, then a
    /// VALID operation (what `resnet_utils.conv2d_same` does for strides above 1).
    Explicit { beg: i64, end: i64 },
}

/// The (begin, end) padding TF uses along one dimension for `padding`, an input of `size`, an
/// effective kernel extent `k_eff = k + (k - 1) * (rate - 1)` and `stride`.
///
/// SAME: `out = ceil(size / stride)`, `total = max((out - 1) * stride + k_eff - size, 0)`,
/// `begin = total / 2`, `end = total - begin` (the extra pixel goes to the bottom/right).
pub fn tf_padding(padding: Padding, size: i64, k_eff: i64, stride: i64) -> (i64, i64) {
    match padding {
        Padding::Valid => (0, 0),
        Padding::Explicit { beg, end } => (beg, end),
        Padding::Same => {
            let out = (size + stride - 1) / stride;
            let total = ((out - 1) * stride + k_eff - size).max(0);
            (total / 2, total - total / 2)
        }
    }
}

/// The output size TF gives for one dimension.
pub fn tf_output_size(padding: Padding, size: i64, k_eff: i64, stride: i64) -> i64 {
    match padding {
        Padding::Same => (size + stride - 1) / stride,
        Padding::Valid | Padding::Explicit { .. } => {
            let (beg, end) = tf_padding(padding, size, k_eff, stride);
            let padded = size + beg + end;
            if padded < k_eff { 0 } else { (padded - k_eff) / stride + 1 }
        }
    }
}

/// Spatial size of an NCHW tensor.
pub fn hw(x: &Tensor) -> Result<(i64, i64)> {
    match x.size().as_slice() {
        [_, _, h, w] => Ok((*h, *w)),
        other => Err(Error::invalid(format!("expected an NCHW tensor, got shape {other:?}"))),
    }
}

/// A 2-D convolution with TF padding semantics (`tf.nn.conv2d` / `atrous_conv2d`).
///
/// Symmetric padding goes to libtorch's convolution directly; asymmetric SAME padding (extra
/// pixel bottom/right) is applied with an explicit zero pad first.
pub fn conv2d_tf(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: i64,
    rate: i64,
    padding: Padding,
) -> Result<Tensor> {
    let (h, w) = hw(x)?;
    let ks = weight.size();
    let (kh, kw) = (ks[2], ks[3]);
    let (eh, ew) = (kh + (kh - 1) * (rate - 1), kw + (kw - 1) * (rate - 1));
    let (pt, pb) = tf_padding(padding, h, eh, stride);
    let (pl, pr) = tf_padding(padding, w, ew, stride);
    if h + pt + pb < eh || w + pl + pr < ew {
        return Err(Error::invalid(format!(
            "a {kh}x{kw} convolution (rate {rate}, {padding:?} padding) needs an input of at least \
             {eh}x{ew}, got {h}x{w}"
        )));
    }
    if pt == pb && pl == pr {
        Ok(x.f_conv2d(weight, bias, [stride, stride], [pt, pl], [rate, rate], 1)?)
    } else {
        let padded = x.f_constant_pad_nd([pl, pr, pt, pb])?;
        Ok(padded.f_conv2d(weight, bias, [stride, stride], [0, 0], [rate, rate], 1)?)
    }
}

/// `slim.max_pool2d` with TF padding semantics: padded positions never win (TF ignores them).
///
/// A SAME pool whose padding is one pixel larger at the bottom/right (ResNet's `pool1` on even
/// inputs) is exactly libtorch's `ceil_mode` pooling, so no padded copy is made.
pub fn max_pool_tf(x: &Tensor, k: i64, stride: i64, padding: Padding) -> Result<Tensor> {
    let (h, w) = hw(x)?;
    let (pt, pb) = tf_padding(padding, h, k, stride);
    let (pl, pr) = tf_padding(padding, w, k, stride);
    if h + pt + pb < k || w + pl + pr < k {
        return Err(Error::invalid(format!(
            "a {k}x{k} max pool ({padding:?} padding) needs an input of at least {k}x{k}, got {h}x{w}"
        )));
    }
    let (oh, ow) = (tf_output_size(padding, h, k, stride), tf_output_size(padding, w, k, stride));
    // libtorch pads with -inf; its padding must not exceed half the kernel.
    // With ceil_mode its windows start at the same places as TF's and skip what lies past the
    // end, so equal output sizes mean equal values.
    let fits = |beg: i64, end: i64| (end == beg || end == beg + 1) && 2 * beg <= k;
    if fits(pt, pb) && fits(pl, pr) {
        let ceil = pb > pt || pr > pl;
        let y = x.f_max_pool2d([k, k], [stride, stride], [pt, pl], [1, 1], ceil)?;
        if hw(&y)? == (oh, ow) {
            return Ok(y);
        }
    }
    let padded = x.f_pad([pl, pr, pt, pb], "constant", f64::NEG_INFINITY)?;
    Ok(padded.f_max_pool2d([k, k], [stride, stride], [0, 0], [1, 1], false)?)
}

/// Initializers for freshly built nets (weights are normally loaded afterwards).
pub fn he_normal(fan_in: i64) -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev: (2.0 / fan_in.max(1) as f64).sqrt() }
}

/// `slim.conv2d`: `weights` [out, in, kh, kw], then either `BatchNorm` (no bias) or `biases`,
/// then an optional ReLU.
#[derive(Debug)]
pub struct SlimConv {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub bn: Option<BatchNorm>,
    pub relu: bool,
}

/// How a `SlimConv` normalizes its output.
#[derive(Debug, Clone, Copy)]
pub enum Norm {
    /// `normalizer_fn=batch_norm`: a `BatchNorm` scope, no `biases`.
    Bn(BnConfig),
    /// `normalizer_fn=None`: `biases`.
    Bias,
}

impl SlimConv {
    /// Creates `p/weights` and `p/BatchNorm/*` or `p/biases`.
    pub fn new(p: &nn::Path, c_in: i64, c_out: i64, (kh, kw): (i64, i64), norm: Norm, relu: bool) -> Self {
        let weight = p.var("weights", &[c_out, c_in, kh, kw], he_normal(c_in * kh * kw));
        let (bias, bn) = match norm {
            Norm::Bn(cfg) => (None, Some(BatchNorm::new(&(p / "BatchNorm"), c_out, cfg))),
            Norm::Bias => (Some(p.zeros("biases", &[c_out])), None),
        };
        SlimConv { weight, bias, bn, relu }
    }

    pub fn out_channels(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Convolution, normalization and activation, as `slim.conv2d` computes them.
    pub fn forward(&self, x: &Tensor, stride: i64, rate: i64, padding: Padding, train: bool) -> Result<Tensor> {
        let mut y = conv2d_tf(x, &self.weight, self.bias.as_ref(), stride, rate, padding)?;
        if let Some(bn) = &self.bn {
            y = bn.forward(&y, train)?;
        }
        if self.relu {
            y = y.f_relu_()?;
        }
        Ok(y)
    }
}

/// `slim.fully_connected`: `weights` stored [out, in] (TF's [in, out], transposed), then either
/// `BatchNorm` or `biases`, no activation here.
#[derive(Debug)]
pub struct SlimDense {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub bn: Option<BatchNorm>,
}

impl SlimDense {
    pub fn new(p: &nn::Path, c_in: i64, c_out: i64, norm: Norm) -> Self {
        let weight = p.var("weights", &[c_out, c_in], he_normal(c_in));
        let (bias, bn) = match norm {
            Norm::Bn(cfg) => (None, Some(BatchNorm::new(&(p / "BatchNorm"), c_out, cfg))),
            Norm::Bias => (Some(p.zeros("biases", &[c_out])), None),
        };
        SlimDense { weight, bias, bn }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = x.f_linear(&self.weight, self.bias.as_ref())?;
        match &self.bn {
            Some(bn) => bn.forward(&y, train),
            None => Ok(y),
        }
    }
}

/// Sum of TF's `l2_regularizer(weight_decay)` over `weights`: `weight_decay * sum(w^2) / 2` each.
pub fn l2_regularization<'a>(weights: impl IntoIterator<Item = &'a Tensor>, weight_decay: f64) -> Result<Tensor> {
    let mut total = Tensor::f_zeros([], (tch::Kind::Float, tch::Device::Cpu))?;
    let mut first = true;
    for w in weights {
        let term = w.f_square()?.f_sum(tch::Kind::Float)? * (weight_decay / 2.0);
        if first {
            total = total.f_to_device(w.device())?;
            first = false;
        }
        total = total + term;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn same_padding_matches_tf_rules() {
        // ResNet pool1 on 112: TF pads 0 top, 1 bottom.
        assert_eq!(tf_padding(Padding::Same, 112, 3, 2), (0, 1));
        assert_eq!(tf_padding(Padding::Same, 111, 3, 2), (1, 1));
        // 1x1 stride-2 shortcut: never padded.
        assert_eq!(tf_padding(Padding::Same, 56, 1, 2), (0, 0));
        assert_eq!(tf_padding(Padding::Same, 57, 1, 2), (0, 0));
        // stride 1, 3x3 atrous rate 2 → effective 5.
        assert_eq!(tf_padding(Padding::Same, 28, 5, 1), (2, 2));
        assert_eq!(tf_output_size(Padding::Same, 7, 3, 2), 4);
        assert_eq!(tf_output_size(Padding::Valid, 160, 3, 2), 79);
    }

    /// The ceil-mode shortcut and the explicit -inf padding agree, and padding never wins even
    /// when every input is negative.
    #[test]
    fn max_pool_same_ignores_padding() {
        for size in [5i64, 6, 7, 8, 112, 113] {
            let x = Tensor::rand([2, 3, size, size + 1], (Kind::Float, Device::Cpu)) - 5.0;
            let fast = max_pool_tf(&x, 3, 2, Padding::Same).unwrap();
            let (pt, pb) = tf_padding(Padding::Same, size, 3, 2);
            let (pl, pr) = tf_padding(Padding::Same, size + 1, 3, 2);
            let slow = x
                .pad([pl, pr, pt, pb], "constant", f64::NEG_INFINITY)
                .max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
            assert_eq!(fast.size(), slow.size(), "size {size}");
            assert!(fast.equal(&slow), "size {size}");
            assert!(fast.max().double_value(&[]) < -4.0);
        }
    }

    #[test]
    fn l2_regularization_is_half_sum_of_squares() {
        let a = Tensor::from_slice(&[1.0f32, 2.0]);
        let b = Tensor::from_slice(&[3.0f32]);
        let v = l2_regularization([&a, &b], 0.1).unwrap().double_value(&[]);
        assert!((v - 0.1 * 14.0 / 2.0).abs() < 1e-7, "{v}");
    }
}

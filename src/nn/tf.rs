//! TensorFlow's arithmetic where libtorch's differs: padding, pooling, batch norm, weight decay.
//!
//! Tensors are NCHW; kernels OIHW. These functions are the only place where TF's padding
//! rules are written; both execution paths ([`super::Cx`]) use them.

use crate::error::{Error, Result};
use tch::Tensor;

/// TF's padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// TF's SAME: output `ceil(size / stride)`, the extra padding pixel at the end.
    Same,
    /// TF's VALID: no padding.
    Valid,
    /// An explicit zero pad of `beg` before and `end` after, on both spatial dimensions, then a
    /// VALID operation (what `resnet_utils.conv2d_same` does for strides above 1).
    Explicit {
        /// Zeros before.
        beg: i64,
        /// Zeros after.
        end: i64,
    },
}

/// Where a convolution or pooling is applied: stride, atrous rate and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Stride on both spatial dimensions.
    pub stride: i64,
    /// Atrous rate (dilation) on both spatial dimensions.
    pub rate: i64,
    /// How the input is padded.
    pub padding: Padding,
}

impl At {
    /// Stride 1, rate 1, SAME.
    pub const SAME: At = At { stride: 1, rate: 1, padding: Padding::Same };
    /// Stride 1, rate 1, VALID.
    pub const VALID: At = At { stride: 1, rate: 1, padding: Padding::Valid };

    /// The same with another stride.
    pub fn stride(self, stride: i64) -> At {
        At { stride, ..self }
    }

    /// The same with another atrous rate.
    pub fn rate(self, rate: i64) -> At {
        At { rate, ..self }
    }
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

/// How libtorch must run a TF convolution on a given input: an explicit zero pad first (TF's
/// asymmetric SAME padding, extra pixel bottom/right) or symmetric padding inside the op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// `[left, right, top, bottom]` to pad before the convolution, when not symmetric.
    pub explicit: Option<[i64; 4]>,
    /// Symmetric padding given to the convolution itself (`[height, width]`).
    pub pad: [i64; 2],
    /// Stride (height, width).
    pub stride: [i64; 2],
    /// Dilation (height, width).
    pub dilation: [i64; 2],
}

impl ConvGeometry {
    /// The convolution's own geometry, once any [`explicit`](Self::explicit) padding is applied.
    pub fn symmetric(&self) -> super::fused::Geometry {
        super::fused::Geometry { pad: self.pad, stride: self.stride, dilation: self.dilation }
    }
}

/// The geometry of a `kernel` convolution `at` on an input of `(h, w)`; an error when TF would
/// produce an empty output.
pub fn conv_geometry((h, w): (i64, i64), (kh, kw): (i64, i64), at: At) -> Result<ConvGeometry> {
    let At { stride, rate, padding } = at;
    let (eh, ew) = (kh + (kh - 1) * (rate - 1), kw + (kw - 1) * (rate - 1));
    let (pt, pb) = tf_padding(padding, h, eh, stride);
    let (pl, pr) = tf_padding(padding, w, ew, stride);
    if h + pt + pb < eh || w + pl + pr < ew {
        return Err(Error::invalid(format!(
            "a {kh}x{kw} convolution (rate {rate}, {padding:?} padding) needs an input of at least \
             {eh}x{ew}, got {h}x{w}"
        )));
    }
    let (explicit, pad) = if pt == pb && pl == pr { (None, [pt, pl]) } else { (Some([pl, pr, pt, pb]), [0, 0]) };
    Ok(ConvGeometry { explicit, pad, stride: [stride, stride], dilation: [rate, rate] })
}

/// A 2-D convolution with TF padding semantics (`tf.nn.conv2d` / `atrous_conv2d`).
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, at: At) -> Result<Tensor> {
    let k = weight.size();
    let g = conv_geometry(hw(x)?, (k[2], k[3]), at)?;
    let padded;
    let x = match g.explicit {
        Some(p) => {
            padded = x.f_constant_pad_nd(p)?;
            &padded
        }
        None => x,
    };
    Ok(x.f_conv2d(weight, bias, g.stride, g.pad, g.dilation, 1)?)
}

/// `slim.max_pool2d` with TF padding semantics: padded positions never win (TF ignores them).
///
/// A SAME pool whose padding is one pixel larger at the bottom/right (ResNet's `pool1` on even
/// inputs) is exactly libtorch's `ceil_mode` pooling, so no padded copy is made.
pub fn max_pool(x: &Tensor, k: i64, stride: i64, padding: Padding) -> Result<Tensor> {
    let (h, w) = hw(x)?;
    let (pt, pb) = tf_padding(padding, h, k, stride);
    let (pl, pr) = tf_padding(padding, w, k, stride);
    if h + pt + pb < k || w + pl + pr < k {
        return Err(Error::invalid(format!("a {k}x{k} max pool ({padding:?} padding) needs an input of at least {k}x{k}, got {h}x{w}")));
    }
    let (oh, ow) = (tf_output_size(padding, h, k, stride), tf_output_size(padding, w, k, stride));
    // libtorch pads with -inf; its padding must not exceed half the kernel. With ceil_mode its
    // windows start at the same places as TF's and skip what lies past the end, so equal output
    // sizes mean equal values.
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

/// `resnet_utils.subsample`: a 1x1 max pool with stride `factor`, i.e. every `factor`-th pixel.
///
/// Without gradients this is a strided view. With gradients it is the 1x1 max pool itself (the
/// same values): libtorch's backward of a strided slice scatters into a fresh NCHW tensor, and
/// that gradient then flows down a block's identity shortcuts, so every convolution backward
/// would first copy its gradient back to channels-last (resnet_v2_152's training step was ~10%
/// slower); the max pool's backward keeps the input's memory format.
pub fn subsample(x: &Tensor, factor: i64) -> Result<Tensor> {
    if factor == 1 {
        return Ok(x.shallow_clone());
    }
    if x.requires_grad() {
        return Ok(x.f_max_pool2d([1, 1], [factor, factor], [0, 0], [1, 1], false)?);
    }
    Ok(x.f_slice(2, 0, None, factor)?.f_slice(3, 0, None, factor)?)
}

/// The tensors of one batch norm.
#[derive(Debug)]
pub struct BnTensors<'a> {
    /// `beta`.
    pub beta: &'a Tensor,
    /// `gamma`, when slim's `scale` is on.
    pub gamma: Option<&'a Tensor>,
    /// `moving_mean`.
    pub moving_mean: &'a Tensor,
    /// `moving_variance`.
    pub moving_variance: &'a Tensor,
    /// `decay` of the moving averages.
    pub decay: f64,
    /// Added to the variance.
    pub epsilon: f64,
}

impl BnTensors<'_> {
    /// slim's `batch_norm` over every dimension but dim 1 (channels).
    ///
    /// `train = true` uses the batch statistics and updates the moving averages in place, as slim
    /// does with `is_training=True` (the update op runs with the forward pass: TF's decay, the
    /// unbiased batch variance); `train = false` uses the moving statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(x.f_batch_norm(
            self.gamma,
            Some(self.beta),
            Some(self.moving_mean),
            Some(self.moving_variance),
            train,
            1.0 - self.decay,
            self.epsilon,
            false,
        )?)
    }

    /// The inference-time affine form `x * scale + shift` (per channel).
    pub fn affine(&self) -> Result<(Tensor, Tensor)> {
        let inv = (self.moving_variance + self.epsilon).f_rsqrt()?;
        let scale = match self.gamma {
            Some(g) => g * inv,
            None => inv,
        };
        let shift = self.beta - self.moving_mean * &scale;
        Ok((scale, shift))
    }
}

/// Sum of TF's `l2_regularizer(weight_decay)` over `weights`: `weight_decay * sum(w^2) / 2` each.
pub fn l2_regularization<'a>(weights: impl IntoIterator<Item = &'a Tensor>, weight_decay: f64) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for w in weights {
        let term = w.f_square()?.f_sum(tch::Kind::Float)? * (weight_decay / 2.0);
        total = Some(match total {
            Some(t) => t + term,
            None => term,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => Ok(Tensor::f_zeros([], (tch::Kind::Float, tch::Device::Cpu))?),
    }
}

/// `tf.nn.l2_normalize(x, axis=1, epsilon)`: `x / sqrt(max(sum(x^2), epsilon))` per row.
pub fn l2_normalize(x: &Tensor, epsilon: f64) -> Result<Tensor> {
    let sq = x.f_square()?.f_sum_dim_intlist(&[1i64][..], true, None)?;
    Ok(x.f_mul(&sq.f_clamp_min(epsilon)?.f_rsqrt()?)?)
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
        let g = conv_geometry((112, 111), (3, 3), At::SAME.stride(2)).unwrap();
        assert_eq!(g.explicit, Some([1, 1, 0, 1]));
        let g = conv_geometry((111, 111), (3, 3), At::SAME.stride(2)).unwrap();
        assert_eq!((g.explicit, g.pad), (None, [1, 1]));
        assert!(conv_geometry((2, 2), (3, 3), At::VALID).is_err());
    }

    /// The ceil-mode shortcut and the explicit -inf padding agree, and padding never wins even
    /// when every input is negative.
    #[test]
    fn max_pool_same_ignores_padding() {
        for size in [5i64, 6, 7, 8, 112, 113] {
            let x = Tensor::rand([2, 3, size, size + 1], (Kind::Float, Device::Cpu)) - 5.0;
            let fast = max_pool(&x, 3, 2, Padding::Same).unwrap();
            let (pt, pb) = tf_padding(Padding::Same, size, 3, 2);
            let (pl, pr) = tf_padding(Padding::Same, size + 1, 3, 2);
            let slow = x.pad([pl, pr, pt, pb], "constant", f64::NEG_INFINITY).max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
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
        assert_eq!(l2_regularization([], 0.1).unwrap().double_value(&[]), 0.0);
    }
}

//! What tch's API lacks, reached through the small C++ shim in `fused.cpp`: libtorch's oneDNN
//! fused convolutions (registered operators) and a tensor's reference counts.
//!
//! - [`conv`]: `mkldnn::_convolution_pointwise` — convolution + bias + optional ReLU in one pass;
//! - [`conv_add_`]: `mkldnn::_convolution_pointwise_.binary` with `add` — `acc += conv(x) + b`
//!   in place, optionally followed by ReLU;
//!
//! - [`is_exclusive`]: whether nobody else can see a tensor's memory (so it may be written in
//!   place).
//!
//! The convolutions take NCHW-shaped tensors; activations should be channels-last in memory (see
//! [`channels_last`]). CPU and float32/bfloat16 only.

use crate::error::{Error, Result};
use std::ffi::{CStr, c_char};
use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn slz_free_error(e: *mut c_char);
    fn slz_is_exclusive(t: *const C_tensor) -> i32;
    fn slz_is_channels_last(t: *const C_tensor) -> i32;
    fn slz_conv_pointwise(
        out: *mut *mut C_tensor,
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        pad: *const i64,
        stride: *const i64,
        dilation: *const i64,
        groups: i64,
        attr: *const c_char,
    ) -> *mut c_char;
    fn slz_reorder_conv_weight(
        out: *mut *mut C_tensor,
        w: *const C_tensor,
        pad: *const i64,
        stride: *const i64,
        dilation: *const i64,
        groups: i64,
        input_size: *const i64,
    ) -> *mut c_char;
    fn slz_conv_add_(
        other: *const C_tensor,
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        pad: *const i64,
        stride: *const i64,
        dilation: *const i64,
        groups: i64,
        unary: *const c_char,
    ) -> *mut c_char;
}

/// Turns the shim's error string (or null) into a result.
fn check(err: *mut c_char, what: &str) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: the shim returns a NUL-terminated string from malloc, freed here exactly once.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    unsafe { slz_free_error(err) };
    Err(Error::invalid(format!("{what}: {msg}")))
}

fn ptr(t: Option<&Tensor>) -> *const C_tensor {
    t.map_or(std::ptr::null(), Tensor::as_ptr)
}

/// The oneDNN post-op name the shim takes.
fn activation(relu: bool) -> &'static CStr {
    if relu { c"relu" } else { c"none" }
}

/// Convolution geometry: symmetric padding, stride and dilation per spatial dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Symmetric padding (height, width).
    pub pad: [i64; 2],
    /// Stride (height, width).
    pub stride: [i64; 2],
    /// Dilation (height, width).
    pub dilation: [i64; 2],
}

/// `relu?(conv(x, w) + b)`.
pub fn conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, g: Geometry, relu: bool) -> Result<Tensor> {
    let attr = activation(relu);
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: all pointers are live tensors or arrays of 2 for the duration of the call; on
    // success `out` is a new heap tensor whose ownership passes to the returned `Tensor`.
    let err = unsafe {
        slz_conv_pointwise(
            &mut out,
            x.as_ptr(),
            w.as_ptr(),
            ptr(b),
            g.pad.as_ptr(),
            g.stride.as_ptr(),
            g.dilation.as_ptr(),
            1,
            attr.as_ptr(),
        )
    };
    check(err, "fused convolution")?;
    // SAFETY: see above.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `w` reordered once into oneDNN's blocked weight layout for a convolution `g` on inputs of
/// `input_size` (NCHW sizes): an opaque MKLDNN tensor with `w`'s sizes that [`conv`] and
/// [`conv_add_`] use without reordering it on every call (they still accept it for other input
/// sizes and geometries, reordering when oneDNN wants another layout).
pub fn prepack(w: &Tensor, g: Geometry, input_size: [i64; 4]) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: as in `conv`: live inputs for the call, a new owned tensor in `out` on success.
    let err = unsafe {
        slz_reorder_conv_weight(&mut out, w.as_ptr(), g.pad.as_ptr(), g.stride.as_ptr(), g.dilation.as_ptr(), 1, input_size.as_ptr())
    };
    check(err, "weight reorder")?;
    // SAFETY: see above.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `acc = relu?(acc + conv(x, w) + b)`, in place.
pub fn conv_add_(acc: &Tensor, x: &Tensor, w: &Tensor, b: Option<&Tensor>, g: Geometry, relu: bool) -> Result<()> {
    let unary = activation(relu);
    // SAFETY: all pointers are live for the call; the shim writes into `acc` only.
    let err = unsafe {
        slz_conv_add_(
            acc.as_ptr(),
            x.as_ptr(),
            w.as_ptr(),
            ptr(b),
            g.pad.as_ptr(),
            g.stride.as_ptr(),
            g.dilation.as_ptr(),
            1,
            unary.as_ptr(),
        )
    };
    check(err, "fused convolution with residual add")
}

/// Whether `t` is the only handle to its tensor and the only tensor on its storage: no other
/// handle, no view, no end point and no autograd record can observe an in-place write to it.
pub fn is_exclusive(t: &Tensor) -> bool {
    // SAFETY: `t` is a live tensor for the duration of the call; the shim only reads counts.
    unsafe { slz_is_exclusive(t.as_ptr()) == 1 }
}

/// Whether a 4-D `t` is contiguous channels-last (NHWC in memory).
pub fn is_channels_last(t: &Tensor) -> bool {
    // SAFETY: `t` is a live tensor for the duration of the call; the shim only reads it.
    unsafe { slz_is_channels_last(t.as_ptr()) == 1 }
}

/// Whether [`prelu_`] takes `x`: a float32 CPU tensor whose dim 1 (channels) varies fastest in
/// memory, channels-last NCHW or a contiguous `[N, C]`.
pub fn prelu_applies(x: &Tensor) -> bool {
    x.kind() == tch::Kind::Float && x.device() == tch::Device::Cpu && (is_channels_last(x) || (x.dim() == 2 && x.is_contiguous()))
}

/// Per-channel values repeated over whole rows of `c` channels, long enough (≥ 256 values) for
/// an inner loop over them to vectorize.
fn channel_pattern(values: &[f32]) -> Vec<f32> {
    let c = values.len().max(1);
    values.iter().cycle().take(c * 256usize.div_ceil(c)).copied().collect()
}

/// `x > 0 ? x : y` without a branch (random signs defeat branch prediction).
#[inline(always)]
fn select_positive(x: f32, y: f32) -> f32 {
    let keep = x > 0.0;
    let mask = (keep as u32).wrapping_neg();
    f32::from_bits((x.to_bits() & mask) | (y.to_bits() & !mask))
}

/// The values of a small per-channel tensor as f32.
fn channel_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(&t.f_to_kind(tch::Kind::Float)?.f_contiguous()?.f_flatten(0, -1)?)?)
}

/// `x = x > 0 ? x : alpha[c] * x` in place, for a float32 `x` whose channels vary fastest in
/// memory (channels-last NCHW, or contiguous `[N, C]`): libtorch's `prelu` cannot vectorize along
/// a handful of channels. Same values as `x.prelu(alpha)` (and TF's `relu(x) - alpha * relu(-x)`),
/// NaN kept. The caller must hold `x` exclusively (see [`is_exclusive`]): it is written through
/// its data pointer.
pub fn prelu_(x: &Tensor, alpha: &Tensor) -> Result<()> {
    let c = x.size().get(1).copied().unwrap_or(-1);
    if !prelu_applies(x) || alpha.numel() as i64 != c {
        return Err(Error::invalid("prelu_: a float32 CPU tensor, channels-last or [N, C], with one alpha per channel is needed"));
    }
    let pattern = channel_pattern(&channel_values(alpha)?);
    // SAFETY: `x` is a dense float32 CPU tensor of `numel` elements (checked above), held
    // exclusively by the caller for the duration of the call.
    let data = unsafe { std::slice::from_raw_parts_mut(x.data_ptr() as *mut f32, x.numel()) };
    // One thread: the pass is memory-bound, and threads of our own would compete with libtorch's
    // OpenMP workers, which spin between parallel regions (measured: no faster on 2 cores).
    for block in data.chunks_mut(pattern.len()) {
        for (v, w) in block.iter_mut().zip(&pattern) {
            *v = select_positive(*v, *w * *v);
        }
    }
    Ok(())
}

/// A copy of `t` in the same memory format.
pub fn deep_copy(t: &Tensor) -> Result<Tensor> {
    let mut c = t.f_empty_like()?;
    c.f_copy_(t)?;
    Ok(c)
}

/// The same tensor (same shape) stored channels-last (NHWC in memory).
pub fn channels_last(t: &Tensor) -> Result<Tensor> {
    if t.dim() != 4 {
        return Ok(t.shallow_clone());
    }
    Ok(t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn close(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn fused_ops_equal_unfused() {
        let opts = (Kind::Float, Device::Cpu);
        let x = channels_last(&Tensor::randn([2, 8, 9, 7], opts)).unwrap();
        let w = channels_last(&Tensor::randn([6, 8, 3, 3], opts)).unwrap();
        let b = Tensor::randn([6], opts);
        let g = Geometry { pad: [2, 2], stride: [2, 2], dilation: [2, 2] };
        let reference = x.conv2d(&w, Some(&b), [2, 2], [2, 2], [2, 2], 1);
        let y = conv(&x, &w, Some(&b), g, true).unwrap();
        assert!(close(&y, &reference.relu()) < 1e-4);
        let y2 = conv(&x, &w, Some(&b), g, false).unwrap();
        assert!(close(&y2, &reference) < 1e-4);
        let acc = channels_last(&Tensor::randn(reference.size(), opts)).unwrap();
        let want = (&acc + &reference).relu();
        conv_add_(&acc, &x, &w, Some(&b), g, true).unwrap();
        assert!(close(&acc, &want) < 1e-4);
    }

    #[test]
    fn exclusivity_sees_handles_and_views() {
        let t = Tensor::zeros([4, 4], (Kind::Float, Device::Cpu));
        assert!(is_exclusive(&t));
        let h = t.shallow_clone();
        assert!(!is_exclusive(&t));
        drop(h);
        assert!(is_exclusive(&t));
        let v = t.slice(0, 0, 2, 1);
        assert!(!is_exclusive(&t) && !is_exclusive(&v));
        drop(t);
        assert!(!is_exclusive(&v), "a view keeps its base alive (`_base`): never exclusive");
        let x = Tensor::zeros([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        assert!(!is_channels_last(&x));
        let cl = channels_last(&x).unwrap();
        assert!(is_channels_last(&cl) && is_channels_last(&deep_copy(&cl).unwrap()));
    }

    #[test]
    fn prepacked_weights_give_the_same_results() {
        let opts = (Kind::Float, Device::Cpu);
        let x = channels_last(&Tensor::randn([2, 8, 9, 7], opts)).unwrap();
        let w = channels_last(&Tensor::randn([6, 8, 3, 3], opts)).unwrap();
        let b = Tensor::randn([6], opts);
        let g = Geometry { pad: [1, 1], stride: [1, 1], dilation: [1, 1] };
        let packed = prepack(&w, g, [1, 8, 32, 32]).unwrap();
        assert!(packed.is_mkldnn());
        assert_eq!(packed.size(), w.size());
        let want = conv(&x, &w, Some(&b), g, true).unwrap();
        assert!(conv(&x, &packed, Some(&b), g, true).unwrap().equal(&want));
        // Another geometry than the one packed for.
        let g2 = Geometry { pad: [2, 2], stride: [2, 2], dilation: [2, 2] };
        assert!(conv(&x, &packed, Some(&b), g2, false).unwrap().equal(&conv(&x, &w, Some(&b), g2, false).unwrap()));
    }

    #[test]
    fn prelu_in_place_equals_libtorch() {
        let opts = (Kind::Float, Device::Cpu);
        let alpha = Tensor::randn([7], opts);
        for x in [channels_last(&Tensor::randn([3, 7, 5, 4], opts)).unwrap(), Tensor::randn([9, 7], opts)] {
            let _ = x.get(0).flatten(0, -1).get(1).fill_(f64::NAN);
            let want = x.prelu(&alpha);
            prelu_(&x, &alpha).unwrap();
            assert!(x.isnan().equal(&want.isnan()));
            assert!(x.nan_to_num(0.0, None, None).equal(&want.nan_to_num(0.0, None, None)));
        }
        let nchw = Tensor::randn([2, 7, 3, 3], opts);
        assert!(prelu_(&nchw, &alpha).is_err(), "NCHW layouts are refused (libtorch's prelu does them)");
        // Large enough for the threaded path, with an odd channel count.
        let alpha = Tensor::randn([11], opts);
        let x = channels_last(&Tensor::randn([3, 11, 97, 89], opts)).unwrap();
        let want = x.prelu(&alpha);
        prelu_(&x, &alpha).unwrap();
        assert!(x.equal(&want));
    }

    #[test]
    fn errors_are_reported_not_thrown() {
        let x = Tensor::randn([1, 3, 5, 5], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([4, 2, 3, 3], (Kind::Float, Device::Cpu));
        let g = Geometry { pad: [1, 1], stride: [1, 1], dilation: [1, 1] };
        let err = conv(&x, &w, None, g, false).unwrap_err().to_string();
        assert!(err.contains("fused convolution"), "{err}");
    }
}

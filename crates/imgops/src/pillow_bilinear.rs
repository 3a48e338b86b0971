//! Bit-exact re-implementation of Pillow 13.0.0 `Image.resize((w, h), Image.BILINEAR)` for 8-bit
//! images of mode `"RGB"` (3 channels) or `"L"` (1 channel), with the default `box`
//! (whole image) and `reducing_gap=None`.
//!
//! Reference: `src/libImaging/Resample.c` of the Pillow 13.0.0 sdist (`ImagingResampleInner`,
//! `precompute_coeffs`, `normalize_coeffs_8bpc`, `_ImagingResampleHorizontal_8bpc`,
//! `_ImagingResampleVertical_8bpc`) and `_resize` in `src/_imaging.c`.
//!
//! The algorithm is a separable convolution with the triangle filter, *antialiased*: when
//! shrinking, the filter support is stretched by the scale factor (`support = scale`).
//! * Coefficients are computed in `double`, normalised to sum 1, then converted to fixed point
//!   with `PRECISION_BITS = 22`: `(int)(k * 2^22 + 0.5)` (truncating cast; `-0.5` for negatives).
//! * Each pass accumulates `1 << 21 + sum(pixel * coef)` in a 32-bit int and stores
//!   `clamp(acc >> 22, 0, 255)` as an 8-bit intermediate image (so the second pass sees rounded
//!   `u8` values).
//! * Pass order: horizontal first, unless the height shrinks by more than twice as many pixels
//!   as the width does (`(in_h - out_h) > 0 && (in_h - out_h) > (in_w - out_w) * 2`).
//!   When horizontal goes first it only processes the source rows the vertical pass will read.
//! * A pass whose size does not change is skipped; same size overall returns a copy.

use crate::common::{ResizeError, check_dims, check_out_dims, try_filled};

/// `PRECISION_BITS = 32 - 8 - 2`.
const PRECISION_BITS: u32 = 22;

/// Pillow `Image.resize((out_w, out_h), Image.BILINEAR)` of an interleaved RGB8 image
/// (`src.len() == h * w * 3`). Returns `out_h * out_w * 3` bytes.
pub fn pillow_bilinear_rgb8(src: &[u8], h: usize, w: usize, out_h: usize, out_w: usize) -> Result<Vec<u8>, ResizeError> {
    pillow_bilinear_u8(src, h, w, 3, out_h, out_w)
}

/// Same for an interleaved 8-bit image with `c` channels, `c` in {1 (mode "L"), 3 (mode "RGB")}.
/// (Modes "LA"/"RGBA" are premultiplied by Pillow before resampling and are not covered.)
pub fn pillow_bilinear_u8(src: &[u8], h: usize, w: usize, c: usize, out_h: usize, out_w: usize) -> Result<Vec<u8>, ResizeError> {
    if c != 1 && c != 3 {
        return Err(ResizeError::UnsupportedChannels(c));
    }
    check_dims(src.len(), h, w, c)?;
    check_out_dims(out_h, out_w, c)?;
    if out_h == h && out_w == w {
        // Image.resize returns self.copy() (and _resize would crop the full box).
        let mut v = try_filled(src.len(), 0u8)?;
        v.copy_from_slice(src);
        return Ok(v);
    }
    let need_h = out_w != w;
    let need_v = out_h != h;
    // Widths/heights fit in i32 (checked above), as in Pillow's int arithmetic.
    let (ih, iw, oh, ow) = (h as i64, w as i64, out_h as i64, out_w as i64);
    let horizontal_first = !((ih - oh) > 0 && (ih - oh) > (iw - ow) * 2);

    let vert = if (need_h && horizontal_first) || need_v { Some(Coeffs::new(h, out_h)?) } else { None };
    let horiz = if need_h { Some(Coeffs::new(w, out_w)?) } else { None };

    match (horizontal_first, horiz, vert) {
        (true, Some(hz), vert) => {
            // Rows of the source the vertical pass will read.
            let (y_first, y_last) = match &vert {
                Some(v) => v.span(),
                None => (0, h),
            };
            let tmp = horizontal_pass(src, w, c, y_first, y_last, out_w, &hz)?;
            match vert {
                Some(v) if need_v => vertical_pass(&tmp, out_w, c, y_first, out_h, &v),
                _ => Ok(tmp),
            }
        }
        (true, None, Some(v)) => vertical_pass(src, w, c, 0, out_h, &v),
        (false, hz, Some(v)) => {
            let tmp = vertical_pass(src, w, c, 0, out_h, &v)?;
            match hz {
                Some(hz) => horizontal_pass(&tmp, w, c, 0, out_h, out_w, &hz),
                None => Ok(tmp),
            }
        }
        // horizontal_first == false implies the height changes, so `vert` exists; and
        // (true, None, None) means nothing changes, handled above.
        _ => {
            let mut v = try_filled(src.len(), 0u8)?;
            v.copy_from_slice(src);
            Ok(v)
        }
    }
}

/// Fixed-point filter taps of one axis (`precompute_coeffs` + `normalize_coeffs_8bpc`).
struct Coeffs {
    /// Per output index: first input index and number of taps.
    bounds: Vec<(usize, usize)>,
    /// `ksize` taps per output index (zero padded).
    kk: Vec<i32>,
    ksize: usize,
}

/// Pillow's `bilinear_filter`.
#[inline]
fn bilinear_filter(x: f64) -> f64 {
    let x = if x < 0.0 { -x } else { x };
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

impl Coeffs {
    /// `precompute_coeffs(inSize, in0 = 0, in1 = inSize, outSize, &BILINEAR, ...)`.
    fn new(in_size: usize, out_size: usize) -> Result<Coeffs, ResizeError> {
        let support_base = 1.0f64; // BILINEAR.support
        let in0: f32 = 0.0;
        let in1: f32 = in_size as f32; // box[] is float in Pillow
        // scale = (double)(in1 - in0) / outSize, the subtraction done in float.
        let scale = (in1 - in0) as f64 / out_size as f64;
        let filterscale = if scale < 1.0 { 1.0 } else { scale };
        let support = support_base * filterscale;
        let ksize = (support.ceil() as usize).saturating_mul(2).saturating_add(1);
        let total = ksize.checked_mul(out_size).ok_or(ResizeError::TooLarge)?;
        if total > crate::common::MAX_ELEMS {
            return Err(ResizeError::TooLarge);
        }
        let mut kk = try_filled(total, 0i32)?;
        let mut bounds = Vec::new();
        bounds.try_reserve_exact(out_size).map_err(|_| ResizeError::OutOfMemory)?;
        let mut k = vec![0f64; ksize];
        let inv_filterscale = 1.0 / filterscale;
        for xx in 0..out_size {
            let center = in0 as f64 + (xx as f64 + 0.5) * scale;
            // (int)(...) truncates toward zero.
            let mut xmin = (center - support + 0.5) as i64;
            if xmin < 0 {
                xmin = 0;
            }
            let mut xmax = (center + support + 0.5) as i64;
            if xmax > in_size as i64 {
                xmax = in_size as i64;
            }
            xmax -= xmin;
            let n = xmax.clamp(0, ksize as i64) as usize;
            let mut ww = 0.0f64;
            for (x, kx) in k.iter_mut().enumerate().take(n) {
                let wgt = bilinear_filter(((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale);
                *kx = wgt;
                ww += wgt;
            }
            if ww != 0.0 {
                for kx in k.iter_mut().take(n) {
                    *kx /= ww;
                }
            }
            let row = &mut kk[xx * ksize..(xx + 1) * ksize];
            for (dst, &kx) in row.iter_mut().zip(k.iter()).take(n) {
                // normalize_coeffs_8bpc: truncating (int) cast after adding +-0.5.
                let scaled = kx * (1u32 << PRECISION_BITS) as f64;
                *dst = if kx < 0.0 { (-0.5 + scaled) as i32 } else { (0.5 + scaled) as i32 };
            }
            bounds.push((xmin as usize, n));
        }
        Ok(Coeffs { bounds, kk, ksize })
    }

    /// `(ybox_first, ybox_last)`: first source index used and one past the last one used.
    fn span(&self) -> (usize, usize) {
        let first = self.bounds.first().map_or(0, |b| b.0);
        let last = self.bounds.last().map_or(0, |b| b.0 + b.1);
        (first, last.max(first))
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (min, n) = self.bounds[i];
        (min, &self.kk[i * self.ksize..i * self.ksize + n])
    }
}

/// `clip8`: `clamp(acc >> 22, 0, 255)` (Pillow uses a lookup table covering -640..639).
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `_ImagingResampleHorizontal_8bpc` over source rows `y0..y1`.
fn horizontal_pass(src: &[u8], w: usize, c: usize, y0: usize, y1: usize, out_w: usize, co: &Coeffs) -> Result<Vec<u8>, ResizeError> {
    let rows = y1.saturating_sub(y0);
    let mut out = try_filled(rows * out_w * c, 0u8)?;
    let sstep = w * c;
    for (r, orow) in out.chunks_exact_mut(out_w * c).enumerate() {
        let srow = &src[(y0 + r) * sstep..(y0 + r + 1) * sstep];
        for xx in 0..out_w {
            let (xmin, k) = co.taps(xx);
            for ch in 0..c {
                let mut ss: i32 = 1 << (PRECISION_BITS - 1);
                for (x, &kx) in k.iter().enumerate() {
                    ss = ss.wrapping_add((srow[(x + xmin) * c + ch] as i32).wrapping_mul(kx));
                }
                orow[xx * c + ch] = clip8(ss);
            }
        }
    }
    Ok(out)
}

/// `_ImagingResampleVertical_8bpc`; `y_offset` is subtracted from the tap positions (the
/// horizontal-first path only kept source rows `y_offset..`).
fn vertical_pass(src: &[u8], w: usize, c: usize, y_offset: usize, out_h: usize, co: &Coeffs) -> Result<Vec<u8>, ResizeError> {
    let sstep = w * c;
    let mut out = try_filled(out_h * sstep, 0u8)?;
    for (yy, orow) in out.chunks_exact_mut(sstep).enumerate() {
        let (ymin, k) = co.taps(yy);
        let ymin = ymin - y_offset.min(ymin);
        for (e, o) in orow.iter_mut().enumerate() {
            let mut ss: i32 = 1 << (PRECISION_BITS - 1);
            for (y, &ky) in k.iter().enumerate() {
                ss = ss.wrapping_add((src[(y + ymin) * sstep + e] as i32).wrapping_mul(ky));
            }
            *o = clip8(ss);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_args() {
        assert!(pillow_bilinear_rgb8(&[0; 12], 2, 2, 0, 1).is_err());
        assert!(pillow_bilinear_rgb8(&[0; 11], 2, 2, 1, 1).is_err());
        assert!(pillow_bilinear_u8(&[0; 8], 2, 2, 2, 1, 1).is_err());
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![200u8; 9 * 31 * 3];
        for &(oh, ow) in &[(160, 160), (3, 5), (9, 160), (160, 31), (1, 1)] {
            let out = pillow_bilinear_rgb8(&src, 9, 31, oh, ow).unwrap();
            assert!(out.iter().all(|&v| v == 200), "{oh}x{ow}");
        }
    }
}

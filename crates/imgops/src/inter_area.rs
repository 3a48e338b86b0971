//! Bit-exact re-implementation of OpenCV 4.x `cv::resize(src, dst, dsize, 0, 0, INTER_AREA)`
//! for interleaved `u8` and `f64` images with 1..=4 channels.
//!
//! Reference: OpenCV 4.14.0, `modules/imgproc/src/resize.cpp` (`cv::resize`, `cv::hal::resize`,
//! `resizeAreaFast_Invoker`, `ResizeAreaFastVec`, `computeResizeAreaTab`, `ResizeArea_Invoker`,
//! `resizeGeneric_Invoker`, `HResizeLinear`, `VResizeLinear`), as shipped in
//! `opencv-python-headless==4.14.0.94`. The IPP HAL of that build is *not* used for INTER_AREA:
//! `ipp_hal_resize` maps INTER_AREA to `ippSuper`, which it refuses unless
//! `cv::ipp::setUseIPP_NotExact(true)` (off by default) and always refuses for `CV_64F`.
//! OpenCV's SIMD kernels on these paths compute the same integers / IEEE operations in the same
//! order as its scalar code, so one scalar implementation reproduces both.
//!
//! OpenCV picks one of three algorithms (all reproduced here):
//!
//! 1. **Integer-factor shrink** (`scale_x = w/out_w` and `scale_y = h/out_h` both within
//!    `DBL_EPSILON` of an integer, both `>= 1`): box average over `sx*sy` pixels.
//!    * `u8`, factor 2x2, 1/3/4 channels: `(a+b+c+d+2) >> 2` (round half up).
//!    * otherwise the integer sum times `1.f/area` (a `float`), rounded with `cvRound`
//!      (round half to even) and saturated. For `f64` the sum is a `double`, accumulated four
//!      terms at a time as `sum += ((a+b)+c)+d` (OpenCV's `CV_ENABLE_UNROLLED` loop), then
//!      multiplied by `(double)(1.f/area)`.
//! 2. **General shrink** (both scales `>= 1`): exact pixel-area weights from
//!    `computeResizeAreaTab` (weights stored as `float`), accumulated per row into a `float`
//!    (`u8`) or `double` (`f64`) buffer, rows blended with the vertical weights; `u8` results are
//!    rounded with `cvRound` (half to even) and saturated.
//! 3. **Any enlargement on either axis**: OpenCV's bilinear resize with INTER_AREA's own
//!    coefficient rule (`sx = floor(dx*scale)`, `fx = (dx+1) - (sx+1)/scale`, wrapped to [0,1)).
//!    * `u8`: coefficients are `short` = `cvRound(coef * 2048.f)`; horizontal pass gives
//!      `int` = `S0*a0 + S1*a1`; vertical pass is
//!      `(((b0*(S0>>4))>>16) + ((b1*(S1>>4))>>16) + 2) >> 2`.
//!    * `f64`: coefficients are `float` widened to `double`; both passes are `S0*a0 + S1*a1` in
//!      `double` (no fused multiply-add).
//!
//! Output size handling is the caller's: facenet passes `(int(ceil(h*scale)), ...)`.

use crate::common::{ResizeError, check_dims, check_out_dims, try_filled};

/// `DBL_EPSILON` from `<float.h>`.
const DBL_EPSILON: f64 = f64::EPSILON;
/// `INTER_RESIZE_COEF_BITS` / `INTER_RESIZE_COEF_SCALE`.
const COEF_BITS: u32 = 11;
const COEF_SCALE: i32 = 1 << COEF_BITS;

/// Resize an interleaved `u8` image (`h` rows, `w` columns, `c` channels, 1..=4) to
/// `out_h` x `out_w` exactly as `cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)`.
pub fn resize_area_u8(src: &[u8], h: usize, w: usize, c: usize, out_h: usize, out_w: usize) -> Result<Vec<u8>, ResizeError> {
    resize_area::<U8>(src, h, w, c, out_h, out_w)
}

/// Resize an interleaved `f64` image (1..=4 channels) exactly as `cv2.resize(..., INTER_AREA)`
/// does for a `float64` numpy array. Non-finite inputs are processed like OpenCV does (IEEE
/// arithmetic), never rejected.
pub fn resize_area_f64(src: &[f64], h: usize, w: usize, c: usize, out_h: usize, out_w: usize) -> Result<Vec<f64>, ResizeError> {
    resize_area::<F64>(src, h, w, c, out_h, out_w)
}

/// Which of OpenCV's code paths a given size pair takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Plan {
    /// `dsize == ssize`: `src.copyTo(dst)`.
    Copy,
    /// `resizeAreaFast_` with integer factors.
    AreaFast { sx: usize, sy: usize },
    /// `resizeArea_` with fractional factors (both >= 1).
    Area { scale_x: f64, scale_y: f64 },
    /// `resizeGeneric_` with linear kernels in "area mode" (some factor < 1).
    Linear { scale_x: f64, scale_y: f64, inv_x: f64, inv_y: f64 },
}

/// `cvRound(double)` with `saturate_cast<int>` semantics (round half to even, clamp).
fn saturate_round_i32(v: f64) -> i64 {
    if v.is_nan() {
        return i32::MIN as i64; // cvtsd2si returns the "integer indefinite" value
    }
    v.round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64) as i64
}

/// Decide the path like `cv::resize` + `cv::hal::resize` do for `interpolation == INTER_AREA`.
pub(crate) fn plan(h: usize, w: usize, out_h: usize, out_w: usize) -> Plan {
    if h == out_h && w == out_w {
        return Plan::Copy;
    }
    // cv::resize: inv_scale_x = (double)dsize.width/ssize.width
    let inv_x = out_w as f64 / w as f64;
    let inv_y = out_h as f64 / h as f64;
    // cv::hal::resize
    let scale_x = 1.0 / inv_x;
    let scale_y = 1.0 / inv_y;
    let iscale_x = saturate_round_i32(scale_x);
    let iscale_y = saturate_round_i32(scale_y);
    let is_area_fast = (scale_x - iscale_x as f64).abs() < DBL_EPSILON && (scale_y - iscale_y as f64).abs() < DBL_EPSILON;
    if scale_x >= 1.0 && scale_y >= 1.0 {
        if is_area_fast {
            // iscale_* >= 1 here because scale_* >= 1.
            return Plan::AreaFast { sx: iscale_x as usize, sy: iscale_y as usize };
        }
        return Plan::Area { scale_x, scale_y };
    }
    Plan::Linear { scale_x, scale_y, inv_x, inv_y }
}

/// Per-element-type arithmetic of OpenCV's templates.
trait Pixel: Copy + Default {
    /// Accumulator of `resizeAreaFast_` (`int` for u8, `double` for f64).
    type FastSum: Copy + Default + std::ops::Add<Output = Self::FastSum>;
    /// Work type of `resizeArea_` (`float` for u8, `double` for f64).
    type AreaWt: Copy + Default + std::ops::Add<Output = Self::AreaWt> + std::ops::Mul<Output = Self::AreaWt>;
    /// Row buffer type of `resizeGeneric_` (`int` for u8, `double` for f64).
    type LinWt: Copy + Default;
    /// Coefficient type of `resizeGeneric_` (`short` for u8, `float` for f64).
    type LinCoef: Copy + Default;

    /// True when `ResizeAreaFastVec` has a special 2x2 rounding mode (u8 only).
    const HAS_2X2_MODE: bool;
    fn fast_sum(self) -> Self::FastSum;
    /// 2x2 special mode: `(a+b+c+d+2)>>2`.
    fn avg4_round_up(a: Self, b: Self, c: Self, d: Self) -> Self;
    /// `saturate_cast<T>(sum * scale)` with `scale = 1.f/area`.
    fn fast_finish(sum: Self::FastSum, scale: f32) -> Self;
    /// `saturate_cast<T>((float)sum/count)` (tail loop of `resizeAreaFast_Invoker`).
    fn fast_finish_count(sum: Self::FastSum, count: i32) -> Self;
    fn area_wt(self) -> Self::AreaWt;
    fn area_coef(a: f32) -> Self::AreaWt;
    /// `saturate_cast<T>(WT)`.
    fn area_finish(v: Self::AreaWt) -> Self;
    /// Coefficient from the float `cbuf[k]`.
    fn lin_coef(v: f32) -> Self::LinCoef;
    /// `S0*a0 + S1*a1`.
    fn lin_h2(s0: Self, s1: Self, a0: Self::LinCoef, a1: Self::LinCoef) -> Self::LinWt;
    /// `S*ONE` for destination columns clamped to the last source column.
    fn lin_h1(s: Self) -> Self::LinWt;
    /// Vertical blend of two row-buffer values.
    fn lin_v(s0: Self::LinWt, s1: Self::LinWt, b0: Self::LinCoef, b1: Self::LinCoef) -> Self;
}

struct U8;
struct F64;

/// Zero-sized selectors so the generic code can name the element type.
trait Kind {
    type T: Pixel;
}
impl Kind for U8 {
    type T = u8;
}
impl Kind for F64 {
    type T = f64;
}

/// `saturate_cast<uchar>(float)`: `cvRound` (round half to even) then clamp to 0..=255.
#[inline]
fn sat_u8_from_f32(v: f32) -> u8 {
    if v.is_nan() {
        // cvRound(NaN) = INT_MIN (cvtss2si indefinite) -> saturates to 0.
        return 0;
    }
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

impl Pixel for u8 {
    type FastSum = i32;
    type AreaWt = f32;
    type LinWt = i32;
    type LinCoef = i16;
    const HAS_2X2_MODE: bool = true;

    #[inline]
    fn fast_sum(self) -> i32 {
        self as i32
    }
    #[inline]
    fn avg4_round_up(a: u8, b: u8, c: u8, d: u8) -> u8 {
        ((a as i32 + b as i32 + c as i32 + d as i32 + 2) >> 2) as u8
    }
    #[inline]
    fn fast_finish(sum: i32, scale: f32) -> u8 {
        // int * float -> float in C++.
        sat_u8_from_f32(sum as f32 * scale)
    }
    #[inline]
    fn fast_finish_count(sum: i32, count: i32) -> u8 {
        sat_u8_from_f32(sum as f32 / count as f32)
    }
    #[inline]
    fn area_wt(self) -> f32 {
        self as f32
    }
    #[inline]
    fn area_coef(a: f32) -> f32 {
        a
    }
    #[inline]
    fn area_finish(v: f32) -> u8 {
        sat_u8_from_f32(v)
    }
    #[inline]
    fn lin_coef(v: f32) -> i16 {
        // saturate_cast<short>(cbuf[k]*INTER_RESIZE_COEF_SCALE): float product, cvRound, clamp.
        let p = v * COEF_SCALE as f32;
        if p.is_nan() {
            return 0;
        }
        p.round_ties_even().clamp(i16::MIN as f32, i16::MAX as f32) as i16
    }
    #[inline]
    fn lin_h2(s0: u8, s1: u8, a0: i16, a1: i16) -> i32 {
        s0 as i32 * a0 as i32 + s1 as i32 * a1 as i32
    }
    #[inline]
    fn lin_h1(s: u8) -> i32 {
        s as i32 * COEF_SCALE
    }
    #[inline]
    fn lin_v(s0: i32, s1: i32, b0: i16, b1: i16) -> u8 {
        // VResizeLinear<uchar, int, short, FixedPtCast<int, uchar, 22>, VResizeLinearVec_32s8u>:
        // both the SIMD kernel (v_mul_hi on (S>>4) packed to int16, v_rshr_pack_u<2>) and the
        // scalar tail compute this expression. Operands are small enough that the int16 packing
        // never saturates and the result never exceeds 255.
        let t0 = (b0 as i32).wrapping_mul(s0 >> 4) >> 16;
        let t1 = (b1 as i32).wrapping_mul(s1 >> 4) >> 16;
        (t0.wrapping_add(t1).wrapping_add(2) >> 2) as u8
    }
}

impl Pixel for f64 {
    type FastSum = f64;
    type AreaWt = f64;
    type LinWt = f64;
    type LinCoef = f32;
    const HAS_2X2_MODE: bool = false;

    #[inline]
    fn fast_sum(self) -> f64 {
        self
    }
    #[inline]
    fn avg4_round_up(_a: f64, _b: f64, _c: f64, _d: f64) -> f64 {
        // Never called: HAS_2X2_MODE is false (ResizeAreaFastNoVec for double).
        0.0
    }
    #[inline]
    fn fast_finish(sum: f64, scale: f32) -> f64 {
        sum * scale as f64
    }
    #[inline]
    fn fast_finish_count(sum: f64, count: i32) -> f64 {
        (sum as f32 / count as f32) as f64
    }
    #[inline]
    fn area_wt(self) -> f64 {
        self
    }
    #[inline]
    fn area_coef(a: f32) -> f64 {
        a as f64
    }
    #[inline]
    fn area_finish(v: f64) -> f64 {
        v
    }
    #[inline]
    fn lin_coef(v: f32) -> f32 {
        v
    }
    #[inline]
    fn lin_h2(s0: f64, s1: f64, a0: f32, a1: f32) -> f64 {
        s0 * a0 as f64 + s1 * a1 as f64
    }
    #[inline]
    fn lin_h1(s: f64) -> f64 {
        s
    }
    #[inline]
    fn lin_v(s0: f64, s1: f64, b0: f32, b1: f32) -> f64 {
        s0 * b0 as f64 + s1 * b1 as f64
    }
}

fn resize_area<K: Kind>(src: &[K::T], h: usize, w: usize, c: usize, out_h: usize, out_w: usize) -> Result<Vec<K::T>, ResizeError> {
    if !(1..=4).contains(&c) {
        return Err(ResizeError::UnsupportedChannels(c));
    }
    check_dims(src.len(), h, w, c)?;
    let n_out = check_out_dims(out_h, out_w, c)?;
    let mut dst = try_filled(n_out, K::T::default())?;
    let d = Dims { h, w, c, out_h, out_w };
    match plan(h, w, out_h, out_w) {
        Plan::Copy => dst.copy_from_slice(src),
        Plan::AreaFast { sx, sy } => area_fast(src, d, sx, sy, &mut dst),
        Plan::Area { scale_x, scale_y } => area_general(src, d, scale_x, scale_y, &mut dst)?,
        Plan::Linear { scale_x, scale_y, inv_x, inv_y } => linear_area_mode(src, d, (scale_x, scale_y), (inv_x, inv_y), &mut dst)?,
    }
    Ok(dst)
}

/// `resizeAreaFast_Invoker` (with `ResizeAreaFastVec` for u8, `ResizeAreaFastNoVec` for f64).
#[allow(clippy::too_many_arguments)]
/// Source size, channels and output size of one resize (validated by the caller).
#[derive(Debug, Clone, Copy)]
struct Dims {
    h: usize,
    w: usize,
    c: usize,
    out_h: usize,
    out_w: usize,
}

fn area_fast<T: Pixel>(src: &[T], d: Dims, sx: usize, sy: usize, dst: &mut [T]) {
    let Dims { h, w, c, out_h, out_w } = d;
    let sstep = w * c; // elements per source row
    let dwidth = out_w * c;
    let area = sx * sy;
    let scale: f32 = 1.0f32 / area as f32;
    // dwidth1 = (ssize.width/scale_x)*cn: the columns whose whole block is inside the image.
    let dwidth1 = (w / sx) * c;
    // ofs[k] = sy*srcstep + sx*cn in row-major block order.
    let mut ofs = Vec::with_capacity(area);
    for by in 0..sy {
        for bx in 0..sx {
            ofs.push(by * sstep + bx * c);
        }
    }
    let fast_2x2 = T::HAS_2X2_MODE && sx == 2 && sy == 2 && matches!(c, 1 | 3 | 4);

    for (dy, drow) in dst.chunks_exact_mut(dwidth).enumerate().take(out_h) {
        let sy0 = dy * sy;
        if sy0 >= h {
            drow.iter_mut().for_each(|d| *d = T::default());
            continue;
        }
        let wfull = if sy0 + sy <= h { dwidth1.min(dwidth) } else { 0 };
        let row0 = sy0 * sstep;
        let mut e = 0;
        if fast_2x2 {
            while e < wfull {
                let ch = e % c;
                let px = e / c;
                let i0 = row0 + 2 * px * c + ch;
                let i1 = i0 + sstep;
                drow[e] = T::avg4_round_up(src[i0], src[i0 + c], src[i1], src[i1 + c]);
                e += 1;
            }
        } else {
            while e < wfull {
                // xofs[dx*cn + k] = scale_x*dx*cn + k
                let base = row0 + sx * (e - e % c) + e % c;
                let mut sum = T::FastSum::default();
                let mut k = 0;
                // CV_ENABLE_UNROLLED: sum += S[o0] + S[o1] + S[o2] + S[o3]
                while k + 4 <= area {
                    let s = src[base + ofs[k]].fast_sum()
                        + src[base + ofs[k + 1]].fast_sum()
                        + src[base + ofs[k + 2]].fast_sum()
                        + src[base + ofs[k + 3]].fast_sum();
                    sum = sum + s;
                    k += 4;
                }
                while k < area {
                    sum = sum + src[base + ofs[k]].fast_sum();
                    k += 1;
                }
                drow[e] = T::fast_finish(sum, scale);
                e += 1;
            }
        }
        // Tail: partial blocks at the right/bottom border. Unreachable for the integer factors
        // that select this path (the source is an exact multiple), kept for fidelity.
        while e < dwidth {
            let sx0 = sx * (e - e % c) + e % c;
            let mut sum = T::FastSum::default();
            let mut count = 0i32;
            for by in 0..sy {
                if sy0 + by >= h {
                    break;
                }
                let mut bx = 0;
                while bx < sx * c {
                    if sx0 + bx >= sstep {
                        break;
                    }
                    sum = sum + src[(sy0 + by) * sstep + sx0 + bx].fast_sum();
                    count += 1;
                    bx += c;
                }
            }
            drow[e] = if count == 0 { T::default() } else { T::fast_finish_count(sum, count) };
            e += 1;
        }
    }
}

/// One entry of `computeResizeAreaTab`: destination element, source element, weight.
#[derive(Debug, Clone, Copy)]
struct Decimate {
    di: usize,
    si: usize,
    alpha: f32,
}

/// `computeResizeAreaTab(ssize, dsize, cn, scale, tab)`.
fn area_tab(ssize: usize, dsize: usize, cn: usize, scale: f64) -> Result<Vec<Decimate>, ResizeError> {
    let mut tab = Vec::new();
    tab.try_reserve(ssize.saturating_mul(2)).map_err(|_| ResizeError::OutOfMemory)?;
    let ss = ssize as i64;
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        // std::min(scale, ssize - fsx1)
        let rest = ss as f64 - fsx1;
        let cell_width = if rest < scale { rest } else { scale };
        let mut sx1 = fsx1.ceil() as i64;
        let mut sx2 = fsx2.floor() as i64;
        sx2 = sx2.min(ss - 1);
        sx1 = sx1.min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            tab.push(Decimate { di: dx * cn, si: ((sx1 - 1).max(0) as usize) * cn, alpha: ((sx1 as f64 - fsx1) / cell_width) as f32 });
        }
        let mut sx = sx1;
        while sx < sx2 {
            tab.push(Decimate { di: dx * cn, si: (sx.max(0) as usize) * cn, alpha: (1.0 / cell_width) as f32 });
            sx += 1;
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            let part = (fsx2 - sx2 as f64).min(1.0);
            let part = if cell_width < part { cell_width } else { part };
            tab.push(Decimate { di: dx * cn, si: (sx2.max(0) as usize) * cn, alpha: (part / cell_width) as f32 });
        }
    }
    Ok(tab)
}

/// `resizeArea_` / `ResizeArea_Invoker`.
fn area_general<T: Pixel>(src: &[T], d: Dims, scale_x: f64, scale_y: f64, dst: &mut [T]) -> Result<(), ResizeError> {
    let Dims { h, w, c, out_h, out_w } = d;
    let xtab = area_tab(w, out_w, c, scale_x)?;
    let ytab = area_tab(h, out_h, 1, scale_y)?;
    let sstep = w * c;
    let dwidth = out_w * c;
    let mut buf = try_filled(dwidth, T::AreaWt::default())?;
    let mut sum = try_filled(dwidth, T::AreaWt::default())?;
    let mut j = 0;
    while j < ytab.len() {
        let dy = ytab[j].di;
        sum.iter_mut().for_each(|s| *s = T::AreaWt::default());
        while j < ytab.len() && ytab[j].di == dy {
            let beta = T::area_coef(ytab[j].alpha);
            let row = &src[ytab[j].si * sstep..(ytab[j].si + 1) * sstep];
            buf.iter_mut().for_each(|b| *b = T::AreaWt::default());
            for t in &xtab {
                let alpha = T::area_coef(t.alpha);
                for ch in 0..c {
                    // WT t0 = buf[dxn] + S[sxn]*alpha
                    buf[t.di + ch] = buf[t.di + ch] + row[t.si + ch].area_wt() * alpha;
                }
            }
            // inter_area::mul / muladd: sum = beta*buf (first row: 0 + beta*buf) / sum += beta*buf
            for (s, b) in sum.iter_mut().zip(buf.iter()) {
                *s = *s + beta * *b;
            }
            j += 1;
        }
        if let Some(drow) = dst.get_mut(dy * dwidth..(dy + 1) * dwidth) {
            for (d, s) in drow.iter_mut().zip(sum.iter()) {
                *d = T::area_finish(*s);
            }
        }
    }
    Ok(())
}

/// Coefficients of one axis for the linear "area mode" (the `for dx` / `for dy` loops of
/// `cv::hal::resize`). Returns `(offset, coef0, coef1, clamped)` per destination index where
/// `clamped` marks indices at or past `xmax` (right border) for the x axis.
fn linear_axis(dsize: usize, ssize: usize, scale: f64, inv_scale: f64, clamp: bool) -> Vec<(usize, f32, bool)> {
    let mut v = Vec::with_capacity(dsize);
    let mut xmax = dsize;
    for d in 0..dsize {
        let mut s = (d as f64 * scale).floor() as i64; // cvFloor(dx*scale_x)
        let f = ((d + 1) as f64 - (s + 1) as f64 * inv_scale) as f32;
        let mut f = if f <= 0.0 { 0.0f32 } else { f - f.floor() };
        if s < 0 {
            s = 0;
            f = 0.0;
        }
        if clamp && s + 1 >= ssize as i64 {
            xmax = xmax.min(d);
            if s >= ssize as i64 - 1 {
                f = 0.0;
                s = ssize as i64 - 1;
            }
        }
        v.push((s.max(0) as usize, f, false));
    }
    if clamp {
        for e in v.iter_mut().skip(xmax) {
            e.2 = true;
        }
    }
    v
}

/// `resizeGeneric_` with `HResizeLinear`/`VResizeLinear`, coefficients in INTER_AREA mode.
/// `scale` and `inv_scale` are (x, y) pairs.
fn linear_area_mode<T: Pixel>(src: &[T], d: Dims, scale: (f64, f64), inv_scale: (f64, f64), dst: &mut [T]) -> Result<(), ResizeError> {
    let Dims { h, w, c, out_h, out_w } = d;
    let ((scale_x, scale_y), (inv_x, inv_y)) = (scale, inv_scale);
    let xs = linear_axis(out_w, w, scale_x, inv_x, true);
    let ys = linear_axis(out_h, h, scale_y, inv_y, false);
    let sstep = w * c;
    let dwidth = out_w * c;
    // Per destination column: source offset (pixel), coefficients, clamped flag.
    let xc: Vec<(usize, T::LinCoef, T::LinCoef, bool)> =
        xs.iter().map(|&(s, f, clamped)| (s, T::lin_coef(1.0f32 - f), T::lin_coef(f), clamped)).collect();
    let hpass = |row: &[T], out: &mut [T::LinWt]| {
        for (dx, &(sx, a0, a1, clamped)) in xc.iter().enumerate() {
            let base = sx * c;
            for ch in 0..c {
                out[dx * c + ch] = if clamped { T::lin_h1(row[base + ch]) } else { T::lin_h2(row[base + ch], row[base + c + ch], a0, a1) };
            }
        }
    };
    let mut r0 = try_filled(dwidth, T::LinWt::default())?;
    let mut r1 = try_filled(dwidth, T::LinWt::default())?;
    for (dy, &(sy, fy, _)) in ys.iter().enumerate() {
        // clip(sy + k, 0, ssize.height) for k = 0, 1
        let y0 = sy.min(h - 1);
        let y1 = (sy + 1).min(h - 1);
        hpass(&src[y0 * sstep..(y0 + 1) * sstep], &mut r0);
        hpass(&src[y1 * sstep..(y1 + 1) * sstep], &mut r1);
        let b0 = T::lin_coef(1.0f32 - fy);
        let b1 = T::lin_coef(fy);
        let drow = &mut dst[dy * dwidth..(dy + 1) * dwidth];
        for ((d, &s0), &s1) in drow.iter_mut().zip(r0.iter()).zip(r1.iter()) {
            *d = T::lin_v(s0, s1, b0, b1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(plan(10, 10, 10, 10), Plan::Copy);
        assert_eq!(plan(10, 10, 5, 5), Plan::AreaFast { sx: 2, sy: 2 });
        assert!(matches!(plan(10, 10, 6, 6), Plan::Area { .. }));
        assert!(matches!(plan(10, 10, 24, 24), Plan::Linear { .. }));
        assert!(matches!(plan(10, 30, 24, 24), Plan::Linear { .. }));
    }

    #[test]
    fn rejects_bad_args() {
        assert!(resize_area_u8(&[0; 12], 2, 2, 3, 0, 1).is_err());
        assert!(resize_area_u8(&[0; 11], 2, 2, 3, 1, 1).is_err());
        assert!(resize_area_u8(&[0; 10], 2, 1, 5, 1, 1).is_err());
        assert!(resize_area_f64(&[], 0, 0, 3, 1, 1).is_err());
        assert!(resize_area_u8(&[0; 3], 1, 1, 3, usize::MAX, 2).is_err());
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![77u8; 13 * 17 * 3];
        for &(oh, ow) in &[(5, 7), (24, 24), (48, 48), (6, 8), (13, 40), (40, 5)] {
            let out = resize_area_u8(&src, 13, 17, 3, oh, ow).unwrap();
            assert!(out.iter().all(|&v| v == 77), "{oh}x{ow}");
        }
    }
}

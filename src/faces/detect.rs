//! facenet's `detect_face` (`src/align/detect_face.py`), step for step.
//!
//! The arithmetic is reproduced exactly where the reference is exact: the image pyramid is
//! OpenCV's `INTER_AREA` on the uint8 photo, crops are resized with `INTER_AREA` on float64, box
//! arithmetic is float64 with `np.fix` truncations where `detect_face` has them, `nms` sorts
//! scores ascending and takes the last, and numpy's slicing rules (negative stops count from the
//! end) decide what lands in a zero-padded crop. The nets see the image with x and y transposed,
//! as `detect_face` feeds them. Only the nets' float32 outputs differ from TF's (by ~1e-6).
//!
//! Differences from the reference, by necessity: numpy's unstable `argsort` may order exactly
//! equal scores differently (equal scores of overlapping boxes are the only case where the kept
//! box could differ); a box for which `detect_face` itself raises (a crop whose two slices do not
//! match, a negative crop size) is dropped instead.

use super::{DetectOptions, Face};
use crate::error::{Error, Result};
use crate::photo::Rgb8;
use crate::{EndPoints, Frozen, RunOptions};
use tch::{Kind, Tensor};

/// One candidate: `[x1, y1, x2, y2, score]` and the regression `[dx1, dy1, dx2, dy2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Box and score, as `detect_face`'s `total_boxes` columns 0..5.
    pub b: [f64; 5],
    /// Box regression (columns 5..9 in stage 1; the nets' `conv*-2` outputs later).
    pub reg: [f64; 4],
}

/// The scales of the image pyramid for an image whose shorter side is `min_side`.
pub fn scales(min_side: usize, opts: &DetectOptions) -> Vec<f64> {
    let m = 12.0 / opts.min_size;
    let mut minl = min_side as f64 * m;
    let mut scales = Vec::new();
    let mut count = 0i32;
    while minl >= 12.0 {
        scales.push(m * numpy_power(opts.factor, count));
        minl *= opts.factor;
        count += 1;
    }
    scales
}

/// `np.power(factor, k)`: numpy's own values for facenet's factor 0.709 (they differ from libm's
/// `pow` by an ulp for some `k`, see `tools/numpy_pow_table.py`), libm's `pow` otherwise.
fn numpy_power(factor: f64, k: i32) -> f64 {
    use super::numpy_pow::{FACTOR, POWERS};
    match usize::try_from(k).ok().and_then(|k| POWERS.get(k)) {
        Some(&bits) if factor == FACTOR => f64::from_bits(bits),
        _ => factor.powf(k as f64),
    }
}

/// `int(np.ceil(size * scale))`.
pub fn scaled(size: usize, scale: f64) -> usize {
    (size as f64 * scale).ceil() as usize
}

/// Runs `f` on `0..n` split into contiguous ranges, one per core, results in range order.
fn par_ranges<T: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> Result<T> + Sync) -> Result<Vec<T>> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n).max(1);
    if threads == 1 {
        return Ok(vec![f(0..n)?]);
    }
    let chunk = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|i| s.spawn(move || f(i * chunk..((i + 1) * chunk).min(n)))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::invalid("a detection worker thread panicked")))).collect()
    })
}

/// `np.fix`: rounds toward zero.
fn fix(v: f64) -> f64 {
    v.trunc()
}

/// The net input for a uint8 HWC image: `(x - 127.5) * 0.0078125` (exact in float32), with x
/// and y transposed (`[1, 3, width, height]`), built directly in the channels-last memory layout
/// the frozen nets use (`[width][height][3]`).
pub fn pnet_input(pixels: &[u8], h: usize, w: usize) -> Result<Tensor> {
    let mut vals = vec![0f32; h * w * 3];
    for y in 0..h {
        for x in 0..w {
            let (src, dst) = ((y * w + x) * 3, (x * h + y) * 3);
            for c in 0..3 {
                vals[dst + c] = (pixels[src + c] as f32 - 127.5) * 0.0078125;
            }
        }
    }
    Ok(Tensor::f_from_slice(&vals)?.f_view([1, w as i64, h as i64, 3])?.f_permute([0, 3, 1, 2])?)
}

/// Runs a frozen MTCNN net; its output channels are `prob1` then the regressions (see
/// [`crate::models::mtcnn`]).
fn run(net: &Frozen, x: &Tensor) -> Result<Tensor> {
    let y = net.forward(x, &RunOptions::default(), &mut EndPoints::none())?;
    Ok(y.f_to_kind(Kind::Float)?.f_contiguous()?)
}

/// A CPU float tensor's values.
fn values(t: &Tensor) -> Result<Vec<f32>> {
    let t = t.f_to_device(tch::Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?;
    let n = t.numel();
    let mut v = vec![0f32; n];
    t.f_copy_data(&mut v, n)?;
    Ok(v)
}

/// P-Net's output on one pyramid level: maps indexed `[x][y]` (x first, as the net sees the
/// transposed image), row-major.
#[derive(Debug, Clone)]
pub struct PnetMaps {
    /// The face probability (`prob1` channel 1).
    pub prob: Vec<f32>,
    /// The box regression `dx1, dy1, dx2, dy2` (`conv4-2`).
    pub reg: [Vec<f32>; 4],
    /// (width, height) of the maps.
    pub dims: (usize, usize),
}

/// P-Net on one pyramid level (`pixels`: the resized uint8 image, `hs` x `ws`).
pub fn pnet_maps(pnet: &Frozen, pixels: &[u8], hs: usize, ws: usize) -> Result<PnetMaps> {
    let out = run(pnet, &pnet_input(pixels, hs, ws)?)?;
    let s = out.size();
    let (mw, mh) = (s[2] as usize, s[3] as usize);
    let all = values(&out)?;
    let plane = |c: usize| all[c * mw * mh..(c + 1) * mw * mh].to_vec();
    Ok(PnetMaps { prob: plane(1), reg: [plane(2), plane(3), plane(4), plane(5)], dims: (mw, mh) })
}

/// `generateBoundingBox(imap, reg, scale, t)` on P-Net's maps.
pub fn generate_bounding_box(maps: &PnetMaps, scale: f64, t: f64) -> Vec<Candidate> {
    let PnetMaps { prob, reg, dims: (mw, mh) } = maps;
    let (mw, mh) = (*mw, *mh);
    let hits: Vec<(usize, usize)> =
        (0..mw).flat_map(|x| (0..mh).map(move |y| (x, y))).filter(|&(x, y)| prob[x * mh + y] as f64 >= t).collect();
    // detect_face flips the regression maps upside down (along x) when there is one hit.
    let flip = hits.len() == 1;
    hits.into_iter()
        .map(|(x, y)| {
            let rx = if flip { mw - 1 - x } else { x };
            let r = |c: usize| reg[c][rx * mh + y] as f64;
            let (bx, by) = (x as f64, y as f64);
            let b = [
                fix((2.0 * bx + 1.0) / scale),
                fix((2.0 * by + 1.0) / scale),
                fix((2.0 * bx + 12.0) / scale),
                fix((2.0 * by + 12.0) / scale),
                prob[x * mh + y] as f64,
            ];
            Candidate { b, reg: [r(0), r(1), r(2), r(3)] }
        })
        .collect()
}

/// How overlap is measured in [`nms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union.
    Union,
    /// Intersection over the smaller area.
    Min,
}

/// `nms(boxes, threshold, method)`: the indices kept, highest score first.
///
/// Scores are sorted ascending (stable: equal scores keep their order) and the last is taken;
/// areas and intersections count pixels inclusively (+1); a box is dropped when its overlap with
/// the kept one is above `threshold`. `pick` is an int16 array in `detect_face`: an index above
/// 32767 wraps and then counts from the end, as numpy does.
pub fn nms(boxes: &[Candidate], threshold: f64, method: Overlap) -> Vec<usize> {
    let n = boxes.len();
    let area = |c: &Candidate| (c.b[2] - c.b[0] + 1.0) * (c.b[3] - c.b[1] + 1.0);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| boxes[a].b[4].total_cmp(&boxes[b].b[4]));
    let mut pick = Vec::new();
    while let Some(i) = order.pop() {
        pick.push(i);
        let bi = &boxes[i];
        order.retain(|&j| {
            let bj = &boxes[j];
            let w = 0f64.max(bi.b[2].min(bj.b[2]) - bi.b[0].max(bj.b[0]) + 1.0);
            let h = 0f64.max(bi.b[3].min(bj.b[3]) - bi.b[1].max(bj.b[1]) + 1.0);
            let inter = w * h;
            let o = match method {
                Overlap::Min => inter / area(bi).min(area(bj)),
                Overlap::Union => inter / (area(bi) + area(bj) - inter),
            };
            o <= threshold
        });
    }
    pick.into_iter()
        .map(|i| {
            let p = i as i16 as isize;
            if p < 0 { (n as isize + p) as usize } else { p as usize }
        })
        .collect()
}

/// `bbreg`: calibrates boxes with the regression, widths counted inclusively.
fn bbreg(c: &mut Candidate) {
    let w = c.b[2] - c.b[0] + 1.0;
    let h = c.b[3] - c.b[1] + 1.0;
    c.b = [c.b[0] + c.reg[0] * w, c.b[1] + c.reg[1] * h, c.b[2] + c.reg[2] * w, c.b[3] + c.reg[3] * h, c.b[4]];
}

/// `rerec`: makes boxes square around their centre (side `max(w, h)`, not inclusive).
fn rerec(c: &mut Candidate) {
    let h = c.b[3] - c.b[1];
    let w = c.b[2] - c.b[0];
    let l = w.max(h);
    c.b[0] = c.b[0] + w * 0.5 - l * 0.5;
    c.b[1] = c.b[1] + h * 0.5 - l * 0.5;
    c.b[2] = c.b[0] + l;
    c.b[3] = c.b[1] + l;
}

/// Python's `a[start:stop]` bounds on a sequence of `len`: negative values count from the end,
/// then both are clamped to `[0, len]`; an empty slice when `stop <= start`.
fn py_slice(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let norm = |v: i64| if v < 0 { (v + len).max(0) } else { v.min(len) };
    let (a, b) = (norm(start), norm(stop));
    (a as usize, b.max(a) as usize)
}

/// `pad` + the zero-padded crop of `detect_face` for an integral box, as float64 HWC, or `None`
/// where `detect_face` itself would raise.
fn padded_crop(img: &Rgb8, b: &[f64; 5]) -> Option<(Vec<f64>, usize, usize)> {
    let (w, h) = (img.width as i64, img.height as i64);
    // `.astype(np.int32)` of values that are already integers (np.fix was applied).
    let (bx1, by1, bx2, by2) = (b[0] as i64, b[1] as i64, b[2] as i64, b[3] as i64);
    let tmpw = bx2 - bx1 + 1;
    let tmph = by2 - by1 + 1;
    if tmpw < 0 || tmph < 0 {
        return None; // np.zeros with a negative size raises
    }
    let (mut dx, mut dy, mut edx, mut edy) = (1i64, 1i64, tmpw, tmph);
    let (mut x, mut y, mut ex, mut ey) = (bx1, by1, bx2, by2);
    if ex > w {
        edx = -ex + w + tmpw;
        ex = w;
    }
    if ey > h {
        edy = -ey + h + tmph;
        ey = h;
    }
    if x < 1 {
        dx = 2 - x;
        x = 1;
    }
    if y < 1 {
        dy = 2 - y;
        y = 1;
    }
    let (tw, th) = (tmpw as usize, tmph as usize);
    if (tw == 0) != (th == 0) {
        return None; // detect_face: `return np.empty()`
    }
    let (sy0, sy1) = py_slice(y - 1, ey, img.height);
    let (sx0, sx1) = py_slice(x - 1, ex, img.width);
    let (ty0, ty1) = py_slice(dy - 1, edy, th);
    let (tx0, tx1) = py_slice(dx - 1, edx, tw);
    if sy1 - sy0 != ty1 - ty0 || sx1 - sx0 != tx1 - tx0 {
        return None; // the assignment's shapes differ: numpy raises
    }
    let mut tmp = vec![0f64; th * tw * 3];
    for (r, sr) in (ty0..ty1).zip(sy0..sy1) {
        for (c, sc) in (tx0..tx1).zip(sx0..sx1) {
            for k in 0..3 {
                tmp[(r * tw + c) * 3 + k] = img.data[(sr * img.width + sc) * 3 + k] as f64;
            }
        }
    }
    Some((tmp, th, tw))
}

/// The R-Net / O-Net input for `boxes` of `img`: each crop resized to `size` with `INTER_AREA`
/// on float64, normalized in float64, then float32, x and y transposed: `[k, 3, size, size]`.
/// Returns the tensor and which boxes it holds (boxes `detect_face` would raise on are left out).
pub fn crops(img: &Rgb8, boxes: &[Candidate], size: usize) -> Result<(Vec<f32>, Vec<usize>)> {
    let parts = par_ranges(boxes.len(), |range| {
        let mut out = Vec::with_capacity(range.len() * size * size * 3);
        let mut kept = Vec::with_capacity(range.len());
        for k in range {
            let Some((tmp, th, tw)) = padded_crop(img, &boxes[k].b) else { continue };
            let resized = if th == 0 {
                vec![0f64; size * size * 3]
            } else {
                imgops::resize_area_f64(&tmp, th, tw, 3, size, size).map_err(|e| Error::invalid(format!("crop resize: {e}")))?
            };
            // HWC (row y, column x) → CHW with x first: [3][x][y].
            for ch in 0..3 {
                for x in 0..size {
                    for y in 0..size {
                        out.push(((resized[(y * size + x) * 3 + ch] - 127.5) * 0.0078125) as f32);
                    }
                }
            }
            kept.push(k);
        }
        Ok((out, kept))
    })?;
    let (mut out, mut kept) = (Vec::new(), Vec::new());
    for (o, k) in parts {
        out.extend(o);
        kept.extend(k);
    }
    Ok((out, kept))
}

/// The stages of [`run_stages`]' work on one image, for inspection and tests.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The pyramid's scales.
    pub scales: Vec<f64>,
    /// Boxes after stage 1 (NMS per scale and 0.7, regression, square, `np.fix`).
    pub stage1: Vec<[f64; 5]>,
    /// Boxes after stage 2 (R-Net threshold, NMS 0.7, regression, square).
    pub stage2: Vec<[f64; 5]>,
}

/// One image's work in progress.
struct Job<'a> {
    img: &'a Rgb8,
    boxes: Vec<Candidate>,
    trace: Trace,
}

/// Per job, (box index, the net's output row) for every box that gave a crop.
type NetRows = Vec<Vec<(usize, Vec<f32>)>>;

/// Runs a refinement net on the crops of every job's boxes at once (batched across images).
fn refine(net: &Frozen, jobs: &mut [Job<'_>], size: usize) -> Result<NetRows> {
    let mut data = Vec::new();
    let mut owners = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        let (d, kept) = crops(job.img, &job.boxes, size)?;
        data.extend(d);
        owners.extend(kept.into_iter().map(|k| (j, k)));
    }
    let mut per_job: Vec<Vec<(usize, Vec<f32>)>> = jobs.iter().map(|_| Vec::new()).collect();
    if owners.is_empty() {
        return Ok(per_job);
    }
    let s = size as i64;
    let x = Tensor::f_from_slice(&data)?.f_view([owners.len() as i64, 3, s, s])?;
    // Batches of at most 256 crops keep memory bounded on crowded images.
    let mut rows = Vec::with_capacity(owners.len());
    for start in (0..owners.len() as i64).step_by(256) {
        let n = 256.min(owners.len() as i64 - start);
        let out = run(net, &x.f_narrow(0, start, n)?)?;
        let width = out.size()[1] as usize;
        rows.extend(values(&out)?.chunks(width).map(<[f32]>::to_vec));
    }
    for ((j, k), row) in owners.into_iter().zip(rows) {
        per_job[j].push((k, row));
    }
    Ok(per_job)
}

/// `detect_face` on each image: faces in `detect_face`'s order (descending score after the last
/// NMS), with the trace of the first two stages.
pub fn run_stages(pnet: &Frozen, rnet: &Frozen, onet: &Frozen, images: &[&Rgb8], opts: &DetectOptions) -> Result<Vec<(Vec<Face>, Trace)>> {
    let mut jobs = Vec::with_capacity(images.len());
    for img in images {
        jobs.push(stage1(pnet, img, opts)?);
    }
    // Stage 2: R-Net on 24x24 crops.
    let outs = refine(rnet, &mut jobs, 24)?;
    for (job, rows) in jobs.iter_mut().zip(outs) {
        let mut next = Vec::new();
        for (k, row) in rows {
            let score = row[1] as f64;
            if score > opts.thresholds[1] {
                let b = job.boxes[k].b;
                next.push(Candidate {
                    b: [b[0], b[1], b[2], b[3], score],
                    reg: [row[2] as f64, row[3] as f64, row[4] as f64, row[5] as f64],
                });
            }
        }
        let pick = nms(&next, 0.7, Overlap::Union);
        job.boxes = pick
            .into_iter()
            .map(|i| {
                let mut c = next[i];
                bbreg(&mut c);
                rerec(&mut c);
                c
            })
            .collect();
        job.trace.stage2 = job.boxes.iter().map(|c| c.b).collect();
        // Stage 3 starts with np.fix(total_boxes).astype(np.int32) on every column.
        for c in &mut job.boxes {
            c.b = c.b.map(|v| fix(v) as i32 as f64);
        }
    }
    // Stage 3: O-Net on 48x48 crops, landmarks.
    let outs = refine(onet, &mut jobs, 48)?;
    let mut results = Vec::with_capacity(jobs.len());
    for (job, rows) in jobs.into_iter().zip(outs) {
        let mut cands = Vec::new();
        let mut points = Vec::new();
        for (k, row) in rows {
            let score = row[1] as f64;
            if score > opts.thresholds[2] {
                let b = job.boxes[k].b;
                let c = Candidate { b: [b[0], b[1], b[2], b[3], score], reg: [row[2] as f64, row[3] as f64, row[4] as f64, row[5] as f64] };
                let (w, h) = (c.b[2] - c.b[0] + 1.0, c.b[3] - c.b[1] + 1.0);
                // Computed in float64, stored into O-Net's float32 array.
                let mut p = [[0f64; 2]; 5];
                for (i, pt) in p.iter_mut().enumerate() {
                    pt[0] = (w * row[6 + i] as f64 + c.b[0] - 1.0) as f32 as f64;
                    pt[1] = (h * row[11 + i] as f64 + c.b[1] - 1.0) as f32 as f64;
                }
                cands.push(c);
                points.push(p);
            }
        }
        for c in &mut cands {
            bbreg(c);
        }
        let pick = nms(&cands, 0.7, Overlap::Min);
        let faces = pick
            .into_iter()
            .map(|i| {
                let b = cands[i].b;
                Face { bbox: [b[0], b[1], b[2], b[3]], score: b[4], landmarks: points[i] }
            })
            .collect();
        results.push((faces, job.trace));
    }
    Ok(results)
}

/// Stage 1 on one image: the pyramid, P-Net, candidates, NMS, regression, squares, `np.fix`.
fn stage1<'a>(pnet: &Frozen, img: &'a Rgb8, opts: &DetectOptions) -> Result<Job<'a>> {
    let scales = scales(img.height.min(img.width), opts);
    // The pyramid's levels are resized in parallel (each reads the whole photo), P-Net then runs
    // on them one by one with all cores.
    let levels: Vec<Vec<u8>> = par_ranges(scales.len(), |range| {
        range
            .map(|i| {
                let (hs, ws) = (scaled(img.height, scales[i]), scaled(img.width, scales[i]));
                imgops::resize_area_u8(&img.data, img.height, img.width, 3, hs, ws)
                    .map_err(|e| Error::invalid(format!("pyramid resize to {hs}x{ws}: {e}")))
            })
            .collect::<Result<Vec<_>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    let mut total = Vec::new();
    for (&scale, level) in scales.iter().zip(&levels) {
        let (hs, ws) = (scaled(img.height, scale), scaled(img.width, scale));
        let maps = pnet_maps(pnet, level, hs, ws)?;
        let boxes = generate_bounding_box(&maps, scale, opts.thresholds[0]);
        let pick = nms(&boxes, 0.5, Overlap::Union);
        total.extend(pick.into_iter().map(|i| boxes[i]));
    }
    let mut boxes = Vec::new();
    if !total.is_empty() {
        for i in nms(&total, 0.7, Overlap::Union) {
            let c = total[i];
            let (regw, regh) = (c.b[2] - c.b[0], c.b[3] - c.b[1]);
            let mut q = Candidate {
                b: [c.b[0] + c.reg[0] * regw, c.b[1] + c.reg[1] * regh, c.b[2] + c.reg[2] * regw, c.b[3] + c.reg[3] * regh, c.b[4]],
                reg: [0.0; 4],
            };
            rerec(&mut q);
            for v in &mut q.b[0..4] {
                *v = fix(*v) as i32 as f64;
            }
            boxes.push(q);
        }
    }
    let trace = Trace { scales, stage1: boxes.iter().map(|c| c.b).collect(), stage2: Vec::new() };
    Ok(Job { img, boxes, trace })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(b: [f64; 5]) -> Candidate {
        Candidate { b, reg: [0.0; 4] }
    }

    #[test]
    fn pyramid_like_detect_face() {
        let opts = DetectOptions::default();
        let s = scales(1080, &opts);
        assert_eq!(s.len(), 12);
        assert_eq!(s[0], 0.6);
        assert_eq!(s[1], 0.6 * 0.709);
        assert_eq!((scaled(1080, s[0]), scaled(1920, s[0])), (648, 1152));
        assert!(scales(19, &opts).is_empty());
    }

    #[test]
    fn nms_keeps_the_best_and_drops_overlaps() {
        let boxes = [cand([0., 0., 9., 9., 0.5]), cand([1., 1., 10., 10., 0.9]), cand([50., 50., 60., 60., 0.7])];
        assert_eq!(nms(&boxes, 0.5, Overlap::Union), [1, 2]);
        // Min: a box inside another overlaps fully.
        let nested = [cand([0., 0., 99., 99., 0.9]), cand([10., 10., 20., 20., 0.8])];
        assert_eq!(nms(&nested, 0.7, Overlap::Min), [0]);
        assert_eq!(nms(&nested, 0.7, Overlap::Union), [0, 1]);
        assert!(nms(&[], 0.5, Overlap::Union).is_empty());
    }

    #[test]
    fn python_slices() {
        assert_eq!(py_slice(0, 5, 10), (0, 5));
        assert_eq!(py_slice(0, -3, 10), (0, 7));
        assert_eq!(py_slice(4, 2, 10), (4, 4));
        assert_eq!(py_slice(-20, 30, 10), (0, 10));
    }

    #[test]
    fn crops_zero_pad_outside_the_image() {
        let img = Rgb8 { height: 4, width: 4, data: (0..48).map(|v| v as u8).collect() };
        // A box hanging over the top-left corner by one pixel.
        let (tmp, th, tw) = padded_crop(&img, &[0., 0., 2., 2., 0.]).unwrap();
        assert_eq!((th, tw), (3, 3));
        assert_eq!(&tmp[0..3], &[0.0; 3]);
        assert_eq!(&tmp[(3 + 1) * 3..(3 + 1) * 3 + 3], &[0.0, 1.0, 2.0]);
        assert_eq!(rerec_of([0., 0., 10., 4.]), [0., -3., 10., 7.]);
    }

    fn rerec_of(b: [f64; 4]) -> [f64; 4] {
        let mut c = cand([b[0], b[1], b[2], b[3], 0.]);
        rerec(&mut c);
        [c.b[0], c.b[1], c.b[2], c.b[3]]
    }
}

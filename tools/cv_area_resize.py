#!/usr/bin/env python3
"""cv_area_resize.py: OpenCV's cv2.resize(..., interpolation=INTER_AREA) written out in numpy, for the
two input types facenet's detect_face gives it (imresample, detect_face.py line 766):
  uint8  [H, W, 3]  the photo, downscaled for the P-Net pyramid (line 325)
  float64 [h, w, 3] the zero-padded box crops, resized to 24x24 / 48x48 (lines 364, 392)
It exists to pin down, for the Rust port, exactly which arithmetic OpenCV does; `check` verifies it
bit for bit against the installed cv2 on every resize a faceref.py refs run recorded.

OpenCV (modules/imgproc/src/resize.cpp, cv::resize): scale_x = src_w / dst_w, scale_y = src_h / dst_h
(double); iscale = saturate_cast<int>(scale) (round to nearest); is_area_fast = both |scale - iscale| <
DBL_EPSILON.
  * both scales >= 1 and is_area_fast: resizeAreaFast_ ('area_fast'): each output is the mean of an
    iscale_y x iscale_x cell. uint8 with 2x2 cells: (a + b + c + d + 2) >> 2 (ResizeAreaFastVec, any
    channel count 1/3/4); uint8 other cells: int sum, saturate_cast<uchar>(sum * (1.f / area)) (float
    product, round half to even); float64: double sum in cell order (row-major, unrolled by 4:
    sum += ((S0 + S1) + S2) + S3), then sum * (double)(1.f / area).
  * both scales >= 1, not integer: resizeArea_ ('area'): per axis a table (computeResizeAreaTab) of
    (dst index, src index, float alpha) with cellWidth = min(scale, ssize - dx*scale), a partial first
    source pixel if sx1 - fsx1 > 1e-3 (alpha (sx1 - fsx1) / cellWidth), whole pixels (alpha 1 / cellWidth),
    a partial last one if fsx2 - sx2 > 1e-3 (alpha min(min(fsx2 - sx2, 1), cellWidth) / cellWidth), each
    alpha rounded to float32. Rows: buf[dx] += S[sx] * alpha over the x table in order, then
    sum[dy] = beta0 * buf0 (+= beta_j * buf_j in y-table order). Work type WT = float32 for uint8 (result
    saturate_cast<uchar>: round half to even), float64 for float64 (alphas widened from float32).
  * otherwise (any scale < 1): bilinear with INTER_AREA's coefficients ('linear_area'):
    sx = floor(dx * scale_x); fx = (float)((dx + 1) - (sx + 1) * inv_scale_x); fx = fx <= 0 ? 0 :
    fx - floor(fx); sx clamped to [0, W-1] with fx = 0 past the right edge (sx >= W - 1); coefficients
    (1 - fx, fx) as float32; same for y. Horizontal then vertical pass in WT (float64 for float64 input),
    rows sy and sy + 1 clipped to the image.
The IPP HAL in opencv-python's build does not take INTER_AREA (ippSuper is 'not exact' and 64f is refused:
hal/ipp/src/resize_ipp.cpp), and no other path is used for these types; `check` also compares with
cv2.ipp.setUseIPP(False) and cv2.setNumThreads(1).

  cv_area_resize.py check REFS_DIR     verify on every resize a refs run recorded (exit 1 on a mismatch)
  cv_area_resize.py selftest           random uint8/float64 inputs on shapes covering every branch
"""
import argparse
import json
import math
import os
import sys

import numpy as np

DBL_EPSILON = 2.220446049250313e-16


def path_of(src_hw, dst_hw):
    sy = src_hw[0] / float(dst_hw[0])
    sx = src_hw[1] / float(dst_hw[1])
    fast = abs(sx - round(sx)) < DBL_EPSILON and abs(sy - round(sy)) < DBL_EPSILON
    if sx >= 1 and sy >= 1:
        return "area_fast" if fast else "area"
    return "linear_area"


def area_tab(ssize, dsize, scale):
    """computeResizeAreaTab (cn = 1): list of (di, si, alpha as float32)."""
    tab = []
    for dx in range(dsize):
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, ssize - fsx1)
        sx1, sx2 = math.ceil(fsx1), math.floor(fsx2)
        sx2 = min(sx2, ssize - 1)
        sx1 = min(sx1, sx2)
        if sx1 - fsx1 > 1e-3:
            tab.append((dx, sx1 - 1, np.float32((sx1 - fsx1) / cell)))
        for sx in range(sx1, sx2):
            tab.append((dx, sx, np.float32(1.0 / cell)))
        if fsx2 - sx2 > 1e-3:
            tab.append((dx, sx2, np.float32(min(min(fsx2 - sx2, 1.0), cell) / cell)))
    return tab


def _grouped(tab, dsize):
    """Per output index the list of (si, alpha) in table order, as padded arrays [dsize, n]."""
    per = [[] for _ in range(dsize)]
    for di, si, a in tab:
        per[di].append((si, a))
    n = max(len(p) for p in per)
    si = np.zeros((dsize, n), np.int64)
    al = np.zeros((dsize, n), np.float32)
    valid = np.zeros((dsize, n), bool)
    for d, p in enumerate(per):
        for k, (s, a) in enumerate(p):
            si[d, k], al[d, k], valid[d, k] = s, a, True
    return si, al, valid


def resize_area_generic(src, dst_hw):
    H, W, C = src.shape
    dh, dw = dst_hw
    wt = np.float32 if src.dtype == np.uint8 else np.float64
    xsi, xal, xvalid = _grouped(area_tab(W, dw, W / float(dw)), dw)
    ytab = area_tab(H, dh, H / float(dh))
    S = src.astype(wt)
    xal_w = xal.astype(wt)
    out = np.zeros((dh, dw, C), wt)
    sums = {}
    for dy, sy, beta in ytab:
        row = S[sy]                                   # [W, C]
        buf = np.zeros((dw, C), wt)
        for k in range(xsi.shape[1]):                 # buf[dx] += S[sx] * alpha, in table order
            v = xvalid[:, k]
            buf[v] += row[xsi[v, k]] * xal_w[v, k][:, None]
        b = wt(beta)
        if dy in sums:
            sums[dy] = sums[dy] + b * buf
        else:
            sums[dy] = b * buf
    for dy, s in sums.items():
        out[dy] = s
    if src.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def resize_area_fast(src, dst_hw):
    H, W, C = src.shape
    dh, dw = dst_hw
    iy, ix = H // dh, W // dw
    cells = src.reshape(dh, iy, dw, ix, C).transpose(0, 2, 1, 3, 4).reshape(dh, dw, iy * ix, C)
    area = iy * ix
    if src.dtype == np.uint8:
        s = cells.astype(np.int64).sum(axis=2)
        if ix == 2 and iy == 2:
            return ((s + 2) >> 2).astype(np.uint8)
        return np.clip(np.rint((s.astype(np.float32) * np.float32(1.0 / area))), 0, 255).astype(np.uint8)
    cells = cells.astype(np.float64)
    s = np.zeros((dh, dw, C), np.float64)
    k = 0
    while k <= area - 4:
        s = s + (((cells[:, :, k] + cells[:, :, k + 1]) + cells[:, :, k + 2]) + cells[:, :, k + 3])
        k += 4
    while k < area:
        s = s + cells[:, :, k]
        k += 1
    return s * np.float64(np.float32(1.0) / np.float32(area))


def _linear_area_coeffs(ssize, dsize):
    scale = ssize / float(dsize)
    inv = dsize / float(ssize)
    ofs = np.zeros(dsize, np.int64)
    c0 = np.zeros(dsize, np.float32)
    c1 = np.zeros(dsize, np.float32)
    xmax = dsize
    for d in range(dsize):
        s = math.floor(d * scale)
        f = np.float32((d + 1) - (s + 1) * inv)
        f = np.float32(0.0) if f <= 0 else np.float32(f - np.float32(math.floor(f)))
        if s < 0:                                   # ksize2 - 1 = 0
            f, s = np.float32(0.0), 0
        if s + 1 >= ssize:
            xmax = min(xmax, d)
            if s >= ssize - 1:
                f, s = np.float32(0.0), ssize - 1
        ofs[d] = s
        c0[d] = np.float32(1.0) - f
        c1[d] = f
    return ofs, c0, c1, xmax


def resize_linear_area(src, dst_hw):
    if src.dtype != np.float64:
        raise NotImplementedError("linear_area is written out here for float64 input only (uint8 uses "
                                  "fixed-point coefficients; detect_face never upscales its uint8 image)")
    H, W, C = src.shape
    dh, dw = dst_hw
    xo, xa0, xa1, xmax = _linear_area_coeffs(W, dw)
    yo, yb0, yb1, _ = _linear_area_coeffs(H, dh)
    S = src.astype(np.float64)
    # horizontal pass on every source row: D = S[sx] * a0 + S[sx + 1] * a1 for dx < xmax, else S[sx]
    nxt = np.minimum(xo + 1, W - 1)
    hor = S[:, xo] * xa0.astype(np.float64)[None, :, None] + S[:, nxt] * xa1.astype(np.float64)[None, :, None]
    hor[:, xmax:] = S[:, xo[xmax:]]
    r0 = np.clip(yo, 0, H - 1)
    r1 = np.clip(yo + 1, 0, H - 1)
    return hor[r0] * yb0.astype(np.float64)[:, None, None] + hor[r1] * yb1.astype(np.float64)[:, None, None]


def resize(src, dst_hw):
    """cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_AREA) for uint8 / float64 [H, W, C]."""
    p = path_of(src.shape[:2], dst_hw)
    if p == "area_fast":
        return resize_area_fast(src, dst_hw), p
    if p == "area":
        return resize_area_generic(src, dst_hw), p
    return resize_linear_area(src, dst_hw), p


# ------------------------------------------------------------------------------------------------
def recorded_resizes(refs, stem):
    """(input, dst_hw, label) of every imresample call detect_face made on this photo, rebuilt from the
    stage dumps (pyramid: the image; crops: the zero-padded tmp arrays of detect_face lines 361-362)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tfjobs.common import read_safetensors
    d = os.path.join(refs, "photos", stem)
    img = np.load(os.path.join(d, "image.npy"))
    st = read_safetensors(os.path.join(d, "stages.safetensors"))[0]
    pn = read_safetensors(os.path.join(d, "pnet.safetensors"))[0]
    out = []
    for i in range(len(st["scales"])):
        out.append((img, tuple(int(v) for v in st["pnet/%02d/size" % i]), "pyramid/%02d" % i, pn["%02d/resized" % i]))
    for stage, net, size in (("stage1", "rnet", 24), ("stage2", "onet", 48)):
        if stage + "/pad" not in st:
            continue
        dy, edy, dx, edx, y, ey, x, ex, tmpw, tmph = st[stage + "/pad"]
        for k in range(len(tmpw)):
            tmp = np.zeros((int(tmph[k]), int(tmpw[k]), 3))
            tmp[dy[k] - 1:edy[k], dx[k] - 1:edx[k], :] = img[y[k] - 1:ey[k], x[k] - 1:ex[k], :]
            out.append((tmp, (size, size), "%s/%d" % (net, k), st[net + "/crops"][k]))
    return out


def cmd_check(args):
    import cv2
    refs = os.path.abspath(args.refs)
    with open(os.path.join(refs, "summary.json")) as f:
        stems = sorted(json.load(f)["photos"])
    stats, bad = {}, []
    for stem in stems:
        for src, hw, label, recorded in recorded_resizes(refs, stem):
            mine, p = resize(src, hw)
            cv_default = cv2.resize(src, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
            key = "%s %s %s" % ("uint8" if src.dtype == np.uint8 else "float64", label.split("/")[0], p)
            st = stats.setdefault(key, {"calls": 0, "equal_recorded": 0, "equal_port": 0, "max_abs_port": 0.0})
            st["calls"] += 1
            st["equal_recorded"] += int(np.array_equal(cv_default, recorded))
            eq = np.array_equal(mine, cv_default)
            st["equal_port"] += int(eq)
            st["max_abs_port"] = max(st["max_abs_port"], float(np.abs(mine.astype(np.float64)
                                                                       - cv_default.astype(np.float64)).max()))
            if not eq and len(bad) < 10:
                bad.append((stem, label, src.shape, hw, p))
        # IPP off, one thread: same bytes?
    cv2.ipp.setUseIPP(False)
    cv2.setNumThreads(1)
    same_no_ipp = True
    for stem in stems:
        for src, hw, label, recorded in recorded_resizes(refs, stem):
            if not np.array_equal(cv2.resize(src, (hw[1], hw[0]), interpolation=cv2.INTER_AREA), recorded):
                same_no_ipp = False
    for k in sorted(stats):
        print("%-34s %s" % (k, json.dumps(stats[k])))
    print("cv2 %s; IPP off + 1 thread gives the recorded bytes: %s" % (cv2.__version__, same_no_ipp))
    for b in bad:
        print("MISMATCH", b)
    ok = not bad and same_no_ipp and all(s["equal_recorded"] == s["calls"] for s in stats.values())
    print("RESULT " + json.dumps({"ok": ok, "paths": stats, "ipp_off_same": same_no_ipp}, sort_keys=True))
    return 0 if ok else 1


def cmd_selftest(args):
    """Random inputs on shapes covering every branch (uint8 and float64), against cv2."""
    import cv2
    rng = np.random.default_rng(7)
    cases = [((40, 60), (20, 30)), ((48, 48), (24, 24)), ((72, 72), (24, 24)), ((60, 90), (20, 30)),
             ((36, 48), (12, 24)), ((24, 24), (24, 24)), ((97, 131), (50, 61)), ((1080, 1920), (648, 1152)),
             ((30, 30), (24, 24)), ((20, 20), (24, 24)), ((17, 23), (24, 24)), ((30, 20), (24, 24)),
             ((20, 30), (24, 24)), ((49, 47), (48, 48)), ((5, 3), (48, 48)), ((1, 1), (24, 24)),
             ((96, 96), (48, 48)), ((144, 144), (48, 48)), ((50, 50), (24, 24))]
    counts, bad = {}, []
    for (h, w), hw in cases:
        for dt in (np.uint8, np.float64):
            src = rng.integers(0, 256, (h, w, 3)).astype(dt)
            if dt == np.float64:
                src[rng.random((h, w, 3)) < 0.2] = 0.0          # zero padding as in detect_face's tmp
            p = path_of((h, w), hw)
            if dt == np.uint8 and p == "linear_area":
                continue
            mine, _ = resize(src, hw)
            ref = cv2.resize(src, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
            key = "%s %s" % (np.dtype(dt).name, p)
            counts[key] = counts.get(key, 0) + 1
            if not np.array_equal(mine, ref):
                bad.append(((h, w), hw, np.dtype(dt).name, p, float(np.abs(mine.astype(float) - ref).max())))
    print("cases per branch:", json.dumps(counts, sort_keys=True))
    for b in bad:
        print("MISMATCH", b)
    print("RESULT " + json.dumps({"ok": not bad, "cases": counts, "mismatches": len(bad)}, sort_keys=True))
    return 0 if not bad else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check", help="verify the numpy port and the recorded resizes against cv2")
    p.add_argument("refs", help="a faceref.py refs folder")
    sub.add_parser("selftest", help="random inputs on shapes covering every branch, against cv2")
    args = ap.parse_args(argv)
    return cmd_check(args) if args.cmd == "check" else cmd_selftest(args)


if __name__ == "__main__":
    sys.exit(main())

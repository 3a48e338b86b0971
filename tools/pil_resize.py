#!/usr/bin/env python3
"""pil_resize.py: Pillow's Image.resize(size, Image.BILINEAR) on uint8 RGB, written out in numpy.

This is what facenet's misc.imresize(cropped, (160, 160), interp='bilinear') did (SciPy 1.1 passed the uint8
array through toimage() unchanged and called Pillow's resize; align_dataset_mtcnn.py line 124, compare.py
line 108). It exists to pin down the arithmetic for the Rust port; `check` verifies it bit for bit against
Pillow on every face crop of a faceref.py refs run, `selftest` on random crops.

Pillow (src/libImaging/Resample.c, 8 bits per channel), per axis (in0 = 0, in1 = input size):
  scale = in_size / out_size; filterscale = max(scale, 1); support = 1.0 * filterscale (bilinear
  filter: 1 - |x| for |x| < 1); ksize = ceil(support) * 2 + 1
  for each output index xx: center = (xx + 0.5) * scale;
    xmin = max(int(center - support + 0.5), 0); xmax = min(int(center + support + 0.5), in_size) - xmin
    w[x] = filter((x + xmin - center + 0.5) / filterscale) for x < xmax, normalised by their sum (double)
    integer weights: int(0.5 + w * 2^22) (w >= 0) or int(-0.5 + w * 2^22) (w < 0)   [PRECISION_BITS = 22]
  out = clip8((2^21 + sum_x in[xmin + x] * k[x]) >> 22)    (arithmetic shift, then clamp to 0..255)
Two passes, each written to a uint8 image; a pass is skipped when that axis keeps its size; an image whose
size does not change is returned as a copy. ORDER: Pillow up to 12.x always ran the horizontal pass first
(over the source rows the vertical pass needs: ybox_first..ybox_last). Pillow 13.0.0 (pinned here) runs the
vertical pass first in some cases (Pillow PR #9549, commit 3cab8da1f "If height is being scaled down, but
not width, resize vertically first", then refined before 13.0.0; its final source was not available here).
Measured on Pillow 13.0.0 for SQUARE outputs (facenet's 160x160 / 182x182): vertical first iff
in_h > out and 2 * in_w < out + in_h (318 boundary cases, exact ties 2*in_w == out + in_h go horizontal
first); vertical first then runs over the source columns the horizontal pass needs. For non-square outputs
the 13.0.0 criterion is not known here and resize_bilinear raises. The two orders differ by 1 level on a
few percent of pixels. (facenet in 2018 ran Pillow 4/5: always horizontal first.)

  pil_resize.py check REFS_DIR       every align/compare crop of a refs run
  pil_resize.py selftest             random uint8 crops of many sizes against Pillow
"""
import argparse
import json
import math
import os
import sys

import numpy as np

PRECISION_BITS = 22


def coeffs(in_size, out_size):
    scale = in_size / float(out_size)
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds, kk = [], np.zeros((out_size, ksize), np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = int(center - support + 0.5)
        if xmin < 0:
            xmin = 0
        xmax = int(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        xmax -= xmin
        w = []
        for x in range(xmax):
            t = abs((x + xmin - center + 0.5) * ss)
            w.append(1.0 - t if t < 1.0 else 0.0)
        ww = sum_seq(w)
        if ww != 0.0:
            w = [v / ww for v in w]
        for x, v in enumerate(w):
            kk[xx, x] = int(-0.5 + v * (1 << PRECISION_BITS)) if v < 0 else int(0.5 + v * (1 << PRECISION_BITS))
        bounds.append((xmin, xmax))
    return bounds, kk


def sum_seq(vals):
    s = 0.0
    for v in vals:
        s += v
    return s


def _pass(img, axis, out_size, bounds, kk):
    """One 8-bit pass along `axis` (1 = horizontal, 0 = vertical) of an int64 [H, W, C] image."""
    n_out = out_size
    shape = list(img.shape)
    shape[axis] = n_out
    out = np.zeros(shape, np.int64)
    for xx in range(n_out):
        xmin, xmax = bounds[xx]
        acc = np.full([s for i, s in enumerate(img.shape) if i != axis], 1 << (PRECISION_BITS - 1), np.int64)
        for x in range(xmax):
            sl = np.take(img, xmin + x, axis=axis)
            acc = acc + sl * kk[xx, x]
        v = np.clip(acc >> PRECISION_BITS, 0, 255)
        if axis == 1:
            out[:, xx] = v
        else:
            out[xx] = v
    return out


def vertical_first(h, w, oh, ow):
    """Pillow 13.0.0's pass order, as measured for square outputs (see the module docstring)."""
    if h <= oh:
        return False          # never vertical first when the height is not scaled down (measured)
    if ow != oh:
        raise NotImplementedError("Pillow 13's pass order is only known here for square outputs")
    return 2 * w < oh + h


def resize_bilinear(a, size_wh):
    """Image.fromarray(a).resize(size_wh, Image.BILINEAR) for uint8 [H, W, 3]."""
    h, w = a.shape[:2]
    ow, oh = size_wh
    if (ow, oh) == (w, h):
        return a.copy()
    img = a.astype(np.int64)
    vb, vk = coeffs(h, oh)
    need_h = ow != w
    need_v = oh != h
    if need_h and need_v and vertical_first(h, w, oh, ow):
        hb, hk = coeffs(w, ow)
        first = hb[0][0]
        last = hb[ow - 1][0] + hb[ow - 1][1]
        img = _pass(img[:, first:last], 0, oh, vb, vk)
        return _pass(img, 1, ow, [(b0 - first, b1) for b0, b1 in hb], hk).astype(np.uint8)
    if need_h:
        first = vb[0][0]
        last = vb[oh - 1][0] + vb[oh - 1][1]
        hb, hk = coeffs(w, ow)
        img = _pass(img[first:last], 1, ow, hb, hk)
        vb = [(b0 - first, b1) for b0, b1 in vb]
    if need_v:
        img = _pass(img, 0, oh, vb, vk)
    return img.astype(np.uint8)


def cmd_check(args):
    from PIL import Image
    refs = os.path.abspath(args.refs)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tfjobs.common import read_safetensors
    align = read_safetensors(os.path.join(refs, "align.safetensors"))[0]
    n = bad = 0
    for variant in ("single", "multiple"):
        with open(os.path.join(refs, "align", variant + ".txt")) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 5:
                    continue
                name = os.path.splitext(parts[0])[0]
                stem = name if variant == "single" else name.rsplit("_", 1)[0]
                x1, y1, x2, y2 = (int(v) for v in parts[1:])
                img = np.load(os.path.join(refs, "photos", stem, "image.npy"))
                crop = img[y1:y2, x1:x2, :]
                mine = resize_bilinear(crop, (160, 160))
                pil = np.array(Image.fromarray(crop).resize((160, 160), Image.BILINEAR))
                n += 1
                if not (np.array_equal(mine, pil) and np.array_equal(pil, align[variant + "/" + name])):
                    bad += 1
                    print("MISMATCH", variant, name, crop.shape)
    print("RESULT " + json.dumps({"ok": bad == 0, "crops": n, "mismatches": bad}))
    return 0 if bad == 0 else 1


def cmd_selftest(args):
    from PIL import Image
    rng = np.random.default_rng(11)
    n = bad = 0
    for h, w in [(160, 160), (170, 133), (331, 246), (57, 61), (161, 159), (480, 480), (100, 300), (12, 9),
                 (1000, 37), (159, 160), (2, 2), (414, 282), (414, 287), (414, 293), (250, 205), (250, 206)]:
        a = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        for size in ((160, 160), (182, 182), (w // 2 + 1, h * 2), (w * 2, h // 2 + 1)):
            if size[0] != size[1] and size[0] != w and size[1] < h:
                continue   # non-square output, height scaled down: Pillow 13's pass order unknown (see above)
            n += 1
            mine = resize_bilinear(a, size)
            pil = np.array(Image.fromarray(a).resize(size, Image.BILINEAR))
            if not np.array_equal(mine, pil):
                bad += 1
                print("MISMATCH", (h, w), size, int(np.abs(mine.astype(int) - pil).max()))
    print("RESULT " + json.dumps({"ok": bad == 0, "cases": n, "mismatches": bad}))
    return 0 if bad == 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check")
    p.add_argument("refs")
    sub.add_parser("selftest")
    args = ap.parse_args(argv)
    return cmd_check(args) if args.cmd == "check" else cmd_selftest(args)


if __name__ == "__main__":
    sys.exit(main())

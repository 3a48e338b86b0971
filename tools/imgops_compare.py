#!/usr/bin/env python3
"""imgops_compare.py: large randomized side-by-side comparisons of crates/imgops against the
reference libraries (cv2 4.14.0.94, Pillow 13.0.0, TensorFlow 2.21): run it with the project's
TF venv, .venv/tf/bin/python (tools/bootstrap.sh tf). The Rust
side runs in target/release/imgops-serve (built on first use). The committed subset of these
checks is crates/imgops/testdata/refs.json (tools/imgops_refs.py testdata), replayed by
`cargo test -p imgops`.

Subcommands (each prints per-category counts of exact matches and the max abs difference, or
verdict categories)
  area [N]          cv2.resize INTER_AREA: detect_face pyramids, f64/u8 crops to 24/48, N random cases
  pillow [N]        Pillow Image.resize BILINEAR: N random RGB/L cases
  jpeg DIR          Pillow decoding of DIR/*.jpg: native mode and convert("RGB")
  tf DIR            tf.image.decode_jpeg(channels=3) of DIR/*.jpg, dct_method "" and INTEGER_ACCURATE
  png DIR           Pillow convert("RGB") and tf.io.decode_png(channels=3) of DIR/*.png
  jpegsweep DIR     Pillow vs Rust on many truncations of every DIR/*.jpg (verdict and pixels)
  tfsweep DIR       the same against tf.image.decode_jpeg
  jpegmut DIR N     N mutated JPEGs (bit flips, header bytes, byte runs): Pillow vs Rust
  tfmut DIR N       the same against tf.image.decode_jpeg
  pngmut DIR N      N truncated or bit-flipped PNGs: Pillow vs Rust
  mkrand N DIR      write N random Pillow-encoded JPEGs (size, quality, subsampling, progressive,
                    gray, CMYK) into DIR, to feed the others
"""
import argparse
import io
import os
import struct
import subprocess
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SERVE = os.environ.get("IMGOPS_SERVE", os.path.join(REPO, "target", "release", "imgops-serve"))

# imgops-serve operations (see crates/imgops/src/bin/imgops-serve.rs)
OP_AREA_U8, OP_AREA_F64, OP_PILLOW_BILINEAR = 1, 2, 3
OP_JPEG_PILLOW_RGB, OP_JPEG_TF_FAST, OP_PNG_PILLOW, OP_JPEG_PILLOW_NATIVE, OP_JPEG_TF_ACCURATE, OP_PNG_TF = 4, 5, 6, 7, 8, 9


sys.path.insert(0, HERE)
from imgops_refs import pyramid_sizes  # noqa: E402  (first: it checks that this is the TF venv)

import numpy as np  # noqa: E402


class Rust:
    """imgops-serve as a subprocess."""

    def __init__(self):
        if "IMGOPS_SERVE" not in os.environ:
            subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "imgops", "--bin", "imgops-serve"],
                           cwd=REPO, check=True)
        self.p = subprocess.Popen([SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(self, op, data, h=0, w=0, c=0, oh=0, ow=0):
        """(payload, None) or (None, error text)."""
        self.p.stdin.write(struct.pack("<7Q", op, h, w, c, oh, ow, len(data)))
        self.p.stdin.write(data)
        self.p.stdin.flush()
        status, n = struct.unpack("<2Q", self.p.stdout.read(16))
        payload = self.p.stdout.read(n)
        return (None, payload.decode()) if status else (payload, None)

    def area(self, img, oh, ow):
        h, w = img.shape[:2]
        c = 1 if img.ndim == 2 else img.shape[2]
        shape = (oh, ow) if img.ndim == 2 else (oh, ow, c)
        if img.dtype == np.uint8:
            out, err = self.call(OP_AREA_U8, img.tobytes(), h, w, c, oh, ow)
            dtype = np.uint8
        else:
            out, err = self.call(OP_AREA_F64, img.astype("<f8").tobytes(), h, w, c, oh, ow)
            dtype = "<f8"
        if err:
            raise RuntimeError(err)
        return np.frombuffer(out, dtype).reshape(shape)

    def decode(self, op, data):
        """An RGB decoder's (or, for OP_JPEG_PILLOW_NATIVE, Pillow's native) array, or its error text."""
        out, err = self.call(op, data)
        if err is not None:
            return err
        if op == OP_JPEG_PILLOW_NATIVE:
            h, w, c = struct.unpack("<3Q", out[:24])
            return np.frombuffer(out[24:], np.uint8).reshape((h, w) if c == 1 else (h, w, c))
        h, w = struct.unpack("<2Q", out[:16])
        return np.frombuffer(out[16:], np.uint8).reshape(h, w, 3)


class Stats:
    """Per category: cases, exact matches, max abs difference."""

    def __init__(self):
        self.d = {}

    def add(self, key, a, b):
        n, ok, mx = self.d.get(key, (0, 0, 0.0))
        if a.shape != b.shape:
            diff = float("inf")
        else:
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
            if a.dtype == np.float64 and not np.array_equal(a, b, equal_nan=True):
                diff = max(diff, 1e-300)
        self.d[key] = (n + 1, ok + (diff == 0.0), max(mx, diff))
        return diff == 0.0

    def report(self):
        for k, (n, ok, mx) in sorted(self.d.items()):
            print(f"{k:40s} cases={n:6d} exact={ok:6d} max_abs_diff={mx:g}")


class Verdicts:
    """Counts of (reference verdict, Rust verdict) pairs on damaged files."""

    def __init__(self, ref_name):
        self.ref_name, self.cats = ref_name, {}

    def add(self, ref, got):
        """ref/got: an array, or a string naming the error."""
        if isinstance(ref, str) and isinstance(got, str):
            key = "both error"
        elif isinstance(ref, str):
            key = f"{self.ref_name} {ref}, rust decoded"
        elif isinstance(got, str):
            key = f"{self.ref_name} decoded, rust error: {got[:60]}"
        elif ref.shape == got.shape and np.array_equal(ref, got):
            key = "both decoded, identical"
        else:
            key = "both decoded, DIFFERENT"
        self.cats[key] = self.cats.get(key, 0) + 1
        return key

    def report(self):
        for k, v in sorted(self.cats.items(), key=lambda kv: -kv[1]):
            print(f"{v:6d}  {k}")


def reference(f):
    """f()'s array, or the name of the exception it raised."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return f()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__


def pillow_rgb(data):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def tf_jpeg(data, method=""):
    import tensorflow as tf
    return tf.image.decode_jpeg(data, channels=3, dct_method=method).numpy()


def files_in(d, exts, max_bytes=None):
    names = sorted(f for f in os.listdir(d) if f.lower().endswith(exts))
    if max_bytes is not None:
        names = [f for f in names if os.path.getsize(os.path.join(d, f)) < max_bytes]
    return [(f, open(os.path.join(d, f), "rb").read()) for f in names]


# --------------------------------------------------------------------------- resizers

def run_area(n_random):
    import cv2

    rng = np.random.default_rng(12345)
    r, st, bad = Rust(), Stats(), []

    def check(key, img, oh, ow):
        if not st.add(key, r.area(img, oh, ow), cv2.resize(img, (ow, oh), interpolation=cv2.INTER_AREA)):
            bad.append((key, img.shape, img.dtype, oh, ow))

    # (a) the P-Net pyramid on uint8 photos of common and odd sizes
    for (h, w) in [(1080, 1920), (720, 1280), (540, 960), (1920, 1080), (487, 731), (1001, 333),
                   (250, 250), (160, 160), (181, 97), (33, 45), (12, 12), (799, 601)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        smooth = cv2.GaussianBlur(img, (0, 0), 3)
        for (hs, ws) in pyramid_sizes(h, w):
            check("u8 pyramid noise", img, hs, ws)
            check("u8 pyramid smooth", smooth, hs, ws)
        for ms in (40, 80):
            for (hs, ws) in pyramid_sizes(h, w, minsize=ms):
                check("u8 pyramid noise (other minsize)", img, hs, ws)
    # (b) crops to 24 and 48 (R-Net / O-Net): integer-valued float64 like detect_face's tmp,
    # arbitrary floats, uint8
    for _ in range(max(1, n_random // 2)):
        h, w = rng.integers(1, 120, 2)
        for t in (24, 48):
            check(f"f64 crop->{t} intvalued", rng.integers(0, 256, (h, w, 3)).astype(np.float64), t, t)
            check(f"f64 crop->{t} random", rng.random((h, w, 3)) * 255.0, t, t)
            check(f"u8 crop->{t}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8), t, t)
    # (c) random sizes/ratios, 1, 3 and 4 channels, both dtypes
    for i in range(n_random):
        h = int(rng.integers(1, 2001 if i % 10 == 0 else 300))
        w = int(rng.integers(1, 2001 if i % 10 == 0 else 300))
        mode = rng.integers(0, 4)
        if mode == 0:    # shrink
            oh, ow = max(1, int(h * rng.random())), max(1, int(w * rng.random()))
        elif mode == 1:  # enlarge
            oh, ow = int(rng.integers(h, 3 * h + 2)), int(rng.integers(w, 3 * w + 2))
        elif mode == 2:  # integer factors
            f = int(rng.integers(1, 6))
            oh, ow = max(1, h // f), max(1, w // f)
            h, w = oh * f, ow * f
        else:            # mixed
            oh, ow = int(rng.integers(1, 2 * h + 2)), int(rng.integers(1, 2 * w + 2))
        c = int(rng.choice([1, 3, 4]))
        shape = (h, w) if c == 1 else (h, w, c)
        if h * w > 1_500_000 and i % 10:
            continue
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        check(f"u8 random c={c}", img, oh, ow)
        if h * w <= 400_000:
            check(f"f64 random c={c}", rng.random(shape) * 300 - 20, oh, ow)
            check(f"f64 intvalued c={c}", img.astype(np.float64), oh, ow)
    st.report()
    for b in bad[:20]:
        print("MISMATCH", b)


def run_pillow(n_random):
    from PIL import Image

    rng = np.random.default_rng(777)
    r, st, bad = Rust(), Stats(), []

    def check(key, img, oh, ow):
        ref = np.asarray(Image.fromarray(img).resize((ow, oh), Image.BILINEAR))
        h, w = img.shape[:2]
        out, err = r.call(OP_PILLOW_BILINEAR, img.tobytes(), h, w, 1 if img.ndim == 2 else 3, oh, ow)
        if err:
            raise RuntimeError(err)
        if not st.add(key, np.frombuffer(out, np.uint8).reshape(ref.shape), ref):
            bad.append((key, img.shape, oh, ow))

    for i in range(n_random):
        h, w = (int(v) for v in rng.integers(1, 601, 2))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        check("rgb crop->160x160", img, 160, 160)
        oh, ow = (int(v) for v in rng.integers(1, 700, 2))
        check("rgb random size", img, oh, ow)
        if i % 4 == 0:
            check("L random size", img[:, :, 0].copy(), oh, ow)
        if i % 8 == 0:
            check("rgb same height", img, h, ow)
            check("rgb same width", img, oh, w)
    st.report()
    for b in bad[:20]:
        print("MISMATCH", b)


# --------------------------------------------------------------------------- decoders

def run_jpeg(d):
    from PIL import Image

    r, st = Rust(), Stats()
    for f, data in files_in(d, (".jpg", ".jpeg")):
        try:
            im = Image.open(io.BytesIO(data))
            ref_native, ref_rgb = np.asarray(im), np.asarray(im.convert("RGB"))
        except Exception as e:  # noqa: BLE001
            got = r.decode(OP_JPEG_PILLOW_NATIVE, data)
            print(f"{f:40s} PILLOW ERROR {e!r}; rust: {'error ' + got if isinstance(got, str) else 'DECODED'}")
            n, ok, mx = st.d.get("both refuse", (0, 0, 0.0))
            st.d["both refuse"] = (n + 1, ok + isinstance(got, str), mx)
            continue
        verdicts = []
        for op, key, ref in ((OP_JPEG_PILLOW_NATIVE, "native", ref_native), (OP_JPEG_PILLOW_RGB, "rgb", ref_rgb)):
            got = r.decode(op, data)
            if isinstance(got, str):
                verdicts.append(f"{key}=RUSTERR({got})")
            else:
                verdicts.append(f"{key}={'OK' if st.add(f'jpeg {key} {im.mode}', got, ref) else 'DIFF'}")
        print(f"{f:40s} {im.mode:5s} {im.size} " + " ".join(verdicts))
    st.report()


def run_tf(d):
    r, st = Rust(), Stats()
    for f, data in files_in(d, (".jpg",)):
        line = [f"{f:36s}"]
        for op, method, name in ((OP_JPEG_TF_FAST, "", "fast"), (OP_JPEG_TF_ACCURATE, "INTEGER_ACCURATE", "accurate")):
            ref, got = tf_jpeg(data, method), r.decode(op, data)
            if isinstance(got, str):
                line.append(f"{name}=RUSTERR({got})")
                continue
            ok = st.add(f"tf {name}", got, ref)
            nd = int(np.count_nonzero(got != ref))
            line.append(f"{name}={'OK' if ok else 'DIFF(%d px-ch, max %d)' % (nd, np.abs(got.astype(int) - ref).max())}")
        print(" ".join(line))
    st.report()


def run_png(d):
    import tensorflow as tf
    from PIL import Image

    r, st = Rust(), Stats()
    for f, data in files_in(d, (".png",)):
        mode = Image.open(io.BytesIO(data)).mode
        line = [f"{f:40s} {mode:6s}"]
        for op, name, ref in ((OP_PNG_PILLOW, "pillow", pillow_rgb(data)),
                              (OP_PNG_TF, "tf", tf.io.decode_png(data, channels=3).numpy())):
            got = r.decode(op, data)
            line.append(f"{name}=RUSTERR({got})" if isinstance(got, str)
                        else f"{name}={'OK' if st.add(f'png {name} {mode}', got, ref) else 'DIFF'}")
        print(" ".join(line))
    st.report()


def cut_points(data, rng, n_random=40):
    n = len(data)
    pts = set(range(max(1, n - 80), n))
    pts.update(int(v) for v in rng.integers(1, n, n_random))
    pts.update(range(1, min(n, 700), 37))
    return sorted(pts)


def run_sweep(d, ref_name, ref_decode, op, n_random):
    """Truncations of every DIR/*.jpg: the same verdict and the same pixels as the reference."""
    rng = np.random.default_rng(3)
    r, v = Rust(), Verdicts(ref_name)
    for f, data in files_in(d, (".jpg",)):
        for p in cut_points(data, rng, n_random):
            key = v.add(reference(lambda: ref_decode(data[:p])), r.decode(op, data[:p]))
            if "rust" in key or "DIFFERENT" in key:
                print("DISAGREE", f, "cut at", p, "of", len(data), key)
    v.report()


def mutations(d, n, seed=5):
    rng = np.random.default_rng(seed)
    files = [data for _, data in files_in(d, (".jpg",), max_bytes=200_000)]
    for i in range(n):
        src = bytearray(files[i % len(files)])
        kind = i % 3
        if kind == 0:  # bit flips anywhere
            for _ in range(int(rng.integers(1, 4))):
                k = int(rng.integers(0, len(src)))
                src[k] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # header byte
            k = int(rng.integers(2, min(len(src), 650)))
            src[k] = int(rng.integers(0, 256))
        else:  # byte run in the entropy data
            k = int(rng.integers(len(src) // 2, len(src) - 2))
            src[k:k + int(rng.integers(1, 40))] = bytes([int(rng.integers(0, 256))])
        yield bytes(src)


def png_mutations(d, n):
    rng = np.random.default_rng(8)
    files = [data for _, data in files_in(d, (".png",))]
    for i in range(n):
        src = bytearray(files[i % len(files)])
        if i % 2 == 0:
            del src[int(rng.integers(8, len(src))):]
        else:
            k = int(rng.integers(8, len(src)))
            src[k] ^= 1 << int(rng.integers(0, 8))
        yield bytes(src)


def run_mut(ref_name, ref_decode, op, datas):
    r, v = Rust(), Verdicts(ref_name)
    for data in datas:
        v.add(reference(lambda: ref_decode(data)), r.decode(op, data))
    v.report()


def make_random_jpegs(n, outdir):
    from PIL import Image
    import cv2

    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(11)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, 500, 2))
        noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        sigma = float(rng.choice([0.0, 1.0, 3.0, 8.0]))
        im = Image.fromarray(cv2.GaussianBlur(noise, (0, 0), sigma) if sigma > 0 else noise)
        kind = rng.random()
        if kind < 0.15:
            im = im.convert("L")
        elif kind < 0.2:
            im = im.convert("CMYK")
        kw = dict(quality=int(rng.integers(1, 101)), progressive=bool(rng.random() < 0.3),
                  optimize=bool(rng.random() < 0.3))
        if im.mode == "RGB":
            kw["subsampling"] = int(rng.integers(0, 3))
        try:
            im.save(os.path.join(outdir, f"rand_{i:04d}.jpg"), **kw)
        except OSError:  # Pillow's encoder buffer is too small for some noisy progressive images
            kw["optimize"] = kw["progressive"] = False
            im.save(os.path.join(outdir, f"rand_{i:04d}.jpg"), **kw)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="imgops_compare.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("cmd", choices=["area", "pillow", "jpeg", "tf", "png", "jpegsweep", "tfsweep", "jpegmut",
                                    "tfmut", "pngmut", "mkrand"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    x = a.args
    jobs = {
        "area": lambda: run_area(int(x[0]) if x else 300),
        "pillow": lambda: run_pillow(int(x[0]) if x else 300),
        "jpeg": lambda: run_jpeg(x[0]),
        "tf": lambda: run_tf(x[0]),
        "png": lambda: run_png(x[0]),
        "jpegsweep": lambda: run_sweep(x[0], "pillow", pillow_rgb, OP_JPEG_PILLOW_RGB, 40),
        "tfsweep": lambda: run_sweep(x[0], "tf", tf_jpeg, OP_JPEG_TF_FAST, 15),
        "jpegmut": lambda: run_mut("pillow", pillow_rgb, OP_JPEG_PILLOW_RGB, mutations(x[0], int(x[1]))),
        "tfmut": lambda: run_mut("tf", tf_jpeg, OP_JPEG_TF_FAST, mutations(x[0], int(x[1]))),
        "pngmut": lambda: run_mut("pillow", pillow_rgb, OP_PNG_PILLOW, png_mutations(x[0], int(x[1]))),
        "mkrand": lambda: make_random_jpegs(int(x[0]), x[1]),
    }
    jobs[a.cmd]()


if __name__ == "__main__":
    main()

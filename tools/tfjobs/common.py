"""Shared plumbing without TensorFlow: seeds and net specs, errors and logging, the deterministic
file writers (safetensors, json, npy) and the seeded random values (inputs, variable values).

Every job uses it. It imports numpy only, so tools/tfref.py builds its command line from the
constants here (reference names, net names, the preprocess help) before TensorFlow is imported,
which keeps --help and argument errors instant."""
import json
import os
import re
import sys
import zlib

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ----------------------------------------------------------------------------------------------
# constants: seeds and net specs
# ----------------------------------------------------------------------------------------------

SEED_WEIGHTS = 1001      # per-variable RNG: np.random.default_rng([SEED_WEIGHTS, crc32(name)])
SEED_INPUT = 2002        # inputs: np.random.default_rng([SEED_INPUT, crc32(label)])
SEED_TRAIN = 3003        # training data of fixtures/tiny/train
SEED_IMAGES = 4004       # synthetic sample images
GRAPH_SEED = 5005        # tf.set_random_seed for every graph (initializers are overwritten anyway)

TINY_NET = {
    "arch": "resnet_v2",
    "scope": "resnet_v2_tiny",
    "blocks": [
        {"scope": "block1", "base_depth": 4, "num_units": 2, "stride": 2},
        {"scope": "block2", "base_depth": 8, "num_units": 2, "stride": 2},
        {"scope": "block3", "base_depth": 8, "num_units": 2, "stride": 2},
        {"scope": "block4", "base_depth": 16, "num_units": 1, "stride": 1},
    ],
    "num_classes": 7,
}

RESNET_UNITS = {
    "resnet_v2_50": (3, 4, 6, 3),
    "resnet_v2_101": (3, 4, 23, 3),
    "resnet_v2_152": (3, 8, 36, 3),
    "resnet_v2_200": (3, 24, 36, 3),
}

# Weight scale of the residual branch output (conv3) and projection shortcut, relative to He-normal.
# The pre-activation BN uses fixed (random) moving statistics, so the residual stream grows by a
# roughly constant factor per unit; deeper nets get a smaller factor so that 200 layers stay finite
# and O(1..100).
RESIDUAL_SCALE = {"resnet_v2_tiny": 0.3, "resnet_v2_50": 0.3, "resnet_v2_101": 0.2,
                  "resnet_v2_152": 0.15, "resnet_v2_200": 0.12}

FACENET_SUBDIR = "20990101-000000"
FACENET_STEP = 275
FACENET_CLASSES = 10

PARTITIONED = {
    # full variable name: (num_shards, axis) for tf.compat.v1.fixed_size_partitioner
    "resnet_v2_tiny/conv1/weights": (3, 3),     # [7,7,3,64] -> 3 slices of 22, 21, 21 output channels
    "resnet_v2_tiny/logits/weights": (2, 3),    # [1,1,64,7] -> 2 slices of 4 and 3 classes
    "resnet_v2_tiny/logits/biases": (2, 0),     # [7] -> 4 + 3
}
SHARD_DEVICE_1 = ("block3", "block4", "postnorm", "logits")   # variables with these scopes on /cpu:1

FACENET_KEYS = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_3a_3x3", "Conv2d_3b_1x1",
                "Conv2d_4a_3x3", "Conv2d_4b_3x3", "Mixed_5a", "Mixed_6a", "Mixed_6b", "Mixed_7a",
                "Mixed_8a", "Mixed_8b", "PrePool", "PreLogitsFlatten"]


# Committed subset of (image, variant), to keep fixtures/ well under 5 MB (one 299x299x3 float32
# image alone is 1.07 MB, a 224 one 0.6 MB): every preprocessing path once, inception at 224.
# `refs preprocessing` (on demand) makes every variant of every image, inception_299 included.
COMMITTED_VARIANTS = {
    "rgb_173x131.png": ["decoded", "inception_224"],
    "rgb_64x97.png": ["decoded", "facenet_fixed_160"],
    "gray_45x38.png": ["decoded", "facenet_prewhiten_160"],
    "rgb_121x89.jpg": ["decoded"],
}

# The names of `tfref.py refs NAME` (tfjobs/refs.py has one builder per name), in the order of
# `refs all`.
REF_NAMES = ["resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200", "facenet_128",
             "facenet_512", "tiny_variants", "facenet_train", "preprocessing"]

# The docstring of preprocess.preprocess_images, shown by `tfref.py preprocess --help` and stored
# in every preprocessed.safetensors's metadata (stripped).
PREPROCESS_DOC = """TF's results for each image file. Keys `<file>/<variant>`:

    decoded                 uint8 [H,W,3]: tf.io.decode_image(channels=3) (grayscale replicated)
    inception_299/224       slim inception_preprocessing.preprocess_for_eval: convert_image_dtype to
                            float32 (x * 1/255), central_crop(0.875), tf.compat.v1.image.resize_bilinear
                            (align_corners=False, half_pixel_centers=False), (x - 0.5) * 2
    facenet_fixed_160       (resize_bilinear(float32(decoded), [160,160]) - 127.5) / 128
    facenet_prewhiten_160   tf.image.per_image_standardization(resize_bilinear(float32(decoded), [160,160]))
    """


class ToolError(Exception):
    pass


def log(msg):
    print("tfref: " + msg, file=sys.stderr, flush=True)


def standard_net(name, num_classes=1001):
    u = RESNET_UNITS[name]
    return {"arch": "resnet_v2", "scope": name,
            "blocks": [{"scope": "block%d" % (i + 1), "base_depth": 64 * 2 ** i, "num_units": n,
                        "stride": 1 if i == 3 else 2} for i, n in enumerate(u)],
            "num_classes": num_classes}


# ----------------------------------------------------------------------------------------------
# small file helpers: safetensors, json, npy (all written atomically and deterministically)
# ----------------------------------------------------------------------------------------------

ST_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16", "int8": "I8",
             "int16": "I16", "int32": "I32", "int64": "I64", "uint8": "U8", "uint16": "U16",
             "uint32": "U32", "uint64": "U64", "bool": "BOOL"}


def atomic_write(path, data):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_safetensors(path, tensors, metadata=None):
    """Write a safetensors file (little-endian, tensors sorted by name, header padded to 8 bytes).

    Written by hand so that bfloat16 (ml_dtypes) becomes "BF16" and bool "BOOL"."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        dt = a.dtype.name
        if dt not in ST_DTYPES:
            raise ToolError("safetensors: unsupported dtype %s for %s" % (dt, name))
        if a.dtype.byteorder == ">":
            a = a.byteswap().view(a.dtype.newbyteorder("<"))
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": ST_DTYPES[dt], "shape": [int(d) for d in a.shape],
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    atomic_write(path, len(h).to_bytes(8, "little") + h + b"".join(blobs))


def read_safetensors(path):
    """Inverse of write_safetensors (used for self-checks): returns (tensors, metadata)."""
    import ml_dtypes
    inv = {v: k for k, v in ST_DTYPES.items()}
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        dt = inv[e["dtype"]]
        npdt = ml_dtypes.bfloat16 if dt == "bfloat16" else np.dtype(dt)
        s, t = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + s:8 + n + t], dtype=npdt).reshape(e["shape"])
    return out, meta


def _json_text(obj):
    if isinstance(obj, list) and obj and all(isinstance(e, dict) for e in obj):
        return "[\n" + ",\n".join(" " + json.dumps(e) for e in obj) + "\n]"
    text = json.dumps(obj, indent=1)
    # numeric lists (shapes, offsets) on one line
    return re.sub(r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def write_json(path, obj):
    atomic_write(path, (_json_text(obj) + "\n").encode("utf-8"))


def write_npy(path, arr):
    tmp = "%s.tmp-%d.npy" % (path, os.getpid())
    np.save(tmp, arr, allow_pickle=False)
    os.replace(tmp, path)


def rel(path):
    p = os.path.abspath(path)
    return os.path.relpath(p, REPO) if p.startswith(REPO + os.sep) else p


# ----------------------------------------------------------------------------------------------
# deterministic random values
# ----------------------------------------------------------------------------------------------

def rng_for(seed, label):
    return np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])


def random_input(label, shape):
    """float32 NHWC in [-1, 1] (the range of slim-inception / facenet-fixed preprocessed images).

    Per image: a per-channel offset U(-0.4,0.4) + a smooth field (4 random plane waves, per-channel
    amplitude U(0.2,0.6)) + uniform noise U(-0.35,0.35), clipped to [-1,1]. Plain i.i.d. noise would
    make every image of a batch look alike after global pooling (the outputs of a random deep net
    were 0.9999999 correlated); this way each image has its own statistics."""
    rng = rng_for(SEED_INPUT, label)
    b_, h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy, xx = yy / max(h, 1), xx / max(w, 1)
    out = np.empty(shape, np.float64)
    for b in range(b_):
        offset = rng.uniform(-0.4, 0.4, c)
        amp = rng.uniform(0.2, 0.6, c)
        field = np.zeros((h, w, c))
        for _ in range(4):
            fy, fx = rng.uniform(-4.0, 4.0, 2)
            phase = rng.uniform(0, 2 * np.pi, c)
            field += np.sin(2 * np.pi * (fy * yy + fx * xx)[..., None] + phase) / 2.0
        out[b] = offset + amp * field + rng.uniform(-0.35, 0.35, (h, w, c))
    return np.clip(out, -1.0, 1.0).astype(np.float32)


_FACENET_UP = re.compile(r"/(block35_\d+|block17_\d+|block8_\d+|Block8)/Conv2d_1x1/weights$")


def random_value(name, shape, dtype, residual_scale=0.3):
    """Seeded value for model variable `name` (independent of creation order).

    weights: He-normal N(0, 2/fan_in), fan_in = prod(shape[:-1]); x residual_scale for ResNet
             conv3/shortcut and facenet block up-projections (Conv2d_1x1 directly under a block);
             std 2/sqrt(fan_in) for classifier layers (ResNet logits, facenet Bottleneck/Logits).
    biases N(0,0.1); beta N(0,0.1); gamma U(0.5,1.5) with ~10% (at least one) channels negated;
    moving_mean N(0,0.2); moving_variance U(0.5,2.0).
    """
    rng = rng_for(SEED_WEIGHTS, name)
    shape = tuple(int(d) for d in shape)
    leaf = name.rsplit("/", 1)[-1]
    parent = name.rsplit("/", 2)[-2] if name.count("/") >= 1 else ""
    if leaf == "weights":
        fan_in = int(np.prod(shape[:-1]))
        std = np.sqrt(2.0 / fan_in)
        if parent in ("conv3", "shortcut") or _FACENET_UP.search(name):
            std *= residual_scale
        elif parent == "logits" or name.startswith("Logits/") or "/Bottleneck/" in name + "/":
            std = 2.0 / np.sqrt(fan_in)
        v = rng.standard_normal(shape) * std
    elif leaf in ("biases", "beta"):
        v = rng.normal(0.0, 0.1, shape)
    elif leaf == "gamma":
        v = rng.uniform(0.5, 1.5, shape)
        neg = rng.random(shape) < 0.1
        neg.flat[zlib.crc32(name.encode()) % max(1, v.size)] = True
        v = np.where(neg, -v, v)
    elif leaf == "moving_mean":
        v = rng.normal(0.0, 0.2, shape)
    elif leaf == "moving_variance":
        v = rng.uniform(0.5, 2.0, shape)
    else:
        raise ToolError("no randomization rule for variable %s" % name)
    return v.astype(dtype)

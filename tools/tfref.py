#!/usr/bin/env python3
"""tfref.py: TensorFlow ground truth for slimzoo (fixtures, on-demand references, checkpoint dumps).

Everything here is computed by real TensorFlow 2.21 (graph mode, tf.compat.v1) with tf_slim 1.1.0's
resnet_v2 and facenet 1.0.5's inception_resnet_v1, never by a re-implementation. Run it with the
project's TF venv (tools/bootstrap.sh tf); started with another interpreter it re-executes itself
under <repo>/.venv/tf/bin/python.

Subcommands
  fixtures [--out fixtures]       (re)make the committed fixtures (tiny net, dtypes, images)
  refs NAME [--cache DIR]         make one on-demand reference set into DIR/NAME (atomic, DONE file)
  dump CKPT -o OUT_DIR            TF's view of any checkpoint: tf_variables.json, tf_values.safetensors,
                                  tf_strings.json
  features --net ... -o OUT       run TF on any checkpoint + input and write all end points + output
  preprocess IMAGE... -o OUT      TF's slim-inception and facenet preprocessing of image files

End-point keys follow the NEWEST tensorflow/models research/slim/nets/resnet_v2.py: tf_slim's own
end points plus `global_pool` (the graph's <scope>/pool5 tensor), `<scope>/logits`,
`<scope>/spatial_squeeze` (tf.squeeze of the logits) and `predictions` (slim.softmax of the squeezed
logits); the net's returned tensor is stored as `output`. All tensors NHWC, float32.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
import traceback
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")


def _reexec_in_venv():
    if importlib.util.find_spec("tf_slim") is not None:
        return
    if os.environ.get("SLIMZOO_TFREF_REEXEC") or not os.path.exists(VENV_PYTHON):
        sys.exit("tfref: tensorflow/tf_slim are not importable here and %s is missing; "
                 "run tools/bootstrap.sh tf" % VENV_PYTHON)
    os.environ["SLIMZOO_TFREF_REEXEC"] = "1"
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])


if __name__ == "__main__":
    _reexec_in_venv()

import numpy as np  # noqa: E402

sys.path.insert(0, HERE)

# TensorFlow is imported lazily (after argument parsing, so that --help is instant).
tf = slim = resnet_v2 = load_inception_resnet_v1 = facenet_version = None
TF_VERSION = TF_SLIM_VERSION = None


def import_tf():
    global tf, slim, resnet_v2, load_inception_resnet_v1, facenet_version, TF_VERSION, TF_SLIM_VERSION
    if tf is None:
        import tfcompat
        tf, slim, resnet_v2 = tfcompat.tf, tfcompat.slim, tfcompat.resnet_v2
        load_inception_resnet_v1, facenet_version = tfcompat.load_inception_resnet_v1, tfcompat.facenet_version
        TF_VERSION, TF_SLIM_VERSION = tfcompat.TF_VERSION, tfcompat.TF_SLIM_VERSION


if __name__ != "__main__":
    import_tf()

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


class ToolError(Exception):
    pass


def log(msg):
    print("tfref: " + msg, file=sys.stderr, flush=True)


def versions():
    return {"tensorflow": TF_VERSION, "tf_slim": TF_SLIM_VERSION, "facenet": facenet_version(),
            "numpy": np.__version__}


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


def _atomic_write(path, data):
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
    _atomic_write(path, len(h).to_bytes(8, "little") + h + b"".join(blobs))


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
    _atomic_write(path, (_json_text(obj) + "\n").encode("utf-8"))


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


def randomize_variables(sess, variables, residual_scale):
    """Assign random_value() to every variable in ONE session.run (one placeholder + assign per
    variable; Variable.load per variable costs a new executor each and is quadratic in graph size)."""
    feeds, assigns = {}, []
    with tf.name_scope("randomize"):
        for v in variables:
            dt = v.dtype.base_dtype
            ph = tf.placeholder(dt, v.shape)
            assigns.append(tf.assign(v, ph))
            feeds[ph] = random_value(v.op.name, v.shape.as_list(), dt.as_numpy_dtype, residual_scale)
    sess.run(tf.group(*assigns), feeds)


# ----------------------------------------------------------------------------------------------
# sessions and checkpoints
# ----------------------------------------------------------------------------------------------

def session(graph, cpus=1):
    cfg = tf.ConfigProto(intra_op_parallelism_threads=int(os.environ.get("SLIMZOO_TF_THREADS", "2")),
                         inter_op_parallelism_threads=1, allow_soft_placement=False,
                         device_count={"CPU": cpus})
    return tf.Session(graph=graph, config=cfg)


def new_graph():
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(GRAPH_SEED)
    return g


def write_state_file(dirname, prefix_basename):
    """The `checkpoint` state file as TF writes it, with a relative path and no timestamps."""
    tf.train.update_checkpoint_state(dirname, prefix_basename, all_model_checkpoint_paths=[prefix_basename])


def resolve_ckpt(path):
    """A checkpoint prefix, a V1 file, or a directory (state file, else a single *.index / *.ckpt)."""
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        idx = sorted(f[:-len(".index")] for f in os.listdir(path) if f.endswith(".index"))
        if len(idx) == 1:
            return os.path.join(path, idx[0])
        v1 = sorted(f for f in os.listdir(path) if f.endswith(".ckpt"))
        if len(v1) == 1:
            return os.path.join(path, v1[0])
        raise ToolError("cannot tell which checkpoint to use in directory %s" % path)
    if os.path.exists(path + ".index") or os.path.isfile(path):
        return path
    parent = os.path.dirname(path) or "."
    if os.path.isdir(parent) and any(f.startswith(os.path.basename(path) + "-") for f in os.listdir(parent)):
        return path  # V1 sharded pattern <prefix>-?????-of-?????
    raise ToolError("no checkpoint at %s (expected a V2 prefix with .index, a V1 file or a folder)" % path)


def tf_view(ckpt):
    """TF's view of a checkpoint: (variables list, numeric tensors, string tensors, notes)."""
    reader = tf.train.load_checkpoint(ckpt)
    dtypes = reader.get_variable_to_dtype_map()
    variables, values, strings, fallbacks = [], {}, {}, []
    skipped = {}
    for name, shape in tf.train.list_variables(ckpt):
        dt = dtypes[name]
        variables.append({"name": name, "dtype": dt.name, "shape": [int(d) for d in shape]})
        if dt != tf.string and dt.name not in ST_DTYPES:
            skipped[name] = "dtype %s has no safetensors equivalent" % dt.name
            continue
        try:
            t = reader.get_tensor(name)
        except tf.errors.UnimplementedError:
            # TF's Python CheckpointReader cannot return float16 from a V1 file ("Data type not
            # supported") although TF's restore ops read it: use the RestoreV2 op then.
            try:
                t = restore_op_value(ckpt, name, dt)
            except tf.errors.OpError as e:
                skipped[name] = "get_tensor and RestoreV2 failed: %s" % str(e).splitlines()[0]
                continue
            fallbacks.append(name)
        if dt == tf.string:
            arr = np.asarray(t, dtype=object)
            flat = [bytes(x) for x in arr.reshape(-1)]

            def utf8(b):
                try:
                    return b.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            strings[name] = {"shape": [int(d) for d in arr.shape], "values": [utf8(b) for b in flat],
                             "hex": [b.hex() for b in flat]}
        else:
            a = np.asarray(t)
            if a.dtype.name != dt.name:
                raise ToolError("%s: TF dtype %s but numpy %s" % (name, dt.name, a.dtype.name))
            values[name] = a
    variables.sort(key=lambda e: e["name"])
    if skipped:
        log("not in tf_values (listed in its metadata as 'skipped'): %s" % sorted(skipped))
    return variables, values, strings, {"read_with_restore_op": fallbacks, "skipped": skipped}


def restore_op_value(ckpt, name, dtype):
    g = tf.Graph()
    with g.as_default():
        op = tf.raw_ops.RestoreV2(prefix=ckpt, tensor_names=[name], shape_and_slices=[""], dtypes=[dtype])
        with session(g) as s:
            return s.run(op)[0]


def write_tf_view(ckpt, out_dir, extra_meta=None):
    os.makedirs(out_dir, exist_ok=True)
    variables, values, strings, notes = tf_view(ckpt)
    write_json(os.path.join(out_dir, "tf_variables.json"), variables)
    meta = {"checkpoint": os.path.basename(ckpt), "generator": "tools/tfref.py dump",
            "tensorflow": TF_VERSION,
            "source": "tf.train.load_checkpoint(checkpoint).get_tensor(name)"}
    if notes["skipped"]:
        meta["skipped"] = json.dumps(notes["skipped"], sort_keys=True)
    if notes["read_with_restore_op"]:
        meta["read_with_restore_op"] = json.dumps(notes["read_with_restore_op"])
        meta["source"] += ("; the names in read_with_restore_op made get_tensor fail with "
                           "'Data type not supported' and were read with tf.raw_ops.RestoreV2")
    meta.update(extra_meta or {})
    write_safetensors(os.path.join(out_dir, "tf_values.safetensors"), values, meta)
    if strings:
        write_json(os.path.join(out_dir, "tf_strings.json"), strings)
    elif os.path.exists(os.path.join(out_dir, "tf_strings.json")):
        os.remove(os.path.join(out_dir, "tf_strings.json"))
    return variables, values, strings, notes


# ----------------------------------------------------------------------------------------------
# ResNet v2 (tf_slim's real resnet_v2 + the newest slim's extra end points)
# ----------------------------------------------------------------------------------------------

def resnet_blocks(spec):
    return [resnet_v2.resnet_v2_block(b["scope"], base_depth=b["base_depth"], num_units=b["num_units"],
                                      stride=b["stride"]) for b in spec["blocks"]]


def expected_resnet_keys(spec, num_classes, global_pool, spatial_squeeze):
    """End-point keys of the newest slim resnet_v2 (testEndpointNames) + `output`, derived from rules."""
    sc = spec["scope"]
    keys = [sc + "/conv1"]
    depth_in = 64
    for b in spec["blocks"]:
        depth = 4 * b["base_depth"]
        for u in range(1, b["num_units"] + 1):
            unit = "%s/%s/unit_%d/bottleneck_v2" % (sc, b["scope"], u)
            if depth != depth_in:
                keys.append(unit + "/shortcut")
            keys += [unit + "/conv1", unit + "/conv2", unit + "/conv3", unit]
            depth_in = depth
        keys.append("%s/%s" % (sc, b["scope"]))
    if global_pool:
        keys.append("global_pool")
    if num_classes:
        keys.append(sc + "/logits")
        if spatial_squeeze:
            keys.append(sc + "/spatial_squeeze")
        keys.append("predictions")
    keys.append("output")
    return sorted(keys)


def build_resnet(x, spec, num_classes, is_training=False, global_pool=True, output_stride=None,
                 spatial_squeeze=True):
    """Build tf_slim's resnet_v2 under resnet_arg_scope() and return the newest-slim end points.

    Raises ValueError exactly where TF does (output_stride checks, squeeze of non-1x1 logits)."""
    sc = spec["scope"]
    num_classes = num_classes or None   # newest slim: `if num_classes:` (0 and None mean features)
    with slim.arg_scope(resnet_v2.resnet_arg_scope()):
        net, tf_eps = resnet_v2.resnet_v2(x, resnet_blocks(spec), num_classes, is_training=is_training,
                                          global_pool=global_pool, output_stride=output_stride,
                                          include_root_block=True, scope=sc)
    eps = {k: v for k, v in tf_eps.items() if k != "predictions"}   # tf_slim's is softmax of [B,1,1,C]
    g = tf.get_default_graph()
    with tf.name_scope(sc + "/"):
        if global_pool:
            eps["global_pool"] = g.get_tensor_by_name(sc + "/pool5:0")
        if num_classes:
            logits = eps[sc + "/logits"]
            if logits is not net:
                raise ToolError("tf_slim's returned net is not its logits end point")
            if spatial_squeeze:
                net = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
                eps[sc + "/spatial_squeeze"] = net
            eps["predictions"] = slim.softmax(net, scope="predictions")
        elif global_pool and net is not eps["global_pool"]:
            raise ToolError("tf_slim's returned net is not the pool5 tensor")
    eps["output"] = net
    want = expected_resnet_keys(spec, num_classes, global_pool, spatial_squeeze)
    if sorted(eps) != want:
        raise ToolError("end-point keys differ from the slim rules:\n extra %s\n missing %s"
                        % (sorted(set(eps) - set(want)), sorted(set(want) - set(eps))))
    return eps


def resnet_options(spec, num_classes, is_training, global_pool, output_stride, spatial_squeeze):
    return {"arch": "resnet_v2", "scope": spec["scope"], "num_classes": num_classes or None,
            "is_training": is_training, "global_pool": global_pool, "output_stride": output_stride,
            "spatial_squeeze": spatial_squeeze, "include_root_block": True,
            "arg_scope": "resnet_arg_scope() (weight_decay 1e-4, batch_norm_decay 0.997, "
                         "batch_norm_epsilon 1e-5, batch_norm_scale True)"}


def restore_saver(variables, ckpt, ema=False):
    """Saver restoring `variables` from ckpt (by name; with ema, from <name>/ExponentialMovingAverage
    where the checkpoint has it)."""
    if not ema:
        return tf.train.Saver(variables)
    names = set(n for n, _ in tf.train.list_variables(ckpt))
    mapping = {}
    for v in variables:
        shadow = v.op.name + "/ExponentialMovingAverage"
        mapping[shadow if shadow in names else v.op.name] = v
    return tf.train.Saver(mapping)


def check_finite(values, what):
    for k, v in values.items():
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise ToolError("%s: non-finite values in %s" % (what, k))


def activation_summary(values):
    return {k: [float(np.abs(v).mean()), float(np.abs(v).max())] for k, v in sorted(values.items())
            if v.dtype.kind == "f"}


def l2_loss_gradients(output):
    """{variable name: d l2_loss(output) / d variable} for every trainable variable the loss
    reaches (tf.gradients; l2_loss(t) = sum(t**2) / 2, the loss of tools/bench_tf.py's
    forward-backward). Variables it does not reach (a training-mode BN's moving statistics, which
    facenet puts in the trainable collection) are left out."""
    variables = tf.trainable_variables()
    grads = tf.gradients(tf.nn.l2_loss(output), variables)
    return {v.op.name: gr for v, gr in zip(variables, grads) if gr is not None}


def write_gradients(dirname, grads, output, mode):
    """<dirname>/gradients.safetensors: l2_loss_gradients' result, checked finite, TF layout."""
    check_finite(grads, "gradients")
    write_safetensors(os.path.join(dirname, "gradients.safetensors"), grads,
                      {"doc": "tf.gradients(tf.nn.l2_loss(%s), trainable variables) %s, TF layout (HWIO "
                              "kernels)" % (output, mode), "tensorflow": TF_VERSION})


def run_resnet(spec, ckpt, x_np, num_classes, is_training=False, global_pool=True, output_stride=None,
               spatial_squeeze=True, ema=False, with_updates=False):
    """Restore `ckpt` into a fresh graph and compute all end points for x_np.

    Returns (end_points, extra) where extra has `updated_stats`, `reg_loss` and `gradients` when
    with_updates (training mode: the BN update ops run in the same session.run as the forward;
    `gradients` = tf.gradients(l2_loss(output), trainable variables), see l2_loss_gradients)."""
    g = new_graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, x_np.shape, name="input")
        eps = build_resnet(x, spec, num_classes, is_training, global_pool, output_stride, spatial_squeeze)
        variables = tf.global_variables()
        saver = restore_saver(variables, ckpt, ema)
        reg = tf.add_n(tf.losses.get_regularization_losses()) if tf.losses.get_regularization_losses() else None
        update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        grads = l2_loss_gradients(eps["output"]) if with_updates else None
        with session(g) as s:
            saver.restore(s, ckpt)
            extra = {}
            if with_updates:
                before = s.run({v.op.name: v for v in variables if "moving_" in v.op.name})
                vals, _, extra["gradients"] = s.run([eps, update_ops, grads], {x: x_np})
                extra["updated_stats"] = s.run({v.op.name: v for v in variables if "moving_" in v.op.name})
                extra["stats_before"] = before
                extra["reg_loss"] = float(s.run(reg)) if reg is not None else 0.0
            else:
                vals = s.run(eps, {x: x_np})
    check_finite(vals, "end points")
    return vals, extra


def make_resnet_checkpoint(spec, prefixes, residual_scale, input_shape=None):
    """Build the net (inference graph), randomize every variable, save it to each (prefix, version)."""
    g = new_graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, input_shape or [None, 224, 224, 3], name="input")
        build_resnet(x, spec, spec["num_classes"], is_training=False)
        variables = tf.global_variables()
        with session(g) as s:
            randomize_variables(s, variables, residual_scale)
            for prefix, version in prefixes:
                os.makedirs(os.path.dirname(prefix), exist_ok=True)
                if version == "v1":
                    saver = tf.train.Saver(variables, write_version=tf.train.SaverDef.V1)
                    saver.save(s, prefix, write_meta_graph=False, write_state=False)
                else:
                    saver = tf.train.Saver(variables, save_relative_paths=True)
                    saver.save(s, prefix, write_meta_graph=False, write_state=False)
                    write_state_file(os.path.dirname(prefix), os.path.basename(prefix))
    return [v.op.name for v in variables]


def endpoint_metadata(options, extra=None):
    meta = {"options": json.dumps(options, sort_keys=True), "generator": "tools/tfref.py",
            "tensorflow": TF_VERSION, "tf_slim": TF_SLIM_VERSION, "layout": "NHWC"}
    if extra:
        meta.update(extra)
    return meta


# ----------------------------------------------------------------------------------------------
# FaceNet Inception-ResNet-v1 (facenet's own module, unchanged)
# ----------------------------------------------------------------------------------------------

def build_facenet(x, bottleneck, phase_train, keep_probability=0.8, n_classes=None):
    irv1 = load_inception_resnet_v1()
    prelogits, tf_eps = irv1.inference(x, keep_probability, phase_train=phase_train,
                                       bottleneck_layer_size=bottleneck, weight_decay=0.0)
    if n_classes:
        # train_softmax.py's classifier head
        slim.fully_connected(prelogits, n_classes, activation_fn=None,
                             weights_initializer=slim.initializers.xavier_initializer(),
                             weights_regularizer=slim.l2_regularizer(0.0), scope="Logits", reuse=False)
    embeddings = tf.nn.l2_normalize(prelogits, 1, 1e-10, name="embeddings")
    eps = dict(tf_eps)
    eps["output"] = prelogits
    eps["embeddings"] = embeddings
    want = sorted(FACENET_KEYS + ["output", "embeddings"])
    if sorted(eps) != want:
        raise ToolError("facenet end points differ from the expected keys: %s" % sorted(eps))
    return eps


def facenet_options(bottleneck, phase_train, keep_probability):
    return {"arch": "inception_resnet_v1", "scope": "InceptionResnetV1", "bottleneck_layer_size": bottleneck,
            "phase_train": phase_train, "keep_probability": keep_probability, "weight_decay": 0.0,
            "batch_norm": "decay 0.995, epsilon 1e-3, no gamma (scale=False), updates_collections None",
            "embeddings": "tf.nn.l2_normalize(prelogits, 1, 1e-10)"}


def run_facenet(ckpt, x_np, bottleneck, phase_train=False, keep_probability=0.8, ema=False):
    g = new_graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, x_np.shape, name="input")
        eps = build_facenet(x, bottleneck, phase_train, keep_probability)
        variables = tf.global_variables()
        saver = restore_saver(variables, ckpt, ema)
        grads = l2_loss_gradients(eps["output"]) if phase_train else {}
        with session(g) as s:
            saver.restore(s, ckpt)
            extra = {}
            if phase_train:
                extra["stats_before"] = s.run({v.op.name: v for v in variables if "moving_" in v.op.name})
            # facenet BN: updates_collections=None, the updates run in here
            vals, extra["gradients"] = s.run([eps, grads], {x: x_np})
            if phase_train:
                extra["updated_stats"] = s.run({v.op.name: v for v in variables if "moving_" in v.op.name})
    check_finite(vals, "facenet end points")
    return vals, extra


def make_facenet_release(model_dir, bottleneck, n_classes=FACENET_CLASSES):
    """A facenet-release-like folder: model-<subdir>.ckpt-275.{index,data-00000-of-00001} + .meta."""
    os.makedirs(model_dir, exist_ok=True)
    sub = os.path.basename(model_dir)
    g = new_graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 160, 160, 3], name="input")
        phase_train = tf.placeholder(tf.bool, name="phase_train")
        build_facenet(x, bottleneck, phase_train, 0.8, n_classes)
        variables = tf.global_variables()
        trainable = tf.trainable_variables()
        if set(v.op.name for v in variables) != set(v.op.name for v in trainable):
            raise ToolError("facenet: global and trainable variable sets differ")
        saver = tf.train.Saver(trainable, max_to_keep=3, save_relative_paths=True)
        # the meta graph first, before randomize_variables adds its assign ops
        write_meta_graph(saver, os.path.join(model_dir, "model-%s.meta" % sub))
        with session(g) as s:
            randomize_variables(s, variables, 0.3)
            prefix = os.path.join(model_dir, "model-%s.ckpt" % sub)
            path = saver.save(s, prefix, global_step=FACENET_STEP, write_meta_graph=False, write_state=False)
    return path


def write_meta_graph(saver, path):
    """saver.export_meta_graph, made byte-deterministic: the cond_context collection holds serialized
    CondContextDef protos whose `external_values` map is written in hash order, so re-serialize them
    (and the whole MetaGraphDef) with deterministic=True (sorted map keys). Same content."""
    from tensorflow.core.protobuf import control_flow_pb2
    mg = saver.export_meta_graph(clear_devices=True)
    for key, cls in (("cond_context", control_flow_pb2.CondContextDef),
                     ("while_context", control_flow_pb2.WhileContextDef)):
        if key in mg.collection_def:
            vals = mg.collection_def[key].bytes_list.value
            fixed = []
            for v in vals:
                c = cls()
                c.ParseFromString(v)
                fixed.append(c.SerializeToString(deterministic=True))
            del vals[:]
            vals.extend(fixed)
    _atomic_write(path, mg.SerializeToString(deterministic=True))


def check_meta_graph(model_dir, prefix, x, embeddings):
    """Load the release the way facenet.load_model does (import_meta_graph + restore) and compare
    embeddings:0 (fed input:0, phase_train:0=False) with the directly built graph's embeddings."""
    sub = os.path.basename(model_dir)
    g = tf.Graph()
    with g.as_default():
        saver = tf.train.import_meta_graph(os.path.join(model_dir, "model-%s.meta" % sub))
        with session(g) as s:
            saver.restore(s, prefix)
            emb = s.run("embeddings:0", {"input:0": x, "phase_train:0": False})
    diff = float(np.abs(emb - embeddings).max())
    if diff > 1e-5:
        raise ToolError("the exported meta graph gives different embeddings (max diff %g)" % diff)
    return "import_meta_graph + restore: embeddings:0 max abs diff %.3g vs the built graph" % diff


def zip_folder(folder, zip_path):
    """Zip `folder` (as its basename/...) with fixed timestamps, sorted entries."""
    base = os.path.basename(folder.rstrip("/"))
    tmp = "%s.tmp-%d" % (zip_path, os.getpid())
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        d = zipfile.ZipInfo(base + "/", date_time=(2099, 1, 1, 0, 0, 0))
        d.external_attr = 0o40755 << 16
        z.writestr(d, b"")
        for f in sorted(os.listdir(folder)):
            info = zipfile.ZipInfo("%s/%s" % (base, f), date_time=(2099, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(os.path.join(folder, f), "rb") as fh:
                z.writestr(info, fh.read())
    os.replace(tmp, zip_path)


# ----------------------------------------------------------------------------------------------
# image preprocessing (slim inception eval, facenet)
# ----------------------------------------------------------------------------------------------

def central_crop_box(h, w, fraction):
    """tf.image.central_crop's box for a static [h, w, c] image: (top, left, height, width)."""
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    return top, left, h - 2 * top, w - 2 * left


def preprocess_images(paths, variants=None):
    """TF's results for each image file. Keys `<file>/<variant>`:

    decoded                 uint8 [H,W,3]: tf.io.decode_image(channels=3) (grayscale replicated)
    inception_299/224       slim inception_preprocessing.preprocess_for_eval: convert_image_dtype to
                            float32 (x * 1/255), central_crop(0.875), tf.compat.v1.image.resize_bilinear
                            (align_corners=False, half_pixel_centers=False), (x - 0.5) * 2
    facenet_fixed_160       (resize_bilinear(float32(decoded), [160,160]) - 127.5) / 128
    facenet_prewhiten_160   tf.image.per_image_standardization(resize_bilinear(float32(decoded), [160,160]))
    """
    all_variants = ["decoded", "inception_299", "inception_224", "facenet_fixed_160", "facenet_prewhiten_160"]
    out, meta = {}, {}
    g = new_graph()
    with g.as_default(), session(g) as s:
        data = tf.placeholder(tf.string, [])
        img = tf.io.decode_image(data, channels=3, expand_animations=False)
        for path in paths:
            fname = os.path.basename(path)
            want = (variants or {}).get(fname, all_variants)
            with open(path, "rb") as f:
                raw = f.read()
            decoded = s.run(img, {data: raw})
            h, w = decoded.shape[:2]
            const = tf.constant(decoded)
            ops = {"decoded": const}
            info = {"height": int(h), "width": int(w)}
            for size in (299, 224):
                key = "inception_%d" % size
                if key not in want:
                    continue
                im = tf.image.convert_image_dtype(const, dtype=tf.float32)
                cropped = tf.image.central_crop(im, central_fraction=0.875)
                r = tf.expand_dims(cropped, 0)
                r = tf.compat.v1.image.resize_bilinear(r, [size, size], align_corners=False)
                r = tf.squeeze(r, [0])
                r = tf.multiply(tf.subtract(r, 0.5), 2.0)
                ops[key] = r
                ops[key + "/_crop_shape"] = tf.shape(cropped)
                info["central_crop_0.875"] = list(central_crop_box(h, w, 0.875))
            if "facenet_fixed_160" in want or "facenet_prewhiten_160" in want:
                resized = tf.compat.v1.image.resize_bilinear(tf.expand_dims(tf.cast(const, tf.float32), 0),
                                                            [160, 160], align_corners=False)[0]
                ops["facenet_fixed_160"] = (resized - 127.5) / 128.0
                ops["facenet_prewhiten_160"] = tf.image.per_image_standardization(resized)
            vals = s.run(ops)
            for k in list(vals):
                if k.endswith("/_crop_shape"):
                    top, left, ch, cw = info["central_crop_0.875"]
                    if list(vals[k][:2]) != [ch, cw]:
                        raise ToolError("central_crop box mismatch for %s: TF %s, formula %s"
                                        % (fname, vals[k], (ch, cw)))
                    continue
                if k in want:
                    out["%s/%s" % (fname, k)] = vals[k]
            meta[fname] = info
    return out, meta


def make_sample_images(out_dir):
    """Small deterministic synthetic images (W x H in the file name)."""
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)

    def pattern(w, h, salt):
        rng = rng_for(SEED_IMAGES, salt)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        r = 255.0 * xx / max(1, w - 1)
        gch = 255.0 * yy / max(1, h - 1)
        cy, cx = h * 0.45, w * 0.55
        rad = np.hypot(yy - cy, xx - cx)
        b = 127.5 + 127.5 * np.cos(rad / max(2.0, min(w, h) / 9.0))
        img = np.stack([r, gch, b], -1)
        img[(xx // 9 + yy // 7) % 5 == 0] = [250, 30, 20]       # stripes with sharp edges
        img[int(h * 0.2):int(h * 0.35), int(w * 0.1):int(w * 0.3)] = [10, 200, 60]
        img += rng.normal(0, 6, img.shape)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    files = []
    for w, h in ((173, 131), (64, 97)):
        name = "rgb_%dx%d.png" % (w, h)
        Image.fromarray(pattern(w, h, name), "RGB").save(os.path.join(out_dir, name), optimize=False)
        files.append(name)
    name = "gray_45x38.png"
    gray = pattern(45, 38, name).astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8), "L").save(os.path.join(out_dir, name))
    files.append(name)
    name = "rgb_121x89.jpg"
    Image.fromarray(pattern(121, 89, name), "RGB").save(os.path.join(out_dir, name), quality=92,
                                                        subsampling=0, optimize=False)
    files.append(name)
    return files


# Committed subset of (image, variant), to keep fixtures/ well under 5 MB (one 299x299x3 float32
# image alone is 1.07 MB, a 224 one 0.6 MB): every preprocessing path once, inception at 224.
# `refs preprocessing` (on demand) makes every variant of every image, inception_299 included.
COMMITTED_VARIANTS = {
    "rgb_173x131.png": ["decoded", "inception_224"],
    "rgb_64x97.png": ["decoded", "facenet_fixed_160"],
    "gray_45x38.png": ["decoded", "facenet_prewhiten_160"],
    "rgb_121x89.jpg": ["decoded"],
}


# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------

def partition_getter(getter, name, *args, **kwargs):
    if name in PARTITIONED:
        n, axis = PARTITIONED[name]
        kwargs["partitioner"] = tf.fixed_size_partitioner(n, axis=axis)
    return getter(name, *args, **kwargs)


def resave(spec, src_prefix, dst_prefix, mode):
    """Restore the tiny V2 checkpoint into a differently built graph and save it again.

    mode 'partitioned': variables in PARTITIONED made with tf.compat.v1.fixed_size_partitioner;
    mode 'sharded': variables placed on /cpu:0 and /cpu:1 (ConfigProto device_count CPU=2) and a
    Saver(sharded=True), which writes one .data shard per device."""
    g = new_graph()
    cpus = 2 if mode == "sharded" else 1
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 64, 64, 3], name="input")
        if mode == "partitioned":
            with tf.variable_scope(tf.get_variable_scope(), custom_getter=partition_getter):
                build_resnet(x, spec, spec["num_classes"])
            saver = tf.train.Saver(save_relative_paths=True)
        else:
            def device_fn(op):
                return "/cpu:1" if any("/%s/" % s in op.name + "/" for s in SHARD_DEVICE_1) else "/cpu:0"
            with tf.device(device_fn):
                build_resnet(x, spec, spec["num_classes"])
            saver = tf.train.Saver(sharded=True, save_relative_paths=True)
        with session(g, cpus=cpus) as s:
            saver.restore(s, src_prefix)
            os.makedirs(os.path.dirname(dst_prefix), exist_ok=True)
            saver.save(s, dst_prefix, write_meta_graph=False, write_state=False)
            write_state_file(os.path.dirname(dst_prefix), os.path.basename(dst_prefix))
            if mode == "partitioned":
                parts = {}
                for v in tf.global_variables():
                    info = v._get_save_slice_info()
                    if info is not None:
                        parts.setdefault(info.full_name, []).append(
                            {"var": v.op.name, "offset": list(info.var_offset), "shape": v.shape.as_list()})
                return parts
            devices = {}
            for v in tf.global_variables():
                devices.setdefault(v.device.split("/")[-1].lower().replace("device:", ""), []).append(v.op.name)
            return {k: len(v) for k, v in sorted(devices.items())}


def make_train_checkpoint(spec, src_prefix, dst_dir, steps=3, batch=4):
    """A few real training steps (is_training=True, softmax loss + L2, Momentum 0.9, BN updates,
    ExponentialMovingAverage(0.9) of the trainable variables) starting from the tiny V2 values."""
    g = new_graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [batch, 64, 64, 3], name="input")
        labels = tf.placeholder(tf.int64, [batch], name="labels")
        eps = build_resnet(x, spec, spec["num_classes"], is_training=True)
        model_vars = tf.global_variables()
        tf.losses.sparse_softmax_cross_entropy(labels, eps["output"])
        loss = tf.losses.get_total_loss()
        global_step = tf.train.get_or_create_global_step()
        opt = tf.train.MomentumOptimizer(0.01, 0.9)
        with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
            train = opt.minimize(loss, global_step=global_step)
        ema = tf.train.ExponentialMovingAverage(0.9)
        with tf.control_dependencies([train]):
            train_op = ema.apply(tf.trainable_variables())
        saver = tf.train.Saver(save_relative_paths=True)
        rng = rng_for(SEED_TRAIN, "tiny-train")
        with session(g) as s:
            s.run(tf.global_variables_initializer())
            tf.train.Saver(model_vars).restore(s, src_prefix)
            # shadows start at the restored values
            s.run(tf.group(*[tf.assign(ema.average(v), v) for v in tf.trainable_variables()]))
            losses = []
            for _ in range(steps):
                xb = rng.uniform(-1, 1, (batch, 64, 64, 3)).astype(np.float32)
                yb = rng.integers(0, spec["num_classes"], batch).astype(np.int64)
                _, l_ = s.run([train_op, loss], {x: xb, labels: yb})
                losses.append(float(l_))
            os.makedirs(dst_dir, exist_ok=True)
            path = saver.save(s, os.path.join(dst_dir, "model.ckpt"), global_step=steps,
                              write_meta_graph=False, write_state=False)
            write_state_file(dst_dir, os.path.basename(path))
    if not all(np.isfinite(losses)):
        raise ToolError("training diverged: losses %s" % losses)
    return path, losses




def make_dtypes_values():
    import ml_dtypes
    v = {
        "dtypes/float32": np.array([[0.0, 1.5, -2.25], [3.0e38, -1.0e-38, 42.0]], np.float32),
        "dtypes/float64": np.array([1.0 / 3.0, -2.5e300, 1e-310], np.float64),
        "dtypes/float16": np.array([[1.0, -2.0], [65504.0, 6e-8]], np.float16),
        "dtypes/bfloat16": np.array([1.0, -3.140625, 1e38, 0.0078125], ml_dtypes.bfloat16),
        "dtypes/int8": np.array([-128, -1, 0, 1, 127], np.int8),
        "dtypes/int16": np.array([-32768, -2, 300, 32767], np.int16),
        "dtypes/int32": np.array([[-2147483648, -1], [65536, 2147483647]], np.int32),
        "dtypes/int64": np.array([-9223372036854775808, 1, 9223372036854775807], np.int64),
        "dtypes/uint8": np.array([0, 1, 128, 255], np.uint8),
        "dtypes/bool": np.array([[True, False, True], [False, False, True]], np.bool_),
        "dtypes/string": np.array([b"hello", b"", "\u00fcn\u00efc\u00f6d\u00e9 \u2713".encode("utf-8"),
                                   b"a\x00b\xff", b"x" * 200], dtype=object),
        "dtypes/scalar_float32": np.array(3.5, np.float32),
        "dtypes/scalar_int64": np.array(123456789012, np.int64),
        "dtypes/scalar_string": np.array(b"slimzoo", dtype=object),
        "dtypes/empty_float32": np.zeros([0, 3], np.float32),
    }
    return v


def make_dtypes_checkpoints(out_dir):
    values = make_dtypes_values()
    made = {}
    for version in ("v2", "v1"):
        g = new_graph()
        with g.as_default():
            variables = []
            for name, val in sorted(values.items()):
                if version == "v1" and name == "dtypes/bfloat16":
                    continue   # the V1 writer cannot save bfloat16
                tdt = tf.string if val.dtype == object else tf.as_dtype(val.dtype)
                variables.append(tf.Variable(tf.constant(val, dtype=tdt), name=name, dtype=tdt))
            with session(g) as s:
                s.run(tf.global_variables_initializer())
                d = os.path.join(out_dir, version)
                os.makedirs(d, exist_ok=True)
                prefix = os.path.join(d, "model.ckpt")
                if version == "v1":
                    tf.train.Saver(variables, write_version=tf.train.SaverDef.V1).save(
                        s, prefix, write_meta_graph=False, write_state=False)
                else:
                    tf.train.Saver(variables, save_relative_paths=True).save(
                        s, prefix, write_meta_graph=False, write_state=False)
                    write_state_file(d, "model.ckpt")
        made[version] = prefix
    return made, values


def cmd_fixtures(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    stage = os.path.join(out, ".tmp-%d" % os.getpid())
    if os.path.exists(stage):
        shutil.rmtree(stage)
    os.makedirs(stage)
    t0 = time.time()
    try:
        report = build_fixtures(stage)
        for sub in ("tiny", "dtypes", "images"):
            dst = os.path.join(out, sub)
            if os.path.exists(dst):
                shutil.rmtree(dst)
            os.replace(os.path.join(stage, sub), dst)
        os.replace(os.path.join(stage, "README.md"), os.path.join(out, "README.md"))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    files = [os.path.join(dp, f) for dp, _, fs in os.walk(out) for f in fs]
    total = sum(os.path.getsize(f) for f in files)
    log("fixtures written to %s in %.1f s; %d files, %.2f MB in total"
        % (out, time.time() - t0, len(files), total / 1e6))
    for k, v in report.items():
        log("  %s: %s" % (k, v))


def build_fixtures(stage):
    spec = TINY_NET
    tiny = os.path.join(stage, "tiny")
    os.makedirs(tiny)
    write_json(os.path.join(tiny, "net.json"), spec)
    rs = RESIDUAL_SCALE[spec["scope"]]
    report = {}

    # V2 + V1 with the same randomized values
    v2 = os.path.join(tiny, "v2", "model.ckpt")
    v1 = os.path.join(tiny, "v1", "model.ckpt")
    names = make_resnet_checkpoint(spec, [(v2, "v2"), (v1, "v1")], rs, input_shape=[None, 64, 64, 3])
    report["tiny variables"] = len(names)
    _, vals2, _, _ = write_tf_view(v2, os.path.join(tiny, "v2"))
    _, vals1, _, fb1 = write_tf_view(v1, os.path.join(tiny, "v1"))
    assert_same_values(vals2, vals1, "tiny v1 vs v2")

    # end points for the committed input
    x = random_input("tiny/input", [2, 64, 64, 3])
    write_npy(os.path.join(tiny, "input.npy"), x)
    opts = resnet_options(spec, spec["num_classes"], False, True, None, True)
    eps, _ = run_resnet(spec, v2, x, spec["num_classes"])
    opts.update({"ckpt": "fixtures/tiny/v2/model.ckpt", "input": "fixtures/tiny/input.npy",
                 "input_shape": list(x.shape)})
    write_safetensors(os.path.join(tiny, "endpoints.safetensors"), eps, endpoint_metadata(opts))
    report["tiny end points"] = len(eps)
    report["tiny activations |x| mean range"] = "%.3g .. %.3g" % (
        min(a[0] for a in activation_summary(eps).values()), max(a[0] for a in activation_summary(eps).values()))
    eps_v1, _ = run_resnet(spec, v1, x, spec["num_classes"])
    assert_same_values(eps, eps_v1, "end points from v1 vs v2")

    # partitioned and sharded re-saves of the same values
    part = os.path.join(tiny, "partitioned", "model.ckpt")
    parts = resave(spec, v2, part, "partitioned")
    _, valsp, _, _ = write_tf_view(part, os.path.join(tiny, "partitioned"))
    assert_same_values(vals2, valsp, "tiny partitioned vs v2")
    write_json(os.path.join(tiny, "partitioned", "partitions.json"), parts)
    report["partitioned"] = {k: [p["shape"] for p in v] for k, v in parts.items()}

    shard = os.path.join(tiny, "sharded", "model.ckpt")
    devices = resave(spec, v2, shard, "sharded")
    shards = sorted(f for f in os.listdir(os.path.dirname(shard)) if ".data-" in f)
    if len(shards) < 2:
        raise ToolError("sharded save produced %s" % shards)
    _, valss, _, _ = write_tf_view(shard, os.path.join(tiny, "sharded"))
    assert_same_values(vals2, valss, "tiny sharded vs v2")
    report["sharded"] = "%s; variables per device %s" % (shards, devices)

    # training checkpoint
    path, losses = make_train_checkpoint(spec, v2, os.path.join(tiny, "train"))
    tvars, tvals, _, _ = write_tf_view(path, os.path.join(tiny, "train"))
    nslot = sum(1 for v in tvars if v["name"].endswith("/Momentum"))
    nema = sum(1 for v in tvars if v["name"].endswith("/ExponentialMovingAverage"))
    same = [v["name"] for v in tvars if v["name"].endswith("/ExponentialMovingAverage")
            and np.array_equal(tvals[v["name"]], tvals[v["name"][:-len("/ExponentialMovingAverage")]])]
    # A bias whose only consumer is a training-mode batch norm gets an exactly zero gradient
    # (BN subtracts the batch mean), so its shadow may legitimately equal the variable.
    if len(same) > max(1, nema // 10):
        raise ToolError("too many EMA shadows equal to their variables: %s" % same)
    report["train"] = ("%s: %d variables (%d Momentum slots, %d EMA shadows, global_step=%s), losses %s; "
                       "shadows equal to their variable (zero gradient into a training-mode BN): %s") % (
        os.path.basename(path), len(tvars), nslot, nema, int(tvals["global_step"]),
        ["%.4f" % l_ for l_ in losses], same or "none")

    # dtypes
    dt = os.path.join(stage, "dtypes")
    made, _ = make_dtypes_checkpoints(dt)
    for version, prefix in made.items():
        variables, values, strings, notes = write_tf_view(prefix, os.path.join(dt, version))
        fb = notes["read_with_restore_op"]
        report["dtypes " + version] = ", ".join("%s:%s%s" % (v["name"].split("/")[-1], v["dtype"], v["shape"])
                                                for v in variables)
        if fb:
            report["dtypes " + version] += ("; read with the RestoreV2 op because get_tensor raises "
                                            "'Data type not supported': " + ", ".join(fb))

    # images
    img_dir = os.path.join(stage, "images")
    files = make_sample_images(img_dir)
    pre, meta = preprocess_images([os.path.join(img_dir, f) for f in files], COMMITTED_VARIANTS)
    write_safetensors(os.path.join(img_dir, "preprocessed.safetensors"), pre,
                      {"images": json.dumps(meta, sort_keys=True), "generator": "tools/tfref.py",
                       "tensorflow": TF_VERSION, "doc": preprocess_images.__doc__.strip()})
    report["images"] = ", ".join(sorted(pre))

    write_readme(os.path.join(stage, "README.md"), report, parts, devices, shards)
    return report


def assert_same_values(a, b, what):
    if sorted(a) != sorted(b):
        raise ToolError("%s: names differ: %s" % (what, sorted(set(a) ^ set(b))))
    for k in a:
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes():
            raise ToolError("%s: values differ for %s" % (what, k))


# ----------------------------------------------------------------------------------------------
# refs
# ----------------------------------------------------------------------------------------------

REF_NAMES = ["resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200", "facenet_128",
             "facenet_512", "tiny_variants", "facenet_train", "preprocessing"]


def default_cache():
    return os.environ.get("SLIMZOO_REFS") or os.path.join(REPO, ".cache", "refs")


def cmd_refs(args):
    cache = os.path.abspath(args.cache or default_cache())
    os.makedirs(cache, exist_ok=True)
    for name in (REF_NAMES if args.name == "all" else [args.name]):
        ensure_ref(cache, name, args.force)


# Bumped when the content of reference sets changes, so that stale caches are remade.
REFS_VERSION = 3


def ref_is_done(final):
    try:
        with open(os.path.join(final, "DONE")) as f:
            return json.load(f).get("refs_version") == REFS_VERSION
    except (OSError, ValueError):
        return False


def ensure_ref(cache, name, force=False):
    final = os.path.join(cache, name)
    if ref_is_done(final) and not force:
        log("%s is already complete (%s); --force remakes it" % (name, final))
        return final
    tmp = os.path.join(cache, "%s.tmp-%d" % (name, os.getpid()))
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    t0 = time.time()
    log("making %s in %s" % (name, tmp))
    try:
        info = REF_BUILDERS[name](tmp, cache) or {}
        info.update({"name": name, "refs_version": REFS_VERSION, "seconds": round(time.time() - t0, 1), "versions": versions(),
                     "command": "tools/tfref.py refs %s" % name})
        write_json(os.path.join(tmp, "DONE"), info)
        if ref_is_done(final) and not force:
            # another process finished the same reference meanwhile: keep theirs
            shutil.rmtree(tmp)
            log("%s was completed by another process meanwhile; keeping it" % name)
            return final
        if os.path.exists(final):
            old = "%s.old-%d" % (final, os.getpid())
            os.replace(final, old)
            shutil.rmtree(old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(final) for f in fs)
    log("%s done in %.1f s, %.1f MB at %s" % (name, time.time() - t0, size / 1e6, final))
    return final


def ref_resnet(name):
    def build(tmp, cache):
        spec = standard_net(name)
        write_json(os.path.join(tmp, "net.json"), spec)
        v2 = os.path.join(tmp, "v2", "model.ckpt")
        v1 = os.path.join(tmp, "v1", "model.ckpt")
        t = time.time()
        make_resnet_checkpoint(spec, [(v2, "v2"), (v1, "v1")], RESIDUAL_SCALE[name])
        t_ckpt = time.time() - t
        write_json(os.path.join(tmp, "tf_variables.json"), tf_view_variables(v2, with_hash=True))
        write_json(os.path.join(tmp, "tf_variables_v1.json"), tf_view_variables(v1, with_hash=True))
        x = random_input(name + "/input", [2, 224, 224, 3])
        write_npy(os.path.join(tmp, "input.npy"), x)
        t = time.time()
        eps, _ = run_resnet(spec, v2, x, spec["num_classes"])
        t_fwd = time.time() - t
        opts = resnet_options(spec, spec["num_classes"], False, True, None, True)
        opts.update({"ckpt": "v2/model.ckpt", "input": "input.npy", "input_shape": list(x.shape),
                     "residual_scale": RESIDUAL_SCALE[name]})
        write_safetensors(os.path.join(tmp, "endpoints.safetensors"), eps, endpoint_metadata(opts))
        act = activation_summary(eps)
        return {"options": opts, "end_points": len(eps), "seconds_checkpoints": round(t_ckpt, 1),
                "seconds_forward": round(t_fwd, 1),
                "abs_mean_range": [min(a[0] for a in act.values()), max(a[0] for a in act.values())],
                "abs_max": max(a[1] for a in act.values())}
    return build


def tf_view_variables(ckpt, with_hash=False):
    """TF's list_variables with dtypes; with_hash adds the sha256 of each numeric tensor's bytes as
    tf.train.load_checkpoint(...).get_tensor returns them (C order, little-endian), so that readers
    can be checked bit for bit against full-size references without a second copy of the data."""
    reader = tf.train.load_checkpoint(ckpt)
    dtypes = reader.get_variable_to_dtype_map()
    rows = []
    for n, s in tf.train.list_variables(ckpt):
        row = {"name": n, "dtype": dtypes[n].name, "shape": [int(d) for d in s]}
        if with_hash and dtypes[n] != tf.string:
            row["sha256"] = hashlib.sha256(np.ascontiguousarray(reader.get_tensor(n)).tobytes()).hexdigest()
        rows.append(row)
    return sorted(rows, key=lambda e: e["name"])


def ref_facenet(bottleneck):
    def build(tmp, cache):
        model_dir = os.path.join(tmp, FACENET_SUBDIR)
        prefix = make_facenet_release(model_dir, bottleneck)
        zip_folder(model_dir, os.path.join(tmp, FACENET_SUBDIR + ".zip"))
        write_json(os.path.join(tmp, "tf_variables.json"), tf_view_variables(prefix, with_hash=True))
        info = {"checkpoint": os.path.relpath(prefix, tmp), "n_classes": FACENET_CLASSES}
        for tag, shape in (("160", [3, 160, 160, 3]), ("odd", [2, 171, 163, 3])):
            x = random_input("facenet_%d/input_%s" % (bottleneck, tag), shape)
            write_npy(os.path.join(tmp, "input_%s.npy" % tag), x)
            eps, _ = run_facenet(prefix, x, bottleneck)
            opts = facenet_options(bottleneck, False, 0.8)
            opts.update({"ckpt": os.path.relpath(prefix, tmp), "input": "input_%s.npy" % tag,
                         "input_shape": shape})
            write_safetensors(os.path.join(tmp, "endpoints_%s.safetensors" % tag), eps, endpoint_metadata(opts))
            act = activation_summary(eps)
            info["abs_mean_range_" + tag] = [min(a[0] for a in act.values()), max(a[0] for a in act.values())]
            if tag == "160":
                info["meta_graph_check"] = check_meta_graph(model_dir, prefix, x, eps["embeddings"])
        return info
    return build


def tiny_cases():
    """(case name, options, input shape); output_stride etc. as in resnet_v2()."""
    d = dict(num_classes=7, is_training=False, global_pool=True, output_stride=None, spatial_squeeze=True)

    def c(name, shape, **kw):
        o = dict(d)
        o.update(kw)
        return name, o, shape
    return [
        c("odd_65x47", [2, 65, 47, 3]),
        c("os8_57", [2, 57, 57, 3], output_stride=8),
        c("os16_spatial_65", [2, 65, 65, 3], output_stride=16, global_pool=False, spatial_squeeze=False),
        c("os4_45", [2, 45, 45, 3], output_stride=4),
        c("no_classes", [2, 64, 64, 3], num_classes=None),
        c("no_classes_no_pool", [2, 64, 64, 3], num_classes=None, global_pool=False),
        c("no_pool_no_squeeze", [2, 64, 64, 3], global_pool=False, spatial_squeeze=False),
        c("squeeze_error", [2, 64, 64, 3], global_pool=False, spatial_squeeze=True),
        c("os12_error", [2, 64, 64, 3], output_stride=12),
        c("os6_error", [2, 64, 64, 3], output_stride=6),
        c("batch1", [1, 64, 64, 3]),
        c("batch3", [3, 64, 64, 3]),
        c("training", [4, 64, 64, 3], is_training=True),
    ]


def variance_update_kind(before, after, batch_input, decay):
    """Which batch variance TF folded into moving_variance: 'unbiased' (n-1) or 'biased' (n)."""
    axes = tuple(range(batch_input.ndim - 1))
    n = int(np.prod([batch_input.shape[a] for a in axes]))
    got = (after.astype(np.float64) - decay * before) / (1 - decay)
    biased = batch_input.astype(np.float64).var(axis=axes)
    unbiased = biased * n / (n - 1)
    eb, eu = np.abs(got - biased).max(), np.abs(got - unbiased).max()
    return ("unbiased (n/(n-1) * population variance)" if eu < eb else "biased (population variance)",
            float(min(eb, eu)))


def ref_tiny_variants(tmp, cache):
    spec = json.load(open(os.path.join(REPO, "fixtures", "tiny", "net.json")))
    ckpt = os.path.join(REPO, "fixtures", "tiny", "v2", "model.ckpt")
    if not os.path.exists(ckpt + ".index"):
        raise ToolError("missing %s: run tools/tfref.py fixtures first" % ckpt)
    summary = {}
    for name, o, shape in tiny_cases():
        d = os.path.join(tmp, name)
        os.makedirs(d)
        x = random_input("tiny_variants/" + name, shape)
        write_npy(os.path.join(d, "input.npy"), x)
        opts = resnet_options(spec, o["num_classes"], o["is_training"], o["global_pool"], o["output_stride"],
                              o["spatial_squeeze"])
        opts.update({"ckpt": "fixtures/tiny/v2/model.ckpt", "net_json": "fixtures/tiny/net.json",
                     "input": "input.npy", "input_shape": shape})
        try:
            eps, extra = run_resnet(spec, ckpt, x, o["num_classes"], o["is_training"], o["global_pool"],
                                    o["output_stride"], o["spatial_squeeze"], with_updates=o["is_training"])
        except ValueError as e:
            opts["tf_error"] = str(e)
            opts["tf_error_type"] = type(e).__name__
            write_json(os.path.join(d, "options.json"), opts)
            summary[name] = "tf_error: " + str(e).splitlines()[0][:120]
            continue
        if o["is_training"]:
            opts["reg_loss"] = extra["reg_loss"]
            opts["reg_loss_doc"] = ("sum of tf.compat.v1.losses.get_regularization_losses(): slim "
                                    "l2_regularizer(1e-4) = 1e-4 * sum(w**2)/2 over all conv weights, logits "
                                    "included (not biases, not BN)")
            opts["batch_norm_decay"] = 0.997
            opts["batch_norm_epsilon"] = 1e-5
            # which variance TF folds into moving_variance (checked on block2/unit_1's preact,
            # whose input is the block1 end point)
            bn = spec["scope"] + "/block2/unit_1/bottleneck_v2/preact/moving_variance"
            kind, err = variance_update_kind(extra["stats_before"][bn], extra["updated_stats"][bn],
                                             eps[spec["scope"] + "/block1"], 0.997)
            opts["moving_variance_update"] = kind
            opts["notes"] = ("is_training=True: BN normalizes with the batch mean and population "
                             "variance; moving_mean = 0.997*old + 0.003*batch_mean; moving_variance "
                             "update uses the %s batch variance (checked on %s, max err %.2g)"
                             % (kind, bn, err))
            write_safetensors(os.path.join(d, "updated_stats.safetensors"), extra["updated_stats"],
                              {"doc": "every BN moving_mean/moving_variance after one training-mode forward "
                                      "with the update ops run", "tensorflow": TF_VERSION})
            write_gradients(d, extra["gradients"], "output", "in training mode")
        write_safetensors(os.path.join(d, "endpoints.safetensors"), eps, endpoint_metadata(opts))
        opts["keys"] = sorted(eps)
        write_json(os.path.join(d, "options.json"), opts)
        summary[name] = "%d end points, output %s" % (len(eps), list(eps["output"].shape))
    return {"cases": summary}


def ref_facenet_train(tmp, cache):
    base = ensure_ref(cache, "facenet_512")
    prefix = os.path.join(base, FACENET_SUBDIR, "model-%s.ckpt-%d" % (FACENET_SUBDIR, FACENET_STEP))
    x = random_input("facenet_train/input", [4, 160, 160, 3])
    write_npy(os.path.join(tmp, "input.npy"), x)
    eps, extra = run_facenet(prefix, x, 512, phase_train=True, keep_probability=1.0)
    opts = facenet_options(512, True, 1.0)
    opts.update({"ckpt": "../facenet_512/%s/model-%s.ckpt-%d" % (FACENET_SUBDIR, FACENET_SUBDIR, FACENET_STEP),
                 "input": "input.npy", "input_shape": list(x.shape)})
    bn = "InceptionResnetV1/Conv2d_2a_3x3/BatchNorm/moving_variance"
    g = new_graph()   # the input of Conv2d_2a_3x3's BN is its conv output: recompute it from TF tensors
    with g.as_default():
        xin = tf.placeholder(tf.float32, eps["Conv2d_1a_3x3"].shape)
        w = tf.constant(tf.train.load_checkpoint(prefix).get_tensor("InceptionResnetV1/Conv2d_2a_3x3/weights"))
        conv = tf.nn.conv2d(xin, w, [1, 1, 1, 1], "VALID")
        with session(g) as s:
            conv_out = s.run(conv, {xin: eps["Conv2d_1a_3x3"]})
    kind, err = variance_update_kind(extra["stats_before"][bn], extra["updated_stats"][bn], conv_out, 0.995)
    opts["moving_variance_update"] = kind
    opts["notes"] = ("phase_train=True: BN normalizes with batch statistics and updates in place "
                     "(updates_collections=None) during the same forward; decay 0.995, epsilon 1e-3; "
                     "moving_variance folds in the %s batch variance (checked on %s, max err %.2g); "
                     "keep_probability 1.0 makes dropout the identity" % (kind, bn, err))
    opts["keys"] = sorted(eps)
    write_safetensors(os.path.join(tmp, "endpoints.safetensors"), eps, endpoint_metadata(opts))
    write_safetensors(os.path.join(tmp, "updated_stats.safetensors"), extra["updated_stats"],
                      {"doc": "every BN moving_mean/moving_variance after one phase_train=True forward",
                       "tensorflow": TF_VERSION})
    write_gradients(tmp, extra["gradients"], "prelogits", "with phase_train=True")
    write_json(os.path.join(tmp, "options.json"), opts)
    return {"options": opts}


def ref_preprocessing(tmp, cache):
    img_dir = os.path.join(REPO, "fixtures", "images")
    files = sorted(f for f in os.listdir(img_dir) if f.endswith((".png", ".jpg")))
    if not files:
        raise ToolError("no images in %s: run tools/tfref.py fixtures first" % img_dir)
    pre, meta = preprocess_images([os.path.join(img_dir, f) for f in files])
    write_safetensors(os.path.join(tmp, "preprocessed.safetensors"), pre,
                      {"images": json.dumps(meta, sort_keys=True), "generator": "tools/tfref.py",
                       "tensorflow": TF_VERSION, "doc": preprocess_images.__doc__.strip()})
    return {"keys": sorted(pre)}


REF_BUILDERS = {n: ref_resnet(n) for n in RESNET_UNITS}
REF_BUILDERS.update({"facenet_128": ref_facenet(128), "facenet_512": ref_facenet(512),
                     "tiny_variants": ref_tiny_variants, "facenet_train": ref_facenet_train,
                     "preprocessing": ref_preprocessing})


# ----------------------------------------------------------------------------------------------
# dump, features, preprocess
# ----------------------------------------------------------------------------------------------

def cmd_dump(args):
    ckpt = resolve_ckpt(args.ckpt)
    variables, values, strings, _ = write_tf_view(ckpt, args.out)
    log("dumped %s: %d variables (%d numeric, %d string) to %s"
        % (ckpt, len(variables), len(values), len(strings), args.out))


def cmd_features(args):
    ckpt = resolve_ckpt(args.ckpt)
    x = np.load(args.input)
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[-1] != 3:
        raise ToolError("--input must be float32 NHWC [B,H,W,3], got %s %s" % (x.dtype, x.shape))
    if args.net == "facenet":
        bottleneck = args.bottleneck
        if bottleneck is None:
            shapes = dict(tf.train.list_variables(ckpt))
            bottleneck = int(shapes["InceptionResnetV1/Bottleneck/weights"][-1])
        eps, _ = run_facenet(ckpt, x, bottleneck, ema=args.ema)
        opts = facenet_options(bottleneck, False, 0.8)
    else:
        if args.net == "tiny":
            spec = json.load(open(args.net_json or os.path.join(REPO, "fixtures", "tiny", "net.json")))
        elif args.net_json:
            spec = json.load(open(args.net_json))
        else:
            spec = standard_net(args.net)
        if args.num_classes is None:
            nc = spec.get("num_classes")
        else:
            nc = None if args.num_classes.lower() == "none" else int(args.num_classes)
        opts = resnet_options(spec, nc, False, not args.no_global_pool, args.output_stride,
                              not args.no_spatial_squeeze)
        try:
            eps, _ = run_resnet(spec, ckpt, x, nc, False, not args.no_global_pool, args.output_stride,
                                not args.no_spatial_squeeze, ema=args.ema)
        except ValueError as e:
            raise ToolError("TensorFlow refused these options: %s" % e)
    opts.update({"ckpt": os.path.abspath(ckpt), "input": os.path.abspath(args.input),
                 "input_shape": list(x.shape), "ema": bool(args.ema)})
    write_safetensors(args.out, eps, endpoint_metadata(opts))
    log("wrote %d end points to %s" % (len(eps), args.out))


def cmd_preprocess(args):
    pre, meta = preprocess_images(args.images)
    write_safetensors(args.out, pre, {"images": json.dumps(meta, sort_keys=True), "tensorflow": TF_VERSION,
                                      "doc": preprocess_images.__doc__.strip()})
    log("wrote %d tensors to %s" % (len(pre), args.out))


# ----------------------------------------------------------------------------------------------
# README of fixtures/
# ----------------------------------------------------------------------------------------------

def write_readme(path, report, parts, devices, shards):
    v = versions()
    part_lines = "\n".join(
        "  - `%s` %s: %d slices %s (fixed_size_partitioner(%d, axis=%d))"
        % (k, "full shape", len(p), ", ".join("%s at offset %s" % (q["shape"], q["offset"]) for q in p),
           PARTITIONED[k][0], PARTITIONED[k][1]) for k, p in sorted(parts.items()))
    text = README_TEMPLATE.format(
        tf=v["tensorflow"], slim=v["tf_slim"], facenet=v["facenet"], numpy=v["numpy"],
        sw=SEED_WEIGHTS, si=SEED_INPUT, st=SEED_TRAIN, sim=SEED_IMAGES, sg=GRAPH_SEED,
        net=json.dumps(TINY_NET), rs=RESIDUAL_SCALE["resnet_v2_tiny"],
        part_lines=part_lines, shards=", ".join(shards), devices=json.dumps(devices),
        dev1=", ".join(SHARD_DEVICE_1), train=report["train"],
        committed="\n".join("- `%s`: %s" % (f, ", ".join(v)) for f, v in COMMITTED_VARIANTS.items()),
        dtypes_v2=report["dtypes v2"],
        dtypes_v1=report["dtypes v1"])
    _atomic_write(path, text.encode("utf-8"))


README_TEMPLATE = """# slimzoo test fixtures (generated: do not edit by hand)

Made by real TensorFlow with

    tools/bootstrap.sh tf
    .venv/tf/bin/python tools/tfref.py fixtures          # --out fixtures is the default

Versions: tensorflow(-cpu) {tf}, tf_slim {slim}, facenet {facenet} (only for refs), numpy {numpy};
graph mode via tools/tfcompat.py (TF_USE_LEGACY_KERAS=1, tf.compat.v1.disable_v2_behavior()),
oneDNN on (TF's default), 2 intra-op threads. Running the command twice gives byte-identical files.

Seeds: variable values `np.random.default_rng([{sw}, crc32(variable name)])` (independent of order);
inputs `np.random.default_rng([{si}, crc32(label)])` (per image: channel offsets + smooth waves + noise,
clipped to [-1, 1]; see `random_input` in tools/tfref.py); training data `[{st}, crc32("tiny-train")]`;
images `[{sim}, crc32(file name)]`; `tf.set_random_seed({sg})` in every graph (all variables are
overwritten before saving, so TF's own initializers never reach a file).

## tiny/ : a narrow ResNet v2

`tiny/net.json` = `{net}`

Built with tf_slim's real `resnet_v2(inputs, blocks, num_classes=7, is_training=False, global_pool=True,
output_stride=None, include_root_block=True, scope='resnet_v2_tiny')` under `resnet_arg_scope()`
(blocks from `resnet_v2_block`). block1 unit_1 and block2 unit_1 and block4 unit_1 have projection
shortcuts (`.../shortcut/{{weights,biases}}`), block3 unit_1 an identity shortcut at stride 1, and the
last unit of block1..3 is strided with an identity (subsample) shortcut.

Values (assigned with placeholders + `tf.assign` before saving): conv weights He-normal N(0, 2/fan_in) with
conv3 and shortcut weights x{rs}, logits weights N(0, 4/fan_in); biases N(0,0.1); BN beta N(0,0.1);
gamma U(0.5,1.5) with ~10% of channels (at least one per layer) negated; moving_mean N(0,0.2);
moving_variance U(0.5,2.0).

| path | what |
|---|---|
| `tiny/v2/` | `model.ckpt.index`, `model.ckpt.data-00000-of-00001`, `checkpoint` (default V2 `Saver`) |
| `tiny/v1/model.ckpt` | the same values, `Saver(write_version=SaverDef.V1)` (single table file) |
| `tiny/partitioned/` | V2, same values, some variables partitioned (below); `partitions.json` lists the slices |
| `tiny/sharded/` | V2, same values, `Saver(sharded=True)` with variables on two CPU devices: {shards} |
| `tiny/train/` | a training checkpoint (below) |
| `tiny/input.npy` | float32 NHWC [2,64,64,3] in [-1,1] |
| `tiny/endpoints.safetensors` | every end point for `input.npy` on `v2/model.ckpt`, default options, + `output` |

Each checkpoint folder also has TF's view of it: `tf_variables.json` (`[{{name, dtype, shape}}]` sorted by
name, from `tf.train.list_variables` + `get_variable_to_dtype_map()`), `tf_values.safetensors` (every
numeric/bool tensor exactly as `tf.train.load_checkpoint(path).get_tensor(name)` returns it, TF layout,
bfloat16 as BF16, bool as BOOL) and, where there are string tensors, `tf_strings.json`
(`{{name: {{shape, values: [utf-8 text or null], hex: [bytes as hex]}}}}`).

Partitioned variables (`tiny/partitioned/`, made with a custom getter that passes
`partitioner=tf.compat.v1.fixed_size_partitioner(n, axis)` for exactly these names; TF lists each once
under its full name with the full shape):
{part_lines}

Sharded (`tiny/sharded/`): ConfigProto(device_count={{'CPU': 2}}); ops under the scopes {dev1} are placed
on /cpu:1, the rest on /cpu:0; variables per device {devices}. The index is shared, data in {shards}.

Training checkpoint (`tiny/train/`): the tiny net with is_training=True (BN batch statistics and
update ops), loss = sparse softmax cross-entropy on random labels + slim L2 (1e-4), starting from the
v2 values, `MomentumOptimizer(0.01, momentum=0.9)` and `ExponentialMovingAverage(0.9).apply(trainable
variables)` after each step (shadows start at the v2 values). Saved with a default `Saver()` (all global
variables): {train}.

End-point keys (newest tensorflow/models research/slim/nets/resnet_v2.py, NHWC float32):
`resnet_v2_tiny/conv1`, for every unit `resnet_v2_tiny/blockB/unit_U/bottleneck_v2/{{shortcut (projection
units only), conv1, conv2, conv3}}` and `.../bottleneck_v2`, `resnet_v2_tiny/blockB`, then `global_pool`
([B,1,1,C], the graph's `resnet_v2_tiny/pool5` tensor), `resnet_v2_tiny/logits` ([B,1,1,7]),
`resnet_v2_tiny/spatial_squeeze` ([B,7], tf.squeeze), `predictions` (slim.softmax of the squeezed
logits, [B,7]) and `output` (the net's returned tensor: the squeezed logits here). tf_slim 1.1.0's
own resnet_v2 lacks global_pool/spatial_squeeze (its predictions are [B,1,1,C]); these keys are made
from the TF graph's own tensors. conv1/conv2 end points include BN+ReLU, conv3/shortcut are raw,
block end points are before `postnorm`. The safetensors `__metadata__` has the options as JSON.

## dtypes/

One variable per dtype (`dtypes/<dtype>`), V2 in `dtypes/v2/` and V1 in `dtypes/v1/` (V1 cannot
write bfloat16, so it has no `dtypes/bfloat16`), plus a string vector (UTF-8, empty, non-UTF-8 with
a NUL byte, 200 bytes), scalars and an empty [0,3] float32:
- v2: {dtypes_v2}
- v1: {dtypes_v1}

## images/

Synthetic deterministic images (file name = kind_WIDTHxHEIGHT): `rgb_173x131.png`, `rgb_64x97.png`,
`gray_45x38.png` (8-bit grayscale), `rgb_121x89.jpg` (quality 92, 4:4:4).

`images/preprocessed.safetensors` holds TF's results, keys `<file>/<variant>`:
- `decoded`: uint8 [H,W,3] from `tf.io.decode_image(channels=3)` (grayscale replicated to 3
  channels; the JPEG decoded by TF's libjpeg-turbo with default options);
- `inception_299` / `inception_224`: slim `inception_preprocessing.preprocess_for_eval` mirrored with TF
  ops: `tf.image.convert_image_dtype(decoded, float32)` (this multiplies by 1/255 in float32, it does not
  divide), `tf.image.central_crop(0.875)` (box top = int((h - h*0.875)/2), height = h - 2*top, same for
  width; the box is in the metadata), `tf.compat.v1.image.resize_bilinear(align_corners=False)` (legacy
  half_pixel_centers=False sampling), then `(x - 0.5) * 2`;
- `facenet_fixed_160`: `(resize_bilinear(float32(decoded), [160,160], align_corners=False) - 127.5) / 128`;
- `facenet_prewhiten_160`: `tf.image.per_image_standardization` of that same resized float image
  (mean and population std over all pixels and channels, std floored at 1/sqrt(N)).
Both facenet variants resize the whole image (no crop) with TF's legacy resize_bilinear.

To keep fixtures/ well under 5 MB (a 299x299x3 float32 image alone is 1.07 MB) only this subset is
committed: every path once, slim inception at 224 only (same code path as 299):
{committed}

`tools/tfref.py refs preprocessing` writes every variant of every image (inception_299 included) to
the refs cache, and
`tools/tfref.py preprocess IMAGE... -o OUT.safetensors` does it for any image.
"""


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(prog="tfref.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("fixtures", help="(re)make the committed fixtures",
                       description="(Re)make fixtures/tiny, fixtures/dtypes, fixtures/images and "
                                   "fixtures/README.md (deterministic; see that README).")
    p.add_argument("--out", default=os.path.join(REPO, "fixtures"), help="output folder (default %(default)s)")
    p.set_defaults(func=cmd_fixtures)

    p = sub.add_parser("refs", help="make one on-demand reference set",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Make DIR/NAME atomically (built in DIR/NAME.tmp-<pid>, renamed, with a "
                                   "final DONE file). An existing complete DIR/NAME is kept unless --force.",
                       epilog="NAMEs:\n"
                              "  resnet_v2_50|101|152|200  1001 classes, v2/ and v1/ checkpoints, "
                              "input.npy [2,224,224,3], endpoints.safetensors\n"
                              "  facenet_128|512          facenet-release-like folder 20990101-000000/ + .zip, "
                              "input_160/input_odd + endpoints_*.safetensors\n"
                              "  tiny_variants            option cases on fixtures/tiny/v2 (each <case>/: "
                              "input.npy, endpoints.safetensors, options.json; training/ also "
                              "updated_stats and gradients.safetensors)\n"
                              "  facenet_train            phase_train=True forward on facenet_512's "
                              "checkpoint + updated BN statistics + gradients of l2_loss(prelogits)\n"
                              "  preprocessing            every preprocessing variant of every "
                              "fixtures/images file")
    p.add_argument("name", choices=REF_NAMES + ["all"], metavar="NAME",
                   help=", ".join(REF_NAMES) + ", or all (those not yet cached)")
    p.add_argument("--cache", help="cache folder (default $SLIMZOO_REFS or <repo>/.cache/refs)")
    p.add_argument("--force", action="store_true", help="remake even if DIR/NAME/DONE exists")
    p.set_defaults(func=cmd_refs)

    p = sub.add_parser("dump", help="TF's view of a checkpoint",
                       description="Write tf_variables.json, tf_values.safetensors and (if any string "
                                   "tensors) tf_strings.json for CKPT: a V2 prefix, a V1 file, or a folder.")
    p.add_argument("ckpt", metavar="CKPT")
    p.add_argument("-o", "--out", required=True, metavar="OUT_DIR")
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("features", help="run TF on a checkpoint and input, write all end points",
                       description="Restore CKPT into tf_slim's resnet_v2 (or facenet's inception_resnet_v1, "
                                   "phase_train=False, keep_probability 0.8) and write every end point + "
                                   "`output` (and `embeddings` for facenet) to OUT.safetensors.")
    p.add_argument("--net", required=True,
                   choices=["tiny"] + sorted(RESNET_UNITS) + ["facenet"])
    p.add_argument("--ckpt", required=True, help="V2 prefix, V1 file or folder")
    p.add_argument("--input", required=True, help="float32 NHWC .npy")
    p.add_argument("--net-json", help="ResNet spec json (default for tiny: fixtures/tiny/net.json)")
    p.add_argument("--num-classes", help="N or none (default: the spec's; 1001 for resnet_v2_N)")
    p.add_argument("--output-stride", type=int, help="4, 8, 16, ... (default None = 32)")
    p.add_argument("--no-global-pool", action="store_true")
    p.add_argument("--no-spatial-squeeze", action="store_true")
    p.add_argument("--bottleneck", type=int, choices=[128, 512],
                   help="facenet embedding size (default: read from the checkpoint)")
    p.add_argument("--ema", action="store_true",
                   help="restore <var>/ExponentialMovingAverage instead of <var> where present")
    p.add_argument("-o", "--out", required=True, metavar="OUT.safetensors")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("preprocess", help="TF's preprocessing of image files",
                       description=preprocess_images.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--out", required=True, metavar="OUT.safetensors")
    p.set_defaults(func=cmd_preprocess)

    args = ap.parse_args(argv)
    try:
        import_tf()
        args.func(args)
    except Exception as e:  # noqa: BLE001 - one clear line and a non-zero exit for any failure
        if os.environ.get("SLIMZOO_TFREF_TRACE"):
            traceback.print_exc()
        msg = str(e).strip().splitlines()
        kind = "" if isinstance(e, ToolError) else type(e).__name__ + ": "
        sys.exit("tfref: error: %s%s%s" % (kind, msg[0] if msg else "",
                                           "" if os.environ.get("SLIMZOO_TFREF_TRACE")
                                           else "  (SLIMZOO_TFREF_TRACE=1 shows the traceback)"))


if __name__ == "__main__":
    main()

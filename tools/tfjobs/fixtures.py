"""The `fixtures` job: (re)make the committed fixtures/ (tiny ResNet checkpoints in every format
TF writes, the dtypes checkpoints, sample images and TF's preprocessing of them, fixtures/README.md).

Deterministic: running it twice gives byte-identical files."""
import json
import os
import shutil
import time

import numpy as np

from .common import (COMMITTED_VARIANTS, PARTITIONED, PREPROCESS_DOC, RESIDUAL_SCALE, SEED_IMAGES, SEED_TRAIN,
                     SHARD_DEVICE_1, TINY_NET, ToolError, log, random_input, rng_for, write_json, write_npy,
                     write_safetensors)
from .dump import write_tf_view
from .nets import (activation_summary, build_resnet, endpoint_metadata, make_resnet_checkpoint, resnet_options,
                   run_resnet)
from .preprocess import preprocess_images
from .readme import write_readme
from .tfenv import TF_VERSION, new_graph, session, tf, write_state_file


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
                       "tensorflow": TF_VERSION, "doc": PREPROCESS_DOC.strip()})
    report["images"] = ", ".join(sorted(pre))

    write_readme(os.path.join(stage, "README.md"), report, parts, devices, shards)
    return report


def assert_same_values(a, b, what):
    if sorted(a) != sorted(b):
        raise ToolError("%s: names differ: %s" % (what, sorted(set(a) ^ set(b))))
    for k in a:
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes():
            raise ToolError("%s: values differ for %s" % (what, k))


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

"""The `refs` job: on-demand reference sets, each made atomically into <cache>/NAME with a DONE file.

NAMEs (common.REF_NAMES): full-size ResNet v2 checkpoints and end points (resnet_v2_50..200),
facenet-release-like folders (facenet_128, facenet_512), option cases on the tiny fixture net
(tiny_variants), a training-mode facenet forward (facenet_train) and every preprocessing variant
of the fixture images (preprocessing)."""
import json
import os
import shutil
import time
import zipfile

import numpy as np

from .common import (FACENET_CLASSES, FACENET_STEP, FACENET_SUBDIR, PREPROCESS_DOC, REF_NAMES, REPO,
                     RESIDUAL_SCALE, RESNET_UNITS, ToolError, log, random_input, standard_net, write_json,
                     write_npy, write_safetensors)
from .dump import tf_view_variables
from .nets import (activation_summary, check_meta_graph, endpoint_metadata, facenet_options,
                   make_facenet_release, make_resnet_checkpoint, resnet_options, run_facenet, run_resnet,
                   write_gradients)
from .preprocess import preprocess_images
from .tfenv import TF_VERSION, new_graph, session, tf, versions


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
                       "tensorflow": TF_VERSION, "doc": PREPROCESS_DOC.strip()})
    return {"keys": sorted(pre)}


REF_BUILDERS = {n: ref_resnet(n) for n in RESNET_UNITS}
REF_BUILDERS.update({"facenet_128": ref_facenet(128), "facenet_512": ref_facenet(512),
                     "tiny_variants": ref_tiny_variants, "facenet_train": ref_facenet_train,
                     "preprocessing": ref_preprocessing})

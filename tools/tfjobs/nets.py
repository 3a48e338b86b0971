"""Net builders: tf_slim's real resnet_v2 and facenet's own inception_resnet_v1 as TF graphs.

Building (with the newest slim's end-point keys), restoring and running them (end points, BN
updates, l2_loss gradients), making randomized checkpoints (ResNet V2/V1, a facenet-release-like
folder with its meta graph) and the options/metadata stored with every end-point file. Used by
the fixtures, refs and features jobs."""
import json
import os

import numpy as np

from .common import FACENET_CLASSES, FACENET_KEYS, FACENET_STEP, ToolError, atomic_write, write_safetensors
from .tfenv import (TF_SLIM_VERSION, TF_VERSION, load_inception_resnet_v1, new_graph, randomize_variables,
                    resnet_v2, session, slim, tf, write_state_file)


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
    atomic_write(path, mg.SerializeToString(deterministic=True))


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

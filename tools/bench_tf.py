#!/usr/bin/env python3
"""bench_tf.py: the TensorFlow peer of `slimzoo bench` (TF-slim ResNet v2, facenet Inception-ResNet-v1).

TensorFlow 2.21 in graph mode (tf.compat.v1 Session after disable_v2_behavior, see tools/tfcompat.py),
with TF's default optimizations as shipped (grappler, oneDNN). Timing follows TF's classic
`time_tensorflow_run` benchmark protocol:

  * `--burn-in` untimed warm-up steps, then `--batches` timed steps;
  * every 10th timed step prints  '<now>: step i, duration = d.ddd';
  * at the end  '<now>: Forward across N steps, m.mmm +/- s.sss sec / batch'
    with mn = total/N and sd = sqrt(total_sq/N - mn^2);
  * a last machine-readable line  'RESULT {json}'.

Nets and modes
  resnet_v2_50|101|152|200   tf_slim.nets.resnet_v2.resnet_v2_N(images, 1001, is_training=...) under
                             resnet_arg_scope(); output: the [B,1,1,1001] logits; default size 224.
  inception_resnet_v1        facenet's inference(images, keep_probability=0.8, phase_train=...,
                             bottleneck_layer_size=512); forward output: the embeddings
                             tf.nn.l2_normalize(prelogits, 1, 1e-10) (what facenet users run);
                             default size 160.
  --mode forward             inference: is_training/phase_train False (BN on moving statistics).
  --mode forward-backward    training mode (BN on batch statistics, dropout on for facenet) plus
                             tf.gradients(tf.nn.l2_loss(output), tf.trainable_variables()); for facenet
                             the output is the prelogits, and the BN moving statistics that facenet
                             puts into TRAINABLE_VARIABLES get no gradient (None) and are left out.
                             resnet's BN moving-average updates (UPDATE_OPS) are not run, as in the
                             seed protocol; facenet's are in place (updates_collections=None).
                             The fetch is one scalar, the sum of the first element of every gradient
                             (tf.group of the gradients is pruned by TF 2.21 after the first run).

The input is a random N(0, 0.1) float32 NHWC batch held in a non-trainable variable (no feeding), the
weights are TF's random initializers (no checkpoint).

  bench_tf.py --arch resnet_v2_152 --batch 32 --batches 100 --burn-in 10 --mode forward
  bench_tf.py --arch resnet_v2_50 --count-only      # build the graph, print the variable counts only

Started with another interpreter it re-executes itself under <repo>/.venv/tf/bin/python.
"""
import hashlib
import json
import os
import platform
import sys
import time
from datetime import datetime

import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")
REEXEC_ENV = "SLIMZOO_BENCH_TF_REEXEC"

RESNETS = ("resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200")
FACENET = "inception_resnet_v1"
ARCHS = RESNETS + (FACENET,)


def parse_args(argv=None):
    p = benchlib.seed_parser(__doc__, ARCHS, "intra- and inter-op threads of the Session (default: all cores)")
    p.add_argument("--count-only", action="store_true",
                   help="build the graph, print the variable/parameter counts as RESULT, do not run")
    return benchlib.seed_args(p, argv, FACENET)


def shape_digest(shapes):
    """sha256 (16 hex) of the sorted list of parameter shapes in PyTorch layout (conv HWIO -> OIHW,
    dense [in,out] -> [out,in]); bench_torch.py prints the same digest for the same structure."""
    conv = []
    for s in shapes:
        s = list(s)
        if len(s) == 4:
            s = [s[3], s[2], s[0], s[1]]
        elif len(s) == 2:
            s = [s[1], s[0]]
        conv.append(s)
    text = json.dumps(sorted(conv), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build(args):
    """Build the graph; return (graph, target op/tensor, info dict)."""
    from tfcompat import tf, slim, resnet_v2, load_inception_resnet_v1

    training = args.mode == "forward-backward"
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(1234)
        images = tf.Variable(tf.random_normal([args.batch, args.size, args.size, 3], dtype=tf.float32,
                                              stddev=1e-1),
                             trainable=False, name="bench_images")
        if args.arch in RESNETS:
            ctor = getattr(resnet_v2, args.arch)
            with slim.arg_scope(resnet_v2.resnet_arg_scope()):
                output, _ = ctor(images, 1001, is_training=training)
            loss_input = output
            fwd_out = output
        else:
            irv1 = load_inception_resnet_v1()
            prelogits, _ = irv1.inference(images, keep_probability=0.8, phase_train=training,
                                          bottleneck_layer_size=512)
            loss_input = prelogits
            fwd_out = tf.nn.l2_normalize(prelogits, 1, 1e-10, name="embeddings")

        train_vars = tf.trainable_variables()
        global_vars = tf.global_variables()
        moving = [v for v in global_vars if "moving_mean" in v.op.name or "moving_variance" in v.op.name]
        moving_names = set(v.op.name for v in moving)
        weights = [v for v in train_vars if v.op.name not in moving_names]

        def nparams(vs):
            return int(sum(v.shape.num_elements() for v in vs))

        info = {
            "trainable_variables": len(train_vars),
            "trainable_params": nparams(train_vars),
            "global_variables": len(global_vars) - 1,          # minus the input variable
            "moving_stat_variables": len(moving),
            "moving_stat_params": nparams(moving),
            "param_tensors": len(weights),                     # trainable minus BN moving statistics
            "params": nparams(weights),
            "shape_digest": shape_digest([v.shape.as_list() for v in weights]),
        }
        if training:
            loss = tf.nn.l2_loss(loss_input)
            grads = tf.gradients(loss, train_vars)
            real = [gr for gr in grads if gr is not None]
            info["gradients"] = len(real)
            info["gradients_none"] = len(grads) - len(real)
            # tf.group(*grads) as in the seed does not work here: TF 2.21's session prunes the
            # gradient ops behind a NoOp fetch after the first run (measured 0.001 s/step for
            # resnet_v2_50). Fetching every gradient would add a host copy of all of them, so fetch
            # one scalar that needs each gradient in full: the sum of their first elements.
            with tf.name_scope("bench_probe"):
                target = tf.add_n([tf.reshape(gr, [-1])[0] for gr in real], name="grad_probe")
            info["output"] = "l2_loss(%s) gradients" % ("logits" if args.arch in RESNETS else "prelogits")
        else:
            target = fwd_out
            info["output"] = "logits" if args.arch in RESNETS else "embeddings"
        init = tf.global_variables_initializer()
    info["output_shape"] = [int(d) for d in fwd_out.shape.as_list()]
    return g, init, target, info


def versions():
    import importlib.metadata as md
    import tfcompat
    v = {"python": platform.python_version(), "tensorflow": tfcompat.TF_VERSION,
         "tf_slim": tfcompat.TF_SLIM_VERSION}
    try:
        v["facenet"] = md.version("facenet")
    except md.PackageNotFoundError:
        pass
    return v


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, HERE)
    import numpy as np
    import tfcompat
    tf = tfcompat.tf

    t0 = time.perf_counter()
    g, init, target, info = build(args)
    build_s = time.perf_counter() - t0
    result = {"runner": "tensorflow", "arch": args.arch, "mode": args.mode, "dtype": "f32",
              "layout": "nhwc", "batch": args.batch, "size": args.size, "batches": args.batches,
              "burn_in": args.burn_in, "threads": args.threads,
              "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
              "graph_build_s": round(build_s, 3)}
    result.update(info)
    result["versions"] = versions()
    if args.count_only:
        print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
        return 0

    cfg = tf.ConfigProto(intra_op_parallelism_threads=args.threads,
                         inter_op_parallelism_threads=args.threads)
    print("%s: bench_tf %s %s batch %d size %d, %d threads, %d trainable variables (%d params)"
          % (datetime.now(), args.arch, args.mode, args.batch, args.size, args.threads,
             info["trainable_variables"], info["params"]), flush=True)
    with tf.Session(graph=g, config=cfg) as sess:
        sess.run(init)
        label = "Forward" if args.mode == "forward" else "Forward-backward"
        mn, sd, last = benchlib.time_steps(lambda: sess.run(target), label, args.batches, args.burn_in)
    result["mean"] = mn
    result["sd"] = sd
    result["images_per_s"] = args.batch / mn if mn > 0 else None
    if args.mode == "forward" and last is not None:
        result["output_finite"] = bool(np.isfinite(last).all())
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    benchlib.reexec_in_venv(__file__, VENV_PYTHON, REEXEC_ENV, ("tensorflow", "tf_slim"), "tools/bootstrap.sh tf")
    sys.exit(main())

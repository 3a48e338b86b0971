"""The `features` job: run TF on any checkpoint and input (tf_slim resnet_v2 or facenet) and write
every end point + `output` (+ `embeddings` for facenet) to one safetensors file."""
import json
import os

import numpy as np

from .common import REPO, ToolError, log, standard_net, write_safetensors
from .dump import resolve_ckpt
from .nets import endpoint_metadata, facenet_options, resnet_options, run_facenet, run_resnet
from .tfenv import tf


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

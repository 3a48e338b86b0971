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
import importlib
import importlib.util
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    import benchlib
    benchlib.reexec_in_venv(__file__, VENV_PYTHON, "SLIMZOO_TFREF_REEXEC", ("tensorflow", "tf_slim"), "tools/bootstrap.sh tf")

sys.path.insert(0, HERE)

# The jobs live in the package tools/tfjobs/ (see its __init__.py), one module per subcommand. Only
# its TensorFlow-free module `common` is imported here: TensorFlow is imported with the job's
# module, after argument parsing (so that --help is instant).
from tfjobs.common import PREPROCESS_DOC, REF_NAMES, RESNET_UNITS, ToolError  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tfref.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("fixtures", help="(re)make the committed fixtures",
                       description="(Re)make fixtures/tiny, fixtures/dtypes, fixtures/images and "
                                   "fixtures/README.md (deterministic; see that README).")
    p.add_argument("--out", default=os.path.join(REPO, "fixtures"), help="output folder (default %(default)s)")
    p.set_defaults(job="fixtures")

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
    p.set_defaults(job="refs")

    p = sub.add_parser("dump", help="TF's view of a checkpoint",
                       description="Write tf_variables.json, tf_values.safetensors and (if any string "
                                   "tensors) tf_strings.json for CKPT: a V2 prefix, a V1 file, or a folder.")
    p.add_argument("ckpt", metavar="CKPT")
    p.add_argument("-o", "--out", required=True, metavar="OUT_DIR")
    p.set_defaults(job="dump")

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
    p.set_defaults(job="features")

    p = sub.add_parser("preprocess", help="TF's preprocessing of image files",
                       description=PREPROCESS_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--out", required=True, metavar="OUT.safetensors")
    p.set_defaults(job="preprocess")

    args = ap.parse_args(argv)
    try:
        # the job's module, and with it TensorFlow, is imported here (after argument parsing)
        job = importlib.import_module("tfjobs." + args.job)
        getattr(job, "cmd_" + args.job)(args)
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

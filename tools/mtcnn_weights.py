#!/usr/bin/env python3
"""mtcnn_weights.py: facenet's MTCNN weights (det1.npy, det2.npy, det3.npy) as one safetensors file.

Reads the three numpy-pickled dicts that facenet 1.0.5 ships in `facenet/src/align/` (MIT licence,
converted by facenet from the authors' Caffe models of kpzhang93/MTCNN_face_detection_alignment) and
writes ONE safetensors file whose keys are exactly the TensorFlow variable names that facenet's
`detect_face.create_mtcnn` creates (`pnet/conv1/weights`, `pnet/PReLU1/alpha`, ..., `onet/conv6-3/biases`).

Values are in slimzoo's tch layout, float32, contiguous:
  conv kernels  TF HWIO [kh, kw, in, out]  -> OIHW [out, in, kh, kw]   (permute 3, 2, 0, 1)
  fc weights    TF [in, out]              -> [out, in]                 (transpose)
  biases, PReLU alpha                     unchanged, [C]

The variable names and shapes are taken from TensorFlow itself: the script builds the three nets
with facenet's own detect_face.create_mtcnn (under TF 2.21, `tensorflow` bound to tf.compat.v1),
lists tf.global_variables(), and asserts that the npy dict keys map 1:1 onto those variables (none
dropped, none extra, same shapes) and that the values TF loaded equal the npy arrays.

Fully connected layers (detect_face.py `Network.fc`, lines 183-199): when the input is 4-D it is
flattened with tf.reshape(inp, [-1, H*W*C]) of the NHWC tensor, i.e. in (h, w, c) order, c fastest.
  rnet/conv4    input prelu3 [N, 3, 3, 64]  -> 576  (flattened NHWC), out 128
  rnet/conv5-1  input prelu4 [N, 128], out 2;  rnet/conv5-2  [N, 128] -> 4
  onet/conv5    input prelu4 [N, 3, 3, 128] -> 1152 (flattened NHWC), out 256
  onet/conv6-1  [N, 256] -> 2;  onet/conv6-2  [N, 256] -> 4;  onet/conv6-3  [N, 256] -> 10
Note that detect_face feeds every net the image transposed (x before y: tensors [N, W, H, 3]), so
the first spatial axis of those NHWC tensors is the image's x axis.

Usage (TF venv: tools/bootstrap.sh tf):
  .venv/tf/bin/python tools/mtcnn_weights.py [--facenet-dir DIR] [--out src/models/mtcnn/mtcnn.safetensors]
  .venv/tf/bin/python tools/mtcnn_weights.py --check     # exit 1 unless --out equals a fresh conversion
"""
import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")
DEFAULT_OUT = os.path.join(REPO, "src", "models", "mtcnn", "mtcnn.safetensors")
NETS = (("pnet", "det1.npy"), ("rnet", "det2.npy"), ("onet", "det3.npy"))


def default_facenet_dir():
    import importlib.util
    spec = importlib.util.find_spec("facenet")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mtcnn_weights: facenet is not installed here; pass --facenet-dir")
    return os.path.join(list(spec.submodule_search_locations)[0], "src", "align")


def load_npy_dicts(facenet_dir):
    import numpy as np
    out = {}
    for net, fname in NETS:
        # exactly as detect_face.Network.load (detect_face.py line 85)
        d = np.load(os.path.join(facenet_dir, fname), encoding="latin1", allow_pickle=True).item()
        for op_name, params in d.items():
            for param_name, value in params.items():
                out["%s/%s/%s" % (net, op_name, param_name)] = np.asarray(value)
    return out


def tf_variables(facenet_dir):
    """Build facenet's three nets in a TF graph; return {variable name: value as loaded by TF}."""
    sys.path.insert(0, HERE)
    from facenetsrc import load_detect_face, tf
    detect_face = load_detect_face()
    g = tf.Graph()
    with g.as_default():
        with tf.Session(graph=g) as sess:
            detect_face.create_mtcnn(sess, facenet_dir)
            variables = tf.global_variables()
            values = sess.run({v.op.name: v for v in variables})
            shapes = {v.op.name: [int(d) for d in v.shape] for v in variables}
    return values, shapes, detect_face.__file__


def to_tch_layout(name, value):
    import numpy as np
    v = np.asarray(value, dtype=np.float32)
    kind = name.rsplit("/", 1)[1]
    if kind == "weights" and v.ndim == 4:
        v = v.transpose(3, 2, 0, 1)          # HWIO -> OIHW
    elif kind == "weights" and v.ndim == 2:
        v = v.T                              # [in, out] -> [out, in]
    elif kind in ("biases", "alpha") and v.ndim == 1:
        pass
    else:
        raise SystemExit("mtcnn_weights: unexpected variable %s with shape %s" % (name, v.shape))
    return np.ascontiguousarray(v, dtype="<f4")


def fc_layers(shapes):
    return sorted(n.rsplit("/", 1)[0] for n, s in shapes.items() if n.endswith("/weights") and len(s) == 2)


def safetensors_bytes(tensors, metadata):
    """safetensors: tensors sorted by name, header JSON without spaces padded to 8 bytes."""
    header = {"__metadata__": {str(k): str(v) for k, v in sorted(metadata.items())}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        b = tensors[name].tobytes()
        header[name] = {"dtype": "F32", "shape": [int(d) for d in tensors[name].shape],
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return len(h).to_bytes(8, "little") + h + b"".join(blobs)


def convert(facenet_dir):
    import numpy as np
    npy = load_npy_dicts(facenet_dir)
    tf_vals, tf_shapes, df_path = tf_variables(facenet_dir)
    missing = sorted(set(tf_vals) - set(npy))
    extra = sorted(set(npy) - set(tf_vals))
    if missing or extra:
        raise SystemExit("mtcnn_weights: npy keys and TF variables differ: TF-only %s, npy-only %s"
                         % (missing, extra))
    for name in sorted(npy):
        if list(npy[name].shape) != tf_shapes[name]:
            raise SystemExit("mtcnn_weights: %s: npy shape %s, TF variable shape %s"
                             % (name, list(npy[name].shape), tf_shapes[name]))
        if npy[name].dtype != np.float32 or not np.array_equal(npy[name], tf_vals[name]):
            raise SystemExit("mtcnn_weights: %s: value TF loaded differs from the npy array" % name)
    tensors = {n: to_tch_layout(n, v) for n, v in npy.items()}
    digests = {}
    for net, fname in NETS:
        with open(os.path.join(facenet_dir, fname), "rb") as f:
            digests[fname] = hashlib.sha256(f.read()).hexdigest()
    fcs = fc_layers(tf_shapes)
    metadata = {
        "format": "pt",
        "source": "facenet 1.0.5 src/align/det1.npy, det2.npy, det3.npy (MIT licence, David Sandberg; "
                  "weights from kpzhang93/MTCNN_face_detection_alignment); keys are the TF variable names "
                  "created by detect_face.create_mtcnn",
        "source_sha256": json.dumps(digests, sort_keys=True, separators=(",", ":")),
        "layout": "conv weights OIHW (TF HWIO permuted 3,2,0,1); fc weights [out, in] (TF [in, out] "
                  "transposed); biases and PReLU alpha [C] unchanged; float32",
        "fc_layers": ",".join(fcs),
        "fc_input_order": "rnet/conv4 and onet/conv5 take the flattened NHWC tensor [N, 3, 3, C] "
                          "(h, w, c order, c fastest); the nets see the image transposed ([N, W, H, 3])",
        "converter": "tools/mtcnn_weights.py",
    }
    return tensors, metadata, {"tf_variables": len(tf_vals), "fc_layers": fcs, "detect_face": df_path,
                               "shapes_tf": tf_shapes}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--facenet-dir", help="folder with det1.npy, det2.npy, det3.npy "
                    "(default: the installed facenet package's src/align)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output file (default %(default)s)")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 unless --out equals "
                    "a fresh conversion byte for byte")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the variables")
    args = ap.parse_args(argv)
    facenet_dir = args.facenet_dir or default_facenet_dir()
    tensors, metadata, info = convert(facenet_dir)
    data = safetensors_bytes(tensors, metadata)
    if args.verbose:
        for n in sorted(tensors):
            print("%-24s TF %-18s -> %s" % (n, info["shapes_tf"][n], list(tensors[n].shape)))
    if args.check:
        try:
            with open(args.out, "rb") as f:
                old = f.read()
        except FileNotFoundError:
            print("mtcnn_weights: %s is missing" % args.out)
            return 1
        same = old == data
        print("mtcnn_weights: %s %s a fresh conversion (%d tensors, %d bytes, sha256 %s)"
              % (args.out, "equals" if same else "DIFFERS FROM", len(tensors), len(data),
                 hashlib.sha256(data).hexdigest()))
        return 0 if same else 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = "%s.tmp-%d" % (args.out, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.out)
    print("mtcnn_weights: wrote %s: %d tensors (= %d TF variables), %d bytes, sha256 %s; fc layers %s"
          % (args.out, len(tensors), info["tf_variables"], len(data), hashlib.sha256(data).hexdigest(),
             " ".join(info["fc_layers"])))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    import benchlib
    benchlib.reexec_in_venv(__file__, VENV_PYTHON, "SLIMZOO_MTCNN_REEXEC", ("tensorflow",), "tools/bootstrap.sh tf")
    sys.exit(main())

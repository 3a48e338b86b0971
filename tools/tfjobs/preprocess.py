"""The `preprocess` job: TF's slim-inception (eval) and facenet preprocessing of image files.

preprocess_images is also what fixtures (committed subset) and refs (`refs preprocessing`, every
variant) store."""
import json
import os

from .common import PREPROCESS_DOC, ToolError, log, write_safetensors
from .tfenv import TF_VERSION, new_graph, session, tf


def central_crop_box(h, w, fraction):
    """tf.image.central_crop's box for a static [h, w, c] image: (top, left, height, width)."""
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    return top, left, h - 2 * top, w - 2 * left


def preprocess_images(paths, variants=None):
    # docstring: common.PREPROCESS_DOC (the CLI shows it before TensorFlow is imported)
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


preprocess_images.__doc__ = PREPROCESS_DOC


def cmd_preprocess(args):
    pre, meta = preprocess_images(args.images)
    write_safetensors(args.out, pre, {"images": json.dumps(meta, sort_keys=True), "tensorflow": TF_VERSION,
                                      "doc": PREPROCESS_DOC.strip()})
    log("wrote %d tensors to %s" % (len(pre), args.out))

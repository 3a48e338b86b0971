"""facenetsrc.py: facenet 1.0.5's own alignment code, loaded unchanged, with documented stand-ins.

Import this (TF venv) to run facenet's real `src/align/detect_face.py`, `src/align/align_dataset_mtcnn.py`
and `src/compare.py` under TensorFlow 2.21:

    from facenetsrc import tf, load_detect_face, load_align_dataset_mtcnn, load_compare, facenet_functions

Stand-ins (only for names that no longer exist or cannot be imported; each is documented here):
  tensorflow          -> tf.compat.v1 (tools/tfcompat.py: v2 behaviour disabled, graph mode). A module
                         object whose attributes are tf.compat.v1's, bound only while a facenet file is
                         executed.
  cv2                 -> the real OpenCV (opencv-python-headless, pinned in tools/requirements-tf.txt).
  scipy.misc          -> imread / imresize / imsave of SciPy 1.1 (scipy/misc/pilutil.py), restricted to the
                         cases facenet meets and raising on anything else:
                         imread(name, flatten=False, mode=None): Image.open; if mode and mode != im.mode:
                             im.convert(mode); elif im.mode == 'P': convert('RGBA' if 'transparency' in
                             im.info else 'RGB'); if flatten: convert('F') elif im.mode == '1': convert('L');
                             return np.array(im)
                         imresize(arr, (h, w), interp='bilinear'): toimage(arr) (uint8 H x W x 3|4 array,
                             no byte scaling for uint8) -> im.resize((w, h), resample=Image.BILINEAR) ->
                             np.array; i.e. Image.fromarray(a).resize((w, h), Image.BILINEAR)
                         imsave(name, arr): toimage(arr, channel_axis=2).save(name)  (PNG, lossless)
  facenet (facenet.py) -> its functions to_rgb, prewhiten, get_dataset, get_image_paths, ImageClass,
                         load_model, get_model_filenames, copied out of the installed facenet.py by `ast`
                         (their source text unchanged, executed in a namespace with np, os, re, tf, gfile).
                         facenet.py itself cannot be imported (it needs scikit-learn and scipy.misc).
                         store_revision_info is replaced by a no-op (it only writes revision_info.txt).

All three scripts are executed from the installed wheel's files, not copies.
"""
import ast
import importlib.util
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from tfcompat import exec_with_modules, facenet_version, tf  # noqa: E402  (tf.compat.v1, v2 behaviour disabled)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def facenet_root():
    spec = importlib.util.find_spec("facenet")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facenet is not installed in this environment (tools/bootstrap.sh tf)")
    return list(spec.submodule_search_locations)[0]


def facenet_file(*parts):
    return os.path.join(facenet_root(), "src", *parts)


def tf_proxy():
    proxy = types.ModuleType("tensorflow")
    proxy.__dict__["__getattr__"] = lambda name: getattr(tf, name)
    proxy.__path__ = []
    return proxy


# ------------------------------------------------------------------------------------------------
# scipy.misc stand-in (SciPy 1.1 pilutil semantics for the uint8 cases facenet uses)
# ------------------------------------------------------------------------------------------------

class MiscRecorder:
    """Optional hook: when `calls` is a list, imresize appends (input, output) to it."""
    calls = None


def _fromimage(im, flatten=False, mode=None):
    if mode is not None:
        if mode != im.mode:
            im = im.convert(mode)
    elif im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if flatten:
        im = im.convert("F")
    elif im.mode == "1":
        im = im.convert("L")
    return np.array(im)


def _toimage(arr, channel_axis=None):
    data = np.asarray(arr)
    if data.dtype != np.uint8:
        raise ValueError("scipy.misc stand-in: only uint8 arrays are supported (got %s); SciPy's bytescale "
                         "would rescale them" % data.dtype)
    if data.ndim == 2:
        return Image.fromarray(data, "L")
    if data.ndim != 3 or data.shape[2] not in (3, 4):
        raise ValueError("scipy.misc stand-in: unsupported shape %s" % (data.shape,))
    if channel_axis is None and (3 in data.shape[:2] or (data.shape[2] == 4 and 4 in data.shape[:2])):
        # SciPy picks the FIRST axis of length 3 (or 4) as the channel axis: a crop 3 pixels high or
        # wide would be scrambled. Never met with faces; refuse rather than imitate.
        raise ValueError("scipy.misc stand-in: ambiguous channel axis for shape %s" % (data.shape,))
    return Image.fromarray(np.ascontiguousarray(data), "RGB" if data.shape[2] == 3 else "RGBA")


def misc_imread(name, flatten=False, mode=None):
    return _fromimage(Image.open(name), flatten=flatten, mode=mode)


def misc_imresize(arr, size, interp="bilinear", mode=None):
    if mode is not None or not isinstance(size, (tuple, list)):
        raise ValueError("scipy.misc stand-in: imresize only with a (h, w) size and mode=None")
    func = {"nearest": Image.NEAREST, "lanczos": Image.LANCZOS, "bilinear": Image.BILINEAR,
            "bicubic": Image.BICUBIC, "cubic": Image.BICUBIC}
    im = _toimage(arr)
    out = _fromimage(im.resize((int(size[1]), int(size[0])), resample=func[interp]))
    if MiscRecorder.calls is not None:
        MiscRecorder.calls.append((np.array(arr), out.copy()))
    return out


def misc_imsave(name, arr, format=None):
    im = _toimage(arr, channel_axis=2)
    if format is None:
        im.save(name)
    else:
        im.save(name, format)


def scipy_misc_modules():
    scipy = types.ModuleType("scipy")
    misc = types.ModuleType("scipy.misc")
    misc.imread, misc.imresize, misc.imsave = misc_imread, misc_imresize, misc_imsave
    scipy.misc = misc
    scipy.__path__ = []
    return {"scipy": scipy, "scipy.misc": misc}


# ------------------------------------------------------------------------------------------------
# loading facenet's files
# ------------------------------------------------------------------------------------------------

_cache = {}


def load_detect_face():
    """facenet/src/align/detect_face.py, unchanged, with tensorflow -> tf.compat.v1."""
    if "detect_face" not in _cache:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # `method is 'Min'` (nms, line 711)
            _cache["detect_face"] = exec_with_modules(facenet_file("align", "detect_face.py"),
                                               "facenet_detect_face", {"tensorflow": tf_proxy()})
    return _cache["detect_face"]


FACENET_FUNCTIONS = ("to_rgb", "prewhiten", "get_dataset", "get_image_paths", "ImageClass", "load_model",
                     "get_model_filenames")


def facenet_functions():
    """A module holding facenet.py's functions named in FACENET_FUNCTIONS, source unchanged."""
    if "facenet" in _cache:
        return _cache["facenet"]
    path = facenet_file("facenet.py")
    with open(path) as f:
        src = f.read()
    tree = ast.parse(src)
    nodes = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in FACENET_FUNCTIONS]
    found = sorted(n.name for n in nodes)
    if found != sorted(FACENET_FUNCTIONS):
        raise ImportError("facenet.py: expected %s, found %s" % (sorted(FACENET_FUNCTIONS), found))
    mod = types.ModuleType("facenet")
    mod.__file__ = path
    import re
    from tensorflow.python.platform import gfile
    mod.__dict__.update({"np": np, "os": os, "re": re, "tf": tf_proxy(), "gfile": gfile,
                         "misc": scipy_misc_modules()["scipy.misc"]})
    code = compile(ast.Module(body=nodes, type_ignores=[]), path, "exec")
    exec(code, mod.__dict__)
    mod.store_revision_info = lambda src_path, output_dir, arg_string: None
    mod.__lines__ = {n.name: n.lineno for n in nodes}
    _cache["facenet"] = mod
    return mod


def load_align_dataset_mtcnn():
    """facenet/src/align/align_dataset_mtcnn.py, unchanged (`from facenet.src import facenet` and
    `from facenet.src.align import detect_face` resolve to the objects above)."""
    if "align_dataset_mtcnn" not in _cache:
        import facenet.src.align  # noqa: F401  (the real packages; only their leaves are replaced)
        fake = {"tensorflow": tf_proxy(), "facenet.src.facenet": facenet_functions(),
                "facenet.src.align.detect_face": load_detect_face()}
        fake.update(scipy_misc_modules())
        _cache["align_dataset_mtcnn"] = exec_with_modules(facenet_file("align", "align_dataset_mtcnn.py"),
                                                   "facenet_align_dataset_mtcnn", fake)
    return _cache["align_dataset_mtcnn"]


def load_compare():
    """facenet/src/compare.py, unchanged (`import facenet`, `import align.detect_face`)."""
    if "compare" not in _cache:
        align = types.ModuleType("align")
        align.__path__ = []
        align.detect_face = load_detect_face()
        fake = {"tensorflow": tf_proxy(), "facenet": facenet_functions(), "align": align,
                "align.detect_face": align.detect_face}
        fake.update(scipy_misc_modules())
        _cache["compare"] = exec_with_modules(facenet_file("compare.py"), "facenet_compare", fake)
    return _cache["compare"]



def compare_py_box(img, boxes, margin):
    """compare.py's load_and_align_data, lines 95-106: the first detected box and its crop
    rectangle (margin/2 on each side, clipped to the image, int32 as numpy truncates)."""
    img_size = np.asarray(img.shape)[0:2]
    det = np.squeeze(boxes[0, 0:4])
    bb = np.zeros(4, dtype=np.int32)
    bb[0] = np.maximum(det[0] - margin / 2, 0)
    bb[1] = np.maximum(det[1] - margin / 2, 0)
    bb[2] = np.minimum(det[2] + margin / 2, img_size[1])
    bb[3] = np.minimum(det[3] + margin / 2, img_size[0])
    return det, bb


__all__ = ["tf", "load_detect_face", "load_align_dataset_mtcnn", "load_compare", "facenet_functions",
           "facenet_file", "facenet_version", "misc_imread", "misc_imresize", "misc_imsave", "MiscRecorder",
           "compare_py_box"]

"""Import shims that let tf_slim 1.1.0 and facenet 1.0.5 run on TensorFlow 2.21 (graph mode).

Import this module before anything else that touches TensorFlow:

    from tfcompat import tf, slim, resnet_v2, resnet_utils, load_inception_resnet_v1

What it does (see /work/shared/reference/environment.md):
  1. sets TF_USE_LEGACY_KERAS=1 (tf_slim builds on the legacy Keras layers of tf_keras);
  2. makes the module name `tf_keras.legacy_tf_layers` resolve to `tf_keras.src.legacy_tf_layers`;
  3. restores `tensorflow.python.framework.ops.Tensor` (= tf.Tensor), which tf_slim's constant_value needs;
  4. restores `tensorflow.python.ops.control_flow_ops.cond` (moved to ops/cond.py), which tf_slim's
     smart_cond needs when is_training is a tensor (facenet's phase_train placeholder);
  5. calls tf.compat.v1.disable_v2_behavior(), so graphs are built the TF1 way;
  6. loads facenet's src/models/inception_resnet_v1.py unchanged, with `tensorflow` bound to
     tf.compat.v1 and `tensorflow.contrib.slim` bound to tf_slim (only inside that module).

`tf` exported here is tensorflow.compat.v1.
"""
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise RuntimeError("tfcompat: TF_USE_LEGACY_KERAS must be 1 for tf_slim (found %r)"
                       % os.environ.get("TF_USE_LEGACY_KERAS"))

import tensorflow as _tf2  # noqa: E402
import tf_keras  # noqa: E402
import tf_keras.src.legacy_tf_layers as _legacy_tf_layers  # noqa: E402

sys.modules.setdefault("tf_keras.legacy_tf_layers", _legacy_tf_layers)
from tensorflow.python.framework import ops as _ops  # noqa: E402

if not hasattr(_ops, "Tensor"):
    _ops.Tensor = _tf2.Tensor

# 4. tf_slim's utils.smart_cond calls control_flow_ops.cond, which TF 2.21 moved to ops/cond.py
#    (needed when is_training is a tensor, e.g. facenet's phase_train placeholder).
from tensorflow.python.ops import control_flow_ops as _cfo  # noqa: E402

if not hasattr(_cfo, "cond"):
    from tensorflow.python.ops import cond as _cond
    _cfo.cond = _cond.cond

tf = _tf2.compat.v1
tf.logging.set_verbosity(tf.logging.ERROR)
_tf2.get_logger().setLevel("ERROR")
tf.disable_v2_behavior()

import tf_slim as slim  # noqa: E402
from tf_slim.nets import resnet_utils, resnet_v2  # noqa: E402

TF_VERSION = _tf2.__version__
TF_SLIM_VERSION = importlib.metadata.version("tf-slim")

_inception_resnet_v1 = None


def facenet_version():
    import importlib.metadata as md
    return md.version("facenet")


def exec_with_modules(path, modname, fake_modules):
    """Execute the Python file `path` as module `modname` while `fake_modules` stand in
    sys.modules (restored afterwards); return the module."""
    saved = {k: sys.modules.get(k) for k in fake_modules}
    try:
        sys.modules.update(fake_modules)
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module


def load_inception_resnet_v1():
    """Return facenet's models/inception_resnet_v1 module, executed unchanged from the facenet wheel.

    The module does `import tensorflow as tf` and `import tensorflow.contrib.slim as slim`; while it
    is executed those names resolve to tf.compat.v1 and tf_slim, and sys.modules is restored after.
    """
    global _inception_resnet_v1
    if _inception_resnet_v1 is not None:
        return _inception_resnet_v1
    spec = importlib.util.find_spec("facenet")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facenet is not installed in this environment (tools/bootstrap.sh tf)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "src", "models", "inception_resnet_v1.py")
    # `import tensorflow.contrib.slim as slim` resolves attributes on the module found as
    # sys.modules["tensorflow"], so that must be a module whose attributes are tf.compat.v1's
    # plus `contrib`.
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.slim = slim
    proxy = types.ModuleType("tensorflow")
    proxy.__dict__["__getattr__"] = lambda name: getattr(tf, name)
    proxy.__path__ = []
    proxy.contrib = contrib
    fake = {"tensorflow": proxy, "tensorflow.contrib": contrib, "tensorflow.contrib.slim": slim}
    module = exec_with_modules(path, "facenet_inception_resnet_v1", fake)
    module.__source_path__ = path
    _inception_resnet_v1 = module
    return module


__all__ = ["tf", "slim", "resnet_v2", "resnet_utils", "load_inception_resnet_v1", "TF_VERSION",
           "TF_SLIM_VERSION", "facenet_version", "exec_with_modules"]

"""TensorFlow itself, and the graph and session plumbing every TensorFlow job shares.

Importing this module imports TensorFlow through tools/tfcompat.py (TF 2.21 in graph mode via
tf.compat.v1, tf_slim 1.1.0, facenet 1.0.5's inception_resnet_v1); tools/tfref.py imports the job
modules, and with them this one, only after argument parsing. Here: the versions recorded in
every reference set, session() (thread counts, CPU devices), new_graph() (the graph seed), the
`checkpoint` state file and the one-run assignment of seeded values to a graph's variables."""
import os

import numpy as np

import tfcompat

from .common import GRAPH_SEED, random_value

tf, slim, resnet_v2 = tfcompat.tf, tfcompat.slim, tfcompat.resnet_v2
load_inception_resnet_v1, facenet_version = tfcompat.load_inception_resnet_v1, tfcompat.facenet_version
TF_VERSION, TF_SLIM_VERSION = tfcompat.TF_VERSION, tfcompat.TF_SLIM_VERSION


def versions():
    return {"tensorflow": TF_VERSION, "tf_slim": TF_SLIM_VERSION, "facenet": facenet_version(),
            "numpy": np.__version__}


# ----------------------------------------------------------------------------------------------
# graphs, sessions, checkpoint state file, seeded variable values
# ----------------------------------------------------------------------------------------------

def session(graph, cpus=1):
    cfg = tf.ConfigProto(intra_op_parallelism_threads=int(os.environ.get("SLIMZOO_TF_THREADS", "2")),
                         inter_op_parallelism_threads=1, allow_soft_placement=False,
                         device_count={"CPU": cpus})
    return tf.Session(graph=graph, config=cfg)


def new_graph():
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(GRAPH_SEED)
    return g


def write_state_file(dirname, prefix_basename):
    """The `checkpoint` state file as TF writes it, with a relative path and no timestamps."""
    tf.train.update_checkpoint_state(dirname, prefix_basename, all_model_checkpoint_paths=[prefix_basename])


def randomize_variables(sess, variables, residual_scale):
    """Assign random_value() to every variable in ONE session.run (one placeholder + assign per
    variable; Variable.load per variable costs a new executor each and is quadratic in graph size)."""
    feeds, assigns = {}, []
    with tf.name_scope("randomize"):
        for v in variables:
            dt = v.dtype.base_dtype
            ph = tf.placeholder(dt, v.shape)
            assigns.append(tf.assign(v, ph))
            feeds[ph] = random_value(v.op.name, v.shape.as_list(), dt.as_numpy_dtype, residual_scale)
    sess.run(tf.group(*assigns), feeds)

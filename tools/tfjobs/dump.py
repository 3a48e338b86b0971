"""The `dump` job, TF's view of a checkpoint: tf_variables.json, tf_values.safetensors and
tf_strings.json exactly as tf.train.load_checkpoint reads them.

Also used by the other jobs: fixtures writes this view next to each committed checkpoint, refs
lists variables with hashes (tf_view_variables), features resolves checkpoint paths (resolve_ckpt)."""
import hashlib
import json
import os

import numpy as np

from .common import ST_DTYPES, ToolError, log, write_json, write_safetensors
from .tfenv import TF_VERSION, session, tf


def resolve_ckpt(path):
    """A checkpoint prefix, a V1 file, or a directory (state file, else a single *.index / *.ckpt)."""
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        idx = sorted(f[:-len(".index")] for f in os.listdir(path) if f.endswith(".index"))
        if len(idx) == 1:
            return os.path.join(path, idx[0])
        v1 = sorted(f for f in os.listdir(path) if f.endswith(".ckpt"))
        if len(v1) == 1:
            return os.path.join(path, v1[0])
        raise ToolError("cannot tell which checkpoint to use in directory %s" % path)
    if os.path.exists(path + ".index") or os.path.isfile(path):
        return path
    parent = os.path.dirname(path) or "."
    if os.path.isdir(parent) and any(f.startswith(os.path.basename(path) + "-") for f in os.listdir(parent)):
        return path  # V1 sharded pattern <prefix>-?????-of-?????
    raise ToolError("no checkpoint at %s (expected a V2 prefix with .index, a V1 file or a folder)" % path)


def tf_view(ckpt):
    """TF's view of a checkpoint: (variables list, numeric tensors, string tensors, notes)."""
    reader = tf.train.load_checkpoint(ckpt)
    dtypes = reader.get_variable_to_dtype_map()
    variables, values, strings, fallbacks = [], {}, {}, []
    skipped = {}
    for name, shape in tf.train.list_variables(ckpt):
        dt = dtypes[name]
        variables.append({"name": name, "dtype": dt.name, "shape": [int(d) for d in shape]})
        if dt != tf.string and dt.name not in ST_DTYPES:
            skipped[name] = "dtype %s has no safetensors equivalent" % dt.name
            continue
        try:
            t = reader.get_tensor(name)
        except tf.errors.UnimplementedError:
            # TF's Python CheckpointReader cannot return float16 from a V1 file ("Data type not
            # supported") although TF's restore ops read it: use the RestoreV2 op then.
            try:
                t = restore_op_value(ckpt, name, dt)
            except tf.errors.OpError as e:
                skipped[name] = "get_tensor and RestoreV2 failed: %s" % str(e).splitlines()[0]
                continue
            fallbacks.append(name)
        if dt == tf.string:
            arr = np.asarray(t, dtype=object)
            flat = [bytes(x) for x in arr.reshape(-1)]

            def utf8(b):
                try:
                    return b.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            strings[name] = {"shape": [int(d) for d in arr.shape], "values": [utf8(b) for b in flat],
                             "hex": [b.hex() for b in flat]}
        else:
            a = np.asarray(t)
            if a.dtype.name != dt.name:
                raise ToolError("%s: TF dtype %s but numpy %s" % (name, dt.name, a.dtype.name))
            values[name] = a
    variables.sort(key=lambda e: e["name"])
    if skipped:
        log("not in tf_values (listed in its metadata as 'skipped'): %s" % sorted(skipped))
    return variables, values, strings, {"read_with_restore_op": fallbacks, "skipped": skipped}


def restore_op_value(ckpt, name, dtype):
    g = tf.Graph()
    with g.as_default():
        op = tf.raw_ops.RestoreV2(prefix=ckpt, tensor_names=[name], shape_and_slices=[""], dtypes=[dtype])
        with session(g) as s:
            return s.run(op)[0]


def write_tf_view(ckpt, out_dir, extra_meta=None):
    os.makedirs(out_dir, exist_ok=True)
    variables, values, strings, notes = tf_view(ckpt)
    write_json(os.path.join(out_dir, "tf_variables.json"), variables)
    meta = {"checkpoint": os.path.basename(ckpt), "generator": "tools/tfref.py dump",
            "tensorflow": TF_VERSION,
            "source": "tf.train.load_checkpoint(checkpoint).get_tensor(name)"}
    if notes["skipped"]:
        meta["skipped"] = json.dumps(notes["skipped"], sort_keys=True)
    if notes["read_with_restore_op"]:
        meta["read_with_restore_op"] = json.dumps(notes["read_with_restore_op"])
        meta["source"] += ("; the names in read_with_restore_op made get_tensor fail with "
                           "'Data type not supported' and were read with tf.raw_ops.RestoreV2")
    meta.update(extra_meta or {})
    write_safetensors(os.path.join(out_dir, "tf_values.safetensors"), values, meta)
    if strings:
        write_json(os.path.join(out_dir, "tf_strings.json"), strings)
    elif os.path.exists(os.path.join(out_dir, "tf_strings.json")):
        os.remove(os.path.join(out_dir, "tf_strings.json"))
    return variables, values, strings, notes


def tf_view_variables(ckpt, with_hash=False):
    """TF's list_variables with dtypes; with_hash adds the sha256 of each numeric tensor's bytes as
    tf.train.load_checkpoint(...).get_tensor returns them (C order, little-endian), so that readers
    can be checked bit for bit against full-size references without a second copy of the data."""
    reader = tf.train.load_checkpoint(ckpt)
    dtypes = reader.get_variable_to_dtype_map()
    rows = []
    for n, s in tf.train.list_variables(ckpt):
        row = {"name": n, "dtype": dtypes[n].name, "shape": [int(d) for d in s]}
        if with_hash and dtypes[n] != tf.string:
            row["sha256"] = hashlib.sha256(np.ascontiguousarray(reader.get_tensor(n)).tobytes()).hexdigest()
        rows.append(row)
    return sorted(rows, key=lambda e: e["name"])


def cmd_dump(args):
    ckpt = resolve_ckpt(args.ckpt)
    variables, values, strings, _ = write_tf_view(ckpt, args.out)
    log("dumped %s: %d variables (%d numeric, %d string) to %s"
        % (ckpt, len(variables), len(values), len(strings), args.out))

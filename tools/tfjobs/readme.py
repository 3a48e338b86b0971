"""The README writer of the fixtures job: fixtures/README.md from a template, the versions, seeds
and specs in use and the fixtures job's report (what each checkpoint holds)."""
import json

from .common import (COMMITTED_VARIANTS, GRAPH_SEED, PARTITIONED, RESIDUAL_SCALE, SEED_IMAGES, SEED_INPUT,
                     SEED_TRAIN, SEED_WEIGHTS, SHARD_DEVICE_1, TINY_NET, atomic_write)
from .tfenv import versions


def write_readme(path, report, parts, devices, shards):
    v = versions()
    part_lines = "\n".join(
        "  - `%s` %s: %d slices %s (fixed_size_partitioner(%d, axis=%d))"
        % (k, "full shape", len(p), ", ".join("%s at offset %s" % (q["shape"], q["offset"]) for q in p),
           PARTITIONED[k][0], PARTITIONED[k][1]) for k, p in sorted(parts.items()))
    text = README_TEMPLATE.format(
        tf=v["tensorflow"], slim=v["tf_slim"], facenet=v["facenet"], numpy=v["numpy"],
        sw=SEED_WEIGHTS, si=SEED_INPUT, st=SEED_TRAIN, sim=SEED_IMAGES, sg=GRAPH_SEED,
        net=json.dumps(TINY_NET), rs=RESIDUAL_SCALE["resnet_v2_tiny"],
        part_lines=part_lines, shards=", ".join(shards), devices=json.dumps(devices),
        dev1=", ".join(SHARD_DEVICE_1), train=report["train"],
        committed="\n".join("- `%s`: %s" % (f, ", ".join(v)) for f, v in COMMITTED_VARIANTS.items()),
        dtypes_v2=report["dtypes v2"],
        dtypes_v1=report["dtypes v1"])
    atomic_write(path, text.encode("utf-8"))


README_TEMPLATE = """# slimzoo test fixtures (generated: do not edit by hand)

Made by real TensorFlow with

    tools/bootstrap.sh tf
    .venv/tf/bin/python tools/tfref.py fixtures          # --out fixtures is the default

Versions: tensorflow(-cpu) {tf}, tf_slim {slim}, facenet {facenet} (only for refs), numpy {numpy};
graph mode via tools/tfcompat.py (TF_USE_LEGACY_KERAS=1, tf.compat.v1.disable_v2_behavior()),
oneDNN on (TF's default), 2 intra-op threads. Running the command twice gives byte-identical files.

Seeds: variable values `np.random.default_rng([{sw}, crc32(variable name)])` (independent of order);
inputs `np.random.default_rng([{si}, crc32(label)])` (per image: channel offsets + smooth waves + noise,
clipped to [-1, 1]; see `random_input` in tools/tfjobs/common.py); training data `[{st}, crc32("tiny-train")]`;
images `[{sim}, crc32(file name)]`; `tf.set_random_seed({sg})` in every graph (all variables are
overwritten before saving, so TF's own initializers never reach a file).

## tiny/ : a narrow ResNet v2

`tiny/net.json` = `{net}`

Built with tf_slim's real `resnet_v2(inputs, blocks, num_classes=7, is_training=False, global_pool=True,
output_stride=None, include_root_block=True, scope='resnet_v2_tiny')` under `resnet_arg_scope()`
(blocks from `resnet_v2_block`). block1 unit_1 and block2 unit_1 and block4 unit_1 have projection
shortcuts (`.../shortcut/{{weights,biases}}`), block3 unit_1 an identity shortcut at stride 1, and the
last unit of block1..3 is strided with an identity (subsample) shortcut.

Values (assigned with placeholders + `tf.assign` before saving): conv weights He-normal N(0, 2/fan_in) with
conv3 and shortcut weights x{rs}, logits weights N(0, 4/fan_in); biases N(0,0.1); BN beta N(0,0.1);
gamma U(0.5,1.5) with ~10% of channels (at least one per layer) negated; moving_mean N(0,0.2);
moving_variance U(0.5,2.0).

| path | what |
|---|---|
| `tiny/v2/` | `model.ckpt.index`, `model.ckpt.data-00000-of-00001`, `checkpoint` (default V2 `Saver`) |
| `tiny/v1/model.ckpt` | the same values, `Saver(write_version=SaverDef.V1)` (single table file) |
| `tiny/partitioned/` | V2, same values, some variables partitioned (below); `partitions.json` lists the slices |
| `tiny/sharded/` | V2, same values, `Saver(sharded=True)` with variables on two CPU devices: {shards} |
| `tiny/train/` | a training checkpoint (below) |
| `tiny/input.npy` | float32 NHWC [2,64,64,3] in [-1,1] |
| `tiny/endpoints.safetensors` | every end point for `input.npy` on `v2/model.ckpt`, default options, + `output` |

Each checkpoint folder also has TF's view of it: `tf_variables.json` (`[{{name, dtype, shape}}]` sorted by
name, from `tf.train.list_variables` + `get_variable_to_dtype_map()`), `tf_values.safetensors` (every
numeric/bool tensor exactly as `tf.train.load_checkpoint(path).get_tensor(name)` returns it, TF layout,
bfloat16 as BF16, bool as BOOL) and, where there are string tensors, `tf_strings.json`
(`{{name: {{shape, values: [utf-8 text or null], hex: [bytes as hex]}}}}`).

Partitioned variables (`tiny/partitioned/`, made with a custom getter that passes
`partitioner=tf.compat.v1.fixed_size_partitioner(n, axis)` for exactly these names; TF lists each once
under its full name with the full shape):
{part_lines}

Sharded (`tiny/sharded/`): ConfigProto(device_count={{'CPU': 2}}); ops under the scopes {dev1} are placed
on /cpu:1, the rest on /cpu:0; variables per device {devices}. The index is shared, data in {shards}.

Training checkpoint (`tiny/train/`): the tiny net with is_training=True (BN batch statistics and
update ops), loss = sparse softmax cross-entropy on random labels + slim L2 (1e-4), starting from the
v2 values, `MomentumOptimizer(0.01, momentum=0.9)` and `ExponentialMovingAverage(0.9).apply(trainable
variables)` after each step (shadows start at the v2 values). Saved with a default `Saver()` (all global
variables): {train}.

End-point keys (newest tensorflow/models research/slim/nets/resnet_v2.py, NHWC float32):
`resnet_v2_tiny/conv1`, for every unit `resnet_v2_tiny/blockB/unit_U/bottleneck_v2/{{shortcut (projection
units only), conv1, conv2, conv3}}` and `.../bottleneck_v2`, `resnet_v2_tiny/blockB`, then `global_pool`
([B,1,1,C], the graph's `resnet_v2_tiny/pool5` tensor), `resnet_v2_tiny/logits` ([B,1,1,7]),
`resnet_v2_tiny/spatial_squeeze` ([B,7], tf.squeeze), `predictions` (slim.softmax of the squeezed
logits, [B,7]) and `output` (the net's returned tensor: the squeezed logits here). tf_slim 1.1.0's
own resnet_v2 lacks global_pool/spatial_squeeze (its predictions are [B,1,1,C]); these keys are made
from the TF graph's own tensors. conv1/conv2 end points include BN+ReLU, conv3/shortcut are raw,
block end points are before `postnorm`. The safetensors `__metadata__` has the options as JSON.

## dtypes/

One variable per dtype (`dtypes/<dtype>`), V2 in `dtypes/v2/` and V1 in `dtypes/v1/` (V1 cannot
write bfloat16, so it has no `dtypes/bfloat16`), plus a string vector (UTF-8, empty, non-UTF-8 with
a NUL byte, 200 bytes), scalars and an empty [0,3] float32:
- v2: {dtypes_v2}
- v1: {dtypes_v1}

## images/

Synthetic deterministic images (file name = kind_WIDTHxHEIGHT): `rgb_173x131.png`, `rgb_64x97.png`,
`gray_45x38.png` (8-bit grayscale), `rgb_121x89.jpg` (quality 92, 4:4:4).

`images/preprocessed.safetensors` holds TF's results, keys `<file>/<variant>`:
- `decoded`: uint8 [H,W,3] from `tf.io.decode_image(channels=3)` (grayscale replicated to 3
  channels; the JPEG decoded by TF's libjpeg-turbo with default options);
- `inception_299` / `inception_224`: slim `inception_preprocessing.preprocess_for_eval` mirrored with TF
  ops: `tf.image.convert_image_dtype(decoded, float32)` (this multiplies by 1/255 in float32, it does not
  divide), `tf.image.central_crop(0.875)` (box top = int((h - h*0.875)/2), height = h - 2*top, same for
  width; the box is in the metadata), `tf.compat.v1.image.resize_bilinear(align_corners=False)` (legacy
  half_pixel_centers=False sampling), then `(x - 0.5) * 2`;
- `facenet_fixed_160`: `(resize_bilinear(float32(decoded), [160,160], align_corners=False) - 127.5) / 128`;
- `facenet_prewhiten_160`: `tf.image.per_image_standardization` of that same resized float image
  (mean and population std over all pixels and channels, std floored at 1/sqrt(N)).
Both facenet variants resize the whole image (no crop) with TF's legacy resize_bilinear.

To keep fixtures/ well under 5 MB (a 299x299x3 float32 image alone is 1.07 MB) only this subset is
committed: every path once, slim inception at 224 only (same code path as 299):
{committed}

`tools/tfref.py refs preprocessing` writes every variant of every image (inception_299 included) to
the refs cache, and
`tools/tfref.py preprocess IMAGE... -o OUT.safetensors` does it for any image.
"""

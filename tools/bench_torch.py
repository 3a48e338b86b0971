#!/usr/bin/env python3
"""bench_torch.py: the PyTorch (eager) peer of `slimzoo bench`, same nets and protocol as bench_tf.py.

The nets are written here from their published structure (TF-slim resnet_v2 and facenet's
Inception-ResNet-v1, see /work/shared/reference/slim-and-facenet.md §1, §2), with TF's semantics:

  resnet_v2_N   root: 7x7/2 conv with bias (conv2d_same: symmetric pad 3), then a TF-SAME 3x3/2 max pool
                (extra padding bottom/right, -inf); bottleneck units: preact BN+ReLU; shortcut = 1x1 conv
                with bias on preact when the depth changes, else subsample (x[:, :, ::s, ::s]) of the
                un-normalized input; conv1 1x1 + BN + ReLU; conv2 3x3 (stride of the unit, symmetric pad)
                + BN + ReLU; conv3 1x1 with bias; out = shortcut + residual. The last unit of blocks 1-3
                carries stride 2. Then postnorm BN+ReLU, global mean, 1x1 logits conv with bias to 1001.
                BN eps 1e-5 with gamma and beta (momentum 1 - 0.997).
  inception_resnet_v1   facenet's stem, 5 x block35 (scale 0.17), reduction A, 10 x block17 (0.10),
                reduction B, 5 x block8 (0.20), block8 without ReLU, global average pool, dropout
                (keep 0.8, training only), Bottleneck fully connected 1792->512 + BN. All BN: eps 1e-3,
                no gamma (beta only), momentum 1 - 0.995. Conv+BN layers have no bias; the block
                up-projections (Conv2d_1x1) have a bias and no BN.

Modes as in bench_tf.py: forward = model.eval() under torch.inference_mode() (output: logits for
resnet, l2-normalized embeddings for facenet); forward-backward = model.train(), loss
(out**2).sum()/2 of the logits / prelogits, .backward() (grads reset with set_to_none each step).
--layout nchw|channels_last, --dtype f32|bf16 (bf16 = torch.autocast('cpu', dtype=torch.bfloat16) around
the forward pass and loss). Random weights (PyTorch's default initializers), random N(0, 0.1) input.

Prints TF's time_tensorflow_run format and a final 'RESULT {json}' line.

  bench_torch.py --arch resnet_v2_152 --batch 32 --mode forward --layout channels_last --dtype f32
  bench_torch.py --arch resnet_v2_50 --count-only          # parameter counts + shape digest (= bench_tf's)
  bench_torch.py --arch resnet_v2_50 --verify-ref .cache/refs/resnet_v2_50
      load a tools/tfref.py reference checkpoint (read through TF by `tfref.py dump` in the TF venv) into
      this net and compare its eval output on the reference input with TF's (nchw and channels_last)
Started with another interpreter it re-executes itself under <repo>/.venv/torch/bin/python.
"""
import hashlib
import json
import os
import platform
import sys
from datetime import datetime

import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "torch", "bin", "python")
REEXEC_ENV = "SLIMZOO_BENCH_TORCH_REEXEC"

RESNET_UNITS = {
    "resnet_v2_50": (3, 4, 6, 3),
    "resnet_v2_101": (3, 4, 23, 3),
    "resnet_v2_152": (3, 8, 36, 3),
    "resnet_v2_200": (3, 24, 36, 3),
}
FACENET = "inception_resnet_v1"
ARCHS = tuple(RESNET_UNITS) + (FACENET,)


if __name__ == "__main__":
    benchlib.reexec_in_venv(__file__, VENV_PYTHON, REEXEC_ENV, ("torch",), "tools/bootstrap.sh torch")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ----------------------------------------------------------------------------------------------
# ResNet v2 (TF-slim structure)
# ----------------------------------------------------------------------------------------------

RESNET_BN = dict(eps=1e-5, momentum=1 - 0.997)


class TfSameMaxPool(nn.Module):
    """max_pool2d with TF 'SAME' padding: total pad max((ceil(n/s)-1)*s + k - n, 0), the smaller half
    on top/left. With no top/left pad (even inputs, k=3, s=2) that is PyTorch's ceil_mode, whose last
    window is cut at the border (as if padded with -inf); otherwise pad with -inf explicitly."""

    def __init__(self, k, s):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x):
        k, s = self.k, self.s
        pads = []
        for n in x.shape[-2:]:
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        if all(b == 0 for b, _ in pads):
            return F.max_pool2d(x, k, s, ceil_mode=True)
        (t, b), (l, r) = pads
        x = F.pad(x, (l, r, t, b), value=float("-inf"))
        return F.max_pool2d(x, k, s)


class Bottleneck(nn.Module):
    def __init__(self, depth_in, depth, depth_bottleneck, stride):
        super().__init__()
        self.stride = stride
        self.preact = nn.BatchNorm2d(depth_in, **RESNET_BN)
        self.shortcut = None
        if depth != depth_in:
            self.shortcut = nn.Conv2d(depth_in, depth, 1, stride=stride, bias=True)
        self.conv1 = nn.Conv2d(depth_in, depth_bottleneck, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(depth_bottleneck, **RESNET_BN)
        # conv2d_same: stride 1 -> SAME, stride > 1 -> symmetric (k-1)/2 pad + VALID; k=3: pad 1 either way
        self.conv2 = nn.Conv2d(depth_bottleneck, depth_bottleneck, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(depth_bottleneck, **RESNET_BN)
        self.conv3 = nn.Conv2d(depth_bottleneck, depth, 1, bias=True)

    def forward(self, x):
        preact = F.relu(self.preact(x))
        if self.shortcut is not None:
            shortcut = self.shortcut(preact)
        elif self.stride == 1:
            shortcut = x
        else:
            shortcut = x[:, :, ::self.stride, ::self.stride]      # subsample = 1x1 max pool, stride s
        r = F.relu(self.bn1(self.conv1(preact)))
        r = F.relu(self.bn2(self.conv2(r)))
        r = self.conv3(r)
        return shortcut + r


class ResNetV2(nn.Module):
    def __init__(self, units, num_classes=1001):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)
        self.pool1 = TfSameMaxPool(3, 2)
        blocks = []
        depth_in = 64
        for i, n in enumerate(units):
            base = 64 * 2 ** i
            stride = 1 if i == 3 else 2
            unit_list = []
            for u in range(n):
                s = stride if u == n - 1 else 1
                unit_list.append(Bottleneck(depth_in, 4 * base, base, s))
                depth_in = 4 * base
            blocks.append(nn.Sequential(*unit_list))
        self.blocks = nn.Sequential(*blocks)
        self.postnorm = nn.BatchNorm2d(depth_in, **RESNET_BN)
        self.logits = nn.Conv2d(depth_in, num_classes, 1, bias=True)

    def forward(self, x):
        x = self.pool1(self.conv1(x))
        x = self.blocks(x)
        x = F.relu(self.postnorm(x))
        x = x.mean(dim=(2, 3), keepdim=True)
        return self.logits(x)                                       # [B, 1001, 1, 1]


# ----------------------------------------------------------------------------------------------
# facenet Inception-ResNet-v1
# ----------------------------------------------------------------------------------------------

FACENET_EPS = 1e-3
FACENET_MOMENTUM = 1 - 0.995


class BatchNormNoScale(nn.Module):
    """slim.batch_norm with scale=False: beta only (no gamma), moving mean/variance."""

    def __init__(self, c, eps=FACENET_EPS, momentum=FACENET_MOMENTUM):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.beta = nn.Parameter(torch.zeros(c))
        self.register_buffer("moving_mean", torch.zeros(c))
        self.register_buffer("moving_variance", torch.ones(c))

    def forward(self, x):
        return F.batch_norm(x, self.moving_mean, self.moving_variance, None, self.beta,
                            self.training, self.momentum, self.eps)


class ConvBN(nn.Module):
    """slim.conv2d under facenet's arg scope: conv (no bias) + BN (no gamma) + ReLU."""

    def __init__(self, cin, cout, k, stride=1, padding="same"):
        super().__init__()
        kh, kw = (k, k) if isinstance(k, int) else k
        pad = (kh // 2, kw // 2) if padding == "same" else (0, 0)
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=pad, bias=False)
        self.bn = BatchNormNoScale(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Block35(nn.Module):
    def __init__(self, c=256, scale=0.17):
        super().__init__()
        self.scale = scale
        self.b0 = ConvBN(c, 32, 1)
        self.b1 = nn.Sequential(ConvBN(c, 32, 1), ConvBN(32, 32, 3))
        self.b2 = nn.Sequential(ConvBN(c, 32, 1), ConvBN(32, 32, 3), ConvBN(32, 32, 3))
        self.up = nn.Conv2d(96, c, 1, bias=True)

    def forward(self, x):
        mixed = torch.cat([self.b0(x), self.b1(x), self.b2(x)], 1)
        return F.relu(x + self.scale * self.up(mixed))


class Block17(nn.Module):
    def __init__(self, c=896, scale=0.10):
        super().__init__()
        self.scale = scale
        self.b0 = ConvBN(c, 128, 1)
        self.b1 = nn.Sequential(ConvBN(c, 128, 1), ConvBN(128, 128, (1, 7)), ConvBN(128, 128, (7, 1)))
        self.up = nn.Conv2d(256, c, 1, bias=True)

    def forward(self, x):
        mixed = torch.cat([self.b0(x), self.b1(x)], 1)
        return F.relu(x + self.scale * self.up(mixed))


class Block8(nn.Module):
    def __init__(self, c=1792, scale=0.20, relu=True):
        super().__init__()
        self.scale, self.relu = scale, relu
        self.b0 = ConvBN(c, 192, 1)
        self.b1 = nn.Sequential(ConvBN(c, 192, 1), ConvBN(192, 192, (1, 3)), ConvBN(192, 192, (3, 1)))
        self.up = nn.Conv2d(384, c, 1, bias=True)

    def forward(self, x):
        mixed = torch.cat([self.b0(x), self.b1(x)], 1)
        x = x + self.scale * self.up(mixed)
        return F.relu(x) if self.relu else x


class ReductionA(nn.Module):
    def __init__(self, c=256, k=192, l=192, m=256, n=384):
        super().__init__()
        self.b0 = ConvBN(c, n, 3, stride=2, padding="valid")
        self.b1 = nn.Sequential(ConvBN(c, k, 1), ConvBN(k, l, 3), ConvBN(l, m, 3, stride=2, padding="valid"))

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1(x), F.max_pool2d(x, 3, 2)], 1)


class ReductionB(nn.Module):
    def __init__(self, c=896):
        super().__init__()
        self.b0 = nn.Sequential(ConvBN(c, 256, 1), ConvBN(256, 384, 3, stride=2, padding="valid"))
        self.b1 = nn.Sequential(ConvBN(c, 256, 1), ConvBN(256, 256, 3, stride=2, padding="valid"))
        self.b2 = nn.Sequential(ConvBN(c, 256, 1), ConvBN(256, 256, 3),
                                ConvBN(256, 256, 3, stride=2, padding="valid"))

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1(x), self.b2(x), F.max_pool2d(x, 3, 2)], 1)


class InceptionResnetV1(nn.Module):
    def __init__(self, bottleneck_layer_size=512, keep_probability=0.8):
        super().__init__()
        self.stem = nn.Sequential(
            ConvBN(3, 32, 3, stride=2, padding="valid"),     # Conv2d_1a_3x3
            ConvBN(32, 32, 3, padding="valid"),               # Conv2d_2a_3x3
            ConvBN(32, 64, 3),                                # Conv2d_2b_3x3 (SAME)
            nn.MaxPool2d(3, 2),                               # MaxPool_3a_3x3 (VALID)
            ConvBN(64, 80, 1, padding="valid"),               # Conv2d_3b_1x1
            ConvBN(80, 192, 3, padding="valid"),              # Conv2d_4a_3x3
            ConvBN(192, 256, 3, stride=2, padding="valid"),   # Conv2d_4b_3x3
        )
        self.repeat = nn.Sequential(*[Block35(256, 0.17) for _ in range(5)])
        self.mixed_6a = ReductionA(256)
        self.repeat_1 = nn.Sequential(*[Block17(896, 0.10) for _ in range(10)])
        self.mixed_7a = ReductionB(896)
        self.repeat_2 = nn.Sequential(*[Block8(1792, 0.20) for _ in range(5)])
        self.block8 = Block8(1792, 1.0, relu=False)
        self.dropout = nn.Dropout(1 - keep_probability)
        self.bottleneck = nn.Linear(1792, bottleneck_layer_size, bias=False)
        self.bottleneck_bn = BatchNormNoScale(bottleneck_layer_size)

    def forward(self, x):
        x = self.stem(x)
        x = self.repeat(x)
        x = self.mixed_6a(x)
        x = self.repeat_1(x)
        x = self.mixed_7a(x)
        x = self.repeat_2(x)
        x = self.block8(x)
        x = x.mean(dim=(2, 3))                                # AvgPool over the whole map, flatten
        x = self.dropout(x)
        return self.bottleneck_bn(self.bottleneck(x))        # prelogits [B, 512]


def build_model(arch):
    if arch == FACENET:
        return InceptionResnetV1(512, 0.8)
    return ResNetV2(RESNET_UNITS[arch], 1001)


# ----------------------------------------------------------------------------------------------
# --verify-ref: load a TF reference checkpoint (tools/tfref.py refs NAME) and compare outputs
# ----------------------------------------------------------------------------------------------

TF_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")

_RESNET_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
              "running_var": "moving_variance"}
_FACENET_BRANCHES = {
    "Block35": {"b0": "Branch_0/Conv2d_1x1", "b1.0": "Branch_1/Conv2d_0a_1x1", "b1.1": "Branch_1/Conv2d_0b_3x3",
                "b2.0": "Branch_2/Conv2d_0a_1x1", "b2.1": "Branch_2/Conv2d_0b_3x3",
                "b2.2": "Branch_2/Conv2d_0c_3x3"},
    "Block17": {"b0": "Branch_0/Conv2d_1x1", "b1.0": "Branch_1/Conv2d_0a_1x1", "b1.1": "Branch_1/Conv2d_0b_1x7",
                "b1.2": "Branch_1/Conv2d_0c_7x1"},
    "Block8": {"b0": "Branch_0/Conv2d_1x1", "b1.0": "Branch_1/Conv2d_0a_1x1", "b1.1": "Branch_1/Conv2d_0b_1x3",
               "b1.2": "Branch_1/Conv2d_0c_3x1"},
    "ReductionA": {"b0": "Branch_0/Conv2d_1a_3x3", "b1.0": "Branch_1/Conv2d_0a_1x1",
                   "b1.1": "Branch_1/Conv2d_0b_3x3", "b1.2": "Branch_1/Conv2d_1a_3x3"},
    "ReductionB": {"b0.0": "Branch_0/Conv2d_0a_1x1", "b0.1": "Branch_0/Conv2d_1a_3x3",
                   "b1.0": "Branch_1/Conv2d_0a_1x1", "b1.1": "Branch_1/Conv2d_1a_3x3",
                   "b2.0": "Branch_2/Conv2d_0a_1x1", "b2.1": "Branch_2/Conv2d_0b_3x3",
                   "b2.2": "Branch_2/Conv2d_1a_3x3"},
}
_FACENET_STEM = {"0": "Conv2d_1a_3x3", "1": "Conv2d_2a_3x3", "2": "Conv2d_2b_3x3", "4": "Conv2d_3b_1x1",
                 "5": "Conv2d_4a_3x3", "6": "Conv2d_4b_3x3"}


def tf_name(arch, name):
    """TF variable name of a parameter/buffer of build_model(arch) (the scopes of slim/facenet)."""
    parts = name.split(".")
    leaf = parts[-1]
    if arch != FACENET:
        sc = arch
        if parts[0] in ("conv1", "logits"):
            return "%s/%s/%s" % (sc, parts[0], {"weight": "weights", "bias": "biases"}[leaf])
        if parts[0] == "postnorm":
            return "%s/postnorm/%s" % (sc, _RESNET_BN[leaf])
        b, u, layer = int(parts[1]), int(parts[2]), parts[3]
        unit = "%s/block%d/unit_%d/bottleneck_v2" % (sc, b + 1, u + 1)
        if layer == "preact":
            return "%s/preact/%s" % (unit, _RESNET_BN[leaf])
        if layer in ("bn1", "bn2"):
            return "%s/conv%s/BatchNorm/%s" % (unit, layer[2], _RESNET_BN[leaf])
        return "%s/%s/%s" % (unit, layer, {"weight": "weights", "bias": "biases"}[leaf])
    sc = "InceptionResnetV1"
    if parts[0] == "bottleneck":
        return sc + "/Bottleneck/weights"
    if parts[0] == "bottleneck_bn":
        return sc + "/Bottleneck/BatchNorm/" + leaf
    if parts[0] == "stem":
        scope, rest = _FACENET_STEM[parts[1]], parts[2:]
    else:
        if parts[0] in ("repeat", "repeat_1", "repeat_2"):
            kind = {"repeat": "Block35", "repeat_1": "Block17", "repeat_2": "Block8"}[parts[0]]
            blk = "%s/%s_%d" % ({"repeat": "Repeat", "repeat_1": "Repeat_1", "repeat_2": "Repeat_2"}[parts[0]],
                                kind.lower(), int(parts[1]) + 1)
            rest = parts[2:]
        elif parts[0] == "block8":
            kind, blk, rest = "Block8", "Block8", parts[1:]
        else:
            kind = {"mixed_6a": "ReductionA", "mixed_7a": "ReductionB"}[parts[0]]
            blk, rest = {"mixed_6a": "Mixed_6a", "mixed_7a": "Mixed_7a"}[parts[0]], parts[1:]
        if rest[0] == "up":
            return "%s/%s/Conv2d_1x1/%s" % (sc, blk, {"weight": "weights", "bias": "biases"}[leaf])
        key = rest[0] if rest[1] in ("conv", "bn") else rest[0] + "." + rest[1]
        scope = blk + "/" + _FACENET_BRANCHES[kind][key]
        rest = rest[1:] if rest[1] in ("conv", "bn") else rest[2:]
    if rest[0] == "conv":
        return "%s/%s/weights" % (sc, scope)
    return "%s/%s/BatchNorm/%s" % (sc, scope, leaf)


def load_ref(arch, refdir):
    """Build build_model(arch) in eval mode with the weights of a tfref reference (read through TF by
    `tfref.py dump` in the TF venv). Returns (model, x, endpoints, info): x is the reference input as an
    NCHW float32 tensor, endpoints TF's end points on it (numpy: "output" = logits / facenet prelogits,
    facenet also "embeddings"), info the verify_* fields of the RESULT line except the comparison."""
    import subprocess
    import tempfile
    import numpy as np
    from safetensors.numpy import load_file
    with open(os.path.join(refdir, "DONE")) as f:
        done = json.load(f)
    if arch == FACENET:
        ckpt = os.path.join(refdir, done["checkpoint"])
        x_np = np.load(os.path.join(refdir, "input_160.npy"))
        endpoints = load_file(os.path.join(refdir, "endpoints_160.safetensors"))
    else:
        if done.get("name") != arch:
            raise SystemExit("bench_torch: %s is a reference for %s, not %s" % (refdir, done.get("name"), arch))
        ckpt = os.path.join(refdir, "v2", "model.ckpt")
        x_np = np.load(os.path.join(refdir, "input.npy"))
        endpoints = load_file(os.path.join(refdir, "endpoints.safetensors"))
    with tempfile.TemporaryDirectory(prefix="bench-torch-verify-") as tmp:
        subprocess.run([TF_PYTHON, os.path.join(HERE, "tfref.py"), "dump", ckpt, "-o", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        values = load_file(os.path.join(tmp, "tf_values.safetensors"))
    model = build_model(arch)
    state = {}
    used = set()
    for name, t in list(model.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        tn = tf_name(arch, name)
        v = values[tn]
        if v.ndim == 4:
            v = v.transpose(3, 2, 0, 1)
        elif v.ndim == 2:
            v = v.T
        if tuple(v.shape) != tuple(t.shape):
            raise SystemExit("bench_torch: %s <- %s: shape %s vs %s" % (name, tn, v.shape, tuple(t.shape)))
        state[name] = torch.from_numpy(np.ascontiguousarray(v))
        used.add(tn)
    model.load_state_dict(state, strict=False)
    missing = [n for n in model.state_dict() if n not in state and not n.endswith("num_batches_tracked")]
    unused = sorted(n for n in values if n not in used)
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2)))
    info = {"verify_ref": os.path.relpath(refdir, REPO), "verify_checkpoint": os.path.relpath(ckpt, REPO),
            "verify_loaded_tensors": len(used), "verify_missing": missing, "verify_unused_tf": unused}
    return model, x, endpoints, info


def verify_ref(args, refdir):
    """Load the weights of a tfref reference into the PyTorch net, run its reference input in eval mode
    (f32, both layouts) and compare with TF's output. Returns a dict for the RESULT line."""
    model, x, endpoints, info = load_ref(args.arch, refdir)
    exp = torch.from_numpy(endpoints["output"])
    out = {}
    for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        m = model.to(memory_format=fmt)
        with torch.inference_mode():
            y = m(x.contiguous(memory_format=fmt)).reshape(exp.shape)
        out[layout] = float((y - exp).abs().max())
    scale = float(exp.abs().max())
    res = dict(info)
    res.update({"verify_max_abs_diff": out, "verify_expected_abs_max": scale,
                "verify_ok": not info["verify_missing"] and max(out.values()) <= 1e-4 * max(1.0, scale)})
    return res


# ----------------------------------------------------------------------------------------------
# benchmark
# ----------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = benchlib.seed_parser(__doc__, ARCHS, "intra-op threads (default: all cores)")
    p.add_argument("--layout", default="channels_last", choices=("nchw", "channels_last"))
    p.add_argument("--dtype", default="f32", choices=("f32", "bf16"))
    p.add_argument("--count-only", action="store_true",
                   help="build the model, print the parameter counts as RESULT, do not run")
    p.add_argument("--verify-ref", metavar="DIR",
                   help="instead of timing: load the weights of a tools/tfref.py reference (e.g. "
                        ".cache/refs/resnet_v2_50, .cache/refs/facenet_512) and compare the output with TF's")
    return benchlib.seed_args(p, argv, FACENET)


def shape_digest(shapes):
    """Same digest as bench_tf.py's (sorted parameter shapes in PyTorch layout); a Linear weight is
    [out, in] already, like the transposed TF dense kernel."""
    text = json.dumps(sorted([list(s) for s in shapes]), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def counts(model):
    params = list(model.parameters())
    bufs = [b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]
    return {"param_tensors": len(params), "params": int(sum(p.numel() for p in params)),
            "moving_stat_variables": len(bufs), "moving_stat_params": int(sum(b.numel() for b in bufs)),
            "shape_digest": shape_digest([tuple(p.shape) for p in params])}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass
    torch.manual_seed(1234)
    model = build_model(args.arch)
    fmt = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    result = {"runner": "pytorch", "arch": args.arch, "mode": args.mode, "dtype": args.dtype,
              "layout": args.layout, "batch": args.batch, "size": args.size, "batches": args.batches,
              "burn_in": args.burn_in, "threads": args.threads,
              "output": ("logits" if args.arch != FACENET else "embeddings") if args.mode == "forward"
              else "(out**2).sum()/2 of %s, backward" % ("logits" if args.arch != FACENET else "prelogits"),
              "mkldnn_available": torch.backends.mkldnn.is_available(),
              "versions": {"python": platform.python_version(), "torch": torch.__version__}}
    result.update(counts(model))
    if args.count_only or args.verify_ref:
        if args.verify_ref:
            result.update(verify_ref(args, os.path.abspath(args.verify_ref)))
        print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
        return 0 if result.get("verify_ok", True) else 1

    x = (torch.randn(args.batch, 3, args.size, args.size) * 0.1).contiguous(memory_format=fmt)
    training = args.mode == "forward-backward"
    model.train(training)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.dtype == "bf16" else None

    def forward_step():
        with torch.inference_mode():
            if autocast:
                with autocast():
                    out = model(x)
            else:
                out = model(x)
            if args.arch == FACENET:
                out = F.normalize(out.float(), p=2, dim=1, eps=1e-10)
            return out

    def train_step():
        model.zero_grad(set_to_none=True)
        if autocast:
            with autocast():
                out = model(x)
                loss = (out.float() ** 2).sum() / 2
        else:
            out = model(x)
            loss = (out ** 2).sum() / 2
        loss.backward()
        return out

    step = train_step if training else forward_step
    print("%s: bench_torch %s %s %s %s batch %d size %d, %d threads, %d parameters"
          % (datetime.now(), args.arch, args.mode, args.layout, args.dtype, args.batch, args.size,
             args.threads, result["params"]), flush=True)
    label = "Forward" if not training else "Forward-backward"
    mn, sd, last = benchlib.time_steps(step, label, args.batches, args.burn_in)
    if training:
        result["gradients"] = sum(1 for p in model.parameters() if p.grad is not None)
    result["mean"] = mn
    result["sd"] = sd
    result["images_per_s"] = args.batch / mn if mn > 0 else None
    result["output_shape"] = list(last.shape)
    if not training:
        result["output_finite"] = bool(torch.isfinite(last.float()).all())
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

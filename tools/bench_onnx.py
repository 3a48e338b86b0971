#!/usr/bin/env python3
"""bench_onnx.py: the ONNX Runtime and OpenVINO peers of `slimzoo bench` (forward / inference only).

The net is the PyTorch peer's (tools/bench_torch.py `build_model(arch)`, eval mode, NCHW input,
torch.manual_seed(1234) weights as in bench_torch.py), exported once with the torch.onnx dynamo exporter
(opset 18, dynamic batch dimension "batch") to .cache/onnx/<arch>-bdyn-<size>.onnx (re-exported when
bench_torch.py, this exporter or torch change; a .json beside it says from what). The graph computes what
the other peers' forward pass outputs: resnet logits [B,1001,1,1]; facenet embeddings, TF's
l2_normalize(prelogits, 1, 1e-10) = x * rsqrt(max(sum(x^2), 1e-10)).

  --engine ort        ONNX Runtime, CPUExecutionProvider, ORT_ENABLE_ALL, intra-op threads = --threads
                      (default: all cores), sequential execution; the batch dimension is fixed to --batch
                      (free dimension override) so the optimizer sees static shapes.
                      --dtype bf16: ONNX Runtime's CPU execution provider has no bfloat16 kernels for
                      the net's ops (checked at run time on one-node bf16 graphs: Conv at opset 22 - ONNX's
                      Conv admits bfloat16 only from opset 22 -, MatMul, Add, Relu); while that probe fails,
                      this prints a RESULT with "unsupported": the reason, and exits 0.
  --engine openvino   OpenVINO CPU plugin, INFERENCE_PRECISION_HINT f32|bf16 (= --dtype; the model stays f32,
                      the plugin computes in bf16), INFERENCE_NUM_THREADS = --threads, PERFORMANCE_HINT =
                      --hint (default: throughput for batch > 1, latency for batch 1).
                      throughput: the batch is split into as many near-equal sub-batches as the plugin's
                      OPTIMAL_NUMBER_OF_INFER_REQUESTS (its streams), each sub-batch one infer request on a
                      model compiled at that static shape, all started together; a step is the wall time of
                      the whole batch (start all, wait for all, gather the outputs).
                      latency: one infer request on the model compiled at the batch's static shape.

Timing is TF's time_tensorflow_run protocol (benchlib.time_steps), a final 'RESULT {json}' line as in
bench_tf.py / bench_torch.py. Input: random N(0, 0.1) float32 NCHW, fixed across steps.

  bench_onnx.py --engine openvino --arch resnet_v2_152 --batch 32 --dtype bf16
  bench_onnx.py --engine ort --arch resnet_v2_50 --batch 1 --hint latency
  bench_onnx.py --verify-ref .cache/refs/resnet_v2_50 [--engine ort|openvino]    (--arch: the reference's net)
      load a tools/tfref.py reference's weights into the PyTorch net (bench_torch.load_ref), export it, run
      ONNX Runtime and OpenVINO (both unless --engine; f32, plus OpenVINO bf16 for information) on the
      reference input and compare with TF's output (logits; facenet: embeddings). Relative error =
      max |engine - TF| / max |TF|; verify_ok needs <= 1e-4 for every f32 engine.
Started with another interpreter it re-executes itself under <repo>/.venv/bench/bin/python
(made by tools/bootstrap.sh bench).
"""
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime

import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(REPO, ".venv", "bench", "bin", "python")
REEXEC_ENV = "SLIMZOO_BENCH_ONNX_REEXEC"
CACHE = os.path.join(REPO, ".cache", "onnx")
OPSET = 18
EXPORT_VERSION = 1        # bump when the exported graph changes for reasons outside bench_torch.py
BATCH_DIM = "batch"
FACENET = "inception_resnet_v1"
RUNNER = {"ort": "onnxruntime", "openvino": "openvino"}

if __name__ == "__main__":
    benchlib.reexec_in_venv(__file__, VENV_PYTHON, REEXEC_ENV, ("torch", "onnxscript", "onnxruntime", "openvino"),
                            "tools/bootstrap.sh bench")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench_torch  # noqa: E402  (build_model, load_ref, counts; importing it does not re-exec)


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------

class Served(torch.nn.Module):
    """The forward output the peers time: resnet logits; facenet embeddings = TF's l2_normalize."""

    def __init__(self, net, facenet):
        super().__init__()
        self.net, self.facenet = net, facenet

    def forward(self, x):
        y = self.net(x)
        if self.facenet:
            y = y * torch.rsqrt(torch.clamp((y * y).sum(dim=1, keepdim=True), min=1e-10))
        return y


def export_onnx(net, arch, size, path):
    """torch.onnx dynamo export of Served(net) (f32) with a dynamic batch dimension, written to `path`
    (one file, weights inside; written under a temporary name, then renamed)."""
    model = Served(net, arch == FACENET).eval()
    x = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim(BATCH_DIM, min=1, max=4096)
    t0 = time.perf_counter()
    with torch.no_grad():
        prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=OPSET, input_names=["input"],
                                 output_names=["output"], dynamic_shapes=({0: batch},), optimize=True,
                                 verify=False, report=False)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    prog.save(tmp, external_data=False)
    os.replace(tmp, path)
    return time.perf_counter() - t0


def onnx_batch_dim(path):
    """dim_param of the first input's batch axis (for ORT's free dimension override)."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    d = m.graph.input[0].type.tensor_type.shape.dim[0]
    return d.dim_param or None


def cached_export(arch, size):
    """The benchmark's .onnx (random weights of bench_torch's seed), exported when missing or stale."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, "%s-bdyn-%d.onnx" % (arch, size))
    with open(os.path.join(HERE, "bench_torch.py"), "rb") as f:
        src = hashlib.sha256(f.read()).hexdigest()[:16]
    key = {"arch": arch, "size": size, "dtype": "f32", "opset": OPSET, "seed": 1234, "torch": torch.__version__,
           "bench_torch_sha": src, "export_version": EXPORT_VERSION}
    meta_path = path[:-len(".onnx")] + ".json"
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        meta = None
    if meta and meta.get("key") == key and os.path.exists(path):
        return path, meta
    print("%s: exporting %s (size %d) to %s" % (datetime.now(), arch, size, os.path.relpath(path, REPO)), flush=True)
    torch.manual_seed(1234)
    net = bench_torch.build_model(arch)
    secs = export_onnx(net, arch, size, path)
    meta = {"key": key, "batch_dim": onnx_batch_dim(path), "export_seconds": round(secs, 1),
            "bytes": os.path.getsize(path)}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print("%s: exported in %.1f s, %.1f MB" % (datetime.now(), secs, meta["bytes"] / 1e6), flush=True)
    return path, meta


# ----------------------------------------------------------------------------------------------
# engines: make(path, batch_dim, x, args) -> (step, config); step() returns the output as numpy
# ----------------------------------------------------------------------------------------------

class Unsupported(Exception):
    """The engine cannot run this configuration (reported as 'unsupported' in RESULT, not a failure)."""


def ort_bf16_missing():
    """One-node bfloat16 graphs of the net's op kinds on ORT's CPU EP: the list of (op, error) that
    fail session creation (empty when this ORT has bf16 kernels for all of them)."""
    import onnx.helper as h
    import onnxruntime as ort
    from onnx import TensorProto
    bf = TensorProto.BFLOAT16
    cases = {"Conv": ([1, 4, 8, 8], [4, 4, 3, 3]), "MatMul": ([4, 4], [4, 4]), "Add": ([4, 4], [4, 4]),
             "Relu": ([4, 4], None)}
    missing = []
    for op, (xs, ws) in cases.items():
        ins = [h.make_tensor_value_info("x", bf, xs)] + ([h.make_tensor_value_info("w", bf, ws)] if ws else [])
        g = h.make_graph([h.make_node(op, [i.name for i in ins], ["y"])], op, ins,
                         [h.make_tensor_value_info("y", bf, None)])
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 22)])
        m.ir_version = 10
        try:
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 (onnxruntime raises its own pybind exception types)
            missing.append((op, str(e).strip().splitlines()[-1]))
    return missing


def check_supported(args):
    """Raises Unsupported for configurations an engine cannot run (before any export)."""
    if args.engine == "ort" and args.dtype == "bf16":
        import onnxruntime as ort
        missing = ort_bf16_missing()
        if missing:
            codes = sorted({"NOT_IMPLEMENTED" if "NOT_IMPLEMENTED" in e else e[:120] for _, e in missing})
            raise Unsupported("ONNX Runtime %s's CPU execution provider has no bfloat16 kernels (%s: %s at session "
                              "creation of one-node opset-22 graphs); its bf16 fast math is ARM64-only"
                              % (ort.__version__, ", ".join(op for op, _ in missing), "; ".join(codes)))
        raise Unsupported("ONNX Runtime %s has bfloat16 CPU kernels for Conv/MatMul/Add/Relu now, but "
                          "bench_onnx.py has no bf16 export yet (needs opset >= 22 for bf16 Conv)" % ort.__version__)


def make_ort(path, batch_dim, x, args):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if batch_dim:
        so.add_free_dimension_override_by_name(batch_dim, x.shape[0])
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}

    def step():
        return sess.run(None, feed)[0]

    cfg = {"provider": sess.get_providers()[0], "graph_optimization_level": "ORT_ENABLE_ALL",
           "intra_op_num_threads": args.threads, "inter_op_num_threads": 1, "execution_mode": "sequential",
           "free_dimension_override": {batch_dim: x.shape[0]} if batch_dim else None}
    return step, cfg


def _ov_str(v):
    if hasattr(v, "get_type_name"):                  # ov.Type -> "f32" / "bf16"
        return v.get_type_name()
    if hasattr(v, "name") and not isinstance(v, (str, int, bool)):
        return v.name                                # pybind enums (ExecutionMode.PERFORMANCE -> PERFORMANCE)
    return str(v)


def make_openvino(path, batch_dim, x, args):
    import openvino as ov
    core = ov.Core()
    base = core.read_model(path)
    hint = args.hint.upper()
    config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": args.dtype,
              "INFERENCE_NUM_THREADS": args.threads}
    size = x.shape[2:]

    def compile_at(b):
        m = base.clone()
        m.reshape([b, 3] + list(size))
        return core.compile_model(m, "CPU", config)

    B = x.shape[0]
    t0 = time.perf_counter()
    if hint == "THROUGHPUT" and B > 1:
        probe = compile_at(1)
        nreq = int(probe.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        del probe
        parts = max(1, min(nreq, B))
    else:
        nreq, parts = None, 1
    sizes = [B // parts + (1 if i < B % parts else 0) for i in range(parts)]
    compiled = {}
    for s in sizes:
        if s not in compiled:
            compiled[s] = compile_at(s)
    reqs, start = [], 0
    for s in sizes:
        r = compiled[s].create_infer_request()
        r.set_input_tensor(ov.Tensor(np.ascontiguousarray(x[start:start + s]), shared_memory=True))
        reqs.append(r)
        start += s
    compile_s = time.perf_counter() - t0

    if len(reqs) == 1:
        req = reqs[0]

        def step():
            req.infer()
            return req.get_output_tensor(0).data.copy()
    else:
        def step():
            for r in reqs:
                r.start_async()
            for r in reqs:
                r.wait()
            return np.concatenate([r.get_output_tensor(0).data for r in reqs])

    c0 = compiled[sizes[0]]
    prop = {}
    for k in ("PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
              "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "ENABLE_HYPER_THREADING", "ENABLE_CPU_PINNING",
              "EXECUTION_MODE_HINT"):
        try:
            prop[k] = _ov_str(c0.get_property(k))
        except Exception:  # noqa: BLE001 (property not known to this plugin version)
            pass
    cfg = {"device": "CPU", "requested": {k: str(v) for k, v in config.items()},
           "compiled_properties": prop, "optimal_requests_probe": nreq, "sub_batches": sizes,
           "compile_seconds": round(compile_s, 2)}
    return step, cfg


ENGINES = {"ort": make_ort, "openvino": make_openvino}


def engine_versions(engine):
    v = {"python": platform.python_version(), "torch": torch.__version__}
    import onnx
    import onnxscript
    v["onnx"], v["onnxscript"] = onnx.__version__, onnxscript.__version__
    if engine in ("ort", None):
        import onnxruntime
        v["onnxruntime"] = onnxruntime.__version__
    if engine in ("openvino", None):
        import openvino
        v["openvino"] = openvino.get_version()
    return v


# ----------------------------------------------------------------------------------------------
# --verify-ref
# ----------------------------------------------------------------------------------------------

def verify_ref(args, refdir):
    """Export the reference-weight net, run the engine(s) on the reference input, compare with TF."""
    from types import SimpleNamespace
    net, x, endpoints, info = bench_torch.load_ref(args.arch, refdir)
    exp = endpoints["embeddings" if args.arch == FACENET else "output"].astype(np.float64)
    scale = float(np.abs(exp).max())
    x_np = x.numpy()
    res = dict(info)
    res["verify_output"] = "embeddings" if args.arch == FACENET else "logits"
    res["verify_batch"] = int(x_np.shape[0])
    res["verify_expected_abs_max"] = scale
    rel, absd = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-onnx-verify-") as tmp:
        path = os.path.join(tmp, "ref.onnx")
        secs = export_onnx(net, args.arch, x_np.shape[2], path)
        batch_dim = onnx_batch_dim(path)
        res["verify_export_seconds"] = round(secs, 1)
        with torch.inference_mode():
            y = Served(net, args.arch == FACENET)(x).numpy()
        absd["pytorch_eager"] = float(np.abs(y.reshape(exp.shape) - exp).max())
        engines = [args.engine] if args.engine else ["ort", "openvino"]
        runs = [(e, "f32") for e in engines] + ([("openvino", "bf16")] if "openvino" in engines else [])
        configs = {}
        for engine, dtype in runs:
            label = "%s_%s" % (RUNNER[engine], dtype)
            a = SimpleNamespace(threads=args.threads, dtype=dtype,
                                hint=args.hint or ("throughput" if x_np.shape[0] > 1 else "latency"))
            step, cfg = ENGINES[engine](path, batch_dim, x_np, a)
            y = step()
            absd[label] = float(np.abs(y.reshape(exp.shape).astype(np.float64) - exp).max())
            configs[label] = cfg
            print("%s: verify %s %s: max abs diff %.3g, relative %.3g" % (
                datetime.now(), args.arch, label, absd[label], absd[label] / scale), flush=True)
    rel = {k: v / scale for k, v in absd.items()}
    res["verify_max_abs_diff"] = absd
    res["verify_max_rel_err"] = rel
    res["verify_engine_configs"] = configs
    res["verify_ok"] = (not info["verify_missing"]
                        and all(v <= 1e-4 for k, v in rel.items() if not k.endswith("bf16")))
    return res


# ----------------------------------------------------------------------------------------------
# benchmark
# ----------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = benchlib.seed_parser(__doc__, bench_torch.ARCHS, "ORT intra-op threads / OpenVINO INFERENCE_NUM_THREADS "
                                                         "(default: all cores)")
    p.add_argument("--engine", choices=("ort", "openvino"), default=None,
                   help="ONNX Runtime or OpenVINO (required to benchmark; --verify-ref: both when omitted)")
    p.add_argument("--dtype", default="f32", choices=("f32", "bf16"))
    p.add_argument("--hint", choices=("throughput", "latency"), default=None,
                   help="OpenVINO PERFORMANCE_HINT (default: throughput for batch > 1, latency for batch 1); "
                        "recorded for ORT, which has no such setting")
    p.add_argument("--verify-ref", metavar="DIR",
                   help="instead of timing: compare the engines' output with TF's on a tools/tfref.py reference "
                        "(e.g. .cache/refs/resnet_v2_50, .cache/refs/facenet_512)")
    raw = sys.argv[1:] if argv is None else list(argv)
    a = benchlib.seed_args(p, raw, FACENET)
    if a.verify_ref and not any(t == "--arch" or t.startswith("--arch=") for t in raw):
        try:                                   # no --arch: the reference's own net
            with open(os.path.join(a.verify_ref, "DONE")) as f:
                name = json.load(f).get("name", "")
        except (OSError, ValueError):
            name = ""
        if name.startswith("facenet"):
            a.arch = FACENET
        elif name in bench_torch.RESNET_UNITS:
            a.arch = name
    if a.mode != "forward":
        p.error("ONNX Runtime / OpenVINO run inference only: --mode forward")
    if not a.verify_ref:
        if not a.engine:
            p.error("--engine ort|openvino is required")
        a.hint = a.hint or ("throughput" if a.batch > 1 else "latency")
    return a


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.verify_ref:
        result = {"runner": "onnx-verify", "arch": args.arch, "threads": args.threads,
                  "versions": engine_versions(args.engine)}
        result.update(verify_ref(args, os.path.abspath(args.verify_ref)))
        print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
        return 0 if result["verify_ok"] else 1

    result = {"runner": RUNNER[args.engine], "arch": args.arch, "mode": args.mode, "dtype": args.dtype,
              "layout": "nchw", "batch": args.batch, "size": args.size, "batches": args.batches,
              "burn_in": args.burn_in, "threads": args.threads, "hint": args.hint,
              "output": "logits" if args.arch != FACENET else "embeddings",
              "versions": engine_versions(args.engine)}
    torch.manual_seed(1234)
    result.update(bench_torch.counts(bench_torch.build_model(args.arch)))
    try:
        check_supported(args)
    except Unsupported as e:
        result["unsupported"] = str(e)
        print("%s: %s %s: unsupported: %s" % (datetime.now(), RUNNER[args.engine], args.dtype, e), flush=True)
        print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
        return 0
    path, meta = cached_export(args.arch, args.size)
    result["onnx"] = {"file": os.path.relpath(path, REPO), "opset": OPSET, "batch_dim": meta.get("batch_dim"),
                      "exporter": "torch.onnx dynamo"}
    x = (np.random.default_rng(1234).standard_normal((args.batch, 3, args.size, args.size)) * 0.1).astype(np.float32)
    step, cfg = ENGINES[args.engine](path, meta.get("batch_dim"), x, args)
    result["engine_config"] = cfg
    print("%s: bench_onnx %s %s %s %s batch %d size %d, %d threads, hint %s, %d parameters"
          % (datetime.now(), RUNNER[args.engine], args.arch, args.mode, args.dtype, args.batch, args.size,
             args.threads, args.hint, result["params"]), flush=True)
    mn, sd, last = benchlib.time_steps(step, "Forward", args.batches, args.burn_in)
    result["mean"] = mn
    result["sd"] = sd
    result["images_per_s"] = args.batch / mn if mn > 0 else None
    result["output_shape"] = list(last.shape)
    result["output_finite"] = bool(np.isfinite(np.asarray(last, dtype=np.float32)).all())
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""bench_all.py: slimzoo vs TensorFlow (TF-slim / facenet) vs PyTorch vs ONNX Runtime vs OpenVINO, in one run.

  tools/bench_all.py                               # resnet_v2_152, batch 32, 224, forward + forward-backward
  tools/bench_all.py --quick                       # same, --batches 5 --burn-in 2 (smoke test)
  tools/bench_all.py --arch resnet_v2_50 --batch 16 --modes forward
  tools/bench_all.py --arch resnet_v2_50 --batch 1 --modes forward    # latency: ms/image at batch 1
  tools/bench_all.py --batch 1,32 --modes forward  # several batch sizes in one run
  tools/bench_all.py --facenet                     # facenet Inception-ResNet-v1, images/s at batch 1 and 64, 160x160

Runs sequentially (never two benchmarks at once), for each mode:
  slimzoo     target/release/slimzoo bench --arch A --batch B --batches N --burn-in K --size S --mode M
              --dtype D [--threads T] [--slimzoo-args ...]    for D in --slimzoo-dtypes (default f32,bf16);
              built first with `cargo build --release --bin slimzoo` when missing
  tensorflow  tools/bench_tf.py (TF 2.21 graph mode, tf_slim / facenet, f32 NHWC)
  pytorch     tools/bench_torch.py as channels_last f32, nchw f32 and channels_last bf16 (autocast)
  onnxruntime tools/bench_onnx.py --engine ort: the PyTorch peer's net exported to ONNX (torch.onnx dynamo,
              opset 18), ORT_ENABLE_ALL, intra-op threads = cores; f32 (bf16: "n/a" with the reason, ORT's
              CPU execution provider has no bfloat16 kernels)
  openvino    tools/bench_onnx.py --engine openvino: the same ONNX file, INFERENCE_PRECISION_HINT f32 and bf16,
              PERFORMANCE_HINT THROUGHPUT for batch > 1 (the batch split across its streams, a step is the
              wall time of the whole batch), LATENCY at batch 1
              These two run forward only, in the benchmark-only venv .venv/bench (made here by
              `tools/bootstrap.sh bench` when needed). Before timing them, their f32 outputs are checked
              against TF's on a tools/tfref.py reference's weights (bench_onnx.py --verify-ref, on
              .cache/refs/<arch> or resnet_v2_50, facenet_512 for --facenet; --no-verify skips it).
Each prints TF's time_tensorflow_run lines and a 'RESULT {json}' line; this script collects those and
prints a Markdown table (mean +/- sd s/batch, images/s, ms/image when a batch is 1, and for slimzoo rows
the time ratios against TF f32, PyTorch channels_last f32 / bf16 and, when they ran, ONNX Runtime f32 and
OpenVINO f32 / bf16 of the same mode and batch: slimzoo s/batch / peer s/batch, so < 1 means slimzoo is
faster), then the machine (CPU model, cores, nproc, load) and the versions.
A runner that fails is reported in the table and the others still run; the exit code is then 1.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SLIMZOO = os.path.join(REPO, "target", "release", "slimzoo")
TF_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")
TORCH_PYTHON = os.path.join(REPO, ".venv", "torch", "bin", "python")
BENCH_PYTHON = os.path.join(REPO, ".venv", "bench", "bin", "python")
FACENET = "inception_resnet_v1"
TORCH_CONFIGS = [("channels_last", "f32"), ("nchw", "f32"), ("channels_last", "bf16")]
ONNX_ENGINES = {"onnxruntime": ("ort", "ONNX Runtime"), "openvino": ("openvino", "OpenVINO")}
ONNX_DTYPES = ("f32", "bf16")
ALL_RUNNERS = ("slimzoo", "tensorflow", "pytorch", "onnxruntime", "openvino")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--arch", default=None, help="resnet_v2_50|101|152|200 (default resnet_v2_152)")
    p.add_argument("--batch", default="32",
                   help="batch size or comma list (default 32); batch 1 = latency (OpenVINO LATENCY hint)")
    p.add_argument("--batches", type=int, default=None, help="timed steps (default 100; 5 with --quick)")
    p.add_argument("--burn-in", type=int, default=None, help="warm-up steps (default 10; 2 with --quick)")
    p.add_argument("--size", type=int, default=None, help="input size (default 224; 160 with --facenet)")
    p.add_argument("--modes", default=None,
                   help="comma list of forward,forward-backward (default both; forward with --facenet)")
    p.add_argument("--quick", action="store_true", help="--batches 5 --burn-in 2 (smoke test)")
    p.add_argument("--threads", type=int, default=None, help="passed to every runner (default: theirs, all cores)")
    p.add_argument("--slimzoo-args", default="", help="extra arguments for `slimzoo bench` (one string)")
    p.add_argument("--slimzoo-dtypes", default="f32,bf16", help="dtypes slimzoo runs with (default f32,bf16)")
    p.add_argument("--facenet", action="store_true",
                   help="facenet Inception-ResNet-v1 throughput instead (batches from --facenet-batches)")
    p.add_argument("--facenet-batches", default="1,64", help="batch sizes for --facenet (default 1,64)")
    p.add_argument("--runners", default=",".join(ALL_RUNNERS), help="subset of " + ",".join(ALL_RUNNERS))
    p.add_argument("--no-verify", action="store_true",
                   help="skip the check of the ONNX engines' outputs against TF's on reference weights")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build when slimzoo is missing")
    p.add_argument("--slimzoo", default=SLIMZOO, help="slimzoo binary (default target/release/slimzoo)")
    p.add_argument("--json", help="also write every RESULT (and the machine info) to this JSON file")
    a = p.parse_args(argv)
    if a.facenet:
        if a.arch not in (None, FACENET):
            p.error("--facenet runs inception_resnet_v1; drop --arch")
        a.arch = FACENET
        a.size = a.size or 160
        a.modes = a.modes or "forward"
        try:
            a.batch_list = [int(b) for b in a.facenet_batches.split(",") if b.strip()]
        except ValueError:
            p.error("--facenet-batches: comma list of integers")
    else:
        a.arch = a.arch or "resnet_v2_152"
        a.size = a.size or (160 if a.arch == FACENET else 224)
        a.modes = a.modes or "forward,forward-backward"
        try:
            a.batch_list = [int(b) for b in a.batch.split(",") if b.strip()]
        except ValueError:
            p.error("--batch: an integer or a comma list of integers")
    if not a.batch_list or min(a.batch_list) < 1:
        p.error("batch sizes must be >= 1")
    a.batches = a.batches if a.batches is not None else (5 if a.quick else 100)
    a.burn_in = a.burn_in if a.burn_in is not None else (2 if a.quick else 10)
    a.mode_list = [m.strip() for m in a.modes.split(",") if m.strip()]
    for m in a.mode_list:
        if m not in ("forward", "forward-backward"):
            p.error("unknown mode %r" % m)
    a.runner_list = [r.strip() for r in a.runners.split(",") if r.strip()]
    for r in a.runner_list:
        if r not in ALL_RUNNERS:
            p.error("unknown runner %r" % r)
    a.slimzoo_dtype_list = [d.strip() for d in a.slimzoo_dtypes.split(",") if d.strip()]
    return a


def log(msg):
    print("bench_all: " + msg, flush=True)


def run_streamed(cmd, env=None):
    """Run cmd with stdout streamed through (and kept); stderr passes through. Returns (rc, RESULT)."""
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
    except OSError as e:
        log("cannot start: %s" % e)
        return 127, None
    result = None
    for line in p.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith("RESULT "):
            try:
                result = json.loads(line[len("RESULT "):])
            except ValueError:
                pass
    rc = p.wait()
    log("  (rc %d, %.0f s wall)" % (rc, time.perf_counter() - t0))
    return rc, result


def slimzoo_bench_available(binary):
    if not os.path.exists(binary):
        return False
    try:
        r = subprocess.run([binary, "bench", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def ensure_slimzoo(args):
    if slimzoo_bench_available(args.slimzoo):
        return True, ""
    if args.no_build or os.path.abspath(args.slimzoo) != SLIMZOO:
        what = "has no working `bench` subcommand" if os.path.exists(args.slimzoo) else "does not exist"
        return False, "%s %s (not building it: %s)" % (
            os.path.relpath(args.slimzoo, REPO), what, "--no-build" if args.no_build else "--slimzoo given")
    log("building slimzoo: cargo build --release --bin slimzoo")
    r = subprocess.run(["cargo", "build", "--release", "--bin", "slimzoo"], cwd=REPO)
    if r.returncode != 0:
        return False, "cargo build --release failed (rc %d)" % r.returncode
    if not slimzoo_bench_available(args.slimzoo):
        return False, "target/release/slimzoo has no `bench` subcommand"
    return True, ""


def ensure_bench_venv():
    """tools/bootstrap.sh bench (idempotent: a stamp check when the venv is up to date)."""
    r = subprocess.run([os.path.join(HERE, "bootstrap.sh"), "bench"], cwd=REPO)
    if r.returncode != 0:
        return False, "tools/bootstrap.sh bench failed (rc %d)" % r.returncode
    return True, ""


def verify_ref_dir(arch):
    """The tools/tfref.py reference to check the ONNX export against: the benchmarked net's own
    (.cache/refs/<arch>) if made, else resnet_v2_50's; facenet_512 for facenet."""
    names = ["facenet_512"] if arch == FACENET else [arch, "resnet_v2_50"]
    for n in names:
        d = os.path.join(REPO, ".cache", "refs", n)
        if os.path.exists(os.path.join(d, "DONE")):
            return d, n
    return None, names[-1]


def run_onnx_verify(args, engines):
    """bench_onnx.py --verify-ref on the reference; returns (ok, one line for the report)."""
    refdir, name = verify_ref_dir(args.arch)
    if refdir is None:
        return False, ("ONNX export not checked against TF: no reference (make it with "
                       "`.venv/tf/bin/python tools/tfref.py refs %s`)" % name)
    arch = FACENET if args.arch == FACENET else name
    cmd = [BENCH_PYTHON, os.path.join(HERE, "bench_onnx.py"), "--arch", arch, "--verify-ref", refdir]
    if len(engines) == 1:
        cmd += ["--engine", engines[0]]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    rc, res = run_streamed(cmd)
    if not res or "verify_max_rel_err" not in res:
        return False, "ONNX export check against TF on %s: failed (rc %d)" % (name, rc)
    rel = res["verify_max_rel_err"]
    label = {"onnxruntime_f32": "ONNX Runtime f32", "openvino_f32": "OpenVINO f32", "openvino_bf16": "OpenVINO bf16",
             "pytorch_eager": "PyTorch eager f32"}
    parts = ", ".join("%s %.2g" % (label.get(k, k), rel[k]) for k in
                      ("onnxruntime_f32", "openvino_f32", "pytorch_eager", "openvino_bf16") if k in rel)
    ok = rc == 0 and res.get("verify_ok")
    return ok, ("ONNX export checked against TF's %s on the reference weights and input of %s (%s, batch %s): "
                "max |diff| / max |TF| = %s%s" % (res.get("verify_output", "output"), name, os.path.relpath(refdir, REPO),
                                                  res.get("verify_batch", "?"), parts,
                                                  "" if ok else " — FAILED (f32 engines must be within 1e-4)"))


def common_flags(args, batch, mode):
    f = ["--arch", args.arch, "--batch", str(batch), "--batches", str(args.batches),
         "--burn-in", str(args.burn_in), "--size", str(args.size), "--mode", mode]
    if args.threads:
        f += ["--threads", str(args.threads)]
    return f


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = set(line.split(":", 1)[1].split())
                    flags = " ".join(x for x in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
                                     if x in fl)
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = "%.1f GB" % (int(line.split()[1]) / 1024 / 1024)
                    break
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cpu_flags": flags, "os_cpu_count": os.cpu_count(),
            "nproc": sh(["nproc"]), "memory": mem, "kernel": platform.release(),
            "loadavg_start": " ".join("%.2f" % x for x in os.getloadavg())}


def software_versions(args, results):
    v = {}
    for r in results:
        for k, val in ((r.get("result") or {}).get("versions") or {}).items():
            v.setdefault(k, val)
    if "slimzoo" in args.runner_list and os.path.exists(args.slimzoo):
        v["slimzoo"] = sh([args.slimzoo, "--version"]) or "?"
    v["git"] = sh(["git", "-C", REPO, "describe", "--always", "--dirty"])
    v["rustc"] = sh(["rustc", "--version"]).replace("rustc ", "", 1)
    return v


def fmt_ratio(peer, mine):
    if not peer or not mine or not peer.get("mean") or not mine.get("mean"):
        return "—"
    return "%.2fx" % (mine["mean"] / peer["mean"])


def main(argv=None):
    args = parse_args(argv)
    machine = machine_info()
    log("%s, batch %s, size %d, modes %s, %d timed + %d warm-up steps, runners %s"
        % (args.arch, ",".join(map(str, args.batch_list)), args.size, ",".join(args.mode_list),
           args.batches, args.burn_in, ",".join(args.runner_list)))
    log("machine: %s, %s cores (nproc %s), load average %s"
        % (machine["cpu"], machine["os_cpu_count"], machine["nproc"], machine["loadavg_start"]))
    if os.getloadavg()[0] > 0.5:
        log("WARNING: the machine is not idle (load average %.2f): timings will be noisy"
            % os.getloadavg()[0])

    slimzoo_ok, slimzoo_why = False, ""
    if "slimzoo" in args.runner_list:
        slimzoo_ok, slimzoo_why = ensure_slimzoo(args)
        if not slimzoo_ok:
            log("slimzoo skipped: " + slimzoo_why)

    onnx_runners = [r for r in args.runner_list if r in ONNX_ENGINES]
    bench_ok, bench_why, verify_note, verify_ok = False, "", None, True
    if onnx_runners and "forward" in args.mode_list:
        bench_ok, bench_why = ensure_bench_venv()
        if not bench_ok:
            log("onnxruntime/openvino skipped: " + bench_why)
        elif not args.no_verify:
            verify_ok, verify_note = run_onnx_verify(args, [ONNX_ENGINES[r][0] for r in onnx_runners])
            log(verify_note)

    results = []   # dicts: runner, config, mode, batch, rc, result, na

    def record(runner, config, mode, batch, rc, result, why=None):
        na = (result or {}).get("unsupported") if rc == 0 else None
        results.append({"runner": runner, "config": config, "mode": mode, "batch": batch, "rc": rc,
                        "result": result if (rc == 0 and result and "mean" in result) else None,
                        "na": na, "why": why})

    extra = shlex.split(args.slimzoo_args)
    for batch in args.batch_list:
        for mode in args.mode_list:
            flags = common_flags(args, batch, mode)
            if "slimzoo" in args.runner_list:
                for dt in args.slimzoo_dtype_list:
                    cfg = "slimzoo %s" % dt
                    if not slimzoo_ok:
                        record("slimzoo", cfg, mode, batch, None, None)
                        continue
                    rc, res = run_streamed([args.slimzoo, "bench"] + flags + ["--dtype", dt] + extra)
                    record("slimzoo", cfg, mode, batch, rc, res)
            if "tensorflow" in args.runner_list:
                rc, res = run_streamed([TF_PYTHON, os.path.join(HERE, "bench_tf.py")] + flags)
                record("tensorflow", "TF %s f32 (NHWC)" % ("facenet" if args.arch == FACENET else "tf_slim"),
                       mode, batch, rc, res)
            if "pytorch" in args.runner_list:
                for layout, dt in TORCH_CONFIGS:
                    rc, res = run_streamed([TORCH_PYTHON, os.path.join(HERE, "bench_torch.py")] + flags
                                           + ["--layout", layout, "--dtype", dt])
                    record("pytorch", "PyTorch %s %s" % (layout, dt), mode, batch, rc, res)
            if mode != "forward":
                continue       # ONNX Runtime / OpenVINO: inference only
            hint = "latency" if batch == 1 else "throughput"
            for runner in onnx_runners:
                engine, name = ONNX_ENGINES[runner]
                for dt in ONNX_DTYPES:
                    cfg = "%s %s" % (name, dt) + (" %s" % hint.upper() if engine == "openvino" else "")
                    if not bench_ok:
                        record(runner, cfg, mode, batch, None, None, bench_why)
                        continue
                    rc, res = run_streamed([BENCH_PYTHON, os.path.join(HERE, "bench_onnx.py")] + flags
                                           + ["--engine", engine, "--dtype", dt, "--hint", hint])
                    record(runner, cfg, mode, batch, rc, res)

    machine["loadavg_end"] = " ".join("%.2f" % x for x in os.getloadavg())
    versions = software_versions(args, results)

    # ---- Markdown report ----
    lines = []
    title = ("facenet Inception-ResNet-v1" if args.arch == FACENET else args.arch)
    lines.append("## %s, %dx%d, %d timed steps after %d warm-up steps (%s)"
                 % (title, args.size, args.size, args.batches, args.burn_in,
                    datetime.now().strftime("%Y-%m-%d %H:%M")))
    lines.append("")
    latency = 1 in args.batch_list
    peers = [("TF f32", lambda r: r["runner"] == "tensorflow"),
             ("PyTorch channels_last f32", lambda r: r["config"] == "PyTorch channels_last f32"),
             ("PyTorch channels_last bf16", lambda r: r["config"] == "PyTorch channels_last bf16")]
    if "onnxruntime" in args.runner_list:
        peers.append(("ORT f32", lambda r: r["runner"] == "onnxruntime" and r["config"].startswith("ONNX Runtime f32")))
    if "openvino" in args.runner_list:
        peers.append(("OpenVINO f32", lambda r: r["runner"] == "openvino" and r["config"].startswith("OpenVINO f32")))
        peers.append(("OpenVINO bf16", lambda r: r["runner"] == "openvino" and r["config"].startswith("OpenVINO bf16")))
    head = ["runner / config", "mode", "batch", "s/batch (mean ± sd)", "images/s"] + (["ms/image"] if latency else [])
    head += ["slimzoo/%s" % n for n, _ in peers]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|")
    for batch in args.batch_list:
        for mode in args.mode_list:
            rows = [r for r in results if r["mode"] == mode and r["batch"] == batch]
            refs = [next((r["result"] for r in rows if pick(r)), None) for _, pick in peers]
            for r in rows:
                res = r["result"]
                if res is None:
                    if r["na"]:
                        why = "n/a: " + r["na"]
                    elif r["rc"] is None:
                        why = "not run: " + (r["why"] or slimzoo_why)
                    else:
                        why = "failed (rc %s)" % r["rc"]
                    cells = [r["config"], mode, str(batch), why] + [""] * (len(head) - 4)
                    lines.append("| " + " | ".join(cells) + " |")
                    continue
                ips = batch / res["mean"] if res["mean"] > 0 else 0.0
                prec = "%.3f ± %.3f" if res["mean"] >= 1 else "%.4f ± %.4f"
                cells = [r["config"], mode, str(batch), prec % (res["mean"], res["sd"]), "%.1f" % ips]
                if latency:
                    cells.append("%.1f" % (1000.0 * res["mean"] / batch))
                if r["runner"] == "slimzoo":
                    cells += [fmt_ratio(p, res) for p in refs]
                else:
                    cells += [""] * len(refs)
                lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Ratios are slimzoo s/batch ÷ peer s/batch of the same mode and batch, measured in this run "
                 "(< 1: slimzoo faster); the bf16 columns are the like-for-like ones for slimzoo bf16.")
    lines.append("Forward = inference (BN on moving statistics); forward-backward = training mode and the "
                 "gradients of l2_loss(output) w.r.t. all trainable variables. Random weights and inputs.")
    if onnx_runners and "forward" in args.mode_list:
        lines.append("ONNX Runtime and OpenVINO (forward only) run the PyTorch peer's net exported to ONNX (torch.onnx "
                     "dynamo, opset 18, NCHW). ONNX Runtime: CPU EP, ORT_ENABLE_ALL, intra-op threads = cores. "
                     "OpenVINO CPU: INFERENCE_PRECISION_HINT = the row's dtype; PERFORMANCE_HINT THROUGHPUT for "
                     "batch > 1 (batch split across its streams, one infer request each, wall time of the whole "
                     "batch), LATENCY at batch 1.")
        if verify_note:
            lines.append(verify_note + ".")
    lines.append("")
    lines.append("Machine: %s (%s), %s cores, nproc %s, %s RAM, Linux %s; load average %s at start, %s at end."
                 % (machine["cpu"], machine["cpu_flags"], machine["os_cpu_count"], machine["nproc"],
                    machine["memory"], machine["kernel"], machine["loadavg_start"], machine["loadavg_end"]))
    lines.append("Versions: " + ", ".join("%s %s" % (k, v) for k, v in sorted(versions.items()) if v))
    if args.threads:
        lines.append("Threads: %d for every runner." % args.threads)
    if args.slimzoo_args:
        lines.append("slimzoo extra arguments: `%s`" % args.slimzoo_args)
    print()
    print("\n".join(lines), flush=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()}, "machine": machine,
                       "versions": versions, "results": results}, f, indent=1, sort_keys=True, default=str)
    failed = [r for r in results if r["result"] is None and not r["na"]]
    return 1 if failed or not verify_ok else 0


if __name__ == "__main__":
    sys.exit(main())

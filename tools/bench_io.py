#!/usr/bin/env python3
"""bench_io.py: checkpoint read / convert speed and memory, TensorFlow's Python path vs slimzoo.

  bench_io.py read    CKPT... [--repeat 3]
  bench_io.py convert CKPT... [--repeat 3]
  bench_io.py both    CKPT... [--repeat 3]

CKPT is a checkpoint prefix (V2: PREFIX.index + PREFIX.data-*), a V1 single file, a directory holding
a `checkpoint` state file or a single checkpoint, or a tfref reference folder such as
.cache/refs/resnet_v2_50 (its v2/model.ckpt and v1/model.ckpt are both measured).

Cases, all in the same run, each in a fresh subprocess (so that its peak RSS is its own):
  tensorflow read     r = tf.train.load_checkpoint(CKPT); r.get_tensor(name) for every variable
                      (all arrays kept until the end of the repeat, as a loader would)
  tensorflow convert  the same, then conv kernels HWIO -> OIHW (transpose(3,2,0,1)) and dense kernels
                      [in,out] -> [out,in], each np.ascontiguousarray, then safetensors.numpy.save_file
                      to a temporary file
  slimzoo read        target/release/slimzoo bench --read CKPT --repeat N
  slimzoo convert     target/release/slimzoo bench --convert CKPT -o OUT --repeat N
The slimzoo commands print a final line 'RESULT {json}' with what, seconds, mb, mb_per_s, peak_rss_mb.

Reported: seconds = best of --repeat (each repeat starts from load_checkpoint / nothing), MB = sum of the
tensors' nbytes / 10^6 (decoded size, not file size), MB/s = MB / seconds, peak RSS = ru_maxrss of the
case's process (taken by the parent with wait4, identical for both runners; TF's includes the
`import tensorflow` baseline, shown separately). The checkpoint files are read once before the first
case so that every case starts with a warm page cache. The ratio TF/slimzoo is TF's seconds divided by
slimzoo's: how many times faster slimzoo is.

The parent needs only the standard library; the TF cases run under <repo>/.venv/tf/bin/python.
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TF_PYTHON = os.path.join(REPO, ".venv", "tf", "bin", "python")
SLIMZOO = os.path.join(REPO, "target", "release", "slimzoo")
MB = 1e6


# ----------------------------------------------------------------------------------------------
# worker: one measured TF case, run under the TF venv
# ----------------------------------------------------------------------------------------------

def _rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return None


def _is_kernel(name, rank):
    base = name.rsplit("/", 1)[-1]
    return base in ("weights", "kernel") and rank in (2, 4)


def worker(case, ckpt, repeat, out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import resource
    import numpy as np
    import tensorflow as tf
    baseline = _rss_mb("VmRSS")
    save_file = None
    if case == "convert":
        from safetensors.numpy import save_file
    times, total, n_tensors, skipped = [], 0, 0, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        reader = tf.train.load_checkpoint(ckpt)
        names = sorted(reader.get_variable_to_shape_map())
        arrays = {}
        total = 0
        for name in names:
            a = reader.get_tensor(name)
            if isinstance(a, np.ndarray) and a.dtype != object:
                total += a.nbytes
            elif isinstance(a, np.ndarray):
                total += sum(len(x) if isinstance(x, bytes) else 0 for x in a.ravel())
            elif isinstance(a, bytes):
                total += len(a)
            arrays[name] = a
        if case == "convert":
            tensors = {}
            skipped = []
            for name, a in arrays.items():
                a = np.asarray(a)
                if a.dtype == object or a.dtype.kind not in "fiub":
                    skipped.append(name)
                    continue
                if _is_kernel(name, a.ndim):
                    a = a.transpose(3, 2, 0, 1) if a.ndim == 4 else a.T
                tensors[name] = np.ascontiguousarray(a)
            save_file(tensors, out)
            del tensors
        seconds = time.perf_counter() - t0
        n_tensors = len(arrays)
        del arrays, reader
        times.append(seconds)
        if case == "convert" and os.path.exists(out):
            os.remove(out)
    best = min(times)
    res = {"what": case, "seconds": best, "all_seconds": times, "mb": total / MB,
           "mb_per_s": total / MB / best if best > 0 else None, "tensors": n_tensors,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "vmhwm_mb": _rss_mb("VmHWM"), "baseline_rss_mb": baseline, "tensorflow": tf.__version__}
    if case == "convert":
        res["skipped_non_numeric"] = skipped
    print("RESULT " + json.dumps(res, sort_keys=True), flush=True)


# ----------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------

def resolve(path):
    """Expand CKPT into a list of (label, checkpoint path, files) triples."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        subs = [os.path.join(path, d) for d in ("v2", "v1") if os.path.isdir(os.path.join(path, d))]
        if subs:
            out = []
            for s in subs:
                out.extend(resolve(s))
            return out
        state = os.path.join(path, "checkpoint")
        if os.path.exists(state):
            with open(state) as f:
                for line in f:
                    if line.startswith("model_checkpoint_path:"):
                        p = line.split(":", 1)[1].strip().strip('"')
                        return resolve(p if os.path.isabs(p) else os.path.join(path, p))
        idx = glob.glob(os.path.join(path, "*.index"))
        if len(idx) == 1:
            return resolve(idx[0][:-len(".index")])
        v1 = [p for p in glob.glob(os.path.join(path, "*.ckpt")) if os.path.isfile(p)]
        if len(v1) == 1:
            return resolve(v1[0])
        raise SystemExit("bench_io: cannot find a single checkpoint in %s" % path)
    if os.path.exists(path + ".index"):
        files = [path + ".index"] + sorted(glob.glob(glob.escape(path) + ".data-*"))
        return [("%s (V2)" % os.path.relpath(path, REPO), path, files)]
    if os.path.isfile(path):
        return [("%s (V1)" % os.path.relpath(path, REPO), path, [path])]
    raise SystemExit("bench_io: no checkpoint at %s" % path)


def warm(files):
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            while True:
                b = fh.read(1 << 24)
                if not b:
                    break
                n += len(b)
    return n


def run_measured(cmd, env=None):
    """Run cmd; return (rc, stdout text, child's ru_maxrss in MB, wall seconds)."""
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=env, text=True)
        err_chunks = []
        # stderr is small (warnings); read it fully, then reap with wait4 for the rusage
        err_chunks.append(p.stderr.read())
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    return p.returncode, text, "".join(err_chunks), ru.ru_maxrss / 1024.0, wall


def last_result(text):
    for line in reversed(text.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None


def slimzoo_has_bench(binary):
    if not os.path.exists(binary):
        return False, "%s not built" % os.path.relpath(binary, REPO)
    try:
        r = subprocess.run([binary, "bench", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if r.returncode != 0:
        return False, "`slimzoo bench` not available (rc %d: %s)" % (
            r.returncode, (r.stderr or r.stdout).strip().splitlines()[:1])
    return True, ""


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--_worker":
        w = argparse.ArgumentParser()
        w.add_argument("--_worker", dest="case", choices=("read", "convert"))
        w.add_argument("ckpt")
        w.add_argument("--repeat", type=int, default=3)
        w.add_argument("--out")
        a = w.parse_args(argv)
        worker(a.case, a.ckpt, a.repeat, a.out)
        return 0
    p.add_argument("what", choices=("read", "convert", "both"))
    p.add_argument("ckpt", nargs="+", help="checkpoint prefix, V1 file, or folder")
    p.add_argument("--repeat", type=int, default=3, help="repeats per case; the best is reported")
    p.add_argument("--slimzoo", default=SLIMZOO, help="slimzoo binary (default target/release/slimzoo)")
    p.add_argument("--no-slimzoo", action="store_true", help="measure the TensorFlow side only")
    p.add_argument("--no-tf", action="store_true", help="measure the slimzoo side only")
    p.add_argument("--json", help="also write all results to this JSON file")
    a = p.parse_args(argv)
    if a.repeat < 1:
        p.error("--repeat must be >= 1")
    if not a.no_tf and not os.path.exists(TF_PYTHON):
        sys.exit("bench_io: %s is missing; run tools/bootstrap.sh tf" % TF_PYTHON)

    cases = ["read", "convert"] if a.what == "both" else [a.what]
    use_slimzoo = not a.no_slimzoo
    why = ""
    if use_slimzoo:
        ok, why = slimzoo_has_bench(a.slimzoo)
        if not ok:
            print("bench_io: slimzoo side skipped: %s" % why, flush=True)
            use_slimzoo = False
    ckpts = []
    for c in a.ckpt:
        ckpts.extend(resolve(c))

    rows, records = [], []
    tmpdir = tempfile.mkdtemp(prefix="slimzoo-bench-io-")
    try:
        for label, ckpt, files in ckpts:
            nbytes = warm(files)
            print("bench_io: %s: %d file(s), %.1f MB on disk (page cache warmed)"
                  % (label, len(files), nbytes / MB), flush=True)
            for case in cases:
                per = {}
                runners = ([] if a.no_tf else ["tensorflow"]) + (["slimzoo"] if use_slimzoo else [])
                for runner in runners:
                    out = os.path.join(tmpdir, "%s-%s.safetensors" % (runner, case))
                    if runner == "tensorflow":
                        cmd = [TF_PYTHON, os.path.abspath(__file__), "--_worker", case, ckpt,
                               "--repeat", str(a.repeat), "--out", out]
                    else:
                        cmd = [a.slimzoo, "bench", "--" + case, ckpt, "--repeat", str(a.repeat)]
                        if case == "convert":
                            cmd += ["-o", out]
                    print("bench_io: $ %s" % " ".join(shlex.quote(x) for x in cmd), flush=True)
                    rc, text, err, maxrss, wall = run_measured(cmd)
                    res = last_result(text)
                    if os.path.exists(out):
                        os.remove(out)
                    rec = {"checkpoint": label, "path": ckpt, "runner": runner, "case": case, "rc": rc,
                           "wall_s": wall, "child_maxrss_mb": maxrss, "result": res, "command": cmd}
                    records.append(rec)
                    if rc != 0 or res is None:
                        tail = "\n".join((err or text).strip().splitlines()[-5:])
                        print("bench_io: %s %s failed (rc %d)\n%s" % (runner, case, rc, tail), flush=True)
                        continue
                    per[runner] = rec
                    print("bench_io:   %s %s: best %.3f s, %.1f MB, %.1f MB/s, peak RSS %.0f MB"
                          % (runner, case, res["seconds"], res["mb"], res["mb"] / res["seconds"], maxrss),
                          flush=True)
                rows.append((label, case, per))
    finally:
        for f in glob.glob(os.path.join(tmpdir, "*")):
            os.remove(f)
        os.rmdir(tmpdir)

    # table
    print()
    print("| checkpoint | runner | case | seconds (best of %d) | MB | MB/s | peak RSS MB | TF/slimzoo |"
          % a.repeat)
    print("|---|---|---|---:|---:|---:|---:|---:|")
    notes, baselines = [], []
    for label, case, per in rows:
        tf_rec, sz_rec = per.get("tensorflow"), per.get("slimzoo")
        ratio = None
        if tf_rec and sz_rec and sz_rec["result"]["seconds"] > 0:
            ratio = tf_rec["result"]["seconds"] / sz_rec["result"]["seconds"]
        for runner in ("tensorflow", "slimzoo"):
            rec = per.get(runner)
            if rec is None:
                if runner == "slimzoo" and not use_slimzoo:
                    continue
                if runner == "tensorflow" and a.no_tf:
                    continue
                print("| %s | %s | %s | failed | | | | |" % (label, runner, case))
                continue
            r = rec["result"]
            mbps = r["mb"] / r["seconds"] if r["seconds"] > 0 else None
            print("| %s | %s | %s | %.3f | %.1f | %s | %.0f | %s |"
                  % (label, runner, case, r["seconds"], r["mb"], fmt(mbps, ".0f"), rec["child_maxrss_mb"],
                     ("%.2fx" % ratio) if (runner == "slimzoo" and ratio) else ""))
        if tf_rec and tf_rec["result"].get("baseline_rss_mb"):
            baselines.append(tf_rec["result"]["baseline_rss_mb"])
        if tf_rec and sz_rec:
            m1, m2 = tf_rec["result"]["mb"], sz_rec["result"].get("mb") or 0
            if m1 and abs(m1 - m2) / m1 > 0.01:
                notes.append("%s %s: the runners count different sizes (TF %.1f MB, slimzoo %.1f MB)"
                             % (label, case, m1, m2))
    if baselines:
        notes.insert(0, "TF's peak RSS includes its process's RSS right after `import tensorflow`: "
                        "%.0f-%.0f MB here" % (min(baselines), max(baselines)))
    if not use_slimzoo and not a.no_slimzoo:
        notes.append("slimzoo not measured: %s" % why)
    if notes:
        print()
        for n in notes:
            print("- " + n)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f, indent=1, sort_keys=True)
    ok = all(r["rc"] == 0 and r["result"] for r in records)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

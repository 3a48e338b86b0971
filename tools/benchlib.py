"""benchlib.py: what the seed-protocol peer benchmarks share (standard library only, so that both
the TF venv's and the torch venv's Python import it): venv re-exec, the common arguments and the
timing loop of TF's time_tensorflow_run, printed in the seed's format."""
import argparse
import math
import os
import sys
import time
from datetime import datetime


def reexec_in_venv(script, venv_python, env_flag, importable, hint):
    """Re-runs `script` under `venv_python` unless every module in `importable` imports here."""
    import importlib.util
    if all(importlib.util.find_spec(m) is not None for m in importable):
        return
    if os.environ.get(env_flag) or not os.path.exists(venv_python):
        sys.exit("%s: %s not importable here and %s is missing; run %s"
                 % (os.path.basename(script), "/".join(importable), venv_python, hint))
    os.environ[env_flag] = "1"
    os.execv(venv_python, [venv_python, os.path.abspath(script)] + sys.argv[1:])


def default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def seed_parser(doc, archs, threads_help):
    """An argument parser with the seed benchmark's options (finish with `seed_args`)."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet_v2_152", choices=archs)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=100, help="timed steps (num_batches)")
    p.add_argument("--burn-in", type=int, default=10, help="untimed warm-up steps (num_steps_burn_in)")
    p.add_argument("--size", type=int, default=None, help="input height = width (224 resnet, 160 facenet)")
    p.add_argument("--mode", default="forward", choices=("forward", "forward-backward"))
    p.add_argument("--threads", type=int, default=None, help=threads_help)
    return p


def seed_args(p, argv, facenet):
    """Parses and checks the seed options; --size defaults to 160 for facenet, else 224."""
    a = p.parse_args(argv)
    if a.size is None:
        a.size = 160 if a.arch == facenet else 224
    if a.threads is None:
        a.threads = default_threads()
    for k in ("batch", "batches", "size", "threads"):
        if getattr(a, k) < 1:
            p.error("--%s must be >= 1" % k)
    if a.burn_in < 0:
        p.error("--burn-in must be >= 0")
    return a


def time_steps(step, info_string, num_batches, burn_in):
    """TF's time_tensorflow_run: burn_in untimed calls of step(), then num_batches timed ones,
    every 10th printed; returns (mean, sd, last result) and prints
    `<time>: <info_string> across N steps, MEAN +/- SD sec / batch`."""
    total = total_sq = 0.0
    last = None
    for i in range(num_batches + burn_in):
        start = time.perf_counter()
        last = step()
        duration = time.perf_counter() - start
        if i >= burn_in:
            s = i - burn_in
            if not s % 10:
                print("%s: step %d, duration = %.3f" % (datetime.now(), s, duration), flush=True)
            total += duration
            total_sq += duration * duration
    mn = total / num_batches
    sd = math.sqrt(max(total_sq / num_batches - mn * mn, 0.0))
    print("%s: %s across %d steps, %.3f +/- %.3f sec / batch"
          % (datetime.now(), info_string, num_batches, mn, sd), flush=True)
    return mn, sd, last

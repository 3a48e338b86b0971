#!/usr/bin/env python3
"""bench_faces.py: the peers of slimzoo's face detection and photos->embeddings benchmark, in one run.

Runners (each prints TF's time_tensorflow_run lines and one 'RESULT {json}' line per measurement):
  slimzoo          target/release/slimzoo bench --detect PHOTOS (detection, ms/image) and bench --detect PHOTOS
                   --pipeline MODEL (compare.py's photos -> embeddings, images/s), same photos and parameters
  tf-detect        facenet 1.0.5's own detect_face (src/align/detect_face.py, unchanged, TF 2.21 graph mode,
                   Session with intra/inter-op threads = --threads), minsize 20, thresholds [0.6, 0.7, 0.7],
                   factor 0.709, on one photo per size: 1920x1080, 1280x720, 960x540. ms/image.
  torch-mtcnn      facenet-pytorch 2.6.0's MTCNN (its own weights from the wheel; a re-implementation, see
                   /work/shared/reference/environment.md) with the same parameters, keep_all=True,
                   post_process=False, torch.set_num_threads(--threads), `mtcnn.detect(PIL image)`: boxes,
                   probabilities and landmarks (no crops), as detect_face returns. ms/image.
  tf-pipeline      photos -> embeddings as facenet's compare.py does it, with the sessions made once: for each
                   photo misc.imread(mode='RGB') (Pillow), detect_face, the first box +- margin/2 (44) as int32,
                   misc.imresize(crop, (160, 160), 'bilinear') (Pillow), facenet.prewhiten; then one
                   sess.run of embeddings:0 over all crops (facenet model from tools/tfref.py refs facenet_512,
                   random weights: the speed does not depend on them). images/s over the photo list.
The same photo files are used by every runner: .cache/faces/photos (tools/faceref.py photos): the
canvas_1080/720/540 composites for detection; for the pipeline every photo of the set that has a face.

The runners live in two venvs: tf-* run under .venv/tf (tools/bootstrap.sh tf), torch-mtcnn under .venv/bench
(torch 2.13, torchvision, facenet-pytorch --no-deps). Without --runner this script runs each runner as a child
process under its venv and repeats the RESULT lines at the end ("all results"). A runner whose venv is
missing is reported as skipped.

  bench_faces.py                                     # every runner, --batches 20 --burn-in 3
  bench_faces.py --runner tf-detect --batches 3 --burn-in 1     # smoke run of one runner
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

VENVS = {"tf-detect": ".venv/tf", "tf-pipeline": ".venv/tf", "torch-mtcnn": ".venv/bench"}
SLIMZOO = os.path.join(REPO, "target", "release", "slimzoo")
SIZES = (("1920x1080", "canvas_1080.png"), ("1280x720", "canvas_720.png"), ("960x540", "canvas_540.png"))
DEFAULT_PHOTOS = os.path.join(REPO, ".cache", "faces", "photos")
DEFAULT_MODEL = os.path.join(REPO, ".cache", "refs", "facenet_512", "20990101-000000")
MINSIZE, THRESHOLD, FACTOR, MARGIN, IMAGE_SIZE = 20, [0.6, 0.7, 0.7], 0.709, 44, 160


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--runner", choices=sorted(VENVS) + ["slimzoo"], help="run one runner in this process (default: all, "
                   "each in its venv)")
    p.add_argument("--batches", type=int, default=20, help="timed runs per measurement (default %(default)s)")
    p.add_argument("--burn-in", type=int, default=3, help="untimed warm-up runs (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="threads of every runner (default %(default)s)")
    p.add_argument("--photos", default=DEFAULT_PHOTOS, help="photo set (default %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="facenet model folder for tf-pipeline")
    p.add_argument("--slimzoo", default=SLIMZOO, help="slimzoo binary (default %(default)s; built when missing)")
    p.add_argument("--sizes", default=",".join(s for s, _ in SIZES),
                   help="detection sizes to run (default %(default)s)")
    a = p.parse_args(argv)
    if a.batches < 1 or a.burn_in < 0 or a.threads < 1:
        p.error("--batches >= 1, --burn-in >= 0, --threads >= 1")
    return a


def photo_paths(args):
    want = set(args.sizes.split(","))
    out = []
    for size, name in SIZES:
        if size in want:
            p = os.path.join(args.photos, name)
            if not os.path.exists(p):
                sys.exit("bench_faces: %s is missing: run tools/faceref.py photos --out %s" % (p, args.photos))
            out.append((size, p))
    return out


def result_line(res):
    print("RESULT " + json.dumps(res, sort_keys=True), flush=True)


def common(args, runner):
    return {"runner": runner, "threads": args.threads, "batches": args.batches, "burn_in": args.burn_in,
            "python": platform.python_version()}


# ------------------------------------------------------------------------------------------------
def run_tf_detect(args):
    from facenetsrc import load_detect_face, misc_imread, tf, facenet_version
    import tfcompat
    df = load_detect_face()
    g = tf.Graph()
    cfg = tf.ConfigProto(intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=args.threads)
    with g.as_default():
        sess = tf.Session(graph=g, config=cfg)
        with sess.as_default():
            pnet, rnet, onet = df.create_mtcnn(sess, None)
    import cv2
    for size, path in photo_paths(args):
        img = misc_imread(path, mode="RGB")
        mn, sd, last = benchlib.time_steps(lambda: df.detect_face(img, MINSIZE, pnet, rnet, onet, THRESHOLD, FACTOR),
                                           "tf-detect %s" % size, args.batches, args.burn_in)
        res = common(args, "tf-detect")
        res.update({"size": size, "photo": os.path.basename(path), "mean": mn, "sd": sd, "ms_per_image": mn * 1e3,
                    "faces": int(last[0].shape[0]), "versions": {"tensorflow": tfcompat.TF_VERSION,
                                                                  "opencv": cv2.__version__, "facenet": facenet_version()}})
        result_line(res)
    sess.close()


def run_torch_mtcnn(args):
    import torch
    from facenet_pytorch import MTCNN
    from PIL import Image
    import importlib.metadata as md
    torch.set_num_threads(args.threads)
    mtcnn = MTCNN(image_size=IMAGE_SIZE, margin=0, min_face_size=MINSIZE, thresholds=THRESHOLD, factor=FACTOR,
                  post_process=False, keep_all=True, device="cpu")
    for size, path in photo_paths(args):
        img = Image.open(path).convert("RGB")
        with torch.inference_mode():
            mn, sd, last = benchlib.time_steps(lambda: mtcnn.detect(img, landmarks=True),
                                               "torch-mtcnn %s" % size, args.batches, args.burn_in)
        boxes = last[0]
        res = common(args, "torch-mtcnn")
        res.update({"size": size, "photo": os.path.basename(path), "mean": mn, "sd": sd, "ms_per_image": mn * 1e3,
                    "faces": 0 if boxes is None else int(len(boxes)),
                    "versions": {"torch": torch.__version__, "facenet_pytorch": md.version("facenet-pytorch")}})
        result_line(res)


def run_tf_pipeline(args):
    import numpy as np
    from facenetsrc import compare_py_box, facenet_functions, load_detect_face, misc_imread, misc_imresize, tf
    import contextlib
    import io
    import tfcompat
    df = load_detect_face()
    fn = facenet_functions()
    if not os.path.isdir(args.model):
        sys.exit("bench_faces: no model %s: run tools/tfref.py refs facenet_512" % args.model)
    with open(os.path.join(args.photos, "photos.json")) as f:
        names = [p["name"] for p in json.load(f)["photos"]]
    paths = [os.path.join(args.photos, n) for n in names]
    cfg = tf.ConfigProto(intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=args.threads)
    g1 = tf.Graph()
    with g1.as_default():
        s1 = tf.Session(graph=g1, config=cfg)
        with s1.as_default():
            pnet, rnet, onet = df.create_mtcnn(s1, None)
    g2 = tf.Graph()
    with g2.as_default():
        s2 = tf.Session(graph=g2, config=cfg)
        with s2.as_default():
            with contextlib.redirect_stdout(io.StringIO()):
                fn.load_model(args.model)
        x = g2.get_tensor_by_name("input:0")
        emb = g2.get_tensor_by_name("embeddings:0")
        phase = g2.get_tensor_by_name("phase_train:0")

    # keep the photos that have a face (compare.py drops the others)
    def align_one(path):
        img = misc_imread(path, mode="RGB")
        boxes, _ = df.detect_face(img, MINSIZE, pnet, rnet, onet, THRESHOLD, FACTOR)
        if len(boxes) < 1:
            return None
        _, bb = compare_py_box(img, boxes, MARGIN)
        aligned = misc_imresize(img[bb[1]:bb[3], bb[0]:bb[2], :], (IMAGE_SIZE, IMAGE_SIZE), interp="bilinear")
        return fn.prewhiten(aligned)

    paths = [p for p in paths if align_one(p) is not None]

    def step():
        crops = [align_one(p) for p in paths]
        return s2.run(emb, {x: np.stack(crops), phase: False})

    mn, sd, last = benchlib.time_steps(step, "tf-pipeline %d photos" % len(paths), args.batches, args.burn_in)
    res = common(args, "tf-pipeline")
    res.update({"photos": len(paths), "pixels_mean": None, "mean": mn, "sd": sd,
                "images_per_s": len(paths) / mn, "embedding_shape": list(last.shape),
                "versions": {"tensorflow": tfcompat.TF_VERSION}})
    from PIL import Image
    res["pixels_mean"] = int(np.mean([np.prod(Image.open(p).size) for p in paths]))
    res["photo_names"] = [os.path.basename(p) for p in paths]
    result_line(res)
    s1.close()
    s2.close()


def run_slimzoo(args):
    """slimzoo's own runners, through `slimzoo bench --detect` (and `--pipeline`), same photos and
    protocol; the pipeline takes the photos in which slimzoo finds a face, as tf-pipeline keeps those
    in which detect_face finds one."""
    exe = args.slimzoo
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "slimzoo"], cwd=REPO, check=True)
    common_args = ["--batches", str(args.batches), "--burn-in", str(args.burn_in), "--threads", str(args.threads)]
    detect = [exe, "bench", "--detect"] + [p for _, p in photo_paths(args)] + common_args
    subprocess.run(detect, check=True)
    with open(os.path.join(args.photos, "photos.json")) as f:
        paths = [os.path.join(args.photos, p["name"]) for p in json.load(f)["photos"]]
    found = subprocess.run([exe, "detect", "--json"] + paths, check=True, capture_output=True, text=True).stdout
    with_faces = [json.loads(line)["file"] for line in found.splitlines() if json.loads(line)["faces"]]
    pipeline = [exe, "bench", "--detect"] + with_faces + ["--pipeline", args.model] + common_args
    subprocess.run(pipeline, check=True)


RUNNERS = {"tf-detect": run_tf_detect, "torch-mtcnn": run_torch_mtcnn, "tf-pipeline": run_tf_pipeline}


def summary(results):
    """A Markdown table of this run: detection ms/image per size, pipeline images/s, slimzoo/peer ratios."""
    det = {(r["runner"], r.get("size")): r["ms_per_image"] for r in results if "ms_per_image" in r}
    pipe = {r["runner"]: r["images_per_s"] for r in results if "images_per_s" in r}
    names = {"slimzoo-detect": "slimzoo", "tf-detect": "facenet TF detect_face", "torch-mtcnn": "facenet-pytorch MTCNN"}
    sizes = [s for s, _ in SIZES]
    print("\n| detection, ms/image | " + " | ".join(sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for runner, label in names.items():
        cells = ["%.1f" % det[(runner, s)] if (runner, s) in det else "—" for s in sizes]
        print("| %s | %s |" % (label, " | ".join(cells)))
    for peer in ("tf-detect", "torch-mtcnn"):
        cells = ["%.2fx" % (det[("slimzoo-detect", s)] / det[(peer, s)]) if ("slimzoo-detect", s) in det and (peer, s) in det
                 else "—" for s in sizes]
        print("| slimzoo / %s | %s |" % (names[peer], " | ".join(cells)))
    if pipe:
        print("\n| photos → embeddings (compare.py) | images/s |\n|---|---:|")
        for runner, label in (("slimzoo-pipeline", "slimzoo"), ("tf-pipeline", "facenet TF")):
            if runner in pipe:
                print("| %s | %.2f |" % (label, pipe[runner]))
        if "slimzoo-pipeline" in pipe and "tf-pipeline" in pipe:
            print("| slimzoo / facenet TF | %.2fx |" % (pipe["slimzoo-pipeline"] / pipe["tf-pipeline"]))
    print("\n(ratios < 1 for detection and > 1 for the pipeline: slimzoo is faster)")


def main(argv=None):
    args = parse_args(argv)
    if args.runner == "slimzoo":
        run_slimzoo(args)
        return 0
    if args.runner:
        importable = ("torch", "facenet_pytorch") if args.runner == "torch-mtcnn" else ("tensorflow", "cv2")
        benchlib.reexec_in_venv(__file__, os.path.join(REPO, VENVS[args.runner], "bin", "python"),
                                "SLIMZOO_BENCH_FACES_REEXEC", importable, "tools/bootstrap.sh")
        RUNNERS[args.runner](args)
        return 0
    results, skipped = [], []
    passthrough = ["--batches", str(args.batches), "--burn-in", str(args.burn_in), "--threads", str(args.threads),
                   "--photos", args.photos, "--model", args.model, "--sizes", args.sizes, "--slimzoo", args.slimzoo]
    for runner in ("slimzoo", "tf-detect", "torch-mtcnn", "tf-pipeline"):
        py = sys.executable if runner == "slimzoo" else os.path.join(REPO, VENVS[runner], "bin", "python")
        if not os.path.exists(py):
            skipped.append({"runner": runner, "skipped": "%s is missing" % py})
            print("bench_faces: %s skipped (%s is missing)" % (runner, py), flush=True)
            continue
        t0 = time.time()
        proc = subprocess.Popen([py, os.path.abspath(__file__), "--runner", runner] + passthrough,
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        for line in proc.stdout:
            sys.stdout.write(line)
            if line.startswith("RESULT "):
                results.append(json.loads(line[len("RESULT "):]))
        rc = proc.wait()
        if rc != 0:
            skipped.append({"runner": runner, "failed": rc})
            print("bench_faces: %s exited %d" % (runner, rc), flush=True)
        print("bench_faces: %s took %.1f s" % (runner, time.time() - t0), flush=True)
    print("bench_faces: all results")
    for r in results + skipped:
        result_line(r)
    summary(results)
    return 1 if any("failed" in s for s in skipped) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Write src/data/imagenet_1001.txt: the 1001 class names of slim's ImageNet checkpoints.

Line 0 is `background`; lines 1..1000 are the ImageNet-1k (ILSVRC-2012) class names in sorted-synset
(WordNet ID) order, n01440764 "tench" first and n15075141 "toilet tissue" last. That is the order of
slim's 1001-class ResNet v2 / Inception checkpoints (class k of the checkpoint = line k).

Source of the names: torchvision's `torchvision/models/_meta.py`, list `_IMAGENET_CATEGORIES`
(1000 human-readable names in the standard class-index order, which is sorted-WNID order), read from
the torchvision wheel on PyPI. The wheel is fetched with `pip download --no-deps` into a temporary
folder (nothing is installed) unless --wheel names one already on disk. The list is parsed with
`ast`, not imported. That list spells out names that are ambiguous in the raw synset words
("crane bird" n02012849 vs "crane" n03126707, "maillot" vs "maillot tank suit"); the line number
is the identity in any case.

Usage:
    .venv/tf/bin/python tools/make_imagenet_labels.py                 # pip download torchvision==0.29.2
    .venv/tf/bin/python tools/make_imagenet_labels.py --wheel X.whl   # use a wheel already on disk
"""
import argparse
import ast
import glob
import os
import subprocess
import sys
import tempfile
import zipfile

TORCHVISION_VERSION = "0.29.2"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "src", "data", "imagenet_1001.txt")


def read_categories(wheel):
    with zipfile.ZipFile(wheel) as z:
        src = z.read("torchvision/models/_meta.py").decode("utf-8")
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_IMAGENET_CATEGORIES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit("make_imagenet_labels: _IMAGENET_CATEGORIES not found in %s" % wheel)


def download_wheel(dest, version):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--quiet", "torchvision==%s" % version, "-d", dest]
    subprocess.run(cmd, check=True)
    wheels = glob.glob(os.path.join(dest, "torchvision-*.whl"))
    if len(wheels) != 1:
        raise SystemExit("make_imagenet_labels: expected one torchvision wheel in %s, found %r" % (dest, wheels))
    return wheels[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--wheel", help="a torchvision wheel already on disk (default: pip download one)")
    ap.add_argument("--torchvision-version", default=TORCHVISION_VERSION,
                    help="version to pip download (default %(default)s)")
    ap.add_argument("-o", "--out", default=DEFAULT_OUT, help="output file (default %(default)s)")
    args = ap.parse_args()

    if args.wheel:
        cats = read_categories(args.wheel)
        source = os.path.basename(args.wheel)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = download_wheel(tmp, args.torchvision_version)
            cats = read_categories(wheel)
            source = os.path.basename(wheel)
    if len(cats) != 1000 or cats[0] != "tench" or cats[-1] != "toilet tissue":
        raise SystemExit("make_imagenet_labels: unexpected list (len %d, first %r, last %r)"
                         % (len(cats), cats[0], cats[-1]))
    for c in cats:
        if not c or "\n" in c or c != c.strip():
            raise SystemExit("make_imagenet_labels: bad class name %r" % c)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("background\n")
        for c in cats:
            f.write(c + "\n")
    os.replace(tmp, args.out)
    print("wrote %s: 1001 lines (background + 1000 names from %s torchvision/models/_meta.py)"
          % (args.out, source))


if __name__ == "__main__":
    main()

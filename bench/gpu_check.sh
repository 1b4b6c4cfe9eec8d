#!/usr/bin/env bash
# The GPU path on a GPU machine, in one call of <= 8 minutes:
#   OUT=/tmp/gpu-out bash bench/gpu_check.sh
# then read $OUT/gpu_check.json (also printed).
#
# Where python3 already has torch with CUDA (the machines lent to this project do, and reach no
# network), it runs with that python and downloads nothing: the packages it lacks (datasets and its
# dill and multiprocess there) come from the wheels in $WHEELS (default .whl), which
# bench/gpu_wheels.sh writes on a machine that reaches PyPI; they are installed with --no-index into
# a scratch folder put first on PYTHONPATH, with this checkout. No virtual environment: one made
# from a python that is itself a venv's would not see that venv's torch.
# Elsewhere (PyPI reachable, no CUDA torch yet) it makes a virtual environment with PyPI's default
# torch wheel (the CUDA build on Linux x86_64, not requirements-cpu.txt's CPU pin), this package and
# onnxruntime-gpu if it installs.
#
# PYTHON picks the interpreter (default python3); DEVICE=cpu with EXTRA="--tiny" is the CPU-safe
# run the tests make of this script.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/gpu-check-out}
WHEELS=${WHEELS:-$REPO/.whl}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
VENV=${VENV:-/tmp/supernet-gpu-venv}
mkdir -p "$OUT"
start=$(date +%s)
log() { echo "[gpu_check.sh +$(($(date +%s) - start))s] $*"; }

usable() {  # $1 has torch, and torch sees a GPU unless DEVICE=cpu
    "$1" -c "import sys, torch; sys.exit(0 if '$DEVICE' == 'cpu' or torch.cuda.is_available() else 1)" 2>/dev/null
}

# Every module the check imports, imported before any of it runs: one line naming what fails.
missing_modules() {
    "$1" -c '
import importlib
failed = []
for name in ["torch", "transformers", "datasets", "accelerate", "einops", "safetensors", "yaml", "onnx",
             "onnxscript", "onnxruntime", "numpy", "tqdm"]:
    try:
        importlib.import_module(name)
    except Exception as err:  # a missing module, or one that needs another version of its own needs
        failed.append(f"{name} ({type(err).__name__}: {(str(err).splitlines() or [repr(err)])[0]})")
print("; ".join(failed))' 2>/dev/null
}

if usable "$PYTHON"; then
    PY=$PYTHON
    log "$PY has torch $("$PY" -c 'import torch; print(torch.__version__)'): using it, nothing downloaded"
    SITE=$(mktemp -d /tmp/supernet-site.XXXXXX)
    trap 'rm -rf "$SITE"' EXIT
    # Only when something is missing: the wheels are the GPU machine's (its Python), and an
    # interpreter that already has everything (a CPU-safe run here) need not take them.
    if [ -n "$(missing_modules "$PY")" ] && compgen -G "$WHEELS/*.whl" >/dev/null; then
        log "installing $(compgen -G "$WHEELS/*.whl" | wc -l) wheels from $WHEELS (no index) ..."
        "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile \
            --no-cache-dir --target "$SITE" "$WHEELS"/*.whl
    fi
    export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
else
    log "$PYTHON has no torch with CUDA: making $VENV from PyPI ..."
    "$PYTHON" -m venv "$VENV"
    PY=$VENV/bin/python
    PIP="$PY -m pip --quiet --disable-pip-version-check"
    $PIP install --upgrade pip || log "pip could not be upgraded: going on with $($PIP --version)"
    if ! usable "$PY"; then
        log "installing torch (CUDA build from PyPI) ..."
        $PIP install torch
    fi
    log "installing the package ..."
    # torch is already satisfied, so this adds only the package's other dependencies.
    $PIP install -e .
    # onnxruntime and onnxruntime-gpu are one module: swap the CPU build out, and back in on failure.
    log "installing onnxruntime-gpu ..."
    if $PIP uninstall -y onnxruntime && $PIP install onnxruntime-gpu; then
        log "onnxruntime-gpu installed"
    else
        log "onnxruntime-gpu did not install: keeping the CPU onnxruntime"
        $PIP install onnxruntime
    fi
fi

missing=$(missing_modules "$PY")
if [ -n "$missing" ]; then
    echo "error: $PY cannot import $missing; where PyPI is reachable, 'bash bench/gpu_wheels.sh' writes wheels for what is missing to .whl (PACKAGES='name==version ...' for other versions): bring that folder along" >&2
    exit 2
fi
"$PY" -c '
import onnxruntime, torch, transformers
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
print("torch", torch.__version__, "cuda", torch.version.cuda, gpu, "| transformers", transformers.__version__,
      "| onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())'
log "running bench/gpu_check.py ..."
# shellcheck disable=SC2086  # EXTRA holds several arguments
HF_HUB_OFFLINE=1 "$PY" bench/gpu_check.py --device "$DEVICE" $EXTRA --out "$OUT/gpu_check.json"
log "done: $OUT/gpu_check.json"

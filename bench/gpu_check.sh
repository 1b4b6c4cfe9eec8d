#!/usr/bin/env bash
# The GPU path on a fresh GPU machine (python3 + pip, PyPI reachable), in one call of <= 8 minutes:
#   bash bench/gpu_check.sh
# Installs a virtual environment with PyPI's default torch wheel (the CUDA build on Linux x86_64,
# not requirements-cpu.txt's CPU pin), this package, and onnxruntime-gpu if it installs; then
# runs bench/gpu_check.py, which writes $OUT/gpu_check.json (and prints it).
# Reuses a CUDA torch the system python already has (no download) when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
VENV=${VENV:-/tmp/supernet-gpu-venv}
mkdir -p "$OUT"
start=$(date +%s)
log() { echo "[gpu_check.sh +$(($(date +%s) - start))s] $*"; }

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    log "system python has a CUDA torch: reusing it"
    python3 -m venv --system-site-packages "$VENV"
else
    python3 -m venv "$VENV"
fi
PIP="$VENV/bin/pip --quiet --disable-pip-version-check"
$PIP install --upgrade pip
if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
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
"$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
log "running bench/gpu_check.py ..."
HF_HUB_OFFLINE=1 "$VENV/bin/python" bench/gpu_check.py --device cuda --out "$OUT/gpu_check.json"
log "done: $OUT/gpu_check.json"

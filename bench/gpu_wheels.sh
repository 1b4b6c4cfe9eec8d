#!/usr/bin/env bash
# Where PyPI is reachable: the wheels bench/gpu_check.sh installs on a GPU machine that reaches no
# network. Such a machine's python3 (3.12 on the ones lent to this project) has torch, transformers,
# accelerate, onnx, onnxruntime, pyarrow, pandas ... but not datasets, nor datasets' dill and
# multiprocess. This fetches those three, at the versions of this checkout's .venv (PACKAGES to
# change them: datasets 5.2 asks pyarrow >= 24 of the machine), for Python $PYV (default 3.12) on
# manylinux x86_64, into $DEST (default .whl, ignored by git):
#   bash bench/gpu_wheels.sh
# then carry .whl to the GPU machine with the checkout (well under 1 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${PYV:-3.12}
DEST=${DEST:-.whl}
PY=${PY:-.venv/bin/python}
PACKAGES=${PACKAGES:-datasets dill multiprocess}
mkdir -p "$DEST"
for pkg in $PACKAGES; do
    # "name" takes this checkout's version; "name==version" another one.
    case $pkg in
        *==*) spec=$pkg ;;
        *) spec="$pkg==$("$PY" -c '
import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    sys.exit(f"error: {sys.argv[1]} is not installed in {sys.executable}: name its version, {sys.argv[1]}==VERSION, in PACKAGES")
' "$pkg")" ;;
    esac
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "$PYV" --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$DEST" "$spec"
done
ls -l "$DEST"

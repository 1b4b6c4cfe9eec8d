"""On a GPU: how steady the CUDA latency path is, and what the timed precision costs.

bench/gpu_check.sh's latency part flagged a p10-p90 spread of up to 66% at batch 8 on an idle
H200 (no other process took CPU time). This measures the grid of the same random-weight
BERT-base-shaped supernet (bench/gpu_check.make_supernet) with `measure_subnets` several times in
one process, reading the GPU's clocks, power and temperature (`nvidia-smi`, read only) before and
after each pass:

    b8 with the default warm-up (10 calls per subnet), twice; b8 with 300 warm-up calls;
    b1 and b32 with the default warm-up; b32 with TF32 matmuls; b32 and b1 in bf16 weights.

Each pass prints a line and all go to one JSON (`--out`, default $OUT/latency_probe.json).
It needs a CUDA torch and the same modules as bench/gpu_check.py; on a lent GPU machine:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:$PWD python3 bench/gpu_latency_probe.py

Run 2026-11-30 on an NVIDIA H200 (about 90 s of passes); results/gpu-h200/latency_probe.json, BENCHMARKS.md
"The GPU path".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gpu_check  # noqa: E402

from supernet import SearchSpace  # noqa: E402
from supernet.cli import OneLineParser, figures_file, write_figures  # noqa: E402
from supernet.latency import LatencySetting, measure_subnets  # noqa: E402

GRID = SearchSpace(width_mults=(1.0, 0.75, 0.5, 0.25), depth_mults=(1.0, 0.75, 0.5))


def gpu_state() -> str:
    """SM and memory clocks, power draw and temperature, as nvidia-smi reads them (nothing is set)."""
    query = "--query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu"
    try:
        proc = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True)
    except FileNotFoundError:
        return "no nvidia-smi"
    return proc.stdout.strip()


def one_pass(model: torch.nn.Module, device: str = "cuda", **setting: Any) -> dict[str, object]:
    """One interleaved measurement of the grid: [median, p10, p90] ms per subnet, with the GPU's state."""
    grid = GRID.grid()
    before = gpu_state()
    t0 = time.perf_counter()
    results = measure_subnets(model, grid, LatencySetting(device=device, **setting))
    seconds = time.perf_counter() - t0
    return {
        "clocks_before": before,
        "clocks_after": gpu_state(),
        "seconds": round(seconds, 1),
        "subnets": {
            cfg.name: [round(r.median_ms, 2), round(r.p10_ms, 2), round(r.p90_ms, 2)]
            for cfg, r in zip(grid, results, strict=True)
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--out",
        type=figures_file(__file__),
        default=None,
        help="the JSON written at the end (default: $OUT/latency_probe.json, else ./latency_probe.json)",
    )
    args = p.parse_args(argv)
    if args.out is None:  # checked as an --out given on the command line is, before any pass
        args.out = p.parse_args(["--out", str(Path(os.environ.get("OUT", ".")) / "latency_probe.json")]).out
    if not torch.cuda.is_available():
        print("error: this probe needs a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    model = gpu_check.make_supernet(False, "cuda")
    print("idle", gpu_state(), flush=True)
    out: dict[str, object] = {}
    passes = [
        ("b8-default-1", {"batch_size": 8}),
        ("b8-default-2", {"batch_size": 8}),
        ("b8-warmup300", {"batch_size": 8, "warmup": 300}),
        ("b1-default", {"batch_size": 1}),
        ("b32-default", {"batch_size": 32}),
        ("b32-tf32", {"batch_size": 32}),
        ("b32-bf16", {"batch_size": 32, "dtype": "bfloat16"}),
        ("b1-bf16", {"batch_size": 1, "dtype": "bfloat16"}),
    ]
    for tag, setting in passes:
        torch.backends.cuda.matmul.allow_tf32 = tag.endswith("tf32")
        if tag == "b32-bf16":
            model = model.to(torch.bfloat16)  # and stays bf16 for b1-bf16
        row = one_pass(model, **setting)
        out[tag] = row
        first = dict(list(row["subnets"].items())[:3])  # type: ignore[union-attr]
        print(tag, row["clocks_before"], "->", row["clocks_after"], f"{row['seconds']}s", first, flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    write_figures(args.out, out, script=__file__)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

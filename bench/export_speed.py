"""Exported subnets: speed against FLOPs, onnxruntime against torch, int8 against fp32.

On a BERT-base-shaped random model (12 layers, 768 hidden, 12 heads, 3072 FFN),
batch 1, sequence 128, pinned threads (default 1), medians over interleaved rounds:

* for each of the 12 grid subnets, exported as a dense model: the measured
  speedup over the full model divided by its FLOPs ratio (goal >= 0.85: the
  export turns saved FLOPs into saved time);
* onnxruntime fp32 over torch eager, full model (goal >= 1.1x);
* onnxruntime int8 (dynamic quantization) over fp32 (goal >= 2.5x);
* with --run DIR (a trained run, e.g. runs/quickstart): the int8 export's dev
  accuracy drop on the packaged task, from the export's parity.json.

    python bench/export_speed.py [--threads 1] [--rounds 3] [--repeats 10] [--run runs/quickstart]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet import MAX_NET, SearchSpace, count_flops, set_active_subnet, to_supernet  # noqa: E402
from supernet.export import export_subnet, get_active_subnet  # noqa: E402
from supernet.latency import LatencySetting, measure_models, measure_onnx  # noqa: E402


def _int8_accuracy_drop(run: Path) -> dict[str, float] | None:
    from supernet.cli import export_main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export"
        code = export_main(["--run", str(run), "--subnet", "w1.00-d1.00", "--out", str(out), "--int8"])
        if code != 0:
            return None
        accuracy = json.loads((out / "parity.json").read_text())["accuracy"]
    return {
        "fp32_torch": accuracy["torch"],
        "fp32_onnx": accuracy["onnx"],
        "int8_onnx": accuracy["int8"],
        "drop_pt": 100 * (accuracy["onnx"] - accuracy["int8"]),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--run", type=Path, default=None, help="trained run for the int8 accuracy drop")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.manual_seed(0)
    setting = LatencySetting(num_threads=args.threads, repeats=args.repeats, warmup=args.warmup)
    supernet = to_supernet(BertForSequenceClassification(BertConfig(num_labels=2)).eval())

    grid = SearchSpace().grid()
    dense = {}
    for cfg in grid:
        set_active_subnet(supernet, cfg)
        dense[cfg.name] = get_active_subnet(supernet).eval()
    ms = {name: r.median_ms for name, r in measure_models(dense, setting, rounds=args.rounds).items()}
    full = ms[MAX_NET.name]
    full_flops = count_flops(supernet, MAX_NET, setting.seq_len)
    rows = []
    print(
        f"BERT-base random weights, b{setting.batch_size} s{setting.seq_len}, {args.threads} thread(s), "
        f"median of {args.rounds} rounds x {args.repeats} calls"
    )
    print(f"{'subnet':<13}{'ms':>9}{'speedup':>9}{'FLOPs x':>9}{'speedup/FLOPs':>15}")
    for cfg in grid:
        speedup = full / ms[cfg.name]
        flops_ratio = full_flops / count_flops(supernet, cfg, setting.seq_len)
        rows.append(
            {
                "subnet": cfg.name,
                "ms": ms[cfg.name],
                "speedup": speedup,
                "flops_ratio": flops_ratio,
                "efficiency": speedup / flops_ratio,
            }
        )
        print(
            f"{cfg.name:<13}{ms[cfg.name]:>9.2f}{speedup:>9.2f}{flops_ratio:>9.2f}{speedup / flops_ratio:>15.2f}"
        )
    worst = min(rows, key=lambda r: r["efficiency"])
    print(
        f"speedup / FLOPs ratio >= 0.85 everywhere: {'PASS' if worst['efficiency'] >= 0.85 else 'MISS'} "
        f"(lowest {worst['efficiency']:.2f} at {worst['subnet']})"
    )

    with tempfile.TemporaryDirectory() as tmp:
        report = export_subnet(supernet, MAX_NET, Path(tmp) / "full", onnx=True, int8=True)
        onnx_ms = {}
        for _ in range(args.rounds):
            onnx_ms.setdefault("fp32", []).append(measure_onnx(report.onnx_path, setting).median_ms)
            onnx_ms.setdefault("int8", []).append(measure_onnx(report.int8_path, setting).median_ms)
        fp32, int8 = statistics.median(onnx_ms["fp32"]), statistics.median(onnx_ms["int8"])
    ort_speedup, int8_speedup = full / fp32, fp32 / int8
    print(f"full model: torch eager {full:.2f} ms, onnxruntime fp32 {fp32:.2f} ms, int8 {int8:.2f} ms")
    print(
        f"onnxruntime fp32 over torch eager: {ort_speedup:.2f}x (goal >= 1.1: {'PASS' if ort_speedup >= 1.1 else 'MISS'})"
    )
    print(f"int8 over fp32: {int8_speedup:.2f}x (goal >= 2.5: {'PASS' if int8_speedup >= 2.5 else 'MISS'})")
    drop = _int8_accuracy_drop(args.run) if args.run else None
    if drop is not None:
        print(
            f"int8 dev accuracy on {args.run}: fp32 {100 * drop['fp32_onnx']:.2f}% -> int8 "
            f"{100 * drop['int8_onnx']:.2f}% (drop {drop['drop_pt']:.2f} pt)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "threads": args.threads,
                    "grid": rows,
                    "torch_ms": full,
                    "onnx_fp32_ms": fp32,
                    "onnx_int8_ms": int8,
                    "int8_accuracy": drop,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

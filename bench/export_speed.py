"""Exported subnets: speed against FLOPs, against the stock model, onnxruntime against torch, int8 against fp32.

For each model shape (random weights; --shapes bert-base,minilm: 12 layers / 768
hidden / 12 heads / FFN 3072, and the packaged all-MiniLM-L6-v2's config), batch 1,
sequence 128, pinned threads (default 1), medians over interleaved rounds:

* for each of the 12 grid subnets, exported as a dense model
  (`supernet.export.get_active_subnet`): the measured speedup over the full model
  divided by its FLOPs ratio (goal >= 0.85: the export turns saved FLOPs into
  saved time);
* the dense export of w1.00-d1.00 against the stock model it was converted from,
  in the same interleaved run (goal: within +-3%; they run the same modules);
* for each grid subnet (or --onnx-subnets), the optimised graph `export.py`
  writes: onnxruntime fp32 over torch eager (goal >= 1.1x) and int8 (dynamic
  quantization) over fp32 (goal >= 2.5x);
* with --run DIR (a trained run, e.g. runs/quickstart): the int8 export's dev
  accuracy drop on the packaged task (goal <= 1 pt), from the export's parity.json.

Every timing records the machine's load; flagged ones (another process took
> 0.10 core, or p10-p90 spread > 10% of the median) are marked in the tables and
named in a warning line: rerun those on an idle machine.

    python bench/export_speed.py [--shapes bert-base,minilm] [--threads 1] [--rounds 5] [--repeats 20]
        [--onnx-subnets w1.00-d1.00,w0.25-d0.50] [--run runs/quickstart] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, BertConfig, BertForSequenceClassification

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet import MAX_NET, SearchSpace, count_flops, set_active_subnet, to_supernet  # noqa: E402
from supernet.assets import packaged_model_dir  # noqa: E402
from supernet.cli import (  # noqa: E402
    DefaultsHelp,
    OneLineParser,
    at_least,
    figures_file,
    quiet_libraries,
    thread_count,
    write_figures,
)
from supernet.export import export_subnet, get_active_subnet  # noqa: E402
from supernet.latency import (  # noqa: E402
    LatencyResult,
    LatencySetting,
    LatencyWarning,
    load_warning,
    measure_interleaved,
)
from supernet.profile_kit_script import cpu_description, int8_dot_product  # noqa: E402
from supernet.progress import progress_bar  # noqa: E402
from supernet.trainer import RunError, trained_run  # noqa: E402

STOCK_TOLERANCE = 0.03
"""The dense export of the full subnet may differ from the stock model by at most this fraction."""


def _model(shape: str) -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    if shape == "bert-base":
        return BertForSequenceClassification(BertConfig(num_labels=2)).eval()
    config = AutoConfig.from_pretrained(packaged_model_dir("all-minilm-l6-v2"), num_labels=2)
    return transformers.AutoModelForSequenceClassification.from_config(config).eval()


def _int8_accuracy_drop(run: Path) -> dict[str, float] | None:
    from supernet.cli import export_main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export"
        print(
            f"int8 accuracy drop: export.py cuts w1.00-d1.00 of {run} into {out} (removed after)", flush=True
        )
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


def _flag(result: LatencyResult) -> str:
    return "+".join(result.flags) or "-"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_shape(shape: str, args: argparse.Namespace, setting: LatencySetting) -> dict[str, object]:
    """All figures for one model shape; prints its tables."""
    stock = _model(shape)
    supernet = to_supernet(copy.deepcopy(stock))
    grid = SearchSpace().grid()
    dense = {}
    for cfg in grid:
        set_active_subnet(supernet, cfg)
        dense[cfg.name] = get_active_subnet(supernet).eval()
    set_active_subnet(supernet, MAX_NET)
    wanted = args.onnx_subnets.split(",") if args.onnx_subnets else [c.name for c in grid]
    named = {c.name: c for c in grid}  # a name is its grid subnet (a name writes 2 decimals only)
    unknown = sorted(set(wanted) - set(named))
    if unknown:
        raise SystemExit(f"error: --onnx-subnets {unknown} are not grid names ({grid[0].name}, ...)")
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[str, Path] = {}
        fused: dict[str, dict[str, int]] = {}
        for name in progress_bar(wanted, desc=f"export {shape}", unit="subnet"):
            report = export_subnet(supernet, named[name], Path(tmp) / name, int8=True)
            assert report.onnx_path is not None and report.int8_path is not None
            paths[f"{name}/fp32"], paths[f"{name}/int8"] = report.onnx_path, report.int8_path
            fused[name] = report.onnx_fused
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LatencyWarning)  # one line per table below
            # The stock model, the dense exports and their ONNX graphs in the same interleaved
            # rounds: every ratio below compares calls taken at the same moments.
            results = measure_interleaved(
                {"stock": stock, **dense, **paths}, setting, rounds=args.rounds, progress=True
            )
    torch_results = {name: results[name] for name in ("stock", *dense)}
    onnx_results = {name: results[name] for name in paths}
    ms = {name: r.median_ms for name, r in torch_results.items()}
    full = ms[MAX_NET.name]
    full_flops = count_flops(supernet, MAX_NET, setting.seq_len)
    print(
        f"\n{shape} random weights, b{setting.batch_size} s{setting.seq_len}, {args.threads} thread(s), "
        f"torch eager, median of {args.repeats} calls in {args.rounds} interleaved rounds"
    )
    print(f"{'subnet':<13}{'ms':>9}{'speedup':>9}{'FLOPs x':>9}{'speedup/FLOPs':>15}  flags")
    rows = []
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
                "latency": torch_results[cfg.name].to_dict(),
            }
        )
        print(
            f"{cfg.name:<13}{ms[cfg.name]:>9.2f}{speedup:>9.2f}{flops_ratio:>9.2f}"
            f"{speedup / flops_ratio:>15.2f}  {_flag(torch_results[cfg.name])}"
        )
    worst = min(rows, key=lambda r: r["efficiency"])
    print(
        f"speedup / FLOPs ratio >= 0.85 everywhere: {_verdict(worst['efficiency'] >= 0.85)} "
        f"(lowest {worst['efficiency']:.2f} at {worst['subnet']})"
    )
    ratio = full / ms["stock"]
    print(
        f"dense export of {MAX_NET.name} vs the stock model, interleaved: {full:.2f} vs {ms['stock']:.2f} ms "
        f"({100 * (ratio - 1):+.1f}%; goal within +-{100 * STOCK_TOLERANCE:.0f}%: "
        f"{_verdict(abs(ratio - 1) <= STOCK_TOLERANCE)}) [{_flag(torch_results['stock'])}]"
    )
    line = load_warning(torch_results)
    if line is not None:
        print(f"warning: {line}")

    onnx_rows = []
    print(f"\n{shape}: the optimised graph export.py writes, onnxruntime, same setting and rounds")
    print(
        f"{'subnet':<13}{'torch ms':>10}{'fp32 ms':>9}{'int8 ms':>9}{'fp32/torch':>12}{'int8/fp32':>11}  flags"
    )
    for name in wanted:
        fp32, int8 = onnx_results[f"{name}/fp32"], onnx_results[f"{name}/int8"]
        ort_speedup, int8_speedup = ms[name] / fp32.median_ms, fp32.median_ms / int8.median_ms
        onnx_rows.append(
            {
                "subnet": name,
                "torch_ms": ms[name],
                "onnx_fp32_ms": fp32.median_ms,
                "onnx_int8_ms": int8.median_ms,
                "ort_over_torch": ort_speedup,
                "int8_over_fp32": int8_speedup,
                "fused": fused[name],
                "latency": {"fp32": fp32.to_dict(), "int8": int8.to_dict()},
            }
        )
        print(
            f"{name:<13}{ms[name]:>10.2f}{fp32.median_ms:>9.2f}{int8.median_ms:>9.2f}{ort_speedup:>11.2f}x"
            f"{int8_speedup:>10.2f}x  {_flag(fp32)}/{_flag(int8)}"
        )
    low_ort = min(onnx_rows, key=lambda r: r["ort_over_torch"])
    low_int8 = min(onnx_rows, key=lambda r: r["int8_over_fp32"])
    print(
        f"onnxruntime fp32 >= 1.1x torch eager on each: {_verdict(low_ort['ort_over_torch'] >= 1.1)} "
        f"(lowest {low_ort['ort_over_torch']:.2f}x at {low_ort['subnet']})"
    )
    print(
        f"int8 >= 2.5x onnxruntime fp32 on each: {_verdict(low_int8['int8_over_fp32'] >= 2.5)} "
        f"(lowest {low_int8['int8_over_fp32']:.2f}x at {low_int8['subnet']}; "
        f"this CPU's 8-bit dot-product instructions: {int8_dot_product()})"
    )
    line = load_warning(onnx_results)
    if line is not None:
        print(f"warning: {line}")
    return {
        "grid": rows,
        "stock_ms": ms["stock"],
        "dense_full_ms": full,
        "dense_over_stock": ratio,
        "stock_latency": torch_results["stock"].to_dict(),
        "onnx": onnx_rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(
        allow_abbrev=False,
        description=__doc__.splitlines()[0],
        epilog="With the defaults, both shapes and --run, about 6 minutes on 2 idle cores (BENCHMARKS.md, "
        '"Exported models"); --shapes minilm --rounds 1 --repeats 2 about 1.5 minutes (it still exports all 12 '
        "subnets).",
        formatter_class=DefaultsHelp,
    )
    p.add_argument("--shapes", default="bert-base,minilm", help="comma list of bert-base, minilm")
    p.add_argument(
        "--threads", type=thread_count, default=1, help="intra-op threads of torch and onnxruntime"
    )
    p.add_argument(
        "--rounds", type=at_least(1), default=5, help="interleaved passes over the models; medians pool them"
    )
    p.add_argument("--repeats", type=at_least(1), default=20, help="timed calls per model per round")
    p.add_argument("--warmup", type=at_least(0), default=3, help="untimed calls before each model's repeats")
    p.add_argument(
        "--onnx-subnets", default=None, help="grid names to export and time with onnxruntime (default all)"
    )
    p.add_argument("--run", type=Path, default=None, help="trained run for the int8 accuracy drop")
    p.add_argument("--json", type=figures_file(__file__), default=None, help="also write the figures here")
    args = p.parse_args(argv)
    shapes = args.shapes.split(",")
    bad = sorted(set(shapes) - {"bert-base", "minilm"})
    if bad:
        p.error(f"--shapes {bad}: choose from bert-base, minilm")
    # Checked now, not after the whole bench (minutes) as when export.py first read it.
    if args.run is not None:
        try:
            trained_run(args.run)
        except RunError as err:
            p.error(str(err))
    quiet_libraries()  # load reports of fresh heads, transformers' and datasets' bars
    print(f"CPU: {cpu_description()}; 8-bit dot-product instructions: {int8_dot_product()}")
    setting = LatencySetting(num_threads=args.threads, repeats=args.repeats, warmup=args.warmup)
    figures = {shape: bench_shape(shape, args, setting) for shape in shapes}
    drop = _int8_accuracy_drop(args.run) if args.run else None
    if drop is not None:
        print(
            f"int8 dev accuracy on {args.run}: fp32 {100 * drop['fp32_onnx']:.2f}% -> int8 "
            f"{100 * drop['int8_onnx']:.2f}% (drop {drop['drop_pt']:.2f} pt; goal <= 1 pt: "
            f"{_verdict(drop['drop_pt'] <= 1.0)})"
        )
    if args.json:
        write_figures(
            args.json,
            {
                "threads": args.threads,
                "cpu": cpu_description(),
                "int8_dot_product": int8_dot_product(),
                "shapes": figures,
                "int8_accuracy": drop,
            },
            script=__file__,
        )
    if args.run is not None and drop is None:  # said after the figures are written, not instead of them
        print(
            f"error: export.py could not cut w1.00-d1.00 of {args.run} (its error is above)", file=sys.stderr
        )
        return 2
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

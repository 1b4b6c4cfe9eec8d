"""What does converting to a supernet cost at inference time?

Two ratios, each measured in one run with pinned threads, batch 1, seq 128:

* max net: latency(converted supernet at the max net) / latency(stock model,
  deep-copied like the supernet), goal <= 1.03 (the elastic modules must be
  free when nothing is sliced);
* subnet: latency(supernet running a subnet) / latency(the same subnet built
  as a small stock model: plain nn.Linear of the real shapes, short layer
  list, via tests/reference.py), goal <= 1.05 (slicing must not cost much
  over a dense export).

A and B are timed call by call in alternation (A B, then B A, ...), so
drift and bursts of load from other processes hit both; the reported ratio
is the median over pairs of latency(A)/latency(B) (the ratio of the two
medians is printed too).

    python bench/convert_overhead.py                   # BERT-base shape and MiniLM
    python bench/convert_overhead.py --models all-minilm-l6-v2 --pairs 200 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from torch import nn  # noqa: E402

from supernet import SubnetConfig, set_active_subnet, set_max_net, to_supernet  # noqa: E402
from supernet.assets import packaged_model_dir  # noqa: E402
from supernet.cli import OneLineParser, at_least, figures_file, quiet_libraries, thread_count, write_figures  # noqa: E402
from supernet.data import positions_problem  # noqa: E402
from supernet.latency import LatencySetting, MachineLoad, dummy_batch, monitor_load, print_load_report  # noqa: E402

# The independent dense reference lives with the tests; reuse it rather than fork it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import reference_subnet  # noqa: E402

MAX_GOAL = 1.03
SUBNET_GOAL = 1.05
DEFAULT_SUBNETS = ("w0.50-d1.00", "w0.25-d0.50", "w0.75-d0.75")


def load_stock(name: str) -> nn.Module:
    """An unconverted model in eval mode: a random BERT-base shape or a packaged model."""
    quiet_libraries()  # load reports of fresh heads, transformers' and datasets' bars
    if name == "bert-base":
        torch.manual_seed(0)
        model = transformers.AutoModelForSequenceClassification.from_config(
            transformers.BertConfig(num_labels=2)
        )
    else:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            packaged_model_dir(name), num_labels=2
        )
    return model.eval()


def compare(a: nn.Module, b: nn.Module, setting: LatencySetting, pairs: int) -> dict[str, object]:
    """Latency of a and b timed call by call in alternation, and the median of the paired ratios.

    Each pair is one call of a and one of b, back to back, in A-B then B-A
    order (so neither always runs second): a burst of load from another
    process or a frequency change hits both sides of a pair, and the median
    over pairs discards the pairs it hit unevenly.
    """
    batch = dummy_batch(a.config, setting)  # type: ignore[attr-defined]
    a_ms: list[float] = []
    b_ms: list[float] = []
    gc.collect()
    gc.disable()  # a collection inside one call is noise unrelated to either model
    try:
        with torch.inference_mode(), monitor_load() as probe:
            for _ in range(setting.warmup):
                a(**batch)
                b(**batch)
            for i in range(pairs):
                order = ((a, a_ms), (b, b_ms)) if i % 2 == 0 else ((b, b_ms), (a, a_ms))
                for model, out in order:
                    t0 = time.perf_counter_ns()
                    model(**batch)
                    out.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        gc.enable()
    ratios = sorted(x / y for x, y in zip(a_ms, b_ms, strict=True))
    assert probe.load is not None
    return {
        "load": probe.load,
        "a_ms": statistics.median(a_ms),
        "b_ms": statistics.median(b_ms),
        "ratio": statistics.median(ratios),
        "ratio_of_medians": statistics.median(a_ms) / statistics.median(b_ms),
        "ratio_p25": ratios[len(ratios) // 4],
        "ratio_p75": ratios[(3 * len(ratios)) // 4],
        "pairs": pairs,
    }


def bench_model(
    name: str, subnets: list[str], setting: LatencySetting, pairs: int
) -> list[dict[str, object]]:
    stock = load_stock(name)
    model = to_supernet(copy.deepcopy(stock)).eval()
    rows: list[dict[str, object]] = []

    set_max_net(model)
    # Against a deep copy, like the supernet itself: weights in freshly
    # allocated memory on both sides. (The loaded MiniLM ran ~1.7% faster than
    # its own unconverted deep copy, a placement effect unrelated to conversion.)
    res = compare(model, copy.deepcopy(stock).eval(), setting, pairs)
    rows.append({"model": name, "kind": "max", "subnet": "w1.00-d1.00", "goal": MAX_GOAL, **res})
    print(_line(rows[-1]), flush=True)

    for sub in subnets:
        cfg = SubnetConfig.from_name(sub)
        resolved = set_active_subnet(model, cfg)
        ref = reference_subnet(stock, list(resolved.heads), list(resolved.ffn), list(resolved.layers))
        res = compare(model, ref, setting, pairs)
        rows.append({"model": name, "kind": "subnet", "subnet": sub, "goal": SUBNET_GOAL, **res})
        print(_line(rows[-1]), flush=True)
        del ref
        gc.collect()
    return rows


def _line(row: dict[str, object]) -> str:
    kind = "supernet/stock" if row["kind"] == "max" else "supernet/dense"
    verdict = "PASS" if row["ratio"] <= row["goal"] else "MISS"  # type: ignore[operator]
    load = row["load"]
    assert isinstance(load, MachineLoad)
    return (
        f"{row['model']:<18} {row['subnet']:<12} {kind:<15} {row['a_ms']:>9.2f} {row['b_ms']:>9.2f} "
        f"{row['ratio']:>7.4f} {row['ratio_of_medians']:>7.4f} [{row['ratio_p25']:.3f}, {row['ratio_p75']:.3f}] "
        f"<= {row['goal']:.2f} {verdict}" + ("  load" if load.loaded else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["bert-base", "all-minilm-l6-v2"],
        choices=("bert-base", "all-minilm-l6-v2"),
    )
    parser.add_argument(
        "--subnets",
        nargs="+",
        default=list(DEFAULT_SUBNETS),
        help="subnet names, e.g. w0.50-d1.00; any width and depth the model can take, not only the grid's",
    )
    parser.add_argument("--threads", type=thread_count, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--seq-len", type=at_least(1), default=128)
    parser.add_argument("--pairs", type=at_least(1), default=100, help="timed A/B call pairs per comparison")
    parser.add_argument("--warmup", type=at_least(0), default=5, help="untimed calls of each model first")
    parser.add_argument("--json", type=figures_file(__file__), default=None, help="write the figures here")
    args = parser.parse_args(argv)
    for name in args.models:  # before any model is timed
        config = (
            transformers.BertConfig()
            if name == "bert-base"
            else transformers.AutoConfig.from_pretrained(packaged_model_dir(name))
        )
        problem = positions_problem(config, args.seq_len, "--seq-len")
        if problem is not None:
            parser.error(f"{name}: {problem}")
    for subnet in args.subnets:
        try:
            SubnetConfig.from_name(subnet)
        except ValueError as err:
            parser.error(f"--subnets: {err}")

    setting = LatencySetting(
        batch_size=1, seq_len=args.seq_len, num_threads=args.threads, warmup=args.warmup, repeats=args.pairs
    )
    torch.set_num_threads(args.threads)
    print(f"setting={setting.key}, {args.pairs} alternating call pairs per comparison")
    print(
        f"{'model':<18} {'subnet':<12} {'A/B':<15} {'A ms':>9} {'B ms':>9} {'ratio':>7} {'med/med':>7} "
        f"[pair p25, p75]   goal"
    )
    rows: list[dict[str, object]] = []
    for name in args.models:
        rows += bench_model(name, args.subnets, setting, args.pairs)

    max_rows = [r for r in rows if r["kind"] == "max"]
    sub_rows = [r for r in rows if r["kind"] == "subnet"]
    worst_max = max(float(r["ratio"]) for r in max_rows)  # type: ignore[arg-type]
    worst_sub = max(float(r["ratio"]) for r in sub_rows) if sub_rows else float("nan")  # type: ignore[arg-type]
    max_ok = worst_max <= MAX_GOAL
    sub_ok = worst_sub <= SUBNET_GOAL
    print(f"max net: worst ratio {worst_max:.4f} (goal <= {MAX_GOAL}) {'PASS' if max_ok else 'MISS'}")
    print(f"subnets: worst ratio {worst_sub:.4f} (goal <= {SUBNET_GOAL}) {'PASS' if sub_ok else 'MISS'}")
    loads = {f"{r['model']} {r['subnet']}": r["load"] for r in rows}
    warning = print_load_report(loads)  # type: ignore[arg-type]
    for row in rows:
        row["load"] = row["load"].to_dict()  # type: ignore[attr-defined]
    if args.json is not None:
        write_figures(
            args.json,
            {
                "setting": setting.to_dict(),
                "pairs": args.pairs,
                "rows": rows,
                "max_net": {"worst_ratio": worst_max, "goal": MAX_GOAL, "pass": max_ok},
                "subnets": {"worst_ratio": worst_sub, "goal": SUBNET_GOAL, "pass": sub_ok},
                "load_warning": warning,
            },
            script=__file__,
        )
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

"""Does ranking by the int8 model's own dev score change what search picks under a budget?

`search.py --backend onnxruntime --int8` times each grid subnet's int8 graph (the one
`export.py --int8` ships) and ranks it by that graph's dev score. Before, it ranked by the FP32
subnet's dev score. This bench measures what the change is worth on trained runs:

* per grid subnet: FP32 dev and test scores (training's eval.jsonl), the int8 graph's dev and
  test scores (scored with onnxruntime, as search.py --int8 and export.py --int8 score it), and
  its int8 latency (b1 s128, 1 thread by default, measured interleaved as search.py measures);
* every grid subnet's int8 latency is then a budget, and `select_under_budget` picks once from
  the FP32 ranking and once from the int8 ranking; for each pick, the int8 model's dev score and
  its test score (held out: the choice never saw it).

The run folders are only read: the search's caches go to a scratch copy (--work).

    python bench/int8_choice.py --run results/rt-sentences/elastic/seed-42/single-stage \\
        --run results/trec/elastic/seed-42/single-stage --json results/int8_choice.json

Time latency only on an otherwise idle machine; the scores do not depend on load.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package

from supernet.cli import (  # noqa: E402
    OneLineParser,
    at_least,
    figures_file,
    output_folder,
    quiet_libraries,
    thread_count,
    write_figures,
)
from supernet.config import TrainConfig, load_config  # noqa: E402
from supernet.export import onnx_predict, score  # noqa: E402
from supernet.io import read_jsonl  # noqa: E402
from supernet.latency import LatencySetting, LatencyWarning, load_warning  # noqa: E402
from supernet.progress import progress_bar  # noqa: E402
from supernet.search import SubnetResult, select_under_budget  # noqa: E402
from supernet.search_cli import SearchRun  # noqa: E402
from supernet.tasks import task_kind_of_config  # noqa: E402
from supernet.trainer import RunError, eval_dataloader, tokenized_split, unscored_grid  # noqa: E402


def scratch_copy(run: Path, work: Path) -> Path:
    """A run folder search can write its caches into: config, eval.jsonl, inputs.json, a link to the
    supernet."""
    # Named by the whole path: trec/.../seed-42/single-stage and rt-sentences/.../seed-42/single-stage
    # must not share caches.
    copy = work / str(run.resolve()).strip("/").replace("/", "--")
    copy.mkdir(parents=True, exist_ok=True)  # a --work kept from an earlier try: its caches are reused
    for name in ("config.yaml", "eval.jsonl", "inputs.json"):  # inputs.json: the run's files and split
        if name != "inputs.json" or (run / name).is_file():  # (a run before 2026-12-01 has none)
            shutil.copy2(run / name, copy / name)
    if not (copy / "supernet").exists():
        (copy / "supernet").symlink_to((run / "supernet").resolve(), target_is_directory=True)
    if (copy / "supernet").resolve() != (run / "supernet").resolve():
        raise SystemExit(f"{copy / 'supernet'} links to another run's supernet: pass a new --work")
    return copy


def unscored(run: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The run's grid subnets its eval.jsonl's `rows` have no row of (`trainer.unscored_grid`)."""
    return unscored_grid(load_config(TrainConfig, run / "config.yaml"), rows)


def measure_run(run: Path, work: Path, setting: LatencySetting, progress: bool) -> dict[str, Any]:
    """Every grid subnet's FP32 and int8 scores (dev, test) and int8 latency, and the choices."""
    sr = SearchRun(scratch_copy(run, work), setting, progress=progress, log=lambda line: None)
    grid = sr.space.grid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatencyWarning)
        measured = sr.measure(grid)
    metric = sr.metric
    fp32 = {}
    for row in read_jsonl(run / "eval.jsonl"):
        fp32[row["subnet"]] = (row[metric], row[f"test_{metric}"])
    kind = task_kind_of_config(sr.model.config)
    test = eval_dataloader(
        sr.train_cfg,
        tokenized_split(sr.train_cfg, sr.tokenizer, "test", model_config=sr.model.config, run=sr.run),
        sr.tokenizer,
        kind,
    )
    subnets = []
    # Two scorings of each grid graph: seconds here, minutes on a large task.
    for cfg in progress_bar(grid, desc="int8 dev/test scores", unit="subnet", disable=not progress):
        dev8 = sr.evaluate(cfg)
        test8 = score(onnx_predict(sr.graph(cfg)), test, sr.model.config)[metric]
        lat = measured[cfg.name]
        subnets.append(
            {
                "subnet": cfg.name,
                "fp32_dev": fp32[cfg.name][0],
                "fp32_test": fp32[cfg.name][1],
                "int8_dev": dev8,
                "int8_test": test8,
                "int8_ms": lat.median_ms,
                "flags": list(lat.flags),
            }
        )
    by_name = {s["subnet"]: s for s in subnets}

    def ranked(key: str) -> list[SubnetResult]:
        return [
            SubnetResult(
                subnet=cfg,
                name=cfg.name,
                accuracy=by_name[cfg.name][key],
                latency_ms=by_name[cfg.name]["int8_ms"],
                predicted_ms=None,
                params=0,
                flops=0,
            )
            for cfg in grid
        ]

    choices = []
    for budget in sorted({s["int8_ms"] for s in subnets}):
        old = by_name[select_under_budget(ranked("fp32_dev"), budget).name]
        new = by_name[select_under_budget(ranked("int8_dev"), budget).name]
        choices.append(
            {
                "budget_ms": budget,
                "fp32_ranked": old["subnet"],
                "int8_ranked": new["subnet"],
                "dev_gain": new["int8_dev"] - old["int8_dev"],
                "test_gain": new["int8_test"] - old["int8_test"],
            }
        )
    warning = load_warning(measured)
    return {"run": str(run), "metric": metric, "subnets": subnets, "choices": choices, "load": warning}


def report(result: dict[str, Any]) -> str:
    """A run's two markdown tables (subnets, choices) and its summary line."""
    pct = 100.0
    lines = [
        f"### {result['run']}",
        "",
        f"| subnet | FP32 dev | int8 dev | FP32 test | int8 test | int8 ms |  ({result['metric']} x100)",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in sorted(result["subnets"], key=lambda s: s["int8_ms"]):
        lines.append(
            f"| {s['subnet']} | {pct * s['fp32_dev']:.2f} | {pct * s['int8_dev']:.2f} | "
            f"{pct * s['fp32_test']:.2f} | {pct * s['int8_test']:.2f} | {s['int8_ms']:.2f} |"
        )
    lines += ["", "| budget ms | ranked by FP32 dev | ranked by int8 dev | int8 dev gain | int8 test gain |"]
    lines.append("|---:|---|---|---:|---:|")
    for c in result["choices"]:
        lines.append(
            f"| {c['budget_ms']:.2f} | {c['fp32_ranked']} | {c['int8_ranked']} | "
            f"{pct * c['dev_gain']:+.2f} | {pct * c['test_gain']:+.2f} |"
        )
    differ = [c for c in result["choices"] if c["fp32_ranked"] != c["int8_ranked"]]
    lines += ["", summary_line(result["choices"], differ)]
    if result["load"]:
        lines.append(f"warning: {result['load']}")
    return "\n".join(lines)


def summary_line(choices: list[dict[str, Any]], differ: list[dict[str, Any]]) -> str:
    if not differ:
        return f"the two rankings pick the same subnet at all {len(choices)} budgets"
    return (
        f"the rankings differ at {len(differ)} of {len(choices)} budgets; there, the int8 model's dev score "
        f"gains {100 * statistics.mean(c['dev_gain'] for c in differ):+.2f} on average, its test score "
        f"{100 * statistics.mean(c['test_gain'] for c in differ):+.2f} (min "
        f"{100 * min(c['test_gain'] for c in differ):+.2f}, max {100 * max(c['test_gain'] for c in differ):+.2f})"
    )


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    # extend: `--run a b --run c` and the shell's `--run .../seed-{42,43,44}/...` both give three runs.
    p.add_argument(
        "--run",
        action="extend",
        nargs="+",
        required=True,
        help="trained run folders (one or more, repeatable)",
    )
    p.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        help="onnxruntime intra-op threads while timing (default 1)",
    )
    p.add_argument("--seq-len", type=at_least(1), default=128, help="tokens per timed sequence (default 128)")
    p.add_argument(
        "--repeats", type=at_least(1), default=30, help="timed calls per graph and round (default 30)"
    )
    p.add_argument("--warmup", type=at_least(0), default=5, help="untimed calls first (default 5)")
    p.add_argument(
        "--work", type=output_folder, default=None, help="scratch folder (default: a temporary one)"
    )
    p.add_argument("--json", type=figures_file(__file__), default=None, help="also write the figures here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(argv)
    quiet_libraries()
    for run in map(Path, args.run):
        if not (run / "supernet").is_dir() or not (run / "eval.jsonl").is_file():
            p.error(f"--run {run}: not a trained run (no supernet/ or eval.jsonl)")
        try:
            rows = read_jsonl(run / "eval.jsonl")
        except ValueError as err:
            p.error(f"--run {run}: {err}: score the run again with train.py resume=true")
        if missing := unscored(run, rows):  # found now, not after every graph is exported and timed
            p.error(
                f"--run {run}: eval.jsonl lacks {len(missing)} grid subnet(s) ({', '.join(missing[:3])}): "
                "finish train.py (resume=true) first"
            )
    setting = LatencySetting(
        backend="onnxruntime",
        int8=True,
        seq_len=args.seq_len,
        num_threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    with tempfile.TemporaryDirectory(prefix="int8-choice-") as tmp:
        work = Path(tmp) if args.work is None else args.work
        results = []
        for run in map(Path, args.run):
            print(f"{run}: scoring and timing its grid subnets' int8 graphs ...", flush=True)
            try:
                results.append(measure_run(run, work, setting, progress=not args.no_progress))
            except RunError as err:  # e.g. a --seq-len longer than the model's positions
                print(f"error: {err}", file=sys.stderr)
                return 2
            print(report(results[-1]) + "\n", flush=True)
    differ = [c for r in results for c in r["choices"] if c["fp32_ranked"] != c["int8_ranked"]]
    every = [c for r in results for c in r["choices"]]
    print(f"all runs ({setting.key}): " + summary_line(every, differ))
    if args.json is not None:
        write_figures(args.json, {"setting": setting.to_dict(), "runs": results}, script=__file__)
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

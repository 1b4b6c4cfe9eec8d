"""A finished run's teacher and grid subnets on its task's own metrics, for any task kind.

    python train.py --config configs/rt-scores-minilm.yaml
    python bench/task_results.py --run results/rt-scores/supernet/seed-42

Reads the run's teacher_eval.json and eval.jsonl (nothing is retrained or re-evaluated) and writes
``<out>/grid.jsonl`` (one row per subnet, the teacher first), ``<out>/grid.md`` and the section
``<!-- results:grid-<task> -->`` of BENCHMARKS.md (``--no-benchmarks`` leaves it alone). ``<out>`` is
``results/<task>`` by default. Columns are the task kind's metrics (`supernet.tasks`: accuracy and F1,
Pearson and Spearman, entity F1, F1 and exact match), dev and test, with each subnet's test main metric
as a fraction of the teacher's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from supernet.baselines import BENCHMARKS_HELP, benchmarks_file, update_section  # noqa: E402
from supernet.cli import (  # noqa: E402
    OneLineParser,
    markdown_file,
    output_folder,
    results_folder_problem,
    rows_with,
    text_starting,
)
from supernet.config import TrainConfig, load_config  # noqa: E402
from supernet.data import PACKAGED_TASKS  # noqa: E402
from supernet.io import RunDir, atomic_write_text, read_jsonl  # noqa: E402
from supernet.tasks import get_task_kind  # noqa: E402
from supernet.trainer import unscored_grid  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class BenchError(RuntimeError):
    """One-line, user-facing problem with the run given."""


def _read_run(run_dir: Path) -> tuple[TrainConfig, dict[str, Any], list[dict[str, Any]], str]:
    run = RunDir(run_dir)
    teacher_file = run.root / "teacher_eval.json"
    if not run.config.is_file() or not run.eval.is_file() or not teacher_file.is_file():
        raise BenchError(
            f"{run_dir} holds no finished run (config.yaml, eval.jsonl and teacher_eval.json): "
            "run train.py to the end first"
        )
    cfg = load_config(TrainConfig, run.config)
    try:
        rows = read_jsonl(run.eval)
        teacher = json.loads(teacher_file.read_text())
    except ValueError as err:
        raise BenchError(
            f"{run_dir}: eval.jsonl or teacher_eval.json is damaged ({err}): score the run again "
            "with train.py resume=true"
        ) from err
    if not rows:
        raise BenchError(f"{run.eval} holds no subnet: score the run again with train.py resume=true")
    if not all(isinstance(teacher.get(split), dict) for split in ("dev", "test")):
        raise BenchError(
            f"{teacher_file} lacks the teacher's dev or test scores: score the run again with train.py "
            "resume=true"
        )
    # A run stopped while scoring has some rows: its "mean over the grid" would be over those.
    missing = unscored_grid(cfg, rows)
    if missing:
        grid = len(cfg.width_mults) * len(cfg.depth_mults)
        raise BenchError(
            f"{run.eval} lacks {len(missing)} of the {grid} grid subnets ({', '.join(missing[:3])}): "
            "finish train.py (resume=true) first"
        )
    return cfg, teacher, rows, _kind_of(rows)


def _kind_of(rows: list[dict[str, Any]]) -> str:
    """The kind an eval.jsonl was written for, from its metric names."""
    keys = set(rows[0]) if rows else set()
    if "pearson" in keys:
        return "regression"
    if "exact_match" in keys:
        return "question-answering"
    if "precision" in keys:
        return "token-classification"
    return "classification"


def build(run_dir: Path) -> tuple[list[dict[str, Any]], str, str]:
    """(jsonl rows, markdown, task slug) of one run."""
    cfg, teacher, evals, kind_name = _read_run(run_dir)
    # The label names come with the weights; results kept without them (results/ in git) are read
    # by their metric names: a classification's eval rows carry macro_f1 for more than 2 classes.
    model_config = RunDir(run_dir).supernet / "config.json"
    labels = (json.loads(model_config.read_text()).get("id2label") or {}) if model_config.is_file() else {}
    kind = get_task_kind(kind_name, labels.values() or None)
    columns = kind.columns(len(labels) or (3 if "macro_f1" in evals[0] else 2))
    main = kind.main_metric
    teacher_main = teacher["test"][main]
    rows: list[dict[str, Any]] = [
        {
            "model": "teacher",
            **{f"dev_{c.key}": teacher["dev"].get(c.key) for c in columns},
            **{f"test_{c.key}": teacher["test"].get(c.key) for c in columns},
            "of_teacher": 1.0,
        }
    ]
    for r in evals:
        rows.append(
            {
                "model": r["subnet"],
                **{f"dev_{c.key}": r.get(c.key) for c in columns},
                **{f"test_{c.key}": r.get(f"test_{c.key}") for c in columns},
                "of_teacher": r[f"test_{main}"] / teacher_main if teacher_main else None,
                "params": r.get("params"),
            }
        )

    def cell(value: Any, scaled: bool) -> str:
        if value is None:
            return "-"
        return f"{100 * value:.2f}" if scaled else f"{value:.4f}"

    head = ["model"] + [f"dev {c.header}" for c in columns] + [f"test {c.header}" for c in columns]
    head += [f"test {main} / teacher's"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for row in rows:
        cells = [row["model"]]
        cells += [cell(row[f"dev_{c.key}"], c.scaled) for c in columns]
        cells += [cell(row[f"test_{c.key}"], c.scaled) for c in columns]
        cells.append("-" if row["of_teacher"] is None else f"{row['of_teacher']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    subnet_main = [r[f"test_{main}"] for r in rows[1:]]
    worst = min(rows[1:], key=lambda r: r[f"test_{main}"])
    slug = cfg.task if cfg.task in PACKAGED_TASKS else Path(cfg.task).stem
    md = "\n".join(
        [
            f"Run `{run_dir}` (`{cfg.model}`, task `{cfg.task}`, a {kind.name} task, recipe `{cfg.recipe}`); "
            f"metrics x100 where scaled, search ranks by {main}.",
            "",
            *lines,
            "",
            f"Mean test {main} over the {len(subnet_main)} grid subnets: {cell(statistics.fmean(subnet_main), True)} "
            f"(teacher {cell(teacher_main, True)}); lowest {worst['model']} {cell(worst[f'test_{main}'], True)} = "
            f"{worst['of_teacher']:.3f} of the teacher's.",
        ]
    )
    return rows, md, slug


# The files this script writes, each with a check that an existing one is its own (it replaces those).
OURS = {
    "grid.jsonl": rows_with("model", "of_teacher"),
    "grid.md": text_starting("Run `", "metrics x100 where scaled, search ranks by"),
}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="a finished train.py run directory")
    parser.add_argument(
        "--out", type=output_folder, default=None, help="where grid.{jsonl,md} go (default results/<task>)"
    )
    parser.add_argument("--benchmarks", default=None, type=markdown_file, help=BENCHMARKS_HELP)
    parser.add_argument("--no-benchmarks", action="store_true", help="do not rewrite BENCHMARKS.md's section")
    args = parser.parse_args(argv)
    try:
        rows, md, slug = build(Path(args.run))
        out = Path(args.out) if args.out else REPO / "results" / slug
        # --out was checked as it was parsed; the default folder is checked here, and the files in either.
        problem = results_folder_problem(out, OURS)
        if problem is not None:
            raise BenchError(problem)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "grid.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out / "grid.md", md + "\n")
    print(md)
    print(f"wrote {out / 'grid.jsonl'} and {out / 'grid.md'}")
    path = benchmarks_file(args, REPO / "BENCHMARKS.md")
    if path is not None:
        if not update_section(path, f"grid-{slug}", md):
            return 2
        print(f"{path} section grid-{slug} updated")
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

"""The price and quality of elastic training: every recipe from one fine-tuned teacher.

    python bench/elastic_cost.py --config configs/rt-minilm.yaml \\
        --recipe dynabert configs/rt-minilm-dynabert.yaml \\
        --recipe single-stage-k1 num_random_subnets=1
    python bench/elastic_cost.py --config configs/rt-minilm.yaml --seeds 42 43 44 --recipe ...

Per seed, the preset's teacher is fine-tuned once (``<out>/elastic/seed-<s>/teacher/``), then every
recipe trains its supernet from that same teacher (``teacher.path``) into
``<out>/elastic/seed-<s>/<name>/``. A recipe is ``NAME [PRESET.yaml] [key=value ...]``: the preset
(default ``--config``) plus overrides; ``--config`` itself always runs, under the name of its
``recipe`` key. Finished runs are reused, so a rerun only reports.

Cost: wall and CPU (process) time of everything after the teacher (data loading, importance and
reordering, every stage) over the wall and CPU time of the teacher fine-tune; the grid evaluation
is excluded from both. Torch runs on ``--threads`` threads (default 1), so CPU time measures the work
even when another job shares the machine; the load average at start and end is recorded.

Quality: test accuracy of the 12 grid subnets (eval.jsonl), their mean and minimum, each as a fraction
of the teacher's test accuracy. Goals (issue 10), each PASS/MISS: cost <= 2.0x the teacher; mean test
accuracy >= the DynaBERT recipe's mean - 0.3 pt; every subnet >= 96% of the teacher.

Outputs: ``<out>/elastic_cost.jsonl`` (one row per recipe and seed), ``<out>/elastic_cost.md``, and the
section ``<!-- results:elastic-<task> -->`` of BENCHMARKS.md. A file of these names that the script did
not write (a user's own) is refused before any work, and kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402

from supernet import trainer  # noqa: E402
from supernet.baselines import BENCHMARKS_HELP, benchmarks_file, update_section  # noqa: E402
from supernet.cli import (  # noqa: E402
    OneLineParser,
    markdown_file,
    output_folder,
    results_folder_problem,
    rows_with,
    text_starting,
    thread_count,
)
from supernet.config import ConfigError, TrainConfig, load_config  # noqa: E402
from supernet.data import PACKAGED_TASKS, DataError  # noqa: E402
from supernet.io import RunDir, atomic_write_json, atomic_write_text, read_jsonl  # noqa: E402
from supernet.trainer import RunError, TrainingError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TIME_FILE = "elastic_time.json"
# A teacher fine-tuned again for its weights (`restore_teacher_weights`): recipes trained after it are
# costed against this timing, taken on the same machine, not against the recorded one.
RESTORED_TIME_FILE = "elastic_time.restored.json"
# Goals of issue 10.
MAX_COST_RATIO = 2.0
MEAN_SLACK_PT = 0.3
MIN_FRACTION = 0.96
# Keys every recipe must share with --config: they define the teacher, the data and the grid.
SHARED_KEYS = ("model", "task", "data", "width_mults", "depth_mults", "batch_size")


def log(message: str) -> None:
    print(f"[elastic-cost] {message}", flush=True)


@dataclass
class RecipeSpec:
    """One recipe of the comparison: a preset plus overrides, under a name."""

    name: str
    preset: str
    overrides: list[str] = field(default_factory=list)


@dataclass
class Timing:
    wall_s: float
    cpu_s: float
    threads: int
    loadavg_start: tuple[float, ...]
    loadavg_end: tuple[float, ...]
    own_teacher_wall_s: float | None = None
    """The teacher fine-tune this run is costed against when not the seed's recorded one: a reused
    run's own teacher, or a teacher fine-tuned again for its weights before this run trained."""
    own_teacher_cpu_s: float | None = None
    resumed: bool = False
    """The run continued one stopped before: its times miss the part before the stop."""

    @classmethod
    def load(cls, path: Path) -> Timing | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class _Clock:
    """Wall and process time of a block, minus the time spent in `_Job.evaluate_grid` inside it."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.eval_wall = self.eval_cpu = 0.0

    def __enter__(self) -> _Clock:
        self.load0 = os.getloadavg()
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        real = trainer._Job.evaluate_grid
        clock = self

        def timed_eval(job: Any, student: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return real(job, student)
            finally:
                clock.eval_wall += time.perf_counter() - w
                clock.eval_cpu += time.process_time() - c

        self._real = real
        trainer._Job.evaluate_grid = timed_eval  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        trainer._Job.evaluate_grid = self._real  # type: ignore[method-assign]
        self.timing = Timing(
            wall_s=time.perf_counter() - self.wall0 - self.eval_wall,
            cpu_s=time.process_time() - self.cpu0 - self.eval_cpu,
            threads=self.threads,
            loadavg_start=self.load0,
            loadavg_end=os.getloadavg(),
        )


def _timed(run_dir: Path, threads: int, fn: Any, teacher: Timing | None = None) -> Timing:
    """Run `fn` unless `run_dir` already holds its timing; record the timing next to its results.

    `teacher`, when given, is the teacher timing a newly timed run is costed against (recorded with it).
    """
    path = run_dir / TIME_FILE
    done = Timing.load(path)
    if done is not None:
        log(f"reusing {run_dir}")
        return done
    resumed = (run_dir / "config.yaml").is_file()
    with _Clock(threads) as clock:
        fn()
    timing = dataclasses.replace(clock.timing, resumed=resumed)
    if teacher is not None:
        timing = dataclasses.replace(
            timing, own_teacher_wall_s=teacher.wall_s, own_teacher_cpu_s=teacher.cpu_s
        )
    atomic_write_json(path, timing.__dict__)
    return timing


def _check_same_config(name: str, run_dir: Path, cfg: TrainConfig) -> None:
    """A finished run is reported (not retrained) only if it was trained with the recipe's config."""
    diffs = trainer.config_changes(RunDir(run_dir), cfg)
    if diffs:
        raise RunError(
            f"recipe '{name}': {run_dir} was trained with another config ({'; '.join(diffs)}); "
            f"rename the recipe or move the run away"
        )


def _seed_of_run(run_dir: Path) -> int | None:
    """The seed a finished run was trained with (None when it has no readable config: `_reused` says why)."""
    try:
        return load_config(TrainConfig, run_dir / "config.yaml").seed
    except (ConfigError, FileNotFoundError, OSError):
        return None


def _reused(run_dir: Path, teacher_run: Path) -> tuple[Path, Timing]:
    """A run trained before (e.g. by train.py), accepted only if its teacher is this bench's teacher.

    Its teacher must score exactly what this bench's teacher scores on dev and test (the fine-tune is
    deterministic on CPU, so equal scores mean the same teacher); its time is the stages' wall time
    from its train_metrics.jsonl (importance excluded), with unknown load and thread count, and its
    cost is taken against its own teacher fine-tune from the same file: both ran under the same
    conditions, unlike this bench's teacher.
    """
    ours = json.loads((teacher_run / "teacher_eval.json").read_text())
    theirs_path = run_dir / "teacher_eval.json"
    theirs = json.loads(theirs_path.read_text()) if theirs_path.is_file() else None
    if theirs != ours:
        raise RunError(
            f"{run_dir} was trained from another teacher ({theirs_path} differs from {teacher_run}); retrain it here"
        )
    from supernet.tracking import stage_seconds

    all_seconds = stage_seconds(run_dir)
    seconds = {k: v for k, v in all_seconds.items() if k != "teacher"}
    if not seconds or "teacher" not in all_seconds or not RunDir(run_dir).eval.is_file():
        raise RunError(
            f"{run_dir} holds no finished run with a timed teacher (train_metrics.jsonl, eval.jsonl)"
        )
    return run_dir, Timing(
        wall_s=sum(seconds.values()),
        cpu_s=float("nan"),
        threads=0,
        loadavg_start=(),
        loadavg_end=(),
        own_teacher_wall_s=all_seconds["teacher"],
    )


def check_specs(args: argparse.Namespace, base: TrainConfig, specs: Sequence[RecipeSpec]) -> None:
    """Everything the flags name, checked before any training (a typo in the last recipe was found
    only after the teacher and the first recipes had trained: about 40 minutes on the presets).

    Raises:
        ConfigError: a recipe's preset or overrides do not load, or change a key every recipe shares;
            --only, --reuse or --reference names no recipe.
        FileNotFoundError: a --reuse run or the --against file does not exist.
    """
    names = [s.name for s in specs]
    for spec in specs:
        cfg = load_config(TrainConfig, spec.preset, [*args.overrides, *spec.overrides])
        _check_shared(spec.name, cfg, base)
    for flag, asked in (
        ("--only", args.only or []),
        ("--reuse", list(args.reuse)),
        ("--reference", [args.reference] if args.reference else []),
    ):
        unknown = [n for n in asked if n not in names]
        if unknown:
            raise ConfigError(
                f"{flag} {' '.join(unknown)}: no such recipe; the recipes are {', '.join(names)}"
            )
    for name, path in args.reuse.items():
        if not Path(path).is_dir():  # (it said "trained from another teacher" for a missing folder)
            raise FileNotFoundError(f"--reuse {name} {path}: no such run folder")
    if args.against and not Path(args.against[0]).is_file():
        raise FileNotFoundError(f"--against {args.against[0]}: no such file")


def task_slug(task: str) -> str:
    return task if task in PACKAGED_TASKS else Path(task).stem


def _check_shared(name: str, cfg: TrainConfig, base: TrainConfig) -> None:
    for key in SHARED_KEYS:
        if getattr(cfg, key) != getattr(base, key):
            raise ConfigError(
                f"recipe '{name}' changes '{key}', which every recipe must share with --config "
                f"(one teacher, one data set, one grid)"
            )


def restore_teacher_weights(teacher_run: Path, cfg: TrainConfig, *, threads: int, progress: bool) -> None:
    """Fine-tune again a teacher whose results are here but whose weights are not (they stay out of git).

    The fine-tune is seeded, so it gives the same teacher: it runs in a sibling folder and its weights
    move into `teacher_run` only if it scores what the recorded teacher scored on dev and test, so the
    recipes already reported and those trained now share one teacher. The recorded timing is kept for
    the recipes trained before; this fine-tune's timing (`RESTORED_TIME_FILE`) is what the recipes
    trained from now on are costed against, since the machine or its load may have changed.

    Raises:
        RunError: the new teacher scores differently (the sibling folder is left for inspection).
    """
    spare = teacher_run.with_name(teacher_run.name + "-weights")
    log(
        f"{teacher_run} holds the teacher's results but not its weights (not kept in git); fine-tuning "
        f"it again in {spare}"
    )
    with _Clock(threads) as clock:
        trainer.fine_tune_teacher(dataclasses.replace(cfg, output_dir=str(spare)), progress=progress)
    recorded = json.loads((teacher_run / "teacher_eval.json").read_text())
    fresh = json.loads((spare / "teacher_eval.json").read_text())
    scores = [(r["dev"]["accuracy"], r["test"]["accuracy"]) for r in (recorded, fresh)]
    if scores[0] != scores[1]:
        raise RunError(
            f"the teacher fine-tuned again in {spare} scores dev/test {scores[1][0]:.4f}/{scores[1][1]:.4f}, "
            f"the recorded one in {teacher_run} {scores[0][0]:.4f}/{scores[0][1]:.4f}; "
            "train every recipe of this seed from the new one (move the seed's folder away) or restore the weights"
        )
    atomic_write_json(teacher_run / RESTORED_TIME_FILE, clock.timing.__dict__)
    (spare / "teacher").rename(teacher_run / "teacher")
    shutil.rmtree(spare)


def run_seed(
    args: argparse.Namespace, base: TrainConfig, specs: Sequence[RecipeSpec], seed: int, root: Path
) -> list[dict]:
    """Teacher once, then every recipe from it; one row per recipe."""
    teacher_run = root / "elastic" / f"seed-{seed}" / "teacher"
    teacher_cfg = load_config(
        TrainConfig,
        args.config,
        [*args.overrides, f"seed={seed}", f"output_dir={teacher_run}", "resume=true"],
    )
    if args.report_only and Timing.load(teacher_run / TIME_FILE) is None:
        log(f"seed {seed}: no finished teacher in {teacher_run}; skipped (--report-only)")
        return []
    log(f"seed {seed}: teacher in {teacher_run}")
    t_time = _timed(
        teacher_run,
        args.threads,
        lambda: trainer.fine_tune_teacher(teacher_cfg, progress=not args.no_progress),
    )
    if not args.report_only and not (teacher_run / "teacher").is_dir():
        restore_teacher_weights(teacher_run, teacher_cfg, threads=args.threads, progress=not args.no_progress)
    restored = Timing.load(teacher_run / RESTORED_TIME_FILE)
    t_eval = json.loads((teacher_run / "teacher_eval.json").read_text())
    teacher_test = t_eval["test"]["accuracy"]
    rows = []
    for spec in specs:
        run_dir = root / "elastic" / f"seed-{seed}" / spec.name
        cfg = load_config(
            TrainConfig,
            spec.preset,
            [
                *args.overrides,
                *spec.overrides,
                f"seed={seed}",
                f"output_dir={run_dir}",
                f"teacher.path={teacher_run / 'teacher'}",
                "resume=true",
            ],
        )
        _check_shared(spec.name, cfg, teacher_cfg)
        reuse = args.reuse.get(spec.name)
        if reuse is not None and _seed_of_run(Path(reuse)) in (seed, None):
            run_dir, timing = _reused(Path(reuse), teacher_run)
            log(f"seed {seed}: recipe {spec.name}: reusing the finished run {run_dir}")
        elif args.report_only and Timing.load(run_dir / TIME_FILE) is None:
            log(f"seed {seed}: recipe {spec.name} has not finished in {run_dir}; skipped (--report-only)")
            continue
        else:
            _check_same_config(spec.name, run_dir, cfg)
            log(f"seed {seed}: recipe {spec.name} ({cfg.recipe}) in {run_dir}")
            timing = _timed(
                run_dir,
                args.threads,
                lambda cfg=cfg: trainer.train(cfg, progress=not args.no_progress),
                teacher=restored,
            )
        resumed = timing.resumed or t_time.resumed
        teacher_wall = timing.own_teacher_wall_s or t_time.wall_s
        teacher_cpu = timing.own_teacher_cpu_s or t_time.cpu_s
        evals = read_jsonl(RunDir(run_dir).eval)
        test = {r["subnet"]: r["test_accuracy"] for r in evals}
        rows.append(
            {
                "recipe": spec.name,
                "preset": spec.preset,
                "overrides": spec.overrides,
                "seed": seed,
                "teacher_test_accuracy": teacher_test,
                "teacher_wall_s": teacher_wall,
                "teacher_cpu_s": teacher_cpu,
                "wall_s": timing.wall_s,
                "cpu_s": timing.cpu_s,
                "threads": timing.threads,
                "loadavg": [
                    t_time.loadavg_start,
                    t_time.loadavg_end,
                    timing.loadavg_start,
                    timing.loadavg_end,
                ],
                # A resumed run (or teacher) lost the time before its stop: no cost from it.
                "cost_wall": nan_if(resumed, timing.wall_s / teacher_wall),
                "cost_cpu": nan_if(resumed, timing.cpu_s / teacher_cpu),
                "resumed": resumed,
                "test_accuracy": test,
                "mean_test_accuracy": statistics.fmean(test.values()),
                "min_test_accuracy": min(test.values()),
            }
        )
    return rows


def nan_if(condition: bool, value: float) -> float:
    return float("nan") if condition else value


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _fmt(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    m, s = _mean_std([v * scale for v in values])
    return f"{m:.{digits}f}" if len(values) == 1 else f"{m:.{digits}f} ± {s:.{digits}f}"


def summarise(rows: Sequence[dict], reference: str) -> tuple[str, list[str]]:
    """The markdown report and the PASS/MISS lines (checks on means over seeds)."""
    names = list(dict.fromkeys(r["recipe"] for r in rows))
    by_name = {n: [r for r in rows if r["recipe"] == n] for n in names}
    subnets = list(rows[0]["test_accuracy"])
    # Each seed has its own teacher: a recipe is measured against the mean of its own seeds' teachers.
    teachers = {n: statistics.fmean(r["teacher_test_accuracy"] for r in by_name[n]) for n in names}
    ref_mean = (
        statistics.fmean(r["mean_test_accuracy"] for r in by_name[reference])
        if reference in by_name
        else None
    )
    lines = [
        "| recipe | seeds | cost (wall) | cost (CPU) | mean test % | min test % | min / teacher |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    checks = []
    for n in names:
        rs, teacher = by_name[n], teachers[n]
        # Resumed runs have no cost; a reused run has a wall time but no CPU time (NaN).
        costed = [r for r in rs if not r.get("resumed")]
        wall, cpu = [r["cost_wall"] for r in costed], [r["cost_cpu"] for r in costed]
        mean = statistics.fmean(r["mean_test_accuracy"] for r in rs)
        per_subnet = {s: statistics.fmean(r["test_accuracy"][s] for r in rs) for s in subnets}
        worst = min(per_subnet, key=per_subnet.get)  # type: ignore[arg-type]
        timed = bool(cpu) and all(math.isfinite(c) for c in cpu)
        lines.append(
            f"| {n} | {', '.join(str(r['seed']) + ('*' if r.get('resumed') else '') for r in rs)} "
            f"| {(_fmt(wall, 1.0) + 'x') if wall else '–'} | {(_fmt(cpu, 1.0) + 'x') if timed else '–'} "
            f"| {_fmt([r['mean_test_accuracy'] for r in rs])} "
            f"| {_fmt([r['min_test_accuracy'] for r in rs])} ({worst}) | {per_subnet[worst] / teacher:.3f} |"
        )
        # At one thread a run's CPU time is its wall time on an idle core, whatever else the machine
        # did; wall times only compare runs made under the same load (a reused run against its own
        # teacher).
        if wall:
            cost, kind = (statistics.fmean(cpu), "CPU") if timed else (statistics.fmean(wall), "wall")
            checks.append(
                f"{'PASS' if cost <= MAX_COST_RATIO else 'MISS'} {n}: cost {cost:.2f}x the teacher's {kind} time "
                f"(goal <= {MAX_COST_RATIO}x; wall {statistics.fmean(wall):.2f}x)"
            )
        else:
            checks.append(f"---- {n}: cost not measured (every run of it was resumed after a stop)")
        if ref_mean is not None and n != reference:
            ok = mean >= ref_mean - MEAN_SLACK_PT / 100
            checks.append(
                f"{'PASS' if ok else 'MISS'} {n}: mean test accuracy {100 * mean:.2f}% vs {reference} {100 * ref_mean:.2f}% (goal >= {100 * ref_mean - MEAN_SLACK_PT:.2f}%)"
            )
        short = [s for s in subnets if per_subnet[s] < MIN_FRACTION * teacher]
        checks.append(
            f"{'PASS' if not short else 'MISS'} {n}: every subnet >= {MIN_FRACTION:.0%} of the teacher's {100 * teacher:.2f}% "
            f"(worst {worst} {100 * per_subnet[worst]:.2f}% = {per_subnet[worst] / teacher:.3f}"
            + (f"; below: {', '.join(short)}" if short else "")
            + ")"
        )
    lines += ["", "Test accuracy % per subnet (and as a fraction of the teacher's):", ""]
    lines.append("| subnet | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for s in subnets:
        cells = []
        for n in names:
            vals = [r["test_accuracy"][s] for r in by_name[n]]
            cells.append(f"{_fmt(vals)} ({statistics.fmean(vals) / teachers[n]:.3f})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines), checks


def against_baselines(results_jsonl: Path, rows: Sequence[dict], recipe: str) -> str:
    """The accuracy targets and dominance checks of bench/accuracy_latency.py with `recipe`'s subnets.

    Baseline rows (accuracy, latency, fine-tune time) come from an earlier accuracy_latency run
    (`results_jsonl`) whose teacher is this bench's teacher (same dev and test accuracy). The
    recipe's grid subnets have exactly the shapes of that run's DynaBERT subnets, so their latency is
    the one measured there, interleaved with the baselines; only their accuracy is this bench's.
    """
    from supernet.baselines import BenchRow, check_dominance, check_targets

    earlier = [BenchRow(**row) for row in read_jsonl(results_jsonl)]
    ours = [r for r in rows if r["recipe"] == recipe]
    if not ours:
        raise RunError(f"--against: no finished run of recipe '{recipe}'")
    teacher = next(r for r in earlier if r.method == "teacher")
    if abs(teacher.test_accuracy - ours[0]["teacher_test_accuracy"]) > 1e-9:
        raise RunError(
            f"--against {results_jsonl}: its teacher scores {100 * teacher.test_accuracy:.2f}% on test, this "
            f"bench's {100 * ours[0]['teacher_test_accuracy']:.2f}%: not the same teacher"
        )
    test = {k: statistics.fmean(r["test_accuracy"][k] for r in ours) for k in ours[0]["test_accuracy"]}
    # CPU time at one thread is the run's wall time on an idle core; a reused run only has wall time.
    cpu = [r.get("cpu_s", float("nan")) for r in ours]
    timed = all(math.isfinite(c) for c in cpu)
    elastic_s = statistics.fmean(cpu) if timed else statistics.fmean(r["wall_s"] for r in ours)
    swapped = [
        dataclasses.replace(r, test_accuracy=test[r.model], train_seconds=elastic_s)
        if r.method == "dynabert"
        else r
        for r in earlier
    ]
    checks = check_targets(swapped) + check_dominance(swapped)
    lines = [
        f"Against the baselines of `{results_jsonl}` (same teacher; their latency, measured interleaved "
        f"with subnets of the same shapes), with `{recipe}`'s subnets in place of DynaBERT's: "
        f"{sum(c.status == 'PASS' for c in checks)}/{len(checks)} PASS.",
        "",
        "| check | result | detail |",
        "|---|---|---|",
        *[f"| {c.name.replace('DynaBERT', recipe)} | **{c.status}** | {c.detail} |" for c in checks],
        "",
        f"One `{recipe}` training ({elastic_s / 60:.1f} min {'CPU time at one thread' if timed else 'wall'}) "
        "costs, in fine-tunes of each baseline (their recorded wall time, with other jobs on the machine):",
        "",
        "| baseline | fine-tune min | elastic / baseline |",
        "|---|---:|---:|",
    ]
    for r in earlier:
        if r.method not in ("teacher", "dynabert") and r.train_seconds:
            lines.append(
                f"| {r.method} {r.model} | {r.train_seconds / 60:.1f} | {elastic_s / r.train_seconds:.2f} |"
            )
    return "\n".join(lines)


def parse_recipes(raw: Sequence[Sequence[str]], default_preset: str) -> list[RecipeSpec]:
    specs = []
    for items in raw:
        name, rest = items[0], list(items[1:])
        preset = rest.pop(0) if rest and rest[0].endswith((".yaml", ".yml")) else default_preset
        bad = [o for o in rest if "=" not in o]
        if bad:
            raise ConfigError(f"--recipe {name}: '{bad[0]}' is neither a preset (.yaml) nor key=value")
        specs.append(RecipeSpec(name, preset, rest))
    return specs


# The files main writes in its results folder, each with a check that an existing one is its own (it
# replaces those, and no file of the user's).
OURS = {
    "elastic_cost.jsonl": rows_with("recipe", "preset", "seed", "wall_s"),
    "elastic_cost.md": text_starting("### Elastic training cost: "),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", required=True, help="the preset whose recipe is measured (and whose teacher all share)"
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    parser.add_argument(
        "--recipe",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME [PRESET.yaml] [key=value ...]",
        help="another recipe to compare (repeatable)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="recipe name whose mean the others must match (default: dynabert, when one is so named)",
    )
    parser.add_argument(
        "--reuse",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "RUN_DIR"),
        help="take recipe NAME's results from a finished run trained from the same teacher (for the seed "
        "that run was trained with; other seeds train NAME as usual)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: report the seeds and recipes whose runs have finished, listing the rest",
    )
    parser.add_argument("--only", nargs="+", default=None, help="train/report only these recipe names")
    parser.add_argument(
        "--against",
        nargs="+",
        default=None,
        metavar="RESULTS.jsonl [RECIPE]",
        help="results.jsonl of bench/accuracy_latency.py from the same teacher: redo its checks with RECIPE's "
        "subnets (default --config's recipe)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--threads", type=thread_count, default=1, help="torch intra-op threads of every run")
    parser.add_argument(
        "--out", type=output_folder, default=None, help="results folder (default results/<task>)"
    )
    parser.add_argument("--benchmarks", default=None, type=markdown_file, help=BENCHMARKS_HELP)
    parser.add_argument("--no-benchmarks", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        base = load_config(TrainConfig, args.config, args.overrides)
        specs = [RecipeSpec(base.recipe, args.config), *parse_recipes(args.recipe, args.config)]
        if len({s.name for s in specs}) != len(specs):
            raise ConfigError(f"recipe names must be unique, got {[s.name for s in specs]}")
        args.reuse = dict(args.reuse)
        check_specs(args, base, specs)
        args.reference = args.reference or "dynabert"
        if args.only:
            specs = [s for s in specs if s.name in args.only]
        slug = task_slug(base.task)
        root = Path(args.out) if args.out else REPO / "results" / slug
        # --out was checked as it was parsed; the default folder is checked here, and the files in either.
        problem = results_folder_problem(root, OURS)
        if problem is not None:
            raise RunError(problem)
        rows = []
        for seed in args.seeds or [base.seed]:
            rows += run_seed(args, base, specs, seed, root)
        if not rows:
            raise RunError(
                f"no finished run to report under {root / 'elastic'} (--report-only trains nothing)"
            )
    except (ConfigError, DataError, RunError, TrainingError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    atomic_write_text(root / "elastic_cost.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    table, checks = summarise(rows, args.reference)
    loads = [pair[0] for r in rows for pair in r["loadavg"] if pair]
    md = "\n".join(
        [
            f"### Elastic training cost: {slug}, {base.model}",
            "",
            f"`python bench/elastic_cost.py --config {args.config}"
            + "".join(f" {o}" for o in args.overrides)  # they change every run: part of the command
            + "".join(f" --recipe {' '.join(r)}" for r in args.recipe)
            + "".join(f" --reuse {name} {path}" for name, path in args.reuse.items())
            + (f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds else "")
            + (" --report-only" if args.report_only else "")
            + (f" --against {' '.join(args.against)}" if args.against else "")
            + "`",
            "",
            "Per seed, every recipe starts from the same fine-tuned teacher (test accuracy "
            + ", ".join(
                f"seed {seed} {100 * acc:.2f}%"
                for seed, acc in sorted({r["seed"]: r["teacher_test_accuracy"] for r in rows}.items())
            )
            + f"); torch on {args.threads} thread(s). A recipe's fractions are of its own seeds' mean teacher. "
            f"Cost = time of everything after "
            f"the teacher (importance, reorder, all stages; grid evaluation excluded) / time of the teacher fine-tune "
            f"(for a run trained after its teacher was fine-tuned again for the weights git does not keep, that "
            f"fine-tune, timed on the same machine: `{RESTORED_TIME_FILE}`). "
            f"1-minute load average at the starts and ends of the runs: {min(loads):.1f}-{max(loads):.1f} "
            f"(2 cores; above 1 another job shared the machine and wall times are inflated, CPU times much less).",
            "",
            table,
            "",
            "Checks (on means over seeds):",
            "",
            *[f"- {c}" for c in checks],
        ]
    )
    if args.against:
        try:
            recipe = args.against[1] if len(args.against) > 1 else base.recipe
            md += "\n\n" + against_baselines(Path(args.against[0]), rows, recipe)
        except RunError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    atomic_write_text(root / "elastic_cost.md", md + "\n")
    path = benchmarks_file(args, REPO / "BENCHMARKS.md")
    if path is not None:
        if not update_section(path, f"elastic-{slug}", md):
            return 2
    print(md)
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

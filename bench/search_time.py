"""Wall time of `search.py --per-layer` on the packaged MiniLM supernet (README: "at most 5 minutes").

    python bench/search_time.py [--config configs/rt-minilm.yaml] [--work DIR] [--threads 1]
                                [--runs 1] [--search-options "..."] [--json FILE] [key=value ...]

A search's cost depends on the model's shapes, the dev split's size, the search's settings and on which
subnets the evolution keeps (larger ones cost more to score), not on how well the weights are trained.
So this trains, in ``--work`` (kept between calls: a finished run is reused), a per-layer supernet of
the preset (``per_layer_sampling=true``: its shapes, its data, split and max_length) on a short
schedule: 40 teacher steps and 20 elastic ones, enough for larger subnets to score higher (a one-step
model scores every subnet alike, and the evolution then keeps candidates of any size, cheaper on
average than a trained run's, which crowd the budget). Training writes the grid accuracies every
trained run has in eval.jsonl. Each timed run then copies that run afresh
(nothing cached but those accuracies, the state of a run just trained) and calls, in this process,

    search.py --run COPY --per-layer --latency-budget-ratio 0.5 --threads N --no-progress

timing its wall clock and the CPU other processes took meanwhile (`supernet.latency.monitor_load`):
grid latency, the predictor's calibration, the evolution on the dev subset, and the verified subnets
measured and scored on the whole dev split. ``key=value`` overrides go to train.py after the
bench's own; ``--search-options`` adds search.py options (e.g. "--accuracy-subset 256").

Goal (README, `--accuracy-subset`'s default): at most 5 minutes on 2 cores. README's figure is taken
with ``OMP_NUM_THREADS=1`` (torch on one thread for the scoring too), on an idle machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from supernet.cli import (  # noqa: E402
    OneLineParser,
    at_least,
    figures_file,
    folder_problem,
    search_main,
    thread_count,
    user_path,
    write_figures,
)
from supernet.io import RunDir  # noqa: E402
from supernet.latency import monitor_load, print_load_report  # noqa: E402
from supernet.profile_kit_script import cpu_description, some_names  # noqa: E402

GOAL_S = 300.0
"""README: a per-layer search of the packaged MiniLM supernet takes at most 5 minutes on 2 cores."""

TRAIN_OVERRIDES = (
    "per_layer_sampling=true",
    "teacher.max_steps=40",
    "stage_wd.max_steps=20",
    "checkpoint_every=0",
    "report_to=none",
)
"""A short schedule: the preset's shapes, data and grid evaluation, subnets that score by their size."""


def _train(config: Path, run: Path, overrides: list[str]) -> int:
    """Train (or reuse) the run in `run`; train.py's exit code."""
    command = [sys.executable, str(ROOT / "train.py"), "--config", str(config.resolve()), f"output_dir={run}"]
    command += [*TRAIN_OVERRIDES, *overrides, "resume=true", "--no-progress"]
    record = run / "search_time-train.json"
    if RunDir(run).supernet.is_dir() and record.is_file():
        if json.loads(record.read_text()) == command[2:]:
            print(f"reusing the supernet trained in {run}")
            return 0
        print(f"error: {run} was trained with other settings: pass another --work", file=sys.stderr)
        return 2
    print(f"training a short-schedule per-layer supernet of {config} in {run} (not timed)", flush=True)
    code = subprocess.run(command).returncode  # train.py says what went wrong
    if code == 0:
        record.write_text(json.dumps(command[2:]) + "\n")
    return code


def _work_problem(work: Path) -> str | None:
    """Why `work` cannot be this script's folder: it holds files the script did not make (it replaces
    timed/ and search-N.log on every call, so a user's folder there was deleted)."""
    if work.exists() and not work.is_dir():
        return f"--work {work} is a file: pass a folder"
    problem = folder_problem(work, f"--work {work}")
    if problem is not None or not work.exists():
        return problem
    foreign = [p.name for p in work.iterdir() if not _ours(p)]
    if not foreign:
        return None
    return (
        f"--work {work} holds files this script did not make ({some_names(foreign)}): pass a new or empty "
        "folder (it keeps trained/ there, and replaces timed/ and search-N.log on every call)"
    )


def _ours(path: Path) -> bool:
    """What the script makes in --work: trained/ (train.py's run), timed/ (a copy of it, carrying its
    record of the training command), search-N.log."""
    name = path.name
    if name == "timed":
        return (path / "search_time-train.json").is_file()
    return name == "trained" or (
        name.startswith("search-") and name.endswith(".log") and name[7:-4].isdigit()
    )


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    p.add_argument(
        "--config",
        type=Path,
        default=ROOT / "configs" / "rt-minilm.yaml",
        help="train.py preset of the supernet",
    )
    p.add_argument(
        "--work",
        type=user_path,
        default=Path("/tmp/search_time"),
        help="the trained run (kept and reused) and its timed copies (default /tmp/search_time)",
    )
    p.add_argument("--threads", type=thread_count, default=1, help="torch threads of the search (default 1)")
    p.add_argument("--runs", type=at_least(1), default=1, help="timed searches, each on a fresh copy")
    p.add_argument("--json", type=figures_file(__file__), default=None, help="also write the figures here")
    p.add_argument(
        "--search-options",
        default="",
        help='more search.py options, as one string: "--seed 1" (a single flag with =: --search-options=--predict)',
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="train.py overrides of the preset")
    args = p.parse_args(argv)
    args.work = args.work.absolute()  # train.py and the copies see one folder
    problem = _work_problem(args.work)
    if not args.config.is_file():  # before the line that says training starts
        problem = f"config file '{args.config}' not found"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    trained = args.work / "trained"
    code = _train(args.config, trained, args.overrides)
    if code != 0:
        return code
    search = ["--per-layer", "--latency-budget-ratio", "0.5", "--threads", str(args.threads), "--no-progress"]
    search += shlex.split(args.search_options)
    rows = []
    loads = {}
    for i in range(args.runs):
        copy = args.work / "timed"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(trained, copy)  # the trained run itself is never searched
        print(f"run {i + 1}/{args.runs}: search.py --run {copy} {' '.join(search)}", flush=True)
        log = io.StringIO()
        with monitor_load() as probe, contextlib.redirect_stdout(log):
            start = time.perf_counter()
            code = search_main(["--run", str(copy), *search])
            wall = time.perf_counter() - start
        (args.work / f"search-{i + 1}.log").write_text(log.getvalue())
        if code != 0:
            print(log.getvalue(), end="")
            print(f"error: search.py exited with {code}", file=sys.stderr)
            return code
        loads[f"run {i + 1}"] = probe.load
        rows.append(
            {
                "wall_s": round(wall, 1),
                "other_cpu_cores": probe.load.other_cpu,
                "load_avg": probe.load.load_avg,
            }
        )
        minutes, seconds = divmod(round(wall), 60)
        print(f"  {minutes} min {seconds} s wall (log: {args.work / f'search-{i + 1}.log'})")
    print_load_report(loads)
    worst = max(r["wall_s"] for r in rows)
    verdict = "PASS" if worst <= GOAL_S else "MISS"
    print(f"per-layer search <= {GOAL_S / 60:.0f} min on this machine: {verdict} (slowest {worst:.1f} s)")
    if args.json:
        figures = {
            "command": ["search.py", "--run", "RUN", *search],
            "config": str(args.config),
            "train_overrides": [*TRAIN_OVERRIDES, *args.overrides],
            "cpu": cpu_description(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "runs": rows,
            "goal_s": GOAL_S,
            "verdict": verdict,
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
        write_figures(args.json, figures, script=__file__)
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

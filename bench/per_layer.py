"""Per-layer subnets against the uniform grid, at three latency budgets, on two supernets (issue 13).

    python bench/per_layer.py --config configs/rt-minilm.yaml
    python bench/per_layer.py --config configs/rt-minilm.yaml --grid-run DIR --per-layer-run DIR

``key=value`` overrides apply to both supernets' configs.

The two supernets, both from one fine-tuned teacher:

(a) ``grid``: trained on uniform subnets only, the preset's run (``--grid-run``, default the preset's
    ``output_dir``); trained here if it has not finished.
(b) ``per-layer``: the same preset with ``per_layer_sampling=true`` (its random subnets draw heads and
    FFN width per layer), distilled from (a)'s teacher (``teacher.path``), in ``--per-layer-run``
    (default ``<out>/per_layer/seed-<seed>``); trained here if it has not finished.

Latency is measured as search.py measures it (`supernet.latency`, torch, batch 1, 128 tokens,
``--threads`` 1, cached in each run's ``latency/``). The budgets are 30%, 50% and 70% of (a)'s measured
full model. At each budget and on each supernet:

* grid pick: the grid subnet with the best dev accuracy among those measured within the budget;
* per-layer pick: what ``search.py --per-layer`` picks: the evolutionary search (predicted latency
  within the budget, candidates ranked on the fixed dev subset), its best per-layer subnets measured
  and scored on the whole dev split, then the best dev accuracy among them and the grid within the
  budget (so it is the grid pick when no per-layer subnet beats it).

Both picks are scored on TEST; a paired bootstrap (``--resamples`` resamples of the test set) gives a
95% interval of the accuracy difference. Both picks are within the same budget: the per-layer pick may
be slower than the grid pick, never slower than the budget; the table shows both latencies.

Ranking check: the Kendall tau of dev-subset accuracy against whole-dev accuracy over ``--tau-subnets``
random per-layer subnets of each supernet (how well the search's cheap fitness ranks candidates),
next to that of an OFA-style accuracy predictor (ridge regression on the per-layer encoding,
leave-one-out over the same subnets); the report says which ranks better. The search uses the subset:
the predictor needs whole-dev scores of dozens of subnets before it can rank anything.

Goal (issue 13), PASS/MISS: on (b), the per-layer pick is >= 0.5 pt more accurate on test than the
grid pick at two of the three budgets, and (b)'s 12 grid subnets are on average no more than 0.3 pt
below (a)'s on test (eval.jsonl).

Outputs in ``<out>`` (default ``results/<task>``): per_layer.jsonl (one row per supernet and budget,
one per ranking check), per_layer.md (tables and checks), per_layer.png (both supernets' grid and
per-layer fronts, test accuracy against measured latency), and the section
``<!-- results:per-layer-<task> -->`` of BENCHMARKS.md. A file of these names that the script did not
write (a user's own) is refused before any work, and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from supernet import trainer  # noqa: E402
from supernet.baselines import BENCHMARKS_HELP, benchmarks_file, update_section  # noqa: E402
from supernet.cli import (  # noqa: E402
    OneLineParser,
    at_least,
    markdown_file,
    output_folder,
    results_folder_problem,
    rows_with,
    text_starting,
    thread_count,
)
from supernet.config import ConfigError, SearchConfig, TrainConfig, load_config  # noqa: E402
from supernet.convert import Arch  # noqa: E402
from supernet.data import PACKAGED_TASKS, DataError, make_dataloader  # noqa: E402
from supernet.io import RunDir, atomic_write, atomic_write_text, read_jsonl  # noqa: E402
from supernet.latency import LatencySetting, measuring_machine  # noqa: E402
from supernet.search import BudgetError, SubnetResult, evaluate_grid, select_under_budget  # noqa: E402
from supernet.search_cli import SearchRun, per_layer_search, search_defaults  # noqa: E402
from supernet.subnet import (  # noqa: E402
    MAX_NET,
    SubnetConfig,
    random_subnet,
    resolve_subnet,
    set_active_subnet,
    set_max_net,
)
from supernet.trainer import RunError, TrainingError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUDGET_RATIOS = (0.3, 0.5, 0.7)  # issue 13's budgets, as shares of the full model's latency
# Goals of issue 13.
MIN_GAIN_PT = 0.5
MIN_BUDGETS_WON = 2
GRID_SLACK_PT = 0.3
SUPERNETS = ("grid", "per-layer")
# search.py's defaults, so the bench searches as a user's `search.py --per-layer` does.
SEARCH_DEFAULTS = search_defaults()


def log(message: str) -> None:
    print(f"[per-layer] {message}", flush=True)


# --------------------------------------------------------------------------- statistics


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two paired samples (ties in either corrected for, as scipy's default).

    tau-b = (concordant - discordant) / sqrt((n0 - ties_x) * (n0 - ties_y)), n0 = n (n - 1) / 2, where
    ties_x counts the pairs tied in x (whether or not tied in y), likewise ties_y.

    Raises:
        ValueError: the samples differ in length, have fewer than 2 pairs, or one is constant.
    """
    if len(x) != len(y):
        raise ValueError(f"kendall_tau needs paired samples, got {len(x)} and {len(y)} values")
    n = len(x)
    if n < 2:
        raise ValueError(f"kendall_tau needs at least 2 pairs, got {n}")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            ties_x += dx == 0
            ties_y += dy == 0
            if dx * dy > 0:
                concordant += 1
            elif dx * dy < 0:
                discordant += 1
    n0 = n * (n - 1) // 2
    if ties_x == n0 or ties_y == n0:
        raise ValueError("kendall_tau is undefined when one sample is constant")
    return (concordant - discordant) / ((n0 - ties_x) * (n0 - ties_y)) ** 0.5


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float, float]:
    """Difference of mean(a) - mean(b) and its percentile bootstrap interval over paired resamples.

    Args:
        a, b: per-example scores (e.g. 1 = correct) of two models on the same examples.
        resamples: bootstrap resamples of the examples (with replacement, same rows for a and b).
        seed: seed of the resampling.
        level: coverage of the interval.

    Returns:
        (difference, low, high), with low <= high.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired_bootstrap needs two equal-length 1-d samples, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    diffs = (a[idx] - b[idx]).mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(a.mean() - b.mean()), float(low), float(high)


def encode(cfg: SubnetConfig, arch: Arch) -> np.ndarray:
    """OFA-style encoding of a subnet: per layer, whether it runs and its head and FFN shares (0 if not)."""
    r = resolve_subnet(arch, cfg)
    kept = set(r.layers)
    rows = [
        (1.0, r.heads[i] / arch.num_heads, r.ffn[i] / arch.ffn_dim) if i in kept else (0.0, 0.0, 0.0)
        for i in range(arch.num_layers)
    ]
    return np.asarray(rows, dtype=float).ravel()


def ridge_loo(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Leave-one-out predictions of a ridge regression (intercept not penalised) of `y` on `x`.

    The accuracy predictor of Once-for-All is a small MLP on this encoding; with the few dozen subnets a
    CPU can afford to score on the whole dev split, a ridge regression is the model that can be fitted.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    design = np.hstack([np.ones((len(x), 1)), x])
    penalty = alpha * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    out = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        a, b = design[keep], y[keep]
        w = np.linalg.solve(a.T @ a + penalty, a.T @ b)
        out[i] = design[i] @ w
    return out


# --------------------------------------------------------------------------- goal


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def goal_checks(rows: Sequence[dict[str, Any]]) -> tuple[list[str], bool]:
    """The PASS/MISS lines of issue 13's goal and whether it is met.

    Args:
        rows: the bench's rows: ``kind == "pair"`` rows (supernet, budget_ratio, diff_pt or None when
            a budget admits no subnet, the picks' latency_ms under "grid" and "per_layer") and
            ``kind == "grid"`` rows (supernet, mean_test_accuracy).
    """
    pairs = [r for r in rows if r["kind"] == "pair" and r["supernet"] == "per-layer"]
    won = [r for r in pairs if r["diff_pt"] is not None and r["diff_pt"] >= MIN_GAIN_PT]
    gains = ", ".join(f"{100 * r['budget_ratio']:.0f}%: {_signed(r['diff_pt'])}" for r in pairs)
    gain_ok = len(won) >= MIN_BUDGETS_WON
    # Both picks fit the budget; under the stricter reading the per-layer pick is also no slower.
    no_slower = [r for r in won if r["per_layer"]["latency_ms"] <= r["grid"]["latency_ms"]]
    lines = [
        f"{'PASS' if gain_ok else 'MISS'} per-layer supernet: per-layer pick >= {MIN_GAIN_PT} pt above the grid pick "
        f"on test at {len(won)} of {len(pairs)} budgets (goal >= {MIN_BUDGETS_WON}; test gain pt by budget {gains}; "
        f"{len(no_slower)} of those {len(won)} also no slower than the grid pick)"
    ]
    means = {r["supernet"]: r["mean_test_accuracy"] for r in rows if r["kind"] == "grid"}
    drop = 100 * (means["grid"] - means["per-layer"])
    grid_ok = drop <= GRID_SLACK_PT
    lines.append(
        f"{'PASS' if grid_ok else 'MISS'} per-layer supernet: its grid subnets average "
        f"{100 * means['per-layer']:.2f}% on test vs {100 * means['grid']:.2f}% for the grid-only supernet "
        f"({_signed(-drop + 0.0)} pt; goal >= -{GRID_SLACK_PT} pt)"
    )
    return lines, gain_ok and grid_ok


# --------------------------------------------------------------------------- runs


def task_slug(task: str) -> str:
    return task if task in PACKAGED_TASKS else Path(task).stem


def _finished(run_dir: Path) -> bool:
    run = RunDir(run_dir)
    return run.eval.is_file() and (run.supernet / "config.json").is_file()


def _teacher_of(cfg: TrainConfig) -> Path:
    """The teacher folder a run distilled from: its teacher.path, else the one it fine-tuned."""
    if cfg.teacher.path is not None:
        return Path(cfg.teacher.path)
    path = RunDir(Path(cfg.output_dir)).teacher
    if not (path / "config.json").is_file():
        raise RunError(f"{cfg.output_dir} holds no fine-tuned teacher ({path}); finish its training first")
    return path


_OUR_TABLE = text_starting("### Per-layer subnets against the grid: ")
# The files main writes in its results folder, each with a check that an existing one is its own (it
# replaces those, and no file of the user's): the plot counts as ours when the table beside it is.
OURS = {
    "per_layer.jsonl": rows_with("kind", "supernet", "run"),
    "per_layer.md": _OUR_TABLE,
    "per_layer.png": lambda path: _OUR_TABLE(path.with_name("per_layer.md")),
}


def results_folder(args: argparse.Namespace, task: str) -> Path:
    """Where the results go (--out, else results/<task>), checked: a folder that can be written and holds
    no file of the user's under the names main writes.

    Raises:
        RunError: in one line.
    """
    out = Path(args.out) if args.out else REPO / "results" / task_slug(task)
    # --out was checked as it was parsed; the default folder is checked here, and the files in either.
    problem = results_folder_problem(out, OURS)
    if problem is not None:
        raise RunError(problem)
    return out


def prepare_runs(args: argparse.Namespace) -> dict[str, Path]:
    """The two finished run directories, training what is missing (resumably)."""
    grid_dir = Path(args.grid_run) if args.grid_run else None
    base = load_config(
        TrainConfig, args.config, [*args.overrides, *([f"output_dir={grid_dir}"] if grid_dir else [])]
    )
    grid_dir = Path(base.output_dir)
    results_folder(args, base.task)  # refused before any training, not after it
    if base.per_layer_sampling:
        raise ConfigError("--config must train the grid-only supernet: set per_layer_sampling=false")
    if grid_dir.is_dir() and RunDir(grid_dir).config.is_file():
        trained = load_config(TrainConfig, RunDir(grid_dir).config)
        if trained.per_layer_sampling:
            raise ConfigError(
                f"--grid-run {grid_dir} was trained with per_layer_sampling=true; pass a grid-only run"
            )
    if not _finished(grid_dir):
        log(f"training the grid-only supernet in {grid_dir}")
        trainer.train(
            load_config(TrainConfig, args.config, [*args.overrides, f"output_dir={grid_dir}", "resume=true"]),
            progress=not args.no_progress,
        )
    grid_cfg = load_config(TrainConfig, RunDir(grid_dir).config)
    out = results_folder(args, grid_cfg.task)
    pl_dir = Path(args.per_layer_run) if args.per_layer_run else out / "per_layer" / f"seed-{grid_cfg.seed}"
    if not _finished(pl_dir):
        log(f"training the per-layer supernet in {pl_dir}")
        pl_cfg = load_config(
            TrainConfig,
            args.config,
            [
                *args.overrides,
                "per_layer_sampling=true",
                f"output_dir={pl_dir}",
                f"teacher.path={_teacher_of(grid_cfg)}",
                "resume=true",
            ],
        )
        if pl_cfg.recipe != "single-stage":
            raise ConfigError(
                f"per_layer_sampling needs recipe=single-stage; the preset's recipe is {pl_cfg.recipe!r}"
            )
        trainer.train(pl_cfg, progress=not args.no_progress)
    trained = load_config(TrainConfig, RunDir(pl_dir).config)
    if not trained.per_layer_sampling:
        raise ConfigError(f"--per-layer-run {pl_dir} was trained without per_layer_sampling=true")
    return {"grid": grid_dir, "per-layer": pl_dir}


# --------------------------------------------------------------------------- scoring


@dataclass
class Supernet:
    """One supernet's measuring objects plus per-example test scores."""

    name: str
    sr: SearchRun
    test_loader: Any
    correct: dict[str, np.ndarray]

    def test_correct(self, cfg: SubnetConfig) -> np.ndarray:
        """1.0 where `cfg` classifies a test example right, in test order (cached by name)."""
        if cfg.name not in self.correct:
            model = self.sr.model
            set_active_subnet(model, cfg)
            model.eval()
            hits = []
            with torch.no_grad():
                for batch in self.test_loader:
                    inputs = {k: v for k, v in batch.items() if k != "labels"}
                    hits.append((model(**inputs).logits.argmax(-1) == batch["labels"]).float().numpy())
            set_max_net(model)
            self.correct[cfg.name] = np.concatenate(hits)
        return self.correct[cfg.name]


def _pick(results: Sequence[SubnetResult], budget_ms: float) -> SubnetResult | None:
    try:
        return select_under_budget(results, budget_ms)
    except BudgetError:
        return None


def _describe(sn: Supernet, r: SubnetResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "name": r.name,
        "spec": r.subnet.to_dict(),
        "dev_accuracy": r.accuracy,
        "test_accuracy": float(sn.test_correct(r.subnet).mean()),
        "latency_ms": r.latency_ms,
        "params": r.params,
    }


def bench_supernet(
    sn: Supernet, budgets: dict[float, float], search: SearchConfig, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[SubnetResult], list[SubnetResult]]:
    """Pair rows per budget, the grid results and the verified per-layer results of one supernet."""
    sr = sn.sr
    grid_cfgs = sr.space.grid()
    measured = sr.measure(grid_cfgs)
    predictor = sr.predictor()
    grid = evaluate_grid(
        grid_cfgs,
        evaluate=sr.evaluate,
        measure=lambda c: measured[c.name],
        predict=predictor.predict,
        cost=sr.cost,
        progress=not args.no_progress,
    )
    rows, extras = [], []
    for ratio, budget in budgets.items():
        log(f"{sn.name}: budget {100 * ratio:.0f}% = {budget:.2f} ms")
        try:
            found = per_layer_search(
                sr, search, predictor, budget, verify_top=args.verify_top, progress=not args.no_progress
            )
        except BudgetError as err:
            log(f"{sn.name}: {err}")
            found = []
        extras += found
        g = _pick(grid, budget)
        p = _pick([*grid, *found], budget)
        row: dict[str, Any] = {
            "kind": "pair",
            "supernet": sn.name,
            "run": str(sr.run.root),
            "budget_ratio": ratio,
            "budget_ms": budget,
            "grid": _describe(sn, g),
            "per_layer": _describe(sn, p),
            "per_layer_is_uniform": None if p is None else p.subnet.is_uniform,
            "diff_pt": None,
            "ci_pt": None,
            "resamples": args.resamples,
        }
        if g is not None and p is not None:
            diff, low, high = paired_bootstrap(
                sn.test_correct(p.subnet), sn.test_correct(g.subnet), resamples=args.resamples, seed=args.seed
            )
            row["diff_pt"], row["ci_pt"] = 100 * diff, [100 * low, 100 * high]
        rows.append(row)
    return rows, grid, extras


def rank_check(sn: Supernet, n: int, seed: int) -> dict[str, Any]:
    """Kendall tau of subset vs whole-dev accuracy over `n` random per-layer subnets."""
    rng = random.Random(seed)
    cfgs: dict[str, SubnetConfig] = {}
    for _ in range(100 * n):
        cfg = random_subnet(sn.sr.arch, sn.sr.space, rng, per_layer=True)
        cfgs.setdefault(cfg.name, cfg)
        if len(cfgs) == n:
            break
    subset = [sn.sr.estimate(c) for c in cfgs.values()]
    full = [sn.sr.evaluate(c) for c in cfgs.values()]
    # The alternative fitness: a predictor fitted on the other subnets' whole-dev accuracies.
    encoded = np.stack([encode(c, sn.sr.arch) for c in cfgs.values()])
    predicted = ridge_loo(encoded, np.asarray(full)).tolist() if len(cfgs) >= 3 else []
    return {
        "kind": "rank",
        "supernet": sn.name,
        "subnets": len(cfgs),
        "accuracy_subset": sn.sr.accuracy_subset,
        "kendall_tau": _tau_or_none(subset, full),
        "predictor_kendall_tau": _tau_or_none(predicted, full) if predicted else None,
        "subset_accuracy": subset,
        "dev_accuracy": full,
        "predicted_accuracy": predicted,
    }


def _tau_or_none(x: Sequence[float], y: Sequence[float]) -> float | None:
    try:
        return kendall_tau(x, y)
    except ValueError:  # a constant sample (e.g. every subnet scores the same) has no ranking
        return None


def _better_ranker(r: dict[str, Any]) -> str:
    subset, predictor = r["kendall_tau"], r["predictor_kendall_tau"]
    if subset is None or predictor is None:
        return "no ranking to compare"
    if predictor > subset:
        return "the predictor ranks better, but needs whole-dev scores of many subnets first; the search uses the subset"
    return "the subset ranks at least as well; the search uses it"


# --------------------------------------------------------------------------- report


def _tau_text(tau: float | None) -> str:
    return "-" if tau is None else f"{tau:.3f}"


def _fmt_pick(p: dict[str, Any] | None) -> str:
    if p is None:
        return "none fits"
    return f"{p['name']} {100 * p['test_accuracy']:.2f}% ({p['latency_ms']:.2f} ms)"


def report(rows: Sequence[dict[str, Any]], command: str, setting: LatencySetting) -> str:
    """The markdown of the bench (tables, ranking check, PASS/MISS lines)."""
    checks, _ = goal_checks(rows)
    pairs = [r for r in rows if r["kind"] == "pair"]
    lines = [
        "| supernet | budget | grid pick: test % (latency) | per-layer pick: test % (latency) | diff pt | 95% CI pt |",
        "|---|---:|---|---|---:|---|",
    ]
    for r in pairs:
        ci = "-" if r["ci_pt"] is None else f"[{_signed(r['ci_pt'][0])}, {_signed(r['ci_pt'][1])}]"
        diff = _signed(r["diff_pt"])
        uniform = " (a grid subnet)" if r["per_layer_is_uniform"] else ""
        lines.append(
            f"| {r['supernet']} | {100 * r['budget_ratio']:.0f}% = {r['budget_ms']:.2f} ms | {_fmt_pick(r['grid'])} "
            f"| {_fmt_pick(r['per_layer'])}{uniform} | {diff} | {ci} |"
        )
    ranks = [r for r in rows if r["kind"] == "rank"]
    rank_lines = [
        f"- {r['supernet']} supernet, {r['subnets']} random per-layer subnets: Kendall tau against whole-dev "
        f"accuracy {_tau_text(r['kendall_tau'])} for accuracy on the dev subset ({r['accuracy_subset'] or 'all'} "
        f"examples), {_tau_text(r['predictor_kendall_tau'])} for a ridge predictor on the per-layer encoding "
        f"(leave-one-out over the same subnets): {_better_ranker(r)}"
        for r in ranks
    ]
    means = {r["supernet"]: r for r in rows if r["kind"] == "grid"}
    return "\n".join(
        [
            f"`{command}`",
            "",
            f"Latency: {setting.words} on {measuring_machine(setting)['processor']}, measured medians (supernet.latency); budgets are "
            f"shares of the grid-only supernet's full model ({means['grid']['full_ms']:.2f} ms). Picks by dev accuracy "
            "within the budget, scored on test; diff = per-layer pick - grid pick on test, 95% paired bootstrap "
            f"interval over {pairs[0]['resamples'] if pairs else 0} resamples of the test set.",
            "",
            *lines,
            "",
            "How well the search's fitness (accuracy on the fixed dev subset) ranks subnets:",
            "",
            *rank_lines,
            "",
            "Checks (issue 13):",
            "",
            *[f"- {c}" for c in checks],
        ]
    )


def plot(
    fronts: dict[str, tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]],
    budgets: dict[float, float],
    path: Path,
    title: str,
) -> None:
    """Test accuracy against measured latency: each supernet's grid front and grid + per-layer front.

    `fronts` maps a supernet's name to its (grid points, verified per-layer points), each point a
    (name, latency_ms, test accuracy). supernet.search.plot_pareto draws one front per figure; this
    overlays four, so it is drawn here.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1600 / 150, 1000 / 150), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for colour, (name, (grid, per_layer)) in zip(("tab:blue", "tab:orange"), fronts.items(), strict=False):
        for points, marker in ((grid, "o"), (per_layer, "^")):
            ax.scatter(
                [p[1] for p in points],
                [100 * p[2] for p in points],
                s=14,
                marker=marker,
                color=colour,
                alpha=0.35,
            )
        for points, style, label in (
            (grid, "--o", "grid subnets"),
            (grid + per_layer, "-^", "grid + per-layer"),
        ):
            front = _front(points)
            ax.plot(
                [p[1] for p in front],
                [100 * p[2] for p in front],
                style,
                color=colour,
                markersize=5,
                label=f"{name} supernet: {label} (front)",
            )
    for ratio, ms in budgets.items():
        ax.axvline(ms, color="0.5", linestyle=":", linewidth=1)
        ax.text(ms, 0.02, f" {100 * ratio:.0f}%", transform=ax.get_xaxis_transform(), fontsize=8, color="0.4")
    ax.set_xlabel("latency (ms, measured median)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, linestyle=":", linewidth=0.7, alpha=0.8)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=150))


def _front(points: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The (label, latency, accuracy) points no other point beats on both axes, fastest first."""
    out: list[tuple[str, float, float]] = []
    for p in sorted(points, key=lambda p: (p[1], -p[2])):
        if not out or p[2] > out[-1][2]:
            out.append(p)
    return out


# --------------------------------------------------------------------------- main


def build_bench_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the preset of the grid-only supernet")
    parser.add_argument("overrides", nargs="*", help="key=value overrides applied to both supernets")
    parser.add_argument(
        "--grid-run",
        default=None,
        help="the grid-only run (default: the preset's output_dir); an unfinished one is trained there first",
    )
    parser.add_argument(
        "--per-layer-run", default=None, help="the per-layer run (default <out>/per_layer/seed-<seed>)"
    )
    parser.add_argument(
        "--out", type=output_folder, default=None, help="results folder (default results/<task>)"
    )
    parser.add_argument(
        "--threads", type=thread_count, default=1, help="torch threads for training, scoring and latency"
    )
    parser.add_argument("--warmup", type=at_least(0), default=SEARCH_DEFAULTS.warmup)
    parser.add_argument("--repeats", type=at_least(1), default=SEARCH_DEFAULTS.repeats)
    parser.add_argument("--population", type=at_least(2), default=SEARCH_DEFAULTS.population)
    parser.add_argument("--generations", type=at_least(0), default=SEARCH_DEFAULTS.generations)
    parser.add_argument("--verify-top", type=at_least(0), default=SEARCH_DEFAULTS.verify_top)
    parser.add_argument(
        "--accuracy-subset",
        type=int,
        default=SEARCH_DEFAULTS.accuracy_subset,
        help="dev examples that rank candidates during the search (0 = the whole dev split)",
    )
    parser.add_argument(
        "--budgets",
        type=float,
        nargs="+",
        default=list(BUDGET_RATIOS),
        metavar="RATIO",
        help="latency budgets as shares of the full model's measured latency (default 0.3 0.5 0.7)",
    )
    parser.add_argument(
        "--tau-subnets", type=at_least(1), default=50, help="random per-layer subnets of the ranking check"
    )
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the test set")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the search, the subset and the bootstrap"
    )
    parser.add_argument("--benchmarks", default=None, type=markdown_file, help=BENCHMARKS_HELP)
    parser.add_argument("--no-benchmarks", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    for key in (
        "threads",
        "repeats",
        "population",
        "verify_top",
        "tau_subnets",
        "resamples",
    ):
        if getattr(args, key) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}")
    if args.accuracy_subset < 0:
        raise ConfigError(
            f"--accuracy-subset must be >= 0 (0 = the whole dev split), got {args.accuracy_subset}"
        )
    bad = [r for r in args.budgets if not 0 < r <= 1]
    if bad:
        raise ConfigError(f"--budgets must be shares of the full model's latency in (0, 1], got {bad[0]}")
    if args.tau_subnets < 2:
        raise ConfigError(f"--tau-subnets must be >= 2, got {args.tau_subnets}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_bench_parser().parse_args(argv)
    try:
        _check_args(args)
        torch.set_num_threads(args.threads)
        runs = prepare_runs(args)
        setting = LatencySetting(
            device="cpu",
            backend="torch",
            batch_size=1,
            seq_len=128,
            num_threads=args.threads,
            warmup=args.warmup,
            repeats=args.repeats,
        )
        search = SearchConfig(
            run=str(runs["grid"]),
            population=args.population,
            generations=args.generations,
            seed=args.seed,
            accuracy_subset=args.accuracy_subset or None,
        )
        supernets = {}
        for name, run_dir in runs.items():
            sr = SearchRun(
                run_dir,
                setting,
                progress=not args.no_progress,
                accuracy_subset=args.accuracy_subset or None,
                subset_seed=args.seed,
            )
            test = trainer.tokenized_split(
                sr.train_cfg, sr.tokenizer, "test", model_config=sr.model.config, run=sr.run
            )
            loader = make_dataloader(test, sr.tokenizer, sr.train_cfg.eval_batch_size, shuffle=False)
            supernets[name] = Supernet(name, sr, loader, {})
        full_ms = supernets["grid"].sr.measure([MAX_NET])[MAX_NET.name].median_ms
        budgets = {ratio: ratio * full_ms for ratio in args.budgets}
        rows: list[dict[str, Any]] = []
        fronts = {}
        for name, sn in supernets.items():
            pairs, grid, extras = bench_supernet(sn, budgets, search, args)
            evals = read_jsonl(sn.sr.run.eval)
            grid_test = {r["subnet"]: r["test_accuracy"] for r in evals}
            rows += pairs
            rows.append(
                {
                    "kind": "grid",
                    "supernet": name,
                    "run": str(sn.sr.run.root),
                    "full_ms": full_ms,
                    "mean_test_accuracy": statistics.fmean(grid_test.values()),
                    "test_accuracy": grid_test,
                }
            )
            log(f"{name}: ranking check over {args.tau_subnets} random per-layer subnets")
            rows.append(rank_check(sn, args.tau_subnets, args.seed))
            grid_pts = [(r.name, r.latency_ms, grid_test[r.name]) for r in grid]
            extra_pts = [(r.name, r.latency_ms, float(sn.test_correct(r.subnet).mean())) for r in extras]
            fronts[name] = (grid_pts, extra_pts)
    except (ConfigError, DataError, RunError, TrainingError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    slug = task_slug(supernets["grid"].sr.train_cfg.task)
    out = Path(args.out) if args.out else REPO / "results" / slug  # checked by prepare_runs
    command = "python bench/per_layer.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = report(rows, command, setting)
    md = f"### Per-layer subnets against the grid: {slug}\n\n{body}"
    atomic_write_text(out / "per_layer.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out / "per_layer.md", md + "\n")
    plot(
        fronts,
        budgets,
        out / "per_layer.png",
        f"{slug}: grid vs per-layer subnets ({setting.words}; test accuracy)",
    )
    path = benchmarks_file(args, REPO / "BENCHMARKS.md")
    if path is not None:
        if not update_section(path, f"per-layer-{slug}", md):
            return 2
    print(md)
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))

"""Choosing a subnet: evaluate candidates, keep the Pareto front, pick one under a budget.

The measuring objects come in as arguments (Once-for-All's evolution search
does the same), so this module knows nothing about models, data or devices:

* ``evaluate(cfg) -> float``: the subnet's dev score, higher is better: the task's main
  metric (accuracy in [0, 1] for classification, Pearson for regression), named by
  ``SubnetResult.metric`` in results.jsonl, the table and the plot's axis;
* ``measure(cfg) -> float``: measured latency in ms (or an object with
  ``median_ms``, ``p10_ms`` and ``p90_ms`` such as ``supernet.latency.LatencyResult``,
  whose spread is then kept);
* ``predict(cfg) -> float``: predicted latency in ms (cheap, used to reject
  candidates during the evolutionary search).

Two ways to produce candidates:

* `evaluate_grid`: the uniform width x depth grid the supernet was trained on
  (DynaBERT), measured one by one;
* `evolutionary_search`: per-layer heterogeneous subnets (HAT, OFA), kept under
  the budget with the latency predictor; the caller then measures the best ones.

`pareto_front`, `select_under_budget`, `write_results`, `plot_pareto` and
`format_table` turn a list of `SubnetResult` into the decision and its report.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import numbers
import os
import random
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from supernet.convert import Arch
from supernet.elastic.depth import kept_layers
from supernet.io import atomic_write, atomic_write_many
from supernet.progress import LOG_INTERVAL_S, progress_bar
from supernet.subnet import SearchSpace, SubnetConfig, resolve_subnet

__all__ = [
    "PRECISIONS",
    "BudgetError",
    "ShortSearchWarning",
    "SubnetResult",
    "budget_that_takes",
    "evaluate_grid",
    "evolutionary_search",
    "format_table",
    "left_out_by_rounding",
    "metric_label",
    "ms_text",
    "pareto_front",
    "pareto_png",
    "plot_pareto",
    "read_results",
    "select_under_budget",
    "write_results",
]

Evaluator = Callable[[SubnetConfig], float]
"""Dev accuracy of a subnet, in [0, 1]."""
LatencyFn = Callable[[SubnetConfig], float]
"""Latency of a subnet in ms (measured or predicted)."""
CostFn = Callable[[SubnetConfig], tuple[int, int]]
"""(params, flops) of a subnet."""
Baselines = Mapping[str, Sequence[tuple[str, float, float]]]
"""Series name -> list of (label, latency_ms, accuracy in [0, 1])."""


PRECISIONS = ("fp32", "int8")
"""What a dev score can be taken on (`SubnetResult.precision`)."""


def _of_int8(results: Sequence[SubnetResult]) -> str:
    """The label's suffix for results scored on their int8 graphs (none for FP32 scores)."""
    return " of the int8 model" if results and results[0].precision == "int8" else ""


def metric_label(metric: str) -> str:
    """How a score is shown: accuracy as a percentage, other metrics (Pearson, F1, ...) times 100."""
    return "accuracy (%)" if metric == "accuracy" else f"{metric} (x100)"


class BudgetError(ValueError):
    """No subnet meets the latency budget; the message says which budget would.

    Args:
        message: the one-line message.
        budget_ms: the budget that was asked for.
        needed_ms: the least budget that would have admitted a subnet.
    """

    def __init__(
        self, message: str, *, budget_ms: float | None = None, needed_ms: float | None = None
    ) -> None:
        super().__init__(message)
        self.budget_ms = budget_ms
        self.needed_ms = needed_ms


class ShortSearchWarning(RuntimeWarning):
    """The evolutionary search found too few new subnets under the budget for a full population or
    generation, and went on with fewer.

    Args:
        shortfall: what fell short, as the message's middle (": no new distinct subnet ... subnets"):
            a caller that words its own advice takes it from here rather than from the text.
        advice: the message's end, what a caller of `evolutionary_search` can change.
    """

    def __init__(self, shortfall: str, advice: str = "") -> None:
        super().__init__(f"evolutionary search{shortfall}{advice}")
        self.shortfall = shortfall


def budget_that_takes(x: float) -> float:
    """`x` ms rounded up to 2 decimals: a suggested budget, printed with .2f, that a subnet of `x` ms fits.

    The small epsilon keeps e.g. 4.12 (stored as 4.1200000000000001) at 4.12.
    """
    return math.ceil(x * 100.0 - 1e-6) / 100.0


def ms_text(value: float) -> str:
    """Milliseconds as a line shows them: 2 decimals, or `g` form where those mislead (a budget under
    0.01 ms printed as "0.00", one of 1e308 as 309 digits)."""
    return f"{value:.2f}" if 0.01 <= value < 1e6 else f"{value:g}"


def _budget_message(budget_ms: float, name: str, latency_ms: float, what: str) -> str:
    return (
        f"latency budget {ms_text(budget_ms)} ms is below the {what} ({name}, {latency_ms:.2f} ms); "
        f"raise the budget to at least {budget_that_takes(latency_ms):.2f} ms"
    )


def _check_budget(budget_ms: float) -> float:
    if isinstance(budget_ms, bool) or not isinstance(budget_ms, (int, float)):
        raise ValueError(f"budget_ms must be a number of milliseconds, got {budget_ms!r}")
    if not math.isfinite(budget_ms) or budget_ms <= 0:
        raise ValueError(f"budget_ms must be a finite number > 0, got {budget_ms}")
    return float(budget_ms)


@dataclass(frozen=True, kw_only=True)
class SubnetResult:
    """One evaluated subnet: what it is, how accurate, how fast, how big."""

    subnet: SubnetConfig
    """The subnet."""
    name: str
    """Display name, normally ``subnet.name``."""
    accuracy: float
    """Dev score: accuracy in [0, 1], or the metric `metric` names (higher is better)."""
    latency_ms: float
    """Measured latency (median) in ms; the Pareto front and the budget use this."""
    predicted_ms: float | None
    """Latency the predictor gave, if one was used."""
    params: int
    """Parameters the subnet uses."""
    flops: int
    """Encoder FLOPs of one sequence (see `supernet.cost`)."""
    latency_spread_ms: tuple[float, float] | None = None
    """(p10, p90) of the latency measurement, if the measurer gave them."""
    other_cpu: float | None = None
    """CPU other processes took during the measurement, in cores, if the measurer recorded it."""
    latency_flags: tuple[str, ...] = ()
    """Why the latency may not be the model's alone ("load", "spread"; see
    `supernet.latency.LatencyResult.flags`); empty when clean or unknown."""
    latency_source: str | None = None
    """None when `latency_ms` was measured; otherwise where it comes from, e.g.
    "predicted from latency-table.json (<device>)" for a device profile kit's table."""
    metric: str = "accuracy"
    """What `accuracy` holds: the task's main metric (``supernet.tasks.TaskKind.main_metric``)."""
    precision: str = "fp32"
    """What `accuracy` was scored on: "fp32" (the subnet in PyTorch, as its FP32 exports score) or
    "int8" (the graph ``export.py --int8`` writes, ``model.int8.onnx``: `search.py --int8`)."""

    def __post_init__(self) -> None:
        # Fail here, at the source, rather than with a NaN silently winning or
        # losing every comparison in the front and the budget choice.
        if not isinstance(self.subnet, SubnetConfig):
            raise ValueError(f"subnet must be a SubnetConfig, got {type(self.subnet).__name__}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not math.isfinite(self.accuracy):
            raise ValueError(f"{self.name}: accuracy must be a finite number, got {self.accuracy}")
        if not math.isfinite(self.latency_ms) or self.latency_ms < 0:
            raise ValueError(f"{self.name}: latency_ms must be finite and >= 0, got {self.latency_ms}")
        if self.predicted_ms is not None and not math.isfinite(self.predicted_ms):
            raise ValueError(f"{self.name}: predicted_ms must be finite or None, got {self.predicted_ms}")
        for key in ("params", "flops"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{self.name}: {key} must be an integer >= 0, got {value!r}")
        object.__setattr__(self, "accuracy", float(self.accuracy))
        object.__setattr__(self, "latency_ms", float(self.latency_ms))
        if self.predicted_ms is not None:
            object.__setattr__(self, "predicted_ms", float(self.predicted_ms))
        if self.latency_spread_ms is not None:
            spread = tuple(float(v) for v in self.latency_spread_ms)
            if len(spread) != 2 or not all(math.isfinite(v) for v in spread) or spread[0] > spread[1]:
                raise ValueError(
                    f"{self.name}: latency_spread_ms must be (p10, p90) with p10 <= p90, "
                    f"got {self.latency_spread_ms!r}"
                )
            object.__setattr__(self, "latency_spread_ms", spread)
        if self.other_cpu is not None:
            object.__setattr__(self, "other_cpu", float(self.other_cpu))
        object.__setattr__(self, "latency_flags", tuple(str(f) for f in self.latency_flags))
        if self.precision not in PRECISIONS:
            raise ValueError(f"{self.name}: precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict; `from_json` inverts it exactly. The score is stored under its metric's name."""
        return {
            "name": self.name,
            "spec": self.subnet.to_dict(),
            "metric": self.metric,
            self.metric: self.accuracy,
            "latency_ms": self.latency_ms,
            "latency_spread_ms": None if self.latency_spread_ms is None else list(self.latency_spread_ms),
            "other_cpu": self.other_cpu,
            "latency_flags": list(self.latency_flags),
            "predicted_ms": self.predicted_ms,
            "params": self.params,
            "flops": self.flops,
            # Only when not measured here, so measured results keep their exact old form.
            **({} if self.latency_source is None else {"latency_source": self.latency_source}),
            **({} if self.precision == "fp32" else {"precision": self.precision}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SubnetResult:
        """Inverse of `to_json`.

        Args:
            d: a dict from `to_json`; extra keys (e.g. the ``pareto`` and ``chosen``
                flags `write_results` adds) are ignored.

        Raises:
            ValueError: a required key is missing or a value is invalid.
        """
        metric = d.get("metric", "accuracy")
        required = ("spec", metric, "latency_ms", "params", "flops")
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"subnet result is missing {missing}; it has {sorted(d)}")
        subnet = SubnetConfig.from_dict(dict(d["spec"]))
        spread = d.get("latency_spread_ms")
        return cls(
            subnet=subnet,
            name=d.get("name") or subnet.name,
            accuracy=d[metric],
            metric=metric,
            latency_ms=d["latency_ms"],
            predicted_ms=d.get("predicted_ms"),
            params=d["params"],
            flops=d["flops"],
            latency_spread_ms=None if spread is None else (spread[0], spread[1]),
            other_cpu=d.get("other_cpu"),
            latency_flags=tuple(d.get("latency_flags") or ()),
            latency_source=d.get("latency_source"),
            precision=d.get("precision", "fp32"),
        )


# --------------------------------------------------------------------------- choice


def pareto_front(results: Sequence[SubnetResult]) -> list[SubnetResult]:
    """The non-dominated results for (maximise accuracy, minimise measured latency).

    A result is dominated when another is at least as accurate and at least as
    fast, and strictly better in one of the two. So a result with the same
    latency as a more accurate one is dropped, while results with exactly equal
    accuracy and latency (but different subnets) are all kept; the very same
    result given twice is kept once.

    Args:
        results: evaluated subnets, in any order.

    Returns:
        The front sorted by latency (ties by name), i.e. by increasing accuracy.
    """
    unique = list(dict.fromkeys(results))  # keeps first occurrence, drops exact repeats
    # Fastest first, and the most accurate first among equal latencies, so one
    # sweep that keeps only accuracy gains finds the front.
    ordered = sorted(unique, key=lambda r: (r.latency_ms, -r.accuracy, r.name))
    front: list[SubnetResult] = []
    for r in ordered:
        if not front or r.accuracy > front[-1].accuracy:
            front.append(r)
        elif r.accuracy == front[-1].accuracy and r.latency_ms == front[-1].latency_ms:
            front.append(r)  # an exact tie with a front point: neither dominates
    return front


def select_under_budget(results: Sequence[SubnetResult], budget_ms: float) -> SubnetResult:
    """The most accurate result whose measured latency is <= `budget_ms`.

    Ties in accuracy go to the faster one (then to the name, for a stable answer).

    Args:
        results: evaluated subnets.
        budget_ms: latency budget in ms; a subnet exactly at the budget fits.

    Raises:
        BudgetError: no result fits; the one-line message names the fastest
            subnet and the budget that would admit it.
        ValueError: `results` is empty or the budget is not a positive number.
    """
    budget_ms = _check_budget(budget_ms)
    if not results:
        raise ValueError("no subnet results to choose from; evaluate some subnets first")
    fitting = [r for r in results if r.latency_ms <= budget_ms]
    if not fitting:
        fastest = min(results, key=lambda r: (r.latency_ms, -r.accuracy, r.name))
        raise BudgetError(
            _budget_message(budget_ms, fastest.name, fastest.latency_ms, "fastest subnet"),
            budget_ms=budget_ms,
            needed_ms=budget_that_takes(fastest.latency_ms),
        )
    return min(fitting, key=lambda r: (-r.accuracy, r.latency_ms, r.name))


def left_out_by_rounding(
    results: Sequence[SubnetResult], chosen: SubnetResult, budget_ms: float
) -> SubnetResult | None:
    """The best subnet more accurate than `chosen` that the budget leaves out by less than the table's
    rounding: over `budget_ms`, yet printed with 2 decimals as within it (a user who typed the figure
    the table shows shut that subnet out). None if there is none."""
    near = [
        r
        for r in results
        if budget_ms < r.latency_ms
        and float(f"{r.latency_ms:.2f}") <= budget_ms
        and r.accuracy > chosen.accuracy
    ]
    return min(near, key=lambda r: (-r.accuracy, r.latency_ms, r.name), default=None)


# --------------------------------------------------------------------------- grid


def _as_latency(
    value: Any, name: str
) -> tuple[float, tuple[float, float] | None, float | None, tuple[str, ...]]:
    """Median latency, optional (p10, p90), other processes' CPU and flags from what a measurer returned."""
    if hasattr(value, "median_ms"):
        # A LatencyResult-like object; duck-typed so this module does not import
        # supernet.latency (written separately, and heavier).
        p10, p90 = getattr(value, "p10_ms", None), getattr(value, "p90_ms", None)
        spread = None if p10 is None or p90 is None else (float(p10), float(p90))
        return (
            float(value.median_ms),
            spread,
            getattr(value, "other_cpu", None),
            tuple(getattr(value, "flags", ())),
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"{name}: the latency measurer returned {value!r}; expected ms as a float "
            "or an object with median_ms, p10_ms and p90_ms"
        )
    return float(value), None, None, ()


def evaluate_grid(
    subnets: Iterable[SubnetConfig],
    *,
    evaluate: Evaluator,
    measure: Callable[[SubnetConfig], Any],
    predict: LatencyFn | None = None,
    cost: CostFn,
    cache: dict[str, SubnetResult] | None = None,
    progress: bool = True,
    metric: str = "accuracy",
    precision: str = "fp32",
) -> list[SubnetResult]:
    """Evaluate, measure (and predict) each subnet.

    Args:
        subnets: the subnets, e.g. ``space.grid()``.
        evaluate: the dev score of a subnet (higher is better; see `metric`).
        measure: measured latency of a subnet in ms, or an object with
            ``median_ms``, ``p10_ms``, ``p90_ms`` (then the spread is recorded)
            and optionally ``other_cpu`` and ``flags`` (then the load is).
        predict: predicted latency in ms, recorded next to the measurement.
        cost: ``(params, flops)`` of a subnet.
        cache: results by subnet name; names found there are not evaluated again
            and new results are added to it (the caller persists it, e.g. with
            `write_results` / `read_results`). It must come from the same model
            and device: nothing here can tell.
        progress: show a progress bar with the current subnet's name.
        metric: the name of what `evaluate` returns (the task's main metric).
        precision: what `evaluate` scores ("fp32", or "int8": the int8 graph; see
            `SubnetResult.precision`).

    Returns:
        One result per subnet, in the order given (a repeated subnet is
        evaluated once).
    """
    cache = {} if cache is None else cache
    todo = list(subnets)
    out: list[SubnetResult] = []
    bar = progress_bar(todo, desc="subnets", unit="subnet", disable=not progress)
    for cfg in bar:
        name = cfg.name
        cached = cache.get(name)
        # A subnet to score is named at once on a terminal (scoring takes seconds); cached ones with
        # the next update. A bar written to a log redraws at its own pace (LOG_INTERVAL_S) only.
        now = cached is None and getattr(bar, "mininterval", 0.0) < LOG_INTERVAL_S  # unset when disabled
        bar.set_postfix_str(f"{name} (cached)" if cached is not None else name, refresh=now)
        if cached is None:
            accuracy = float(evaluate(cfg))
            latency, spread, other_cpu, flags = _as_latency(measure(cfg), name)
            predicted = None if predict is None else float(predict(cfg))
            params, flops = cost(cfg)
            cached = SubnetResult(
                subnet=cfg,
                name=name,
                accuracy=accuracy,
                latency_ms=latency,
                predicted_ms=predicted,
                params=int(params),
                flops=int(flops),
                latency_spread_ms=spread,
                other_cpu=other_cpu,
                latency_flags=flags,
                metric=metric,
                precision=precision,
            )
            cache[name] = cached
        out.append(cached)
    bar.close()
    return out


# --------------------------------------------------------------------------- evolution


@dataclass(frozen=True)
class _Genome:
    """Per-layer genes for every layer of the full model, plus the depth.

    Skipped layers keep their genes (they come back if a mutation deepens the
    subnet), but the phenotype `_Genes.config` does not show them.
    """

    heads: tuple[int, ...]
    ffn: tuple[int, ...]
    depth: float


class _Genes:
    """The gene pool of a search space on one architecture."""

    def __init__(self, space: SearchSpace, arch: Arch) -> None:
        # resolve_subnet raises a clear error if the narrowest width keeps 0
        # heads or neurons, or the shallowest depth keeps 0 layers.
        resolve_subnet(arch, space.smallest)
        self.space, self.arch = space, arch
        self.L = arch.num_layers
        self.head_counts = sorted({round(arch.num_heads * w) for w in space.width_mults})
        self.ffn_counts = sorted({round(arch.ffn_dim * w) for w in space.width_mults})
        self.depths = sorted(space.depth_mults)
        self.layers_of = {d: tuple(kept_layers(self.L, d)) for d in self.depths}
        # The width multiplier behind a (heads, ffn) pair, to name uniform subnets w..-d..
        self.width_of: dict[tuple[int, int], float] = {}
        for w in space.width_mults:  # widest first: the first multiplier wins a collision
            key = (round(arch.num_heads * w), round(arch.ffn_dim * w))
            self.width_of.setdefault(key, w)

    def uniform(self, width: float, depth: float) -> _Genome:
        h, f = round(self.arch.num_heads * width), round(self.arch.ffn_dim * width)
        return _Genome(heads=(h,) * self.L, ffn=(f,) * self.L, depth=depth)

    def random(self, rng: random.Random) -> _Genome:
        depth = rng.choice(self.depths)
        heads = tuple(rng.choice(self.head_counts) for _ in range(self.L))
        ffn = tuple(rng.choice(self.ffn_counts) for _ in range(self.L))
        return _Genome(heads=heads, ffn=ffn, depth=depth)

    def mutate(self, g: _Genome, rng: random.Random, prob: float) -> _Genome:
        # OFA's mutation: each gene is redrawn independently with probability `prob`.
        depth = rng.choice(self.depths) if rng.random() < prob else g.depth
        heads = tuple(rng.choice(self.head_counts) if rng.random() < prob else h for h in g.heads)
        ffn = tuple(rng.choice(self.ffn_counts) if rng.random() < prob else f for f in g.ffn)
        return _Genome(heads=heads, ffn=ffn, depth=depth)

    @staticmethod
    def crossover(a: _Genome, b: _Genome, rng: random.Random) -> _Genome:
        # OFA's crossover: each gene from either parent with equal chance.
        depth = rng.choice((a.depth, b.depth))
        heads = tuple(rng.choice(pair) for pair in zip(a.heads, b.heads, strict=True))
        ffn = tuple(rng.choice(pair) for pair in zip(a.ffn, b.ffn, strict=True))
        return _Genome(heads=heads, ffn=ffn, depth=depth)

    def config(self, g: _Genome) -> SubnetConfig:
        """The canonical SubnetConfig of a genome.

        Equal subnets must get equal names (for de-duplication and caches), so
        the genes of skipped layers are replaced by the widest counts, and a
        genome that is uniform over its kept layers becomes the grid point
        ``w..-d..`` it equals.
        """
        layers = self.layers_of[g.depth]
        kept_h = {g.heads[i] for i in layers}
        kept_f = {g.ffn[i] for i in layers}
        if len(kept_h) == 1 and len(kept_f) == 1:
            width = self.width_of.get((kept_h.pop(), kept_f.pop()))
            if width is not None:
                return SubnetConfig(width_mult=width, depth_mult=g.depth)
        keep = set(layers)
        top_h, top_f = self.head_counts[-1], self.ffn_counts[-1]
        return SubnetConfig(
            heads=tuple(h if i in keep else top_h for i, h in enumerate(g.heads)),
            ffn=tuple(f if i in keep else top_f for i, f in enumerate(g.ffn)),
            layers=layers,
        )


def _memoised(fn: Callable[[SubnetConfig], float], error: str) -> Callable[[SubnetConfig], float]:
    """`fn` called once per subnet name; a non-finite value raises ValueError(`error`)."""
    memo: dict[str, float] = {}

    def call(cfg: SubnetConfig) -> float:
        name = cfg.name
        if name not in memo:
            value = float(fn(cfg))
            if not math.isfinite(value):
                raise ValueError(error.format(value=value, name=name))
            memo[name] = value
        return memo[name]

    return call


def evolutionary_search(
    *,
    space: SearchSpace,
    arch: Arch,
    evaluate: Evaluator,
    predict: LatencyFn,
    budget_ms: float,
    population: int = 40,
    generations: int = 10,
    mutate_prob: float = 0.3,
    parents_frac: float = 0.25,
    mutation_ratio: float = 0.5,
    seed_grid: bool = True,
    max_tries: int = 200,
    rng: random.Random | int,
    progress: bool = True,
) -> list[tuple[SubnetConfig, float, float]]:
    """Evolutionary search for accurate per-layer subnets under a predicted-latency budget.

    As in OFA and HAT: a subnet has its own head count and FFN size in every
    layer (drawn from the counts the width multipliers give) and a depth from
    ``space.depth_mults`` (layers from `kept_layers`). Candidates whose
    predicted latency exceeds the budget are rejected and redrawn. Each
    generation keeps the most accurate `parents_frac` of the population and
    refills it with mutations and crossovers of those parents.

    Args:
        space: the multipliers the supernet was trained for.
        arch: dimensions of the full model (``supernet_state(model).arch``).
        evaluate: fitness, the dev accuracy of a subnet; called once per
            distinct subnet.
        predict: predicted latency in ms; called once per distinct candidate.
        budget_ms: the predicted latency every returned subnet meets.
        population: subnets per generation (>= 2).
        generations: rounds of selection and reproduction after the first population.
        mutate_prob: chance that each gene (every layer's heads and FFN size,
            and the depth) is redrawn in a mutation.
        parents_frac: share of the population kept as parents each generation.
        mutation_ratio: share of the children made by mutation; the rest by
            crossover (falling back to mutation when crossovers of the parents
            give nothing new).
        seed_grid: start from the uniform grid subnets that fit the budget (the
            largest predicted first, at most `population`), then random ones.
            The result is then never worse than the best fitting grid subnet.
        max_tries: draws allowed per new candidate; when they run out the
            population goes on smaller, with a RuntimeWarning (a tight budget
            leaves few subnets to choose from).
        rng: the only source of randomness, or an integer seed for one; a seeded one gives the same
            result.
        progress: show a progress bar over generations with the best accuracy.

    Returns:
        ``(cfg, accuracy, predicted_ms)`` for the final population, most
        accurate first (ties: faster, then name). Verify the top ones by
        measurement: the budget was only checked against the prediction.

    Raises:
        BudgetError: even the smallest subnet is predicted over the budget.
        ValueError: an argument is out of range.
    """
    budget_ms = _check_budget(budget_ms)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        rng = random.Random(int(rng))
    elif not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random or an integer seed, got {type(rng).__name__}")
    if population < 2:
        raise ValueError(f"population must be >= 2, got {population}")
    if generations < 0:
        raise ValueError(f"generations must be >= 0, got {generations}")
    for key, value in (("mutate_prob", mutate_prob), ("mutation_ratio", mutation_ratio)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{key} must be in [0, 1], got {value}")
    if not 0.0 < parents_frac <= 1.0:
        raise ValueError(f"parents_frac must be in (0, 1], got {parents_frac}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")

    genes = _Genes(space, arch)
    # Memos by canonical name: evaluation is a pass over the dev set, so a
    # subnet met again (a parent re-derived by crossover, say) must cost nothing.
    predicted_ms = _memoised(predict, "predictor returned {value} ms for {name}")
    fitness = _memoised(evaluate, "evaluator returned {value} for {name}")

    smallest_genome = genes.uniform(min(space.width_mults), min(space.depth_mults))
    smallest = genes.config(smallest_genome)
    if predicted_ms(smallest) > budget_ms:
        raise BudgetError(
            _budget_message(
                budget_ms, smallest.name, predicted_ms(smallest), "predicted latency of the smallest subnet"
            ),
            budget_ms=budget_ms,
            needed_ms=budget_that_takes(predicted_ms(smallest)),
        )

    # Individuals are (genome, canonical config); names keep the population distinct.
    pop: list[tuple[_Genome, SubnetConfig]] = []
    names: set[str] = set()

    def admit(g: _Genome, into: list[tuple[_Genome, SubnetConfig]], taken: set[str]) -> bool:
        cfg = genes.config(g)
        if cfg.name in taken or predicted_ms(cfg) > budget_ms:
            return False
        into.append((g, cfg))
        taken.add(cfg.name)
        return True

    if seed_grid:
        seeds = [genes.uniform(w, d) for w in space.width_mults for d in space.depth_mults]
        fitting = [g for g in seeds if predicted_ms(genes.config(g)) <= budget_ms]
        # Largest first: under a budget those are the likely winners.
        fitting.sort(key=lambda g: (-predicted_ms(genes.config(g)), genes.config(g).name))
        for g in fitting[:population]:
            admit(g, pop, names)
    while len(pop) < population:
        for _ in range(max_tries):
            if admit(genes.random(rng), pop, names):
                break
        else:
            # A tight budget admits few subnets; searching among those that fit
            # is more use than an error (the smallest always fits, checked above).
            if not pop:  # seed_grid=False and not one random draw fitted
                admit(smallest_genome, pop, names)
            warnings.warn(
                ShortSearchWarning(
                    f": no new distinct subnet with predicted latency <= {ms_text(budget_ms)} ms in {max_tries} "
                    f"random draws; the first population has {len(pop)} of its {population} subnets",
                    " (raise the budget or max_tries for a wider search)",
                ),
                stacklevel=2,
            )
            break
    # One step per generation and one for the first population, whose scoring alone takes as long
    # as a generation's (the bar sat at 0/N for it).
    bar = progress_bar(
        total=generations + 1, desc="evolution", unit="gen", postfix="first population", disable=not progress
    )
    for _, cfg in pop:
        fitness(cfg)  # the first population, evaluated in a fixed order
    bar.update(1)

    def ranked(individuals: list[tuple[_Genome, SubnetConfig]]) -> list[tuple[_Genome, SubnetConfig]]:
        return sorted(individuals, key=lambda ind: (-fitness(ind[1]), predicted_ms(ind[1]), ind[1].name))

    n_parents = max(1, min(population, round(population * parents_frac)))
    n_children = population - n_parents
    # Crossover needs two distinct parents.
    n_mutants = n_children if n_parents < 2 else round(n_children * mutation_ratio)

    for gen in range(generations):
        parents = ranked(pop)[:n_parents]
        # x100, as the results table shows scores
        bar.set_postfix_str(f"best {100 * fitness(parents[0][1]):.2f} ({parents[0][1].name})", refresh=False)
        nxt = list(parents)
        taken = {cfg.name for _, cfg in nxt}
        for k in range(n_children):
            for attempt in range(max_tries):
                # Parents that have converged give few new crossovers; a crossover
                # slot falls back to mutation after half its tries.
                if k < n_mutants or attempt >= max_tries // 2 or len(parents) < 2:
                    child = genes.mutate(rng.choice(parents)[0], rng, mutate_prob)
                else:
                    a, b = rng.sample(parents, 2)
                    child = genes.crossover(a[0], b[0], rng)
                if admit(child, nxt, taken):
                    break
            else:
                # Late in a search the parents may have exhausted the feasible
                # neighbourhood; a smaller generation is better than losing the
                # evaluations done so far.
                warnings.warn(
                    ShortSearchWarning(
                        f", generation {gen + 1}: no new distinct subnet under {ms_text(budget_ms)} ms in "
                        f"{max_tries} draws; continuing with {len(nxt)} subnet{'' if len(nxt) == 1 else 's'}"
                    ),
                    stacklevel=2,
                )
                break
        for _, cfg in nxt:
            fitness(cfg)  # evaluate in population order, so evaluate() sees a stable sequence
        pop = nxt
        bar.update(1)
    bar.close()
    return [(cfg, fitness(cfg), predicted_ms(cfg)) for _, cfg in ranked(pop)]


# --------------------------------------------------------------------------- files


def _fmt_float(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def write_results(
    results: Sequence[SubnetResult],
    out_dir: str | os.PathLike[str],
    *,
    budget_ms: float | None,
    chosen: SubnetResult | None,
    title: str,
    baselines: Baselines | None = None,
    folder: str = "search",
    extra: Mapping[str, bytes] | None = None,
) -> dict[str, Path]:
    """Write the search results under ``out_dir/<folder>/`` (``search/``), all files as one set
    (`atomic_write_many`: a failure, e.g. a full disk, leaves every one as it was).

    Files:
        ``results.jsonl``: one `SubnetResult.to_json` line per result, plus
        ``"pareto"`` and ``"chosen"`` flags; ``pareto.csv``: the front, fastest first (name;
        the score, a fraction for accuracy; latency_ms, the median; predicted_ms; params; flops;
        latency_flags: "load", "spread" or both joined by "+", empty when clean; precision:
        "fp32", or "int8" for a search of the int8 graphs; then latency_p10_ms and latency_p90_ms,
        empty when unknown; chosen: 1 on the chosen subnet, else 0; spec: the subnet as JSON,
        `SubnetConfig.to_dict`, quoted, which names a per-layer subnet's heads, FFN sizes and
        layers: read the file with a CSV reader); ``pareto.png``: `plot_pareto`.

    Args:
        results: every evaluated subnet.
        out_dir: the run directory; the folder is created in it.
        budget_ms: the latency budget to draw, if any.
        chosen: the selected subnet to highlight, if any.
        title: plot title.
        baselines: extra series for the plot (see `plot_pareto`).
        folder: the folder in ``out_dir`` the files go to (``search.py --out``).
        extra: more files of the same set, by name in that folder (search.py's ``chosen.json``).

    Returns:
        ``{"results": ..., "pareto_csv": ..., "pareto_png": ...}`` paths.
    """
    if not results:
        raise ValueError("no subnet results to write")
    out = Path(out_dir) / folder
    paths = {
        "results": out / "results.jsonl",
        "pareto_csv": out / "pareto.csv",
        "pareto_png": out / "pareto.png",
    }
    front = pareto_front(results)
    on_front = set(front)

    lines = []
    for r in results:
        row = r.to_json()
        row["pareto"] = r in on_front
        row["chosen"] = chosen is not None and r.name == chosen.name
        lines.append(json.dumps(row, sort_keys=False) + "\n")
    jsonl = "".join(lines).encode("utf-8")

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "name",
            results[0].metric,
            "latency_ms",
            "predicted_ms",
            "params",
            "flops",
            "latency_flags",
            "precision",
            # Added 2026-12-02 after the columns above, which keep their places.
            "latency_p10_ms",
            "latency_p90_ms",
            "chosen",
            "spec",
        ]
    )
    for r in front:
        p10, p90 = r.latency_spread_ms or (None, None)
        writer.writerow(
            [
                r.name,
                _fmt_float(r.accuracy),
                _fmt_float(r.latency_ms),
                _fmt_float(r.predicted_ms),
                r.params,
                r.flops,
                "+".join(r.latency_flags),
                r.precision,  # what the score and latency are of: the FP32 model, or the int8 graph
                _fmt_float(p10),
                _fmt_float(p90),
                int(chosen is not None and r.name == chosen.name),
                # A per-layer subnet's name is a digest: its spec is what a reader can rebuild it from.
                json.dumps(r.subnet.to_dict(), separators=(",", ":")),
            ]
        )
    table = buf.getvalue().encode("utf-8")
    png = pareto_png(results, front, budget_ms=budget_ms, chosen=chosen, title=title, baselines=baselines)
    contents = {paths["results"]: jsonl, paths["pareto_csv"]: table, paths["pareto_png"]: png}
    contents |= {out / name: data for name, data in (extra or {}).items()}
    atomic_write_many({path: functools.partial(_write_bytes, data=data) for path, data in contents.items()})
    return paths


def _write_bytes(f: IO[bytes], data: bytes) -> None:
    f.write(data)


def read_results(path: str | os.PathLike[str]) -> list[SubnetResult]:
    """Read a ``results.jsonl`` written by `write_results` (blank lines skipped).

    Handy to rebuild an `evaluate_grid` cache: ``{r.name: r for r in read_results(p)}``.
    """
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(SubnetResult.from_json(json.loads(line)))
            except (ValueError, TypeError) as err:
                raise ValueError(f"{path}:{lineno}: {err}") from err
    return out


# --------------------------------------------------------------------------- plot

# Label offsets in points, tried in order around each point: close ones first,
# then further out (with a leader line).
_OFFSETS = [
    (r * dx, r * dy)
    for r in (6, 14, 24)
    for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
]
_BASELINE_MARKERS = ["s", "^", "D", "v", "P", "X", "h", "<", ">"]
# Blue is the front, red the budget, gold the chosen subnet: baselines use the rest.
_BASELINE_COLOURS = [
    "tab:green",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:orange",
]


def plot_pareto(
    results: Sequence[SubnetResult],
    front: Sequence[SubnetResult] | None,
    path: str | os.PathLike[str],
    *,
    budget_ms: float | None = None,
    chosen: SubnetResult | None = None,
    title: str = "",
    baselines: Baselines | None = None,
) -> None:
    """Accuracy against measured latency, written atomically as a 1600x1000 px PNG (`pareto_png`).

    Args:
        path: the PNG to write; the others as for `pareto_png`.
    """
    png = pareto_png(results, front, budget_ms=budget_ms, chosen=chosen, title=title, baselines=baselines)
    atomic_write(Path(path), lambda f: f.write(png))


def plot_title(title: str, results: Sequence[SubnetResult]) -> str:
    """`title`, and a second line when some latencies carry a flag: a plot travels without its table."""
    flagged = sum(bool(r.latency_flags) for r in results)
    if not flagged:
        return title
    note = f"{flagged} of {len(results)} latencies flagged (load or spread): see the table, remeasure"
    return f"{title}\n{note}" if title else note


_WHISKER_ROOM = 0.25
"""How far beyond the slowest median (as a fraction of it) the x axis stretches for p90 whiskers."""


def plot_limits(
    points: Sequence[tuple[float, float]], results: Sequence[SubnetResult], *, budget_ms: float | None = None
) -> tuple[tuple[float, float], tuple[float, float], list[SubnetResult]]:
    """The plot's (x limits, y limits, subnets whose p90 lies beyond the x axis).

    The axes fit every point (subnets and baselines, y in %) and the budget, with margins for the
    labels. p10-p90 whiskers widen the x axis by at most `_WHISKER_ROOM` of the right-most point or
    budget: one measurement taken under load (a p90 of 800 ms beside medians of 10-20 ms) squeezed
    every point into the left edge of the plot. A whisker the axis cuts is listed.
    """
    xs = [x for x, _ in points] + ([budget_ms] if budget_ms is not None else [])
    ys = [y for _, y in points]
    x_lo, x_hi = min(xs), max(xs)
    room = x_hi + _WHISKER_ROOM * abs(x_hi)
    spread = [r for r in results if r.latency_spread_ms is not None]
    for r in spread:
        low, high = r.latency_spread_ms  # type: ignore[misc]
        x_lo, x_hi = min(x_lo, low), max(x_hi, min(high, room))
    y_lo, y_hi = min(ys), max(ys)
    # Margins leave room for the labels of the outermost points.
    x_pad = 0.08 * (x_hi - x_lo) or 0.1 * max(abs(x_hi), 1e-3)
    y_pad = 0.10 * (y_hi - y_lo) or 1.0
    xlim = (max(0.0, x_lo - x_pad) if x_lo >= 0 else x_lo - x_pad, x_hi + x_pad)
    beyond = [r for r in spread if r.latency_spread_ms[1] > xlim[1]]  # type: ignore[index]
    # Scores are at most 100%: an axis running to 101% (every subnet at 100) read as a scale error.
    y_top = y_hi + y_pad if y_hi > 100.0 else min(y_hi + y_pad, 100.0 + 0.25 * y_pad)
    return xlim, (y_lo - y_pad, y_top), beyond


def pareto_png(
    results: Sequence[SubnetResult],
    front: Sequence[SubnetResult] | None,
    *,
    budget_ms: float | None = None,
    chosen: SubnetResult | None = None,
    title: str = "",
    baselines: Baselines | None = None,
) -> bytes:
    """Accuracy against measured latency as a 1600x1000 px PNG.

    All subnets are points (with a p10-p90 bar when the spread is known): grid subnets dots,
    per-layer ones diamonds, hollow where the latency is flagged (load or spread). The Pareto
    front is a line, every point carries its name, the budget is a dashed vertical line, the
    chosen subnet a star.

    Args:
        results: every evaluated subnet.
        front: the Pareto front (computed from `results` if None).
        budget_ms: the latency budget, drawn if given.
        chosen: the selected subnet, highlighted if given.
        title: plot title.
        baselines: other methods for comparison: series name -> list of
            ``(label, latency_ms, accuracy in [0, 1])``, each series with its own marker.
    """
    # The object-oriented API with an Agg canvas: no pyplot, so no global
    # backend switch and no figure left open in the caller's process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

    baselines = baselines or {}
    if not results and not any(baselines.values()):
        raise ValueError("nothing to plot: no subnet results and no baselines")
    front = pareto_front(results) if front is None else list(front)

    fig = Figure(figsize=(1600 / 150, 1000 / 150), dpi=150)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels: list[tuple[str, float, float, str]] = []  # text, x, y, colour

    if results:
        spread = [r for r in results if r.latency_spread_ms is not None]
        if spread:
            ax.errorbar(
                [r.latency_ms for r in spread],
                [100.0 * r.accuracy for r in spread],
                xerr=[
                    [max(0.0, r.latency_ms - r.latency_spread_ms[0]) for r in spread],  # type: ignore[index]
                    [max(0.0, r.latency_spread_ms[1] - r.latency_ms) for r in spread],  # type: ignore[index]
                ],
                fmt="none",
                ecolor="0.6",
                elinewidth=0.8,
                capsize=2,
                zorder=1,
                label="latency p10-p90",
            )
        # Grid subnets are dots, per-layer ones diamonds; a flagged latency (load or spread) is hollow.
        mixed = not all(r.subnet.is_uniform for r in results)
        kinds = [(True, "o", "grid subnets" if mixed else "all subnets")] + (
            [(False, "D", "per-layer subnets")] if mixed else []
        )
        for uniform, marker, kind in kinds:
            group = [r for r in results if r.subnet.is_uniform == uniform]
            if not group:
                continue
            for flagged in (False, True):
                part = [r for r in group if bool(r.latency_flags) == flagged]
                ax.scatter(
                    [r.latency_ms for r in part],
                    [100.0 * r.accuracy for r in part],
                    s=28 if uniform else 24,
                    marker=marker,
                    facecolor="white" if flagged else "0.55",
                    edgecolor="0.45",
                    linewidth=1.0,
                    zorder=2,
                )
            # A legend entry of its own: each kind is named once however its points are drawn.
            ax.scatter([], [], s=28, marker=marker, color="0.55", label=f"{kind} ({len(group)})")
        flagged_count = sum(bool(r.latency_flags) for r in results)
        if flagged_count:
            ax.scatter(
                [], [], s=28, marker="o", facecolor="white", edgecolor="0.45",
                label=f"hollow: latency flagged, load or spread ({flagged_count})",
            )  # fmt: skip
        labels += [(r.name, r.latency_ms, 100.0 * r.accuracy, "0.25") for r in results]
    if front:
        ax.plot(
            [r.latency_ms for r in front],
            [100.0 * r.accuracy for r in front],
            "-",
            color="tab:blue",
            linewidth=1.6,
            zorder=3,
        )
        for r in front:  # its points as the others: a diamond per-layer, hollow when flagged
            ax.scatter(
                [r.latency_ms],
                [100.0 * r.accuracy],
                s=40,
                marker="o" if r.subnet.is_uniform else "D",
                facecolor="white" if r.latency_flags else "tab:blue",
                edgecolor="tab:blue",
                linewidth=1.4,
                zorder=3,
            )
        ax.plot(
            [], [], "-o", color="tab:blue", markersize=6, linewidth=1.6, label=f"Pareto front ({len(front)})"
        )
    for i, (series, points) in enumerate(baselines.items()):
        if not points:
            continue
        marker = _BASELINE_MARKERS[i % len(_BASELINE_MARKERS)]
        colour = _BASELINE_COLOURS[i % len(_BASELINE_COLOURS)]
        ax.scatter(
            [p[1] for p in points],
            [100.0 * p[2] for p in points],
            marker=marker,
            s=45,
            color=colour,
            edgecolor="black",
            linewidth=0.5,
            zorder=4,
            label=series,
        )
        labels += [(label, x, 100.0 * y, colour) for label, x, y in points]
    if chosen is not None:
        ax.scatter(
            [chosen.latency_ms],
            [100.0 * chosen.accuracy],
            marker="*",
            s=380,
            color="gold",
            edgecolor="black",
            linewidth=0.9,
            zorder=5,
            clip_on=False,  # whole even at the top edge (a score of 100%)
            label=f"chosen: {chosen.name} ({100 * chosen.accuracy:.2f}%, {chosen.latency_ms:.2f} ms)",
        )

    xlim, ylim, beyond = plot_limits([(x, y) for _, x, y, _ in labels], results, budget_ms=budget_ms)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if beyond:
        # Whiskers cut at the right edge end in an arrowhead there, so a cut one is not read as short.
        ax.scatter(
            [xlim[1]] * len(beyond),
            [100.0 * r.accuracy for r in beyond],
            marker=">",
            s=30,
            color="0.45",
            clip_on=False,
            zorder=2,
            label=f"p90 beyond the axis ({len(beyond)})",
        )
    title = plot_title(title, results)

    budget_text = None
    if budget_ms is not None:
        ax.axvline(
            budget_ms,
            color="tab:red",
            linestyle="--",
            linewidth=1.4,
            zorder=1,
            label=f"budget {ms_text(budget_ms)} ms",
        )
        budget_text = ax.text(
            budget_ms,
            0.98,
            f" budget {ms_text(budget_ms)} ms",
            transform=ax.get_xaxis_transform(),  # x in data, y in axes fraction
            rotation=90,
            ha="right",
            va="top",
            fontsize=8,
            color="tab:red",
        )

    ax.set_xlabel("latency (ms, measured median)")
    ax.set_ylabel(f"dev {metric_label(results[0].metric)}" + _of_int8(results))
    if title:
        ax.set_title(title)
    ax.grid(True, linestyle=":", linewidth=0.7, alpha=0.8)
    legend = ax.legend(loc="best", fontsize=8, framealpha=0.9)
    fig.tight_layout()

    # Place the names greedily: the first offset whose text box stays inside the
    # axes and clear of the points, the legend and the labels already placed.
    renderer = canvas.get_renderer()
    to_px = ax.transData
    r_px = 4.0 * fig.dpi / 72.0  # marker radius in pixels
    obstacles: list[Bbox] = []
    for _, x, y, _ in labels:
        px, py = to_px.transform((x, y))
        obstacles.append(Bbox.from_extents(px - r_px, py - r_px, px + r_px, py + r_px))
    obstacles.append(legend.get_window_extent(renderer))
    if chosen is not None:  # the star is much larger than a dot
        px, py = to_px.transform((chosen.latency_ms, 100.0 * chosen.accuracy))
        star = 3.0 * r_px
        obstacles.append(Bbox.from_extents(px - star, py - star, px + star, py + star))
    if budget_text is not None:
        obstacles.append(budget_text.get_window_extent(renderer))
    axes_box = ax.get_window_extent(renderer)

    def overlap(box: Bbox) -> float:
        area = 0.0
        for other in obstacles:
            w = min(box.x1, other.x1) - max(box.x0, other.x0)
            h = min(box.y1, other.y1) - max(box.y0, other.y0)
            if w > 0 and h > 0:
                area += w * h
        for edge in ("x0", "y0"):  # penalise leaving the axes
            if getattr(box, edge) < getattr(axes_box, edge):
                area += 1e6
        if box.x1 > axes_box.x1 or box.y1 > axes_box.y1:
            area += 1e6
        return area

    # Left to right, then bottom to top, so neighbours are placed one after another.
    for text, x, y, colour in sorted(labels, key=lambda t: (t[1], t[2])):
        best = None
        for dx, dy in _OFFSETS:
            ann = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                fontsize=7,
                color=colour,
                zorder=6,
                # A light backdrop keeps names readable where the front line crosses them.
                bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none", alpha=0.7),
                arrowprops=(
                    dict(arrowstyle="-", color="0.6", linewidth=0.5, shrinkA=0, shrinkB=3)
                    if abs(dx) + abs(dy) > 12  # beyond the first ring, show whose name it is
                    else None
                ),
            )
            box = ann.get_window_extent(renderer)
            cost = overlap(box)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann, box)
            else:
                ann.remove()
            if cost == 0.0:
                break
        assert best is not None
        # A few pixels of room around a placed name: two names on one row read as one word without it.
        obstacles.append(best[2].padded(3.0))

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    return buf.getvalue()


# --------------------------------------------------------------------------- table


def wilson_interval(score: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% for the default `z`) of an accuracy `score` in [0, 1] measured on
    `n` examples, as (low, high) in [0, 1]: how far a dev score may sit from the accuracy on the
    examples it stands for (Wilson 1927; used where the normal approximation fails near 0 and 1)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    centre = (score + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(score * (1 - score) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def format_table(
    results: Sequence[SubnetResult], *, chosen: SubnetResult | None = None, seq_len: int | None = None
) -> str:
    """An aligned text table of the results, fastest first.

    Columns: subnet name, dev score (accuracy %, or the metric x 100), measured latency (ms, with
    p10-p90 if known, and its flags if any is flagged: ``load``, ``spread``), predicted latency (ms,
    if any subnet has one), parameters (millions), GFLOPs, ``*`` on the Pareto front, ``<-`` on the chosen subnet
    (a column headed "chosen" when there is one).

    Args:
        results: evaluated subnets.
        chosen: the selected subnet (matched by name).
        seq_len: the sequence length the FLOPs are counted at, named in the header.
    """
    on_front = set(pareto_front(results))
    with_spread = any(r.latency_spread_ms is not None for r in results)
    metric = results[0].metric if results else "accuracy"
    score = "acc %" if metric == "accuracy" else f"{metric} x100"
    header = ["subnet", f"int8 {score}" if _of_int8(results) else score, "latency ms"]
    if with_spread:
        header.append("p10-p90 ms")
    with_flags = any(r.latency_flags for r in results)
    if with_flags:
        header.append("flags")
    with_pred = any(r.predicted_ms is not None for r in results)
    if with_pred:
        header.append("pred ms")
    header += ["params M", "GFLOPs" if seq_len is None else f"GFLOPs s{seq_len}", "pareto"]
    header.append("chosen" if chosen is not None else "")  # its column marks the choice with "<-"
    rows = []
    for r in sorted(results, key=lambda r: (r.latency_ms, -r.accuracy, r.name)):
        row = [r.name, f"{100 * r.accuracy:.2f}", f"{r.latency_ms:.2f}"]
        if with_spread:
            s = r.latency_spread_ms
            row.append("-" if s is None else f"{s[0]:.2f}-{s[1]:.2f}")
        if with_flags:
            row.append("+".join(r.latency_flags) or "-")
        if with_pred:
            row.append("-" if r.predicted_ms is None else f"{r.predicted_ms:.2f}")
        row += [
            f"{r.params / 1e6:.2f}",
            f"{r.flops / 1e9:.3f}",
            "*" if r in on_front else "",
            "<-" if chosen is not None and r.name == chosen.name else "",
        ]
        rows.append(row)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # Name left-aligned, numbers right-aligned, marks left-aligned.
        parts = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            parts.append(cell.ljust(w) if i == 0 or i >= len(cells) - 2 else cell.rjust(w))
        return "  ".join(parts).rstrip()

    sep = "  ".join("-" * w for w in widths).rstrip()
    return "\n".join([line(header), sep, *(line(row) for row in rows)])

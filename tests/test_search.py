"""Search: Pareto front, budget choice, grid cache, evolution, result files, plot, table."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import re
from dataclasses import replace

import numpy as np
import pytest

import supernet as sn
from supernet.convert import Arch
from supernet.search import (
    BudgetError,
    ShortSearchWarning,
    SubnetResult,
    evaluate_grid,
    evolutionary_search,
    format_table,
    pareto_front,
    pareto_png,
    plot_limits,
    plot_pareto,
    plot_title,
    read_results,
    select_under_budget,
    write_results,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(name: str, accuracy: float, latency: float, **kw: object) -> SubnetResult:
    """A hand-made result; the name is a grid name so the spec is meaningful."""
    cfg = sn.SubnetConfig.from_name(name) if name.startswith("w") else sn.SubnetConfig(width_mult=1.0)
    fields = dict(predicted_ms=None, params=1_000_000, flops=2_000_000_000)
    fields.update(kw)
    return SubnetResult(subnet=cfg, name=name, accuracy=accuracy, latency_ms=latency, **fields)  # type: ignore[arg-type]


def grid_results() -> list[SubnetResult]:
    """A realistic 12-point grid: latency grows with width x depth, accuracy too (with noise)."""
    rng = random.Random(0)
    out = []
    for cfg in sn.SearchSpace().grid():
        w, d = cfg.width_mult, cfg.depth_mult
        assert w is not None and d is not None
        lat = 0.8 + 9.0 * w * d + 0.3 * d + rng.uniform(-0.2, 0.2)
        acc = 0.92 - 0.06 * (1 - w) ** 1.5 - 0.05 * (1 - d) + rng.uniform(-0.005, 0.005)
        out.append(
            SubnetResult(
                subnet=cfg,
                name=cfg.name,
                accuracy=acc,
                latency_ms=lat,
                predicted_ms=lat * 1.05,
                params=int(22e6 * (0.4 + 0.6 * w * d)),
                flops=int(2.9e9 * w * d),
                latency_spread_ms=(lat * 0.95, lat * 1.08),
                # The widest subnet was measured while another process ran.
                other_cpu=0.5 if w == 1.0 and d == 1.0 else 0.0,
                latency_flags=("load",) if w == 1.0 and d == 1.0 else (),
            )
        )
    return out


# ----------------------------------------------------------------------------- Pareto front


def test_pareto_front_hand_made() -> None:
    pts = [
        result("w1.00-d1.00", 0.92, 10.0),
        result("w0.75-d0.75", 0.89, 6.0),  # dominated by w0.50-d1.00 (more accurate, faster)
        result("w0.50-d1.00", 0.90, 5.5),
        result("w0.25-d0.50", 0.85, 2.0),
        result("w0.50-d0.50", 0.85, 3.0),  # same accuracy as w0.25-d0.50, slower: dropped
        result("w0.75-d0.50", 0.87, 4.0),
        result("w0.50-d0.75", 0.86, 4.0),  # same latency as w0.75-d0.50, less accurate: dropped
    ]
    front = pareto_front(pts)
    assert [r.name for r in front] == ["w0.25-d0.50", "w0.75-d0.50", "w0.50-d1.00", "w1.00-d1.00"]


def test_pareto_front_exact_ties_kept_once_each() -> None:
    a = result("w0.50-d0.50", 0.85, 3.0)
    b = result("w0.25-d1.00", 0.85, 3.0)  # a different subnet at the very same point
    slow = result("w1.00-d1.00", 0.80, 9.0)
    front = pareto_front([b, a, a, slow])  # a given twice
    assert [r.name for r in front] == ["w0.25-d1.00", "w0.50-d0.50"]
    assert pareto_front([]) == []


def test_pareto_front_of_grid_is_monotone() -> None:
    front = pareto_front(grid_results())
    lat = [r.latency_ms for r in front]
    acc = [r.accuracy for r in front]
    assert lat == sorted(lat) and acc == sorted(acc) and len(set(acc)) == len(acc)
    # Every result off the front is dominated by some front point.
    for r in grid_results():
        if r not in front:
            assert any(f.accuracy >= r.accuracy and f.latency_ms <= r.latency_ms for f in front)


# ----------------------------------------------------------------------------- budget


def test_select_under_budget() -> None:
    pts = [
        result("w1.00-d1.00", 0.92, 10.0),
        result("w0.50-d1.00", 0.90, 5.5),
        result("w0.75-d0.75", 0.90, 5.0),  # same accuracy, faster: wins the tie
        result("w0.25-d0.50", 0.85, 4.12),
    ]
    assert select_under_budget(pts, 6.0).name == "w0.75-d0.75"
    assert select_under_budget(pts, 5.0).name == "w0.75-d0.75"  # latency == budget fits
    assert select_under_budget(pts, 4.99).name == "w0.25-d0.50"
    assert select_under_budget(pts, 100.0).name == "w1.00-d1.00"


def test_a_subnet_the_budget_misses_by_less_than_the_tables_rounding_is_found() -> None:
    """The table shows 13.25 for 13.2528 ms: a user typing --latency-budget-ms 13.25 shut it out unsaid."""
    from supernet.search import budget_that_takes, left_out_by_rounding

    pts = [
        result("w1.00-d1.00", 0.95, 13.2549),  # prints as 13.25: left out by rounding, the most accurate
        result("w0.75-d0.75", 0.93, 13.2528),  # prints as 13.25 too, less accurate
        result("w0.50-d1.00", 0.96, 13.2651),  # prints as 13.27: plainly over
        result("w0.25-d0.50", 0.85, 4.12),
    ]
    chosen = select_under_budget(pts, 13.25)
    assert chosen.name == "w0.25-d0.50"
    assert left_out_by_rounding(pts, chosen, 13.25).name == "w1.00-d1.00"
    assert budget_that_takes(13.2549) == 13.26 and select_under_budget(pts, 13.26).name == "w1.00-d1.00"
    # None when the budget takes every subnet it shows as within, or a left-out one is no more accurate.
    assert left_out_by_rounding(pts, select_under_budget(pts, 13.26), 13.26) is None
    assert left_out_by_rounding(pts[1:], result("w0.25-d0.50", 0.93, 4.12), 13.25) is None


def test_milliseconds_are_shown_as_a_line_can_hold_them() -> None:
    from supernet.search import ms_text

    # A budget of 1e308 printed as 309 digits ("chosen under 1000000000000000010979...00 ms").
    assert [ms_text(v) for v in (0.001, 0.01, 4.125, 999999.994, 1e6, 1e308)] == [
        "0.001",
        "0.01",
        "4.12",
        "999999.99",
        "1e+06",
        "1e+308",
    ]


def test_select_under_budget_error_message() -> None:
    pts = [result("w1.00-d1.00", 0.92, 10.0), result("w0.25-d0.50", 0.85, 4.12)]
    with pytest.raises(BudgetError) as info:
        select_under_budget(pts, 3.0)
    assert str(info.value) == (
        "latency budget 3.00 ms is below the fastest subnet (w0.25-d0.50, 4.12 ms); "
        "raise the budget to at least 4.12 ms"
    )
    assert isinstance(info.value, ValueError)
    with pytest.raises(BudgetError) as info:
        select_under_budget(pts, 0.001)  # it said "latency budget 0.00 ms"
    assert str(info.value).startswith(
        "latency budget 0.001 ms is below the fastest subnet (w0.25-d0.50, 4.12 ms)"
    )
    # The suggested budget is rounded up, so following the advice always works.
    with pytest.raises(BudgetError) as info:
        select_under_budget([result("w0.25-d0.50", 0.85, 4.121)], 3.0)
    assert str(info.value) == (
        "latency budget 3.00 ms is below the fastest subnet (w0.25-d0.50, 4.12 ms); "
        "raise the budget to at least 4.13 ms"
    )
    assert select_under_budget([result("w0.25-d0.50", 0.85, 4.121)], 4.13).name == "w0.25-d0.50"
    with pytest.raises(ValueError) as info:
        select_under_budget([], 3.0)
    assert str(info.value) == "no subnet results to choose from; evaluate some subnets first"
    with pytest.raises(ValueError) as info:
        select_under_budget(pts, float("nan"))
    assert str(info.value) == "budget_ms must be a finite number > 0, got nan"


# ----------------------------------------------------------------------------- results


def test_result_json_roundtrip_and_validation() -> None:
    per_layer = sn.SubnetConfig(heads=(4, 1, 3, 2), ffn=(48, 7, 20, 33), layers=(0, 1, 3))
    r = SubnetResult(
        subnet=per_layer,
        name=per_layer.name,
        accuracy=0.875,
        latency_ms=3.25,
        predicted_ms=3.5,
        params=123,
        flops=456,
        latency_spread_ms=(3.0, 3.75),
    )
    d = r.to_json()
    assert d["name"] == per_layer.name and d["spec"] == per_layer.to_dict()
    assert {"accuracy", "latency_ms", "predicted_ms", "params", "flops"} <= set(d)
    assert SubnetResult.from_json(json.loads(json.dumps(d))) == r
    with pytest.raises(ValueError) as info:
        result("w1.00-d1.00", float("nan"), 1.0)
    assert str(info.value) == "w1.00-d1.00: accuracy must be a finite number, got nan"
    with pytest.raises(ValueError) as info:
        result("w1.00-d1.00", 0.9, 1.0, latency_spread_ms=(2.0, 1.0))
    assert str(info.value) == (
        "w1.00-d1.00: latency_spread_ms must be (p10, p90) with p10 <= p90, got (2.0, 1.0)"
    )
    # FP32 scores keep the old form; an int8 score says so, and the table and plot name it.
    assert "precision" not in d and r.precision == "fp32"
    int8 = result("w0.50-d1.00", 0.75, 2.0, precision="int8")
    assert int8.to_json()["precision"] == "int8" and SubnetResult.from_json(int8.to_json()) == int8
    assert format_table([int8]).splitlines()[0].split()[:4] == ["subnet", "int8", "acc", "%"]
    assert format_table([r]).splitlines()[0].split()[:3] == ["subnet", "acc", "%"]
    with pytest.raises(ValueError) as info:
        result("w1.00-d1.00", 0.9, 1.0, precision="fp16")
    assert str(info.value) == "w1.00-d1.00: precision must be one of ('fp32', 'int8'), got 'fp16'"


# ----------------------------------------------------------------------------- grid


def test_evaluate_grid_uses_cache() -> None:
    calls: list[str] = []

    def evaluate(cfg: sn.SubnetConfig) -> float:
        calls.append(cfg.name)
        return 0.5 + 0.4 * (cfg.width_mult or 1.0) * (cfg.depth_mult or 1.0)

    class Lat:  # a LatencyResult look-alike: its spread and load must be kept
        def __init__(self, ms: float) -> None:
            self.median_ms, self.p10_ms, self.p90_ms = ms, 0.9 * ms, 1.2 * ms
            self.other_cpu, self.flags = 0.25, ("load", "spread")

    def measure(cfg: sn.SubnetConfig) -> Lat:
        return Lat(10.0 * (cfg.width_mult or 1.0) * (cfg.depth_mult or 1.0))

    def cost(cfg: sn.SubnetConfig) -> tuple[int, int]:
        return 1000, 2000

    space = sn.SearchSpace()
    cache: dict[str, SubnetResult] = {}
    first = evaluate_grid(
        space.grid()[:5], evaluate=evaluate, measure=measure, cost=cost, cache=cache, progress=False
    )
    assert len(calls) == 5 and set(cache) == {r.name for r in first}
    assert first[0].latency_spread_ms == (9.0, 12.0) and first[0].predicted_ms is None
    assert first[0].other_cpu == 0.25 and first[0].latency_flags == ("load", "spread")

    both = evaluate_grid(
        space.grid(),
        evaluate=evaluate,
        measure=lambda cfg: 10.0,  # plain float ms also works
        predict=lambda cfg: 11.0,
        cost=cost,
        cache=cache,
        progress=False,
    )
    assert len(calls) == 12  # only the 7 new subnets were evaluated
    assert [r.name for r in both] == [c.name for c in space.grid()]
    assert both[:5] == first  # cached results come back unchanged
    assert all(r.latency_ms == 10.0 and r.predicted_ms == 11.0 for r in both[5:])

    # Without a cache, a repeated subnet is still evaluated once.
    calls.clear()
    g = space.grid()[0]
    out = evaluate_grid([g, g], evaluate=evaluate, measure=lambda c: 1.0, cost=cost, progress=False)
    assert calls == [g.name] and out[0] is out[1]


def test_evaluate_grid_shows_progress(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)
    evaluate_grid([cfg], evaluate=lambda c: 0.5, measure=lambda c: 1.0, cost=lambda c: (1, 1), progress=True)
    assert "w0.50-d0.50" in capsys.readouterr().err
    evaluate_grid([cfg], evaluate=lambda c: 0.5, measure=lambda c: 1.0, cost=lambda c: (1, 1), progress=False)
    assert capsys.readouterr().err == ""
    # Written to a log (stderr is no terminal here), 12 quick subnets are one first and one last
    # draw: it redrew at every subnet, 14 lines in one second, against the 10 s log interval.
    grid = sn.SearchSpace().grid()
    evaluate_grid(grid, evaluate=lambda c: 0.5, measure=lambda c: 1.0, cost=lambda c: (1, 1), progress=True)
    draws = [d for d in capsys.readouterr().err.replace("\n", "\r").split("\r") if d.startswith("subnets")]
    assert len(draws) == 2 and "0/12" in draws[0] and "12/12" in draws[1]


# ----------------------------------------------------------------------------- evolution

ARCH = Arch(family="bert", num_layers=6, num_heads=12, head_dim=32, hidden_size=384, ffn_dim=1536)
SPACE = sn.SearchSpace()


def fake_accuracy(cfg: sn.SubnetConfig) -> float:
    """Sum over the layers that run of heads*ffn, normalised by the full model's."""
    r = sn.resolve_subnet(ARCH, cfg)
    total = sum(r.heads[i] * r.ffn[i] for i in r.layers)
    return total / (ARCH.num_layers * ARCH.num_heads * ARCH.ffn_dim)


def fake_latency(cfg: sn.SubnetConfig) -> float:
    """Linear in sizes: a fixed cost, per layer, per head and per FFN neuron."""
    r = sn.resolve_subnet(ARCH, cfg)
    return 0.5 + sum(0.2 + 0.1 * r.heads[i] + 0.001 * r.ffn[i] for i in r.layers)


def run_evolution(seed: int, budget: float, **kw: object) -> list[tuple[sn.SubnetConfig, float, float]]:
    args: dict[str, object] = dict(population=16, generations=6, progress=False)
    args.update(kw)
    return evolutionary_search(
        space=SPACE,
        arch=ARCH,
        evaluate=fake_accuracy,
        predict=fake_latency,
        budget_ms=budget,
        rng=random.Random(seed),
        **args,  # type: ignore[arg-type]
    )


def test_evolution_respects_budget_and_beats_grid() -> None:
    budget = 8.0
    found = run_evolution(0, budget)
    assert len(found) == 16
    assert len({cfg.name for cfg, _, _ in found}) == 16  # distinct subnets
    heads_ok = {round(ARCH.num_heads * w) for w in SPACE.width_mults}
    ffn_ok = {round(ARCH.ffn_dim * w) for w in SPACE.width_mults}
    depths_ok = {tuple(sn.kept_layers(ARCH.num_layers, d)) for d in SPACE.depth_mults}
    for cfg, acc, pred in found:
        assert pred == fake_latency(cfg) <= budget
        assert acc == fake_accuracy(cfg)
        r = sn.resolve_subnet(ARCH, cfg)  # valid for the arch
        assert r.layers in depths_ok
        assert {r.heads[i] for i in r.layers} <= heads_ok
        assert {r.ffn[i] for i in r.layers} <= ffn_ok
    accs = [acc for _, acc, _ in found]
    assert accs == sorted(accs, reverse=True)
    best_grid = max(fake_accuracy(c) for c in SPACE.grid() if fake_latency(c) <= budget)
    assert found[0][1] >= best_grid
    # Here per-layer subnets really are better (0.375 against 0.281): the search finds one.
    assert found[0][1] > best_grid and not found[0][0].is_uniform


def test_evolution_takes_an_integer_seed_and_refuses_other_generators() -> None:
    """rng=0 failed deep inside ("'int' object has no attribute 'choice'"): a seed is a Random."""
    seeded = run_evolution(0, 8.0)
    args = dict(space=SPACE, arch=ARCH, evaluate=fake_accuracy, predict=fake_latency, budget_ms=8.0)
    found = evolutionary_search(**args, rng=0, population=16, generations=6, progress=False)
    assert [(c.name, a, p) for c, a, p in found] == [(c.name, a, p) for c, a, p in seeded]
    with pytest.raises(TypeError) as info:
        evolutionary_search(**args, rng=np.random.default_rng(0), progress=False)
    assert str(info.value) == "rng must be a random.Random or an integer seed, got Generator"


def test_evolution_without_grid_seeds_still_reaches_grid_level() -> None:
    budget = 8.0
    found = run_evolution(1, budget, seed_grid=False, population=24, generations=10)
    best_grid = max(fake_accuracy(c) for c in SPACE.grid() if fake_latency(c) <= budget)
    assert found[0][1] >= best_grid
    assert all(pred <= budget for _, _, pred in found)


def test_evolution_is_deterministic() -> None:
    a, b = run_evolution(7, 6.0), run_evolution(7, 6.0)
    assert a == b
    assert run_evolution(8, 6.0, seed_grid=False) != run_evolution(9, 6.0, seed_grid=False)


def test_evolution_shows_its_bar_while_it_scores_the_first_population(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The bar appeared only after the first population was scored (18 s of nothing in a real search)."""
    shown: list[str] = []

    def evaluate(cfg: sn.SubnetConfig) -> float:
        if not shown:
            shown.append(capsys.readouterr().err)
        return fake_accuracy(cfg)

    evolutionary_search(
        space=SPACE,
        arch=ARCH,
        evaluate=evaluate,
        predict=fake_latency,
        budget_ms=8.0,
        population=6,
        generations=3,
        rng=random.Random(0),
        progress=True,
    )
    assert "evolution:" in shown[0] and "0/4" in shown[0] and "first population" in shown[0]
    assert "4/4" in capsys.readouterr().err


def test_evolution_evaluates_each_subnet_once() -> None:
    seen: list[str] = []

    def evaluate(cfg: sn.SubnetConfig) -> float:
        seen.append(cfg.name)
        return fake_accuracy(cfg)

    found = evolutionary_search(
        space=SPACE,
        arch=ARCH,
        evaluate=evaluate,
        predict=fake_latency,
        budget_ms=8.0,
        population=12,
        generations=4,
        rng=random.Random(0),
        progress=False,
    )
    assert len(seen) == len(set(seen)) >= 12  # at least the first population, each once
    assert {cfg.name for cfg, _, _ in found} <= set(seen)  # what it returns was scored


def test_evolution_budget_below_smallest() -> None:
    # Smallest subnet: 3 layers of 3 heads and 384 neurons, 0.5 + 3 * 0.884 = 3.152 ms predicted.
    with pytest.raises(BudgetError) as info:
        run_evolution(0, 1.0)
    assert str(info.value) == (
        "latency budget 1.00 ms is below the predicted latency of the smallest subnet "
        "(w0.25-d0.50, 3.15 ms); raise the budget to at least 3.16 ms"
    )


def test_evolution_tight_budget_searches_what_fits_with_a_warning() -> None:
    # Only the smallest subnet fits: a population of 16 distinct ones cannot be
    # filled, so the search goes on with the one that fits and says so.
    floor = fake_latency(sn.SubnetConfig(width_mult=0.25, depth_mult=0.5))
    with pytest.warns(ShortSearchWarning) as caught:
        found = run_evolution(0, floor, max_tries=50)
    shortfall = (
        f": no new distinct subnet with predicted latency <= {floor:.2f} ms in 50 random draws; the first "
        "population has 1 of its 16 subnets"
    )
    assert str(caught[0].message) == (
        f"evolutionary search{shortfall} (raise the budget or max_tries for a wider search)"
    )
    # search.py words its own advice from the shortfall alone (it has no max_tries)
    assert caught[0].message.shortfall == shortfall
    assert [cfg.name for cfg, _, _ in found] == ["w0.25-d0.50"]
    assert found[0][2] == pytest.approx(floor)


def test_evolution_keeps_going_when_children_run_out() -> None:
    # Mutations that change nothing only reproduce the parents: no child is new,
    # so each generation is just the parents, with a warning, not an error.
    first = run_evolution(3, 8.0, population=8, generations=0)
    with pytest.warns(ShortSearchWarning) as caught:
        found = run_evolution(3, 8.0, population=8, generations=2, mutate_prob=0.0, mutation_ratio=1.0)
    assert [str(w.message) for w in caught] == [
        f"evolutionary search, generation {generation}: no new distinct subnet under 8.00 ms in 200 draws; "
        "continuing with 2 subnets"
        for generation in (1, 2)
    ]
    assert found == first[:2]  # parents_frac 0.25 of 8


# ----------------------------------------------------------------------------- files


def test_write_results_files(tmp_path) -> None:
    results = grid_results()
    chosen = select_under_budget(results, 5.0)
    paths = write_results(results, tmp_path, budget_ms=5.0, chosen=chosen, title="test run")
    out = tmp_path / "search"
    assert paths == {
        "results": out / "results.jsonl",
        "pareto_csv": out / "pareto.csv",
        "pareto_png": out / "pareto.png",
    }
    assert sorted(p.name for p in out.iterdir()) == ["pareto.csv", "pareto.png", "results.jsonl"]

    lines = paths["results"].read_text().splitlines()
    assert len(lines) == len(results)
    parsed = [SubnetResult.from_json(json.loads(line)) for line in lines]
    assert parsed == results
    assert read_results(paths["results"]) == results
    flags = [json.loads(line) for line in lines]
    assert [d["name"] for d in flags if d["chosen"]] == [chosen.name]
    front = pareto_front(results)
    assert [d["name"] for d in flags if d["pareto"]] == [r.name for r in results if r in front]

    with paths["pareto_csv"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "name",
        "accuracy",
        "latency_ms",
        "predicted_ms",
        "params",
        "flops",
        "latency_flags",
        "precision",
        "latency_p10_ms",
        "latency_p90_ms",
        "chosen",
        "spec",
    ]  # the columns of before keep their places
    # The front, fastest first, with what re-plotting it takes (the whiskers, the choice, the spec).
    assert [row["name"] for row in rows] == [r.name for r in front]
    for row, r in zip(rows, front, strict=True):
        assert float(row["accuracy"]) == r.accuracy and float(row["latency_ms"]) == r.latency_ms
        assert (float(row["latency_p10_ms"]), float(row["latency_p90_ms"])) == r.latency_spread_ms
        assert float(row["predicted_ms"]) == r.predicted_ms
        assert (int(row["params"]), int(row["flops"])) == (r.params, r.flops)
        assert row["precision"] == "fp32" and row["chosen"] == str(int(r.name == chosen.name))
        assert sn.SubnetConfig.from_dict(json.loads(row["spec"])) == r.subnet
    assert {row["name"]: row["latency_flags"] for row in rows}["w1.00-d1.00"] == "load"
    assert [d["name"] for d in flags if d["latency_flags"]] == ["w1.00-d1.00"]
    assert "flags" in format_table(results).splitlines()[0]

    # Rewriting replaces the files in place and leaves no temporary file behind.
    write_results(results[:3], tmp_path, budget_ms=None, chosen=None, title="")
    assert sorted(p.name for p in out.iterdir()) == ["pareto.csv", "pareto.png", "results.jsonl"]
    assert len(paths["results"].read_text().splitlines()) == 3


def test_failed_plot_leaves_old_file_and_no_tmp(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.png"
    plot_pareto(grid_results(), None, path)
    before = path.read_bytes()
    from matplotlib.figure import Figure

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(OSError, match="^disk full$"):
        plot_pareto(grid_results(), None, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_plot_is_a_matplotlib_png(tmp_path, monkeypatch) -> None:
    from matplotlib.axes import Axes

    results = grid_results()
    chosen = select_under_budget(results, 5.0)
    path = tmp_path / "pareto.png"
    baselines = {"DistilBERT-like": [("L4", 7.5, 0.89)], "pruned": [("p50", 5.5, 0.87)]}
    legends: list[list[str]] = []
    real_legend = Axes.legend

    def legend(self, *args, **kwargs):
        legends.append(self.get_legend_handles_labels()[1])
        return real_legend(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", legend)
    plot_pareto(
        results, pareto_front(results), path, budget_ms=5.0, chosen=chosen, title="t", baselines=baselines
    )
    # What was asked for is drawn: the baselines, the chosen subnet and the budget, in the legend.
    (labels,) = legends
    assert {"DistilBERT-like", "pruned", "budget 5.00 ms"} <= set(labels)
    assert f"chosen: {chosen.name} ({100 * chosen.accuracy:.2f}%, {chosen.latency_ms:.2f} ms)" in labels
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000
    assert b"Matplotlib" in data  # the Software text chunk matplotlib writes
    # IHDR: width and height as big-endian 32-bit integers at bytes 16..24.
    assert int.from_bytes(data[16:20], "big") == 1600 and int.from_bytes(data[20:24], "big") == 1000


def test_plot_tells_per_layer_and_flagged_points_apart(monkeypatch) -> None:
    """Per-layer subnets are diamonds, grid ones dots; a flagged latency is hollow, on the front too
    (all were one grey dot, and a per-layer choice timed under load looked like a clean grid one)."""
    from matplotlib.axes import Axes

    drawn: dict[float, tuple[str, str]] = {}  # latency -> (marker, face colour) of each point drawn
    legends: list[list[str]] = []
    real_scatter, real_legend = Axes.scatter, Axes.legend

    def scatter(self, x, y, *args, **kwargs):
        for value in x:
            drawn[float(value)] = (kwargs.get("marker", "o"), kwargs.get("facecolor", kwargs.get("color")))
        return real_scatter(self, x, y, *args, **kwargs)

    def legend(self, *args, **kwargs):
        legends.append(self.get_legend_handles_labels()[1])
        return real_legend(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "scatter", scatter)
    monkeypatch.setattr(Axes, "legend", legend)
    grid = grid_results()  # w1.00-d1.00 flagged "load"
    per_layer = [
        dataclasses.replace(
            grid[0], subnet=spec, name=spec.name, latency_ms=latency, accuracy=0.5, latency_flags=flags
        )
        for spec, latency, flags in (
            (sn.SubnetConfig(heads=(2, 4), ffn=(64, 128)), 3.25, ("spread",)),
            (sn.SubnetConfig(heads=(4, 2), ffn=(128, 64)), 3.75, ()),
        )
    ]
    pareto_png(grid + per_layer, None)
    widest = next(r for r in grid if r.name == "w1.00-d1.00")
    assert drawn[widest.latency_ms] == ("o", "white")  # on the front: its blue dot hollow too
    assert drawn[3.25] == ("D", "white") and drawn[3.75] == ("D", "0.55")
    assert all(drawn[r.latency_ms][0] == "o" for r in grid)
    assert legends[-1][:3] == [
        "grid subnets (12)",
        "per-layer subnets (2)",
        "hollow: latency flagged, load or spread (2)",
    ]
    pareto_png(per_layer[1:], None)
    assert legends[-1][0] == "per-layer subnets (1)" and "grid subnets (0)" not in legends[-1]
    pareto_png([r for r in grid if not r.latency_flags][:3], None)
    assert legends[-1][0] == "all subnets (3)" and not any("hollow" in label for label in legends[-1])


def test_plot_names_keep_room_between_them(monkeypatch) -> None:
    """Two names on one row were drawn touching, read as one ("w1.00-d0.50w0.50-d1.00")."""
    from matplotlib.axes import Axes

    kept: list = []
    real = Axes.annotate

    def annotate(self, *args, **kwargs):
        ann = real(self, *args, **kwargs)
        kept.append(ann)
        return ann

    monkeypatch.setattr(Axes, "annotate", annotate)
    results = [
        result("w1.00-d0.50", 0.7175, 28.4),
        result("w0.50-d1.00", 0.7175, 34.9),
        result("w0.25-d0.50", 0.725, 8.5),
        result("w1.00-d1.00", 0.7525, 91.9),
    ]
    pareto_png(results, None)
    boxes = [ann.get_window_extent() for ann in kept if ann.figure is not None]  # the names placed
    assert len(boxes) == len(results)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            gap_x = max(b.x0 - a.x1, a.x0 - b.x1)
            gap_y = max(b.y0 - a.y1, a.y0 - b.y1)
            assert max(gap_x, gap_y) >= 3.0, (a, b)


def _points(results: list[SubnetResult]) -> list[tuple[float, float]]:
    return [(r.latency_ms, 100.0 * r.accuracy) for r in results]


def test_plot_axes_fit_points_and_their_whiskers() -> None:
    results = grid_results()
    xlim, ylim, beyond = plot_limits(_points(results), results, budget_ms=5.0)
    assert beyond == []
    lows, highs = zip(*(r.latency_spread_ms for r in results), strict=True)
    x_pad = 0.08 * (max(highs) - min(lows))
    assert xlim == pytest.approx((min(lows) - x_pad, max(highs) + x_pad))
    accuracies = [100.0 * r.accuracy for r in results]
    y_pad = 0.10 * (max(accuracies) - min(accuracies))
    assert ylim == pytest.approx((min(accuracies) - y_pad, max(accuracies) + y_pad))


def test_plot_axes_cut_a_whisker_measured_under_load() -> None:
    """The quickstart's plot after a search under load: p90s of 400-1,090 ms beside medians of 5-21 ms
    put every point within the left 2% of the x axis."""
    results = [
        result("w0.25-d0.50", 0.725, 5.1, latency_spread_ms=(4.3, 545.0), latency_flags=("load", "spread")),
        result("w0.50-d1.00", 0.74, 14.6, latency_spread_ms=(12.7, 16.0)),
        result("w1.00-d1.00", 0.75, 19.8, latency_spread_ms=(17.9, 823.8), latency_flags=("load", "spread")),
    ]
    xlim, _, beyond = plot_limits(_points(results), results, budget_ms=9.9)
    room = 1.25 * 19.8  # the slowest median and a quarter of it
    assert [r.name for r in beyond] == ["w0.25-d0.50", "w1.00-d1.00"]
    assert xlim == pytest.approx((max(0.0, 4.3 - 0.08 * (room - 4.3)), room + 0.08 * (room - 4.3)))
    assert plot_title("rt-sentences", results) == (
        "rt-sentences\n2 of 3 latencies flagged (load or spread): see the table, remeasure"
    )
    assert plot_title("rt-sentences", results[1:2]) == "rt-sentences"
    # A whisker past the slowest median's quarter but inside the margin is drawn whole, not cut.
    near = [
        result("w0.25-d0.50", 0.7, 10.0, latency_spread_ms=(9.0, 11.0)),
        result("w1.00-d1.00", 0.8, 20.0, latency_spread_ms=(19.0, 25.5)),
    ]
    xlim, _, beyond = plot_limits(_points(near), near)
    assert xlim[1] > 25.5 and beyond == []
    # Every subnet at 100%: the axis stops just above 100 (it ran to 101%).
    perfect = [result("w0.25-d0.50", 1.0, 2.0), result("w1.00-d1.00", 1.0, 8.0)]
    assert plot_limits(_points(perfect), perfect)[1] == (99.0, 100.25)


# ----------------------------------------------------------------------------- table


def test_format_table_marks() -> None:
    results = grid_results()
    chosen = select_under_budget(results, 5.0)
    table = format_table(results, chosen=chosen)
    lines = table.splitlines()
    assert len(lines) == 2 + len(results)
    assert "acc %" in lines[0] and "latency ms" in lines[0] and "GFLOPs" in lines[0]
    assert lines[0].split()[-2:] == ["pareto", "chosen"]  # the "<-" column has a header
    assert format_table(results).splitlines()[0].split()[-1] == "pareto"  # none without a choice
    marked = [line for line in lines if line.endswith("<-")]
    assert len(marked) == 1 and marked[0].startswith(chosen.name)
    front_names = {r.name for r in pareto_front(results)}
    for line in lines[2:]:
        name = line.split()[0]
        assert ("*" in line.split()) == (name in front_names)
    assert f"{100 * chosen.accuracy:.2f}" in marked[0]
    # Columns line up: every word of the header and of each row lies within one run of the separator's
    # dashes (none straddles two columns or sits in a gap).
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[1])]
    for line in [lines[0], *lines[2:]]:
        cells = [line[a:b].strip() for a, b in spans]
        assert " ".join(c for c in cells if c) == " ".join(line.split()), line


def test_format_table_shows_predictions_only_when_some_exist() -> None:
    results = grid_results()
    assert "pred ms" in format_table(results).splitlines()[0]
    fastest = min(results, key=lambda r: r.latency_ms)
    row = format_table(results).splitlines()[2].split()
    assert row[0] == fastest.name and f"{fastest.predicted_ms:.2f}" in row
    bare = [replace(r, predicted_ms=None) for r in results]
    lines = format_table(bare).splitlines()
    assert "pred ms" not in lines[0]
    assert lines[0].split()[-2:] == ["GFLOPs", "pareto"]
    # Same columns as the header: name, acc, latency, p10-p90, flags, params, GFLOPs (+ marks).
    assert lines[2].split()[:7] == [
        fastest.name,
        f"{100 * fastest.accuracy:.2f}",
        f"{fastest.latency_ms:.2f}",
        f"{fastest.latency_spread_ms[0]:.2f}-{fastest.latency_spread_ms[1]:.2f}",
        "-",
        f"{fastest.params / 1e6:.2f}",
        f"{fastest.flops / 1e9:.3f}",
    ]


def test_evolution_without_grid_seeds_falls_back_to_the_smallest_subnet() -> None:
    floor = fake_latency(sn.SubnetConfig(width_mult=0.25, depth_mult=0.5))
    with pytest.warns(RuntimeWarning) as caught:
        found = run_evolution(0, floor, max_tries=5, seed_grid=False, generations=0)
    assert [str(w.message) for w in caught] == [
        f"evolutionary search: no new distinct subnet with predicted latency <= {floor:.2f} ms "
        "in 5 random draws; the first population has 1 of its 16 subnets (raise the budget or max_tries for "
        "a wider search)"
    ]
    assert [cfg.name for cfg, _, _ in found] == ["w0.25-d0.50"]


def test_wilson_interval_matches_textbook_values() -> None:
    """Wilson's 95% interval: 0 of 10 is [0, 0.2775] (where the normal approximation gives [0, 0]),
    16 of 32 is 0.5 +- 0.1637, and 341 of 400 (the quickstart's dev size) is 0.8144-0.8839."""
    from supernet.search import wilson_interval

    assert wilson_interval(0.0, 10) == (0.0, pytest.approx(0.27754, abs=1e-5))
    assert wilson_interval(0.5, 32) == (pytest.approx(0.33631, abs=1e-5), pytest.approx(0.66369, abs=1e-5))
    assert wilson_interval(341 / 400, 400) == (
        pytest.approx(0.81440, abs=1e-5),
        pytest.approx(0.88389, abs=1e-5),
    )
    assert wilson_interval(1.0, 32)[1] == 1.0
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        wilson_interval(0.5, 0)

"""bench/per_layer.py: its statistics, its goal logic, and one end-to-end run on tiny supernets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_RUN, load_bench, save_tiny_model_dir

import supernet as sn
from supernet.config import TrainConfig, load_config

bench = load_bench("per_layer", "per_layer_bench")

PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


# --------------------------------------------------------------------------- statistics


def test_kendall_tau_known_values() -> None:
    assert bench.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert bench.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # Pairs (1,2) and (1,3) concordant, (2,3) discordant: (2 - 1) / 3.
    assert bench.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # tau-b with a tie in x: 2 concordant of 3 pairs, 1 tied in x: 2 / sqrt(2 * 3) (scipy: 0.8164965809).
    assert bench.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8164965809277261, abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        bench.kendall_tau([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="paired samples"):
        bench.kendall_tau([1, 2], [1, 2, 3])


def test_paired_bootstrap_interval() -> None:
    same = np.array([1, 0, 1, 1, 0, 1], dtype=float)
    assert bench.paired_bootstrap(same, same, resamples=200, seed=0) == (0.0, 0.0, 0.0)
    ones, zeros = np.ones(50), np.zeros(50)
    assert bench.paired_bootstrap(ones, zeros, resamples=200, seed=0) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(3)
    a, b = (rng.random(400) < 0.8).astype(float), (rng.random(400) < 0.7).astype(float)
    diff, low, high = bench.paired_bootstrap(a, b, resamples=1000, seed=1)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert low < diff < high and 0.0 < high - low < 0.2
    assert bench.paired_bootstrap(a, b, resamples=1000, seed=1) == (diff, low, high)  # seeded


def test_encoding_and_leave_one_out_predictor() -> None:
    arch = sn.Arch(family="bert", num_layers=4, num_heads=4, head_dim=8, hidden_size=32, ffn_dim=48)
    cfg = sn.SubnetConfig(heads=(3, 4, 1, 2), ffn=(36, 48, 12, 24), layers=(0, 2, 3))
    assert bench.encode(cfg, arch).tolist() == [1, 0.75, 0.75, 0, 0, 0, 1, 0.25, 0.25, 1, 0.5, 0.5]
    # Accuracy linear in the encoding: the leave-one-out predictions rank subnets (almost) perfectly.
    rng = np.random.default_rng(0)
    x = rng.random((30, 12))
    y = 0.6 + x @ rng.random(12) / 40
    predicted = bench.ridge_loo(x, y, alpha=1e-6)
    assert np.abs(predicted - y).max() < 1e-6
    assert bench.kendall_tau(predicted.tolist(), y.tolist()) == pytest.approx(1.0)
    # A held-out point is never its own training data: two identical x with different y predict each other.
    same = bench.ridge_loo(np.zeros((2, 1)), np.array([0.2, 0.8]), alpha=1.0)
    assert same.tolist() == pytest.approx([0.8, 0.2])


# --------------------------------------------------------------------------- goal logic


def _rows(gains: list[float | None], grid_mean: float, per_layer_mean: float) -> list[dict]:
    # The per-layer pick is slower than the grid pick (within the budget) at the first budget only.
    rows = [
        {
            "kind": "pair",
            "supernet": "per-layer",
            "budget_ratio": r,
            "diff_pt": g,
            "grid": {"latency_ms": 10.0 * r},
            "per_layer": {"latency_ms": 10.0 * r + (0.5 if r == 0.3 else -0.5)},
        }
        for r, g in zip((0.3, 0.5, 0.7), gains, strict=True)
    ]
    rows += [{"kind": "pair", "supernet": "grid", "budget_ratio": 0.3, "diff_pt": 5.0}]  # not the goal's
    rows += [
        {"kind": "grid", "supernet": "grid", "mean_test_accuracy": grid_mean},
        {"kind": "grid", "supernet": "per-layer", "mean_test_accuracy": per_layer_mean},
    ]
    return rows


@pytest.mark.parametrize(
    ("gains", "per_layer_mean", "marks", "ok"),
    [
        ([0.6, 0.5, -1.0], 0.798, ["PASS", "PASS"], True),  # 2 of 3 won, 0.2 pt below
        ([0.6, 0.49, None], 0.798, ["MISS", "PASS"], False),  # 1 of 3 won; no subnet fits at 70%
        ([0.9, 0.7, 0.8], 0.796, ["PASS", "MISS"], False),  # grid subnets 0.4 pt below
        ([0.9, 0.7, 0.8], 0.81, ["PASS", "PASS"], True),  # grid subnets above
    ],
)
def test_goal_checks(gains, per_layer_mean, marks, ok) -> None:
    lines, met = bench.goal_checks(_rows(gains, 0.80, per_layer_mean))
    assert [line.split()[0] for line in lines] == marks and met is ok
    won = [g is not None and g >= 0.5 for g in gains]
    assert f"at {sum(won)} of 3 budgets" in lines[0]
    assert f"{sum(won[1:])} of those {sum(won)} also no slower than the grid pick" in lines[0]
    assert f"{100 * (per_layer_mean - 0.80):+.2f} pt" in lines[1]


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_bench_end_to_end_on_tiny_runs(tmp_path: Path, minilm_dir: Path, capsys) -> None:
    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)
    grid_run, out = tmp_path / "grid", tmp_path / "out"
    benchmarks = tmp_path / "BENCHMARKS.md"
    benchmarks.write_text("# Benchmarks\n")
    argv = [
        "--config",
        str(PRESET),
        *TINY_RUN,
        f"model={model}",
        "recipe=single-stage",
        "--grid-run",
        str(grid_run),
        "--out",
        str(out),
        "--benchmarks",
        str(benchmarks),
        *("--repeats", "3", "--warmup", "1", "--population", "4", "--generations", "1"),
        *("--verify-top", "2", "--accuracy-subset", "16", "--tau-subnets", "5", "--resamples", "200"),
        # The tiny model's latency is mostly fixed cost: its subnets fit only budgets near the full model.
        *("--budgets", "0.8", "0.9", "1.0"),
        "--no-progress",
    ]
    assert bench.main(argv) == 0
    pl_run = out / "per_layer" / "seed-42"
    # The per-layer supernet was trained from the grid run's teacher, with per-layer sampling.
    pl_cfg = load_config(TrainConfig, pl_run / "config.yaml")
    assert pl_cfg.per_layer_sampling and pl_cfg.teacher.path == str(grid_run / "teacher")
    assert not load_config(TrainConfig, grid_run / "config.yaml").per_layer_sampling

    rows = [json.loads(line) for line in (out / "per_layer.jsonl").read_text().splitlines()]
    pairs = [r for r in rows if r["kind"] == "pair"]
    assert [(r["supernet"], r["budget_ratio"]) for r in pairs] == [
        (s, b) for s in ("grid", "per-layer") for b in (0.8, 0.9, 1.0)
    ]
    # At the full model's latency some grid subnet fits on both supernets, so every field is exercised.
    assert all(r["grid"] is not None for r in pairs if r["budget_ratio"] == 1.0)
    full_ms = rows[[r["kind"] for r in rows].index("grid")]["full_ms"]
    for r in pairs:
        assert r["budget_ms"] == pytest.approx(r["budget_ratio"] * full_ms)
        for side in ("grid", "per_layer"):
            if r[side] is not None:
                assert r[side]["latency_ms"] <= r["budget_ms"]
        if r["grid"] is not None:
            assert r["grid"]["name"].startswith("w")  # a grid subnet
            # The per-layer pick is chosen among the grid and more, so never worse on dev.
            assert r["per_layer"]["dev_accuracy"] >= r["grid"]["dev_accuracy"]
            low, high = r["ci_pt"]
            assert low <= r["diff_pt"] <= high
            want = 100 * (r["per_layer"]["test_accuracy"] - r["grid"]["test_accuracy"])
            assert r["diff_pt"] == pytest.approx(want)
    # A grid pick's test accuracy, scored here example by example, equals training's eval.jsonl.
    for r in pairs:
        if r["grid"] is not None:
            evals = [json.loads(line) for line in (Path(r["run"]) / "eval.jsonl").read_text().splitlines()]
            assert r["grid"]["test_accuracy"] == pytest.approx(
                next(e["test_accuracy"] for e in evals if e["subnet"] == r["grid"]["name"]), abs=1e-6
            )
    ranks = [r for r in rows if r["kind"] == "rank"]
    assert [r["supernet"] for r in ranks] == ["grid", "per-layer"]
    for r in ranks:
        assert r["subnets"] == 5 and r["accuracy_subset"] == 16
        assert len(r["subset_accuracy"]) == len(r["dev_accuracy"]) == 5
        assert len(r["predicted_accuracy"]) == 5
        # Five subnets ranked by two scores: Kendall's tau is None exactly when a ranking is all ties.
        full = r["dev_accuracy"]
        for key, other in (
            ("kendall_tau", r["subset_accuracy"]),
            ("predictor_kendall_tau", r["predicted_accuracy"]),
        ):
            tied = len(set(other)) == 1 or len(set(full)) == 1
            assert (r[key] is None) == tied and (tied or -1.0 <= r[key] <= 1.0)

    md = (out / "per_layer.md").read_text()
    lines, _ = bench.goal_checks(rows)
    for line in lines:
        assert f"- {line}" in md
    assert md.count("| grid |") == 3 and md.count("| per-layer |") == 3
    text = benchmarks.read_text()
    assert "<!-- results:per-layer-rt-sentences -->" in text and md.strip() in text
    assert (out / "per_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Checks (issue 13)" in capsys.readouterr().out


def test_bench_refuses_a_per_layer_grid_run(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        "model: m\ntask: rt-sentences\noutput_dir: x\nrecipe: single-stage\nper_layer_sampling: true\n"
    )
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert bench.main(["--config", str(PRESET), "--grid-run", str(run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --grid-run {run} was trained with per_layer_sampling=true; pass a grid-only run"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--budgets", "0.3", "1.5"],
            "--budgets must be shares of the full model's latency in (0, 1], got 1.5",
        ),
        (["--tau-subnets", "1"], "--tau-subnets must be >= 2, got 1"),
        (["--resamples", "0"], "--resamples must be >= 1, got 0"),
        (["--accuracy-subset", "-1"], "--accuracy-subset must be >= 0 (0 = the whole dev split), got -1"),
    ],
)
def test_bench_refuses_bad_flags(flags: list[str], message: str, tmp_path: Path, capsys) -> None:
    argv = ["--config", str(PRESET), "--grid-run", str(tmp_path / "g"), "--out", str(tmp_path / "o"), *flags]
    assert bench.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert list(tmp_path.iterdir()) == []

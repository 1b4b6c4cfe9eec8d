"""search.py over a tiny trained run: files, budgeted choice, caches, per-layer search, onnxruntime."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, copy_run, save_tiny_model_dir

import supernet as sn
import supernet.search_cli as search_cli
from supernet.cli import export_main, search_main, train_main
from supernet.latency import LatencyPredictor
from supernet.profile_kit import run_identity
from supernet.search import pareto_front, read_results, wilson_interval
from supernet.trainer import load_supernet

PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
FAST = ["--repeats", "3", "--warmup", "1", "--threads", "1", "--no-progress"]


def _fast_cache(run: Path) -> Path:
    """The latency cache file a search with FAST's timing reads and writes (figures of other timings
    that other tests took in the shared run lie beside it)."""
    from supernet.latency import LatencyCache, LatencySetting

    return LatencyCache(run, LatencySetting(num_threads=1, warmup=1, repeats=3)).path


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_trained_run) -> Path:
    return copy_run(tiny_trained_run, tmp_path_factory.mktemp("search") / "run")


@pytest.mark.slow
def test_grid_search_files_and_choice(run: Path, capsys) -> None:
    for cached in (run / "latency").glob("predictor-*.json"):  # another test may have fitted one
        cached.unlink()
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    results = read_results(run / "search" / "results.jsonl")
    assert sorted(r.name for r in results) == sorted(
        f"w{w:.2f}-d{d:.2f}" for w in (1.0, 0.75, 0.5, 0.25) for d in (1.0, 0.75, 0.5)
    )
    model = load_supernet(run / "supernet")
    assert all(r.latency_ms > 0 for r in results)
    assert all(r.params == sn.count_params(model, r.subnet) for r in results)
    assert all(r.flops == sn.count_flops(model, r.subnet, 128) for r in results)  # at --seq-len
    # A grid search measures every subnet; the predictor is fitted only when asked for.
    assert all(r.predicted_ms is None for r in results)
    assert not list((run / "latency").glob("predictor-*.json"))
    # Dev accuracies come from training's eval.jsonl, not a re-evaluation.
    trained = {
        json.loads(line)["subnet"]: json.loads(line)["accuracy"] for line in (run / "eval.jsonl").open()
    }
    assert {r.name: r.accuracy for r in results} == trained
    chosen = json.loads((run / "search" / "chosen.json").read_text())
    fitting = [r for r in results if r.latency_ms <= 1000]
    best = max(fitting, key=lambda r: (r.accuracy, -r.latency_ms))
    assert chosen["name"] == best.name and chosen["budget_ms"] == 1000
    csv_names = [line.split(",")[0] for line in (run / "search" / "pareto.csv").read_text().splitlines()[1:]]
    assert csv_names == [r.name for r in pareto_front(results)]
    out = capsys.readouterr().out
    assert f"chosen under 1000.00 ms: {best.name}" in out
    assert out.endswith(f"\nnext: python export.py --run {run} --subnet best\n")
    # Under the table, what one dev example weighs (the run's dev split: teacher_eval.json's count).
    # and how far the chosen's score may sit from the accuracy it stands for (Wilson's 95% interval).
    n = json.loads((run / "teacher_eval.json").read_text())["dev"]["n"]
    low, high = wilson_interval(best.accuracy, n)
    assert (
        f"dev accuracy over {n} examples: one example is {100 / n:.2f} pt; {best.name}'s "
        f"{100 * best.accuracy:.2f}% has a 95% interval of {100 * low:.1f}-{100 * high:.1f}% (Wilson)"
    ) in out.splitlines()


@pytest.mark.slow
def test_second_search_reuses_cached_latency(run: Path, monkeypatch, capsys) -> None:
    from supernet import profile_kit_script

    # Figures taken under load are timed again (test_remeasure_...): this one is about clean ones,
    # whatever else runs on the machine meanwhile.
    monkeypatch.setattr(profile_kit_script, "LOAD_BOUND_CORES", float("inf"))
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    calls: list[int] = []

    def counting(model, cfgs, setting, **kw):
        calls.append(len(cfgs))
        raise AssertionError("latency should come from the cache")

    monkeypatch.setattr(search_cli, "measure_subnets", counting)
    capsys.readouterr()
    # Ratio 1: at a lower one a fast figure for the tiny full model can put every subnet over budget.
    assert search_main(["--run", str(run), "--latency-budget-ratio", "1.0", *FAST]) == 0
    assert calls == []
    # Said, not silent: the figures are this machine's, timed earlier.
    cache = run / "latency" / "cpu-torch-b1-s128-t1.json"
    out = capsys.readouterr().out.splitlines()
    assert (
        f"latency of 12 of 12 subnets read from {cache} (timed earlier on this machine and setting; "
        "--remeasure times them again)"
    ) in out
    assert not [line for line in out if line.startswith("measuring")]  # it had said "measuring 12"


@pytest.mark.slow
def test_remeasure_times_the_grid_again_and_replaces_the_cache(run: Path, monkeypatch, capsys) -> None:
    """A flagged cached figure was reused by every later search: "remeasure on an idle machine" could
    not be done. --remeasure times all of them again, in one interleaved batch, and keeps the new ones;
    more repeats than the cache was timed with are a miss too."""
    from supernet.latency import LatencyCache, LatencyResult, LatencySetting

    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    setting = LatencySetting(num_threads=1, warmup=1, repeats=3)
    cache = LatencyCache(run, setting)
    assert cache.path.name == "cpu-torch-b1-s128-t1.json"
    grid = [r.subnet for r in read_results(run / "search" / "results.jsonl")]
    for cfg in grid:  # as if timed on an idle machine, whatever ran beside the first search
        cache.put(cfg, dataclasses.replace(cache.get(cfg), other_cpu=0.0))
    loaded = LatencyResult(
        median_ms=9.0, p10_ms=8.0, p90_ms=20.0, mean_ms=12.0, std_ms=4.0, repeats=3, other_cpu=1.0
    )
    spread = LatencyResult(
        median_ms=9.0, p10_ms=8.0, p90_ms=20.0, mean_ms=12.0, std_ms=4.0, repeats=3, other_cpu=0.0
    )
    cache.put(grid[0], loaded)  # as if timed beside another job
    cache.put(grid[1], spread)  # as if timed on a noisy, idle machine
    # The machine still busy: timed again, it would be flagged again (at every search): kept, and said.
    monkeypatch.setattr(search_cli, "others_now", lambda: 0.8)
    capsys.readouterr()
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        f"1 of the figures cached in {cache.path} were timed while other processes took the cores (flagged load), "
        "and they take 0.80 cores now too: kept (search.py --remeasure on an idle machine times them again)"
    ) in out
    assert not [line for line in out if line.startswith("measuring")] and cache.get(grid[0]) == loaded
    # Idle now: timed again.
    monkeypatch.setattr(search_cli, "others_now", lambda: 0.0)
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    out = capsys.readouterr().out.splitlines()
    # A figure taken under load is timed again (once); a wide spread alone is reused, and said.
    assert (
        f"1 of the figures cached in {cache.path} were timed while other processes took the cores "
        "(flagged load): timing them again"
    ) in out
    assert [line for line in out if line.startswith("measuring")][0].startswith(
        "measuring 1 of 12 subnets on cpu-torch-b1-s128-t1 (and "
    )
    assert cache.get(grid[0]) != loaded and cache.get(grid[1]) == spread
    warning = next(line for line in out if line.startswith("warning: latency of"))
    assert warning.endswith("(some were read from the run's cache: search.py --remeasure times them again)")

    batches: list[list[str]] = []

    def timed(model, cfgs, setting, **kw):
        batches.append([c.name for c in cfgs])
        return [LatencyResult.from_samples([1.0 + i, 1.0 + i, 1.0 + i]) for i in range(len(cfgs))]

    monkeypatch.setattr(search_cli, "measure_subnets", timed)
    capsys.readouterr()
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", "--remeasure", *FAST]) == 0
    assert "measuring 12 of 12 subnets on cpu-torch-b1-s128-t1 ..." in capsys.readouterr().out.splitlines()
    assert [sorted(b) for b in batches] == [sorted(c.name for c in grid)]  # all, in one batch
    assert cache.get(grid[0]) == LatencyResult.from_samples([1.0 + batches[0].index(grid[0].name)] * 3)
    # A search asking for more repeats than the cache holds times them: the file is replaced.
    batches.clear()
    capsys.readouterr()
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", "--repeats", "4", *FAST[2:]]) == 0
    assert [len(b) for b in batches] == [len(grid)]
    # ... and says why the cache there is not read (the first search after `make quickstart`, which
    # timed with other counts, did it without a word).
    assert (
        f"note: {cache.main} holds figures timed with 1 warm-up and 3 timed calls, not this search's 1 and 4: "
        "they are kept, not reused (--warmup 1 --repeats 3 reuses them)"
    ) in capsys.readouterr().out.splitlines()


@pytest.mark.slow
def test_predict_adds_the_predictors_column(run: Path, capsys) -> None:
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", "--predict", *FAST]) == 0
    results = read_results(run / "search" / "results.jsonl")
    (predictor_file,) = (run / "latency").glob("predictor-*.json")
    predictor = LatencyPredictor.load(predictor_file)
    assert len(results) == 12 and all(r.predicted_ms == predictor.predict(r.subnet) for r in results)
    assert "pred ms" in capsys.readouterr().out
    # Once fitted, the cached predictor fills the column of later searches without --predict.
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    assert [r.predicted_ms for r in read_results(run / "search" / "results.jsonl")] == [
        r.predicted_ms for r in results
    ]


@pytest.mark.slow
def test_flagged_predictor_probes_are_one_warning_line(
    run: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """The predictor's probes, measured under load, say so in one line, not as a Python warning."""
    import shutil
    import warnings

    from supernet.latency import LatencyWarning

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for path in (copy / "latency").glob("predictor-*.json"):
        path.unlink()
    real = search_cli.measure_subnets

    def flagged(model, cfgs, setting, **kw):
        results = real(model, cfgs, setting, **kw)
        warnings.warn("latency of 26 probes may not be the model's alone", LatencyWarning, stacklevel=2)
        return results

    monkeypatch.setattr(search_cli, "measure_subnets", flagged)
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", "--predict", *FAST]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "warning: latency predictor probes: latency of 26 probes may not be the model's alone" in out
    assert not [w for w in raised if issubclass(w.category, LatencyWarning)]
    # A later search reusing that predictor says what its probes carried (it reused it silently).
    monkeypatch.setattr(search_cli, "measure_subnets", real)
    (path,) = (copy / "latency").glob("predictor-*.json")
    recorded = json.loads(path.read_text())["probes_flagged"]  # the real timing may add its own flags
    assert recorded.endswith("latency of 26 probes may not be the model's alone")
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    assert (
        f"note: {path.relative_to(copy)} was built from flagged probes ({recorded}): its predictions may "
        "carry that; search.py --remeasure on an idle machine builds it again"
    ) in capsys.readouterr().out.splitlines()


@pytest.mark.slow
def test_a_missing_task_file_stops_a_per_layer_search_before_it_measures(
    run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A run copied without its data file measured every grid subnet and the predictor's probes
    (a minute) and only then failed loading the dev split."""
    from supernet import search_cli

    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("latency", "search"))
    config = (copy / "config.yaml").read_text()
    (copy / "config.yaml").write_text(re.sub(r"(?m)^task: .*$", "task: /nowhere/gone.csv", config))

    def measured(*args, **kwargs):
        raise AssertionError("measured before the data was checked")

    monkeypatch.setattr(search_cli.SearchRun, "measure", measured)
    for extra in (["--per-layer"], ["--backend", "onnxruntime", "--int8"]):
        code = search_main(["--run", str(copy), "--latency-budget-ms", "1000", *extra, *FAST])
        assert code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            "error: task '/nowhere/gone.csv' is neither a packaged task (rt-sentences, trec, sms-spam, "
            "rt-scores) nor an existing file or directory"
        )


def test_per_layer_search_adds_measured_subnets(run: Path, capsys) -> None:
    argv = [
        "--run",
        str(run),
        "--latency-budget-ms",
        "1000",
        "--per-layer",
        "--population",
        "6",
        "--generations",
        "2",
        "--verify-top",
        "3",
        "--accuracy-subset",
        "8",
        *FAST,
    ]
    capsys.readouterr()
    assert search_main(argv) == 0
    out = capsys.readouterr().out
    assert ", ranked on 8 dev examples ..." in out
    assert GRID_ONLY_NOTE in out.splitlines()  # the tiny run is trained on the grid alone
    # The verified subnets are timed beside one of the grid's, whose figure they are compared with.
    assert re.search(
        r"^measuring \d of \d subnets on cpu-torch-b1-s128-t1 \(and w\d\.\d\d-d\d\.\d\d again, to compare this "
        r"machine's speed with its earlier figure\) \.\.\.$",
        out,
        re.M,
    ), out
    results = read_results(run / "search" / "results.jsonl")
    per_layer = [r for r in results if r.name.startswith("sub-")]
    assert 1 <= len(per_layer) <= 3
    # search.json records the evolution's options: with the seed they make it repeatable.
    chosen = json.loads((run / "search" / "chosen.json").read_text())["name"]
    assert json.loads((run / "search" / "search.json").read_text())["search"] == {
        "latency_budget_ms": 1000.0,
        "latency_budget_ratio": None,
        "budget_ms": 1000.0,
        "per_layer": True,
        "population": 6,
        "generations": 2,
        "verify_top": 3,
        "accuracy_subset": 8,
        "seed": 0,
        "chosen": chosen,
    }
    # A subset as large as the dev split (32 rows here) is the whole split, and said so (was "128").
    capsys.readouterr()
    assert search_main([a for a in argv if a not in ("--accuracy-subset", "8")]) == 0
    assert ", ranked on the whole dev split ..." in capsys.readouterr().out
    # and recorded as search.py's 0 (the whole split), not the 128 asked for.
    assert json.loads((run / "search" / "search.json").read_text())["search"]["accuracy_subset"] == 0
    # The evolution ranked candidates on 8 dev examples; the verified ones are scored on all 32.
    digest = sn.io.weights_digest(run / "supernet")
    estimates_file = json.loads((run / "search" / "accuracy-subset8-seed0.json").read_text())
    full_file = json.loads((run / "search" / "accuracy.json").read_text())
    assert estimates_file["weights_sha256"] == full_file["weights_sha256"] == digest
    estimates, full = estimates_file["scores"], full_file["scores"]
    assert len(estimates) >= 6 and all(round(8 * a, 6).is_integer() for a in estimates.values())
    # Each verified subnet's latency is its own measured median (cached beside the grid's), not the
    # predictor's figure, and its `pred ms` is the run's cached predictor's.
    timed = json.loads((run / "latency" / "cpu-torch-b1-s128-t1.json").read_text())["entries"]
    (predictor_file,) = (run / "latency").glob("predictor-*.json")
    predictor = LatencyPredictor.load(predictor_file)
    for r in per_layer:
        assert r.subnet.heads is not None and len(r.subnet.heads) == 4
        assert r.latency_ms == timed[r.name]["result"]["median_ms"]
        assert r.predicted_ms == predictor.predict(r.subnet) != r.latency_ms
        assert r.name in estimates and r.accuracy == full[r.name]
        assert round(32 * r.accuracy, 6).is_integer()
    assert list((run / "latency").glob("predictor-*.json"))


def test_a_grid_search_over_a_per_layer_one_names_what_it_replaces(run: Path, tmp_path: Path, capsys) -> None:
    """A grid search into the folder of a per-layer search dropped the evolution's verified subnets
    (minutes of work, the names export.py --subnet takes) without a word."""
    out = tmp_path / "search"
    grid = ["--run", str(run), "--out", str(out), "--latency-budget-ms", "1000", *FAST]
    per_layer = [*grid, "--per-layer", "--population", "4", "--generations", "1", "--accuracy-subset", "8"]
    assert search_main(per_layer) == 0
    names = [r.name for r in read_results(out / "results.jsonl") if r.name.startswith("sub-")]
    assert names
    capsys.readouterr()
    assert search_main(grid) == 0
    assert (
        f"note: replacing the earlier search's {len(names)} per-layer subnet(s) in {out} ({', '.join(names[:3])}"
        + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        + "), which this search did not measure; search with --per-layer, or pass another --out DIR, to keep them"
    ) in capsys.readouterr().out.splitlines()
    assert not [r for r in read_results(out / "results.jsonl") if r.name.startswith("sub-")]
    # Searched again per layer, nothing of it is lost: no note.
    assert search_main(per_layer) == 0
    capsys.readouterr()
    assert search_main(per_layer) == 0
    assert "per-layer subnet(s)" not in capsys.readouterr().out


GRID_ONLY_NOTE = (
    "note: this supernet was trained on the uniform grid only (per_layer_sampling is off), where a per-layer "
    "search has found nothing better than the grid's pick (README, 'When is --per-layer worth running?'); to "
    "search per layer, train with recipe=single-stage per_layer_sampling=true"
)


def test_a_per_layer_search_of_a_grid_only_supernet_says_so() -> None:
    """README says a per-layer search of a supernet trained on the grid alone is not worth its time;
    the search said nothing of it. Said for every recipe but single-stage with per_layer_sampling."""
    from supernet.config import TrainConfig

    for overrides, said in (
        ({"recipe": "single-stage", "per_layer_sampling": True}, []),
        ({"recipe": "single-stage"}, [GRID_ONLY_NOTE]),
        ({"recipe": "dynabert"}, [GRID_ONLY_NOTE]),
    ):
        lines: list[str] = []
        cfg = TrainConfig(model="m", task="t", output_dir="o", **overrides)
        search_cli._note_grid_only(cfg, lines.append)
        assert lines == said, overrides


def test_a_budget_only_the_predictor_misses_still_chooses_from_the_grid(
    run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The predictor put the smallest subnet over a budget the measured grid meets: the per-layer
    search ended the whole search with no results (BudgetError) instead of the grid's choice."""
    monkeypatch.setattr(sn.latency.LatencyPredictor, "predict", lambda self, cfg: 5000.0)
    out = tmp_path / "search"
    argv = ["--run", str(run), "--out", str(out), "--latency-budget-ms", "1000", "--per-layer", *FAST]
    capsys.readouterr()
    assert search_main(argv) == 0
    said = capsys.readouterr().out
    assert (
        "note: no per-layer search: the smallest subnet is predicted at 5000.00 ms, over 1000.00 ms; "
        "the choice is among the grid's subnets"
    ) in said
    results = read_results(out / "results.jsonl")
    assert [r.name for r in results] == [c.name for c in sn.SearchSpace().grid()]
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["name"] == max(results, key=lambda r: (r.accuracy, -r.latency_ms)).name


def test_a_budget_few_per_layer_subnets_fit_is_said_in_one_line(
    run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A budget only the smallest subnet is predicted under: the evolution's RuntimeWarning reached the
    terminal as a Python warning (its file, line and source line) naming max_tries, no option here."""
    monkeypatch.setattr(
        sn.latency.LatencyPredictor, "predict", lambda self, cfg: 1.0 if cfg.name == "w0.25-d0.50" else 5000.0
    )
    argv = [
        "--run",
        str(run),
        "--out",
        str(tmp_path / "search"),
        "--latency-budget-ms",
        "1000",
        "--per-layer",
    ]
    argv += ["--population", "4", "--generations", "1", *FAST]
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none may escape as a Python warning
        assert search_main(argv) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.out.splitlines() if line.startswith("note: per-layer search")]
    assert notes == [
        "note: per-layer search: no new distinct subnet with predicted latency <= 1000.00 ms in 200 random "
        "draws; the first population has 1 of its 4 subnets (and 1 more generation like it): a higher "
        "--latency-budget-ms gives it more subnets to choose from"
    ]
    assert "RuntimeWarning" not in captured.err


def test_a_subnet_the_typed_budget_misses_by_rounding_is_named(run: Path, tmp_path: Path, capsys) -> None:
    """The table shows 13.25 for 13.2528 ms: --latency-budget-ms 13.25, typed from it, left the subnet
    out without a word."""
    from supernet.latency import LatencyCache, LatencyResult, LatencySetting

    copy = copy_run(run, tmp_path / "run")
    shutil.rmtree(copy / "search", ignore_errors=True)  # earlier tests' score caches, read before eval.jsonl
    # The tiny run's subnets all score 50%: one is given 75% in the training's scores search reads.
    near = "w0.75-d0.75"
    rows = [json.loads(line) for line in (copy / "eval.jsonl").open()]
    rows = [row | {"accuracy": 0.75} if row["subnet"] == near else row for row in rows]
    (copy / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    scores = {row["subnet"]: row["accuracy"] for row in rows}
    best = max(scores.values())
    cache = LatencyCache(copy, LatencySetting(num_threads=1, warmup=1, repeats=3))

    def timed(ms: float) -> LatencyResult:
        return LatencyResult(
            median_ms=ms, p10_ms=ms, p90_ms=ms, mean_ms=ms, std_ms=0.0, repeats=3, other_cpu=0.0
        )

    for i, name in enumerate(sorted(scores)):
        ms = 13.2528 if name == near else 20.0 + i if scores[name] == best else 5.0 + i / 10
        cache.put(sn.SubnetConfig.from_name(name), timed(ms))
    capsys.readouterr()
    assert search_main(["--run", str(copy), "--latency-budget-ms", "13.25", *FAST]) == 0
    out = capsys.readouterr().out.splitlines()
    chosen = json.loads((copy / "search" / "chosen.json").read_text())["name"]
    assert scores[chosen] < best
    assert (
        f"note: {near} (accuracy {100 * best:.2f}%) is left out: measured at 13.2528 ms, over the 13.25 ms "
        "budget though the table shows 13.25; --latency-budget-ms 13.26 takes it"
    ) in out
    assert search_main(["--run", str(copy), "--latency-budget-ms", "13.26", *FAST]) == 0
    assert json.loads((copy / "search" / "chosen.json").read_text())["name"] == near


@pytest.mark.slow
def test_onnxruntime_backend(run: Path, tmp_path: Path, capsys) -> None:
    assert (
        search_main(["--run", str(run), "--backend", "onnxruntime", "--latency-budget-ratio", "1.0", *FAST])
        == 0
    )
    cache = json.loads((run / "latency" / "cpu-onnxruntime-b1-s128-t1.json").read_text())
    results = read_results(run / "search" / "results.jsonl")
    grid = sorted(f"w{w:.2f}-d{d:.2f}" for w in (1.0, 0.75, 0.5, 0.25) for d in (1.0, 0.75, 0.5))
    assert sorted(cache["entries"]) == sorted(r.name for r in results) == grid
    # Each row's latency is the onnxruntime figure cached for it; the accuracy is training's.
    assert all(r.latency_ms == cache["entries"][r.name]["result"]["median_ms"] for r in results)
    trained = {
        json.loads(line)["subnet"]: json.loads(line)["accuracy"] for line in (run / "eval.jsonl").open()
    }
    assert {r.name: r.accuracy for r in results} == trained
    chosen = json.loads((run / "search" / "chosen.json").read_text())
    assert chosen["setting"]["backend"] == "onnxruntime"
    # Ratio 1.0 of the full model's latency: the most accurate subnet no slower than it.
    full = next(r for r in results if r.name == "w1.00-d1.00").latency_ms
    fitting = [r for r in results if r.latency_ms <= full]
    assert chosen["name"] == max(fitting, key=lambda r: (r.accuracy, -r.latency_ms)).name
    # Exported without its ONNX graph: only torch is timed, and it is not set beside search's figure.
    capsys.readouterr()
    assert export_main(["--run", str(run), "--out", str(tmp_path / "exp"), "--no-onnx", "--no-progress"]) == 0
    assert (
        f"note: search timed {chosen['name']}'s ONNX graph; --no-onnx writes no model.onnx, so only torch is "
        "timed here, and search's figure is not compared"
    ) in capsys.readouterr().out.splitlines()
    summary = json.loads((tmp_path / "exp" / "summary.json").read_text())
    assert summary["search_latency"] is None and summary["latency_ms"]["onnxruntime"] is None


@pytest.mark.parametrize("value", ["-1", "0"])
def test_accuracy_subset_must_be_positive_or_zero_for_all(value: str, tmp_path: Path, capsys) -> None:
    code = search_main(["--run", str(tmp_path / "none"), "--per-layer", "--accuracy-subset", value, *FAST])
    err = capsys.readouterr().err.strip()
    if value == "0":  # 0 means the whole dev split: the config is fine, the run is missing
        assert (
            code == 2
            and err == f"error: run '{tmp_path / 'none'}' does not exist: pass the output_dir train.py wrote"
        )
    else:
        assert code == 2 and err == "error: --accuracy-subset must be >= 0 (0 = the whole dev split), got -1"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--population", "1"], "--population must be >= 2, got 1"),
        (["--generations", "-1"], "--generations must be >= 0, got -1"),
    ],
)
def test_evolution_sizes_are_checked_first(flags: list[str], message: str, tmp_path: Path, capsys) -> None:
    """With --latency-table they were a traceback, after the grid and the predictor were done."""
    table = tmp_path / "latency-table.json"
    argv = ["--run", str(tmp_path / "none"), "--per-layer", "--latency-table", str(table), *flags]
    assert search_main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert list(tmp_path.iterdir()) == []


def test_search_and_export_say_what_an_interrupt_leaves(monkeypatch, capsys) -> None:
    """They printed train.py's "rerun with resume=true", which means nothing to them."""
    import supernet.export_cli as export_cli
    from supernet.cli import export_main

    def stop(args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search_cli, "run", stop)
    monkeypatch.setattr(export_cli, "run", stop)
    assert search_main(["--run", "r"]) == 130
    assert capsys.readouterr().err == (
        "interrupted: no results written; search.py run again reuses the latencies and scores already "
        "saved in the run's caches (a batch of subnets being exported or timed starts again)\n"
    )
    assert export_main(["--run", "r"]) == 130
    assert capsys.readouterr().err == (
        "interrupted: nothing was exported (no folder is left half-written; an export already in --out is kept)\n"
    )


def test_export_interrupted_while_scoring_ends_its_bar_before_saying_so(
    run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Ctrl-C while export.py scored dev glued the message onto the open bar's line, and the bar was
    drawn again below it when the program ended."""
    import supernet.export_cli as export_cli
    from supernet.cli import export_main

    def one_batch_then_stop(predict, loader, config, on_batch):
        on_batch(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(export_cli, "score", one_batch_then_stop)
    out = tmp_path / "exp"
    capsys.readouterr()
    assert export_main(["--run", str(run), "--subnet", "w0.50-d0.50", "--out", str(out), "--no-onnx"]) == 130
    lines = capsys.readouterr().err.split("\n")
    assert lines[-2:] == [
        "interrupted: nothing was exported (no folder is left half-written; an export already in --out is kept)",
        "",
    ]
    assert re.search(r"score dev: .*\b1/[0-9]+ ", lines[-3].split("\r")[-1]), lines[-3]
    assert not out.exists()


def test_search_times_the_graph_export_writes(tmp_path: Path, minilm_dir) -> None:
    # search.py --backend onnxruntime [--int8] and export.py [--int8] must build the same
    # graph (same export, optimisation and quantisation), whatever parity batch export.py uses.
    from conftest import tiny_batch, tiny_model
    from transformers import AutoTokenizer

    import supernet as sn
    from supernet.export import export_subnet, onnx_fingerprint

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    model = sn.to_supernet(tiny_model("bert"))
    cfg = sn.SubnetConfig(heads=(1, 4, 2, 3), ffn=(5, 48, 20, 1), layers=(0, 2, 3))
    exported = export_subnet(
        model,
        cfg,
        tmp_path / "export",
        tokenizer=tokenizer,
        int8=True,
        parity_batch=tiny_batch(seed=3, batch=5, seq=9),
        dev_eval=lambda predict: float(predict(tiny_batch()).argmax(-1).float().mean()),
    )
    fp32 = search_cli.export_for_measurement(model, cfg, tmp_path / "fp32", tokenizer=tokenizer)
    int8 = search_cli.export_for_measurement(model, cfg, tmp_path / "int8", tokenizer=tokenizer, int8=True)
    assert fp32.name == "model.onnx" and int8.name == "model.int8.onnx"
    assert onnx_fingerprint(fp32) == exported.onnx_fingerprint
    assert onnx_fingerprint(int8) == exported.int8_fingerprint
    assert exported.onnx_fingerprint != exported.int8_fingerprint
    assert exported.onnx_fused["Attention"] == 3


@pytest.mark.slow
def test_searches_for_two_devices_are_kept_apart(run: Path, tmp_path: Path, capsys) -> None:
    """One run, two target settings: --out keeps the second search from replacing the first, export
    --search cuts the choice of the search it names, and a second setting written over a first in
    one folder says so."""
    import shutil

    from supernet.cli import export_main

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "search", ignore_errors=True)
    default = copy / "search"
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    first = {name: (default / name).read_bytes() for name in ("results.jsonl", "chosen.json", "pareto.csv")}
    other = tmp_path / "search-device-b"
    fast2 = [*FAST[:5], "2", *FAST[6:]]  # --threads 2: another target setting
    argv_b = [
        "--run",
        str(copy),
        "--latency-budget-ms",
        "2000",
        "--out",
        str(other),
        *fast2,
    ]  # generous: a tiny model's subnets time alike
    capsys.readouterr()
    assert search_main(argv_b) == 0
    out = capsys.readouterr().out
    assert "note: replacing" not in out
    assert {name: (default / name).read_bytes() for name in first} == first  # the first search is kept
    chosen_b = json.loads((other / "chosen.json").read_text())
    assert chosen_b["setting"]["num_threads"] == 2
    assert sorted(p.name for p in other.iterdir()) == [
        "chosen.json",
        "pareto.csv",
        "pareto.png",
        "results.jsonl",
        "search.json",
    ]
    assert json.loads((other / "search.json").read_text()) == {
        "setting": chosen_b["setting"],
        "run": chosen_b["run"],
        # How it ran: the budget as given and resolved, per-layer or not, what it chose.
        "search": {
            "latency_budget_ms": 2000.0,
            "latency_budget_ratio": None,
            "budget_ms": 2000.0,
            "per_layer": False,
            "chosen": chosen_b["name"],
        },
    }
    assert f"results: {other / 'results.jsonl'}" in out

    # export.py --search: 'best' is that search's choice, timed in its setting.
    exported = tmp_path / "exp"
    argv = ["--run", str(copy), "--search", str(other), "--out", str(exported), "--no-onnx", "--no-progress"]
    capsys.readouterr()
    assert export_main(argv) == 0
    summary = json.loads((exported / "summary.json").read_text())
    assert summary["subnet"] == chosen_b["name"]
    assert summary["setting"] == chosen_b["setting"]
    compared = summary["search_latency"]
    assert compared["search_ms"] == chosen_b["latency_ms"]
    # Said on the terminal too (it was in summary.json alone), with a warning beyond 5%.
    lines = capsys.readouterr().out.splitlines()
    change = compared["ratio"] - 1
    digits = 2 if abs(change) > 0.05 and round(abs(change), 3) <= 0.05 else 1
    assert (
        f"  search timed torch at {compared['search_ms']:.2f} ms: {change:+.{digits}%} here"
        + ("" if abs(change) <= 0.05 else " (more than 5% apart)")
        in lines
    )
    assert [line for line in lines if "against search's" in line] == (
        []
        if abs(change) <= 0.05
        else [
            f"warning: {compared['export_ms']:.2f} ms here against search's {compared['search_ms']:.2f} ms for "
            "the same graph and setting: the machine's load or speed changed between the two, or this is another "
            "machine; time both again on an idle machine (search.py --remeasure, then export.py --overwrite)"
        ]
    )
    # Another subnet of that search, exported by name (a per-layer one after comparing it with the
    # choice): its figure in results.jsonl is the one compared (it was null).
    row = next(r for r in read_results(other / "results.jsonl") if r.name != chosen_b["name"])
    named = tmp_path / "named"
    assert (
        export_main([*argv[:-4], "--subnet", row.name, "--out", str(named), "--no-onnx", "--no-progress"])
        == 0
    )
    assert json.loads((named / "summary.json").read_text())["search_latency"]["search_ms"] == row.latency_ms
    # --threads given: it is the setting timed (it was ignored for the search's), and search's figure,
    # of another setting, is not compared.
    capsys.readouterr()
    assert export_main([*argv, "--overwrite", "--threads", "1"]) == 0
    assert (
        "note: latency timed with --threads 1, search's with --threads 2: its figure is not compared"
        in capsys.readouterr().out.splitlines()
    )
    summary = json.loads((exported / "summary.json").read_text())
    assert summary["setting"] == {**chosen_b["setting"], "num_threads": 1}
    assert summary["search_latency"] is None

    # Another setting written over the first in one folder: replaced, with a note naming the first.
    first_chosen = json.loads(first["chosen.json"])
    capsys.readouterr()
    assert search_main(["--run", str(copy), "--latency-budget-ms", "2000", *fast2]) == 0
    out = capsys.readouterr().out
    assert (
        f"note: replacing the earlier search in {default} (cpu-torch-b1-s128-t1, chose "
        f"{first_chosen['name']}); pass --out DIR to keep one search per device"
    ) in out.splitlines()
    # The same setting again (another budget): nothing to say.
    assert search_main(["--run", str(copy), "--latency-budget-ms", "3000", *fast2]) == 0
    assert "note: replacing" not in capsys.readouterr().out
    # Without a budget nothing is chosen: the earlier choice stays, and the search says so.
    kept = (default / "chosen.json").read_bytes()
    assert search_main(["--run", str(copy), *FAST]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        f"note: no budget, so {default / 'chosen.json'} keeps the earlier choice "
        f"({json.loads(kept)['name']}, cpu-torch-b1-s128-t2): export.py --subnet best still cuts it"
    ) in lines
    assert (default / "chosen.json").read_bytes() == kept
    # With no choice, the footer's interval is the most accurate subnet's, ties to the faster (the
    # one on the front: it named the first of two tied subnets, the slower one).
    rows = read_results(default / "results.jsonl")
    best = max(rows, key=lambda r: (r.accuracy, -r.latency_ms))
    assert best.name in {r.name for r in pareto_front(rows)}
    assert [
        line.split("; ")[1].split("'s ")[0] for line in lines if line.startswith("dev accuracy over ")
    ] == [best.name]
    # Its results, of another setting, replace the earlier ones: said too (it was not), and recorded.
    assert (
        f"note: replacing the earlier search in {default} (cpu-torch-b1-s128-t2, chose "
        f"{json.loads(kept)['name']}); pass --out DIR to keep one search per device"
    ) in lines
    assert json.loads((default / "search.json").read_text()) == {
        "setting": first_chosen["setting"],
        "run": first_chosen["run"],
        "search": {
            "latency_budget_ms": None,
            "latency_budget_ratio": None,
            "budget_ms": None,
            "per_layer": False,
            "chosen": None,
            # The folder's chosen.json is not this search's: recorded, as the terminal said it.
            "chosen_json": f"kept from an earlier search ({json.loads(kept)['name']}, cpu-torch-b1-s128-t2)",
        },
    }
    # The next search replaces that unbudgeted search's results: named, with no choice of its own.
    assert search_main(["--run", str(copy), "--latency-budget-ms", "3000", *fast2]) == 0
    assert (
        f"note: replacing the earlier search in {default} (cpu-torch-b1-s128-t1); pass --out DIR to keep one "
        "search per device"
    ) in capsys.readouterr().out.splitlines()
    # A choice an unbudgeted search of another setting kept, replaced by a budgeted search of that
    # setting: said (it was not: search.json named the unbudgeted search, of this setting).
    kept = json.loads((default / "chosen.json").read_text())
    assert search_main(["--run", str(copy), *FAST]) == 0
    capsys.readouterr()
    assert search_main(["--run", str(copy), "--latency-budget-ms", "3000", *FAST]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: replacing")]
    assert lines == [
        f"note: replacing the earlier choice in {default / 'chosen.json'} (cpu-torch-b1-s128-t2, chose "
        f"{kept['name']}); pass --out DIR to keep one search per device"
    ]
    # An earlier choice and search record that cannot be read are replaced without a note, not a traceback.
    (default / "chosen.json").write_text("{")
    (default / "search.json").write_text("[]")
    assert search_main(["--run", str(copy), "--latency-budget-ms", "3000", *FAST]) == 0
    assert "note: replacing" not in capsys.readouterr().out
    assert json.loads((default / "chosen.json").read_text())["setting"]["num_threads"] == 1
    # Kept by a search with other counts: its latency differs from results.jsonl's, and the note says why.
    kept = json.loads((default / "chosen.json").read_text())
    assert search_main(["--run", str(copy), "--repeats", "4", *FAST[2:]]) == 0
    assert (
        f"note: no budget, so {default / 'chosen.json'} keeps the earlier choice ({kept['name']}, "
        f"cpu-torch-b1-s128-t1, {kept['latency_ms']:.2f} ms timed with 1 warm-up and 3 timed calls): "
        "export.py --subnet best still cuts it"
    ) in capsys.readouterr().out.splitlines()


def test_a_kept_choice_of_other_weights_is_not_said_to_be_cut(run: Path, tmp_path: Path, capsys) -> None:
    """A no-budget search after the supernet was trained again said export.py --subnet best "still
    cuts" the earlier choice, which export.py refuses (a choice of other weights)."""
    copy = copy_run(run, tmp_path / "run")
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    chosen = copy / "search" / "chosen.json"
    data = {**json.loads(chosen.read_text()), "weights_sha256": "0" * 64}  # as before a retraining
    chosen.write_text(json.dumps(data))
    capsys.readouterr()
    assert search_main(["--run", str(copy), *FAST]) == 0
    assert (
        f"note: no budget, so {chosen} keeps the earlier choice ({data['name']}, cpu-torch-b1-s128-t1), chosen "
        "on other weights than supernet/ holds now (trained again since): export.py --subnet best refuses "
        "it; pass a budget to choose again"
    ) in capsys.readouterr().out.splitlines()
    assert json.loads(chosen.read_text()) == data


@pytest.mark.slow
def test_a_bfloat16_search_times_bfloat16_and_export_follows(run: Path, tmp_path: Path, capsys) -> None:
    """--dtype bfloat16: the subnets are timed in bfloat16 (a cache of its own), dev scores stay
    float32's, and export.py times its dense model in the type search chose it by, files float32."""
    import shutil

    from safetensors import safe_open

    from supernet.cli import export_main

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    out = tmp_path / "search-bf16"
    argv = ["--run", str(copy), "--latency-budget-ms", "2000", "--out", str(out), "--dtype", "bfloat16"]
    capsys.readouterr()
    assert search_main([*argv, *FAST]) == 0
    assert "measuring 12 of 12 subnets on cpu-torch-bf16-b1-s128-t1 ..." in capsys.readouterr().out
    assert (copy / "latency" / "cpu-torch-bf16-b1-s128-t1.json").is_file()
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["setting"]["dtype"] == "bfloat16"
    trained = {
        json.loads(line)["subnet"]: json.loads(line)["accuracy"] for line in (copy / "eval.jsonl").open()
    }
    assert {r.name: r.accuracy for r in read_results(out / "results.jsonl")} == trained

    exported = tmp_path / "exp"
    argv = ["--run", str(copy), "--search", str(out), "--out", str(exported), "--no-progress"]
    capsys.readouterr()
    assert export_main(argv) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  latency ("))
    assert re.fullmatch(
        r"  latency \(cpu, batch 1, 128 tokens, 1 thread\): torch \(bfloat16\) [0-9.]+ ms, onnxruntime [0-9.]+ ms \(float32 graph\)",
        line,
    )
    summary = json.loads((exported / "summary.json").read_text())
    assert summary["setting"] == chosen["setting"]
    assert summary["search_latency"]["artefact"] == "torch"
    assert summary["search_latency"]["search_ms"] == chosen["latency_ms"]
    with safe_open(str(exported / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}


@pytest.mark.parametrize("what", ["file", "folder", "own results.jsonl"])
def test_search_out_never_writes_over_other_files(run: Path, tmp_path: Path, capsys, what: str) -> None:
    target = tmp_path / "notes"
    if what == "file":
        target.write_text("mine")
        message = f"--out '{target}' is a file, not a folder: pass a folder for the search's results"
    else:
        target.mkdir()
        (target / "mine.txt").write_text("mine")
        if what == "own results.jsonl":  # a file of the user's that only shares the name
            (target / "results.jsonl").write_text('{"experiment": "mine"}\n')
        message = (
            f"--out '{target}' is not empty and holds no earlier search (no results.jsonl search.py "
            "wrote): refusing to write into it; pass a new folder"
        )
    code = search_main(["--run", str(run), "--out", str(target), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines()[-1] == f"error: {message}", err
    assert (target.read_text() if what == "file" else (target / "mine.txt").read_text()) == "mine"
    if what == "folder":
        assert [p.name for p in target.iterdir()] == ["mine.txt"]
    if what == "own results.jsonl":
        assert sorted(p.name for p in target.iterdir()) == ["mine.txt", "results.jsonl"]
        assert (target / "results.jsonl").read_text() == '{"experiment": "mine"}\n'


def test_search_out_may_name_the_runs_own_search_folder(tmp_path: Path) -> None:
    """The run's search/ holds dev-accuracy caches before any results: naming it is not refused."""
    run = tmp_path / "run"
    (run / "search").mkdir(parents=True)
    (run / "search" / "accuracy.json").write_text("{}")
    assert search_cli.search_folder(run, run / "search") == run / "search"
    assert search_cli.search_folder(run, None) == run / "search"
    other = tmp_path / "other"
    other.mkdir()
    (other / "accuracy.json").write_text("{}")
    with pytest.raises(search_cli.RunError, match="holds no earlier search"):
        search_cli.search_folder(run, other)


def test_export_search_must_be_a_folder(run: Path, tmp_path: Path, capsys) -> None:
    from supernet.cli import export_main

    missing = tmp_path / "no-such-search"
    code = export_main(["--run", str(run), "--search", str(missing), "--out", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        f"error: --search '{missing}' is not a folder: pass the --out folder of a search.py run"
    )
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_damaged_caches_are_measured_again_not_a_traceback(run: Path, tmp_path: Path, capsys) -> None:
    """eval.jsonl, search/accuracy.json and the latency cache only spare work: a damaged one was a
    JSONDecodeError or ValueError traceback; now a warning, and what it held is computed again."""
    import warnings

    from supernet.latency import LatencyWarning

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    before = read_results(copy / "search" / "results.jsonl")
    lines = (copy / "eval.jsonl").read_text().splitlines()
    (copy / "eval.jsonl").write_text("\n".join(["{garbage", *lines[1:]]) + "\n")
    (copy / "search" / "accuracy.json").write_text("[1, 2")
    cache = _fast_cache(copy)
    cache.write_text("not json")
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        f"warning: cannot read eval.jsonl line 1, search/accuracy.json in '{copy}': those subnets are "
        "scored on dev again"
    ) in out
    # One line of search's own, not a Python warning (file, line and code line).
    assert not [w for w in raised if issubclass(w.category, LatencyWarning)]
    assert (
        f"warning: latency cache {cache} cannot be read (not valid JSON: Expecting value: line 1 column 1 "
        "(char 0)): its subnets are measured again and the file replaced"
    ) in out
    after = read_results(copy / "search" / "results.jsonl")
    # The subnet whose row was lost is scored again, to the same dev accuracy.
    assert {r.name: r.accuracy for r in after} == {r.name: r.accuracy for r in before}
    assert json.loads(cache.read_text())["entries"].keys() == {r.name for r in after}


@pytest.mark.slow
def test_export_refuses_a_search_of_another_run(run: Path, tmp_path: Path, capsys) -> None:
    """export.py --search took any run's search: it cut that run's choice from this run and compared
    latencies across the two. chosen.json now names its run (output_dir aside, so a moved run keeps it)."""
    from supernet.cli import export_main

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    other = tmp_path / "other-search"
    assert search_main(["--run", str(copy), "--out", str(other), "--latency-budget-ms", "1000", *FAST]) == 0
    chosen = json.loads((other / "chosen.json").read_text())
    # Moved: the same digest.
    assert (
        chosen["run"]["config_sha256"]
        == run_identity(copy)["config_sha256"]
        == run_identity(run)["config_sha256"]
    )
    assert chosen["run"]["name"] == "run" and len(chosen["run"]["config_sha256"]) == 64
    assert json.loads((other / "search.json").read_text())["run"] == chosen["run"]
    # The same setting searched again, its choice another one: said (export.py --subnet best follows).
    (other / "chosen.json").write_text(json.dumps({**chosen, "name": "w0.25-d0.25", "budget_ms": 0.5}))
    capsys.readouterr()
    assert search_main(["--run", str(copy), "--out", str(other), "--latency-budget-ms", "1000", *FAST]) == 0
    assert (
        f"note: {other / 'chosen.json'} named w0.25-d0.25 under 0.50 ms; it now names {chosen['name']} "
        f"(export.py --search {other} --subnet best cuts it; pass another --out DIR to keep both)"
    ) in capsys.readouterr().out.splitlines()
    chosen["run"] = {"name": "ner", "config_sha256": "0" * 64}
    (other / "chosen.json").write_text(json.dumps(chosen))
    capsys.readouterr()
    argv = ["--run", str(copy), "--search", str(other), "--out", str(tmp_path / "exp"), "--no-progress"]
    assert export_main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --search '{other}' is a search of run 'ner', not of '{copy}': pass the folder of a search "
        f"of this run (search.py --run {copy} --out DIR)"
    )
    assert not (tmp_path / "exp").exists()
    # search.py into that folder: refused before it measures, the other run's search kept (it was
    # replaced without a word).
    # Named by chosen.json (a search.json of before 2026-12-01 names no run), or by search.json alone
    # (an unbudgeted search writes no chosen.json).
    search_json = json.loads((other / "search.json").read_text())
    for record in ("chosen.json", "search.json"):
        if record == "chosen.json":
            (other / "search.json").write_text(json.dumps({"setting": search_json["setting"]}))
        else:
            (other / "search.json").write_text(json.dumps({**search_json, "run": chosen["run"]}))
            (other / "chosen.json").unlink()
        kept = {p.name: p.read_bytes() for p in other.iterdir()}
        argv = ["--run", str(copy), "--out", str(other), "--latency-budget-ms", "1000", *FAST]
        assert search_main(argv) == 2, record
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: --out '{other}' holds a search of run 'ner', not of '{copy}': refusing to replace it; "
            "pass another --out DIR (one per run and target device)"
        )
        assert {p.name: p.read_bytes() for p in other.iterdir()} == kept


def test_unknown_per_layer_name_points_at_search_folders(tmp_path: Path) -> None:
    """A per-layer subnet of a search kept elsewhere (--out) is found with --search DIR: the error says so."""
    from supernet.export_cli import resolve_subnet_name
    from supernet.io import RunDir
    from supernet.trainer import RunError

    run = RunDir(tmp_path / "run")
    with pytest.raises(RunError) as err:
        resolve_subnet_name(run, "sub-2b526fa4e3")
    assert str(err.value) == (
        f"subnet 'sub-2b526fa4e3' is not a grid name (w0.50-d0.75) and not in {run.search / 'results.jsonl'}; "
        "run search.py first, or pass --search DIR for a search written with --out DIR"
    )
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(RunError) as err:
        resolve_subnet_name(run, "sub-2b526fa4e3", tmp_path / "elsewhere")
    assert str(err.value).endswith("results.jsonl; run search.py first")


def test_a_grid_name_cuts_the_trained_multipliers(tmp_path: Path) -> None:
    """export.py --subnet w0.62-d0.67 of a run trained on widths [1, 0.625] and depths [1, 2/3]
    cut width 0.62 / depth 0.67 (other heads and layers) under the searched subnet's name."""
    from supernet.export_cli import resolve_subnet_name
    from supernet.io import RunDir

    space = sn.SearchSpace(width_mults=(1.0, 0.625), depth_mults=(1.0, 2 / 3))
    got = resolve_subnet_name(RunDir(tmp_path), "w0.62-d0.67", space=space)
    assert (got.width_mult, got.depth_mult) == (0.625, 2 / 3)


def test_the_chosen_per_layer_subnet_is_known_by_name_after_a_budgetless_search(tmp_path: Path) -> None:
    """A search without a budget keeps chosen.json and rewrites results.jsonl with what it measured:
    `--subnet best` still cut the per-layer choice, `--subnet <its name>` was refused."""
    from supernet.export_cli import resolve_subnet_name
    from supernet.io import RunDir

    chosen = sn.SubnetConfig(heads=(4, 2, 2, 1), ffn=(48, 24, 24, 12), layers=(0, 1, 3))
    run = RunDir(tmp_path)
    run.search.mkdir(parents=True)
    (run.search / "chosen.json").write_text(json.dumps({"name": chosen.name, "spec": chosen.to_dict()}))
    assert resolve_subnet_name(run, chosen.name) == chosen
    assert resolve_subnet_name(run, "best") == chosen


def test_weights_digest_follows_the_bytes_not_the_file_times(tmp_path: Path) -> None:
    import os

    from supernet.io import weights_digest

    (tmp_path / "model.safetensors").write_bytes(b"abc")
    (tmp_path / "config.json").write_text("{}")
    first = weights_digest(tmp_path)
    os.utime(tmp_path / "model.safetensors", ns=(1, 1))
    (tmp_path / "config.json").write_text('{"id2label": {}}')  # not weights
    assert weights_digest(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"abd")
    assert weights_digest(tmp_path) != first
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    assert weights_digest(tmp_path) == first
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    assert weights_digest(tmp_path) != first


def test_a_score_cache_of_other_weights_is_said_once_not_at_every_search(run: Path, tmp_path: Path) -> None:
    """A run's search/accuracy.json from before the caches recorded their weights (a flat
    {name: score}) was said to be scored again at every search, though nothing replaced it."""
    from supernet.latency import LatencySetting

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cache = copy / "search" / "accuracy.json"
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({"w0.50-d0.50": 0.5}))
    said = []
    for _ in range(2):
        lines: list[str] = []
        sr = search_cli.SearchRun(
            copy, LatencySetting(num_threads=1, repeats=3, warmup=1), progress=False, log=lines.append
        )
        said.append(lines)
    assert said == [
        [
            f"note: search/accuracy.json in '{copy}' holds scores of other weights than supernet/ has now "
            "(trained again, or saved before searches recorded them): its subnets are scored on dev again"
        ],
        [],
    ]
    assert json.loads(cache.read_text()) == {"weights_sha256": sr.weights, "scores": {}}


@pytest.mark.slow
def test_scores_and_choice_of_other_weights_are_not_reused(run: Path, tmp_path: Path, capsys) -> None:
    """search/'s accuracy caches and chosen.json were not tied to the weights: a run trained again
    (from its first step) reused the old supernet's scores and export cut the old choice."""
    from safetensors.torch import load_file, save_file

    from supernet.cli import export_main
    from supernet.export_cli import resolve_subnet_name
    from supernet.io import RunDir, weights_digest
    from supernet.latency import LatencySetting
    from supernet.trainer import RunError, evaluate_subnet, load_supernet

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    old = weights_digest(copy / "supernet")
    per_layer = sn.SubnetConfig(heads=(4, 2, 2, 1), ffn=(48, 24, 24, 12), layers=(0, 1, 3))
    sr = search_cli.SearchRun(copy, LatencySetting(num_threads=1, repeats=3, warmup=1), progress=False)
    first = sr.evaluate(per_layer)
    saved = json.loads((copy / "search" / "accuracy.json").read_text())
    assert saved["weights_sha256"] == old and saved["scores"][per_layer.name] == first

    # Trained again: other weights under the same name (here: every weight halved).
    weights = copy / "supernet" / "model.safetensors"
    tensors = {k: v * 0.5 for k, v in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    model = load_supernet(copy / "supernet")
    new = weights_digest(copy / "supernet")
    assert new != old
    lines: list[str] = []
    sr = search_cli.SearchRun(
        copy, LatencySetting(num_threads=1, repeats=3, warmup=1), progress=False, log=lines.append
    )
    again = sr.evaluate(per_layer)
    # eval.jsonl's rows (training's grid scores) record their weights too: said once, for the first file.
    assert lines == [
        f"note: eval.jsonl in '{copy}' holds scores of other weights than supernet/ has now (trained "
        "again, or saved before searches recorded them): its subnets are scored on dev again"
    ]
    assert list(sr._accuracy) == [per_layer.name]  # only what it scored of these weights
    grid = sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)
    assert sr.evaluate(grid) == evaluate_subnet(model, grid, sr.dev_loader())[sr.metric]
    expected = evaluate_subnet(model, per_layer, sr.dev_loader())[sr.metric]
    assert again == expected
    assert json.loads((copy / "search" / "accuracy.json").read_text())["weights_sha256"] == new

    # export --subnet best refuses the choice the old weights made; a named subnet still exports.
    chosen = json.loads((copy / "search" / "chosen.json").read_text())
    assert chosen["weights_sha256"] == old
    with pytest.raises(RunError) as err:
        resolve_subnet_name(RunDir(copy), "best")
    assert str(err.value) == (
        f"{copy / 'search' / 'chosen.json'} was chosen by a search of other weights than '{copy / 'supernet'}' "
        f"holds now (trained again since): run search.py again to choose on these, or pass --subnet {chosen['name']}"
    )
    capsys.readouterr()
    assert export_main(["--run", str(copy), "--out", str(tmp_path / "exp"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {err.value}"
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    assert resolve_subnet_name(RunDir(copy), "best") == sn.SubnetConfig.from_dict(
        json.loads((copy / "search" / "chosen.json").read_text())["spec"]
    )


@pytest.mark.slow
def test_an_export_interrupted_while_timing_says_it_is_in_place(
    run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Ctrl-C once the folder was in place said "nothing was exported": the export was there (and the
    earlier one gone), without summary.json."""
    import supernet.export_cli as export_cli
    from supernet.cli import export_main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_cli, "measure_interleaved", interrupted)
    out = tmp_path / "exp"
    capsys.readouterr()
    assert (
        export_main(["--run", str(run), "--subnet", "w0.50-d0.50", "--out", str(out), "--no-progress"]) == 130
    )
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"interrupted: {out} is exported and parity-checked (parity.json) but has no summary.json (its "
        "latency); export.py --overwrite exports and times it again"
    )
    assert (out / "parity.json").is_file() and not (out / "summary.json").exists()
    # Interrupted right after the export was put in place (the warnings, chosen.json), and between the
    # two renames that swap an --overwrite export in: the same line, and the new export is at OUT.
    monkeypatch.undo()
    first = json.loads((out / "parity.json").read_text())
    rename = Path.rename

    def interrupted_rename(self, target):
        moved = rename(self, target)
        if Path(target).name == out.name and Path(target).parent != out.parent:  # OUT moved aside
            raise KeyboardInterrupt
        return moved

    monkeypatch.setattr(Path, "rename", interrupted_rename)
    argv = ["--run", str(run), "--subnet", "w0.25-d0.50", "--out", str(out), "--overwrite", "--no-progress"]
    assert export_main(argv) == 130
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith(f"interrupted: {out} is exported and parity-checked")
    )
    monkeypatch.undo()
    assert json.loads((out / "parity.json").read_text())["subnet"] == "w0.25-d0.50" != first["subnet"]
    assert not (out / "summary.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".exp")) == []


def test_ctrl_c_while_the_entry_points_import_is_one_line(tmp_path: Path) -> None:
    """Ctrl-C in the seconds torch and transformers take to import printed a KeyboardInterrupt traceback."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    fake = tmp_path / "supernet"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    # As if Ctrl-C came while importing: the cli module itself, then a script's own modules in *_main.
    (fake / "cli.py").write_text(
        "import os\n"
        "if os.environ.get('STOP') == 'import':\n"
        "    raise KeyboardInterrupt\n"
        "def _main():\n"
        "    raise KeyboardInterrupt\n"
        "train_main = search_main = export_main = _main\n"
    )
    shutil.copy(root / "_entry.py", tmp_path / "_entry.py")  # the guard the three scripts share
    for script in ("train.py", "search.py", "export.py"):
        # Copied beside the stand-in package: a script's own folder comes first on sys.path.
        shutil.copy(root / script, tmp_path / script)
        for stop in ("import", "main"):
            proc = subprocess.run(
                [sys.executable, str(tmp_path / script)],
                capture_output=True,
                text=True,
                env={"PATH": "/usr/bin:/bin", "STOP": stop},
                cwd=tmp_path,
            )
            assert (proc.returncode, proc.stderr) == (130, "interrupted\n"), (script, stop)


@pytest.mark.parametrize(
    "spec, reason",
    [
        ({"width_mult": 7}, "width_mult must be in (0, 1], got 7"),
        (
            {"banana": 1},
            "unknown subnet field(s) ['banana']; allowed: ['depth_mult', 'ffn', 'heads', 'layers', 'width_mult']",
        ),
    ],
)
def test_a_chosen_json_with_a_bad_spec_is_one_line(tmp_path: Path, spec: dict, reason: str) -> None:
    """It was a ValueError traceback (exit 1) from export.py --subnet best."""
    from supernet.export_cli import read_chosen
    from supernet.trainer import RunError

    path = tmp_path / "chosen.json"
    path.write_text(json.dumps({"name": "x", "spec": spec}))
    with pytest.raises(RunError) as info:
        read_chosen(path)
    assert str(info.value) == (
        f"'{path}' holds a subnet spec that is not valid ({reason}): run search.py again, or pass --subnet NAME"
    )


def test_an_empty_out_is_refused(capsys) -> None:
    """--out "" silently wrote to RUN/export/<name>."""
    from supernet.cli import export_main

    with pytest.raises(SystemExit) as info:
        export_main(["--run", "r", "--out", ""])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "export.py: error: argument --out: is empty: pass a folder, or leave --out out for "
        "RUN/export/<subnet name> (usage: export.py --help)\n"
    )
    # search.py --out "" wrote into the working folder, and export --profile-kit "" made its kit there.
    from supernet.cli import search_main

    for main, argv, message in (
        (
            search_main,
            ["--run", "r", "--out", ""],
            "search.py: error: argument --out: is empty: pass a folder, or leave --out out for RUN/search",
        ),
        (
            export_main,
            ["--run", "r", "--profile-kit", " "],
            "export.py: error: argument --profile-kit: is empty: pass a folder, or leave --profile-kit out to export a subnet",
        ),
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert capsys.readouterr().err == f"{message} (usage: {message.split(':')[0]} --help)\n"


@pytest.mark.slow
def test_a_read_only_run_is_searched_with_out_elsewhere(
    run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """search.py --out DIR on a read-only run measured every subnet, then failed saving the run's
    latency cache (a traceback), and wrote nothing to --out."""
    import errno

    from supernet.latency import LatencyCache, LatencyResult

    def read_only(self, cfg, result):
        raise OSError(errno.EROFS, "Read-only file system", str(self.path))

    def timed(model, cfgs, setting, **kw):
        return [LatencyResult.from_samples([1.0 + i] * 3) for i in range(len(cfgs))]

    monkeypatch.setattr(LatencyCache, "put", read_only)
    monkeypatch.setattr(search_cli, "measure_subnets", timed)
    out = tmp_path / "search"
    capsys.readouterr()
    argv = ["--run", str(run), "--out", str(out), "--latency-budget-ms", "1000", "--remeasure", *FAST]
    assert search_main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    cache = run / "latency" / "cpu-torch-b1-s128-t1.json"
    assert [line for line in lines if line.startswith("note: ")] == [
        f"note: '{cache}' cannot be saved (Read-only file system): this search goes on without the run's caches, "
        "and a later one measures and scores again"
    ]
    results = read_results(out / "results.jsonl")
    assert sorted(r.latency_ms for r in results) == [1.0 + i for i in range(12)]  # the figures timed now
    assert json.loads((out / "chosen.json").read_text())["name"] in {r.name for r in results}


def test_an_unwritable_run_search_folder_points_at_out(tmp_path: Path, monkeypatch) -> None:
    """It said "--out '<run>/search' is not writable" to a user who had passed no --out."""
    monkeypatch.setattr(search_cli, "unwritable", lambda path: "Read-only file system")
    with pytest.raises(search_cli.RunError) as info:
        search_cli.search_folder(tmp_path, None)
    assert str(info.value) == (
        f"the run's search folder '{tmp_path / 'search'}' cannot be written: Read-only file system; pass --out DIR "
        "elsewhere"
    )


def test_a_truncated_supernet_config_is_named_by_search_and_export(run: Path, tmp_path: Path, capsys) -> None:
    """search.py printed a transformers traceback; export.py blamed the weights and named the folder."""
    from supernet.cli import export_main

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = copy / "supernet" / "config.json"
    config.write_bytes(config.read_bytes()[:50])
    reason = json.JSONDecodeError
    try:
        json.loads(config.read_text())
    except reason as err:
        reason = err
    expected = (
        f"error: '{config}' is not valid JSON ({reason}; truncated?): delete '{copy / 'supernet'}' and rerun "
        "train.py with resume=true"
    )
    capsys.readouterr()
    assert search_main(["--run", str(copy), "--latency-budget-ms", "10", *FAST]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == expected
    assert export_main(["--run", str(copy), "--subnet", "w0.50-d0.50", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == expected


def test_an_empty_eval_jsonl_is_said(run: Path, tmp_path: Path) -> None:
    """Emptied, it had every subnet scored on dev again without a word (a damaged line is said)."""
    from supernet.latency import LatencySetting

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "eval.jsonl").write_text("")
    lines: list[str] = []
    search_cli.SearchRun(copy, LatencySetting(num_threads=1), progress=False, log=lines.append)
    assert lines == [
        f"warning: cannot read eval.jsonl (empty) in '{copy}': those subnets are scored on dev again"
    ]
    # None at all: the run was stopped between saving its supernet and scoring its grid.
    (copy / "eval.jsonl").unlink()
    lines.clear()
    search_cli.SearchRun(copy, LatencySetting(num_threads=1), progress=False, log=lines.append)
    assert lines == [
        f"note: '{copy}' has no eval.jsonl: its training stopped before scoring the grid, so the subnets "
        "are scored on dev here; rerun its train.py command with resume=true to finish the run (its test "
        "scores too)"
    ]
    # Or the run is still training, scoring its grid: said so, without the resume (it would be refused).
    from supernet import trainer

    lock = trainer._lock_run_dir(copy)
    try:
        holder = trainer._held_by(copy)
        assert holder is not None and " (pid " in holder
        lines.clear()
        search_cli.SearchRun(copy, LatencySetting(num_threads=1), progress=False, log=lines.append)
    finally:
        lock.close()
    assert lines == [
        f"note: '{copy}' has no eval.jsonl: {holder} is still training it (scoring the grid), so the "
        "subnets are scored on dev here"
    ]


@pytest.mark.slow
def test_a_killed_overwrite_leaves_nothing_for_good(run: Path, tmp_path: Path, capsys) -> None:
    """kill -9 during export --overwrite left .OUT.new-* (and its half-written ..OUT.new-*.tmp-PID,
    hundreds of MB for a real model) or .OUT.old-* beside OUT, and no later export removed them; nor
    did an --overwrite export remove the .OUT.tmp-PID of a killed first export."""
    import os
    import subprocess
    import sys

    from supernet.cli import export_main

    out = tmp_path / "exp"
    argv = ["--run", str(run), "--subnet", "w0.50-d0.50", "--out", str(out), "--no-onnx", "--no-progress"]
    assert export_main(argv) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = [tmp_path / ".exp.new-k1", tmp_path / f"..exp.new-k1.tmp-{dead.pid}", tmp_path / ".exp.old-k2"]
    left.append(tmp_path / f".exp.tmp-{dead.pid}")  # a killed first export's, never swept under --overwrite
    recent = tmp_path / ".exp.new-k3"  # maybe another job's, still being written
    for folder in (*left, recent):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
    for folder in left:
        os.utime(folder, (0, 0))
    capsys.readouterr()
    assert export_main([*argv, "--overwrite"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: removed")]
    assert sorted(said) == sorted(f"warning: removed {p}, left by an export that was killed" for p in left)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["exp", recent.name])


@pytest.mark.slow
def test_a_half_precision_checkpoint_is_trained_and_searched_in_float32(tmp_path: Path, minilm_dir) -> None:
    """transformers 5 loads a checkpoint in the type its config names: one saved in bfloat16 (as many are)
    was fine-tuned and distilled in bfloat16 weights, where AdamW's small steps vanish, and a supernet
    stored so made search.py --dtype's type check a traceback. Every model folder loads as float32."""
    import transformers
    from safetensors import safe_open

    model_dir = save_tiny_model_dir(tmp_path / "model", minilm_dir)
    transformers.AutoModel.from_pretrained(model_dir).to(torch.bfloat16).save_pretrained(model_dir)
    assert json.loads((model_dir / "config.json").read_text())["dtype"] == "bfloat16"
    run = tmp_path / "run"
    argv = ["--config", str(PRESET), "--no-progress", f"model={model_dir}", f"output_dir={run}", *TINY_RUN]
    assert train_main(argv) == 0
    for folder in ("teacher", "supernet"):
        with safe_open(str(run / folder / "model.safetensors"), "pt") as f:
            assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}, folder
    # A supernet stored in bfloat16 (trained before this fix) is searched in float32, as its scores were.
    supernet = load_supernet(run / "supernet")
    supernet.to(torch.bfloat16).save_pretrained(run / "supernet")
    assert {p.dtype for p in load_supernet(run / "supernet").parameters()} == {torch.float32}
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    # Timed in float32 (a cache without a -bf16 tag) and scored as training scored it.
    assert sorted(p.name for p in (run / "latency").glob("*.json")) == ["cpu-torch-b1-s128-t1.json"]
    trained = {
        r["subnet"]: r["accuracy"] for r in map(json.loads, (run / "eval.jsonl").read_text().splitlines())
    }
    searched = read_results(run / "search" / "results.jsonl")
    assert {r.name: r.accuracy for r in searched} == pytest.approx(trained, abs=1e-6)


@pytest.mark.slow
def test_an_onnxruntime_search_keeps_only_the_graphs_it_times(run: Path, tmp_path: Path, monkeypatch) -> None:
    """Each subnet's whole export (dense model, tokenizer, graph) stayed in the temporary folder until
    timing ended: ~5.9 GB of /tmp for a BERT-base grid. Only the graphs are kept."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "latency", ignore_errors=True)  # another test may have timed these graphs
    real = search_cli.measure_onnx_files
    seen: list[list[str]] = []

    def check(paths, setting, **kwargs):
        (folder,) = {Path(p).parent for p in paths.values()}
        seen.append(sorted(p.name for p in folder.iterdir()))
        return real(paths, setting, **kwargs)

    monkeypatch.setattr(search_cli, "measure_onnx_files", check)
    argv = [
        "--run",
        str(copy),
        "--backend",
        "onnxruntime",
        "--latency-budget-ms",
        "1000",
        "--out",
        str(tmp_path / "s"),
    ]
    assert search_main([*argv, *FAST]) == 0
    assert seen == [sorted(f"m{i}.onnx" for i in range(12))]


def test_a_cache_that_does_not_hold_here_is_one_note(run: Path, tmp_path: Path, capsys, recwarn) -> None:
    """A latency cache of another machine or graph revision (every int8 cache after the int8 graph's
    revision 2) printed a Python warning: the source file, its line, and the code line under it."""
    import shutil

    from supernet.latency import LatencyWarning

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", "--predict", *FAST]) == 0
    cache = _fast_cache(copy)
    (predictor,) = (copy / "latency").glob("predictor-cpu-torch-*.json")
    for path in (cache, predictor):
        data = json.loads(path.read_text())
        data["machine"] = {**data["machine"], "processor": "Other CPU"}
        path.write_text(json.dumps(data))
    capsys.readouterr()
    recwarn.clear()
    assert search_main(["--run", str(copy), "--latency-budget-ms", "1000", *FAST]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "does not hold here" in line]
    assert len(notes) == 2, notes
    assert notes[0].startswith(f"warning: latency cache {cache} does not hold here (measured on ")
    assert notes[0].endswith("): its subnets are measured again")
    # The predictor's `pred ms` column went without a word.
    relative = predictor.relative_to(copy)
    assert notes[1].startswith(f"note: {relative} does not hold here (measured on ")
    assert notes[1].endswith("): it is not used")
    assert not [w for w in recwarn if issubclass(w.category, LatencyWarning)]


def test_an_int8_choice_of_an_older_int8_graph_is_not_compared_and_is_said() -> None:
    """export.py set a choice's revision-1 int8 latency against the revision-2 graph it wrote, and a
    search without a budget kept that choice without a word."""
    from supernet.export import INT8_GRAPH_REVISION, ONNX_GRAPH_REVISION
    from supernet.export_cli import _search_comparison
    from supernet.latency import LatencyResult, LatencySetting
    from supernet.search_cli import _stale_choice

    setting = LatencySetting(backend="onnxruntime", int8=True, num_threads=1)
    cfg = sn.SubnetConfig(width_mult=0.5)
    result = LatencyResult(median_ms=2.2, p10_ms=2.1, p90_ms=2.3, mean_ms=2.2, std_ms=0.1, repeats=3)
    now = {"onnx_graph": ONNX_GRAPH_REVISION, "int8_graph": INT8_GRAPH_REVISION}
    chosen = {"spec": cfg.to_dict(), "setting": setting.to_dict(), "latency_ms": 2.0, **now}
    compared = _search_comparison(chosen, setting, {"onnxruntime_int8": result})
    assert compared == {"artefact": "onnxruntime_int8", "search_ms": 2.0, "export_ms": 2.2, "ratio": 1.1}
    for edited in (0, 0.0, True, float("nan"), float("inf"), "2.0"):  # 0 divided the ratio after the export
        assert (
            _search_comparison({**chosen, "latency_ms": edited}, setting, {"onnxruntime_int8": result})
            is None
        )
    older = {k: v for k, v in chosen.items() if k != "int8_graph"}  # written before 2026-12-01
    assert _search_comparison(older, setting, {"onnxruntime_int8": result}) is None
    assert _stale_choice(older) == f"int8 graph revision 1, now {INT8_GRAPH_REVISION}"
    assert _stale_choice(chosen) is None
    torch_choice = {"spec": cfg.to_dict(), "setting": LatencySetting(num_threads=1).to_dict()}
    assert _stale_choice(torch_choice) is None  # torch times the model itself


def test_a_question_subset_as_large_as_dev_is_the_whole_dev_split(monkeypatch) -> None:
    """--accuracy-subset 40 on a dev split of 30 questions cut into 45 windows kept every question,
    yet the search ranked "on 40 dev examples" and cached its scores apart from the dev scores."""
    from types import SimpleNamespace

    from datasets import Dataset

    examples = [0] * 16 + list(range(1, 30))  # 45 windows of 30 questions
    dev = Dataset.from_dict(
        {"input_ids": [[i] for i in range(45)], "labels": [[0, 0]] * 45, "qa_example": examples}
    )
    monkeypatch.setattr(search_cli, "tokenized_split", lambda *args, **kwargs: dev)

    def probe(size: int) -> object:
        loaders: list[int] = []
        fake = SimpleNamespace(
            _subset_built=False,
            _subset_loader=None,
            train_cfg=None,
            tokenizer=None,
            model=SimpleNamespace(config=None),
            run=None,
            accuracy_subset=size,
            subset_seed=0,
            _loader=lambda split: loaders.append(len(split)) or f"loader of {len(split)} rows",
        )
        return search_cli.SearchRun._subset(fake), loaders

    assert probe(40) == (None, [])  # 40 >= 30 questions: the whole dev split, scored as such
    assert probe(30) == (None, [])
    loader, sizes = probe(5)  # 5 questions, with all their windows
    assert loader == f"loader of {sizes[0]} rows" and 5 <= sizes[0] < 45


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"format": 1, "arch', "Unterminated string starting at: line 1 column 15 (char 14)"),
        ('{"format": 99}', "unknown latency predictor format 99"),
        ("[1, 2]", "'list' object has no attribute 'get'"),
    ],
)
def test_a_damaged_predictor_file_is_said_and_not_used(tmp_path: Path, text: str, reason: str) -> None:
    """Every grid search asks whether the run holds a predictor (after timing the grid): a damaged
    file was a JSONDecodeError traceback naming no file."""
    from types import SimpleNamespace

    from supernet.io import RunDir
    from supernet.latency import LatencySetting

    setting = LatencySetting(num_threads=1)
    path = tmp_path / "latency" / f"predictor-{setting.key}.json"
    path.parent.mkdir()
    path.write_text(text)
    lines: list[str] = []
    fake = SimpleNamespace(
        run=RunDir(tmp_path),
        setting=setting,
        _said_stale_predictor=False,
        log=lines.append,
        _predictor_path=lambda: path,
    )
    assert search_cli.SearchRun._cached_predictor(fake) is None
    assert search_cli.SearchRun._cached_predictor(fake) is None  # said once
    assert lines == [
        f"warning: cannot read latency/predictor-cpu-torch-b1-s128-t1.json ({reason}): it is not used, "
        "and --predict or --per-layer builds it again"
    ]


def test_a_predictor_of_other_timing_counts_is_kept_and_not_used(tmp_path: Path) -> None:
    """A predictor whose probes were timed with --warmup 0 --repeats 1 (a quick try) was reused by
    every later search of the setting, while the latency cache refuses figures of other counts."""
    from types import SimpleNamespace

    from supernet.io import RunDir
    from supernet.latency import LatencySetting, measuring_machine

    main = tmp_path / "latency" / "predictor-cpu-torch-b1-s128-t1.json"
    main.parent.mkdir()
    here = measuring_machine(LatencySetting(num_threads=1))
    main.write_text(json.dumps({"setting": {"warmup": 0, "repeats": 1}, "machine": here}))
    lines: list[str] = []

    def fake(setting: LatencySetting) -> SimpleNamespace:
        run = SimpleNamespace(
            run=RunDir(tmp_path), setting=setting, _said_stale_predictor=False, log=lines.append
        )
        run._predictor_path = lambda: search_cli.SearchRun._predictor_path(run)
        return run

    usual = fake(LatencySetting(num_threads=1, warmup=5, repeats=30))
    assert search_cli.SearchRun._predictor_path(usual) == main.with_name(
        "predictor-cpu-torch-b1-s128-t1.w5-r30.json"
    )
    assert search_cli.SearchRun._cached_predictor(usual) is None
    assert lines == [
        "note: latency/predictor-cpu-torch-b1-s128-t1.json was built from probes timed with 0 warm-up and 1 "
        "timed calls, not this search's 5 and 30: it is kept, not used (--warmup 0 --repeats 1 uses it)"
    ]
    # Its own counts read it; a damaged file is replaced where it is.
    assert (
        search_cli.SearchRun._predictor_path(fake(LatencySetting(num_threads=1, warmup=0, repeats=1))) == main
    )
    main.write_text("{")
    assert search_cli.SearchRun._predictor_path(usual) == main
    beside = main.with_name("predictor-cpu-torch-b1-s128-t1.w5-r30.json")
    beside.write_text("{}")
    assert search_cli.SearchRun._predictor_path(usual) == beside
    # One of another machine: those counts would not use it either, so no hint says they would.
    main.write_text(
        json.dumps({"setting": {"warmup": 0, "repeats": 1}, "machine": {**here, "cpu_count": 64}})
    )
    lines.clear()
    assert (
        search_cli.SearchRun._cached_predictor(fake(LatencySetting(num_threads=1, warmup=5, repeats=30)))
        is None
    )
    assert lines[0] == (
        "note: latency/predictor-cpu-torch-b1-s128-t1.json was built from probes timed with 0 warm-up and 1 "
        "timed calls, not this search's 5 and 30: it is kept, not used"
    )


def test_subnets_timed_beside_cached_ones_check_the_machines_speed(
    run: Path, tmp_path: Path, monkeypatch
) -> None:
    """Subnets timed now were compared with figures read from the cache (or with the grid timed
    minutes before the evolution's candidates) whatever the machine's speed had become since: on
    this VM the verified per-layer subnets read 17% above or 24% below their predictions. One earlier
    subnet is now timed again beside them, and a change beyond the bound is one warning line."""
    from supernet.latency import LatencyResult, LatencySetting
    from supernet.subnet import SubnetConfig

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "latency", ignore_errors=True)
    speed = {"factor": 1.0}
    timed: list[list[str]] = []

    def fake(self, model, cfgs, setting, *, keep=True, unkept=()):  # 1 ms per 0.1 of width x depth, x speed
        timed.append([c.name for c in cfgs])
        ms = [10 * (c.width_mult or 0.5) * (c.depth_mult or 0.5) * speed["factor"] for c in cfgs]
        return [LatencyResult(median_ms=m, p10_ms=m, p90_ms=m, mean_ms=m, std_ms=0.0, repeats=3) for m in ms]

    monkeypatch.setattr(search_cli.SearchRun, "_measure_many", fake)
    lines: list[str] = []
    sr = search_cli.SearchRun(
        copy, LatencySetting(num_threads=1, warmup=1, repeats=3), progress=False, log=lines.append
    )
    grid = sr.space.grid()
    first = sr.measure(grid)
    assert timed == [[c.name for c in grid]]  # nothing earlier to compare with: nothing timed twice
    # The median-latency grid subnet of the cache is timed again beside a new one.
    middle = sorted(grid, key=lambda c: (first[c.name].median_ms, c.name))[len(grid) // 2]
    new = SubnetConfig(heads=(1,) * 2, ffn=(16,) * 2)
    lines.clear()
    speed["factor"] = 1.05  # within the bound: said in a line of its own
    assert sr.measure([*grid, new])[new.name].median_ms == pytest.approx(2.625)
    assert timed[-1] == [new.name, middle.name]
    assert lines == [
        f"measuring 1 of {len(grid) + 1} subnets on {sr.setting.key} (and {middle.name} again, to compare "
        "this machine's speed with its earlier figure) ...",
        f"{middle.name} again: {1.05 * first[middle.name].median_ms:.2f} ms against "
        f"{first[middle.name].median_ms:.2f} ms earlier (+5%; bound 10%): the figures compare",
        f"latency of {len(grid)} of {len(grid) + 1} subnets read from {copy / 'latency' / (sr.setting.key + '.json')} "
        "(timed earlier on this machine and setting; --remeasure times them again)",
    ]
    # The per-layer search's reference (the grid as timed in this search), 25% slower now: said.
    lines.clear()
    speed["factor"] = 1.25
    other = SubnetConfig(heads=(2, 1), ffn=(16, 8))
    sr.measure([other], reference={c: first[c.name] for c in grid})
    before = first[middle.name].median_ms
    assert lines[1:] == [
        f"warning: {middle.name} took {1.25 * before:.2f} ms now against {before:.2f} ms earlier (+25%; bound "
        "10%): this machine's speed has changed, so the 1 subnet(s) timed now and the figures taken earlier "
        "do not compare; search.py --remeasure times them all again (on an idle machine)"
    ]
    # The cached figure of the subnet timed again is not replaced.
    assert sr.measure([middle])[middle.name] == first[middle.name]
    # A flagged figure gives no verdict, and the line says so (the comparison, announced, said nothing).
    lines.clear()

    def spread(self, model, cfgs, setting, **kw):  # p10-p90 40% of the median
        return [
            dataclasses.replace(r, p10_ms=0.8 * r.median_ms, p90_ms=1.2 * r.median_ms)
            for r in fake(self, model, cfgs, setting)
        ]

    monkeypatch.setattr(search_cli.SearchRun, "_measure_many", spread)
    sr.measure([SubnetConfig(heads=(1, 2), ffn=(8, 16))], reference={c: first[c.name] for c in grid})
    assert lines[1] == (
        f"{middle.name} again: {1.25 * before:.2f} ms against {before:.2f} ms earlier (+25%): no verdict on "
        "this machine's speed, as the figure now (spread) is flagged; remeasure on an idle machine"
    )
    # Both flagged (the earlier figure too): said of both.
    lines.clear()
    flagged_before = dataclasses.replace(first[middle.name], other_cpu=0.5)
    sr.measure(
        [SubnetConfig(heads=(2, 2), ffn=(8, 8))],
        reference={**{c: first[c.name] for c in grid}, middle: flagged_before},
    )
    assert lines[1] == (
        f"{middle.name} again: {1.25 * before:.2f} ms against {before:.2f} ms earlier (+25%): no verdict on "
        "this machine's speed, as the figures earlier (load) and now (spread) are flagged; remeasure on an "
        "idle machine"
    )


def test_an_int8_speed_check_keeps_no_graph_and_reuses_a_kept_one(
    run: Path, tmp_path: Path, monkeypatch
) -> None:
    """With --int8 every graph timed was kept for scoring, so the subnet timed again only to check the
    machine's speed cost an int8 export kept to the search's end: now it is not kept, and a graph
    kept already is timed as it is, not exported again."""
    from supernet.latency import LatencyResult, LatencySetting
    from supernet.subnet import SubnetConfig

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "latency", ignore_errors=True)
    exported: list[str] = []

    def graph_only(self, model, cfg, folder, *, int8):
        exported.append(cfg.name)
        return Path(f"{folder}.onnx")

    def timed(paths, setting, *, progress=True):
        return {
            name: LatencyResult(median_ms=1.0, p10_ms=1.0, p90_ms=1.0, mean_ms=1.0, std_ms=0.0, repeats=3)
            for name in paths
        }

    monkeypatch.setattr(search_cli.SearchRun, "_graph_only", graph_only)
    monkeypatch.setattr(search_cli, "measure_onnx_files", timed)
    setting = LatencySetting(backend="onnxruntime", int8=True, num_threads=1, warmup=1, repeats=3)
    sr = search_cli.SearchRun(copy, setting, progress=False, log=lambda line: None)
    grid = sr.space.grid()
    first = sr.measure(grid)
    assert exported == [c.name for c in grid] and set(sr._graphs) == set(exported)  # kept for scoring
    reference = {c: first[c.name] for c in grid}
    new = SubnetConfig(heads=(1,) * 2, ffn=(16,) * 2)
    exported.clear()
    sr.measure([new], reference=reference)  # the check's graph is the one kept
    assert exported == [new.name]
    fresh = search_cli.SearchRun(copy, setting, progress=False, log=lambda line: None)
    other = SubnetConfig(heads=(2, 1), ffn=(16, 8))
    exported.clear()
    fresh.measure([other], reference=reference)  # none kept: exported for the timing only
    middle = search_cli._speed_check_subnet(reference, [other])
    assert exported == [other.name, middle.name] and set(fresh._graphs) == {other.name}


def test_the_machines_load_now_is_the_least_of_a_few_readings(monkeypatch) -> None:
    """A search that had waited for another read the other's exit as load ("0.96 cores now too:
    kept") on an idle machine: the least of up to three half-second readings counts."""
    readings = iter([0.96, 0.02, 0.5])
    monkeypatch.setattr(search_cli, "other_cpu_cores", lambda start, end, wall: next(readings))
    monkeypatch.setattr(search_cli.time, "sleep", lambda seconds: None)
    assert search_cli.others_now() == 0.02
    readings = iter([0.9, 0.8, 0.7, 0.1])
    assert search_cli.others_now() == 0.7  # busy throughout: three readings, no more

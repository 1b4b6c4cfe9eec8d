"""bench/elastic_cost.py: recipe parsing, the cost/quality goals and the re-check against baselines."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import load_bench

from supernet.config import ConfigError, TrainConfig, load_config, save_config

elastic = load_bench("elastic_cost")

SUBNETS = ["w1.00-d1.00", "w0.50-d1.00", "w0.25-d0.50"]


def _row(recipe: str, seed: int, cost: float, accs: list[float], teacher: float = 0.86) -> dict:
    test = dict(zip(SUBNETS, accs, strict=True))
    return {
        "recipe": recipe,
        "seed": seed,
        "teacher_test_accuracy": teacher,
        "cost_wall": cost,
        "cost_cpu": cost * 0.9,
        "wall_s": cost * 100.0,
        "test_accuracy": test,
        "mean_test_accuracy": sum(accs) / len(accs),
        "min_test_accuracy": min(accs),
    }


def test_recipes_are_a_name_an_optional_preset_and_overrides() -> None:
    specs = elastic.parse_recipes(
        [["dynabert", "configs/rt-minilm-dynabert.yaml"], ["k1", "num_random_subnets=1"]],
        "configs/rt-minilm.yaml",
    )
    assert [(s.name, s.preset, s.overrides) for s in specs] == [
        ("dynabert", "configs/rt-minilm-dynabert.yaml", []),
        ("k1", "configs/rt-minilm.yaml", ["num_random_subnets=1"]),
    ]
    with pytest.raises(
        ConfigError, match=r"^--recipe k1: 'fast' is neither a preset \(\.yaml\) nor key=value$"
    ):
        elastic.parse_recipes([["k1", "fast"]], "configs/rt-minilm.yaml")


def test_goals_pass_and_miss_on_the_means_over_seeds() -> None:
    rows = [
        _row("dynabert", 42, 4.9, [0.86, 0.85, 0.80]),
        # Mean over seeds: cost 1.7x, mean accuracy 83.83% (dynabert 83.67%), worst 0.83 / 0.86 = 0.965.
        _row("single-stage", 42, 1.6, [0.86, 0.84, 0.82]),
        _row("single-stage", 43, 1.8, [0.86, 0.85, 0.84]),
        # 1.89x CPU (2.1x wall), mean 83.0% < 83.67 - 0.3, worst 0.81 / 0.86 = 0.942.
        _row("cheap", 42, 2.1, [0.85, 0.83, 0.81]),
    ]
    table, checks = elastic.summarise(rows, "dynabert")
    assert checks == [
        "MISS dynabert: cost 4.41x the teacher's CPU time (goal <= 2.0x; wall 4.90x)",
        "MISS dynabert: every subnet >= 96% of the teacher's 86.00% (worst w0.25-d0.50 80.00% = 0.930; below: w0.25-d0.50)",
        "PASS single-stage: cost 1.53x the teacher's CPU time (goal <= 2.0x; wall 1.70x)",
        "PASS single-stage: mean test accuracy 84.50% vs dynabert 83.67% (goal >= 83.37%)",
        "PASS single-stage: every subnet >= 96% of the teacher's 86.00% (worst w0.25-d0.50 83.00% = 0.965)",
        "PASS cheap: cost 1.89x the teacher's CPU time (goal <= 2.0x; wall 2.10x)",
        "MISS cheap: mean test accuracy 83.00% vs dynabert 83.67% (goal >= 83.37%)",
        "MISS cheap: every subnet >= 96% of the teacher's 86.00% (worst w0.25-d0.50 81.00% = 0.942; below: w0.25-d0.50)",
    ]
    assert "| single-stage | 42, 43 | 1.70 ± 0.14x | 1.53 ± 0.13x |" in table
    # A reused run has no CPU time: its cost is its wall time against its own teacher's.
    reused = {**_row("old", 42, 4.9, [0.86, 0.85, 0.80]), "cost_cpu": float("nan")}
    old_table, old_checks = elastic.summarise([reused], "old")
    assert old_checks[0] == "MISS old: cost 4.90x the teacher's wall time (goal <= 2.0x; wall 4.90x)"
    assert "| old | 42 | 4.90x | – |" in old_table
    assert "| w0.25-d0.50 | 80.00 (0.930) | 83.00 ± 1.41 (0.965) | 81.00 (0.942) |" in table
    # A run resumed after a stop lost its first part's time: no cost from it, and its seed is starred.
    resumed = {
        **_row("dynabert", 43, 0.9, [0.86, 0.85, 0.82]),
        "cost_wall": float("nan"),
        "cost_cpu": float("nan"),
    }
    both_table, both_checks = elastic.summarise([rows[0], {**resumed, "resumed": True}], "dynabert")
    assert "| dynabert | 42, 43* | 4.90x | 4.41x | 84.00 ± 0.47 |" in both_table
    assert both_checks[0] == "MISS dynabert: cost 4.41x the teacher's CPU time (goal <= 2.0x; wall 4.90x)"
    _, alone = elastic.summarise([{**resumed, "resumed": True}], "dynabert")
    # Recipes run at different seeds are each measured against their own seeds' teachers.
    mixed, mixed_checks = elastic.summarise(
        [_row("a", 42, 1.0, [0.86, 0.85, 0.80]), _row("b", 43, 1.0, [0.86, 0.85, 0.80], teacher=0.80)], "a"
    )
    assert "| 80.00 (w0.25-d0.50) | 0.930 |" in mixed and "| 80.00 (w0.25-d0.50) | 1.000 |" in mixed
    assert (
        mixed_checks[-1]
        == "PASS b: every subnet >= 96% of the teacher's 80.00% (worst w0.25-d0.50 80.00% = 1.000)"
    )
    assert alone[0] == "---- dynabert: cost not measured (every run of it was resumed after a stop)"


def test_against_baselines_swaps_in_the_recipes_accuracy_and_refuses_another_teacher(tmp_path) -> None:
    base = {"params": 1, "flops": 1, "train_note": "", "spec": {}, "detail": "", "seed": 42}
    earlier = [
        {
            **base,
            "method": "teacher",
            "model": "m",
            "dev_accuracy": 0.87,
            "test_accuracy": 0.86,
            "latency_ms": 30.0,
            "train_seconds": 900.0,
        },
        {
            **base,
            "method": "dynabert",
            "model": "w0.25-d0.50",
            "dev_accuracy": 0.8,
            "test_accuracy": 0.70,
            "latency_ms": 6.0,
            "train_seconds": 4000.0,
        },
        {
            **base,
            "method": "head-pruning",
            "model": "heads-3",
            "dev_accuracy": 0.8,
            "test_accuracy": 0.80,
            "latency_ms": 25.0,
            "train_seconds": 1200.0,
        },
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in earlier))
    row = _row("single-stage", 42, 1.5, [0.86, 0.85, 0.83])
    md = elastic.against_baselines(path, [row], "single-stage")
    # With DynaBERT's 70% the smallest subnet lost to heads-3; with the recipe's 83% it wins.
    assert (
        "| single-stage dominates head-pruning heads-3 | **PASS** | w0.25-d0.50: 83.00% at 6.00 ms vs 80.00% at 25.00 ms |"
        in md
    )
    assert "| head-pruning heads-3 | 20.0 | 0.12 |" in md  # 150 s of elastic training / 1200 s
    with pytest.raises(elastic.RunError) as info:
        elastic.against_baselines(
            path, [_row("single-stage", 42, 1.5, [0.86, 0.85, 0.83], teacher=0.85)], "single-stage"
        )
    assert str(info.value) == (
        f"--against {path}: its teacher scores 86.00% on test, this bench's 85.00%: not the same teacher"
    )


def test_report_only_reports_finished_runs_and_reuses_a_run_for_its_own_seed(tmp_path, capsys) -> None:
    """--report-only trains nothing; --reuse serves only the seed its run was trained with."""
    timing = {"wall_s": 100.0, "cpu_s": 90.0, "threads": 1, "loadavg_start": [1.0], "loadavg_end": [1.0]}
    evals = "".join(
        json.dumps({"subnet": s, "test_accuracy": a}) + "\n"
        for s, a in zip(SUBNETS, [0.86, 0.85, 0.83], strict=True)
    )

    def finished(folder: Path, seed: int, cpu_s: float, *overrides: str) -> None:
        folder.mkdir(parents=True)
        (folder / elastic.TIME_FILE).write_text(json.dumps({**timing, "cpu_s": cpu_s}))
        (folder / "eval.jsonl").write_text(evals)
        # The config the bench gives the run (as train.py saves it).
        keys = [f"seed={seed}", f"output_dir={folder}", "resume=true", *overrides]
        save_config(load_config(TrainConfig, "configs/rt-minilm.yaml", keys), folder / "config.yaml")

    teacher = tmp_path / "elastic" / "seed-42" / "teacher"
    finished(teacher, 42, 60.0)
    (teacher / "teacher_eval.json").write_text(json.dumps({"test": {"accuracy": 0.86}}))
    teacher_model = f"teacher.path={teacher / 'teacher'}"
    finished(tmp_path / "elastic" / "seed-42" / "single-stage", 42, 120.0, teacher_model)
    old = tmp_path / "old-run"
    finished(old, 43, 1.0)  # trained with seed 43: not taken for seed 42
    code = elastic.main(
        [
            "--config", "configs/rt-minilm.yaml", "--recipe", "k1", "num_random_subnets=1",
            "--reuse", "k1", str(old), "--seeds", "42", "44", "--report-only",
            "--out", str(tmp_path), "--no-benchmarks", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert (
        f"seed 42: recipe k1 has not finished in {tmp_path / 'elastic' / 'seed-42' / 'k1'}; skipped (--report-only)"
        in out
    )
    assert (
        f"seed 44: no finished teacher in {tmp_path / 'elastic' / 'seed-44' / 'teacher'}; skipped (--report-only)"
        in out
    )
    rows = [json.loads(line) for line in (tmp_path / "elastic_cost.jsonl").read_text().splitlines()]
    assert [(r["recipe"], r["seed"], r["cost_cpu"]) for r in rows] == [("single-stage", 42, 2.0)]
    assert "| single-stage | 42 | 1.00x | 2.00x |" in (tmp_path / "elastic_cost.md").read_text()
    assert not (tmp_path / "elastic" / "seed-42" / "k1").exists()
    # A finished run made with another config is refused, not reported under the recipe's name.
    finished(tmp_path / "elastic" / "seed-42" / "k1", 42, 100.0, teacher_model, "num_random_subnets=3")
    args = ["--config", "configs/rt-minilm.yaml", "--recipe", "k1", "num_random_subnets=1", "--only", "k1"]
    assert elastic.main([*args, "--report-only", "--out", str(tmp_path), "--no-benchmarks"]) == 2
    assert capsys.readouterr().err == (
        f"error: recipe 'k1': {tmp_path / 'elastic' / 'seed-42' / 'k1'} was trained with another config "
        "(num_random_subnets: 3 -> 1); rename the recipe or move the run away\n"
    )
    # Overrides given to every run are part of the report's command line (they were left out).
    config = tmp_path / "elastic" / "seed-42" / "single-stage" / "config.yaml"
    rest = ["--only", "single-stage", "--report-only", "--out", str(tmp_path), "--no-benchmarks"]
    assert (
        elastic.main(["--config", "configs/rt-minilm.yaml", "distill.depth_pairing=same-layer", *rest]) == 0
    )
    assert (tmp_path / "elastic_cost.md").read_text().splitlines()[2] == (
        "`python bench/elastic_cost.py --config configs/rt-minilm.yaml distill.depth_pairing=same-layer "
        "--report-only`"
    )
    # A run of the other pairing is not reported as this one.
    assert elastic.main(["--config", "configs/rt-minilm.yaml", "distill.depth_pairing=dynabert", *rest]) == 2
    assert "(distill.depth_pairing: 'same-layer' -> 'dynabert')" in capsys.readouterr().err
    assert config.is_file()


def test_a_teacher_without_its_weights_is_fine_tuned_again_and_kept_only_if_it_scores_the_same(
    tmp_path, monkeypatch
) -> None:
    """A clone holds the teacher's results but not its weights: the bench retrains them, checked."""
    teacher = tmp_path / "elastic" / "seed-43" / "teacher"
    teacher.mkdir(parents=True)
    recorded = {"dev": {"accuracy": 0.85}, "test": {"accuracy": 0.86}}
    (teacher / "teacher_eval.json").write_text(json.dumps(recorded))
    (teacher / elastic.TIME_FILE).write_text("{}")
    scores = [recorded, {"dev": {"accuracy": 0.85}, "test": {"accuracy": 0.8601}}]
    seen = []

    def fake_fine_tune(cfg: TrainConfig, *, progress: bool) -> None:
        out = Path(cfg.output_dir)
        seen.append((out, cfg.seed))
        (out / "teacher").mkdir(parents=True)
        (out / "teacher" / "model.safetensors").write_text("weights")
        (out / "teacher_eval.json").write_text(json.dumps(scores[len(seen) - 1]))

    monkeypatch.setattr(elastic.trainer, "fine_tune_teacher", fake_fine_tune)
    cfg = load_config(TrainConfig, "configs/rt-minilm.yaml", ["seed=43", f"output_dir={teacher}"])
    spare = teacher.with_name("teacher-weights")
    elastic.restore_teacher_weights(teacher, cfg, threads=1, progress=False)
    assert seen == [(spare, 43)]
    assert (teacher / "teacher" / "model.safetensors").read_text() == "weights"
    assert not spare.exists()
    assert (teacher / elastic.TIME_FILE).read_text() == "{}"  # the recorded timing stays
    restored = elastic.Timing.load(teacher / elastic.RESTORED_TIME_FILE)
    assert restored is not None and restored.threads == 1 and restored.wall_s >= 0

    # A recipe trained now is costed against the fine-tune just timed; one timed before keeps its own.
    run = tmp_path / "elastic" / "seed-43" / "k1"
    run.mkdir()
    timing = elastic._timed(run, 1, lambda: None, teacher=restored)
    assert (timing.own_teacher_wall_s, timing.own_teacher_cpu_s) == (restored.wall_s, restored.cpu_s)
    assert elastic.Timing.load(run / elastic.TIME_FILE) == timing
    assert elastic._timed(run, 1, lambda: None, teacher=dataclasses.replace(restored, cpu_s=9.0)) == timing

    (teacher / "teacher" / "model.safetensors").unlink()
    (teacher / "teacher").rmdir()
    with pytest.raises(elastic.RunError) as info:
        elastic.restore_teacher_weights(teacher, cfg, threads=1, progress=False)
    assert str(info.value) == (
        f"the teacher fine-tuned again in {spare} scores dev/test 0.8500/0.8601, the recorded one in {teacher} "
        "0.8500/0.8600; train every recipe of this seed from the new one (move the seed's folder away) or "
        "restore the weights"
    )
    assert not (teacher / "teacher").exists() and (spare / "teacher").is_dir()


def test_broken_benchmarks_markers_are_one_line_and_leave_the_file_alone(tmp_path, capsys) -> None:
    # An opening marker lost from BENCHMARKS.md (it happened) must not end a finished bench in a
    # traceback, nor have the section appended a second time.
    from supernet.baselines import update_section

    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# mine\n### old\n<!-- /results:elastic-trec -->\n")
    assert update_section(doc, "elastic-trec", "### new") is False
    assert capsys.readouterr().err == (
        f"error: {doc}: malformed results markers for 'elastic-trec': need '<!-- results:elastic-trec -->' "
        f"before '<!-- /results:elastic-trec -->'; {doc} is left as it was (mend it or pass --no-benchmarks)\n"
    )
    assert doc.read_text() == "# mine\n### old\n<!-- /results:elastic-trec -->\n"
    doc.write_text("# mine\n<!-- results:elastic-trec -->\n### old\n<!-- /results:elastic-trec -->\ntail\n")
    assert update_section(doc, "elastic-trec", "### new") is True
    assert (
        doc.read_text()
        == "# mine\n<!-- results:elastic-trec -->\n### new\n<!-- /results:elastic-trec -->\ntail\n"
    )


def test_results_written_elsewhere_leave_the_repository_benchmarks_alone(tmp_path, capsys) -> None:
    """--out /tmp/x still rewrote the repository's BENCHMARKS.md section with that folder's figures."""
    from argparse import Namespace

    from supernet.baselines import benchmarks_file

    repo = tmp_path / "BENCHMARKS.md"
    mine = tmp_path / "mine.md"
    cases = [
        (dict(no_benchmarks=False, benchmarks=None, out=None), repo),
        (dict(no_benchmarks=False, benchmarks=str(mine), out="/tmp/x"), mine),
        (dict(no_benchmarks=True, benchmarks=str(mine), out=None), None),
        (dict(no_benchmarks=False, benchmarks=None, out="/tmp/x"), None),
    ]
    for given, expected in cases:
        assert benchmarks_file(Namespace(**given), repo) == expected
    assert capsys.readouterr().out == (
        "note: BENCHMARKS.md left as it is (--out given, no --benchmarks FILE): the results are in --out\n"
    )

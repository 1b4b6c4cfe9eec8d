"""bench/accuracy_latency.py: the notes under its table name rows as the table does."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import load_bench

from supernet.config import TrainConfig, load_config
from supernet.latency import LatencySetting

bench = load_bench("accuracy_latency")


def test_load_note_names_supernet_rows_after_the_recipe() -> None:
    cfg = load_config(TrainConfig, None, ["model=m", "task=t", "output_dir=o", "recipe=single-stage"])
    args = SimpleNamespace(config="c.yaml", overrides=[], rounds=5, finetune_steps=None, pruning_loss="kd")
    run = SimpleNamespace(
        seed=42,
        steps=398,
        lr=5e-5,
        supernet_steps=398,
        load={
            "other_cpu": 0.04,
            "load_avg": 2.1,
            "spread_flagged": ["dynabert/w0.25-d0.50", "head-pruning/heads-3"],
        },
    )
    notes = bench.notes(args, cfg, [run], LatencySetting(num_threads=1))
    load = next(n for n in notes if n.startswith("Machine load while timing"))
    assert load == (
        "Machine load while timing: seed 42: other processes took 0.04 cores (within the 0.10-core bound), "
        "1-min load average 2.10; p10-p90 spread above 10% of the median for "
        "supernet (single-stage)/w0.25-d0.50, head-pruning/heads-3. "
        "A flagged run may carry time lost to other work: remeasure it on an idle machine."
    )


class _Trained(Exception):
    pass


def test_layerdrop_baseline_resets_the_presets_single_stage_options(tmp_path, monkeypatch) -> None:
    # The rt/trec presets weight the smallest subnet (a single-stage option); the LayerDrop baseline
    # built from them must drop it, or the config refuses recipe=layerdrop before anything trains.
    preset = Path(__file__).resolve().parents[1] / "configs" / "rt-minilm.yaml"
    cfg = load_config(TrainConfig, preset)
    assert cfg.smallest_weight == 2.0
    seen: list[TrainConfig] = []

    def capture(ld_cfg: TrainConfig, progress: bool) -> None:
        seen.append(ld_cfg)
        raise _Trained

    monkeypatch.setattr(bench, "ensure_trained", capture)
    run = SimpleNamespace(
        cfg=cfg,
        root=tmp_path,
        seed=42,
        args=SimpleNamespace(layerdrop=0.2),
        teacher_dir=tmp_path / "t",
        steps=398,
        progress=False,
    )
    with pytest.raises(_Trained):
        bench.SeedRun.layerdrop(run, [0.75, 0.5])
    [ld] = seen
    assert (ld.recipe, ld.layerdrop, ld.smallest_weight, ld.inplace_distill, ld.per_layer_sampling) == (
        "layerdrop",
        0.2,
        1.0,
        False,
        False,
    )
    assert ld.output_dir == str(tmp_path / "layerdrop" / "seed-42" / "run")


def test_a_baseline_whose_weights_are_not_on_disk_is_trained_again(tmp_path, monkeypatch, capsys) -> None:
    # A clone carries baseline.json (committed) but not the model folder (ignored): reusing it would
    # fail on the missing config.json, so the baseline trains again.
    folder = tmp_path / "distilbert" / "seed-42" / "layers-3"
    folder.mkdir(parents=True)
    recipe = {"steps": 4, "learning_rate": 1e-4}
    (folder / "baseline.json").write_text(json.dumps({"recipe": recipe, "dev_accuracy": 0.8}))

    def build() -> None:
        raise _Trained

    run = SimpleNamespace(root=tmp_path, seed=42)
    with pytest.raises(_Trained):
        bench.SeedRun.trained(run, "distilbert", "layers-3", build, recipe, teacher=None, weights=None)
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"[bench] {folder} holds the baseline's results but not its weights (not kept in git), retraining",
        "[bench] training distilbert layers-3 for 4 steps",
    ]


def test_train_only_scores_every_model_and_times_nothing(tmp_path, monkeypatch, capsys) -> None:
    # Training can share the machine; timing cannot: --train-only stops before any latency is taken
    # and writes no table, so the timing run (same command without the flag) finds it all trained.
    trained = [
        bench.Entry("teacher", "m", None, None, 0.8712, 0.86, None),
        bench.Entry("head-pruning", "heads-3", None, None, 0.85, 0.8533, 60.0),
    ]
    runs: list[str] = []
    monkeypatch.setattr(bench.SeedRun, "entries", lambda self: runs.append(self.cfg.output_dir) or trained)

    def timed(self, setting):
        raise AssertionError("--train-only must not time anything")

    monkeypatch.setattr(bench.SeedRun, "rows", timed)
    benchmarks = tmp_path / "BENCHMARKS.md"
    benchmarks.write_text("# mine\n")
    preset = Path(__file__).resolve().parents[1] / "configs" / "rt-minilm.yaml"
    out = tmp_path / "out"
    argv = [
        "--config",
        str(preset),
        "--seeds",
        "42",
        "43",
        "--out",
        str(out),
        "--benchmarks",
        str(benchmarks),
    ]
    assert bench.main([*argv, "--train-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if ": dev " in line] == [
        "[bench] seed 42: teacher m: dev 87.12%, test 86.00%",
        "[bench] seed 42: head-pruning heads-3: dev 85.00%, test 85.33%",
        "[bench] seed 43: teacher m: dev 87.12%, test 86.00%",
        "[bench] seed 43: head-pruning heads-3: dev 85.00%, test 85.33%",
    ]
    assert lines[-1].endswith("nothing timed or written (--train-only)")
    # With --out, the supernet's runs are under it too, not at the preset's output_dir.
    assert runs == [str(out / "supernet" / "seed-42"), str(out / "supernet" / "seed-43")]
    assert not out.exists()
    assert benchmarks.read_text() == "# mine\n"


def test_keeps_the_model_cannot_have_are_refused_before_training() -> None:
    """--head-keep 99 and --layer-keep 7 on MiniLM (12 heads, 6 layers) failed after the DynaBERT run."""
    from supernet.trainer import RunError

    base = load_config(TrainConfig, Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    bench.check_keeps(SimpleNamespace(head_keep=[9, 12], layer_keep=[4, 6]), base)  # all fit
    with pytest.raises(RunError, match=r"^--head-keep 13 99: the model has 12, keep at most that$"):
        bench.check_keeps(SimpleNamespace(head_keep=[3, 13, 99], layer_keep=None), base)
    with pytest.raises(RunError, match=r"^--layer-keep 7: the model has 6, keep at most that$"):
        bench.check_keeps(SimpleNamespace(head_keep=None, layer_keep=[7]), base)

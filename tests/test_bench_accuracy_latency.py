"""bench/accuracy_latency.py: the notes under its table name rows as the table does."""

from __future__ import annotations

from types import SimpleNamespace

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

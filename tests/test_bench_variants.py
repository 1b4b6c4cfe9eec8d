"""bench/dynabert_variants.py: which artefacts of the reference run a variant may reuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_bench

from supernet.config import TrainConfig, load_config

variants = load_bench("dynabert_variants")


def _reference(tmp_path: Path) -> TrainConfig:
    root = tmp_path / "ref"
    for folder in ("teacher", "stage_w", "supernet"):
        (root / folder).mkdir(parents=True)
        (root / folder / "config.json").write_text("{}")
    (root / "importance.safetensors").write_bytes(b"scores")
    (root / "teacher_eval.json").write_text("{}")
    (root / "inputs.json").write_text('{"paths": {}, "split_sha256": {}, "group_repeats": true}')
    return load_config(TrainConfig, None, ["model=m", "task=rt-sentences", f"output_dir={root}"])


@pytest.mark.parametrize(
    ("overrides", "shared"),
    [
        (["stage_wd.epochs=3"], ["teacher", "importance.safetensors", "teacher_eval.json", "stage_w"]),
        (
            ["distill.teacher_width=full"],
            ["teacher", "importance.safetensors", "teacher_eval.json", "stage_w"],
        ),
        (
            ["final_finetune.epochs=1", "stage_wd.learning_rate=1e-4"],
            ["teacher", "importance.safetensors", "teacher_eval.json", "stage_w"],
        ),
        # Loss weights and the global learning rate also shape stage W: only the teacher is kept.
        (["distill.lambda_hard=1.0"], ["teacher", "importance.safetensors", "teacher_eval.json"]),
        (["learning_rate=1e-4"], ["teacher", "importance.safetensors", "teacher_eval.json"]),
        # Another seed or teacher recipe: nothing is shared.
        (["seed=7"], []),
        (["teacher.epochs=1"], []),
    ],
)
def test_variant_shares_exactly_what_its_changes_leave_alone(tmp_path, overrides, shared) -> None:
    base = _reference(tmp_path)
    out = tmp_path / "variant"
    cfg = load_config(TrainConfig, None, ["model=m", "task=rt-sentences", f"output_dir={out}", *overrides])
    assert variants.prepare_variant(base, cfg) == shared
    # With the teacher goes the reference's record of its split (a run of today's rule, not an older one).
    recorded = ["inputs.json"] if shared else []
    assert sorted(p.name for p in out.iterdir()) == sorted([*shared, *recorded, "config.yaml"])
    if shared:
        assert (out / "inputs.json").read_bytes() == (tmp_path / "ref" / "inputs.json").read_bytes()
    assert load_config(TrainConfig, out / "config.yaml").resume is True
    # A second call finds the variant's run and copies nothing again.
    assert variants.prepare_variant(base, cfg) == []

"""Tests of supernet.tracking: the JSONL metrics file and what is read back from it."""

from __future__ import annotations

import json

import pytest

from supernet.tracking import stage_seconds


def test_stage_seconds_multiplies_the_last_rate_by_each_stages_steps(tmp_path) -> None:
    records = [
        {"step": 10, "teacher/loss": 0.7, "teacher/sec_per_step": 1.0},
        {"step": 20, "teacher/sec_per_step": 2.0},
        {"step": 25, "stage_w/sec_per_step": 4.0},
        {"step": 30, "stage_w/sec_per_step": 3.0},
        {"step": 40, "stage_wd/sec_per_step": 8.0, "stage_wd/w1.00-d1.00/loss": 0.2},
    ]
    (tmp_path / "train_metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")
    # teacher: steps 0..20 at its last rate 2.0; stage_w: 20..30 at 3.0; stage_wd: 30..40 at 8.0.
    assert stage_seconds(tmp_path) == pytest.approx({"teacher": 40.0, "stage_w": 30.0, "stage_wd": 80.0})


def test_stage_seconds_of_a_run_without_metrics_is_empty(tmp_path) -> None:
    assert stage_seconds(tmp_path) == {}

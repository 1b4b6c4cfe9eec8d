"""bench/train_step.py: the trainer's stage W x D step against its parts (it crashed since task kinds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_bench

from supernet.latency import MachineLoad, load_report

train_step = load_bench("train_step")


@pytest.mark.slow
def test_step_is_timed_against_its_parts(tmp_path: Path, capsys) -> None:
    out = tmp_path / "step.json"
    argv = ["--threads", "1", "--rounds", "1", "--batch-size", "2", "--seq-len", "16", "--json", str(out)]
    assert train_step.main(argv) == 0
    figures = json.loads(out.read_text())
    # DynaBERT's stage W x D: all 12 grid subnets per step, one teacher forward per width.
    assert (figures["subnets_per_step"], figures["teacher_forwards_per_step"]) == (12, 4)
    assert figures["step_s"] > 0 and figures["parts_s"] > 0 and figures["naive_s"] > 0
    assert figures["step_over_parts"] == figures["step_s"] / figures["parts_s"]
    lines = capsys.readouterr().out.splitlines()
    # The machine's load over the timed rounds is recorded and said (with a warning when loaded).
    load = MachineLoad(**{k: v for k, v in figures["load"].items() if k != "loaded"})
    summary, warning = load_report({"the timed rounds": load})
    tail = [summary] + ([] if warning is None else [f"warning: {warning}"])
    assert figures["load"]["loaded"] == load.loaded and lines[-len(tail) :] == tail
    assert lines[-len(tail) - 2].startswith("step / parts = ")


def test_bad_counts_are_one_line(capsys, as_script) -> None:
    as_script("train_step")
    with pytest.raises(SystemExit) as stop:
        train_step.main(["--batch-size", "0"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "train_step.py: error: argument --batch-size: must be >= 1, got 0 (usage: train_step.py --help)\n"
    )

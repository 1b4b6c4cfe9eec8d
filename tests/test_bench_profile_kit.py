"""bench/profile_kit.py: a kept --work is reused only for the setting it was made for."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from conftest import load_bench

bench = load_bench("profile_kit", "bench_profile_kit")


def _args(work: Path, **kw: object) -> argparse.Namespace:
    asked = dict(model="all-minilm-l6-v2", int8=False, threads=1, batch_size=1, seq_len=16, warmup=0)
    asked.update(repeats=1, rounds=1, work=work)
    asked.update(kw)
    return argparse.Namespace(**asked)


def test_work_of_another_setting_is_refused(tmp_path: Path) -> None:
    """A second run with the same --work reused the first one's kit and table whatever it asked for,
    and printed the first run's figures under its own header."""
    work = tmp_path / "work"
    assert bench.reused_work_problem(_args(work)) is None  # not there yet: made on the way
    (work / "kit").mkdir(parents=True)
    (work / "kit" / "kit.json").write_text(
        json.dumps({"run": {"name": "bench-all-minilm-l6-v2"}, "int8": False})
    )
    setting = {"num_threads": 1, "batch_size": 1, "seq_len": 16, "warmup": 0, "repeats": 1, "rounds": 1}
    (work / "latency-table.json").write_text(json.dumps({"setting": setting}))
    assert bench.reused_work_problem(_args(work)) is None  # the same setting: reused
    assert bench.reused_work_problem(_args(work, int8=True)) == (
        f"--work {work} holds a kit of bench-all-minilm-l6-v2, not bench-all-minilm-l6-v2 int8: pass another --work"
    )
    assert bench.reused_work_problem(_args(work, seq_len=64, threads=2)) == (
        f"--work {work} holds a latency table timed with num_threads 1 (asked 2), seq_len 16 (asked 64): pass "
        f"another --work, or delete {work / 'latency-table.json'} to time the kit again"
    )
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert bench.reused_work_problem(_args(afile)) == f"--work {afile} is a file: pass a folder"

"""bench/search_time.py: the per-layer search's wall time behind README's "at most 5 minutes"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_RUN, load_bench

search_time = load_bench("search_time")
PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
# The budget is the full model's latency: on the tiny model a smaller ratio fell below the fastest
# subnet's figure whenever the full model's call happened to be timed fast (`make test` runs two
# test processes side by side).
SMALL_SEARCH = "--latency-budget-ratio 1.0 --population 4 --generations 1 --verify-top 1 --repeats 3 --warmup 1 --accuracy-subset 16"


@pytest.mark.slow
def test_search_is_timed_on_a_fresh_copy_of_a_trained_run(
    tmp_path: Path, capsys, tiny_model_dir: Path
) -> None:
    work, out = tmp_path / "work", tmp_path / "t.json"
    overrides = [f"model={tiny_model_dir}", *TINY_RUN]
    argv = [
        "--config",
        str(PRESET),
        "--work",
        str(work),
        "--json",
        str(out),
        "--search-options",
        SMALL_SEARCH,
    ]
    assert search_time.main([*argv, "--runs", "2", *overrides]) == 0
    figures = json.loads(out.read_text())
    # The run was trained (its overrides after the bench's own) and searched twice, each time afresh.
    assert figures["train_overrides"] == [*search_time.TRAIN_OVERRIDES, *overrides]
    assert figures["command"][3:] == ["--per-layer", "--latency-budget-ratio", "0.5", "--threads", "1",
                                      "--no-progress", *SMALL_SEARCH.split()]  # fmt: skip
    assert len(figures["runs"]) == 2 and all(r["wall_s"] > 0 for r in figures["runs"])
    assert figures["verdict"] == ("PASS" if max(r["wall_s"] for r in figures["runs"]) <= 300 else "MISS")
    assert not (work / "trained" / "search").exists()  # the trained run itself is never searched
    assert (work / "timed" / "search" / "chosen.json").is_file()
    for i in (1, 2):
        assert "evolutionary search over per-layer subnets" in (work / f"search-{i}.log").read_text()
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"per-layer search <= 5 min on this machine: {figures['verdict']} (slowest " + (
        f"{max(r['wall_s'] for r in figures['runs']):.1f} s)"
    )
    # Called again, it reuses the trained run; with other settings it refuses the folder in one line.
    assert search_time.main([*argv, *overrides]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"reusing the supernet trained in {work / 'trained'}"
    assert search_time.main([*argv, *overrides, "seed=7"]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {work / 'trained'} was trained with other settings: pass another --work\n"
    )


def test_a_work_folder_of_the_users_own_is_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    """--work DIR deleted DIR/timed and overwrote DIR/search-1.log whatever they were."""
    work = tmp_path / "mine"
    (work / "timed").mkdir(parents=True)
    (work / "timed" / "my_results.txt").write_text("keep")
    (work / "notes.md").write_text("keep")
    (work / "search-1.log").write_text("an earlier call's log")
    assert search_time.main(["--work", str(work)]) == 2
    assert capsys.readouterr().err == (
        f"error: --work {work} holds files this script did not make (notes.md, timed): pass a new or empty "
        "folder (it keeps trained/ there, and replaces timed/ and search-N.log on every call)\n"
    )
    assert (work / "timed" / "my_results.txt").read_text() == "keep"
    # Its own timed/ (a copy of the trained run, with the record of how it was trained) is its to replace.
    (work / "notes.md").unlink()
    (work / "timed" / "search_time-train.json").write_text("[]")
    assert search_time._work_problem(work) is None
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    assert search_time.main(["--work", str(blocker)]) == 2
    assert capsys.readouterr().err == f"error: --work {blocker} is a file: pass a folder\n"


def test_a_missing_config_is_refused_before_training_is_announced(tmp_path: Path, capsys) -> None:
    """It printed "training a short-schedule per-layer supernet ..." and then train.py's error."""
    missing = tmp_path / "nope.yaml"
    assert search_time.main(["--config", str(missing), "--work", str(tmp_path / "work")]) == 2
    said = capsys.readouterr()
    assert (said.out, said.err) == ("", f"error: config file '{missing}' not found\n")
    assert not (tmp_path / "work").exists()

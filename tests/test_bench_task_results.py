"""bench/task_results.py: a finished run's teacher and grid on the task kind's own metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_bench

task_results = load_bench("task_results")
REPO = Path(__file__).resolve().parents[1]


def _regression_run(root: Path) -> Path:
    run = root / "run"
    (run / "supernet").mkdir(parents=True)
    (run / "config.yaml").write_text(
        f"model: all-minilm-l6-v2\ntask: rt-scores\nrecipe: single-stage\noutput_dir: {run}\n"
        "width_mults: [1.0, 0.25]\ndepth_mults: [1.0]\n"
    )
    (run / "supernet" / "config.json").write_text(json.dumps({"num_labels": 1, "problem_type": "regression"}))
    (run / "teacher_eval.json").write_text(
        json.dumps(
            {"dev": {"pearson": 0.8, "spearman": 0.7, "n": 10}, "test": {"pearson": 0.5, "spearman": 0.4}}
        )
    )
    rows = [
        {
            "subnet": "w1.00-d1.00",
            "pearson": 0.81,
            "spearman": 0.71,
            "test_pearson": 0.5,
            "test_spearman": 0.45,
        },
        {"subnet": "w0.25-d1.00", "pearson": 0.6, "spearman": 0.5, "test_pearson": 0.4, "test_spearman": 0.3},
    ]
    (run / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_regression_run_table(tmp_path: Path) -> None:
    rows, md, slug = task_results.build(_regression_run(tmp_path))
    assert slug == "rt-scores"
    assert [r["model"] for r in rows] == ["teacher", "w1.00-d1.00", "w0.25-d1.00"]
    assert [r["of_teacher"] for r in rows] == [1.0, 1.0, 0.8]
    lines = md.splitlines()
    assert (
        lines[2]
        == "| model | dev Pearson | dev Spearman | test Pearson | test Spearman | test pearson / teacher's |"
    )
    assert lines[4] == "| teacher | 80.00 | 70.00 | 50.00 | 40.00 | 1.000 |"
    assert lines[6] == "| w0.25-d1.00 | 60.00 | 50.00 | 40.00 | 30.00 | 0.800 |"
    assert lines[-1] == (
        "Mean test pearson over the 2 grid subnets: 45.00 (teacher 50.00); lowest w0.25-d1.00 40.00 = 0.800 "
        "of the teacher's."
    )


def test_unfinished_run(tmp_path: Path, capsys) -> None:
    (tmp_path / "run").mkdir()
    assert task_results.main(["--run", str(tmp_path / "run"), "--no-benchmarks"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'run'} holds no finished run (config.yaml, eval.jsonl and teacher_eval.json): "
        "run train.py to the end first"
    )


def test_damaged_run_files_are_one_line(tmp_path: Path, capsys) -> None:
    """An empty or cut eval.jsonl, or a run without supernet/config.json, were tracebacks."""
    run = _regression_run(tmp_path)
    argv = ["--run", str(run), "--no-benchmarks", "--out", str(tmp_path / "out")]
    (run / "eval.jsonl").write_text("")
    assert task_results.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {run / 'eval.jsonl'} holds no subnet: score the run again with train.py resume=true"
    )
    (run / "eval.jsonl").write_text('{"subnet": "w1.00-d1.00", "pear')  # cut (it is written whole)
    assert task_results.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {run}: eval.jsonl or teacher_eval.json is damaged ({run / 'eval.jsonl'} line 1 is not a "
        "JSON object): score the run again with train.py resume=true"
    )
    assert not (tmp_path / "out").exists()


def test_a_run_scored_in_part_or_without_teacher_test_scores_is_one_line(
    tmp_path: Path, capsys, as_script
) -> None:
    """A run stopped while scoring was tabled as if its rows were the grid ("mean over the 1 grid
    subnets"); a teacher_eval.json without test scores was a KeyError; --out a file FileExistsError."""
    run = _regression_run(tmp_path)
    argv = ["--run", str(run), "--no-benchmarks", "--out", str(tmp_path / "out")]
    rows = (run / "eval.jsonl").read_text().splitlines()
    (run / "eval.jsonl").write_text(rows[0] + "\n")
    assert task_results.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {run / 'eval.jsonl'} lacks 1 of the 2 grid subnets (w0.25-d1.00): finish train.py "
        "(resume=true) first"
    )
    (run / "eval.jsonl").write_text("\n".join(rows) + "\n")
    (run / "teacher_eval.json").write_text(json.dumps({"dev": {"pearson": 0.8}}))
    assert task_results.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {run / 'teacher_eval.json'} lacks the teacher's dev or test scores: score the run again "
        "with train.py resume=true"
    )
    (tmp_path / "afile").write_text("mine")
    as_script("task_results")
    with pytest.raises(SystemExit):
        task_results.main([*argv[:-1], str(tmp_path / "afile")])
    assert capsys.readouterr().err == (
        f"task_results.py: error: argument --out: {tmp_path / 'afile'} is a file: pass a folder "
        "(usage: task_results.py --help)\n"
    )
    assert not (tmp_path / "out").exists() and (tmp_path / "afile").read_text() == "mine"


def test_results_kept_without_weights_are_tabled(tmp_path: Path, monkeypatch) -> None:
    """results/ in git keeps a run's eval files, not its weights: README's command for the rt-scores
    table was refused for want of supernet/config.json."""
    run = _regression_run(tmp_path)
    with_weights = task_results.build(run)
    (run / "supernet" / "config.json").unlink()
    assert task_results.build(run) == with_weights
    monkeypatch.chdir(REPO)  # README's command, from the repository
    rows, md, slug = task_results.build(Path("results/rt-scores/supernet/seed-42"))
    assert slug == "rt-scores" and rows[0]["model"] == "teacher" and len(rows) == 13
    assert md.splitlines()[2].startswith("| model | dev Pearson | dev Spearman | test Pearson |")
    assert md.strip() in (REPO / "BENCHMARKS.md").read_text()  # the table BENCHMARKS shows, to the byte


def test_files_of_the_users_own_in_out_are_kept_and_the_written_ones_named(tmp_path: Path, capsys) -> None:
    """--out holding the user's own grid.md: it was replaced without a word, and the script never
    said where it wrote grid.jsonl and grid.md."""
    run, out = _regression_run(tmp_path), tmp_path / "out"
    argv = ["--run", str(run), "--no-benchmarks", "--out", str(out)]
    out.mkdir()
    (out / "grid.md").write_text("my notes\n")
    assert task_results.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {out / 'grid.md'} was not written by this script: pass another --out, or move it away\n"
    )
    assert (out / "grid.md").read_text() == "my notes\n" and not (out / "grid.jsonl").exists()
    (out / "grid.md").unlink()
    assert task_results.main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {out / 'grid.jsonl'} and {out / 'grid.md'}"
    written = (out / "grid.md").read_text()
    # Its own files are replaced on the next call; a damaged grid.jsonl is not its own.
    assert task_results.main(argv) == 0 and (out / "grid.md").read_text() == written
    (out / "grid.jsonl").write_text("[1, 2]\n")
    assert task_results.main(argv) == 2
    assert capsys.readouterr().err.endswith(
        f"error: {out / 'grid.jsonl'} was not written by this script: pass another --out, or move it away\n"
    )

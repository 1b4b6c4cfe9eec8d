"""The bench scripts refuse what would fail or mislead only after minutes of work: at once, in one line."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import load_bench

from supernet.cli import thread_count
from supernet.profile_kit_script import usable_cores

REPO = Path(__file__).resolve().parents[1]
TIMING_SCRIPTS = (
    "accuracy_latency",
    "convert_overhead",
    "elastic_cost",
    "export_speed",
    "int8_choice",
    "latency_predictor",
    "per_layer",
    "profile_kit",
    "search_time",
    "train_step",
)


def _refused(capsys, script: str, argv: list[str]) -> str:
    """The last stderr line of `script`'s main(argv), which must exit 2 (argparse's or its own)."""
    try:
        code = load_bench(script).main(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_thread_count_allows_the_usable_cores_only() -> None:
    cores = usable_cores()
    assert thread_count(str(cores)) == cores
    with pytest.raises(argparse.ArgumentTypeError) as err:
        thread_count(str(cores + 1))
    assert str(err.value) == (
        f"{cores + 1} is more than the {cores} core{'s' if cores > 1 else ''} this process may run on: the "
        f"extra threads would wait for each other, not time the model; pass --threads {cores} or fewer"
    )
    with pytest.raises(argparse.ArgumentTypeError, match="^must be >= 1, got 0$"):
        thread_count("0")


@pytest.mark.parametrize("script", TIMING_SCRIPTS)
def test_timing_benches_refuse_more_threads_than_cores(capsys, as_script, script: str) -> None:
    """train_step --threads 999 on 2 cores took 4 min for an 8 s bench and still printed PASS."""
    too_many = usable_cores() + 1
    as_script(script)
    assert _refused(capsys, script, ["--threads", str(too_many)]).startswith(
        f"{script}.py: error: argument --threads: {too_many} is more than the"
    )


def test_export_speed_refuses_an_unfinished_run_before_timing(capsys, as_script, tmp_path: Path) -> None:
    """It checked config.yaml only, timed every shape, then failed without writing its JSON."""
    as_script("export_speed")
    (tmp_path / "run").mkdir()
    shutil.copy(REPO / "configs" / "quickstart.yaml", tmp_path / "run" / "config.yaml")
    assert _refused(capsys, "export_speed", ["--run", str(tmp_path / "run")]) == (
        f"export_speed.py: error: run '{tmp_path / 'run'}' has no trained supernet yet: finish train.py "
        "(resume=true) first (usage: export_speed.py --help)"
    )


def test_int8_choice_refuses_a_run_scored_in_part(capsys, as_script, tmp_path: Path) -> None:
    """A KeyError after every grid graph had been exported and timed."""
    as_script("int8_choice")
    run = tmp_path / "run"
    (run / "supernet").mkdir(parents=True)
    (run / "config.yaml").write_text("model: m\ntask: t\noutput_dir: o\nwidth_mults: [1.0, 0.5]\n")
    (run / "eval.jsonl").write_text('{"subnet": "w1.00-d1.00"}\n\n{"subnet": "w0.50-d0.50"}\n')
    assert _refused(capsys, "int8_choice", ["--run", str(run)]) == (
        f"int8_choice.py: error: --run {run}: eval.jsonl lacks 4 grid subnet(s) (w1.00-d0.75, w1.00-d0.50, "
        "w0.50-d1.00): finish train.py (resume=true) first (usage: int8_choice.py --help)"
    )


def test_latency_predictor_saves_one_predictor_to_a_file(capsys, as_script, tmp_path: Path) -> None:
    """A folder was an IsADirectoryError after the first build; several runs replaced each other's file."""
    as_script("latency_predictor")
    assert _refused(capsys, "latency_predictor", ["--save-predictor", str(tmp_path)]) == (
        f"latency_predictor.py: error: argument --save-predictor: {tmp_path} is a folder: pass a file path "
        "(usage: latency_predictor.py --help)"
    )
    assert _refused(capsys, "latency_predictor", ["--save-predictor", str(tmp_path / "p.json")]) == (
        "latency_predictor.py: error: --save-predictor writes one predictor: pass one --backend and --runs 1 "
        "with it (usage: latency_predictor.py --help)"
    )


def test_accuracy_latency_refuses_a_file_as_out(capsys, as_script, tmp_path: Path) -> None:
    """A NotADirectoryError after the supernet's step (on a fresh preset: its whole training)."""
    as_script("accuracy_latency")
    (tmp_path / "afile").write_text("mine")
    argv = ["--config", str(REPO / "configs" / "quickstart.yaml"), "--out", str(tmp_path / "afile")]
    assert _refused(capsys, "accuracy_latency", [*argv, "--no-benchmarks"]) == (
        f"accuracy_latency.py: error: argument --out: {tmp_path / 'afile'} is a file: pass a folder "
        "(usage: accuracy_latency.py --help)"
    )
    assert (tmp_path / "afile").read_text() == "mine"


def test_profile_kit_refuses_a_sequence_longer_than_the_model_before_the_kit(
    capsys, as_script, tmp_path: Path
) -> None:
    """profile.py refused it after the whole kit had been written, and the bench died in a traceback."""
    as_script("profile_kit")
    argv = ["--seq-len", "1000", "--subnets", "1", "--work", str(tmp_path / "work")]
    assert _refused(capsys, "profile_kit", argv) == (
        "profile_kit.py: error: --seq-len 1000 exceeds the 512 positions the model has (max_position_embeddings 512)"
    )
    assert not (tmp_path / "work" / "kit").exists()


def test_a_file_as_an_output_folder_is_refused_at_once(capsys, as_script, tmp_path: Path) -> None:
    """--out / --work of the benches that write into a folder (cli.output_folder)."""
    (tmp_path / "afile").write_text("mine")
    as_script("int8_choice")
    assert _refused(capsys, "int8_choice", ["--run", str(tmp_path), "--work", str(tmp_path / "afile")]) == (
        f"int8_choice.py: error: argument --work: {tmp_path / 'afile'} is a file: pass a folder "
        "(usage: int8_choice.py --help)"
    )
    assert (tmp_path / "afile").read_text() == "mine"


def test_an_interrupted_bench_script_says_so_in_one_line(capsys) -> None:
    """Ctrl-C in bench/train_step.py printed a 33-line KeyboardInterrupt traceback (exit -2); every
    bench script now ends through `script_exit`: one line, exit 130 (143 for SIGTERM)."""
    import signal
    import subprocess

    from supernet.cli import script_exit

    def ctrl_c() -> int:
        raise KeyboardInterrupt

    assert script_exit(ctrl_c) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back after the call
    # SIGTERM in a process of its own: sent to the suite's, a handler that failed would end the suite.
    stopped = (
        "import os, signal, sys, time\n"
        "from supernet.cli import script_exit\n"
        "def stopped():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)  # the handler raises before this ends\n"
        "code = script_exit(stopped)\n"
        "print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)  # put back after the call\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", stopped], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (143, "True\n", "interrupted\n")
    assert script_exit(lambda: None) == 0 and script_exit(lambda: 2) == 2
    # Every script with a main() ends through it when run.
    ending = 'if __name__ == "__main__":\n    from supernet.cli import script_exit\n\n    sys.exit(script_exit(main))\n'
    scripts = [p for p in sorted((REPO / "bench").glob("*.py")) if "\ndef main(" in p.read_text()]
    assert len(scripts) == 16
    assert [p.name for p in scripts if not p.read_text().endswith(ending)] == []


def _writes_refused_in(monkeypatch, folder: Path) -> None:
    """Files can no longer be made in `folder` (`io.unwritable`'s test), as in an immutable folder or
    on a read-only mount: root ignores permission bits, so the system's refusal is simulated."""
    import tempfile

    real = tempfile.mkstemp

    def refuse(*args, **kwargs):
        if Path(kwargs.get("dir", "")) == folder:
            raise PermissionError(1, "Operation not permitted")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


MADE = "{locked} is not writable (Operation not permitted); pass another folder"
WRITTEN = "(Operation not permitted): pass another folder"


@pytest.mark.parametrize(
    ("script", "argv", "said"),
    [
        ("task_results", ["--run", "{tmp}", "--out", "{locked}/sub"], "error: argument --out: folder {locked}/sub cannot be made: " + MADE),
        ("accuracy_latency", ["--config", "{preset}", "--out", "{locked}/al"], "error: argument --out: folder {locked}/al cannot be made: " + MADE),
        ("int8_choice", ["--run", "{tmp}", "--work", "{locked}/w"], "error: argument --work: folder {locked}/w cannot be made: " + MADE),
        ("per_layer", ["--config", "{preset}", "--out", "{locked}"], "error: argument --out: folder {locked} cannot be written " + WRITTEN),
        ("elastic_cost", ["--config", "{preset}", "--out", "{locked}"], "error: argument --out: folder {locked} cannot be written " + WRITTEN),
        ("profile_kit", ["--work", "{locked}/w"], "error: --work {locked}/w cannot be made: " + MADE),
        ("search_time", ["--work", "{locked}"], "error: --work {locked} cannot be written " + WRITTEN),
    ],
)  # fmt: skip
def test_an_output_folder_that_cannot_be_written_is_refused_at_once(
    capsys, as_script, monkeypatch, tmp_path: Path, script: str, argv: list[str], said: str
) -> None:
    """An immutable or read-only --out / --work (as root, chattr +i) was a PermissionError traceback
    after the work began."""
    locked = tmp_path / "locked"
    locked.mkdir()
    _writes_refused_in(monkeypatch, locked)
    fill = {"tmp": tmp_path, "locked": locked, "preset": REPO / "configs" / "quickstart.yaml"}
    as_script(script)
    line = _refused(capsys, script, [a.format(**fill) for a in argv])
    if script == "search_time":  # its own line, not argparse's
        assert line == said.format(**fill)
    else:
        assert line == f"{script}.py: {said.format(**fill)} (usage: {script}.py --help)"
    assert list(locked.iterdir()) == []


def test_a_benchmarks_file_that_cannot_be_replaced_is_refused_at_once(
    capsys, as_script, monkeypatch, tmp_path: Path
) -> None:
    """An immutable BENCHMARKS file failed in a traceback after the bench had written its results."""
    import errno

    mine = tmp_path / "mine.md"
    mine.write_text("# mine\n")
    real_open = os.open

    def refuse(path, flags, *args):
        if Path(path) == mine:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    as_script("task_results")
    assert _refused(capsys, "task_results", ["--run", str(tmp_path), "--benchmarks", str(mine)]) == (
        f"task_results.py: error: argument --benchmarks: {mine} cannot be replaced (Operation not permitted) "
        "(usage: task_results.py --help)"
    )
    as_script("task_results")
    assert _refused(capsys, "task_results", ["--run", str(tmp_path), "--benchmarks", str(tmp_path)]) == (
        f"task_results.py: error: argument --benchmarks: {tmp_path} is a folder: pass a file path "
        "(usage: task_results.py --help)"
    )
    # A file in a folder not made yet: taken where the folder can be made (the write makes it).
    from supernet.cli import markdown_file

    assert markdown_file(str(tmp_path / "new" / "B.md")) == tmp_path / "new" / "B.md"
    assert not (tmp_path / "new").exists()
    with pytest.raises(argparse.ArgumentTypeError) as info:
        markdown_file(str(mine / "new" / "B.md"))
    assert str(info.value) == f"folder {mine / 'new'} cannot be made: {mine} is a file; pass another folder"


def test_the_default_benchmarks_file_is_not_checked_with_no_benchmarks(
    capsys, as_script, monkeypatch, tmp_path: Path
) -> None:
    """dynabert_variants' --benchmarks defaulted to the repository's file, which argparse checked on
    every call: a read-only checkout refused --no-benchmarks runs too."""
    _writes_refused_in(monkeypatch, REPO)  # a read-only checkout
    missing = tmp_path / "nope.yaml"
    as_script("dynabert_variants")
    assert _refused(capsys, "dynabert_variants", ["--config", str(missing), "--no-benchmarks"]) == (
        f"error: config file '{missing}' not found"
    )


def test_the_default_results_folder_that_cannot_be_written_is_refused_first(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    """Without --out, task_results.py wrote results/<task> of a read-only checkout in a traceback."""
    from test_bench_task_results import _regression_run

    default = REPO / "results" / "rt-scores"
    _writes_refused_in(monkeypatch, default)
    before = (default / "grid.md").read_text()
    assert load_bench("task_results").main(["--run", str(_regression_run(tmp_path)), "--no-benchmarks"]) == 2
    assert capsys.readouterr().err == (
        f"error: folder {default} cannot be written (Operation not permitted): pass another folder\n"
    )
    assert (default / "grid.md").read_text() == before


def test_a_section_that_cannot_be_written_after_the_work_is_one_line(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    """A BENCHMARKS file made read-only, or a disk filled, while the bench ran: one line, file kept."""
    from supernet import baselines

    mine = tmp_path / "mine.md"
    mine.write_text("# mine\n")

    def full(path, text, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(baselines, "atomic_write_text", full)
    assert baselines.update_section(mine, "grid-t", "| a |") is False
    assert capsys.readouterr().err == (
        f"error: {mine} could not be written (No space left on device); it is left as it was (pass another "
        "--benchmarks FILE, or --no-benchmarks)\n"
    )
    assert mine.read_text() == "# mine\n"
    real_read = Path.read_text

    def unreadable(self, *args, **kwargs):
        if self == mine:
            raise PermissionError(13, "Permission denied")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", unreadable)
    assert baselines.update_section(mine, "grid-t", "| a |") is False
    assert capsys.readouterr().err == (
        f"error: {mine} could not be read (Permission denied); it is left as it was (pass another "
        "--benchmarks FILE, or --no-benchmarks)\n"
    )


@pytest.mark.parametrize(
    ("script", "names"),
    [
        ("accuracy_latency", ["results.jsonl", "results.csv", "results.md", "accuracy_latency.png"]),
        ("elastic_cost", ["elastic_cost.jsonl", "elastic_cost.md"]),
        ("per_layer", ["per_layer.jsonl", "per_layer.md", "per_layer.png"]),
    ],
)
def test_files_of_the_users_own_in_out_are_refused_before_any_work(
    capsys, as_script, tmp_path: Path, script: str, names: list[str]
) -> None:
    """accuracy_latency, elastic_cost and per_layer replaced files of their names in a user's --out
    without a word (after hours of training): they are named at once, and kept."""
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        (out / name).write_text("my own notes\n")
    as_script(script)
    preset = str(REPO / "configs" / "quickstart.yaml")
    line = _refused(capsys, script, ["--config", preset, "--out", str(out), "--no-benchmarks"])
    assert line == (
        f"error: {' and '.join(str(out / n) for n in names)} were not written by this script: pass "
        "another --out, or move them away"
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert {(out / n).read_text() for n in names} == {"my own notes\n"}


@pytest.mark.parametrize("script", ["accuracy_latency", "elastic_cost", "per_layer", "task_results"])
def test_the_files_a_bench_wrote_are_its_own_to_replace(script: str) -> None:
    """Each script's checks know the files it wrote into the repository's results folders (its reruns
    replace them), and a plot counts as its own only beside its own table."""
    from supernet.cli import results_folder_problem

    ours = load_bench(script).OURS
    written = [
        folder for folder in sorted((REPO / "results").iterdir()) if (folder / next(iter(ours))).is_file()
    ]
    assert written, f"no results folder holds {script}'s files"
    assert [results_folder_problem(folder, ours) for folder in written] == [None] * len(written)


def test_a_plot_is_the_benchs_own_beside_its_own_table_only(tmp_path: Path) -> None:
    """A PNG has no text to tell whose it is: accuracy_latency.png counts as the bench's when its
    results.md does; an undecodable file or a folder under one of the names is the user's."""
    from supernet.cli import results_folder_problem

    ours = load_bench("accuracy_latency").OURS
    (tmp_path / "accuracy_latency.png").write_bytes(b"\x89PNG\r\n")
    assert results_folder_problem(tmp_path, ours) == (
        f"{tmp_path / 'accuracy_latency.png'} was not written by this script: pass another --out, or move it away"
    )
    shutil.copy(REPO / "results" / "trec" / "results.md", tmp_path / "results.md")
    assert results_folder_problem(tmp_path, ours) is None
    (tmp_path / "results.csv").mkdir()
    (tmp_path / "results.jsonl").write_bytes(b"\xff\xfe{}\n")
    assert results_folder_problem(tmp_path, ours) == (
        f"{tmp_path / 'results.jsonl'} and {tmp_path / 'results.csv'} were not written by this script: pass "
        "another --out, or move them away"
    )
    # A link under one of the names, to nothing or to the bench's own table: not a file it wrote (an
    # atomic write would have replaced the link with a file).
    (tmp_path / "results.csv").rmdir()
    (tmp_path / "results.jsonl").unlink()
    (tmp_path / "results.csv").symlink_to(tmp_path / "nothing")
    (tmp_path / "results.jsonl").symlink_to(REPO / "results" / "trec" / "results.jsonl")
    assert results_folder_problem(tmp_path, ours) == (
        f"{tmp_path / 'results.jsonl'} and {tmp_path / 'results.csv'} were not written by this script: pass "
        "another --out, or move them away"
    )

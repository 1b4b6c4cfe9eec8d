"""Crash safety and safe loading: SIGKILL at random points, atomic files, weights_only loads."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, save_tiny_model_dir
from safetensors.torch import load_file

from supernet.io import atomic_dir, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "configs" / "quickstart.yaml"


def test_atomic_write_keeps_old_content_on_failure(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new content")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_atomic_dir_is_invisible_until_complete(tmp_path: Path) -> None:
    final = tmp_path / "export"
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            assert not final.exists()
            raise RuntimeError("crash while writing")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(final) as tmp:
        (tmp / "model.bin").write_bytes(b"done")
    assert (final / "model.bin").read_bytes() == b"done"
    with pytest.raises(FileExistsError):
        with atomic_dir(final):
            pass
    assert (final / "model.bin").read_bytes() == b"done"


def _train_cmd(model: Path, run: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        "--config",
        str(PRESET),
        "--no-progress",
        f"model={model}",
        f"output_dir={run}",
        *TINY_RUN,
        # The preset's single-stage recipe: 2 teacher + 8 elastic steps, a checkpoint after each.
        "stage_wd.max_steps=8",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def _check_visible_files_complete(run: Path) -> None:
    """Every file under its final name is whole: JSON parses, safetensors load, checkpoints are complete."""
    for path in run.rglob("*"):
        if any(part.startswith(".") for part in path.relative_to(run).parts):
            continue  # temporary names
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            load_file(str(path))
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
    for ckpt in (run / "checkpoints").glob("step-*"):
        assert {"model.safetensors", "optimizer.bin", "trainer_state.json"} <= {
            p.name for p in ckpt.iterdir()
        }


def _final_params(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "supernet" / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_at_three_random_points_then_resume_is_bit_identical(
    tmp_path: Path, minilm_dir: Path
) -> None:
    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)
    straight = tmp_path / "straight"
    subprocess.run(_train_cmd(model, straight), env=_env(), check=True, capture_output=True)

    run = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(
            _train_cmd(model, run, "resume=true"),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Let it get past start-up (imports, data) into training, then kill at a random moment.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not (run / "checkpoints").exists():
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 3.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        _check_visible_files_complete(run)
    assert kills >= 2, "training finished before the kills: make the run longer"
    subprocess.run(_train_cmd(model, run, "resume=true"), env=_env(), check=True, capture_output=True)
    _check_visible_files_complete(run)

    want, got = _final_params(straight), _final_params(run)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    # The resumed run's eval equals the straight run's.
    assert (run / "eval.jsonl").read_text() == (straight / "eval.jsonl").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("ema", ["ema_decay=0", "ema_decay=0.9"])
def test_resume_reads_only_with_weights_only(tmp_path: Path, minilm_dir: Path, monkeypatch, ema: str) -> None:
    """With ema_decay, accelerate unpickled the weight average with weights_only=False: the file is now
    read with weights_only=True first, so the full unpickler only ever meets a file that passed."""
    from supernet.config import TrainConfig, load_config
    from supernet.trainer import train

    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)
    run = tmp_path / "run"
    overrides = [f"model={model}", f"output_dir={run}", *TINY_RUN, ema]
    train(load_config(TrainConfig, PRESET, overrides), progress=False)
    # Force the next run to resume from a checkpoint, not from the finished folders.
    import shutil

    shutil.rmtree(run / "supernet")
    flags: list[object] = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        flags.append((Path(str(args[0])).name, kwargs.get("weights_only")))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    train(load_config(TrainConfig, PRESET, [*overrides, "resume=true"]), progress=False)
    assert flags, "resume loaded no optimizer/scheduler/RNG state"
    checked = set()
    for name, weights_only in flags:
        if weights_only is True:
            checked.add(name)
        else:  # only accelerate's load of a registered state, after the same file passed
            assert name in checked and name.startswith("custom_checkpoint_"), flags
    assert any(name.startswith("custom_checkpoint_") for name, _ in flags) == (ema == "ema_decay=0.9")


def test_package_never_unpickles_untrusted_files() -> None:
    """Static check: every torch.load in the package passes weights_only=True; no pickle.load."""
    offenders = []
    for path in (ROOT / "supernet").rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                offenders.append(f"{path.name}: {match.group(0)}")
        if re.search(r"\bpickle\.loads?\(", text):
            offenders.append(f"{path.name}: pickle.load")
    assert offenders == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "at_step", "checkpoint", "sig"),
    [("stage_wd", 3, "step-5", signal.SIGINT), ("teacher", 2, "step-2", signal.SIGTERM)],
    ids=["mid-stage", "last-step-of-a-stage"],
)
def test_first_interrupt_saves_a_checkpoint_of_the_current_step(
    tmp_path: Path,
    minilm_dir: Path,
    monkeypatch,
    capsys,
    stage: str,
    at_step: int,
    checkpoint: str,
    sig: signal.Signals,
) -> None:
    """Ctrl-C (or SIGTERM, same handler) mid-stage: the step finishes, a checkpoint of it is saved,
    and resume=true ends bit-identical to a run never interrupted (with checkpoint_every=0 nothing
    else would be kept). The quickstart preset batches by length: resuming mid-epoch used to draw
    the sampler loader's seed from the global RNG a second time and end elsewhere. At a stage's last
    step the run went on (teacher saved and scored, importance, a step of the next stage) for 40 s."""
    from supernet import progress
    from supernet.cli import train_main

    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)

    def argv(run: Path, *extra: str) -> list[str]:
        return ["--config", str(PRESET), f"model={model}", f"output_dir={run}", *TINY_RUN,
                "stage_wd.max_steps=8", "checkpoint_every=0", *extra]  # fmt: skip

    assert train_main([*argv(tmp_path / "straight"), "--no-progress"]) == 0
    handlers: list[object] = []
    # Under `cmd &` SIGINT starts ignored, and a training job keeps ignoring it: make it the default.
    started_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))

    class SignalAtStep3(progress.tqdm):
        def update(self, n: int = 1) -> bool | None:
            out = super().update(n)
            if self.desc == stage and self.n == at_step:
                handlers.append(signal.getsignal(signal.SIGTERM))
                os.kill(os.getpid(), sig)
            return out

    monkeypatch.setattr(progress, "tqdm", SignalAtStep3)  # the class every progress_bar is
    run = tmp_path / "stopped"
    capsys.readouterr()
    assert train_main(argv(run)) == 128 + sig  # 130 for Ctrl-C, 143 for a scheduler's SIGTERM
    err = capsys.readouterr().err
    assert (
        f"{sig.name}: stopping after this training step, with a checkpoint (send it again to stop at once)"
        in err
    )
    assert (
        err.strip().splitlines()[-1]
        == "interrupted; rerun with resume=true to continue from the last checkpoint or stage the run "
        "finished (from the first step if none)"
    )
    # SIGTERM (a scheduler's stop) had the same handler while training ran, and both are restored after.
    assert len(handlers) == 1 and callable(handlers[0])
    assert handlers[0] not in (signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    # 2 teacher steps, then 3 of stage_wd: the only checkpoint is the one the signal asked for.
    assert [p.name for p in (run / "checkpoints").iterdir()] == [checkpoint]
    state = json.loads((run / "checkpoints" / checkpoint / "trainer_state.json").read_text())
    assert (state["stage"], state["stage_step"]) == (stage, at_step)
    if stage == "teacher":  # nothing after the stopped step: no teacher folder, no importance
        assert not (run / "teacher").exists() and not (run / "importance.safetensors").exists()

    signal.signal(signal.SIGINT, started_with)
    monkeypatch.undo()
    assert train_main([*argv(run, "resume=true"), "--no-progress"]) == 0
    want, got = _final_params(tmp_path / "straight"), _final_params(run)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert (run / "eval.jsonl").read_text() == (tmp_path / "straight" / "eval.jsonl").read_text()


# --------------------------------------------------------------------------- full disks, read-only folders


def test_writing_files_as_one_set_leaves_all_or_none(tmp_path) -> None:
    """search.py replaced results.jsonl and pareto.csv, then the disk filled at pareto.png: chosen.json
    named the old choice and results.jsonl the new one."""
    import errno

    from supernet.io import atomic_write_many

    files = {tmp_path / name: f"old {name}" for name in ("results.jsonl", "pareto.png", "chosen.json")}
    for path, text in files.items():
        path.write_text(text)

    def full(fh) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writers = {path: (lambda fh, p=path: fh.write(f"new {p.name}".encode())) for path in files}
    writers[tmp_path / "pareto.png"] = full
    with pytest.raises(OSError) as info:
        atomic_write_many(writers)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(tmp_path / "pareto.png"))  # named
    assert {p: p.read_text() for p in files} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)  # no temporaries
    writers[tmp_path / "pareto.png"] = lambda fh: fh.write(b"new pareto.png")
    atomic_write_many(writers)
    assert {p.name: p.read_text() for p in files} == {p.name: f"new {p.name}" for p in files}


@pytest.mark.parametrize(
    "raised, said",
    [
        (OSError(28, "No space left on device", "/runs/r/search/pareto.png"), "'/runs/r/search/pareto.png'"),
        (OSError(30, "Read-only file system"), ""),
    ],
)
def test_a_full_disk_or_read_only_folder_is_one_line(raised: OSError, said: str, capsys) -> None:
    import argparse

    from supernet.cli import run_cli

    def main(args):
        raise raised

    assert run_cli(main, argparse.ArgumentParser(), []) == 2
    where = f": {said}" if said else ""
    assert capsys.readouterr().err == (
        f"error: {raised.strerror}{where}; free space (or write elsewhere) and run it again\n"
    )


def test_sigterm_ends_a_command_as_ctrl_c_does(tmp_path, capsys, monkeypatch) -> None:
    """A scheduler's SIGTERM killed export.py on the spot: no message, exit 143, and up to 151 MB of
    its hidden half-written folder left behind (Ctrl-C removed it and said so)."""
    import argparse
    import os
    import signal

    from supernet.cli import run_cli

    half_written = tmp_path / ".exp.tmp-1"

    def main(args):
        half_written.mkdir()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        finally:
            half_written.rmdir()  # a command's own cleanup, as on Ctrl-C
        return 0

    started = time.perf_counter()
    assert (
        run_cli(main, argparse.ArgumentParser(), [], interrupted="interrupted: nothing was exported") == 143
    )
    assert time.perf_counter() - started < 4 and not half_written.exists()
    assert capsys.readouterr().err == "interrupted: nothing was exported\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back after the command
    # Ctrl-C still exits 130; a handler the caller set is left alone (SIGTERM then is theirs).
    assert (
        run_cli(lambda args: (_ for _ in ()).throw(KeyboardInterrupt), argparse.ArgumentParser(), []) == 130
    )
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        assert (
            run_cli(lambda args: os.kill(os.getpid(), signal.SIGTERM) or 0, argparse.ArgumentParser(), [])
            == 0
        )
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
    # A process of a multi-process launch keeps the default (raising in one would hang the others).
    monkeypatch.setenv("WORLD_SIZE", "2")
    during: list[object] = []
    assert (
        run_cli(
            lambda args: during.append(signal.getsignal(signal.SIGTERM)) or 0, argparse.ArgumentParser(), []
        )
        == 0
    )
    assert during == [signal.SIG_DFL]


def test_library_words_for_a_full_disk_are_recognised(tmp_path, monkeypatch) -> None:
    """safetensors says 'No space left on device (os error 28)', torch.save 'unexpected pos'."""
    import errno
    import shutil
    from collections import namedtuple

    from supernet.io import disk_error

    target = tmp_path / "supernet"
    safetensors_words = RuntimeError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    )
    assert disk_error(safetensors_words, target).args == (errno.ENOSPC, "No space left on device")
    assert disk_error(safetensors_words, target).filename == str(target)
    assert disk_error(RuntimeError("unexpected pos 46906560 vs 46906448"), target) is None  # disk not full
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10, 10, 0))
    assert disk_error(RuntimeError("unexpected pos 46906560 vs 46906448"), target).filename == str(target)
    # Only a failed write is put down to a full disk: root may still write where free space reads 0.
    assert disk_error(ValueError("a bug"), target) is None


def test_disk_errors_named_turns_only_a_full_disk_into_one_naming_the_path(tmp_path) -> None:
    """What the teacher/supernet folders and the profile kit are written under."""
    import errno

    from supernet.io import disk_errors_named

    with pytest.raises(OSError) as info, disk_errors_named(tmp_path / "kit"):
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(tmp_path / "kit"))
    with pytest.raises(ValueError, match="^a bug$"), disk_errors_named(tmp_path / "kit"):
        raise ValueError("a bug")


def test_read_jsonl_skips_blank_lines_and_names_a_damaged_one(tmp_path: Path) -> None:
    from supernet.io import read_jsonl

    path = tmp_path / "eval.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"b": 2}\n')
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]
    path.write_text('{"a": 1}\n{"b": 2, "c')  # a last record cut short: not written, if appended
    assert read_jsonl(path, appended=True) == [{"a": 1}]
    with pytest.raises(ValueError, match=" line 2 is not a JSON object$"):
        read_jsonl(path)  # a file written whole: damage
    for damaged in ('{"a": 1}\n{"b": \n', '{"a": 1}\n[1, 2]\n', '{"a": 1}\n{"b": \n{"c": 3}'):
        path.write_text(damaged)
        with pytest.raises(ValueError) as info:
            read_jsonl(path, appended=True)
        assert str(info.value) == f"{path} line 2 is not a JSON object"

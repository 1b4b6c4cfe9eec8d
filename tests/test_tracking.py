"""Tests of supernet.tracking: the JSONL metrics file and what is read back from it."""

from __future__ import annotations

import json
import os
import re

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
    # A killed job's half line last (the benches read killed runs): a JSONDecodeError traceback before.
    text = "".join(json.dumps(r) + "\n" for r in records) + "\n" + '{"step": 44, "stage_wd/sec_'
    (tmp_path / "train_metrics.jsonl").write_text(text)
    # teacher: steps 0..20 at its last rate 2.0; stage_w: 20..30 at 3.0; stage_wd: 30..40 at 8.0.
    assert stage_seconds(tmp_path) == pytest.approx({"teacher": 40.0, "stage_w": 30.0, "stage_wd": 80.0})


def test_stage_seconds_of_a_run_without_metrics_is_empty(tmp_path) -> None:
    assert stage_seconds(tmp_path) == {}


def test_wandb_logs_offline_into_the_run_folder_without_its_summary(tmp_path, capfd, wandb_env) -> None:
    """report_to=wandb: offline by default, its files in the run folder, and no 30-line summary of
    sparklines after training's results table (a user's WANDB_QUIET/WANDB_SILENT would be kept)."""
    from supernet.tracking import make_logger

    logger = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    for step in (1, 2, 3):
        logger.log({"stage_w/w1.00-d1.00/loss": 1.0 / step}, step)
    logger.finish()
    assert os.environ["WANDB_MODE"] == "offline"
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    assert list(offline.glob("*.wandb"))
    rows = [json.loads(line) for line in (tmp_path / "train_metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": s, "stage_w/w1.00-d1.00/loss": 1.0 / s} for s in (1, 2, 3)]
    captured = capfd.readouterr()
    said = [line for line in (captured.out + captured.err).splitlines() if "wandb" in line]
    assert not [line for line in said if "Run history" in line or "Run summary" in line], said
    assert any(str(offline) in line for line in said), said


def test_a_resumed_run_continues_its_wandb_run_without_sending_a_step_twice(
    tmp_path, monkeypatch, wandb_env
) -> None:
    """Every resume started a new wandb run under the same name, with the steps between the
    checkpoint and the interrupt sent twice; a resume of a finished run added an empty one."""
    from supernet.tracking import _WandbLogger, make_logger

    sent: list[int] = []
    real_log = _WandbLogger.log

    def log(self, metrics, step):
        before = self._last
        real_log(self, metrics, step)
        if self._last != before:
            sent.append(step)

    monkeypatch.setattr(_WandbLogger, "log", log)
    first = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    # Recorded when wandb starts: an attempt stopped before its first step is resumed under its id.
    started = json.loads((tmp_path / "wandb" / "supernet-run.json").read_text())
    assert started["last_step"] == 0
    for step in (1, 2, 3, 4):
        first.log({"loss": 1.0 / step}, step)
    first.finish()  # what wandb has written is recorded when it finishes
    record = json.loads((tmp_path / "wandb" / "supernet-run.json").read_text())
    assert record == {"id": started["id"], "last_step": 4, "summarized": False}
    resumed = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    for step in (3, 4, 5, 6):  # from the checkpoint at step 2
        resumed.log({"loss": 1.0 / step}, step)
    resumed.finish()
    assert sent == [1, 2, 3, 4, 5, 6]
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    # One wandb run in two offline parts (`wandb sync` joins them): offline-run-<time>-<id>[-1].
    assert len(runs) == 2 and all(
        re.fullmatch(rf"offline-run-\d+_\d+-{record['id']}(-\d+)?", r.name) for r in runs
    )
    # A run that trains again from its first step (no weights to resume) starts a new wandb run.
    from supernet.tracking import forget_wandb_run

    forget_wandb_run(tmp_path)
    again = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    again.log({"loss": 1.0}, 1)
    again.finish()
    assert (
        sent[-1] == 1
        and json.loads((tmp_path / "wandb" / "supernet-run.json").read_text())["id"] != record["id"]
    )
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    finished = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1}, idle=True)
    finished.finish()  # a finished run resumed trains nothing: no wandb run started
    assert sorted((tmp_path / "wandb").glob("offline-run-*")) == runs


def test_a_resume_after_a_killed_attempt_sends_the_rows_wandb_may_not_have_written(
    tmp_path, monkeypatch, wandb_env
) -> None:
    """The last step sent was recorded as each row was handed to wandb, which writes in the
    background: after `kill -9` its file held steps 1-4 of 6 and the resume, skipping "sent" steps 5
    and 6, left a gap. Now a killed attempt leaves the record at its start, and the resume sends the
    rows train_metrics.jsonl kept (up to the checkpoint) before its own."""
    from supernet.tracking import _WandbLogger, drop_steps_after, make_logger

    sent: list[tuple[int, float]] = []

    class Run:  # what wandb is handed, in order
        def __init__(self, real):
            self.real = real

        def log(self, metrics, step):
            sent.append((step, metrics["loss"]))
            self.real.log(metrics, step=step)

        def finish(self):
            self.real.finish()

    real_start = _WandbLogger._start

    def start(self):
        real_start(self)
        self._run = Run(self._run)

    monkeypatch.setattr(_WandbLogger, "_start", start)
    first = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    for step in (1, 2, 3, 4, 5, 6):
        first.log({"loss": 1.0 / step}, step)
    first.inner._run.real.finish()  # wandb's own end, without ours: the attempt was killed here
    record = json.loads((tmp_path / "wandb" / "supernet-run.json").read_text())
    assert record["last_step"] == 0
    drop_steps_after(tmp_path / "train_metrics.jsonl", 4)  # the resume starts from step 4's checkpoint
    sent.clear()
    resumed = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    for step in (5, 6, 7):
        resumed.log({"loss": 1.0 / step}, step)
    resumed.finish()
    assert sent == [(step, 1.0 / step) for step in (1, 2, 3, 4, 5, 6, 7)]
    assert json.loads((tmp_path / "wandb" / "supernet-run.json").read_text()) == {
        "id": record["id"],
        "last_step": 7,
        "summarized": False,
    }
    # A resume after that finished attempt sends no row twice.
    sent.clear()
    again = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    for step in (6, 7, 8):
        again.log({"loss": 1.0 / step}, step)
    again.finish()
    assert sent == [(8, 1.0 / 8)]


def test_the_grids_scores_reach_wandbs_run_summary(tmp_path, wandb_env) -> None:
    """Only the losses reached wandb: a run's dev and test scores were in eval.jsonl alone."""
    from supernet.tracking import eval_summary, make_logger

    rows = [
        {
            "subnet": "w1.00-d1.00",
            "spec": {"width_mult": 1.0},
            "accuracy": 0.75,
            "test_accuracy": 0.5,
            "params": 7,
        },
        {"subnet": "w0.50-d1.00", "accuracy": 0.625, "weights_sha256": "ab", "exact": True},
    ]
    summary = eval_summary(rows, {"accuracy": 0.875})
    assert summary == {
        "teacher/dev_accuracy": 0.875,
        "eval/w1.00-d1.00/accuracy": 0.75,
        "eval/w1.00-d1.00/test_accuracy": 0.5,
        "eval/w1.00-d1.00/params": 7,
        "eval/w0.50-d1.00/accuracy": 0.625,
    }
    logger = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1})
    logger.log({"loss": 1.0}, 1)
    logger.summary(summary)
    run = logger.inner._run
    assert {k: run.summary[k] for k in summary} == summary
    logger.finish()
    # A finished run resumed trains nothing: its scores, taken again, start no wandb run part.
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    idle = make_logger("wandb", run_dir=tmp_path, project="supernet-test", config={"seed": 1}, idle=True)
    idle.summary(summary)
    idle.finish()
    assert sorted((tmp_path / "wandb").glob("offline-run-*")) == runs


class _FakeWandbRun:
    """What `_WandbLogger` uses of a wandb run; `starting_step` as wandb sets it on a resume (online:
    one past the last step its server holds; offline: 0)."""

    def __init__(self, starting_step: int, sent: list) -> None:
        self.starting_step, self.sent, self.summary = starting_step, sent, {}

    def log(self, metrics, step):
        self.sent.append(step)

    def finish(self):
        pass


@pytest.mark.parametrize("starting_step, expected", [(61, [70, 80]), (0, [10, 20, 30, 40, 50, 60, 70, 80])])
def test_a_resume_sends_nothing_an_online_wandb_run_holds(
    tmp_path, monkeypatch, starting_step, expected
) -> None:
    """After a killed attempt the resume sent every row from the last recorded step: online wandb,
    which holds up to step 60 here, refused each one below 61 with a warning line. Rows up to the
    step the server holds are neither replayed nor sent again; offline, all are (`wandb sync` keeps
    the first of each step)."""
    import wandb

    from supernet.tracking import WANDB_STATE, drop_steps_after, make_logger

    sent: list[int] = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: _FakeWandbRun(starting_step, sent))
    (tmp_path / "wandb").mkdir()
    (tmp_path / WANDB_STATE).write_text(json.dumps({"id": "abc", "last_step": 0}))  # killed at step 60
    metrics = tmp_path / "train_metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (10, 20, 30, 40, 50, 60)))
    drop_steps_after(metrics, 40)  # its checkpoint
    resumed = make_logger("wandb", run_dir=tmp_path, project="p", config={})
    for step in (50, 60, 70, 80):
        resumed.log({"loss": 1.0}, step)
    resumed.finish()
    assert sent == expected


@pytest.mark.parametrize("summarized", [False, True])
def test_a_finished_run_resumed_sends_its_scores_only_if_wandb_lacks_them(
    tmp_path, monkeypatch, summarized
) -> None:
    """An attempt killed after saving the supernet and before scoring it resumes as a finished run
    (idle): its scores never reached wandb. They are sent, once: a record that says they were sent
    starts no wandb run part."""
    import wandb

    from supernet.tracking import WANDB_STATE, make_logger

    started: list[_FakeWandbRun] = []

    def init(**kwargs):
        started.append(_FakeWandbRun(0, []))
        return started[-1]

    monkeypatch.setattr(wandb, "init", init)
    (tmp_path / "wandb").mkdir()
    (tmp_path / WANDB_STATE).write_text(json.dumps({"id": "abc", "last_step": 9, "summarized": summarized}))
    idle = make_logger("wandb", run_dir=tmp_path, project="p", config={}, idle=True)
    idle.summary({"eval/w1.00-d1.00/accuracy": 0.5})
    idle.finish()
    assert [run.summary for run in started] == ([] if summarized else [{"eval/w1.00-d1.00/accuracy": 0.5}])
    assert json.loads((tmp_path / WANDB_STATE).read_text()) == {
        "id": "abc",
        "last_step": 9,
        "summarized": True,
    }

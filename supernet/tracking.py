"""Metric logging that never needs an `if`: wandb when asked for, a no-op otherwise.

Every run also appends its metrics to `train_metrics.jsonl` in the run
directory, so the numbers survive without any service.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

from supernet.io import RunDir, append_jsonl, atomic_write_text, read_jsonl

__all__ = ["JsonlLogger", "Logger", "NullLogger", "drop_steps_after", "eval_summary", "make_logger"]


class Logger(Protocol):
    def log(self, metrics: dict[str, Any], step: int) -> None: ...

    def summary(self, metrics: dict[str, Any]) -> None:
        """Final figures of the run (its subnets' dev and test scores), kept beside the logged rows."""
        ...

    def finish(self) -> None: ...


class NullLogger:
    """Stands in when logging is off."""

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def summary(self, metrics: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass


class JsonlLogger:
    """Appends `{"step": ..., **metrics}` lines to a file, then forwards to another logger."""

    def __init__(self, path: Path, inner: Logger | None = None) -> None:
        self.path = path
        self.inner: Logger = inner if inner is not None else NullLogger()

    def log(self, metrics: dict[str, Any], step: int) -> None:
        append_jsonl(self.path, {"step": step, **metrics})
        self.inner.log(metrics, step)

    def summary(self, metrics: dict[str, Any]) -> None:
        self.inner.summary(metrics)  # the file's figures are eval.jsonl's and teacher_eval.json's

    def finish(self) -> None:
        self.inner.finish()


class _WandbLogger:
    """wandb, as one wandb run per training run, however often it is resumed.

    The wandb run's id and the last step it holds are kept in `wandb/supernet-run.json` in the run
    folder: a resume continues that wandb run (`resume="allow"`; offline, `wandb sync` joins its
    parts) and does not send again the steps the interrupted attempt had sent (a resume retrains
    them bit for bit, and wandb takes a run's steps in increasing order only). That step is
    recorded when wandb has finished, not as each row is handed to it: wandb writes in the
    background, so a killed attempt (`kill -9`, a lost machine) can leave its last rows unwritten.
    A resume after one sends the rows of `metrics` from the last recorded step up to its own first
    step again, so its history has no gap: online, only those after the last step wandb's server
    holds (wandb refuses each earlier one with a warning); offline, all of them, and `wandb sync`
    keeps the first of each step. With `idle` (a resume of a finished run, which trains nothing)
    wandb starts only if a step is logged, or if the run's scores (`summary`) have not reached it
    (an attempt killed between saving the supernet and scoring it), so no empty wandb run is added.
    """

    def __init__(
        self,
        project: str,
        run_dir: Path,
        config: dict[str, Any],
        name: str,
        *,
        metrics: Path | None = None,
        idle: bool = False,
    ) -> None:
        import wandb  # noqa: F401 - missing, said here (make_logger's caller names the fix), not at step 1

        # Offline by default: no network is needed; `wandb sync` uploads later.
        os.environ.setdefault("WANDB_MODE", "offline")
        self._init = {"project": project, "dir": str(run_dir), "config": config, "name": name}
        self._state = run_dir / WANDB_STATE
        try:
            state = json.loads(self._state.read_text(encoding="utf-8"))
            self._id, self._last = str(state["id"]), int(state["last_step"])
            self._summarized = state.get("summarized") is True  # records before 2026-12-01 lack it
        except (OSError, ValueError, TypeError, KeyError, AttributeError):  # a new run, or a bad record
            self._id, self._last = secrets.token_hex(4), 0  # wandb takes any [a-z0-9] id
            self._summarized = False
        self._metrics = metrics
        self._caught_up = False  # rows a killed attempt may not have written sent again
        self._run: Any = None
        if not idle:  # started now, so that a key or mode wandb refuses is said before training
            self._start()

    def _start(self) -> None:
        import wandb

        # Its run summary (a sparkline per metric, 30+ lines after the results table) is left out
        # unless the user set WANDB_QUIET/WANDB_SILENT themselves; where the run is saved is still said.
        quiet = (
            {}
            if {"WANDB_QUIET", "WANDB_SILENT"} & set(os.environ)
            else {"settings": wandb.Settings(quiet=True)}
        )
        self._run = wandb.init(id=self._id, resume="allow", **self._init, **quiet)
        # Online, a resumed wandb run starts after the last step its server holds (offline, at 0).
        held = getattr(self._run, "starting_step", 0)
        self._last = max(self._last, held - 1 if isinstance(held, int) else 0)
        self._record()  # now: a resume of an attempt stopped before its first step keeps the id

    def _record(self) -> None:
        state = {"id": self._id, "last_step": self._last, "summarized": self._summarized}
        atomic_write_text(self._state, json.dumps(state))

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self._run is None:
            self._start()
        if step <= self._last:
            return  # sent by the attempt this one resumes
        if not self._caught_up:
            self._caught_up = True
            for row in self._unrecorded_rows(step):
                self._run.log({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))
        self._run.log(metrics, step=step)
        self._last = step

    def _unrecorded_rows(self, step: int) -> list[dict[str, Any]]:
        """The rows of `metrics` after the last step recorded and before `step`: none after an
        attempt that finished wandb (its last step is recorded), those of a killed one otherwise."""
        try:
            rows = read_jsonl(self._metrics, appended=True) if self._metrics is not None else []
        except (OSError, ValueError):  # (cleaned before each stage: drop_steps_after) not a stop
            return []
        return [row for row in rows if isinstance(row.get("step"), int) and self._last < row["step"] < step]

    def summary(self, metrics: dict[str, Any]) -> None:
        if self._run is None:
            if self._summarized:
                return  # a finished run resumed scores again what its wandb run holds: no part added
            self._start()
        self._run.summary.update(metrics)
        self._summarized = True

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._record()  # what wandb has written: everything logged


WANDB_STATE = Path("wandb") / "supernet-run.json"
"""In a run folder: the id of its wandb run and the last step sent to it (`_WandbLogger`)."""


def forget_wandb_run(run_dir: Path) -> None:
    """A run that trains again from its first step (nothing to resume from) starts a new wandb run:
    its steps are not the earlier attempt's, which the record would have them skip."""
    (run_dir / WANDB_STATE).unlink(missing_ok=True)


def make_logger(
    report_to: str,
    *,
    run_dir: Path,
    project: str,
    config: dict[str, Any],
    enabled: bool = True,
    idle: bool = False,
) -> Logger:
    """The logger for a run: JSONL always (on the main process), plus wandb if `report_to == "wandb"`.

    Args:
        report_to: "wandb" or "none".
        run_dir: the run directory (metrics file and wandb folder live there).
        project: wandb project name.
        config: the resolved config, recorded by wandb.
        enabled: False on non-main processes: nothing is written.
        idle: nothing is expected to be logged (a finished run): wandb starts at a first step only.
    """
    if not enabled:
        return NullLogger()
    inner: Logger = NullLogger()
    if report_to == "wandb":
        inner = _WandbLogger(
            project, run_dir, config, name=run_dir.name, metrics=RunDir(run_dir).metrics, idle=idle
        )
    return JsonlLogger(RunDir(run_dir).metrics, inner)


def eval_summary(rows: list[dict[str, Any]], teacher: dict[str, float] | None = None) -> dict[str, float]:
    """eval.jsonl's figures as a tracker's run summary: `eval/<subnet>/<key>` for each number of each
    row (scores, params, FLOPs), `teacher/dev_<metric>` for the teacher's dev scores."""
    out = {f"teacher/dev_{k}": float(v) for k, v in (teacher or {}).items()}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"eval/{row['subnet']}/{key}"] = value
    return out


def drop_steps_after(path: Path, step: int) -> None:
    """Remove the rows of `path` (a train_metrics.jsonl) logged after global step `step`.

    A resumed run trains the steps after its checkpoint again and logs them anew; the rows of the
    first attempt would be doubles (two losses for one step). Rows are kept in their order; a file
    with none to drop is left untouched.
    """
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [
        line for line, at in zip(lines, map(_step_of, lines), strict=True) if at is not None and at <= step
    ]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(kept))


def _step_of(line: str) -> int | None:
    """The step of one JSONL row; None for a blank line or one a killed job left half-written."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def stage_seconds(run_dir: str | os.PathLike[str]) -> dict[str, float]:
    """Training wall time per stage of a run, from its train_metrics.jsonl.

    Each stage's time is its last logged ``<stage>/sec_per_step`` times its steps (from the
    previous stage's last logged step to its own). A run without metrics gives ``{}``.
    """
    path = RunDir(Path(run_dir)).metrics
    if not path.is_file():
        return {}
    last: dict[str, tuple[int, float]] = {}
    for record in read_jsonl(path, appended=True):  # a killed job's half line is left out
        for key, value in record.items():
            if key.endswith("/sec_per_step"):
                last[key.split("/")[0]] = (int(record["step"]), float(value))
    out, previous_end = {}, 0
    for stage, (end, sec) in sorted(last.items(), key=lambda kv: kv[1][0]):
        out[stage] = sec * (end - previous_end)
        previous_end = end
    return out

"""Metric logging that never needs an `if`: wandb when asked for, a no-op otherwise.

Every run also appends its metrics to `train_metrics.jsonl` in the run
directory, so the numbers survive without any service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from supernet.io import append_jsonl

__all__ = ["JsonlLogger", "Logger", "NullLogger", "make_logger"]


class Logger(Protocol):
    def log(self, metrics: dict[str, Any], step: int) -> None: ...

    def finish(self) -> None: ...


class NullLogger:
    """Stands in when logging is off."""

    def log(self, metrics: dict[str, Any], step: int) -> None:
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

    def finish(self) -> None:
        self.inner.finish()


class _WandbLogger:
    def __init__(self, project: str, run_dir: Path, config: dict[str, Any], name: str) -> None:
        import wandb

        # Offline by default: no network is needed; `wandb sync` uploads later.
        os.environ.setdefault("WANDB_MODE", "offline")
        self._run = wandb.init(project=project, dir=str(run_dir), config=config, name=name)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._run.log(metrics, step=step)

    def finish(self) -> None:
        self._run.finish()


def make_logger(
    report_to: str, *, run_dir: Path, project: str, config: dict[str, Any], enabled: bool = True
) -> Logger:
    """The logger for a run: JSONL always (on the main process), plus wandb if `report_to == "wandb"`.

    Args:
        report_to: "wandb" or "none".
        run_dir: the run directory (metrics file and wandb folder live there).
        project: wandb project name.
        config: the resolved config, recorded by wandb.
        enabled: False on non-main processes: nothing is written.
    """
    if not enabled:
        return NullLogger()
    inner: Logger = NullLogger()
    if report_to == "wandb":
        inner = _WandbLogger(project, run_dir, config, name=run_dir.name)
    return JsonlLogger(run_dir / "train_metrics.jsonl", inner)

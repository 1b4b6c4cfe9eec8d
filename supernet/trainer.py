"""The training job: teacher fine-tune -> importance + reorder -> stage W -> stage W x D.

One `train(cfg)` call turns a model folder and a task into a run directory
(layout in `supernet.io.RunDir` and README). Each stage ends in a model
folder written atomically (`teacher/`, `stage_w/`, `supernet/`), and inside a
stage `checkpoints/step-N/` holds model, optimizer, scheduler, RNG states
(accelerate's `save_state`; with `ema_decay`, the stage's weight average too)
and the data position, so a killed run resumes exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import functools
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from accelerate.utils import load as accelerate_load
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from supernet.assets import resolve_model_path
from supernet.cli import Terminated
from supernet.config import (
    ConfigError,
    StageConfig,
    TeacherConfig,
    TrainConfig,
    config_to_dict,
    config_yaml,
    diff_configs,
    load_config,
    mult_name,
    save_config,
)
from supernet.convert import Arch, arch_from_config, is_supernet, supernet_state, to_supernet
from supernet.cost import count_flops, count_params
from supernet.data import (
    TaskData,
    check_max_length_fits,
    check_tokenizer_fits,
    load_task,
    make_dataloader,
    reorder_labels,
    split_digest,
    texts_in_several_splits,
    tokenize_task,
)
from supernet.distill import LossParts, LossWeights, distill_loss, teacher_hidden_targets
from supernet.families import family_of_config
from supernet.importance import ImportanceScores, compute_importance
from supernet.io import (
    RunDir,
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    disk_error,
    disk_errors_named,
    is_temporary,
    save_tokenizer,
    share_files,
    unwritable,
    weight_files,
    weights_digest,
)
from supernet.profile_kit_script import some_names
from supernet.progress import progress_bar
from supernet.recipes import RECIPES, Group, Recipe, make_recipe, two_stage_recipes
from supernet.reorder import reorder_by_importance
from supernet.subnet import (
    SearchSpace,
    SubnetConfig,
    active_layers,
    resolve_subnet,
    set_active_subnet,
    set_max_net,
)
from supernet.tasks import (
    TaskKind,
    check_labelled,
    get_task_kind,
    head_conflict,
    model_inputs,
    output_logits,
    task_kind_of_config,
    task_kind_of_model,
)
from supernet.tracking import Logger, drop_steps_after, eval_summary, forget_wandb_run, make_logger

__all__ = [
    "RunError",
    "TrainResult",
    "TrainingError",
    "evaluate_subnet",
    "fine_tune_teacher",
    "format_eval_table",
    "load_supernet",
    "task_from_config",
    "tokenized_split",
    "train",
]

STATE_FILE = "trainer_state.json"
LOSS_WINDOW = "loss_window"
"""trainer_state.json's key for the losses of the steps since the last logged row."""
LOAD_DTYPE = torch.float32
"""The type every model folder is loaded in. transformers 5 loads a checkpoint in the type its config
names, and many are saved in bfloat16 or float16: trained in those weights, AdamW's steps of ~1e-5
vanish in their 8- or 11-bit mantissa. Mixed precision (`mixed_precision: bf16`) is the way to run
in half precision; the weights stay float32."""


class RunError(RuntimeError):
    """A run directory problem the user must resolve (one line, says what to do)."""


class ProcessRunError(RunError):
    """A RunError that one process of a multi-process run may meet alone (its own files): every
    process reports it, where errors that all processes meet alike are reported once."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    teacher_accuracy: float
    """The teacher's dev main metric (accuracy; Pearson for regression, entity F1 for tags)."""
    eval_rows: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def _seed_of(*parts: object) -> int:
    # String seeds go through SHA-512 in `random`, so this is stable across processes and runs.
    return random.Random("-".join(map(str, parts))).getrandbits(31)


HARD_LABELS = LossWeights(logit=0.0, hidden=0.0, hard=1.0)


@dataclass(frozen=True)
class _Detached:
    """Outputs of an in-place teacher (the lead subnet), detached from its graph."""

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]


def _log_name(cfg: SubnetConfig, seen: dict[str, LossParts]) -> str:
    """The subnet's name in loss logs: its own name, or a numbered slot for per-layer widths.

    Per-layer widths are drawn afresh every step; logging each under its own hash would make one
    metric per step that never repeats.
    """
    if cfg.heads is None:
        return cfg.name
    return f"random-{sum(k.startswith('random-') for k in seen) + 1}"


def _load_classifier(path: Path, task: TaskData) -> nn.Module:
    """`path`'s encoder with a fresh head of the task's kind (what the teacher fine-tune starts from)."""
    kind = get_task_kind(task.kind, task.label_names)
    # float32 whatever the checkpoint was saved in (LOAD_DTYPE).
    return kind.auto_class.from_pretrained(
        path, dtype=LOAD_DTYPE, **kind.head_kwargs(task.num_labels, task.label_names)
    )


def _auto_config(path: Path, key: str) -> Any:
    """The folder's transformers config, or one line naming a model_type this transformers lacks."""
    import transformers

    try:
        return transformers.AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
        raise RunError(
            f"{key} folder '{path}': transformers {transformers.__version__} cannot read its config "
            f"(model_type '{model_type}'): {str(err).splitlines()[0]}"
        ) from err


def _auto_tokenizer(path: Path, *, words: bool = False) -> PreTrainedTokenizerBase:
    """The tokenizer saved with the model; refused when the folder has none.

    Without tokenizer files transformers builds, offline and without a word, a tokenizer that knows
    only its special tokens: every word becomes [UNK] and the run trains at chance.

    With `words` (token classification, whose input comes split into words), a byte-level BPE
    tokenizer (RoBERTa's, GPT-2's) is loaded with ``add_prefix_space=True``: it marks a word's start
    by the space before it, which words given one by one lack, so training saw other tokens ("in")
    than raw text gives ("Ġin") and the exported tagger mislabelled real sentences.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if words and getattr(tokenizer, "add_prefix_space", None) is False:
            tokenizer = AutoTokenizer.from_pretrained(path, add_prefix_space=True)
    except (OSError, ValueError) as err:
        raise RunError(
            f"model folder '{path}': its tokenizer cannot be loaded ({str(err).splitlines()[0]})"
        ) from err
    special = len(set(tokenizer.all_special_tokens))
    if len(tokenizer) <= special:
        raise RunError(
            f"model folder '{path}' has no tokenizer files (the tokenizer built from it knows only its "
            f"{special} special tokens): copy the tokenizer saved with the model (tokenizer.json or vocab.txt) into it"
        )
    return tokenizer


def _head_labels(model_config: Any) -> tuple[str, ...]:
    return tuple(str(model_config.id2label[i]) for i in range(model_config.num_labels))


def head_label_order(head: Sequence[str], task: Sequence[str]) -> tuple[str, ...] | None:
    """The task's label names in the order of a task-tuned head's `head` names, or None to keep the task's.

    None when they already agree (case aside) or either side names nothing (``LABEL_0``, class ids
    in the data: matched by position, as transformers does).

    Raises:
        ValueError: both name their labels, and the names differ.
    """
    if list(head) == list(task) or _unnamed(head) or _unnamed(task):
        return None
    folded = {name.casefold(): name for name in task}
    if len(folded) < len(task):  # names that differ only in case: compare them as they are
        folded = {name: name for name in task}
        key = str
    else:
        key = str.casefold
    if sorted(folded) != sorted(key(h) for h in head):
        raise ValueError(f"head labels {list(head)} are not the task's {list(task)}")
    order = tuple(folded[key(h)] for h in head)
    return None if order == tuple(task) else order


def task_in_head_order(task: TaskData, head_config: Any) -> TaskData:
    """`task` with its classes in the order of a task-tuned head's ``id2label`` (`head_label_order`);
    `task` itself when the order is already the head's, or the kind has no named classes.

    Raises:
        ValueError: the head and the task name different labels.
    """
    if task.kind not in ("classification", "token-classification"):
        return task
    order = head_label_order(_head_labels(head_config), task.label_names)
    return task if order is None else reorder_labels(task, order)


def _unnamed(labels: Sequence[str]) -> bool:
    """Labels that name no class: transformers' defaults (``LABEL_0``) or class ids from the data."""
    return all(re.fullmatch(r"LABEL_\d+|\d+", name) for name in labels)


def _save_model_dir(
    model: nn.Module, path: Path, tokenizer: PreTrainedTokenizerBase | None, meta: dict
) -> None:
    with disk_errors_named(path), atomic_dir(path, replace=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            save_tokenizer(tokenizer, tmp)
        atomic_write_json(tmp / "supernet.json", meta)


def load_supernet(path: str | Path) -> nn.Module:
    """Load a saved supernet folder (`runs/<name>/supernet/` or `stage_w/`) and convert it.

    Args:
        path: an HF model folder written by `train`.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise RunError(f"'{path}' holds no saved model (no config.json): has training finished?")
    return to_supernet(_load_saved_classifier(path).eval())


def _load_task_model(path: Path) -> nn.Module:
    """A task-tuned checkpoint with the head its config names (the kind is read from the config)."""
    return task_kind_of_config(saved_model_config(path)).auto_class.from_pretrained(path, dtype=LOAD_DTYPE)


def saved_model_config(path: str | Path) -> Any:
    """The config of a model folder this package wrote, or one line naming a damaged config.json."""
    from transformers import AutoConfig

    path = Path(path)
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise RunError(
            f"'{path / 'config.json'}' is not valid JSON ({err}; truncated?): delete '{path}' and rerun "
            "train.py with resume=true"
        ) from None
    return AutoConfig.from_pretrained(path)


def require_weights(path: Path) -> None:
    """Raise one line naming the missing file when a saved model folder has its config but no weights."""
    if not weight_files(path):
        raise RunError(
            f"'{path / 'model.safetensors'}' is missing (the folder holds no weights): put it back, or delete "
            f"'{path}' and rerun train.py with resume=true"
        )


def _load_saved_classifier(path: Path) -> nn.Module:
    """A model folder this package wrote, with a one-line error when its files are damaged."""
    require_weights(path)
    try:
        return _load_task_model(path)
    except RunError:  # a damaged config.json, named
        raise
    except (OSError, ValueError, RuntimeError) as err:
        raise RunError(
            f"'{path}' could not be loaded (corrupt or truncated weights?); delete it and rerun "
            f"train.py with resume=true"
        ) from err
    except Exception as err:  # safetensors' own error type
        if type(err).__name__ != "SafetensorError":
            raise
        raise RunError(
            f"'{path}' could not be loaded (corrupt or truncated weights?); delete it and rerun "
            f"train.py with resume=true"
        ) from err


@torch.no_grad()
def evaluate_subnet(
    model: nn.Module,
    cfg: SubnetConfig | None,
    loader: Any,
    accelerator: Accelerator | None = None,
    *,
    desc: str | None = None,
) -> dict[str, float]:
    """The task's metrics of `cfg` on `loader` (the kind is the model's: `task_kind_of_model`).

    Classification: accuracy, and F1 of class 1 (2 classes) or macro-F1 (more); regression:
    Pearson and Spearman; token classification: entity F1, precision, recall and token
    accuracy; question answering: F1 and exact match (`supernet.tasks`). Also "n", the number of
    examples (questions, for question answering).

    Args:
        model: a supernet (or any task model when `cfg` is None).
        cfg: the subnet to activate; None runs `model` as is.
        loader: batches with "labels".
        accelerator: gathers predictions across processes when given.
        desc: show a progress bar over the batches, labelled so (cleared when done on a terminal).
    """
    was_training = model.training
    model.eval()
    unwrapped = _unwrap(model, accelerator)
    if cfg is not None:
        set_active_subnet(unwrapped, cfg)
    kind = task_kind_of_model(unwrapped)
    preds, labels = [], []
    batches = loader if desc is None else progress_bar(loader, desc=desc, unit="batch", leave=False)
    try:
        for i, batch in enumerate(batches):
            check_labelled(batch, i, "evaluation scores predictions against them")
            logits = output_logits(model(**model_inputs(batch)))
            pred, label = kind.predictions(logits), kind.references(batch)
            if accelerator is not None:
                if pred.dim() > 1:  # per-token: processes' batches differ in length, pad before gathering
                    pred = accelerator.pad_across_processes(pred, dim=1, pad_index=-100)
                    if isinstance(label, torch.Tensor):
                        label = accelerator.pad_across_processes(label, dim=1, pad_index=-100)
                if isinstance(label, torch.Tensor):
                    pred, label = accelerator.gather_for_metrics((pred, label))
                else:  # question answering's references are text
                    pred = accelerator.gather_for_metrics(pred)
                    label = accelerator.gather_for_metrics(label, use_gather_object=True)
            preds.append(pred.cpu())
            labels.append(label.cpu() if isinstance(label, torch.Tensor) else label)
    finally:
        model.train(was_training)  # also when a batch is refused
    # A kind may count examples otherwise (question answering: questions, not windows).
    return {"n": sum(len(y) for y in labels), **kind.metrics(preds, labels, unwrapped.config)}


def _unwrap(model: nn.Module, accelerator: Accelerator | None) -> nn.Module:
    return accelerator.unwrap_model(model) if accelerator is not None else model


@torch.no_grad()
def _load_average(model: nn.Module, ema: AveragedModel) -> None:
    """Replace `model`'s floating-point parameters and buffers with the average's.

    Integer buffers (position and token type ids) keep the model's values: the EMA's arithmetic
    truncates them when it stores back (at decay 0.9, 1144 of 4096 position ids change in 5 updates).
    """
    ours = itertools.chain(model.parameters(), model.buffers())
    averaged = itertools.chain(ema.module.parameters(), ema.module.buffers())
    for mine, avg in zip(ours, averaged, strict=True):
        if mine.is_floating_point():
            mine.copy_(avg)


# --------------------------------------------------------------------------- the job


class _Job:
    """State shared by the stages of one run."""

    loss_scale: float = 1.0
    """`_tail_scale` of the batch being trained: what `_backward` multiplies its loss by."""

    def __init__(self, cfg: TrainConfig, *, progress: bool) -> None:
        # A folder named "~" in the working folder is never what a user means by output_dir=~/runs/x.
        self.cfg = cfg = replace(cfg, output_dir=os.path.expanduser(cfg.output_dir))
        self.run = RunDir(Path(cfg.output_dir))
        self.progress = progress
        self.space = SearchSpace(width_mults=cfg.width_mults, depth_mults=cfg.depth_mults)
        # A second train() in one Python process (notebooks, the benchmark) may ask for another
        # precision; accelerate keeps process-wide state and refuses that unless it is reset.
        from accelerate.state import AcceleratorState

        if AcceleratorState._shared_state and AcceleratorState().mixed_precision != cfg.mixed_precision:
            AcceleratorState._reset_state()
        self.accelerator = Accelerator(
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            mixed_precision=cfg.mixed_precision,
            # Skipped layers get no gradient, so DDP must not wait for them.
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched != self.accelerator.num_processes:
            # e.g. `accelerate launch --multi_gpu` on a machine without GPUs: N unconnected copies
            # of the job would all write the same run directory.
            raise RunError(
                f"{launched} processes were launched but accelerate joined {self.accelerator.num_processes}; "
                f"on CPU set ACCELERATE_USE_CPU=1 (accelerate launch --multi_gpu --num_processes {launched})"
            )
        self.global_step = 0
        # The first Ctrl-C / SIGTERM (`stop_at_step_boundary`): the signal, or False.
        self.stop_requested: signal.Signals | Literal[False] = False
        self.in_stage_loop = False  # only there can a stop wait for the step's end
        self.fresh = True  # set by check_run_dir: no earlier run to resume in output_dir
        self.logger: Logger = make_logger("none", run_dir=self.run.root, project="", config={}, enabled=False)
        self.lock: Any = None  # the open lock file of output_dir while this job trains it (main process)
        self.restart = False  # set by check_run_dir: a resume with nothing to resume from

    def release(self) -> None:
        """Give up output_dir's lock; the file goes with it (a killed job's stays, unlocked, ignored)."""
        if self.lock is not None:
            Path(self.lock.name).unlink(missing_ok=True)
            self.lock.close()
            self.lock = None

    # ---------------------------------------------------------------- setup

    @contextlib.contextmanager
    def stop_at_step_boundary(self) -> Iterator[None]:
        """The first Ctrl-C or SIGTERM stops training after the current optimizer step, with a checkpoint.

        Without it an interrupt (or a scheduler's SIGTERM) loses every step since the last periodic
        checkpoint: the whole stage with `checkpoint_every: 0`. The stage loop saves a checkpoint of
        the step it is at and raises KeyboardInterrupt; a second signal stops at once. Single-process
        runs only: processes of a multi-process run would stop at different steps and wait for each
        other forever, so those keep the default handlers.
        """
        if threading.current_thread() is not threading.main_thread() or self.accelerator.num_processes > 1:
            yield
            return
        # A signal the job was started to ignore (SIGINT of a background job) stays ignored.
        signals = tuple(
            sig for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) != signal.SIG_IGN
        )
        previous = {sig: signal.getsignal(sig) for sig in signals}

        def handler(signum: int, frame: object) -> None:
            # Outside a stage's step loop (data, importance, evaluation) there is no step to finish.
            if self.stop_requested or not self.in_stage_loop:
                raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
            self.stop_requested = signal.Signals(signum)
            print(
                f"\n{signal.Signals(signum).name}: stopping after this training step, with a checkpoint "
                "(send it again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

        for sig in signals:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def check_run_dir(self) -> None:
        """Refuse an output_dir this run must not write into; reads only, so it runs before the data checks.

        A folder holding nothing but config.yaml is a run that stopped before its first step (bad data,
        a missing model in an older version): there is nothing to resume, so it counts as new when
        its config is this one; another config there may be the user's, tuned by hand, and is
        refused. A config.yaml train.py did not write (a preset kept there, another tool's file) is
        left alone.
        """
        cfg, run = self.cfg, self.run
        if run.root.exists() and not run.root.is_dir():
            raise RunError(f"output_dir '{run.root}' is a file; choose a new or empty output_dir")
        problem = unwritable(run.root)  # found now, not after minutes of loading and tokenizing
        if problem is not None:
            raise RunError(f"output_dir '{run.root}' cannot be written: {problem}; choose another")
        holder = _held_by(run.root)
        if holder is not None:
            # Said now, not after the data is loaded, nor as "already holds a run" (prepare_run_dir's
            # lock is still what keeps two jobs apart: this only reads).
            raise RunError(_busy_message(run.root, holder))
        # A file where the run keeps a folder was a NotADirectoryError traceback at its first write
        # (the first checkpoint, minutes in).
        for folder in (run.checkpoints, run.teacher, run.stage_w, run.supernet):
            if folder.exists() and not folder.is_dir():
                raise RunError(
                    f"output_dir '{run.root}' holds a file named {folder.name}, where the run keeps a folder; "
                    "move it out or choose a new output_dir"
                )
        if run.config.exists() and not run.trained_here() and not _written_by_train(run.config):
            raise RunError(
                f"output_dir '{run.root}' holds a config.yaml that train.py did not write (a preset, or another "
                "tool's file), which the run would replace; move it out or choose a new output_dir"
            )
        if run.config.exists() and not run.trained_here() and not _only_config(run):
            # A config.yaml as train.py writes it (saved from --print-config, say) beside files of the
            # user's own: no run trained here, so nothing to resume, and "pass resume=true" let the
            # teacher's save replace the user's teacher/ folder.
            # Folders marked and named first: a teacher/ the run would replace was hidden in "and 1 more".
            others = [
                p.name + "/" if p.is_dir() else p.name
                for p in run.root.iterdir()
                if p.name != run.config.name and not _litter(p.name)
            ]
            shown = some_names(others, key=lambda name: (not name.endswith("/"), name))
            raise RunError(
                f"output_dir '{run.root}' holds a config.yaml and other files ({shown}) but no run "
                "train.py trained (no inputs.json, train_metrics.jsonl, eval.jsonl, checkpoint or saved "
                "model); move them out or choose a new output_dir"
            )
        if run.config.exists() and not run.trained_here():
            # A config.yaml alone, no inputs.json beside it (which a start killed at its first step
            # leaves): saved there by the user, and maybe edited. Taken over without a word, a
            # hand-tuned learning rate was replaced by the preset's; the same config trains there.
            diffs = config_changes(run, cfg)
            if diffs:
                shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
                raise RunError(
                    f"output_dir '{run.root}' holds a config.yaml but no run, and this config differs from it "
                    f"({shown}): train that one with --config {run.config}, or move it out"
                )
        self.fresh = not holds_run(run)
        if not self.fresh:
            if not cfg.resume:
                raise RunError(
                    f"output_dir '{run.root}' already holds a run; pass resume=true to continue it "
                    f"or choose a new output_dir"
                )
            diffs = config_changes(run, cfg)
            if diffs:
                raise RunError(
                    f"resume refused: the config differs from the run's ({'; '.join(diffs)}); "
                    f"undo the changes or start a new output_dir"
                )
            weights = run.list_checkpoints() or any(
                (folder / "config.json").is_file() for folder in (run.teacher, run.stage_w, run.supernet)
            )
            started = _read_inputs(run).get("processes")
            here = self.accelerator.num_processes
            if (
                weights
                and isinstance(started, int)
                and started != here
                and not (run.supernet / "config.json").is_file()
            ):
                # A stage begun after the resume would train with another global batch, unrecorded (a
                # checkpoint of the stage in progress is refused as well: `_check_process_count`). A run
                # with no weights yet trains from its first step: any count (recorded anew).
                raise RunError(
                    f"resume refused: run '{run.root}' was started with {started} process"
                    f"{'es' if started > 1 else ''} and this job has {here}: resume it with {started} "
                    f"({_launch_line(started)}); the global batch is batch_size x gradient_accumulation_steps "
                    "x processes"
                )
            self.restart = not weights and run.metrics.is_file()
            if self.restart:
                # Results kept without their weights (results/ in git), or a run stopped before its first
                # checkpoint: said, since it trains from the first step and replaces eval.jsonl at the end.
                self.accelerator.print(
                    f"note: output_dir '{run.root}' holds no weights or checkpoint to resume: training from the "
                    f"first step (its train_metrics.jsonl is kept as {PREVIOUS_METRICS})"
                )
            elif not weights:
                # Stopped while its first checkpoint was being written (a second Ctrl-C, a kill): the
                # half-written one is removed below, and resume=true must not pass for a resume.
                self.accelerator.print(
                    f"note: output_dir '{run.root}' holds no finished checkpoint to resume (the run stopped "
                    "before its first was written): training from the first step"
                )
        elif (
            run.root.exists()
            and not run.config.exists()
            and any(not _litter(p.name) for p in run.root.iterdir())
        ):
            raise RunError(
                f"output_dir '{run.root}' exists and is not a run directory; choose a new or empty output_dir"
            )
        elif cfg.resume:
            # Said, not refused (a job script may always pass resume=true), so that a mistyped path
            # does not start hours of training afresh without a word.
            self.accelerator.print(
                f"note: output_dir '{run.root}' holds no run to resume: starting a new one there"
            )

    def prepare_run_dir(self) -> None:
        """The run's first write: the folder and config.yaml (after every input has been checked)."""
        cfg, run = self.cfg, self.run
        resolved = config_to_dict(cfg)
        # Every process checks the folder as it was before the main process writes into it.
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            try:
                run.root.mkdir(parents=True, exist_ok=True)
                self.lock = _lock_run_dir(run.root)
                if self.fresh and run.config.exists() and not _only_config(run):
                    # check_run_dir found no run here, then the data took its time: another job
                    # trained one in between (taking it as ours would score its weights on our task).
                    raise RunError(
                        f"output_dir '{run.root}' holds a run another job wrote while this one loaded its "
                        "data; choose a new output_dir (or resume=true to continue that run)"
                    )
                # Half checkpoints a killed job (or a full disk) left: hidden, and hundreds of MB each.
                for half in run.checkpoints.glob(".step-*.tmp"):
                    shutil.rmtree(half, ignore_errors=True)
                if self.restart:  # its rows would mix with the new ones: kept aside, after earlier ones
                    with (run.root / PREVIOUS_METRICS).open("a", encoding="utf-8") as kept:
                        kept.write(run.metrics.read_text(encoding="utf-8"))
                    run.metrics.unlink()
                    inputs = _read_inputs(run)
                    if "processes" in inputs:  # trained from its first step: on this job's processes
                        atomic_write_json(run.inputs, inputs | {"processes": self.accelerator.num_processes})
                    forget_wandb_run(run.root)
                if self.fresh:
                    save_config(cfg, run.config)
                    record_inputs(  # load_data sets the task
                        cfg, run, getattr(self, "task", None), processes=self.accelerator.num_processes
                    )
                else:
                    # A run folder moved since: record where it is now, and nothing else (the rest is the
                    # run's identity, which searches and profile kits of it carry).
                    saved = load_config(TrainConfig, run.config)
                    if saved.output_dir != cfg.output_dir:
                        save_config(replace(saved, output_dir=cfg.output_dir), run.config)
                    if not run.inputs.exists():
                        # Started before runs recorded them: its paths and splits from now on.
                        group = _groups_repeats(run)
                        record_inputs(cfg, run, getattr(self, "task", None), group_repeats=group, typed=saved)
                    _follow_moved_inputs(run)
            except OSError as err:
                raise RunError(
                    f"output_dir '{run.root}' is not writable ({err.strerror}); choose another"
                ) from err
        self.accelerator.wait_for_everyone()
        try:
            self.logger = make_logger(
                cfg.report_to,
                run_dir=run.root,
                project=cfg.wandb_project,
                config=resolved,
                enabled=self.accelerator.is_main_process,
                # A finished run trains nothing on resume: no wandb run is started for it.
                idle=(run.supernet / "config.json").is_file(),
            )
        except Exception as err:  # wandb missing, online without a key, a WANDB_MODE it does not know
            disk = disk_error(err, run.root)
            if cfg.report_to != "wandb" or disk is not None:
                if disk is not None:
                    raise disk from err
                raise
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            hint = (
                "pip install wandb"
                if isinstance(err, ImportError)
                else "run `wandb login`, or set WANDB_MODE=offline (the default when unset)"
            )
            mode = os.environ.get("WANDB_MODE")
            raise RunError(
                f"report_to=wandb: wandb cannot start ({reason}{f'; WANDB_MODE={mode}' if mode else ''}): "
                f"{hint}, or train with report_to=none"
            ) from None

    def load_data(self) -> None:
        if not self.fresh:  # a resume reads the files the run was trained on, from any folder
            self.cfg = recorded_paths(self.cfg, self.run, training=True)
        cfg = self.cfg
        self.model_path = resolve_model_path(cfg.model)
        d = cfg.data
        self.task = task_from_config(cfg, None if self.fresh else self.run)
        if not self.fresh:  # and on the same rows: teacher_eval.json and the checkpoints scored those
            for split in ("dev", "test"):
                check_split(self.task, split, self.run)
        self.kind: TaskKind = get_task_kind(self.task.kind, self.task.label_names)
        model_config = _auto_config(self.model_path, "model")
        conflict = head_conflict(model_config, self.kind, self.task.num_labels)
        if conflict is not None:
            raise RunError(f"model '{cfg.model}' {conflict}; pass its base model or a matching checkpoint")
        # Everything that can be wrong with the model or the space fails here, before any training.
        spec = family_of_config(model_config)
        # (Multipliers that give one subnet twice are refused for new runs: one trained so resumes.)
        try:
            arch = arch_from_config(model_config, spec)
        except ValueError as err:  # transformers could not build such a model either
            raise RunError(
                f"model '{cfg.model}': {err} in its config.json; make the head count divide the hidden size "
                "there, or pass another model"
            ) from None
        check_search_space(arch, self.space, duplicates=self.fresh)
        if spec.matched_layout is not None:
            self.accelerator.print(f"model: {spec.describe()}")
        # Whether the model already has this task's head (then it is the teacher as it is).
        self.model_tuned = self.kind.serves(model_config, self.task.num_labels) and not cfg.teacher.finetune
        self.teacher_path: Path | None = None
        teacher_config = None
        if cfg.teacher.path is not None:
            self.teacher_path = resolve_model_path(cfg.teacher.path, "teacher.path")
            teacher_config = _auto_config(self.teacher_path, "teacher.path")
            if not self.kind.serves(teacher_config, self.task.num_labels):
                raise RunError(
                    f"teacher.path '{self.teacher_path}' is not "
                    f"{self.kind.describe_head(self.task.num_labels)}; pass a task-tuned teacher or leave "
                    f"teacher.path empty to fine-tune one"
                )
            self._follow_head_labels(teacher_config, self.teacher_path, "teacher.path")
            # The supernet is a copy of the teacher (DynaBERT starts from the fine-tuned teacher):
            # a teacher of another shape than `model` trained the teacher's shape, silently, and
            # `model` gave only the tokenizer and the space check.
            given, teacher_shape = _shape(model_config), _shape(teacher_config)
            # A fresh run only: one trained so in an earlier version resumes as it began.
            if self.fresh and given != teacher_shape:
                raise RunError(
                    f"teacher.path '{self.teacher_path}' ({teacher_shape}) is not the shape of model "
                    f"'{cfg.model}' ({given}): the supernet starts as a copy of the teacher, so set model "
                    "to the teacher's base model (or the teacher itself), or leave teacher.path empty to "
                    "fine-tune model"
                )
        elif self.model_tuned:
            self._follow_head_labels(model_config, self.model_path, "model")
        elif (
            not cfg.teacher.max_steps
            and cfg.teacher.epochs <= 0
            and not (self.run.teacher / "config.json").is_file()
        ):
            # Skipped, the teacher's new head stayed random and every subnet distilled from it.
            if cfg.teacher.finetune:
                raise RunError(
                    "teacher.finetune=true with teacher.epochs=0 and no teacher.max_steps fine-tunes nothing: "
                    "give teacher.epochs or teacher.max_steps"
                )
            raise RunError(
                f"model '{cfg.model}' has no task head and teacher.epochs=0 with no teacher.max_steps: its new "
                "head would stay untrained and every subnet would learn from it; give teacher.epochs or "
                "teacher.max_steps, or teacher.path=a task-tuned model"
            )
        self.tokenizer = _auto_tokenizer(self.model_path, words=self.kind.name == "token-classification")
        check_tokenizer_fits(self.tokenizer, model_config)
        if teacher_config is not None:  # the supernet has the teacher's embeddings
            check_tokenizer_fits(self.tokenizer, teacher_config)
        check_max_length_fits(d.max_length, model_config)
        self.tokenized = tokenize_task(
            self.task,
            self.tokenizer,
            d.max_length,
            doc_stride=d.doc_stride,
            progress=self.progress and self.accelerator.is_local_main_process,
        )
        self.dev_loader = self._eval_loader("dev")
        self.test_loader = self._eval_loader("test")
        names = self.task.label_names
        # The names, so that a label column read wrong (a shifted CSV, classes written two ways) shows.
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        outputs = (
            f"{self.task.num_labels} classes ({shown})"
            if self.kind.name == "classification"
            else self.kind.name
        )
        self.accelerator.print(
            f"task {self.task.name}: {outputs}, "
            + ", ".join(
                # Examples, and for question answering the windows long contexts are cut into.
                f"{k} {len(self.task.splits[k])}"
                + (f" ({len(v)} windows)" if len(v) != len(self.task.splits[k]) else "")
                for k, v in self.tokenized.items()
            )
        )
        # Said every time: `accelerate launch --cpu --num_processes 2` starts one process, silently.
        acc, cfg = self.accelerator, self.cfg
        n = acc.num_processes
        acc.print(
            f"{acc.device.type}, {n} process{'es' if n > 1 else ''}: global batch "
            f"{cfg.batch_size * n * cfg.gradient_accumulation_steps} (batch_size {cfg.batch_size} x {n} x "
            f"gradient_accumulation_steps {cfg.gradient_accumulation_steps})"
        )

    def _follow_head_labels(self, head_config: Any, path: Path, key: str) -> None:
        """Put the task's classes in the order of `path`'s task-tuned head (`task_in_head_order`).

        The head's output i means its ``id2label[i]``. Matched by position, a head ordering the same
        labels otherwise was scored (and distilled) against the wrong classes: a 100% teacher read 33%.

        Raises:
            RunError: the head and the data name different labels.
        """
        try:
            task = task_in_head_order(self.task, head_config)
        except ValueError:
            raise RunError(
                f"{key} '{path}' has a head tuned on the labels {list(_head_labels(head_config))}, the task's "
                f"are {list(self.task.label_names)}: pass its base model (a new head is trained), or give the "
                "data the head's labels"
            ) from None
        if task is not self.task:
            self.accelerator.print(
                f"note: {key}'s head orders the labels {list(task.label_names)}: the task's classes follow it"
            )
            self.task = task

    def _name_head_labels(self, model: nn.Module) -> None:
        """A task-tuned head whose labels name nothing (transformers' ``LABEL_0`` ...) takes the task's
        class names, matched by position as it is scored: the supernet copies the teacher's config, and
        an exported model's pipeline answered ``LABEL_2`` where a run from a base model says ``pos``."""
        if self.task.kind not in ("classification", "token-classification"):
            return
        names = self.task.label_names
        head = _head_labels(model.config)
        if _unnamed(head) and not _unnamed(names) and len(head) == len(names):
            model.config.id2label = dict(enumerate(names))
            model.config.label2id = {name: i for i, name in enumerate(names)}

    def _eval_loader(self, split: str) -> Any:
        loader = eval_dataloader(self.cfg, self.tokenized[split], self.tokenizer, self.kind)
        return self.accelerator.prepare_data_loader(loader)

    # ---------------------------------------------------------------- stages

    def teacher(self) -> tuple[nn.Module, float]:
        """The fixed teacher: given, already fine-tuned, or fine-tuned here with hard labels."""
        cfg, run, acc = self.cfg, self.run, self.accelerator
        scored = None  # the run's own teacher's scores, when a resume finds them
        if self.teacher_path is not None:
            teacher = _load_task_model(self.teacher_path)
        elif (run.teacher / "config.json").is_file():
            teacher = _load_saved_classifier(run.teacher)
            self.global_step = _read_meta(run.teacher).get("end_step", 0)
            if not self.fresh:
                scored = self._saved_teacher_eval()
        elif self.model_tuned:
            acc.print(
                "the model has the task's head: it is the teacher as it is (no fine-tune; teacher.epochs, "
                "max_steps and learning_rate are not used; teacher.finetune=true fine-tunes it)"
            )
            teacher = _load_task_model(self.model_path)
        else:
            acc.print(
                "fine-tuning the teacher" + ("" if cfg.teacher.finetune else " (the model has no task head)")
            )
            teacher = _load_classifier(self.model_path, self.task)
            stage = cfg.teacher
            self._run_stage(
                "teacher",
                teacher,
                stage,
                step_fn=self._hard_label_step,
            )
            if acc.is_main_process:
                _save_model_dir(
                    acc.unwrap_model(teacher), run.teacher, self.tokenizer, {"end_step": self.global_step}
                )
            acc.wait_for_everyone()
        if self.teacher_path is not None or self.model_tuned:
            self._name_head_labels(teacher)
        teacher = teacher.to(acc.device).eval()
        main = self.kind.main_metric
        if scored is not None:
            acc.print(f"teacher dev {main}: {100 * scored[main]:.2f} (scored before, teacher_eval.json)")
            return teacher, scored[main]
        # Each split can take minutes on a large task: a bar apiece, cleared when done (on a terminal).
        shown = self.progress and acc.is_local_main_process
        metrics = evaluate_subnet(teacher, None, self.dev_loader, acc, desc="teacher dev" if shown else None)
        acc.print(f"teacher dev {main}: {100 * metrics[main]:.2f}")
        if self.teacher_path is not None or self.model_tuned:  # used as given, not fine-tuned here
            warning = self._untrained_teacher_warning(metrics[main])
            if warning is not None:
                acc.print(warning)
        test = evaluate_subnet(teacher, None, self.test_loader, acc, desc="teacher test" if shown else None)
        if acc.is_main_process:
            atomic_write_json(run.root / "teacher_eval.json", {"dev": metrics, "test": test})
        return teacher, metrics[main]

    def _untrained_teacher_warning(self, score: float) -> str | None:
        """A warning when a teacher used as given does no better on dev than a constant answer (the
        most common class; for regression, no positive correlation): its head is likely untrained,
        and every subnet would learn from it."""
        name, source = self.kind.name, "teacher.path" if self.teacher_path is not None else "model"
        hint = (
            "check teacher.path"
            if self.teacher_path is not None
            else "set teacher.finetune=true to fine-tune it first"
        )
        if name == "classification":
            labels = Counter(self.task.splits["dev"]["label"][:])
            label, count = labels.most_common(1)[0]
            total = sum(labels.values())
            majority = count / total
            # Better by at least half an example: a float32 score equal to the share (0.33333334
            # against 0.3333...) passed as "better" and the warning was skipped.
            if score > majority + 0.5 / total:
                return None
            baseline = f"always answering '{self.task.label_names[label]}' (accuracy {100 * majority:.2f})"
        elif name == "regression":
            if score > 0:  # NaN (a constant prediction) is no correlation too
                return None
            baseline = "a constant answer (pearson 0.00)"
        else:
            return None
        return (
            f"warning: the teacher ({source}, used as it is) does no better on dev than {baseline}: its head "
            f"may be untrained; {hint}"
        )

    def _saved_teacher_eval(self) -> dict[str, float] | None:
        """The dev scores teacher_eval.json holds of the run's own teacher, or None where it is missing
        or damaged (then the teacher is scored again). A resume reads the rows the run was trained
        on (`load_data` checks them), so its scores stand."""
        path = self.run.root / "teacher_eval.json"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            dev, test = saved["dev"], saved["test"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        main = self.kind.main_metric
        if not (isinstance(dev, dict) and isinstance(test, dict)):
            return None
        score = dev.get(main)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            return None
        return dev

    def student(self, teacher: nn.Module) -> nn.Module:
        """A supernet initialised from the teacher, heads and neurons in descending importance."""
        cfg, run, acc = self.cfg, self.run, self.accelerator
        student = to_supernet(copy.deepcopy(teacher).cpu())
        student.requires_grad_(True)  # the teacher it was copied from is frozen
        if not cfg.importance.enabled:
            return student
        if run.importance.is_file():
            try:
                scores = ImportanceScores.load(run.importance)
            except ValueError as err:  # truncated or foreign file: one line, says to delete it
                raise RunError(str(err)) from err
        else:
            acc.print("computing head, neuron and layer importance on dev")
            loader = make_dataloader(
                self.tokenized["dev"],
                self.tokenizer,
                cfg.eval_batch_size,
                shuffle=False,
                collate_fn=self.kind.collator(self.tokenizer),
            )
            batches = list(loader)[: cfg.importance.num_batches]
            scores = compute_importance(
                student,
                batches,
                loss=partial(self.kind.hard_loss, reduction="sum"),
                progress=self.progress and acc.is_local_main_process,
            )
            if acc.is_main_process:
                scores.save(run.importance)
        reorder_by_importance(student, scores)
        return student

    def recipe(self, student: nn.Module) -> Recipe:
        """The config's recipe on this run's space and architecture."""
        cfg = self.cfg
        return make_recipe(
            cfg.recipe,
            self.space,
            supernet_state(self.accelerator.unwrap_model(student)).arch,
            seed=cfg.seed,
            num_random_subnets=cfg.num_random_subnets,
            teacher_width=cfg.distill.teacher_width,
            layerdrop=cfg.layerdrop,
            layerdrop_depth_scaled=cfg.layerdrop_depth_scaled,
            inplace_distill=cfg.inplace_distill,
            per_layer=cfg.per_layer_sampling,
            smallest_weight=cfg.smallest_weight,
            small_bias=cfg.small_bias,
        )

    def elastic_stages(self, student: nn.Module, teacher: nn.Module) -> nn.Module:
        """Run the recipe's stages in order, each distilled from its teacher source.

        A stage whose network a later stage distils from ("previous") is saved as `stage_w/`, so a
        resumed run finds its teacher; a stage finished before is skipped.
        """
        run, acc = self.run, self.accelerator
        recipe = self.recipe(student)
        if self._latest_checkpoint("final") is not None:
            # Resuming inside the final fine-tune: every recipe stage is done (their checkpoints may
            # have been rotated away) and the final stage's checkpoint holds the weights.
            return student
        stages = recipe.stages
        for i, stage in enumerate(stages):
            keep = i + 1 < len(stages) and stages[i + 1].teacher == "previous"
            if keep and (run.stage_w / "config.json").is_file():
                self.global_step = _read_meta(run.stage_w).get("end_step", self.global_step)
                student = load_supernet(run.stage_w)
                continue
            if stage.teacher == "previous":
                # The frozen network of the previous stage (DynaBERT: stage W x D learns from the
                # stage-W net at the student's width and full depth).
                # On the device: a resumed run loaded the student from stage_w/ onto the CPU.
                stage_teacher = copy.deepcopy(acc.unwrap_model(student)).to(acc.device).eval()
                stage_teacher.requires_grad_(False)
            else:
                stage_teacher = teacher
            self._run_stage(
                stage.name,
                student,
                getattr(self.cfg, stage.name),
                step_fn=self._distill_step_fn(
                    stage.name, functools.partial(recipe.plan, stage.name), stage_teacher
                ),
                ema_decay=self.cfg.ema_decay,
            )
            if keep:
                if acc.is_main_process:
                    _save_model_dir(
                        acc.unwrap_model(student), run.stage_w, None, {"end_step": self.global_step}
                    )
                acc.wait_for_everyone()
        return student

    def final_finetune(self, student: nn.Module) -> nn.Module:
        stage = self.cfg.final_finetune
        if stage.epochs <= 0 and not stage.max_steps:
            return student
        grid = tuple(self.space.grid())
        weights = HARD_LABELS

        def step_fn(model: nn.Module, batch: dict[str, torch.Tensor], step: int) -> dict[str, LossParts]:
            out = {}
            for cfg in grid:
                set_active_subnet(self.accelerator.unwrap_model(model), cfg)
                logits = output_logits(model(**model_inputs(batch)))
                parts = distill_loss(
                    logits, None, None, None, batch["labels"], None, weights, hard_loss=self.kind.hard_loss
                )
                self._backward(parts, "final", cfg.name)
                out[cfg.name] = parts
            return out

        self._run_stage(
            "final",
            student,
            stage,
            step_fn=step_fn,
        )
        return student

    # ---------------------------------------------------------------- steps

    def _backward(self, parts: LossParts, stage: str, subnet: str, weight: float = 1.0) -> None:
        if not torch.isfinite(parts.total.detach()):
            last = self.run.list_checkpoints()
            where = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
            raise TrainingError(
                f"loss is {parts.total.item()} at step {self.global_step + 1} of {stage} for subnet {subnet}; "
                f"{where}; lower learning_rate or use mixed_precision=no"
            )
        self.accelerator.backward(parts.total * (weight * self.loss_scale))

    def _hard_label_step(
        self, model: nn.Module, batch: dict[str, torch.Tensor], step: int
    ) -> dict[str, LossParts]:
        logits = output_logits(model(**model_inputs(batch)))
        parts = distill_loss(
            logits, None, None, None, batch["labels"], None, HARD_LABELS, hard_loss=self.kind.hard_loss
        )
        self._backward(parts, "teacher", "teacher")
        return {"teacher": parts}

    def _distill_step_fn(
        self, stage: str, plan: Callable[[int], list[Group]], teacher: nn.Module
    ) -> Callable[[nn.Module, dict[str, torch.Tensor], int], dict[str, LossParts]]:
        d = self.cfg.distill
        weights = LossWeights(
            logit=d.lambda_logit, hidden=d.lambda_hidden, hard=d.lambda_hard, temperature=d.temperature
        )
        pairing = d.depth_pairing
        acc = self.accelerator

        def step_fn(model: nn.Module, batch: dict[str, torch.Tensor], step: int) -> dict[str, LossParts]:
            inputs, labels, mask = model_inputs(batch), batch["labels"], batch["attention_mask"]
            student = acc.unwrap_model(model)
            out: dict[str, LossParts] = {}
            fixed: Any = None
            for group in plan(step):
                students, scales = group.students, group.student_weights
                if group.inplace:
                    # In-place distillation (BigNAS): the largest subnet learns from the gold labels
                    # and its detached outputs teach the rest; the stage's teacher is not run.
                    lead, students, lead_scale, scales = students[0], students[1:], scales[0], scales[1:]
                    set_active_subnet(student, lead)
                    if len(active_layers(student)) != supernet_state(student).arch.num_layers:
                        raise ValueError(
                            f"in-place distillation needs a full-depth lead subnet, got {lead.name}"
                        )
                    s_out = model(**inputs, output_hidden_states=True)
                    parts = distill_loss(
                        output_logits(s_out),
                        None,
                        None,
                        None,
                        labels,
                        None,
                        HARD_LABELS,
                        hard_loss=self.kind.hard_loss,
                    )
                    self._backward(parts, stage, lead.name, lead_scale)
                    out[_log_name(lead, out)] = parts
                    t_out = _Detached(
                        output_logits(s_out).detach(), tuple(h.detach() for h in s_out.hidden_states)
                    )
                else:
                    # The teacher runs once per (batch, teacher subnet), never once per student.
                    with torch.no_grad():
                        if group.teacher is None:
                            if fixed is None:
                                fixed = teacher(**inputs, output_hidden_states=True)
                            t_out = fixed
                        else:
                            set_active_subnet(teacher, group.teacher)
                            t_out = teacher(**inputs, output_hidden_states=True)
                for cfg, scale in zip(students, scales, strict=True):
                    set_active_subnet(student, cfg)
                    s_out = model(**inputs, output_hidden_states=True)
                    t_hidden = teacher_hidden_targets(t_out.hidden_states, active_layers(student), pairing)
                    parts = distill_loss(
                        output_logits(s_out),
                        s_out.hidden_states,
                        output_logits(t_out),
                        t_hidden,
                        labels,
                        mask,
                        weights,
                        logit_loss=self.kind.logit_kd,
                        hard_loss=self.kind.hard_loss,
                    )
                    self._backward(parts, stage, cfg.name, scale)
                    out[_log_name(cfg, out)] = parts
            return out

        return step_fn

    # ---------------------------------------------------------------- the loop

    @functools.cached_property
    def _length_window_batch(self) -> int:
        """The batch `data.group_by_length` sizes its windows by: the global batch, or for a run
        started before that rule the per-process one (its resume keeps the order it trained in)."""
        cfg = self.cfg
        if _read_inputs(self.run).get("length_windows") != GLOBAL_LENGTH_WINDOWS:
            return cfg.batch_size
        return cfg.batch_size * cfg.gradient_accumulation_steps * self.accelerator.num_processes

    def _epoch_batches(self, stage: str, start_epoch: int, skip: int) -> Iterator[tuple[int, int, dict]]:
        epoch, first_skip = start_epoch, skip
        while True:
            loader = make_dataloader(
                self.tokenized["train"],
                self.tokenizer,
                self.cfg.batch_size,
                shuffle=True,
                seed=_seed_of(self.cfg.seed, stage, epoch),
                collate_fn=self.kind.collator(self.tokenizer),
                group_by_length=self.cfg.data.group_by_length,
                global_batch=self._length_window_batch,
            )
            loader = self.accelerator.prepare_data_loader(loader)
            if first_skip:
                loader = self.accelerator.skip_first_batches(loader, first_skip)
            for i, batch in enumerate(loader, start=first_skip):
                yield epoch, i + 1, batch
            epoch, first_skip = epoch + 1, 0

    def _batches_per_epoch(self) -> int:
        return math.ceil(
            len(self.tokenized["train"]) / (self.cfg.batch_size * self.accelerator.num_processes)
        )

    def _run_stage(
        self,
        stage: str,
        model: nn.Module,
        budget: StageConfig | TeacherConfig,
        *,
        step_fn: Callable[[nn.Module, dict[str, torch.Tensor], int], dict[str, LossParts]],
        ema_decay: float = 0.0,
    ) -> None:
        """Train `model` for the stage's budget (epochs or max_steps) with `step_fn` per batch.

        With `ema_decay` > 0 the stage ends with the exponential moving average of its weights.
        """
        epochs, max_steps, learning_rate = budget.epochs, budget.max_steps, budget.learning_rate
        cfg, acc = self.cfg, self.accelerator
        accum, per_epoch = cfg.gradient_accumulation_steps, self._batches_per_epoch()
        total = max_steps or optimizer_steps(epochs, per_epoch, accum)
        if total <= 0:
            elastic = (
                " (the supernet gets no elastic training in it)" if stage in ("stage_w", "stage_wd") else ""
            )
            acc.print(f"{stage}: 0 epochs and no max_steps, skipped{elastic}")
            return
        lr = learning_rate or cfg.learning_rate
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        params = [
            {
                "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
                "weight_decay": cfg.weight_decay,
            },
            {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(params, lr=lr)
        # accelerate steps a prepared scheduler once per process per optimizer step. Warmup is rounded
        # in optimizer steps first, so every process count gets the same learning rate at every step.
        n_proc = acc.num_processes
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(cfg.warmup_ratio * total) * n_proc, total * n_proc
        )
        model.train()
        ema = self._stage_average(model, ema_decay)
        prepared, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)

        stage_step, epoch, batch_in_epoch = 0, 0, 0
        ckpt = self._latest_checkpoint(stage)
        if ckpt is not None:
            _check_process_count(ckpt, acc.num_processes)
            written = (
                "model.safetensors",
                "optimizer.bin",
                "scheduler.bin",
                f"random_states_{acc.process_index}.pkl",
            )
            missing = [name for name in written if not (ckpt / name).is_file()]
            if missing:
                raise ProcessRunError(
                    f"checkpoint '{ckpt}' is incomplete (no {', '.join(missing)}); delete it to resume from the "
                    "one before"
                )
            damaged = ProcessRunError(
                f"checkpoint '{ckpt}' is corrupt or truncated; delete it to resume from the one before"
            )
            try:
                # accelerate only logs a random state it cannot load and goes on: the resume would
                # silently differ from the run it continues. Read here first (with accelerate's own
                # loader: weights_only, its safe globals), so a damaged one is refused.
                rng = accelerate_load(ckpt / f"random_states_{acc.process_index}.pkl")
                if not all(k in rng for k in ("random_state", "numpy_random_seed", "torch_manual_seed")):
                    raise ValueError(f"random states lack {sorted(rng)}")
                # accelerate unpickles registered states (the weight average) with weights_only=False.
                # Each is first read with weights_only=True: that succeeds only for tensors and plain
                # containers, so the full unpickler then meets nothing that could run code.
                for custom in sorted(ckpt.glob("custom_checkpoint_*.pkl")):
                    torch.load(custom, map_location="cpu", weights_only=True)
                acc.load_state(str(ckpt))
            except Exception as err:  # safetensors/torch/pickle raise many types for damaged files
                raise damaged from err
            state = _checkpoint_state(ckpt)
            stage_step, epoch, batch_in_epoch = state["stage_step"], state["epoch"], state["batch_in_epoch"]
            window = _loss_window(state)
            self.global_step = state["global_step"]
            acc.print(f"resumed {stage} from {ckpt.name} (stage step {stage_step}/{total})")
        else:
            set_seed(_seed_of(cfg.seed, stage, "init"))
            window = {}
        if stage_step >= total:
            self._finish_stage(prepared, model, ema)
            return
        if acc.is_main_process:
            # Steps after the point this stage starts from (its checkpoint, or the stage's start when
            # a killed attempt left none) are trained again: their old rows would be doubles.
            drop_steps_after(self.run.metrics, self.global_step)

        bar = progress_bar(
            total=total,
            initial=stage_step,
            desc=stage,
            disable=not (self.progress and acc.is_local_main_process),
        )
        started, first_step = time.perf_counter(), stage_step
        said = -math.inf  # when _say_step last printed
        batches = self._epoch_batches(stage, epoch, batch_in_epoch)
        self.in_stage_loop = True  # from here a first interrupt waits for the step's end
        for epoch, batch_in_epoch, batch in batches:
            self.loss_scale = _tail_scale(batch_in_epoch, per_epoch, accum)
            with acc.accumulate(prepared):
                parts = step_fn(prepared, batch, stage_step)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(prepared.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            for name, p in parts.items():
                window.setdefault(f"{stage}/{name}/loss", []).append(p.total.item())
                for part, value in p.parts.items():
                    window.setdefault(f"{stage}/{name}/{part}", []).append(value.item())
            if not acc.sync_gradients:
                continue
            if ema is not None:
                # Once per optimizer step, before a checkpoint of this step saves it.
                ema.update_parameters(model)
            stage_step += 1
            self.global_step += 1
            bar.update(1)
            logged = stage_step % cfg.log_every == 0 or stage_step == total
            if logged:
                window = _process_mean(acc, window)
            # Between logged rows another process's share is not known here: a multi-process bar
            # shows the global losses of the last row, not process 0's half.
            losses = {n: sum(v) / len(v) for n, v in window.items() if n.endswith("/loss")}
            if logged or acc.num_processes == 1:
                postfix = {k.split("/")[1]: f"{v:.3f}" for k, v in list(losses.items())[:6]}
                bar.set_postfix(postfix, refresh=False)
            if logged:
                metrics = {k: sum(v) / len(v) for k, v in window.items()}
                metrics |= {
                    f"{stage}/lr": scheduler.get_last_lr()[0],
                    f"{stage}/epoch": epoch,
                    # Over the steps this process ran: a resumed stage's time starts at its resume.
                    f"{stage}/sec_per_step": (time.perf_counter() - started)
                    / max(stage_step - first_step, 1),
                }
                self.logger.log(metrics, self.global_step)
                window = {}
            # The stage's first step is said too (its time per step and what is left), logged or not:
            # at log_every=10 on a large model the first logged step can be minutes away.
            if not self.progress and acc.is_main_process and (logged or stage_step == first_step + 1):
                said = self._say_step(
                    stage, stage_step, total, losses if logged else None, started, first_step, said
                )
            saved = stage_step == total or bool(
                cfg.checkpoint_every and stage_step % cfg.checkpoint_every == 0
            )
            if saved:
                if stage_step >= total:
                    # Ended on the stage's last step: a bar left open through the save (8-9 s at
                    # BERT-base size) folded it into the s/it of its last, persisting frame.
                    bar.close()
                self._save_checkpoint(stage, stage_step, epoch, batch_in_epoch, window)
            if stage_step >= total:
                break
            if self.stop_requested:
                if not saved:
                    self._save_checkpoint(stage, stage_step, epoch, batch_in_epoch, window)
                break
        bar.close()
        self.in_stage_loop = False
        # A first interrupt, its step saved: left early, or at the stage's last step (then the run
        # went on through the next phases and stopped a step into the next stage, 40 s later).
        if stage_step < total or self.stop_requested:
            raise Terminated if self.stop_requested == signal.SIGTERM else KeyboardInterrupt
        self._finish_stage(prepared, model, ema)

    def _say_step(
        self,
        stage: str,
        step: int,
        total: int,
        losses: dict[str, float] | None,
        started: float,
        first_step: int,
        said: float,
    ) -> float:
        """With progress bars off (--no-progress): one plain line at a logged step (with its losses)
        or the stage's first step (`losses` None: between logged steps a process knows only its own
        share), at most every `STEP_LINE_INTERVAL_S` seconds and at the stage's last step. Returns when
        it last printed a line with losses."""
        now = time.perf_counter()
        if step < total and now - said < STEP_LINE_INTERVAL_S:
            return said
        per_step = (now - started) / max(step - first_step, 1)
        of = ""
        if losses is not None:
            loss = sum(losses.values()) / max(len(losses), 1)
            of = (
                f"loss {loss:.4f}, "
                if len(losses) == 1
                else f"mean loss {loss:.4f} over {len(losses)} subnets, "
            )
        print(
            f"{stage} step {step}/{total}: {of}{per_step:.2f} s/step, {_clock(per_step * (total - step))} left",
            flush=True,
        )
        # A line without losses does not hold back the first one with them.
        return now if losses is not None else said

    def _stage_average(self, model: nn.Module, decay: float) -> AveragedModel | None:
        """A fresh EMA of `model`'s weights for one stage (None when `decay` is 0).

        Registered for checkpointing before any `load_state`, so `save_state` writes it and a
        resumed stage continues the same average instead of restarting it.
        """
        if decay <= 0:
            return None
        # Buffers are averaged too; `_load_average` copies back only the floating-point ones.
        ema = AveragedModel(
            model,
            device=self.accelerator.device,
            multi_avg_fn=get_ema_multi_avg_fn(decay),
            use_buffers=True,
        )
        ema.requires_grad_(False)
        self.accelerator.register_for_checkpointing(ema)
        return ema

    def _finish_stage(self, prepared: nn.Module, model: nn.Module, ema: AveragedModel | None = None) -> None:
        self.accelerator.wait_for_everyone()
        unwrapped = self.accelerator.unwrap_model(prepared)
        if ema is not None:
            _load_average(unwrapped, ema)
            # accelerate has no public unregister; the next stage registers its own average, and
            # load_state refuses a checkpoint whose custom-state count differs from the registered one.
            self.accelerator._custom_objects.remove(ema)
        if is_supernet(unwrapped):
            set_max_net(unwrapped)
        # Release this stage's optimizer and scheduler; the next stage prepares fresh ones and
        # starts its accumulation counter from zero.
        self.accelerator.free_memory()

    def _latest_checkpoint(self, stage: str) -> Path | None:
        for ckpt in reversed(self.run.list_checkpoints()):
            state_file = ckpt / STATE_FILE
            if not state_file.is_file():
                raise RunError(f"checkpoint '{ckpt}' is incomplete (no {STATE_FILE}); delete it and resume")
            if _checkpoint_state(ckpt)["stage"] == stage:
                return ckpt
        return None

    def _save_checkpoint(
        self, stage: str, stage_step: int, epoch: int, batch_in_epoch: int, window: dict[str, list[float]]
    ) -> None:
        """`window`: the losses of the steps since the last logged row, which the resume's first row
        averages in, as the uninterrupted run's does."""
        acc, run = self.accelerator, self.run
        window = _process_mean(acc, window)  # every process calls this: a collective, as save_state
        final = run.checkpoint(self.global_step)
        tmp = final.with_name(f".{final.name}.tmp")
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        try:
            acc.save_state(str(tmp), safe_serialization=True)
            # Every process writes its own random_states_<i>.pkl into tmp: all must be done before the rename.
            acc.wait_for_everyone()
            if acc.is_main_process:
                atomic_write_json(
                    tmp / STATE_FILE,
                    {
                        "stage": stage,
                        "stage_step": stage_step,
                        "global_step": self.global_step,
                        "epoch": epoch,
                        "batch_in_epoch": batch_in_epoch,
                        LOSS_WINDOW: window,
                    },
                )
        except Exception as err:
            # A full disk: torch.save says "unexpected pos", and the half checkpoint (hidden, hundreds
            # of MB) would keep the disk full after the user freed what they knew of. Told apart
            # before the half checkpoint goes (removing it frees space).
            disk = disk_error(err, final)
            shutil.rmtree(tmp, ignore_errors=True)
            if disk is None:
                raise
            last = run.list_checkpoints()
            raise TrainingError(
                f"{disk.strerror} writing checkpoint '{final}' (the last good one is "
                f"{last[-1] if last else 'none yet'}): free space, then rerun with resume=true"
            ) from err
        if acc.is_main_process:
            share_files(tmp)  # accelerate writes model.safetensors 0600
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in run.list_checkpoints()[: -max(1, self.cfg.keep_last_checkpoints)]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    def drop_checkpoints(self) -> None:
        """keep_last_checkpoints=0: once the supernet is saved, no checkpoint is needed to resume."""
        acc = self.accelerator
        if self.cfg.keep_last_checkpoints == 0 and acc.is_main_process:
            checkpoints = self.run.list_checkpoints()
            for checkpoint in checkpoints:
                # A file the system will not let go of (NFS's .nfs*) must not cost the run its results.
                shutil.rmtree(checkpoint, ignore_errors=True)
            left = [checkpoint.name for checkpoint in checkpoints if checkpoint.exists()]
            if len(left) < len(checkpoints):
                acc.print(
                    f"removed {len(checkpoints) - len(left)} checkpoint(s) from {self.run.checkpoints}: the "
                    "supernet is saved (keep_last_checkpoints=0)"
                )
            if left:
                acc.print(
                    f"warning: could not remove {', '.join(left)} from {self.run.checkpoints}: delete by hand"
                )
        acc.wait_for_everyone()

    # ---------------------------------------------------------------- results

    def evaluate_grid(self, student: nn.Module) -> list[dict[str, Any]]:
        acc = self.accelerator
        model = acc.unwrap_model(student).to(acc.device)
        rows = []
        grid = self.space.grid()
        if not self.progress:  # the bar's stand-in: minutes on a benchmark preset's dev and test
            acc.print(f"scoring the {len(grid)} grid subnets on dev and test")
        for cfg in progress_bar(grid, desc="eval", disable=not (self.progress and acc.is_local_main_process)):
            dev = evaluate_subnet(model, cfg, self.dev_loader, acc)
            test = evaluate_subnet(model, cfg, self.test_loader, acc)
            rows.append(
                {
                    "subnet": cfg.name,
                    "spec": cfg.to_dict(),
                    # The task's metrics (main first), dev as is and test prefixed.
                    **{k: v for k, v in dev.items() if k != "n"},
                    **{f"test_{k}": v for k, v in test.items() if k != "n"},
                    "params": count_params(model, cfg),
                    "flops": count_flops(model, cfg, self.cfg.data.max_length),
                }
            )
        set_max_net(model)
        return rows


def _shape(config: Any) -> str:
    """A model's family and dimensions, as an error names them."""
    arch = arch_from_config(config, family_of_config(config))
    # Not the vocabulary: a teacher whose embeddings were padded or grown (30522 -> 30528) is fine
    # as long as model's tokenizer fits it (checked with the tokenizer).
    return (
        f"{arch.family}, {arch.num_layers} layers, {arch.num_heads} heads of {arch.head_dim}, hidden "
        f"{arch.hidden_size}, FFN {arch.ffn_dim}"
    )


def check_search_space(arch: Arch, space: SearchSpace, *, duplicates: bool = True) -> None:
    """Every width and depth multiplier must give at least one head, neuron and layer, and (with
    `duplicates`) no two the same heads and FFN neurons, or the same layers.

    Raises:
        ConfigError: naming the key (width_mults / depth_mults) and the smallest valid value.
    """
    widths: dict[tuple[int, int], float] = {}
    for w in space.width_mults:
        try:
            resolved = resolve_subnet(arch, SubnetConfig(width_mult=w))
        except ValueError as err:
            raise ConfigError(f"width_mults: {err}") from err
        shape = (resolved.heads[0], resolved.ffn[0])
        if duplicates and shape in widths:  # the grid would train and search one model under two names
            raise ConfigError(
                f"width_mults: {mult_name(widths[shape])} and {mult_name(w)} both give {shape[0]} of "
                f"{arch.num_heads} heads and {shape[1]} of {arch.ffn_dim} FFN neurons on this model: drop one"
            )
        widths[shape] = w
    depths: dict[tuple[int, ...], float] = {}
    for d in space.depth_mults:
        try:
            layers = resolve_subnet(arch, SubnetConfig(depth_mult=d)).layers
        except ValueError as err:
            raise ConfigError(f"depth_mults: {err}") from err
        if duplicates and layers in depths:
            raise ConfigError(
                f"depth_mults: {mult_name(depths[layers])} and {mult_name(d)} both keep layers "
                f"{list(layers)} of {arch.num_layers} on this model: drop one"
            )
        depths[layers] = d


def stage_steps(stage: StageConfig, n_train: int, cfg: TrainConfig) -> int:
    """Optimizer steps the trainer runs for `stage` (its formula, one process)."""
    per_epoch = math.ceil(n_train / cfg.batch_size)
    return stage.max_steps or max(
        1, optimizer_steps(stage.epochs, per_epoch, cfg.gradient_accumulation_steps)
    )


def optimizer_steps(epochs: float, batches_per_epoch: int, accum: int) -> int:
    """Optimizer steps in `epochs` epochs: accelerate steps at the end of each epoch's batches too, so
    an epoch whose batches are not a multiple of `accum` ends on a shorter step of its last ones."""
    return math.ceil(epochs * math.ceil(batches_per_epoch / accum))


def _tail_scale(batch_in_epoch: int, batches_per_epoch: int, accum: int) -> float:
    """What the loss of batch `batch_in_epoch` (1-based) is multiplied by before accelerate divides
    it by `accum`: 1, but accum / r for the r batches of an epoch's last, shorter step, so that step's
    gradient is their mean as every other step's is (accelerate's alone would be r / accum of it)."""
    tail = batches_per_epoch % accum
    return accum / tail if tail and batch_in_epoch > batches_per_epoch - tail else 1.0


def unused_learning_rate(cfg: TrainConfig) -> str | None:
    """A note when the top-level learning_rate reaches no stage: it is only the default of the
    stages that set none (the teacher always has its own)."""
    names = [s.name for s in RECIPES[cfg.recipe].stages] + ["final_finetune"]
    stages = {n: getattr(cfg, n) for n in names}
    training = {n: s for n, s in stages.items() if s.epochs > 0 or s.max_steps}
    if any(s.learning_rate is None for s in training.values()):
        return None
    own = ", ".join(f"{n}.learning_rate={s.learning_rate:g}" for n, s in training.items())
    teacher = (
        f" and the teacher uses teacher.learning_rate={cfg.teacher.learning_rate:g}"
        if cfg.teacher.path is None
        else ""
    )
    return (
        f"note: learning_rate={cfg.learning_rate:g} is not used: every stage this run trains sets its own "
        f"({own}){teacher}; override those"
    )


def unused_stage_w(cfg: TrainConfig) -> str | None:
    """A note when stage_w's keys are set away from their defaults for a recipe without stage W."""
    if cfg.recipe in two_stage_recipes():
        return None
    unset = StageConfig()
    changed = [
        f"stage_w.{f.name}={getattr(cfg.stage_w, f.name)}"
        for f in fields(StageConfig)
        if getattr(cfg.stage_w, f.name) != getattr(unset, f.name)
    ]
    if not changed:
        return None
    return (
        f"note: {', '.join(changed)} {'is' if len(changed) == 1 else 'are'} not used: recipe {cfg.recipe!r} "
        "has no stage W (it trains stage_wd only)"
    )


def config_changes(run: RunDir, cfg: TrainConfig) -> list[str]:
    """Keys in which `cfg` differs from the config saved in `run` (``diff_configs`` lines; none saved: []).

    ``output_dir`` is not compared: a run folder moved or renamed is the same run and resumes there;
    nor is the top-level ``learning_rate`` when no stage uses it (each sets its own), as train.py says;
    nor `BOOKKEEPING_KEYS`, which change what is saved and logged, not what is trained (a run out of
    disk resumes with fewer checkpoints).
    """
    if not run.config.is_file():
        return []
    unused = ("learning_rate",) if unused_learning_rate(cfg) is not None else ()
    try:
        saved = load_config(TrainConfig, run.config)
    except ConfigError as err:  # a newer version's key, a hand edit: load_config names the file
        raise RunError(str(err)) from err
    return diff_configs(
        config_to_dict(saved),
        config_to_dict(_same_paths(saved, cfg, run)),
        ignore=("resume", "output_dir", *BOOKKEEPING_KEYS, *unused),
    )


_PATH_KEYS = ("model", "task", "teacher.path")
"""Config keys that may name local files or folders (or a packaged model or task by name)."""


def _get(cfg: TrainConfig, key: str) -> str | None:
    return cfg.teacher.path if key == "teacher.path" else getattr(cfg, key)


def _with_paths(cfg: TrainConfig, values: dict[str, str]) -> TrainConfig:
    """`cfg` with the `_PATH_KEYS` in `values` set to them (`_get`'s other half)."""
    teacher = replace(cfg.teacher, path=values.get("teacher.path", cfg.teacher.path))
    return replace(
        cfg, model=values.get("model", cfg.model), task=values.get("task", cfg.task), teacher=teacher
    )


def _path_like(value: str | None) -> bool:
    """Whether `value` may name a local file or folder: not None, nor a packaged model or task's name
    (those names win over a folder of the same name, as when loading)."""
    from supernet.assets import PACKAGED_MODELS
    from supernet.data import PACKAGED_TASKS

    return value is not None and value not in PACKAGED_MODELS and value not in PACKAGED_TASKS


def _relative_path(value: str | None) -> bool:
    """Whether `value` is a relative path, not a packaged model or task's name."""
    return _path_like(value) and not Path(str(value)).expanduser().is_absolute()


def _local(value: str | None) -> str | None:
    """`value` as an absolute path when it names an existing local file or folder that is not a
    packaged model or task (`_path_like`)."""
    if value is None or not _path_like(value):
        return None
    path = Path(value).expanduser()
    return os.path.abspath(path) if path.exists() else None


def record_inputs(
    cfg: TrainConfig,
    run: RunDir,
    task: TaskData | None,
    *,
    group_repeats: bool = True,
    typed: TrainConfig | None = None,
    processes: int | None = None,
) -> None:
    """Write RUN/inputs.json when a run starts (or when a run started before runs recorded it is
    resumed): for each local file or folder the config names, the path as typed and its absolute path;
    the SHA-256 of the dev and test splits as read; and the split rule.

    config.yaml keeps the paths as typed: it is the run's identity, and "data/train.csv" typed at a
    project's root still names the file there after the project moves. search.py, export.py and a
    resume read the paths through `recorded_paths` (from any folder) and check the splits against
    the digests (`check_split`): a data file edited since is not scored, or trained on, unnoticed.
    `group_repeats` records the split rule (`task_from_config`): False for a run started before
    2026-12-01, recorded when it is resumed; `typed` is then its config.yaml, whose paths `cfg` holds
    resolved (`recorded_paths`). `processes`: the processes the run trains with (its global batch
    counts them), recorded when it starts so that a resume with another count is refused; with it,
    the rule of `data.group_by_length`'s windows (`GLOBAL_LENGTH_WINDOWS`).
    """
    paths = {}
    for key in _PATH_KEYS:
        absolute = _local(_get(cfg, key))
        if absolute is not None:
            paths[key] = {"typed": _get(typed or cfg, key), "path": absolute}
    digests = {split: split_digest(task, split) for split in ("dev", "test")} if task is not None else {}
    record = {"paths": paths, "split_sha256": digests, "group_repeats": group_repeats}
    if processes is not None:  # a run starting now (not one of before that records its inputs late)
        record |= {"processes": processes, "length_windows": GLOBAL_LENGTH_WINDOWS}
    atomic_write_json(run.inputs, record)


GLOBAL_LENGTH_WINDOWS = "global batch"
"""inputs.json's `length_windows` of runs whose length-grouped windows are sized by the global batch
(from 2026-12-01's last session); runs before sized them by the per-process batch and keep that rule,
so that a resume mid-epoch skips into the order it was trained in."""


def _started_before_inputs(run: RunDir) -> bool:
    """A run trained before runs recorded inputs.json (2026-12-01): trained in, and no inputs.json."""
    return not run.inputs.exists() and run.trained_here()


def _groups_repeats(run: RunDir | None) -> bool:
    """Whether `run`'s task is split with a repeated text's copies kept in one split: runs started from
    2026-12-01 (they record inputs.json), not those before, which were split without it."""
    if run is None:
        return True
    if _started_before_inputs(run):
        return False
    return _read_inputs(run).get("group_repeats", True) is not False


_SAID_OLD_RUN: set[tuple[Path, str]] = set()


def _say_once(run: RunDir, what: str, line: str) -> None:
    """`line` on stderr, once per run and kind of note in this command (several reads per command; the
    main process alone in a multi-process launch)."""
    from supernet.cli import process_rank

    if (run.root, what) not in _SAID_OLD_RUN and process_rank() == 0:
        _SAID_OLD_RUN.add((run.root, what))
        print(line, file=sys.stderr)


def _read_inputs(run: RunDir) -> dict[str, Any]:
    """RUN/inputs.json, or {} for runs before 2026-12-01; a damaged one is said and ignored."""
    try:
        text = run.inputs.read_text(encoding="utf-8")
    except OSError:
        return {}
    try:
        inputs = json.loads(text)
    except ValueError:
        inputs = None
    if not isinstance(inputs, dict) or not isinstance(inputs.get("paths", {}), dict):
        _say_once(  # read several times per command
            run,
            "damaged",
            f"warning: ignoring '{run.inputs}' (not what train.py writes): the config's paths are read as "
            "typed and the splits are not checked",
        )
        return {}
    return inputs


def recorded_paths(cfg: TrainConfig, run: RunDir, *, training: bool = False) -> TrainConfig:
    """`cfg` (a run's config) with each path RUN/inputs.json recorded for the same typed value, while it
    exists on this machine: "rel.csv" then means the file trained on, whatever folder the command runs
    in. A path whose file is gone (the project moved, the run was copied to another machine) is read as
    typed, from the working folder. A run started before inputs.json has its relative paths read from
    the folder its relative output_dir was typed in (`_training_folder`), else from the working folder,
    said (the model's and teacher's paths only with `training`: search and export load the supernet)."""
    if _started_before_inputs(run):
        return _paths_of_an_older_run(cfg, run, training)
    recorded = _read_inputs(run).get("paths", {})
    found = {}
    for key in _PATH_KEYS:
        entry, typed = recorded.get(key), _get(cfg, key)
        if not (
            isinstance(entry, dict) and entry.get("typed") == typed and isinstance(entry.get("path"), str)
        ):
            continue
        if not Path(entry["path"]).exists():
            continue
        here = _local(typed)
        if here is not None and here != entry["path"]:
            print(
                f"note: {key} '{typed}' is read from {entry['path']}, the one this run was trained on, not {here}",
                file=sys.stderr,
            )
        found[key] = entry["path"]
    return _with_paths(cfg, found)


def _paths_of_an_older_run(cfg: TrainConfig, run: RunDir, training: bool) -> TrainConfig:
    """`recorded_paths` for a run that recorded none: relative paths from its training folder."""
    base = _training_folder(run)
    found = {}
    for key in _PATH_KEYS:
        typed = _get(cfg, key)
        if not _relative_path(typed):
            continue
        here, there = _local(typed), None if base is None else _local(str(base / str(typed)))
        if there is not None:
            found[key] = there
            if here not in (None, there) and (training or key == "task"):
                _say_once(
                    run,
                    key,
                    f"note: {key} '{typed}' is read from {there}, beside the folder run '{run.root}' was trained "
                    f"from, not {here}",
                )
        elif here is not None and (training or key == "task"):
            _say_once(
                run,
                key,
                f"note: run '{run.root}' records no absolute paths (started before 2026-12-01): {key} '{typed}' "
                f"is read from {here}, relative to this folder; if it was trained on another file, run this "
                "from the folder it was trained in",
            )
    return _with_paths(cfg, found)


def _training_folder(run: RunDir) -> Path | None:
    """The folder train.py ran in, where config.yaml's output_dir is relative and names `run` from
    there ("runs/x" for PROJECT/runs/x): None when absolute, or when the run has moved since."""
    try:
        typed = Path(load_config(TrainConfig, run.config).output_dir).expanduser()
    except (ConfigError, OSError):
        return None
    parts = Path(os.path.normpath(typed)).parts  # () for "."
    if typed.is_absolute() or ".." in parts:
        return None
    # As the command named it first (a symlinked runs/ keeps its project), then with links resolved.
    for root in (Path(os.path.abspath(run.root)).parts, run.root.resolve().parts):
        if len(parts) < len(root) and (not parts or root[-len(parts) :] == parts):
            return Path(*root[: len(root) - len(parts)])
    return None


def _same_paths(saved: TrainConfig, cfg: TrainConfig, run: RunDir) -> TrainConfig:
    """`cfg` with a path typed otherwise than `saved`'s ("./data/x.csv" for "data/x.csv", or an absolute
    one) put back as `saved` typed it when it names the recorded file: the same input, not a change."""
    recorded = _read_inputs(run).get("paths", {})
    same = {}
    for key in _PATH_KEYS:
        entry, typed = recorded.get(key), _get(cfg, key)
        if (
            isinstance(entry, dict)
            and entry.get("typed") == _get(saved, key)
            and typed != entry.get("typed")
            and _local(typed) == entry.get("path")
        ):
            same[key] = entry["typed"]
    return _with_paths(cfg, same)


def _follow_moved_inputs(run: RunDir) -> None:
    """On a resume: a recorded path that is gone (the project moved) whose typed form names a file
    here now records that one, so a file appearing later at the old place is not taken for it."""
    inputs = _read_inputs(run)
    moved = False
    for entry in inputs.get("paths", {}).values():
        if isinstance(entry, dict) and not Path(str(entry.get("path"))).exists():
            here = _local(entry.get("typed"))
            if here is not None:
                entry["path"], moved = here, True
    if moved:
        atomic_write_json(run.inputs, inputs)


def split_change(task: TaskData, split: str, run: RunDir) -> str | None:
    """What differs when a split of `task` is not the one `run` was started on (its rows or labels
    changed since), or None. Runs before 2026-12-01 record no digest."""
    recorded = _read_inputs(run).get("split_sha256", {})
    if not isinstance(recorded, dict) or recorded.get(split) in (None, split_digest(task, split)):
        return None
    return f"the {split} split of task '{task.name}' is not the one run '{run.root}' was trained on (its rows or labels changed since)"


def check_split(task: TaskData, split: str, run: RunDir, *, strict: bool = True) -> None:
    """Refuse (or with `strict` False, warn about) a split of `task` that is not the one `run` was
    started on (`split_change`)."""
    what = split_change(task, split, run)
    if what is None:
        return
    if strict:
        raise RunError(f"{what}: scores of the two would mix; train a new run on the data as it is now")
    print(f"warning: {what}: the scores below are of the split as it is now", file=sys.stderr)


BOOKKEEPING_KEYS = ("checkpoint_every", "keep_last_checkpoints", "log_every", "report_to", "wandb_project")
"""Config keys a resume may change: they decide what is saved and logged, not the weights."""


def elastic_steps(cfg: TrainConfig, n_train: int) -> int:
    """Optimizer steps of the stages `cfg.recipe` runs (a one-stage recipe never runs stage W)."""
    return sum(stage_steps(getattr(cfg, plan.name), n_train, cfg) for plan in RECIPES[cfg.recipe].stages)


def task_from_config(cfg: TrainConfig, run: RunDir | None = None) -> TaskData:
    """The task data a run config names (same splits every time: the split is seeded), split as `run`
    was: a run started before 2026-12-01 without keeping a repeated text's copies in one split (said
    when its file has any), so that its dev and test are the rows it was trained and scored on."""
    d = cfg.data
    group = _groups_repeats(run)
    task = load_task(
        cfg.task,
        text_column=d.text_column,
        text_pair_column=d.text_pair_column,
        label_column=d.label_column,
        dev_fraction=d.dev_fraction,
        test_fraction=d.test_fraction,
        split_seed=d.split_seed,
        max_train_samples=d.max_train_samples,
        max_eval_samples=d.max_eval_samples,
        task_kind=d.task_kind,
        group_repeats=group,
    )
    if run is not None and not group and Path(cfg.task).expanduser().is_file():
        shared = texts_in_several_splits(task)
        if shared:
            _say_once(
                run,
                "split",
                f"note: run '{run.root}' was started before 2026-12-01 and its task is split as then: "
                f"{shared} text(s) of {cfg.task} have copies in more than one split, so its dev and test "
                "scores are not fully held out; a new run keeps each text's copies in one split",
            )
    return task


def tokenized_split(
    cfg: TrainConfig,
    tokenizer: PreTrainedTokenizerBase,
    split: str = "dev",
    model_config: Any = None,
    run: RunDir | None = None,
    strict: bool = True,
) -> Any:
    """One split of a run's task, tokenized as training tokenized it (search and export evaluate on it).

    `model_config` (the trained model's) puts the classes in its head's order, as training did when a
    task-tuned checkpoint's head ordered them otherwise (`_Job._follow_head_labels`).

    Raises:
        RunError: with `run` and `strict`, the split is not the one the run was trained on
            (`check_split`; without `strict`, a warning).
    """
    task = task_from_config(cfg, run)
    if run is not None:
        check_split(task, split, run, strict=strict)
    if model_config is not None:
        task = task_in_head_order(task, model_config)
    return tokenize_task(
        task, tokenizer, cfg.data.max_length, splits=(split,), doc_stride=cfg.data.doc_stride
    )[split]


def eval_dataloader(cfg: TrainConfig, split: Any, tokenizer: PreTrainedTokenizerBase, kind: TaskKind) -> Any:
    """Evaluation batches of a tokenized split, read as training evaluates the grid.

    Longest first with ``data.group_by_length`` (far less padding), so what search and export score
    is what training scored.
    """
    return make_dataloader(
        split,
        tokenizer,
        cfg.eval_batch_size,
        shuffle=False,
        collate_fn=kind.collator(tokenizer),
        group_by_length=cfg.data.group_by_length,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunError(f"'{path}' is unreadable or corrupt ({err}); delete it and resume") from err


def _process_mean(acc: Accelerator, window: dict[str, list[float]]) -> dict[str, list[float]]:
    """`window`'s losses averaged over the processes, value by value (each process's are of its share
    of the global batch; all train the same subnets at each step); `window` itself in one process.

    Averaged per step, not per logged row, so that a checkpoint's window (`_save_checkpoint`) resumed
    into every process gives the uninterrupted run's rows.
    """
    if acc.num_processes == 1 or not window:  # empty in every process at once (same steps)
        return window
    names = sorted(window)  # one order in every process, whatever order each window was filled in
    flat = torch.tensor([v for name in names for v in window[name]], dtype=torch.float64, device=acc.device)
    values = acc.reduce(flat, reduction="mean").tolist()
    means, start = {}, 0
    for name in names:
        means[name], start = values[start : start + len(window[name])], start + len(window[name])
    # Returned in the window's own order (the order the subnets train in), which the progress bar's
    # loss readout and the logged rows follow: sorted, the bar showed the narrowest subnets first.
    return {name: means[name] for name in window}


def _loss_window(state: dict[str, Any]) -> dict[str, list[float]]:
    """The unlogged losses a checkpoint carries; none from a checkpoint written before they were
    saved (2026-12-01), whose resume's first row then averages only the steps trained again."""
    window = state.get(LOSS_WINDOW)
    if not isinstance(window, dict):
        return {}
    return {
        str(name): [float(value) for value in values]
        for name, values in window.items()
        if isinstance(values, list)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    }


def _checkpoint_state(ckpt: Path) -> dict[str, Any]:
    """A checkpoint's trainer state, or one line saying to delete that checkpoint."""
    path = ckpt / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(state, dict) and isinstance(state.get("stage"), str)):
            raise ValueError("no stage")
        for key in ("stage_step", "global_step", "epoch", "batch_in_epoch"):
            if not isinstance(state.get(key), int) or isinstance(state[key], bool) or state[key] < 0:
                raise ValueError(f"{key} is not a step count")
    except (OSError, ValueError) as err:
        raise RunError(
            f"checkpoint '{ckpt}' has a damaged {STATE_FILE} ({err}); delete that checkpoint folder to "
            "resume from the one before"
        ) from err
    return state


def _written_by_train(path: Path) -> bool:
    """Whether `path` reads as `save_config` writes every run's config.yaml (a YAML dump of a mapping:
    no comments, its own layout), which a preset written by hand or another tool's file is not."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and text == config_yaml(data)


def holds_run(run: RunDir) -> bool:
    """Whether `run` holds a run to resume: config.yaml and more (a folder with only its config.yaml,
    a start killed before anything else was written, trains afresh)."""
    return run.config.exists() and not _only_config(run)


_DESKTOP_LITTER = frozenset({".DS_Store", ".localized", "Thumbs.db", "desktop.ini", ".directory"})
"""Files a desktop leaves in any folder it shows."""


def _litter(name: str) -> bool:
    """Whether a file named `name` in an output_dir is no file of the user's: the run's lock, or a
    desktop's litter (`._*` too), or a temporary a killed job of this package left. Other hidden
    entries (.git, .venv, .env) are the user's."""
    return (
        name == LOCK_FILE
        or name in _DESKTOP_LITTER
        or name.startswith("._")
        or is_temporary(name)  # this package's own, which a killed job leaves
    )


def _only_config(run: RunDir) -> bool:
    """Whether the run folder holds config.yaml and nothing else (inputs.json, its lock file and a
    desktop's litter, such as .DS_Store, aside)."""
    names = {p.name for p in run.root.iterdir() if not _litter(p.name)} - {run.inputs.name}
    return names == {run.config.name}


PREVIOUS_METRICS = "train_metrics.previous.jsonl"
"""Where a resume with nothing to resume from keeps the metrics of the attempt before it."""

LOCK_FILE = ".train.lock"
"""In output_dir: locked while a train.py job trains the run (released when the job ends or dies)."""


STEP_LINE_INTERVAL_S = 30.0
"""Least seconds between two step lines of a run without progress bars."""


def _clock(seconds: float) -> str:
    """`seconds` as h:mm:ss (or m:ss under an hour)."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


_LOCK_HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
"""flock's errnos for "another process holds this lock" (any other errno: the filesystem has no flock)."""


def _holder(handle: Any) -> str:
    """Who holds the lock file open in `handle`, as that job wrote it ("train.py (pid N on host)")."""
    handle.seek(0)
    return handle.read().strip() or "another job"


def _busy_message(root: Path, holder: str) -> str:
    return (
        f"output_dir '{root}' is being trained by {holder}; wait for that job to end or stop it "
        "(two jobs in one run folder overwrite each other's checkpoints)"
    )


def _held_by(root: Path) -> str | None:
    """Who holds `root`'s lock now ("train.py (pid N on host)"), or None; takes nothing."""
    try:
        import fcntl

        handle = (root / LOCK_FILE).open(encoding="utf-8")
    except (ImportError, OSError):  # no lock file (or not POSIX): nobody holds it
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in _LOCK_HELD:
                return _holder(handle)
            return None  # a filesystem without flock: _lock_run_dir says so
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def unscored_grid(cfg: TrainConfig, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The grid subnets of `cfg`'s space that no eval.jsonl row of `rows` scores, in grid order (a run
    stopped while scoring its grid)."""
    scored = {row.get("subnet") for row in rows}
    grid = SearchSpace(width_mults=cfg.width_mults, depth_mults=cfg.depth_mults).grid()
    return [subnet.name for subnet in grid if subnet.name not in scored]


def trained_run(root: str | Path) -> RunDir:
    """`root` as a run whose supernet search.py and export.py can load, or one line saying why not.

    Raises:
        RunError: no such folder, not a run folder, or no supernet yet (named differently while a
            train.py still trains it: a resume then would be refused).
    """
    run = RunDir(Path(root))
    if not run.root.exists():
        raise RunError(f"run '{root}' does not exist: pass the output_dir train.py wrote")
    if not run.config.is_file():
        raise RunError(f"'{root}' is not a run directory (no config.yaml): run train.py first")
    if not (run.supernet / "config.json").is_file():
        holder = _held_by(run.root)
        if holder is not None:
            raise RunError(
                f"run '{root}' is still being trained by {holder}: run this again when it has finished"
            )
        raise RunError(f"run '{root}' has no trained supernet yet: finish train.py (resume=true) first")
    return run


def _lock_run_dir(root: Path, attempt: int = 1) -> Any:
    """Lock `root` for this job, or one line naming the job that holds it.

    Two jobs in one run folder (a resume started while the first still runs, or workers a killed
    launcher left behind) overwrite each other's checkpoints and interleave the metrics. The lock
    is the kernel's (flock): it goes with the process, however it ends, so it is never stale.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no lock
        return None
    existed = (root / LOCK_FILE).exists()
    try:
        handle = (root / LOCK_FILE).open("a+", encoding="utf-8")
    except OSError as err:
        raise RunError(
            f"lock file '{root / LOCK_FILE}' cannot be opened ({err.strerror}); if no job trains this folder, "
            "delete it"
        ) from None
    try:
        # A few tries: search.py and export.py peek with a shared lock for an instant (`_held_by`).
        for wait in (0.05, 0.05, 0.0):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in _LOCK_HELD or not wait:
                    raise
                time.sleep(wait)
    except OSError as err:
        if err.errno not in _LOCK_HELD:
            # NFS without lockd, Lustre mounted noflock, some FUSE mounts: train as before, unlocked.
            handle.close()
            if not existed:
                (root / LOCK_FILE).unlink(missing_ok=True)
            print(
                f"note: output_dir '{root}' cannot be locked ({err.strerror}): nothing stops a second job "
                "from training it at the same time",
                file=sys.stderr,
            )
            return None
        holder = _holder(handle)
        handle.close()
        raise RunError(_busy_message(root, holder)) from None
    if not _same_file(handle, root / LOCK_FILE):
        # Locked a file a finishing job had just unlinked (it unlinks, then closes): that lock guards
        # nothing, since the next job creates a new file. Lock the one the path names now.
        handle.close()
        if attempt < 5:
            return _lock_run_dir(root, attempt + 1)
        # A filesystem whose stat and fstat never agree (some FUSE mounts): as one without flock.
        print(
            f"note: output_dir '{root}' cannot be locked (its lock file changes under it): nothing stops "
            "a second job from training it at the same time",
            file=sys.stderr,
        )
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{Path(sys.argv[0]).name or 'python'} (pid {os.getpid()} on {socket.gethostname()})\n")
    handle.flush()
    return handle


def _same_file(handle: Any, path: Path) -> bool:
    """Whether the open `handle` is the file `path` names now (not one unlinked or replaced since)."""
    try:
        here, there = os.fstat(handle.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _check_process_count(ckpt: Path, processes: int) -> None:
    """Refuse a checkpoint written by another number of processes than this run has.

    Each process saves its random state (random_states_<i>.pkl); the learning-rate schedule is
    stepped once per process and the data position counts each process's batches, so a
    checkpoint resumed by another count would continue with a wrong schedule and data order.
    """
    written = len(list(ckpt.glob("random_states_*.pkl")))
    if written and written != processes:
        raise RunError(
            f"checkpoint '{ckpt}' was written by {written} process{'es' if written > 1 else ''} and this "
            f"run has {processes}: resume it with {written} ({_launch_line(written)}); the learning-rate "
            "schedule and the data position are counted per process"
        )


def _launch_line(processes: int) -> str:
    """How to start train.py with `processes` processes."""
    if processes == 1:
        return "python train.py ..."
    return f"accelerate launch --multi_gpu --num_processes {processes} train.py ..."


def _read_meta(folder: Path) -> dict[str, Any]:
    meta = folder / "supernet.json"
    return _read_json(meta) if meta.is_file() else {}


def format_eval_table(
    rows: Sequence[dict[str, Any]],
    teacher_accuracy: float | None = None,
    *,
    kind: TaskKind | None = None,
    num_labels: int = 2,
    seq_len: int | None = None,
) -> str:
    """Aligned text table of per-subnet dev metrics, the test main metric, params and FLOPs.

    Accuracy is shown in %, correlations times 100 (as GLUE reports them), F1 as a fraction.

    Args:
        rows: eval rows (`evaluate_grid`).
        teacher_accuracy: the teacher's dev main metric, shown as the first row.
        kind: the task kind whose metric columns to show (default: classification).
        num_labels: the task's outputs (chooses F1 or macro-F1 for classification).
        seq_len: the sequence length the rows' FLOPs are counted at, named in the header.
    """
    kind = kind or get_task_kind("classification")
    columns = kind.columns(num_labels)
    main = columns[0]
    titles = [f"dev {main.header}", *(f"dev {c.header}" for c in columns[1:]), f"test {main.header}"]
    widths = [max(len(t) + 2, 10) for t in titles]
    head = f"{'subnet':<14}" + "".join(f"{t:>{w}}" for t, w in zip(titles, widths, strict=True))
    gflops = "GFLOPs" if seq_len is None else f"GFLOPs s{seq_len}"
    head += f"{'params M':>10}{gflops:>{len(gflops) + 2}}"
    lines = [head, "-" * len(head)]
    if teacher_accuracy is not None:
        lines.append(f"{'teacher':<14}{100 * teacher_accuracy:>{widths[0]}.2f}")
    for r in rows:
        cells = [f"{100 * r[main.key]:.2f}"]
        cells += [
            "-" if c.key not in r else f"{100 * r[c.key]:.2f}" if c.scaled else f"{r[c.key]:.3f}"
            for c in columns[1:]
        ]
        cells.append(f"{100 * r['test_' + main.key]:.2f}")
        lines.append(
            f"{r['subnet']:<14}"
            + "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
            + f"{r['params'] / 1e6:>10.2f}{r['flops'] / 1e9:>{len(gflops) + 2}.2f}"
        )
    return "\n".join(lines)


def fine_tune_teacher(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Only step 0 of `train`: the run directory with its fine-tuned `teacher/` and teacher_eval.json.

    A later `train` with ``teacher.path=<run>/teacher`` starts every elastic recipe from this one
    teacher (what bench/elastic_cost.py does), and `train` on the same run directory with
    ``resume=true`` and the same config reuses it.

    Args:
        cfg: the resolved configuration (its stages are not run).
        progress: show progress bars.
    """
    job = _Job(cfg, progress=progress)
    job.check_run_dir()
    set_seed(cfg.seed)
    try:
        with job.stop_at_step_boundary():
            job.load_data()  # every input checked before the first write, as in `train`
            job.prepare_run_dir()
            _, teacher_acc = job.teacher()
        return TrainResult(run_dir=job.run.root, teacher_accuracy=teacher_acc)
    finally:
        job.logger.finish()
        job.release()


def train(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Run (or resume) the whole training job described by `cfg`.

    Args:
        cfg: the resolved configuration.
        progress: show progress bars.

    Returns:
        The run directory, the teacher's dev accuracy and one eval row per grid subnet.
    """
    job = _Job(cfg, progress=progress)
    job.check_run_dir()
    set_seed(cfg.seed)
    try:
        with job.stop_at_step_boundary():
            # Data, model and tokenizer are checked before the first write, so a run that stops on bad
            # input leaves nothing behind and the corrected command starts cleanly.
            job.load_data()
            job.prepare_run_dir()
            finished = (job.run.supernet / "config.json").is_file()
            if finished:
                job.accelerator.print(
                    f"note: {job.run.supernet} is already trained: nothing is retrained, the grid is scored "
                    "on dev and test again"
                )
            teacher, teacher_acc = job.teacher()
            teacher.requires_grad_(False)
            if finished:
                student = load_supernet(job.run.supernet)
            else:
                student = job.student(teacher)
                student = job.elastic_stages(student, teacher)
                student = job.final_finetune(student)
                acc = job.accelerator
                if acc.is_main_process:
                    meta = {
                        "end_step": job.global_step,
                        "family": supernet_state(acc.unwrap_model(student)).arch.family,
                        "width_mults": list(job.space.width_mults),
                        "depth_mults": list(job.space.depth_mults),
                        "max_length": cfg.data.max_length,
                        "task": cfg.task,
                        "task_kind": job.kind.name,
                    }
                    _save_model_dir(acc.unwrap_model(student), job.run.supernet, job.tokenizer, meta)
                acc.wait_for_everyone()
            job.drop_checkpoints()
            rows = job.evaluate_grid(student)
            if job.accelerator.is_main_process:
                # Each row names the weights it scored: search reuses only those of the supernet it loads.
                digest = weights_digest(job.run.supernet)
                rows = [{**row, "weights_sha256": digest} for row in rows]
                atomic_write_text(job.run.eval, "".join(json.dumps(r) + "\n" for r in rows))
                teacher_dev = None if teacher_acc is None else {job.kind.main_metric: teacher_acc}
                job.logger.summary(eval_summary(rows, teacher_dev))  # wandb: the scores beside the losses
                job.accelerator.print(
                    format_eval_table(
                        rows,
                        teacher_acc,
                        kind=job.kind,
                        num_labels=job.task.num_labels,
                        seq_len=cfg.data.max_length,
                    )
                )
                digests = _read_inputs(job.run).get("split_sha256", {})
                if (
                    isinstance(digests, dict)
                    and digests.get("dev")
                    and digests.get("dev") == digests.get("test")
                ):
                    # The data had no labelled test split (a folder without test.*, or GLUE's
                    # unlabelled one): a figure copied from the "test" column is a dev figure.
                    job.accelerator.print(
                        f"note: the test column holds dev figures: {cfg.task} has no labelled test "
                        "split (eval.jsonl's test_* keys and teacher_eval.json's test are the dev split's)"
                    )
        return TrainResult(run_dir=job.run.root, teacher_accuracy=teacher_acc, eval_rows=rows)
    finally:
        job.logger.finish()
        job.release()

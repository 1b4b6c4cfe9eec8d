"""Typed run configuration: dataclasses, YAML loading, ``key=value`` overrides and validation.

Every command reads one of the top-level configs (:class:`TrainConfig`, :class:`SearchConfig`,
:class:`ExportConfig`) with :func:`load_config`. Loading, type checking and override parsing are
generic over the dataclass fields (``typing.get_type_hints``), so adding a field to a dataclass is
all it takes to make it loadable, overridable and type checked. Range and choice checks live in each
dataclass's ``_validate``.

All problems surface as :class:`ConfigError` with a one-line message that names the offending key
(dotted for nested sections, e.g. ``data.max_length``), so the CLI can print it without a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
import os
import re
import types
import typing
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from supernet.io import atomic_write_text

__all__ = [
    "DEPTH_PAIRINGS",
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "ExportConfig",
    "ImportanceConfig",
    "SINGLE_STAGE_NEUTRAL",
    "SearchConfig",
    "StageConfig",
    "TeacherConfig",
    "TrainConfig",
    "check_recipe_options",
    "config_to_dict",
    "config_yaml",
    "diff_configs",
    "dotted_keys",
    "load_config",
    "save_config",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """One-line, user-facing configuration problem."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        """Create the error.

        Args:
            message: The complete one-line message shown to the user.
            key: The dotted config key the problem is about, when there is one.
        """
        super().__init__(message)
        self.key = key
        # Set while ``key`` is still relative to a nested dataclass, so the loader that built that
        # dataclass can rewrite the message with the full dotted key exactly once.
        self._relative: tuple[str, bool] | None = None


def _field_error(key: str, reason: str, *, quoted: bool) -> ConfigError:
    """Build an error about one field whose key may still need its section prefix."""
    message = f"config key '{key}' {reason}" if quoted else f"{key} {reason}"
    err = ConfigError(message, key=key)
    err._relative = (reason, quoted)
    return err


def _qualify(err: ConfigError, prefix: str) -> ConfigError:
    """Return ``err`` with its key prefixed by ``prefix``, unless that already happened."""
    if err._relative is None or err.key is None:
        return err
    reason, quoted = err._relative
    qualified = _field_error(prefix + err.key, reason, quoted=quoted)
    qualified._relative = None
    return qualified


# --------------------------------------------------------------------------------------------------
# Validation helpers used by the dataclasses' ``_validate``.
# Messages read "<key> must be ..." so the loader can prepend the section ("data.max_length ...").
# --------------------------------------------------------------------------------------------------


def _check(ok: bool, key: str, reason: str) -> None:
    if not ok:
        raise _field_error(key, reason, quoted=False)


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        # Comparing this way round also rejects NaN, which slips through ``value <= 0`` checks.
        _check(value > 0, name, f"must be > 0, got {value!r}")


def _positive_or_none(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value is None or value > 0, name, f"must be > 0 or null, got {value!r}")


def _non_negative(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value >= 0, name, f"must be >= 0, got {value!r}")


def _in_unit_interval(obj: object, name: str) -> None:
    """Check ``0 <= value < 1`` (fractions and probabilities where 1 would leave nothing)."""
    value = getattr(obj, name)
    _check(0 <= value < 1, name, f"must be in [0, 1), got {value!r}")


def _one_of(obj: object, name: str, choices: Sequence[str]) -> None:
    value = getattr(obj, name)
    _check(value in choices, name, f"must be one of {', '.join(choices)}, got {value!r}")


def _non_empty(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _check(value is None or value.strip() != "", name, "must not be empty")


def mult_name(value: float) -> str:
    """A multiplier as subnet names write it: 2 decimals (0.625 -> "0.62")."""
    return f"{float(value):.2f}"


def name_clashes(values: Sequence[float]) -> list[str]:
    """The 2-decimal forms that several of `values` share (0.125 and 0.12 are both "0.12").

    Subnets are named by their multipliers to 2 decimals: two that read alike would be scored,
    cached and exported under one name.
    """
    named = [mult_name(v) for v in values]
    return sorted({n for n in named if named.count(n) > 1})


def _normalise_mults(obj: object, name: str) -> None:
    """Check a multiplier list and store it sorted descending, the order the stages iterate in."""
    values: tuple[float, ...] = getattr(obj, name)
    shown = list(values)
    _check(len(values) > 0, name, "must not be empty")
    for value in values:
        _check(0 < value <= 1, name, f"must only contain values in (0, 1], got {shown}")
    _check(len(set(values)) == len(values), name, f"must not contain duplicates, got {shown}")
    clash = name_clashes(values)
    _check(
        not clash,
        name,
        f"must not hold values that are the same to 2 decimals ({', '.join(clash)}), got {shown}",
    )
    _check(1.0 in values, name, f"must contain 1.0 (the full model), got {shown}")
    setattr(obj, name, tuple(sorted(values, reverse=True)))


class _Config:
    """Base of all config dataclasses: type coercion first, then per-class range checks."""

    def __post_init__(self) -> None:
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            setattr(self, f.name, _coerce(value, hints[f.name], f.name))
        self._validate()

    def _validate(self) -> None:
        """Range and choice checks; overridden per dataclass."""


# --------------------------------------------------------------------------------------------------
# The dataclasses
# --------------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class DataConfig(_Config):
    """How the task's rows are read, tokenised and split."""

    text_column: str = "text"
    """Column holding the (first) input text."""
    text_pair_column: str | None = None
    """Column holding the second text of a sentence pair, or None for single-sentence tasks."""
    label_column: str = "label"
    """Column holding the class label (or the regression target)."""
    task_kind: str = "auto"
    """auto | classification | regression | token-classification | question-answering: auto takes a
    packaged task's kind, token classification for a .conll file or JSON rows with tokens and tags,
    question answering for SQuAD JSON or rows with question, context and answers, regression when the
    label column holds numbers with fractions, classification otherwise."""
    max_length: int = 128
    """Tokens per example after truncation (question answering: per window of question + context)."""
    doc_stride: int | None = None
    """Question answering: tokens of context shared by consecutive windows of a context too long for
    one window; None takes a quarter of max_length (SQuAD tooling uses 128 with max_length 384)."""
    dev_fraction: float = 0.1
    """Share of rows held out as the dev set when the task ships without one."""
    test_fraction: float = 0.1
    """Share of rows held out as the test set when the task ships without one."""
    split_seed: int = 42
    """Seed of the train/dev/test split, separate from the training seed so splits stay comparable."""
    max_train_samples: int | None = None
    """Cap on training rows (for quick runs); None uses all."""
    max_eval_samples: int | None = None
    """Cap on dev/test rows (for quick runs); None uses all."""
    group_by_length: bool = False
    """Training batches of similar length: shuffle, then sort each window of 50 batches by length
    (transformers' LengthGroupedSampler), so a batch pads to less. On Rotten Tomatoes sentences (max
    length 64) it cuts the tokens a training epoch computes on by 46%; the batches are still random
    across windows. The trainer's dev and test evaluations then read their split longest first (the
    metrics do not depend on the order; importance scores still take the first dev batches as stored)."""

    def _validate(self) -> None:
        _non_empty(self, "text_column", "text_pair_column", "label_column")
        _one_of(
            self,
            "task_kind",
            ("auto", "classification", "regression", "token-classification", "question-answering"),
        )
        _positive(self, "max_length")
        _check(
            self.doc_stride is None or 0 <= self.doc_stride < self.max_length,
            "doc_stride",
            f"must be at least 0 and below max_length ({self.max_length}), got {self.doc_stride}",
        )
        _in_unit_interval(self, "dev_fraction")
        _in_unit_interval(self, "test_fraction")
        _check(
            self.dev_fraction + self.test_fraction < 1,
            "test_fraction",
            f"must be < 1 - dev_fraction ({self.dev_fraction!r}) so rows remain for training, "
            f"got {self.test_fraction!r}",
        )
        _non_negative(self, "split_seed")
        _positive_or_none(self, "max_train_samples", "max_eval_samples")


@dataclass(kw_only=True)
class TeacherConfig(_Config):
    """Where the distillation teacher comes from."""

    path: str | None = None
    """A task-tuned teacher folder used as is; the supernet starts as a copy of it, so it has
    ``model``'s shape. None fine-tunes ``model`` on the task first."""
    epochs: float = 3.0
    """Fine-tuning epochs when the teacher is trained here."""
    learning_rate: float = 2e-5
    """Peak learning rate of the teacher fine-tuning."""
    max_steps: int | None = None
    """Exact number of teacher optimizer steps, replacing ``epochs`` (more epochs than that when the
    data is small); None = ``epochs`` decide."""
    finetune: bool = False
    """Fine-tune ``model`` on the task even when it already has the task's head (a checkpoint saved
    with a new, untrained head, say); False uses such a model as the teacher as it is."""

    def _validate(self) -> None:
        _non_empty(self, "path")
        _check(
            not (self.finetune and self.path is not None),
            "finetune",
            "fine-tunes `model`, but teacher.path names a teacher used as it is: set one of them",
        )
        _non_negative(self, "epochs")
        _positive(self, "learning_rate")
        _positive_or_none(self, "max_steps")


@dataclass(kw_only=True)
class ImportanceConfig(_Config):
    """Head/neuron importance scoring used to reorder the network before elastic training."""

    enabled: bool = True
    """Reorder heads and FFN neurons by importance so narrow subnets keep the important ones."""
    num_batches: int | None = None
    """Dev batches used to estimate importance; None = the whole dev set."""

    def _validate(self) -> None:
        _positive_or_none(self, "num_batches")


@dataclass(kw_only=True)
class StageConfig(_Config):
    """Length and learning rate of one training stage."""

    epochs: float = 3.0
    """Epochs of the stage; 0 skips the stage."""
    max_steps: int | None = None
    """Exact number of optimizer steps of the stage, replacing ``epochs`` (more epochs than that when
    the data is small); None = ``epochs`` decide."""
    learning_rate: float | None = None
    """Peak learning rate of the stage; None uses ``TrainConfig.learning_rate``."""

    def _validate(self) -> None:
        _non_negative(self, "epochs")
        _positive_or_none(self, "max_steps", "learning_rate")


DEPTH_PAIRINGS = ("dynabert", "same-layer")
"""The rules `supernet.distill.teacher_hidden_targets` knows (``distill.depth_pairing``)."""


@dataclass(kw_only=True)
class DistillConfig(_Config):
    """Loss weights and teacher choice of the knowledge distillation."""

    lambda_logit: float = 1.0
    """Weight of the soft cross-entropy between student and teacher logits."""
    lambda_hidden: float = 0.1
    """Weight of the MSE between student and teacher hidden states (embeddings + layers)."""
    lambda_hard: float = 0.0
    """Weight of the plain cross-entropy against the gold labels."""
    temperature: float = 1.0
    """Softmax temperature of the logit distillation."""
    teacher_width: str = "same"
    """Stage-WD teacher: "same" (paper: stage-W net at the same width, full depth) or "full" (released code)."""
    depth_pairing: str = "same-layer"
    """Which teacher hidden states a subnet that skips layers learns from: "same-layer" (each kept
    layer's output against the teacher's output of that layer) or "dynabert" (DynaBERT's run_glue.py:
    the state entering each kept layer against the teacher's state entering it, the last output
    against the teacher's last). Measured on rt-sentences with the rt-minilm preset, DynaBERT's rule
    did no better (BENCHMARKS.md, "Hidden-state pairing"), so the default stays the package's."""

    def _validate(self) -> None:
        _non_negative(self, "lambda_logit", "lambda_hidden", "lambda_hard")
        _check(
            self.lambda_logit + self.lambda_hidden + self.lambda_hard > 0,
            "lambda_logit",
            "= lambda_hidden = lambda_hard = 0: the subnets would have no loss to learn from; set one of them > 0",
        )
        _positive(self, "temperature")
        _one_of(self, "teacher_width", ("same", "full"))
        _one_of(self, "depth_pairing", DEPTH_PAIRINGS)


def _final_finetune_default() -> StageConfig:
    return StageConfig(epochs=0.0)


SINGLE_STAGE_NEUTRAL: dict[str, object] = {
    "inplace_distill": False,
    "per_layer_sampling": False,
    "smallest_weight": 1.0,
    "small_bias": 0.0,
}
"""The options only recipe=single-stage reads, each at the value that leaves other recipes unchanged.

A config with another recipe must hold these values; code that derives another recipe's config
from a preset (e.g. bench/accuracy_latency.py's LayerDrop baseline) resets them with it.
"""


@dataclass(kw_only=True)
class TrainConfig(_Config):
    """Everything ``supernet-train`` needs: model, task, elastic space, stages and logging."""

    model: str
    """Local Hugging Face folder, or the packaged model's short name "all-minilm-l6-v2"."""
    task: str
    """Packaged task name (rt-sentences, trec, sms-spam, rt-scores) or a local file/dir."""
    output_dir: str
    """The run directory (checkpoints, logs, the saved config, the final supernet)."""
    seed: int = 42
    """Seed of model init, data order and subnet sampling."""
    learning_rate: float = 2e-5
    """Peak learning rate of a stage that sets none (``stage_w``, ``stage_wd``, ``final_finetune``);
    the teacher's is ``teacher.learning_rate``."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup_ratio: float = 0.1
    """Share of each stage's steps spent in linear warmup."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    ema_decay: float = 0.0
    """Elastic stages (every recipe; not the teacher fine-tune or final_finetune): keep an exponential
    moving average of the weights, ema = d * ema + (1 - d) * w after every optimizer step, and end each
    stage with it (stage_w/, supernet/ and the grid evaluation get the averaged weights); 0 = off."""
    batch_size: int = 32
    """Training examples per micro-batch."""
    eval_batch_size: int = 64
    """Examples per evaluation batch."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step."""
    width_mults: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    """Elastic width multipliers (heads and FFN neurons), stored sorted descending."""
    depth_mults: tuple[float, ...] = (1.0, 0.75, 0.5)
    """Elastic depth multipliers (share of layers kept), stored sorted descending."""
    recipe: str = "dynabert"
    """Elastic-training recipe (supernet/recipes.py): "dynabert" (every width, then every width x depth,
    two stages), "sandwich" (two stages, largest + smallest + k random subnets per step), "layerdrop"
    (stage W, then random layer sets), "single-stage" (one width x depth stage from the fixed teacher,
    largest + smallest + k random subnets per step; uses stage_wd's budget, stage_w is not run)."""
    num_random_subnets: int = 2
    """sandwich and single-stage: random subnets per step besides the largest and smallest."""
    inplace_distill: bool = False
    """single-stage: the largest subnet learns from the gold labels and teaches the others (BigNAS);
    the fixed teacher is not run during the stage."""
    per_layer_sampling: bool = False
    """single-stage: the random subnets draw heads and FFN width per layer (trains the subnets
    search.py --per-layer looks for)."""
    smallest_weight: float = 1.0
    """single-stage: loss weight of the smallest subnet (the others weigh 1); above 1 it gets a
    larger share of every update, at no extra compute."""
    small_bias: float = 0.0
    """single-stage: the random subnets draw each width and depth multiplier m with probability
    proportional to m ** -small_bias; 0 = uniform, 1 = width 0.25 four times as often as width 1."""
    layerdrop: float = 0.0
    """layerdrop recipe: probability of skipping each layer in stage W x D."""
    layerdrop_depth_scaled: bool = False
    """layerdrop recipe: scale the skip probability with layer depth (deeper layers dropped more often)."""
    mixed_precision: str = "no"
    """Autocast mode: "no" or "bf16"."""
    report_to: str = "none"
    """Experiment tracker: "wandb" (offline by default) or "none"."""
    wandb_project: str = "supernet"
    """Weights & Biases project name when ``report_to`` is "wandb"."""
    log_every: int = 10
    """Optimizer steps between metric logs."""
    checkpoint_every: int = 200
    """Optimizer steps between checkpoints; 0 = only at stage ends."""
    keep_last_checkpoints: int = 2
    """Step checkpoints kept on disk; older ones are deleted. 0 keeps one while training (to resume
    from) and deletes it once the supernet is saved (a BERT-base checkpoint is ~1.3 GB)."""
    resume: bool = False
    """Continue from the newest checkpoint in ``output_dir`` (refused if the config changed)."""
    data: DataConfig = field(default_factory=DataConfig)
    """Reading, tokenising and splitting the task."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """Where the distillation teacher comes from."""
    importance: ImportanceConfig = field(default_factory=ImportanceConfig)
    """Importance-based reordering before elastic training."""
    stage_w: StageConfig = field(default_factory=StageConfig)
    """Stage 1: elastic width, full depth, distilled from the teacher."""
    stage_wd: StageConfig = field(default_factory=StageConfig)
    """Stage 2: elastic width and depth, distilled from the stage-1 net."""
    final_finetune: StageConfig = field(default_factory=_final_finetune_default)
    """Optional plain fine-tuning of the supernet after distillation; epochs 0 = off."""
    distill: DistillConfig = field(default_factory=DistillConfig)
    """Distillation loss weights and teacher choice."""

    def _validate(self) -> None:
        _non_empty(self, "model", "task", "output_dir", "wandb_project")
        _non_negative(self, "seed")
        _positive(self, "learning_rate", "max_grad_norm")
        _non_negative(self, "weight_decay")
        _in_unit_interval(self, "warmup_ratio")
        # 1 would freeze the average at the first step's weights.
        _in_unit_interval(self, "ema_decay")
        _positive(self, "batch_size", "eval_batch_size", "gradient_accumulation_steps")
        _normalise_mults(self, "width_mults")
        _normalise_mults(self, "depth_mults")
        from supernet.recipes import recipe_names

        _one_of(self, "recipe", recipe_names())
        _non_negative(self, "num_random_subnets")
        _positive(self, "smallest_weight")
        _non_negative(self, "small_bias")
        _in_unit_interval(self, "layerdrop")
        # Each option belongs to one recipe; set on another it would silently do nothing.
        _check(
            self.recipe == "layerdrop" or self.layerdrop == 0,
            "layerdrop",
            f"works with recipe=layerdrop only; set layerdrop=0 or recipe=layerdrop (recipe is {self.recipe!r})",
        )
        _check(
            self.recipe != "layerdrop" or self.layerdrop > 0,
            "layerdrop",
            "must be > 0 with recipe=layerdrop",
        )
        # A preset may set single-stage's options (rt-minilm.yaml weights the smallest subnet), so
        # the message says how to switch such a preset to another recipe.
        for key, neutral in SINGLE_STAGE_NEUTRAL.items():
            shown = str(neutral).lower() if isinstance(neutral, bool) else f"{neutral:g}"
            _check(
                self.recipe == "single-stage" or getattr(self, key) == neutral,
                key,
                f"works with recipe=single-stage only; set {key}={shown} or recipe=single-stage "
                f"(recipe is {self.recipe!r})",
            )
        _one_of(self, "mixed_precision", ("no", "bf16"))
        _one_of(self, "report_to", ("wandb", "none"))
        _positive(self, "log_every")
        _non_negative(self, "checkpoint_every", "keep_last_checkpoints")


def check_recipe_options(cfg: TrainConfig) -> None:
    """Refuse options another recipe reads, set away from their defaults: they would do nothing.

    Checked before a new run trains (train.py), not on every load: a run saved before this check,
    with such an option, still searches, exports and resumes.

    Raises:
        ConfigError: naming the option, its neutral value and the recipes that read it.
    """
    from supernet.recipes import Sandwich, SingleStage, two_stage_recipes

    default = TrainConfig.__dataclass_fields__["num_random_subnets"].default
    if cfg.recipe not in (Sandwich.name, SingleStage.name) and cfg.num_random_subnets != default:
        raise ConfigError(
            f"num_random_subnets works with recipe={Sandwich.name} or {SingleStage.name} only; set "
            f"num_random_subnets={default} or one of those recipes (recipe is {cfg.recipe!r})",
            key="num_random_subnets",
        )
    two_stage = two_stage_recipes()
    if cfg.recipe not in two_stage and cfg.distill.teacher_width != "same":
        raise ConfigError(
            f"distill.teacher_width works with the two-stage recipes only ({', '.join(two_stage)}); set "
            f"distill.teacher_width=same or one of those recipes (recipe is {cfg.recipe!r}, which has no "
            "stage-W net to take a teacher's width from)",
            key="distill.teacher_width",
        )


# The per-layer search's dev subset. A search of the packaged MiniLM supernet (rt-minilm preset, dev
# max_length 64) evaluates at most population + generations x (population - parents) = 24 + 6 x 18 =
# 132 candidates with search.py's defaults. Timed at 1 thread on 128 dev examples (process time, so
# other jobs on the machine do not count), 6 random per-layer subnets cost 5.5-14.0 ms per example,
# mean 9.0 ms (the full model 20.3 ms). With 128 examples the evolution costs 132 x 128 x 9.0 ms =
# 152 s and scoring the 5 verified subnets on the whole dev split (1057 examples) 5 x 1057 x 9.0 ms =
# 48 s: 200 s, which leaves 100 s of the 5-minute goal for the latency measurements, at 1 thread
# (2 cores only make it faster).
DEFAULT_ACCURACY_SUBSET = 128

DEFAULT_OPSET = 18
"""The ONNX opset export.py writes by default (the TorchScript exporter's native one, no conversion), and
the one search.py --backend onnxruntime and its figures are written at."""

DTYPE_NAMES = ("float32", "bfloat16", "float16")
"""The types subnets can be timed in (`SearchConfig.dtype`; torch's dtypes of those names)."""


DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:[0-9]+)?)$")
"""The devices latency can be measured on."""


@dataclass(kw_only=True)
class SearchConfig(_Config):
    """Everything ``supernet-search`` needs: the run, the latency budget and how latency is measured."""

    run: str
    """Run directory written by ``supernet-train``."""
    latency_budget_ms: float | None = None
    """Latency budget per batch in milliseconds; None reports the whole accuracy/latency front."""
    device: str = "cpu"
    """Device latency is measured on ("cpu", "cuda", "cuda:1", ...)."""
    backend: str = "torch"
    """Runtime latency is measured with: "torch" or "onnxruntime"."""
    int8: bool = False
    """With onnxruntime: measure the int8 graph ``export.py --int8`` writes."""
    dtype: str = "float32"
    """With torch: the type subnets are timed in ("float32", "bfloat16", "float16")."""
    batch_size: int = 1
    """Batch size of the latency measurement."""
    seq_len: int = 128
    """Sequence length of the latency measurement."""
    num_threads: int | None = None
    """CPU threads during measurement; None keeps the runtime's default."""
    warmup: int = 5
    """Untimed runs before measuring."""
    repeats: int = 30
    """Timed runs per measurement (the median is used)."""
    per_layer: bool = False
    """Build the latency model from per-layer measurements instead of timing each candidate."""
    population: int = 24
    """Evolutionary search: candidates per generation."""
    generations: int = 6
    """Evolutionary search: generations after the initial population."""
    seed: int = 0
    """Seed of the evolutionary search (and of its dev subset)."""
    accuracy_subset: int | None = DEFAULT_ACCURACY_SUBSET
    """Evolutionary search: dev examples (a fixed, seeded, stratified subset) a candidate's accuracy is
    estimated on; the subnets it keeps are then scored on the whole dev split. None = the whole split."""

    def _validate(self) -> None:
        _non_empty(self, "run", "device")
        _check(
            bool(DEVICE_PATTERN.match(self.device)),
            "device",
            f"must be 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}",
        )
        _positive_or_none(self, "latency_budget_ms", "accuracy_subset")
        _one_of(self, "backend", ("torch", "onnxruntime"))
        _check(
            not self.int8 or self.backend == "onnxruntime",
            "int8",
            "needs backend onnxruntime (--backend onnxruntime)",
        )
        _one_of(self, "dtype", DTYPE_NAMES)
        _check(
            self.dtype == "float32" or self.backend == "torch",
            "dtype",
            f"{self.dtype} needs backend torch: the ONNX graphs are float32 (or int8 with --int8)",
        )
        _positive(self, "batch_size", "seq_len", "repeats")
        # Each generation breeds from two parents at least.
        _check(self.population >= 2, "population", f"must be >= 2, got {self.population!r}")
        _positive_or_none(self, "num_threads")
        _non_negative(self, "warmup", "generations", "seed")


@dataclass(kw_only=True)
class ExportConfig(_Config):
    """Everything ``supernet-export`` needs: which subnet of which run, and the output formats."""

    run: str
    """Run directory written by ``supernet-train``."""
    subnet: str = "best"
    """Subnet to cut: "best" (the search result) or a subnet spec/name understood by the exporter."""
    out: str | None = None
    """Output folder; None puts it inside the run directory."""
    onnx: bool = True
    """Also write an ONNX graph next to the Hugging Face folder."""
    int8: bool = False
    """Also write a dynamically quantised int8 variant."""
    opset: int = DEFAULT_OPSET
    """ONNX opset version."""

    def _validate(self) -> None:
        _non_empty(self, "run", "subnet", "out")
        _positive(self, "opset")


# --------------------------------------------------------------------------------------------------
# Generic type handling
# --------------------------------------------------------------------------------------------------


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _type_name(tp: Any) -> str:
    """Human name of a field type for error messages ("int", "float or None", "a list of float")."""
    if tp is type(None):
        return "None"
    if _is_union(tp):
        return " or ".join(_type_name(arg) for arg in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin in (tuple, list) or tp in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if len(set(args)) == 1 else "a list"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


_FAIL = object()


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to field type ``tp`` or raise a :class:`ConfigError` naming ``key``."""
    result = _try_coerce(value, tp, key)
    if result is _FAIL:
        # YAML reads a bare ~ (and null) as nothing: `output_dir: ~` meant the home folder.
        hint = (
            "; in YAML a bare ~ or null is nothing: quote it ('~') for the home folder"
            if value is None and key == "output_dir"
            else ""
        )
        raise _field_error(
            key, f"must be {_type_name(tp)}, got {value!r} ({type(value).__name__}){hint}", quoted=True
        )
    return result


def _try_coerce(value: Any, tp: Any, key: str) -> Any:
    """Conversion behind :func:`_coerce`; returns ``_FAIL`` instead of raising on a type mismatch."""
    if tp is Any:
        return value
    if tp is type(None):
        return None if value is None else _FAIL
    if _is_union(tp):
        for member in typing.get_args(tp):
            result = _try_coerce(value, member, key)
            if result is not _FAIL:
                return result
        return _FAIL
    origin = typing.get_origin(tp)
    if origin in (tuple, list) or tp in (tuple, list):
        # YAML only has lists; tuples are what the dataclasses store so configs stay hashable.
        if not isinstance(value, (list, tuple)):
            return _FAIL
        args = typing.get_args(tp)
        if not args:
            items: list[Any] = list(value)
        elif len(args) == 2 and args[1] is Ellipsis:
            items = [_try_coerce(v, args[0], key) for v in value]
        elif len(args) == len(value):
            items = [_try_coerce(v, a, key) for v, a in zip(value, args, strict=True)]
        else:
            return _FAIL
        if any(item is _FAIL for item in items):
            return _FAIL
        return tuple(items) if (origin or tp) is tuple else items
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if value is None:
            # A section written as ``data:`` with every entry commented out means "all defaults".
            value = {}
        if not isinstance(value, Mapping):
            return _FAIL
        return _build(tp, value, key + ".", [key + "." + k for k in dotted_keys(tp)])
    if tp is bool:
        return value if isinstance(value, bool) else _FAIL
    # bool is a subclass of int, but "batch_size: true" is always a mistake.
    if isinstance(value, bool):
        return _FAIL
    if tp is float:
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            # `learning_rate=nan` on the command line is a string to YAML (its NaN is `.nan`).
            raise _field_error(key, f"must be a finite number, got {value.strip()}", quoted=True)
        if not isinstance(value, (int, float)):
            return _FAIL
        if not math.isfinite(value):
            # .inf passed every range check and surfaced as a non-finite loss after the teacher.
            raise _field_error(key, f"must be a finite number, got {value!r}", quoted=True)
        return float(value)
    if tp is int:
        return value if isinstance(value, int) else _FAIL
    if isinstance(tp, type):
        return value if isinstance(value, tp) else _FAIL
    return value


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass inside ``tp`` (also inside ``X | None``), or None."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if _is_union(tp):
        for member in typing.get_args(tp):
            found = _dataclass_of(member)
            if found is not None:
                return found
    return None


def _field_types(cls: type, prefix: str = "") -> dict[str, Any]:
    """Every dotted key of ``cls`` (sections and leaves) mapped to its type hint."""
    out: dict[str, Any] = {}
    hints = _type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = prefix + f.name
        out[key] = hints[f.name]
        nested = _dataclass_of(hints[f.name])
        if nested is not None:
            out.update(_field_types(nested, key + "."))
    return out


def dotted_keys(cls: type) -> list[str]:
    """Every key of the config dataclass `cls`, nested ones dotted (``teacher.epochs``), in field order."""
    return list(_field_types(cls))


def _unknown_key_error(key: str, candidates: Sequence[str]) -> ConfigError:
    # Keys are lower case: BATCH_SIZE means batch_size.
    close = difflib.get_close_matches(key.lower(), candidates, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}", key=key)


def _check_unknown_keys(cls: type, data: Mapping[Any, Any], prefix: str, candidates: Sequence[str]) -> None:
    """Raise on the first key of ``data`` (searched recursively) that ``cls`` does not have."""
    hints = _type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for raw_key, value in data.items():
        key = str(raw_key)
        if key not in names:
            raise _unknown_key_error(prefix + key, candidates)
        nested = _dataclass_of(hints[key])
        if nested is not None and isinstance(value, Mapping):
            _check_unknown_keys(nested, value, prefix + key + ".", candidates)


def _build(cls: type[T], data: Mapping[Any, Any], prefix: str, candidates: Sequence[str]) -> T:
    """Instantiate dataclass ``cls`` from a mapping, reporting problems with ``prefix``-qualified keys."""
    _check_unknown_keys(cls, data, prefix, candidates)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.init and required and f.name not in data:
            raise ConfigError(f"config key '{prefix + f.name}' is required", key=prefix + f.name)
    try:
        return cls(**{str(k): v for k, v in data.items()})
    except ConfigError as err:
        raise _qualify(err, prefix) from None


# --------------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars and duplicate-key detection.

    PyYAML implements YAML 1.1, where ``1e-5`` is a string (no dot), ``no``/``on``/``off`` are
    booleans, ``010`` is octal (8) and ``1:30`` base 60 (90), so ``learning_rate: 1e-5`` would fail
    the type check, ``mixed_precision: no`` would silently become False and ``seed: 010`` 8. Duplicate
    keys would otherwise be resolved silently to the last one.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key; the base class reports it properly
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_INT_TAG = "tag:yaml.org,2002:int"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _FLOAT_TAG, _INT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.2's integers: decimal (a leading zero is still decimal), 0o octal, 0x hexadecimal.
_INT_PATTERN = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_Loader.add_implicit_resolver(_INT_TAG, _INT_PATTERN, list("-+0123456789"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if not _INT_PATTERN.match(text):  # an explicit !!int tag on other text
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not an integer", node.start_mark)
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


_Loader.add_constructor(_INT_TAG, _construct_int)
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One-line description of a parser error with 1-based line and column."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if mark is not None:
            return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        return problem
    return " ".join(str(exc).split())


PRESET_DIR = Path(__file__).resolve().parents[1] / "configs"
"""The YAML presets shipped beside the package (absent from a wheel installed without the repository)."""


def _preset_hint(path: str) -> str:
    """'; did you mean configs/x.yaml?' for a --config that names a preset as `x`, `x.yaml` or a near miss."""
    if not (PRESET_DIR / "quickstart.yaml").is_file():  # not this repository's folder (a wheel install)
        return ""
    presets = {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}
    stem = Path(path).name.removesuffix(".yaml").removesuffix(".yml")
    close = presets.get(stem) or next(
        (presets[m] for m in difflib.get_close_matches(stem, presets, n=1, cutoff=0.75)), None
    )
    if close is None:
        return ""
    try:
        shown = close.relative_to(Path.cwd())
    except ValueError:
        shown = close
    return f"; did you mean {shown}?"


def _read_yaml_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_Loader)  # safe: _Loader derives from SafeLoader
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' not found{_preset_hint(path)}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file '{path}' is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file '{path}' is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{path}' must contain a mapping of config keys, got {type(data).__name__}"
        )
    return data


def _accepts_str(tp: Any) -> bool:
    return tp is str or (_is_union(tp) and str in typing.get_args(tp))


def _parse_override(text: str, field_type: Any) -> Any:
    """Parse the value of one ``key=value`` override."""
    try:
        value = yaml.load(text, Loader=_Loader)  # safe: _Loader derives from SafeLoader
    except yaml.YAMLError as exc:
        if _accepts_str(field_type):
            return text.strip()
        raise ConfigError(f"override value '{text}' is not valid YAML: {_yaml_problem(exc)}") from None
    # For text fields the user means the literal text: "model=123" is a folder name, not a number,
    # and "output_dir=~" the home folder, not YAML's null (where the field takes no null).
    home = value is None and field_type is str and text.strip().startswith("~")
    if _accepts_str(field_type) and (value is not None or home) and not isinstance(value, str):
        return text.strip()
    return value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *sections, leaf = key.split(".")
    node = data
    for section in sections:
        child = node.get(section)
        if not isinstance(child, dict):
            child = node[section] = {}
        node = child
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        # "data={max_length: 64}" updates the section instead of discarding the file's other entries.
        for sub_key, sub_value in value.items():
            _set_dotted(node[leaf], str(sub_key), sub_value)
    else:
        node[leaf] = value


_SAMPLING_HINT = "sampling=grid is recipe=dynabert (recipe=layerdrop with layerdrop > 0), sampling=sandwich is recipe=sandwich"


def _migrate_train_config(data: dict[str, Any]) -> None:
    """Rewrite keys of older run configs (config.yaml of runs made before recipes) in place."""
    if "sampling" not in data or "recipe" in data:
        return
    sampling = data.pop("sampling")
    if sampling == "sandwich":
        data["recipe"] = "sandwich"
    elif sampling == "grid":
        data["recipe"] = "layerdrop" if float(data.get("layerdrop") or 0) > 0 else "dynabert"
    else:
        raise ConfigError(f"config key 'sampling' was replaced by 'recipe'; {_SAMPLING_HINT}", key="sampling")


def load_config(cls: type[T], path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> T:
    """Load a config dataclass from a YAML file plus ``key=value`` command-line overrides.

    Override values are parsed as YAML (``1e-5``, ``true``, ``[1.0, 0.5]``, ``null`` all work);
    for text fields the raw text is kept, so ``model=123`` means the folder "123". Nested fields use
    dotted keys (``data.max_length=64``). Overrides are applied in order, after the file.

    Args:
        cls: The top-level config dataclass, e.g. :class:`TrainConfig`.
        path: YAML file to start from, or None to start from the defaults.
        overrides: ``key=value`` strings.

    Returns:
        The validated config instance.

    Raises:
        ConfigError: With a one-line message naming the file or the offending key.
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"load_config needs a dataclass type, got {cls!r}")
    data = _read_yaml_file(os.fspath(path)) if path is not None else {}
    from_file = copy.deepcopy(data)
    if cls is TrainConfig:
        try:
            _migrate_train_config(data)
        except ConfigError as err:
            raise _in_file(err, path) from None
    types_by_key = _field_types(cls)
    candidates = list(types_by_key)
    overridden: list[str] = []
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{override}' must look like key=value")
        if cls is TrainConfig and key == "sampling":
            raise ConfigError(f"config key 'sampling' was replaced by 'recipe'; {_SAMPLING_HINT}", key=key)
        if key not in types_by_key:
            raise _unknown_key_error(key, candidates)
        value = _parse_override(text, types_by_key[key])
        section = _dataclass_of(types_by_key[key])
        if section is not None and (value is None or value == {}):
            # "teacher=" would reset every key of the section to its default, the file's included.
            example = dataclasses.fields(section)[0].name
            raise ConfigError(
                f"override '{override.strip()}' sets no key of section '{key}': set them one by one "
                f"({key}.{example}=...) or as a mapping ({key}={{{example}: ...}})",
                key=key,
            )
        if not text.strip() and types_by_key[key] is str:
            raise ConfigError(
                f"override '{key}=' has no value; config key '{key}' must not be empty", key=key
            )
        _set_dotted(data, key, value)
        overridden.append(key)
    try:
        return _build(cls, data, "", candidates)
    except ConfigError as err:
        if path is None or _set_by_override(err.key, overridden):
            raise
        if not from_file:
            raise ConfigError(
                f"config file '{os.fspath(path)}' sets no config keys; {err}", key=err.key
            ) from None
        # The file is named where the key is in it, or is a required key it lacks; a check across
        # keys that an override tripped (recipe=layerdrop against the default layerdrop 0) names none.
        if err.key is None:
            in_file = not overridden
        else:
            in_file = _in_mapping(from_file, err.key) or str(err).endswith("is required")
        if in_file:
            raise _in_file(err, path) from None
        raise


def _set_by_override(key: str | None, overridden: Sequence[str]) -> bool:
    """Whether an override set config key `key` (dotted), a section holding it, or a key inside it."""
    return key is not None and any(
        key == o or key.startswith(o + ".") or o.startswith(key + ".") for o in overridden
    )


def _in_mapping(data: Mapping[Any, Any], key: str) -> bool:
    """Whether dotted `key` is set in `data` (a config file's mapping, sections nested)."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _in_file(err: ConfigError, path: str | os.PathLike[str] | None) -> ConfigError:
    """`err` said with the config file its value came from (none: `err` itself)."""
    return err if path is None else ConfigError(f"{os.fspath(path)}: {err}", key=err.key)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Convert a config dataclass to a plain dict that ``yaml.safe_dump`` accepts.

    Args:
        cfg: A config dataclass instance (nested dataclasses become dicts, tuples become lists).

    Returns:
        A new dict in field order.
    """
    if not (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)):
        raise TypeError(f"config_to_dict needs a dataclass instance, got {type(cfg).__name__}")
    plain: dict[str, Any] = _to_plain(cfg)
    return plain


def save_config(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write a config as YAML, atomically so a crash never leaves a half-written run config.

    Args:
        cfg: A config dataclass instance or a plain dict (e.g. from :func:`config_to_dict`).
        path: Destination file; its parent directories are created.
    """
    data = _to_plain(cfg) if isinstance(cfg, Mapping) else config_to_dict(cfg)
    atomic_write_text(path, config_yaml(data))


class _Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes the text `_Loader` would read as a number ("08", "0o17", "1e5").

    PyYAML's own (YAML 1.1) rules already quote what YAML 1.1 reads as another type ('no', '010');
    the rules are added to them, not put in their place, so a config.yaml written before reads back
    to the same text (train.py knows its own config.yaml by it)."""


for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        if _tag in (_INT_TAG, _FLOAT_TAG):
            _Dumper.add_implicit_resolver(_tag, _regexp, [_first])


def config_yaml(data: Mapping[str, Any]) -> str:
    """The text `save_config` writes for a plain config dict (train.py knows its own config.yaml by it)."""
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


_MISSING_SHOWN = "<missing>"


def _flatten(data: Mapping[Any, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, _to_plain(value)


def _ignored(key: str, ignore: Collection[str]) -> bool:
    return any(key == name or key.startswith(name + ".") for name in ignore)


def diff_configs(
    a: Mapping[str, Any] | object, b: Mapping[str, Any] | object, *, ignore: Collection[str] = ("resume",)
) -> list[str]:
    """List the dotted keys whose values differ between two config dicts.

    Used to refuse ``resume`` when the config changed since the run started. Tuples and lists with
    the same items compare equal, as do ``1`` and ``1.0``.

    Args:
        a: The old config as a dict (e.g. the run's saved config); dataclass instances work too.
        b: The new config as a dict; dataclass instances work too.
        ignore: Dotted keys (or whole sections) to skip.

    Returns:
        Lines like ``"learning_rate: 2e-05 -> 3e-05"`` in ``a``'s key order, then keys only in ``b``;
        a key missing on one side shows as ``<missing>``. Empty when nothing differs.
    """
    flat_a = dict(_flatten(a if isinstance(a, Mapping) else config_to_dict(a)))
    flat_b = dict(_flatten(b if isinstance(b, Mapping) else config_to_dict(b)))
    keys = list(flat_a) + [k for k in flat_b if k not in flat_a]
    lines: list[str] = []
    for key in keys:
        if _ignored(key, ignore):
            continue
        old = flat_a.get(key, _MISSING_SHOWN)
        new = flat_b.get(key, _MISSING_SHOWN)
        if key in flat_a and key in flat_b and old == new:
            continue
        old_shown = old if key not in flat_a else repr(old)
        new_shown = new if key not in flat_b else repr(new)
        lines.append(f"{key}: {old_shown} -> {new_shown}")
    return lines

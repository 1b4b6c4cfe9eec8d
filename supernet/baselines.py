"""Seed-method baselines for the accuracy-latency benchmark, built from supernet's own pieces.

Every baseline starts from the same fine-tuned teacher and ends as a dense model of real shapes,
cut by `supernet.export.get_active_subnet`, so it is timed by the same code as the DynaBERT
subnets (`measure_models`, interleaved like `supernet.latency.measure_subnets`):

* head pruning (Michel et al., 2019, "Are Sixteen Heads Really Better than One?"): head-gate
  gradient importance (`supernet.importance`), normalised per layer by its L2 norm; each layer keeps
  its `keep` most important heads (`prune_heads`). Reordering heads by importance
  (`supernet.reorder.reorder_by_importance`) and keeping the first `keep` is exactly the per-layer
  subnet ``SubnetConfig(heads=(keep,) * L, ffn=(F,) * L)``;
* layer pruning: keep the `keep` layers whose removal costs the most dev loss
  (`ImportanceScores.layer`; `layers_to_keep`, `prune_layers`);
* DistilBERT-style student (Sanh et al., 2019): the teacher's every other layer
  (`distilbert_student`), trained with hard CE + soft CE (temperature 2) + cosine loss on the last
  hidden state (`DISTILBERT_LOSS`);
* layer skipping without retraining (`skip_layers`, DynaBERT's depth rule), of the teacher or of a
  LayerDrop-trained model (Fan et al., 2019).

`finetune` is the small shared training loop (the trainer's optimiser recipe: AdamW with no decay
on biases and LayerNorms, linear warmup and decay, gradient clipping; its losses:
`supernet.distill.distill_loss`). The rest of the module turns measured rows into the benchmark's
outputs: `aggregate_rows` (mean and std over seeds), `check_targets` and `check_dominance`
(PASS/MISS), `format_markdown` and `replace_section` (the BENCHMARKS.md section between markers).
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from supernet.convert import is_supernet, supernet_state, to_supernet
from supernet.data import make_dataloader
from supernet.distill import LossWeights, distill_loss
from supernet.export import get_active_subnet
from supernet.importance import ImportanceScores
from supernet.io import atomic_write_text
from supernet.latency import measure_models
from supernet.progress import progress_bar
from supernet.reorder import reorder_by_importance
from supernet.subnet import MAX_NET, SubnetConfig, active_subnet, set_active_subnet
from supernet.tasks import batch_to, model_inputs, output_logits
from supernet.trainer import TrainingError, _seed_of

__all__ = [
    "DISTILBERT_LOSS",
    "HARD_LABELS",
    "KD_LOSS",
    "TARGETS",
    "BenchRow",
    "Check",
    "FinetuneResult",
    "aggregate_rows",
    "check_dominance",
    "check_targets",
    "cut_subnet",
    "distilbert_student",
    "finetune",
    "format_markdown",
    "head_pruning_config",
    "layers_to_keep",
    "measure_models",
    "normalise_head_importance",
    "prune_heads",
    "prune_layers",
    "replace_section",
    "skip_layers",
    "source_subnet",
    "top_heads",
    "train_batches",
]

Batch = Mapping[str, torch.Tensor]

HARD_LABELS = LossWeights(logit=0.0, hidden=0.0, hard=1.0)
"""Plain fine-tuning: cross-entropy against the gold labels only."""
KD_LOSS = LossWeights(logit=1.0, hidden=0.0, hard=1.0, temperature=1.0)
"""Gold labels plus the teacher's logits (soft CE): the pruning baselines' fine-tuning loss."""
DISTILBERT_LOSS = LossWeights(logit=1.0, hidden=0.0, hard=1.0, cosine=1.0, temperature=2.0)
"""Sanh et al. (2019): hard CE + soft CE at temperature 2 + cosine between hidden states."""

TARGETS: tuple[tuple[str, float], ...] = (("w1.00-d1.00", 0.5), ("w0.50-d1.00", 1.5), ("w0.25-d0.50", 5.0))
"""(DynaBERT subnet, allowed test-accuracy drop below the fine-tuned teacher in points)."""


# --------------------------------------------------------------------------- cutting dense models


def _supernet_copy(model: nn.Module) -> nn.Module:
    """A converted deep copy of `model` (the original is never modified)."""
    clone = copy.deepcopy(model)
    return clone if is_supernet(clone) else to_supernet(clone)


def cut_subnet(model: nn.Module, cfg: SubnetConfig) -> nn.Module:
    """A standalone dense model of subnet `cfg` of `model` (stock or converted; left unchanged).

    Args:
        model: a transformers classifier, converted by `to_supernet` or not.
        cfg: the subnet (any `SubnetConfig`, per-layer ones included).

    Returns:
        The dense model (`get_active_subnet`), in eval mode; its config records `cfg`
        (`source_subnet` reads it back).
    """
    if is_supernet(model):
        previous = active_subnet(model)
        set_active_subnet(model, cfg)
        try:
            dense = get_active_subnet(model)
        finally:
            set_active_subnet(model, previous)
    else:
        # Converting in place would change the caller's model: convert a copy instead.
        sn = _supernet_copy(model)
        set_active_subnet(sn, cfg)
        dense = get_active_subnet(sn)
    return dense.eval()


def source_subnet(dense: nn.Module) -> SubnetConfig:
    """The subnet of the original architecture a dense model from `cut_subnet` implements.

    A model that is not a cut (e.g. the stock teacher) is the whole network: `MAX_NET`.
    """
    source = getattr(getattr(dense, "config", None), "supernet_source", None)
    if not source:
        return MAX_NET
    return SubnetConfig.from_dict(dict(source["spec"]))


def normalise_head_importance(head: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Michel et al. (2019): divide each layer's head importance [L, H] by that layer's L2 norm.

    Normalising does not change the order of heads inside a layer (so it does not change which
    heads per-layer pruning keeps); it makes the scores of different layers comparable.
    """
    if head.dim() != 2:
        raise ValueError(f"head importance must be [layers, heads], got shape {tuple(head.shape)}")
    head = head.float()
    return head / head.norm(p=2, dim=1, keepdim=True).clamp_min(eps)


def top_heads(head: torch.Tensor, keep: int) -> torch.Tensor:
    """Per layer, the original indices of the `keep` most important heads, most important first.

    Ties keep the lower index first (the stable order `reorder_by_importance` uses).

    Args:
        head: importance [L, H] (raw or normalised).
        keep: heads kept per layer, 1..H.

    Returns:
        [L, keep] long tensor.
    """
    num_heads = head.shape[1]
    if not 1 <= keep <= num_heads:
        raise ValueError(f"keep must be in [1, {num_heads}] heads per layer, got {keep}")
    order = torch.sort(normalise_head_importance(head), dim=1, descending=True, stable=True).indices
    return order[:, :keep]


def head_pruning_config(num_layers: int, ffn_dim: int, keep: int) -> SubnetConfig:
    """The per-layer subnet of head pruning: `keep` heads in every layer, every FFN neuron and layer."""
    return SubnetConfig(heads=(keep,) * num_layers, ffn=(ffn_dim,) * num_layers)


def prune_heads(model: nn.Module, scores: ImportanceScores, keep: int) -> nn.Module:
    """Michel et al.'s head pruning: keep each layer's `keep` most important heads, as a dense model.

    Heads are reordered by their per-layer normalised importance (the FFN keeps its order) and the
    first `keep` of every layer are cut out with `get_active_subnet`. Head i of the dense model's
    layer l is head ``top_heads(scores.head, keep)[l, i]`` of `model`, weights unchanged.

    Args:
        model: the fine-tuned teacher (stock or converted; not modified).
        scores: its importance scores (only `head` [L, H] is used).
        keep: heads kept per layer.

    Returns:
        The dense pruned model, in eval mode.
    """
    sn = _supernet_copy(model)
    arch = supernet_state(sn).arch
    if tuple(scores.head.shape) != (arch.num_layers, arch.num_heads):
        raise ValueError(
            f"head scores have shape {tuple(scores.head.shape)}, expected {(arch.num_layers, arch.num_heads)}"
        )
    if not 1 <= keep <= arch.num_heads:
        raise ValueError(f"keep must be in [1, {arch.num_heads}] heads per layer, got {keep}")
    # All-equal neuron scores: the stable sort leaves every FFN in its original order.
    order = ImportanceScores(
        head=normalise_head_importance(scores.head),
        neuron=torch.zeros(arch.num_layers, arch.ffn_dim),
        layer=torch.zeros(arch.num_layers),
    )
    reorder_by_importance(sn, order)
    return cut_subnet(sn, head_pruning_config(arch.num_layers, arch.ffn_dim, keep))


def layers_to_keep(layer_scores: torch.Tensor, keep: int) -> tuple[int, ...]:
    """Indices of the `keep` most important layers (largest dev-loss increase when skipped), ascending.

    Ties go to the lower layer index.
    """
    num_layers = int(layer_scores.numel())
    if not 1 <= keep <= num_layers:
        raise ValueError(f"keep must be in [1, {num_layers}] layers, got {keep}")
    order = torch.sort(layer_scores.float().flatten(), descending=True, stable=True).indices
    return tuple(sorted(int(i) for i in order[:keep]))


def prune_layers(model: nn.Module, layers: Sequence[int]) -> nn.Module:
    """A dense model of `model`'s layers `layers` (in order), everything else unchanged."""
    return cut_subnet(model, SubnetConfig(layers=tuple(sorted(int(i) for i in layers))))


def skip_layers(model: nn.Module, depth_mult: float) -> nn.Module:
    """Layer skipping by DynaBERT's depth rule (`supernet.kept_layers`): d=0.5 keeps every other layer."""
    return cut_subnet(model, SubnetConfig(depth_mult=depth_mult))


def distilbert_student(teacher: nn.Module, layers: Sequence[int] | None = None) -> nn.Module:
    """Sanh et al.'s initialisation: a student made of the teacher's every other layer.

    Args:
        teacher: the fine-tuned teacher (not modified).
        layers: teacher layers to copy; default 0, 2, 4, ... (half depth).

    Returns:
        The dense student (embeddings, kept layers, pooler and classifier copied), in eval mode.
    """
    if layers is None:
        num_layers = supernet_state(_supernet_copy(teacher)).arch.num_layers
        layers = tuple(range(0, num_layers, 2))
    return prune_layers(teacher, layers)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class FinetuneResult:
    """What one `finetune` call did."""

    steps: int
    """Optimizer steps taken."""
    losses: list[float]
    """Total training loss of every step, in order."""
    seconds: float
    """Wall time of the loop."""

    def mean_loss(self, first: bool, fraction: float = 0.1) -> float:
        """Mean loss over the first (or last) `fraction` of the steps (at least one step)."""
        n = max(1, int(len(self.losses) * fraction))
        window = self.losses[:n] if first else self.losses[-n:]
        return statistics.fmean(window)


def train_batches(
    split: Any, tokenizer: PreTrainedTokenizerBase, batch_size: int, *, seed: int, stage: str
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless shuffled training batches, epoch after epoch, ordered like the trainer's.

    Epoch e is shuffled with the trainer's seed of ``(seed, stage, e)``, so two baselines with the
    same `seed` and `stage` see the same batches.
    """
    epoch = 0
    while True:
        seed_e = _seed_of(seed, stage, epoch)
        yield from make_dataloader(split, tokenizer, batch_size, shuffle=True, seed=seed_e)
        epoch += 1


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # The trainer's grouping: no decay on biases and LayerNorm weights.
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]


def finetune(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    steps: int,
    learning_rate: float,
    teacher: nn.Module | None = None,
    weights: LossWeights = HARD_LABELS,
    hidden_pairs: Sequence[tuple[int, int]] = ((-1, -1),),
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    progress: bool = False,
    desc: str = "finetune",
) -> FinetuneResult:
    """Train `model` for `steps` optimizer steps, in place (one batch per step).

    The loss is `supernet.distill.distill_loss` with `weights`: gold labels (`hard`), the teacher's
    logits (`logit`, soft CE at `weights.temperature`) and, for `hidden` (MSE) or `cosine`, the
    student / teacher hidden states paired by `hidden_pairs` (indices into ``hidden_states``:
    0 = embeddings, -1 = last layer). The optimiser is the trainer's: AdamW with `weight_decay`
    except on biases and LayerNorms, linear warmup over `warmup_ratio` of the steps then linear
    decay to 0, gradients clipped to `max_grad_norm`.

    Args:
        model: a transformers classifier (dense baseline model); left in eval mode.
        batches: batches with ``labels`` (e.g. `train_batches`); must yield at least `steps`.
        steps: optimizer steps.
        learning_rate: peak learning rate.
        teacher: frozen teacher; required when a teacher term has a nonzero weight.
        weights: loss weights.
        hidden_pairs: (student, teacher) hidden-state indices for the hidden / cosine terms.
        weight_decay: AdamW weight decay.
        warmup_ratio: share of the steps in linear warmup.
        max_grad_norm: gradient clipping norm.
        seed: seeds dropout.
        progress: show a progress bar.
        desc: progress bar label.

    Returns:
        Steps, per-step losses and wall time.

    Raises:
        ValueError: a teacher term without a teacher, or `batches` ran out.
        TrainingError: the loss became non-finite.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    uses_hidden = bool(weights.hidden or weights.cosine)
    if (weights.logit or uses_hidden) and teacher is None:
        raise ValueError("a teacher is needed when the logit, hidden or cosine loss weight is nonzero")
    device = next(model.parameters()).device
    model.requires_grad_(True)
    optimizer = torch.optim.AdamW(_param_groups(model, weight_decay), lr=learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), steps)
    if teacher is not None:
        teacher.eval()
    losses: list[float] = []
    started = time.perf_counter()
    rng = torch.random.fork_rng(devices=[]) if device.type == "cpu" else contextlib.nullcontext()
    with rng:
        torch.manual_seed(seed)
        model.train()
        iterator = iter(batches)
        for step in progress_bar(range(steps), desc=desc, disable=not progress):
            try:
                batch = batch_to(next(iterator), device)
            except StopIteration:
                raise ValueError(f"batches ran out after {step} of {steps} steps") from None
            inputs = model_inputs(batch)
            out = model(**inputs, output_hidden_states=uses_hidden)
            t_out = None
            if teacher is not None and (weights.logit or uses_hidden):
                with torch.no_grad():
                    t_out = teacher(**inputs, output_hidden_states=uses_hidden)
            s_hidden = t_hidden = None
            if uses_hidden and t_out is not None:
                s_hidden = [out.hidden_states[i] for i, _ in hidden_pairs]
                t_hidden = [t_out.hidden_states[j] for _, j in hidden_pairs]
            parts = distill_loss(
                output_logits(out),
                s_hidden,
                None if t_out is None else output_logits(t_out),
                t_hidden,
                batch["labels"],
                batch.get("attention_mask"),
                weights,
            )
            if not torch.isfinite(parts.total.detach()):
                raise TrainingError(
                    f"{desc}: loss is {parts.total.item()} at step {step + 1}; lower the learning rate"
                )
            parts.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(parts.total.item()))
    model.eval()
    return FinetuneResult(steps=steps, losses=losses, seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------- latency


# --------------------------------------------------------------------------- rows, checks, markdown


@dataclass(frozen=True, kw_only=True)
class BenchRow:
    """One model of the comparison: accuracy in [0, 1], latency in ms (mean over seeds if aggregated)."""

    method: str
    """"teacher", "dynabert" or a baseline's method key (e.g. "head-pruning")."""
    model: str
    """The model's name within its method (e.g. "w0.50-d1.00", "heads-6")."""
    dev_accuracy: float
    test_accuracy: float
    latency_ms: float
    params: int
    flops: int
    """Encoder FLOPs of one sequence at the latency sequence length (`supernet.count_flops`)."""
    train_seconds: float | None
    """Training wall time of the method (None: no training, e.g. layer skipping)."""
    train_note: str = ""
    """How to read `train_seconds` (e.g. "shared by all subnets", "teacher + ...")."""
    spec: dict[str, Any] = field(default_factory=dict)
    """The model's `SubnetConfig.to_dict()` relative to the teacher's architecture."""
    detail: str = ""
    """What the name does not say, shown next to it (e.g. "layers 0,1,4,5" chosen by importance)."""
    seed: int | None = None
    """The seed of this row; None for an aggregate."""
    n_seeds: int = 1
    dev_accuracy_std: float = 0.0
    test_accuracy_std: float = 0.0
    latency_ms_std: float = 0.0
    train_seconds_std: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.model)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BenchRow:
        return cls(**dict(d))


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate_rows(rows: Sequence[BenchRow]) -> list[BenchRow]:
    """Mean and sample std over seeds of every (method, model), in first-appearance order."""
    groups: dict[tuple[str, str], list[BenchRow]] = {}
    for r in rows:
        groups.setdefault(r.key, []).append(r)
    out = []
    for group in groups.values():
        first = group[0]
        times = [r.train_seconds for r in group if r.train_seconds is not None]

        def mean_std(name: str, group: list[BenchRow] = group) -> tuple[float, float]:
            values = [float(getattr(r, name)) for r in group]
            return statistics.fmean(values), _std(values)

        dev, dev_s = mean_std("dev_accuracy")
        test, test_s = mean_std("test_accuracy")
        lat, lat_s = mean_std("latency_ms")
        out.append(
            BenchRow(
                method=first.method,
                model=first.model,
                dev_accuracy=dev,
                test_accuracy=test,
                latency_ms=lat,
                params=first.params,
                flops=first.flops,
                train_seconds=statistics.fmean(times) if times else None,
                train_note=first.train_note,
                spec=first.spec,
                detail=" / ".join(dict.fromkeys(r.detail for r in group if r.detail)),
                seed=None,
                n_seeds=len(group),
                dev_accuracy_std=dev_s,
                test_accuracy_std=test_s,
                latency_ms_std=lat_s,
                train_seconds_std=_std(times),
            )
        )
    return out


@dataclass(frozen=True)
class Check:
    """One PASS/MISS line of the benchmark."""

    name: str
    passed: bool | None
    """None when the check could not be made (e.g. the subnet is not in the grid)."""
    detail: str

    @property
    def status(self) -> str:
        return "N/A" if self.passed is None else "PASS" if self.passed else "MISS"


_EPS = 1e-9  # accuracies are ratios of integers: compare with a hair of slack for float noise


def check_targets(rows: Sequence[BenchRow], targets: Sequence[tuple[str, float]] = TARGETS) -> list[Check]:
    """DynaBERT subnet test accuracy against the fine-tuned teacher's, minus an allowed drop.

    Args:
        rows: the comparison (one "teacher" row, "dynabert" rows named by subnet).
        targets: (subnet name, allowed drop in percentage points).
    """
    teacher = next((r for r in rows if r.method == "teacher"), None)
    dyna = {r.model: r for r in rows if r.method == "dynabert"}
    checks = []
    for name, drop in targets:
        label = f"DynaBERT {name} test acc >= teacher - {drop:g} pt"
        row = dyna.get(name)
        if teacher is None or row is None:
            missing = "teacher" if teacher is None else f"subnet {name}"
            checks.append(Check(label, None, f"{missing} not measured"))
            continue
        need = teacher.test_accuracy - drop / 100.0
        ok = row.test_accuracy >= need - _EPS
        checks.append(
            Check(
                label,
                ok,
                f"{100 * row.test_accuracy:.2f} vs {100 * need:.2f} needed "
                f"(teacher {100 * teacher.test_accuracy:.2f}, {100 * (row.test_accuracy - teacher.test_accuracy):+.2f} pt)",
            )
        )
    return checks


def check_dominance(rows: Sequence[BenchRow], *, latency_tolerance: float = 0.03) -> list[Check]:
    """For every baseline, is some DynaBERT subnet at least as fast and at least as accurate (test)?

    "At least as fast" allows `latency_tolerance` (relative) of measurement noise, because models of
    identical shape (e.g. DynaBERT w1.00-d0.50 and the DistilBERT-style student) have the same true
    latency. The subnet shown on a PASS is the most accurate qualifying one.

    Args:
        rows: the comparison; rows whose method is neither "teacher" nor "dynabert" are baselines.
        latency_tolerance: relative slack on latency, e.g. 0.03 = 3 %.
    """
    dyna = [r for r in rows if r.method == "dynabert"]
    checks = []
    for base in rows:
        if base.method in ("teacher", "dynabert"):
            continue
        label = f"DynaBERT dominates {base.method} {base.model}"
        fast = [r for r in dyna if r.latency_ms <= base.latency_ms * (1 + latency_tolerance)]
        both = [r for r in fast if r.test_accuracy >= base.test_accuracy - _EPS]
        here = f"{100 * base.test_accuracy:.2f}% at {base.latency_ms:.2f} ms"
        if both:
            best = max(both, key=lambda r: (r.test_accuracy, -r.latency_ms))
            slower = best.latency_ms / base.latency_ms - 1
            # A PASS that rests on the slack says so: the table alone read as "faster".
            slack = (
                f" ({100 * slower:+.1f}% latency, within the {100 * latency_tolerance:g}% tolerance)"
                if slower > 0
                else ""
            )
            checks.append(
                Check(
                    label,
                    True,
                    f"{best.model}: {100 * best.test_accuracy:.2f}% at {best.latency_ms:.2f} ms{slack} vs {here}",
                )
            )
        elif fast:
            best = max(fast, key=lambda r: (r.test_accuracy, -r.latency_ms))
            checks.append(
                Check(
                    label,
                    False,
                    f"best as fast: {best.model} {100 * best.test_accuracy:.2f}% at {best.latency_ms:.2f} ms vs {here}",
                )
            )
        else:
            checks.append(Check(label, False, f"no DynaBERT subnet is as fast as {here}"))
    return checks


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def _pm(mean: float, std: float, n: int, scale: float = 1.0, digits: int = 2) -> str:
    text = f"{scale * mean:.{digits}f}"
    return f"{text} ± {scale * std:.{digits}f}" if n > 1 else text


def format_markdown(
    rows: Sequence[BenchRow],
    checks: Sequence[Check],
    *,
    title: str,
    notes: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
) -> str:
    """The benchmark's markdown: a results table (teacher, DynaBERT subnets, baselines) and the checks.

    Args:
        rows: aggregated (or single-seed) rows, in display order.
        checks: PASS/MISS lines (`check_targets`, `check_dominance`).
        title: a heading line (without the leading ``###``).
        notes: paragraphs written between the heading and the table.
        labels: method key -> display name (default: the key).
    """
    labels = dict(labels or {})
    lines = [f"### {title}", ""]
    for note in notes:
        lines += [note, ""]
    lines += [
        "| method | model | dev acc % | test acc % | latency ms | params M | GFLOPs | train time |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        time_cell = _duration(r.train_seconds)
        if r.train_seconds is not None and r.n_seeds > 1:
            time_cell += f" ± {_duration(r.train_seconds_std)}"
        if r.train_note:
            time_cell += f" ({r.train_note})"
        lines.append(
            "| "
            + " | ".join(
                [
                    labels.get(r.method, r.method),
                    f"{r.model} ({r.detail})" if r.detail else r.model,
                    _pm(r.dev_accuracy, r.dev_accuracy_std, r.n_seeds, 100.0),
                    _pm(r.test_accuracy, r.test_accuracy_std, r.n_seeds, 100.0),
                    _pm(r.latency_ms, r.latency_ms_std, r.n_seeds),
                    f"{r.params / 1e6:.2f}",
                    f"{r.flops / 1e9:.2f}",
                    time_cell,
                ]
            )
            + " |"
        )
    if checks:
        passed = sum(c.passed is True for c in checks)
        lines += [
            "",
            f"Checks: {passed}/{len(checks)} PASS",
            "",
            "| check | result | detail |",
            "|---|---|---|",
        ]
        lines += [f"| {c.name} | **{c.status}** | {c.detail} |" for c in checks]
    return "\n".join(lines) + "\n"


def _markers(key: str) -> tuple[str, str]:
    return f"<!-- results:{key} -->", f"<!-- /results:{key} -->"


BENCHMARKS_HELP = (
    "markdown file whose section to update (default: the repository's BENCHMARKS.md, unless --out is given)"
)


def benchmarks_file(args: Any, default: Path) -> Path | None:
    """The markdown file a bench script updates a section of: --benchmarks FILE, else `default`;
    None with --no-benchmarks, or when --out is given and no --benchmarks (the repository's
    BENCHMARKS.md then quoted figures of a folder it does not hold): said in a note."""
    if args.no_benchmarks:
        return None
    if args.benchmarks is not None:
        return Path(args.benchmarks)
    if args.out is not None:
        print(
            f"note: {default.name} left as it is (--out given, no --benchmarks FILE): the results are in --out"
        )
        return None
    return default


def update_section(path: Path, key: str, body: str, *, new_file: str = "") -> bool:
    """Write `body` as section `key` of the markdown file `path` (see `replace_section`).

    A file whose markers for `key` are broken is left as it is: the error goes to stderr as one line
    and the result is False, so a bench that has already written its own results still ends cleanly.
    A missing file starts from `new_file`. A file that cannot be read or written (made read-only, or
    the disk filled, while the bench ran) is one line too.
    """
    doing = "read"
    try:
        text = path.read_text() if path.is_file() else new_file
        doing = "written"
        atomic_write_text(path, replace_section(text, key, body))
    except ValueError as err:
        print(
            f"error: {path}: {err}; {path} is left as it was (mend it or pass --no-benchmarks)",
            file=sys.stderr,
        )
        return False
    except OSError as err:
        print(
            f"error: {path} could not be {doing} ({err.strerror or err}); it is left as it was (pass another "
            "--benchmarks FILE, or --no-benchmarks)",
            file=sys.stderr,
        )
        return False
    return True


def replace_section(document: str, key: str, body: str) -> str:
    """Put `body` between ``<!-- results:<key> -->`` and ``<!-- /results:<key> -->`` in `document`.

    The old content between the markers is replaced; without the markers the section is appended.

    Raises:
        ValueError: only one of the two markers is present, or they are out of order.
    """
    start, end = _markers(key)
    i, j = document.find(start), document.find(end)
    block = f"{start}\n{body.rstrip()}\n{end}"
    if i < 0 and j < 0:
        sep = (
            "" if not document or document.endswith("\n\n") else ("\n" if document.endswith("\n") else "\n\n")
        )
        return f"{document}{sep}{block}\n"
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"malformed results markers for '{key}': need '{start}' before '{end}'")
    return document[:i] + block + document[j + len(end) :]

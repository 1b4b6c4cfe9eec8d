"""Gradient-based importance of heads, FFN neurons and layers.

* Head importance (Michel et al., 2019; DynaBERT Sec. 3.1): accumulate
  |dL/dg_{l,h}| over dev batches for per-head gates g (all ones).
* Neuron importance (DynaBERT's released code): for FFN neuron n with input
  row W1[n, :], bias b1[n] and output column W2[:, n], accumulate
  |sum(W1[n] * dW1[n]) + b1[n] * db1[n]| + |sum(W2[:, n] * dW2[:, n])| per batch,
  a first-order Taylor estimate of the loss change when the neuron is removed.
* Layer importance (LayerDrop / layer-pruning baselines): dev loss with the
  layer skipped minus the full model's dev loss.

Every scorer returns a tensor whose shape is in its name: head [L, H],
neuron [L, F], layer [L].

A batch is scored as one unit (the absolute value is taken per batch), but it is computed in
micro-batches of similar length, each padded only to its own longest sequence: the losses are
sums, so the batch's gradient and loss are the micro-batches' sums, and padding costs nothing
(on Rotten Tomatoes dev batches of 128, about half the tokens are padding).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from supernet.convert import supernet_state
from supernet.elastic.attention import head_gates
from supernet.io import atomic_write
from supernet.progress import progress_bar
from supernet.subnet import SubnetConfig, active_subnet, set_active_subnet, set_max_net
from supernet.tasks import (
    IGNORE_INDEX,
    batch_to,
    check_labelled,
    model_inputs,
    output_logits,
    task_kind_of_model,
)

__all__ = [
    "ImportanceScores",
    "compute_importance",
    "head_importance",
    "layer_importance",
    "neuron_importance",
]

Batch = Mapping[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(logits, labels) -> the batch's summed loss; a task kind's ``hard_loss(..., reduction="sum")``."""

MICRO_BATCH_SIZE = 32
"""Examples per micro-batch (see module doc); the scores do not depend on it beyond float rounding."""

_SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Classification's loss for importance: cross-entropy summed over the batch."""
    return F.cross_entropy(logits, labels, reduction="sum")


@dataclass(kw_only=True)
class ImportanceScores:
    """Importance of every head, neuron and layer of one supernet."""

    head: torch.Tensor
    """[L, H] accumulated |dL/d gate|."""
    neuron: torch.Tensor
    """[L, F] accumulated first-order Taylor scores."""
    layer: torch.Tensor
    """[L] dev-loss increase when the layer is skipped."""

    def save(self, path: str | Path) -> None:
        """Write a safetensors file (atomically: tmp name, then rename)."""
        path = Path(path)
        tensors = {"head": self.head, "neuron": self.neuron, "layer": self.layer}
        data = save({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()})
        # atomic_write, not save_file: that writes 0600, and run files are meant to be shared.
        atomic_write(path, lambda fh: fh.write(data))

    @classmethod
    def load(cls, path: str | Path) -> ImportanceScores:
        try:
            t = load_file(str(path))
        except SafetensorError as err:  # e.g. "Error while deserializing header: header too small"
            raise ValueError(
                f"{path} is not a readable importance file ({err}); delete it to recompute the scores"
            ) from err
        missing = {"head", "neuron", "layer"} - set(t)
        if missing:
            raise ValueError(f"{path} lacks importance tensors {sorted(missing)}")
        return cls(head=t["head"], neuron=t["neuron"], layer=t["layer"])


def micro_batches(batch: Batch, size: int | None = None) -> list[Batch]:
    """`batch` cut into micro-batches of at most `size` (default MICRO_BATCH_SIZE) examples of similar length.

    Each micro-batch is trimmed to its longest sequence (by ``attention_mask``) when every trimmed
    column is padding: zero mask, and ``-100`` in per-token labels. A batch without a 2-d attention
    mask, or padded on the left, is cut but not trimmed. Non-tensor entries (lists of references)
    are indexed like the tensors.
    """
    size = size or MICRO_BATCH_SIZE
    mask, labels = batch.get("attention_mask"), batch["labels"]
    if mask is None or mask.dim() != 2:
        mask = None
    order = (
        torch.arange(len(labels)) if mask is None else mask.sum(dim=1).argsort(descending=True, stable=True)
    )
    token_labels = mask is not None and torch.is_tensor(labels) and labels.shape == mask.shape
    out = []
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        width = None
        if mask is not None:
            width = int(mask[idx].sum(dim=1).max())
            padding_only = not mask[idx, width:].any()
            if token_labels:
                padding_only = padding_only and bool((labels[idx, width:] == IGNORE_INDEX).all())
            width = width if padding_only else None
        micro: dict = {}
        for key, value in batch.items():
            if not torch.is_tensor(value):
                micro[key] = [value[i] for i in idx.tolist()]
                continue
            value = value[idx]
            if width is not None and (key in _SEQUENCE_KEYS or (key == "labels" and token_labels)):
                value = value[:, :width]
            micro[key] = value
        out.append(micro)
    return out


def _loss(model: nn.Module, batch: Batch, loss: LossFn) -> torch.Tensor:
    return loss(output_logits(model(**model_inputs(batch))), batch["labels"])


def _default_loss(model: nn.Module) -> LossFn:
    """The model's task kind's loss, summed over the batch (`supernet.tasks.task_kind_of_model`)."""
    return functools.partial(task_kind_of_model(model).hard_loss, reduction="sum")


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _restore_modes(modes: dict[nn.Module, bool]) -> None:
    # Per module: `model.train(flag)` would also flip submodules the caller had put in another mode.
    for module, training in modes.items():
        module.training = training


def head_importance(model: nn.Module, batches: Iterable[Batch], loss: LossFn | None = None) -> torch.Tensor:
    """Head importance [L, H] of the max net (see module doc). Leaves no gradients behind.

    `loss`: as `compute_importance` takes it (None: the model's task kind's).
    """
    return _gradient_importance(model, batches, loss)[0]


def neuron_importance(model: nn.Module, batches: Iterable[Batch], loss: LossFn | None = None) -> torch.Tensor:
    """FFN neuron importance [L, F] of the max net (see module doc); `loss` as `head_importance`'s."""
    return _gradient_importance(model, batches, loss)[1]


def _gradient_importance(
    model: nn.Module,
    batches: Iterable[Batch],
    loss: LossFn | None = None,
    tick: Callable[[], object] = lambda: None,
) -> tuple[torch.Tensor, torch.Tensor]:
    state = supernet_state(model)
    loss = _default_loss(model) if loss is None else loss
    previous, modes = active_subnet(model), {m: m.training for m in model.modules()}
    set_max_net(model)
    # Eval mode: dropout off, so the scores are a property of the weights, not of noise.
    model.eval()
    device = _device(model)
    L, H, Fdim = state.arch.num_layers, state.arch.num_heads, state.arch.ffn_dim
    heads = torch.zeros(L, H, device=device)
    neurons = torch.zeros(L, Fdim, device=device)
    saved_grad = {id(p): p.grad for p in model.parameters()}
    saved_flag = {id(p): p.requires_grad for p in model.parameters()}
    model.requires_grad_(True)  # a frozen model still has importance
    try:
        with head_gates(state.attentions) as gates:
            for batch in batches:
                model.zero_grad(set_to_none=True)
                gates.grad = None
                for micro in micro_batches(batch):  # gradients of the summed loss add up
                    _loss(model, batch_to(micro, device), loss).backward()
                heads += gates.grad.detach().abs()
                for layer, ffn in enumerate(state.ffns):
                    w1, b1, w2 = ffn.up.weight, ffn.up.bias, ffn.down.weight
                    up = (w1 * w1.grad).sum(dim=1)  # [F]
                    if b1 is not None:
                        up = up + b1 * b1.grad
                    down = (w2 * w2.grad).sum(dim=0)  # [F]
                    neurons[layer] += up.detach().abs() + down.detach().abs()
                tick()
    finally:
        model.zero_grad(set_to_none=True)
        for p in model.parameters():
            p.grad = saved_grad[id(p)]
            p.requires_grad_(saved_flag[id(p)])
        set_active_subnet(model, previous)
        _restore_modes(modes)
    return heads.cpu(), neurons.cpu()


@torch.no_grad()
def _mean_loss(model: nn.Module, batches: list[Batch], loss: LossFn, tick: Callable[[], object]) -> float:
    device = _device(model)
    total, count = 0.0, 0
    for batch in batches:
        for micro in micro_batches(batch):
            total += _loss(model, batch_to(micro, device), loss).item()
        labels = batch["labels"]
        # Per scored unit: a tagged token (untagged ones are IGNORE_INDEX), a span end, an example.
        count += int((labels != IGNORE_INDEX).sum()) if not labels.is_floating_point() else labels.numel()
        tick()
    return total / max(count, 1)


def layer_importance(
    model: nn.Module,
    batches: Iterable[Batch],
    loss: LossFn | None = None,
    tick: Callable[[], object] = lambda: None,
) -> torch.Tensor:
    """Layer importance [L]: mean dev loss with layer l skipped minus the full model's; `loss` as
    `head_importance`'s."""
    state = supernet_state(model)
    loss = _default_loss(model) if loss is None else loss
    batch_list = list(batches)
    previous, modes = active_subnet(model), {m: m.training for m in model.modules()}
    model.eval()
    L = state.arch.num_layers
    try:
        set_max_net(model)
        base = _mean_loss(model, batch_list, loss, tick)
        scores = []
        for skip in range(L):
            if L == 1:
                scores.append(float("inf"))
                continue
            set_active_subnet(model, SubnetConfig(layers=tuple(i for i in range(L) if i != skip)))
            scores.append(_mean_loss(model, batch_list, loss, tick) - base)
    finally:
        set_active_subnet(model, previous)
        _restore_modes(modes)
    return torch.tensor(scores)


def compute_importance(
    model: nn.Module,
    batches: Iterable[Batch],
    loss: LossFn | None = None,
    *,
    progress: bool = False,
) -> ImportanceScores:
    """All three scores over the same dev batches (the iterable is consumed once).

    Args:
        model: a supernet.
        batches: dev batches (dicts of tensors) with "labels".
        loss: the task's loss, summed over the batch. None (the default) takes the model's task
            kind's (`supernet.tasks.task_kind_of_model`: cross-entropy for a sequence classifier,
            per tagged token for a tagger, per span end for a reader, MSE for one output).
        progress: show a bar over every batch pass: one backward pass for heads and neurons, then
            L + 1 forward passes for the layers (minutes on a large dev split).

    Raises:
        TypeError: `batches` is one batch (a dict), not an iterable of them.
        ValueError: no batches, or a batch without "labels" (scores of nothing would be all zeros,
            and a reorder by them would do nothing).
    """
    if isinstance(batches, Mapping):
        raise TypeError("batches must be an iterable of batches (dicts); one batch is [batch]")
    batch_list = list(batches)
    if not batch_list:
        raise ValueError("batches is empty: importance needs at least one dev batch with labels")
    for i, batch in enumerate(batch_list):
        check_labelled(batch, i, "importance is a loss's gradient on dev")
    L = supernet_state(model).arch.num_layers
    passes = 1 + 1 + (L if L > 1 else 0)
    with progress_bar(
        total=passes * len(batch_list),
        desc="importance",
        unit="batch",
        disable=not progress,
    ) as bar:
        heads, neurons = _gradient_importance(model, batch_list, loss, tick=bar.update)
        layers = layer_importance(model, batch_list, loss, tick=bar.update)
    return ImportanceScores(head=heads, neuron=neurons, layer=layers)

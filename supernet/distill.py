"""Knowledge-distillation losses for training elastic subnets from a teacher.

Pure functions on tensors (DynaBERT's logit and hidden-state losses, DistilBERT's cosine loss, plain
cross-entropy) and :func:`distill_loss`, which weights and sums them and also returns each part by
name for logging. The logit and hard terms default to classification's; other task kinds pass their
own (``supernet.tasks.TaskKind.logit_kd`` / ``hard_loss``), so this module knows no task kind.

Teacher tensors are always detached: the teacher is either a frozen model or, with in-place
distillation, the largest subnet of the same supernet, and in both cases the student's loss must not
push gradients into it. All losses are computed in float32 so bf16 autocast does not cost precision
in the softmax and the squared differences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from supernet.config import DEPTH_PAIRINGS

__all__ = [
    "DEPTH_PAIRINGS",
    "LossParts",
    "LossWeights",
    "at_least_fp32",
    "distill_loss",
    "hard_cross_entropy",
    "hidden_cosine",
    "hidden_mse",
    "masked_token_mean",
    "soft_cross_entropy",
    "teacher_hidden_targets",
]

V = TypeVar("V")


def at_least_fp32(t: Tensor) -> Tensor:
    """`t` in float32 where it is in a half-precision type (bf16/fp16 losses lose digits), else as it is
    (a float64 model's losses stay float64)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def soft_cross_entropy(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Cross-entropy of the student's softened distribution against the teacher's (Hinton et al.).

    Computes ``T**2 * mean_batch( sum_c -softmax(t / T)_c * log_softmax(s / T)_c )``. The ``T**2``
    factor keeps gradient magnitudes comparable across temperatures. At ``T = 1`` this is DynaBERT's
    ``soft_cross_entropy`` (run_glue.py: the sum over classes, the mean over the batch), so its loss
    weights carry over as they are. (TinyBERT's function of that name takes the mean over classes as
    well, its value this one divided by the class count.) When student and teacher agree, the value
    is the entropy of the (softened) teacher distribution, not zero.

    Args:
        student_logits: ``[..., num_classes]`` student logits.
        teacher_logits: Teacher logits of the same shape; detached here.
        temperature: Softmax temperature ``T > 0``.

    Returns:
        A scalar tensor.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits shape {tuple(student_logits.shape)} does not match "
            f"teacher logits shape {tuple(teacher_logits.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    teacher_probs = F.softmax(at_least_fp32(teacher_logits.detach()) / temperature, dim=-1)
    student_log_probs = F.log_softmax(at_least_fp32(student_logits) / temperature, dim=-1)
    per_example = -(teacher_probs * student_log_probs).sum(dim=-1)
    return per_example.mean() * temperature**2


def teacher_hidden_targets(
    teacher_hidden: Sequence[Tensor], kept_layers: Sequence[int], pairing: str = "same-layer"
) -> list[Tensor]:
    """The teacher hidden states a student that runs only `kept_layers` learns from, one per
    student hidden state (the embeddings' output first, then each kept layer's output).

    ``"same-layer"`` (the default): the embeddings' output with the teacher's, and each kept
    layer's output with the teacher's output of that layer. A 12-layer student at depth 0.5 runs
    layers 0, 2, ..., 10 and learns from the teacher's states 0, 1, 3, ..., 11 (`teacher_hidden[k]`
    is what enters layer k). A layer has one target at every depth.

    ``"dynabert"``, as DynaBERT's run_glue.py pairs them: the embeddings' output with the teacher's,
    the state entering each further kept layer with the teacher's state entering that layer, and the
    student's last output with the teacher's last (states 0, 2, 4, ..., 10, 12 above): the final
    state, which the classifier reads, is pulled towards the teacher's final one, but a layer's
    target moves with the depth. Measured on rt-sentences (BENCHMARKS.md, "Hidden-state pairing")
    it did no better. At full depth both rules are the identity.

    Args:
        teacher_hidden: the full-depth teacher's hidden states (embeddings + one per layer).
        kept_layers: the student's layers, ascending.
        pairing: one of `DEPTH_PAIRINGS`.
    """
    if pairing not in DEPTH_PAIRINGS:
        raise ValueError(f"pairing must be one of {DEPTH_PAIRINGS}, got {pairing!r}")
    kept = list(kept_layers)
    last = len(teacher_hidden) - 1
    if not kept or kept != sorted(kept) or kept[0] < 0 or kept[-1] >= last:
        raise ValueError(f"kept layers {kept} are not ascending layers of a {last}-layer teacher")
    index = [0, *kept[1:], last] if pairing == "dynabert" else [0, *(k + 1 for k in kept)]
    return [teacher_hidden[i] for i in index]


def _check_hidden_pairs(
    student_hidden: Sequence[Tensor], teacher_hidden: Sequence[Tensor], attention_mask: Tensor | None
) -> None:
    if len(student_hidden) != len(teacher_hidden):
        raise ValueError(
            f"got {len(student_hidden)} student hidden states but {len(teacher_hidden)} teacher hidden "
            "states; pair them up (e.g. map student layers to teacher layers) before calling"
        )
    for index, (student, teacher) in enumerate(zip(student_hidden, teacher_hidden, strict=True)):
        if student.shape != teacher.shape:
            raise ValueError(
                f"hidden state pair {index}: student shape {tuple(student.shape)} does not match "
                f"teacher shape {tuple(teacher.shape)}"
            )
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(student.shape[:2]):
            raise ValueError(
                f"hidden state pair {index}: attention mask shape {tuple(attention_mask.shape)} does not "
                f"match the [batch, seq] dims of hidden shape {tuple(student.shape)}"
            )


def masked_token_mean(per_token: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Mean of a ``[batch, seq]`` tensor over the real (mask == 1) tokens."""
    if attention_mask is None:
        return per_token.mean()
    mask = attention_mask.to(per_token.dtype)
    # clamp: an all-padding batch gives 0 instead of NaN, so one odd batch cannot poison training.
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def _sum_or_zero(losses: list[Tensor], reference: Tensor | None) -> Tensor:
    if not losses:
        device = reference.device if reference is not None else None
        return torch.zeros((), dtype=torch.float32, device=device)
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    return total


def _required(value: V | None, name: str, term: str) -> V:
    if value is None:
        raise ValueError(f"{name} is required when the {term} loss weight is nonzero")
    return value


def hidden_mse(
    student_hidden: Sequence[Tensor], teacher_hidden: Sequence[Tensor], attention_mask: Tensor | None
) -> Tensor:
    """DynaBERT's hidden-state loss: MSE per pair of hidden states, summed over the pairs.

    Unlike DynaBERT, padding positions are excluded, so the loss does not depend on how much a batch
    is padded: each pair contributes the mean of the squared differences over the real tokens and
    all hidden units.

    Args:
        student_hidden: Student hidden states, each ``[batch, seq, hidden]``, already paired with
            ``teacher_hidden`` (e.g. embeddings output plus the kept layers mapped to teacher layers).
        teacher_hidden: Teacher hidden states, same count and shapes; detached here.
        attention_mask: ``[batch, seq]`` with 1 for real tokens and 0 for padding, or None if there is
            no padding.

    Returns:
        A scalar tensor (0 for empty sequences).

    Raises:
        ValueError: If the counts differ, or a pair's shapes (or the mask shape) do not match; the
            message names the pair index and both shapes.
    """
    _check_hidden_pairs(student_hidden, teacher_hidden, attention_mask)
    losses = [
        masked_token_mean(
            (at_least_fp32(student) - at_least_fp32(teacher.detach())).pow(2).mean(dim=-1), attention_mask
        )
        for student, teacher in zip(student_hidden, teacher_hidden, strict=True)
    ]
    return _sum_or_zero(losses, attention_mask)


def hidden_cosine(
    student_hidden: Sequence[Tensor], teacher_hidden: Sequence[Tensor], attention_mask: Tensor | None
) -> Tensor:
    """DistilBERT's cosine loss: mean over real tokens of ``1 - cos(student, teacher)``, summed over pairs.

    It aligns the directions of the hidden states and ignores their norms, which makes it usable even
    where an MSE would be dominated by a few large-magnitude dimensions.

    Args:
        student_hidden: Student hidden states, each ``[batch, seq, hidden]``.
        teacher_hidden: Teacher hidden states, same count and shapes; detached here.
        attention_mask: ``[batch, seq]`` with 1 for real tokens and 0 for padding, or None.

    Returns:
        A scalar tensor (0 for empty sequences).

    Raises:
        ValueError: As :func:`hidden_mse`.
    """
    _check_hidden_pairs(student_hidden, teacher_hidden, attention_mask)
    losses = [
        masked_token_mean(
            1.0
            - F.cosine_similarity(at_least_fp32(student), at_least_fp32(teacher.detach()), dim=-1, eps=1e-8),
            attention_mask,
        )
        for student, teacher in zip(student_hidden, teacher_hidden, strict=True)
    ]
    return _sum_or_zero(losses, attention_mask)


def hard_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Plain cross-entropy against gold class labels (mean over the batch; label -100 is ignored).

    Args:
        logits: ``[batch, num_classes]`` logits.
        labels: ``[batch]`` integer class ids.

    Returns:
        A scalar tensor.
    """
    return F.cross_entropy(at_least_fp32(logits), labels.long())


@dataclass(frozen=True)
class LossWeights:
    """Weights of the distillation loss terms; a zero weight skips computing that term."""

    logit: float = 1.0
    """Weight of :func:`soft_cross_entropy` between student and teacher logits."""
    hidden: float = 0.1
    """Weight of :func:`hidden_mse` between paired hidden states."""
    hard: float = 0.0
    """Weight of :func:`hard_cross_entropy` against the gold labels."""
    cosine: float = 0.0
    """Weight of :func:`hidden_cosine` between paired hidden states."""
    temperature: float = 1.0
    """Softmax temperature of the logit term."""

    def __post_init__(self) -> None:
        for name in ("logit", "hidden", "hard", "cosine"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.logit == self.hidden == self.hard == self.cosine == 0:
            # An all-zero loss has no graph, so backward() would fail far from the cause.
            raise ValueError("at least one of the loss weights logit, hidden, hard, cosine must be > 0")


@dataclass
class LossParts:
    """A weighted total loss plus its unweighted terms for logging."""

    total: Tensor
    """Weighted sum of the terms; call ``backward()`` on this."""
    parts: dict[str, Tensor]
    """Detached, unweighted scalar terms by name ("logit_kd", "hidden_kd", "hard_ce", "cosine"); only
    the terms with a nonzero weight are present."""


def distill_loss(
    student_logits: Tensor,
    student_hidden: Sequence[Tensor] | None,
    teacher_logits: Tensor | None,
    teacher_hidden: Sequence[Tensor] | None,
    labels: Tensor | None,
    attention_mask: Tensor | None,
    weights: LossWeights,
    *,
    logit_loss: Callable[[Tensor, Tensor, float, Tensor | None], Tensor] | None = None,
    hard_loss: Callable[[Tensor, Tensor], Tensor] = hard_cross_entropy,
) -> LossParts:
    """Weighted sum of the distillation terms for one student forward pass.

    ``total = logit * soft_CE + hidden * hidden_MSE + hard * CE + cosine * hidden_cosine``. Inputs
    that only a zero-weighted term needs may be None (e.g. no teacher when only ``hard`` is on).

    Args:
        student_logits: ``[batch, num_classes]`` student logits.
        student_hidden: Student hidden states paired with ``teacher_hidden``, or None.
        teacher_logits: Teacher logits, or None.
        teacher_hidden: Teacher hidden states, or None.
        labels: ``[batch]`` gold class ids, or None.
        attention_mask: ``[batch, seq]`` 1 for real tokens, 0 for padding, or None.
        weights: Term weights and temperature.
        logit_loss: ``(student_logits, teacher_logits, temperature, attention_mask) -> scalar``, the
            "logit_kd" term; None is :func:`soft_cross_entropy` per example (regression passes an MSE,
            token classification a per-token soft cross-entropy).
        hard_loss: ``(logits, labels) -> scalar``, the "hard_ce" term (regression passes an MSE).

    Returns:
        The total and the detached unweighted parts, keyed "logit_kd", "hidden_kd", "hard_ce",
        "cosine" (only those with a nonzero weight, in that order).

    Raises:
        ValueError: If a weighted term's inputs are None, or shapes do not match.
    """
    terms: list[tuple[str, float, Tensor]] = []
    if weights.logit:
        teacher = _required(teacher_logits, "teacher_logits", "logit")
        logit_kd = (
            soft_cross_entropy(student_logits, teacher, weights.temperature)
            if logit_loss is None
            else logit_loss(student_logits, teacher, weights.temperature, attention_mask)
        )
        terms.append(("logit_kd", weights.logit, logit_kd))
    if weights.hidden:
        student_h = _required(student_hidden, "student_hidden", "hidden")
        teacher_h = _required(teacher_hidden, "teacher_hidden", "hidden")
        terms.append(("hidden_kd", weights.hidden, hidden_mse(student_h, teacher_h, attention_mask)))
    if weights.hard:
        gold = _required(labels, "labels", "hard")
        terms.append(("hard_ce", weights.hard, hard_loss(student_logits, gold)))
    if weights.cosine:
        student_h = _required(student_hidden, "student_hidden", "cosine")
        teacher_h = _required(teacher_hidden, "teacher_hidden", "cosine")
        terms.append(("cosine", weights.cosine, hidden_cosine(student_h, teacher_h, attention_mask)))

    total = terms[0][1] * terms[0][2]
    for _, weight, value in terms[1:]:
        total = total + weight * value
    return LossParts(total=total, parts={name: value.detach() for name, _, value in terms})

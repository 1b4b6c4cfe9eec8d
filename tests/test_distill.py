"""Tests for supernet.distill: each loss against hand computations, masking, gradients and LossParts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from supernet.distill import (
    LossParts,
    LossWeights,
    distill_loss,
    hard_cross_entropy,
    hidden_cosine,
    hidden_mse,
    soft_cross_entropy,
    teacher_hidden_targets,
)

LossFn = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], torch.Tensor | None], torch.Tensor]


def softmax_list(xs: list[float]) -> list[float]:
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


# ---------------------------------------------------------------- soft cross-entropy


def test_soft_cross_entropy_matches_python_loop() -> None:
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    for temperature in (1.0, 2.0, 0.5):
        expected = 0.0
        for s_row, t_row in zip(student, teacher, strict=True):
            p = softmax_list([t / temperature for t in t_row])
            q = softmax_list([s / temperature for s in s_row])
            expected += -sum(pc * math.log(qc) for pc, qc in zip(p, q, strict=True))
        expected = expected / len(student) * temperature**2
        got = soft_cross_entropy(torch.tensor(student), torch.tensor(teacher), temperature)
        assert got.item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_explicit_numbers() -> None:
    # Uniform teacher over 2 classes, student logits [0, ln 3] -> q = [1/4, 3/4].
    student = torch.tensor([[0.0, math.log(3.0)]])
    teacher = torch.zeros(1, 2)
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert soft_cross_entropy(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_temperature_squared_scaling() -> None:
    student = torch.tensor([[1.0, 2.0, 0.5]])
    teacher = torch.tensor([[2.0, 0.0, 1.0]])
    temperature = 3.0
    unscaled = -(F.softmax(teacher / temperature, -1) * F.log_softmax(student / temperature, -1)).sum()
    got = soft_cross_entropy(student, teacher, temperature)
    assert got.item() == pytest.approx(unscaled.item() * temperature**2, rel=1e-6)


def test_soft_cross_entropy_equals_teacher_entropy_when_student_is_teacher() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    for temperature in (1.0, 2.0):
        probs = F.softmax(logits / temperature, -1)
        entropy = -(probs * probs.log()).sum(-1).mean() * temperature**2
        got = soft_cross_entropy(logits, logits.clone(), temperature)
        assert got.item() == pytest.approx(entropy.item(), rel=1e-6)


def test_soft_cross_entropy_is_dynabert_at_t1_and_tinybert_times_num_classes() -> None:
    """DynaBERT's run_glue.py sums over classes and averages over the batch (what this computes at
    T = 1); TinyBERT's function of the same name averages over classes too."""
    student = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    teacher = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    dynabert = -(F.softmax(teacher, -1) * F.log_softmax(student, -1)).sum(-1).mean()
    tinybert = (-F.softmax(teacher, -1) * F.log_softmax(student, -1)).mean()
    assert soft_cross_entropy(student, teacher).item() == pytest.approx(dynabert.item(), rel=1e-6)
    assert soft_cross_entropy(student, teacher).item() == pytest.approx(tinybert.item() * 5, rel=1e-5)


def test_soft_cross_entropy_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError) as info:
        soft_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
    assert str(info.value) == "student logits shape (2, 3) does not match teacher logits shape (2, 4)"
    with pytest.raises(ValueError) as info:
        soft_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)
    assert str(info.value) == "temperature must be > 0, got 0.0"


# ---------------------------------------------------------------- hidden MSE


def test_hidden_mse_matches_python_loop_with_mask() -> None:
    gen = torch.Generator().manual_seed(0)
    student = [torch.randn(2, 3, 4, generator=gen) for _ in range(2)]
    teacher = [torch.randn(2, 3, 4, generator=gen) for _ in range(2)]
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    expected = 0.0
    for s, t in zip(student, teacher, strict=True):
        total, count = 0.0, 0
        for b in range(2):
            for i in range(3):
                if mask[b, i]:
                    for h in range(4):
                        total += (s[b, i, h].item() - t[b, i, h].item()) ** 2
                        count += 1
        expected += total / count
    assert hidden_mse(student, teacher, mask).item() == pytest.approx(expected, rel=1e-6)


def test_hidden_mse_explicit_numbers() -> None:
    student = [torch.tensor([[[1.0, 2.0], [5.0, 5.0]]])]
    teacher = [torch.tensor([[[0.0, 0.0], [9.0, 9.0]]])]
    mask = torch.tensor([[1, 0]])
    # only the first token counts: ((1-0)^2 + (2-0)^2) / 2
    assert hidden_mse(student, teacher, mask).item() == pytest.approx(2.5)
    # without a mask every token counts: (1 + 4 + 16 + 16) / 4
    assert hidden_mse(student, teacher, None).item() == pytest.approx(37 / 4)


def test_hidden_mse_sums_over_pairs() -> None:
    s = torch.ones(1, 2, 3)
    t = torch.zeros(1, 2, 3)
    assert hidden_mse([s, 2 * s, s], [t, t, t], None).item() == pytest.approx(1 + 4 + 1)


def test_hidden_mse_zero_when_equal() -> None:
    hidden = [torch.randn(2, 3, 4), torch.randn(2, 3, 4)]
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert hidden_mse(hidden, [h.clone() for h in hidden], mask).item() == 0.0


def test_hidden_mse_empty_and_all_padding() -> None:
    assert hidden_mse([], [], None).item() == 0.0
    s, t = torch.randn(1, 2, 3), torch.randn(1, 2, 3)
    loss = hidden_mse([s], [t], torch.zeros(1, 2))
    assert loss.item() == 0.0 and not torch.isnan(loss)


# ---------------------------------------------------------------- hidden cosine


def test_hidden_cosine_explicit_numbers() -> None:
    student = [torch.tensor([[[1.0, 0.0], [1.0, 1.0], [3.0, 3.0]]])]
    teacher = [torch.tensor([[[0.0, 2.0], [2.0, 2.0], [-1.0, 0.0]]])]
    mask = torch.tensor([[1, 1, 0]])
    # token 0 orthogonal (1 - 0), token 1 parallel (1 - 1); token 2 is padding
    assert hidden_cosine(student, teacher, mask).item() == pytest.approx(0.5)


def test_hidden_cosine_matches_python_loop() -> None:
    gen = torch.Generator().manual_seed(3)
    student = [torch.randn(2, 3, 4, generator=gen) for _ in range(2)]
    teacher = [torch.randn(2, 3, 4, generator=gen) for _ in range(2)]
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    expected = 0.0
    for s, t in zip(student, teacher, strict=True):
        terms = []
        for b in range(2):
            for i in range(3):
                if mask[b, i]:
                    u, v = s[b, i].tolist(), t[b, i].tolist()
                    dot = sum(x * y for x, y in zip(u, v, strict=True))
                    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
                    terms.append(1 - dot / norm)
        expected += sum(terms) / len(terms)
    assert hidden_cosine(student, teacher, mask).item() == pytest.approx(expected, rel=1e-5)


def test_hidden_cosine_zero_when_equal_and_scale_invariant() -> None:
    hidden = [torch.randn(2, 3, 4)]
    mask = torch.ones(2, 3)
    assert hidden_cosine(hidden, [hidden[0].clone()], mask).item() == pytest.approx(0.0, abs=1e-6)
    assert hidden_cosine(hidden, [5 * hidden[0]], mask).item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- masking and shape errors


@pytest.mark.parametrize("loss_fn", [hidden_mse, hidden_cosine])
def test_changing_pad_positions_does_not_change_loss(loss_fn: LossFn) -> None:
    gen = torch.Generator().manual_seed(1)
    student = [torch.randn(2, 4, 3, generator=gen) for _ in range(2)]
    teacher = [torch.randn(2, 4, 3, generator=gen) for _ in range(2)]
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    before = loss_fn(student, teacher, mask)
    pad = (mask == 0).unsqueeze(-1)
    garbage_student = [torch.where(pad, torch.full_like(s, 1e3), s) for s in student]
    garbage_teacher = [torch.where(pad, torch.randn(t.shape, generator=gen), t) for t in teacher]
    after = loss_fn(garbage_student, garbage_teacher, mask)
    assert after.item() == pytest.approx(before.item(), rel=1e-6)
    # and padding does count when no mask is given
    assert loss_fn(garbage_student, garbage_teacher, None).item() != pytest.approx(before.item(), rel=1e-3)


def test_adding_padding_columns_does_not_change_loss() -> None:
    gen = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen)
    mask = torch.ones(2, 3)
    padded_s = torch.cat([s, torch.randn(2, 5, 4, generator=gen)], dim=1)
    padded_t = torch.cat([t, torch.randn(2, 5, 4, generator=gen)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(2, 5)], dim=1)
    for loss_fn in (hidden_mse, hidden_cosine):
        assert loss_fn([padded_s], [padded_t], padded_mask).item() == pytest.approx(
            loss_fn([s], [t], mask).item(), rel=1e-6
        )


@pytest.mark.parametrize("loss_fn", [hidden_mse, hidden_cosine])
def test_shape_mismatch_error_names_pair_and_shapes(loss_fn: LossFn) -> None:
    student = [torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)]
    teacher = [torch.zeros(2, 3, 4), torch.zeros(2, 3, 8)]
    with pytest.raises(ValueError) as info:
        loss_fn(student, teacher, None)
    assert str(info.value) == (
        "hidden state pair 1: student shape (2, 3, 4) does not match teacher shape (2, 3, 8)"
    )


def test_count_and_mask_mismatch_errors() -> None:
    with pytest.raises(ValueError) as info:
        hidden_mse([torch.zeros(1, 2, 3)], [torch.zeros(1, 2, 3)] * 2, None)
    assert str(info.value) == (
        "got 1 student hidden states but 2 teacher hidden states; pair them up "
        "(e.g. map student layers to teacher layers) before calling"
    )
    with pytest.raises(ValueError) as info:
        hidden_cosine([torch.zeros(1, 2, 3)], [torch.zeros(1, 2, 3)], torch.ones(1, 5))
    assert str(info.value) == (
        "hidden state pair 0: attention mask shape (1, 5) does not match the [batch, seq] dims "
        "of hidden shape (1, 2, 3)"
    )


# ---------------------------------------------------------------- hard CE


def test_hard_cross_entropy_explicit_numbers() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 0.0]])
    labels = torch.tensor([1, 1])
    q1 = 0.75
    q2 = softmax_list([2.0, 0.0])[1]
    expected = -(math.log(q1) + math.log(q2)) / 2
    assert hard_cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- gradients, dtype


def test_gradient_flows_to_student_only() -> None:
    student_logits = torch.randn(3, 4, requires_grad=True)
    teacher_logits = torch.randn(3, 4, requires_grad=True)
    student_hidden = [torch.randn(3, 5, 6, requires_grad=True) for _ in range(2)]
    teacher_hidden = [torch.randn(3, 5, 6, requires_grad=True) for _ in range(2)]
    mask = torch.ones(3, 5)
    weights = LossWeights(logit=1.0, hidden=0.5, hard=0.3, cosine=0.2, temperature=2.0)
    out = distill_loss(
        student_logits, student_hidden, teacher_logits, teacher_hidden, torch.tensor([0, 1, 3]), mask, weights
    )
    out.total.backward()
    assert student_logits.grad is not None and student_logits.grad.abs().sum() > 0
    assert all(h.grad is not None and h.grad.abs().sum() > 0 for h in student_hidden)
    assert teacher_logits.grad is None
    assert all(h.grad is None for h in teacher_hidden)
    assert all(not p.requires_grad for p in out.parts.values())


def test_bf16_inputs_give_float32_loss() -> None:
    s = torch.randn(2, 3).bfloat16()
    t = torch.randn(2, 3).bfloat16()
    assert soft_cross_entropy(s, t).dtype == torch.float32
    assert hidden_mse([s.unsqueeze(-1)], [t.unsqueeze(-1)], None).dtype == torch.float32
    # ...computed in FP32 from the bf16 values, not in bf16 and cast.
    assert soft_cross_entropy(s, t).item() == pytest.approx(
        soft_cross_entropy(s.float(), t.float()).item(), abs=1e-6
    )
    assert hidden_mse([s.unsqueeze(-1)], [t.unsqueeze(-1)], None).item() == pytest.approx(
        hidden_mse([s.float().unsqueeze(-1)], [t.float().unsqueeze(-1)], None).item(), abs=1e-6
    )


# ---------------------------------------------------------------- distill_loss / LossParts


def make_inputs() -> dict[str, Any]:
    gen = torch.Generator().manual_seed(4)
    return {
        "student_logits": torch.randn(2, 3, generator=gen),
        "student_hidden": [torch.randn(2, 4, 5, generator=gen) for _ in range(3)],
        "teacher_logits": torch.randn(2, 3, generator=gen),
        "teacher_hidden": [torch.randn(2, 4, 5, generator=gen) for _ in range(3)],
        "labels": torch.tensor([0, 2]),
        "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]),
    }


@pytest.mark.parametrize(
    ("weights", "keys"),
    [
        (LossWeights(), ["logit_kd", "hidden_kd"]),
        (LossWeights(logit=1.0, hidden=0.0), ["logit_kd"]),
        (LossWeights(logit=0.0, hidden=0.0, hard=1.0), ["hard_ce"]),
        (
            LossWeights(logit=1.0, hidden=0.1, hard=0.5, cosine=1.0),
            ["logit_kd", "hidden_kd", "hard_ce", "cosine"],
        ),
    ],
)
def test_loss_parts_keys(weights: LossWeights, keys: list[str]) -> None:
    out = distill_loss(weights=weights, **make_inputs())
    assert isinstance(out, LossParts)
    assert list(out.parts) == keys
    assert all(p.dim() == 0 for p in out.parts.values())


def test_total_is_weighted_sum_of_unweighted_parts() -> None:
    inputs = make_inputs()
    weights = LossWeights(logit=0.7, hidden=0.2, hard=0.5, cosine=0.3, temperature=2.0)
    out = distill_loss(weights=weights, **inputs)
    mask = inputs["attention_mask"]
    expected_parts = {
        "logit_kd": soft_cross_entropy(inputs["student_logits"], inputs["teacher_logits"], 2.0),
        "hidden_kd": hidden_mse(inputs["student_hidden"], inputs["teacher_hidden"], mask),
        "hard_ce": hard_cross_entropy(inputs["student_logits"], inputs["labels"]),
        "cosine": hidden_cosine(inputs["student_hidden"], inputs["teacher_hidden"], mask),
    }
    for name, value in expected_parts.items():
        assert out.parts[name].item() == pytest.approx(value.item(), rel=1e-6)
    expected_total = (
        0.7 * expected_parts["logit_kd"]
        + 0.2 * expected_parts["hidden_kd"]
        + 0.5 * expected_parts["hard_ce"]
        + 0.3 * expected_parts["cosine"]
    )
    assert out.total.item() == pytest.approx(expected_total.item(), rel=1e-6)


def test_unused_inputs_may_be_none() -> None:
    inputs = make_inputs()
    out = distill_loss(
        inputs["student_logits"],
        None,
        None,
        None,
        inputs["labels"],
        None,
        LossWeights(logit=0.0, hidden=0.0, hard=1.0),
    )
    assert list(out.parts) == ["hard_ce"]
    assert out.total.item() == pytest.approx(
        hard_cross_entropy(inputs["student_logits"], inputs["labels"]).item()
    )


def test_missing_needed_input_is_an_error() -> None:
    inputs = make_inputs() | {"labels": None}
    with pytest.raises(ValueError) as info:
        distill_loss(weights=LossWeights(hard=1.0), **inputs)
    assert str(info.value) == "labels is required when the hard loss weight is nonzero"
    inputs = make_inputs() | {"teacher_logits": None}
    with pytest.raises(ValueError) as info:
        distill_loss(weights=LossWeights(), **inputs)
    assert str(info.value) == "teacher_logits is required when the logit loss weight is nonzero"


def test_loss_weights_validation() -> None:
    with pytest.raises(ValueError) as info:
        LossWeights(hidden=-0.1)
    assert str(info.value) == "loss weight hidden must be >= 0, got -0.1"
    with pytest.raises(ValueError) as info:
        LossWeights(temperature=0)
    assert str(info.value) == "temperature must be > 0, got 0"
    with pytest.raises(ValueError) as info:
        LossWeights(logit=0.0, hidden=0.0)
    assert str(info.value) == "at least one of the loss weights logit, hidden, hard, cosine must be > 0"
    with pytest.raises(AttributeError) as info:
        LossWeights().logit = 2.0  # type: ignore[misc]
    assert str(info.value) == "cannot assign to field 'logit'"


# ---------------------------------------------------------------- which teacher states a shallower student learns from


@pytest.mark.parametrize(
    ("kept", "pairing", "expected"),
    [
        # DynaBERT's run_glue.py: kept_layers_index + [L], the states entering each kept layer.
        ([0, 2, 4, 6, 8, 10], "dynabert", [0, 2, 4, 6, 8, 10, 12]),
        ([0, 1, 2, 4, 5, 6, 8, 9, 10], "dynabert", [0, 1, 2, 4, 5, 6, 8, 9, 10, 12]),
        (list(range(12)), "dynabert", list(range(13))),
        ([0, 3, 7], "dynabert", [0, 3, 7, 12]),  # a per-layer / LayerDrop subset
        ([2, 5], "dynabert", [0, 5, 12]),  # layer 0 skipped: the embeddings still match the embeddings
        ([0, 2, 4, 6, 8, 10], "same-layer", [0, 1, 3, 5, 7, 9, 11]),
        (list(range(12)), "same-layer", list(range(13))),
    ],
)
def test_teacher_hidden_targets(kept: list[int], pairing: str, expected: list[int]) -> None:
    states = [torch.full((1,), float(i)) for i in range(13)]
    got = teacher_hidden_targets(states, kept, pairing)
    assert [int(t.item()) for t in got] == expected


def test_teacher_hidden_targets_refuses_what_it_cannot_pair() -> None:
    states = [torch.zeros(1)] * 5
    with pytest.raises(ValueError) as err:
        teacher_hidden_targets(states, [0, 1], "nearest")
    assert str(err.value) == "pairing must be one of ('dynabert', 'same-layer'), got 'nearest'"
    with pytest.raises(ValueError) as err:
        teacher_hidden_targets(states, [0, 4], "dynabert")
    assert str(err.value) == "kept layers [0, 4] are not ascending layers of a 4-layer teacher"

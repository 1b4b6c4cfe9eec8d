"""Task kinds: metrics against hand-computed values, losses, heads, and what a checkpoint can serve."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import transformers
from conftest import tiny_config

from supernet.distill import LossWeights, distill_loss
from supernet.tasks import (
    TASK_KINDS,
    get_task_kind,
    head_conflict,
    macro_f1,
    pearson,
    spearman,
    task_kind_of_config,
)

CLS, REG = TASK_KINDS["classification"], TASK_KINDS["regression"]


def test_macro_f1_by_hand() -> None:
    # class 0: tp 2, fp 1, fn 0 -> F1 4/5; class 1: tp 1, fp 0, fn 1 -> 2/3; class 2: tp 0, fp 1, fn 1 -> 0
    y = torch.tensor([0, 0, 1, 1, 2])
    p = torch.tensor([0, 0, 1, 0, 1])
    # class 1 again: tp 1, fp 1 (the 2 predicted as 1), fn 1 -> 2/4
    assert macro_f1(p, y, 3) == pytest.approx((4 / 5 + 2 / 4 + 0) / 3)
    metrics = CLS.metrics([p[:2], p[2:]], [y[:2], y[2:]], tiny_config("bert", num_labels=3))
    assert metrics == pytest.approx({"accuracy": 3 / 5, "macro_f1": (4 / 5 + 1 / 2) / 3})


def test_binary_classification_reports_f1_of_class_one() -> None:
    y = torch.tensor([1, 1, 0, 0])
    p = torch.tensor([1, 0, 1, 0])  # tp 1, fp 1, fn 1
    assert CLS.metrics([p], [y], tiny_config("bert", num_labels=2)) == pytest.approx(
        {"accuracy": 0.5, "f1": 0.5}
    )


def test_pearson_and_spearman_by_hand() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    y = torch.tensor([1.0, 3.0, 2.0, 5.0])
    # centred x: -1.5 -0.5 0.5 1.5; centred y: -1.75 0.25 -0.75 2.25
    # sum xy = 2.625 - 0.125 - 0.375 + 3.375 = 5.5; |x| = sqrt(5); |y| = sqrt(3.0625+0.0625+0.5625+5.0625)
    assert pearson(x, y) == pytest.approx(5.5 / math.sqrt(5 * 8.75))
    # ranks of y: 1 3 2 4 -> rho = 1 - 6 * (0 + 1 + 1 + 0) / (4 * 15) = 0.8
    assert spearman(x, y) == pytest.approx(0.8)
    # ties take the mean rank: y ranks 1, 2.5, 2.5, 4
    assert spearman(x, torch.tensor([0.0, 1.0, 1.0, 2.0])) == pytest.approx(
        pearson(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 2.5, 2.5, 4.0]))
    )
    assert pearson(x, torch.ones(4)) == 0.0  # undefined for a constant side: reported as 0
    assert REG.metrics([x], [y], tiny_config("bert", num_labels=1)) == pytest.approx(
        {"pearson": 5.5 / math.sqrt(5 * 8.75), "spearman": 0.8}
    )


def test_regression_losses_are_mse() -> None:
    student = torch.tensor([[0.5], [2.0], [-1.0]], requires_grad=True)
    teacher = torch.tensor([[1.0], [1.0], [-1.0]])
    gold = torch.tensor([0.0, 2.0, 1.0])
    parts = distill_loss(
        student,
        None,
        teacher,
        None,
        gold,
        None,
        LossWeights(logit=1.0, hidden=0.0, hard=0.5, temperature=3.0),
        logit_loss=REG.logit_kd,
        hard_loss=REG.hard_loss,
    )
    assert parts.parts["logit_kd"].item() == pytest.approx(
        (0.25 + 1 + 0) / 3
    )  # the temperature does not apply
    assert parts.parts["hard_ce"].item() == pytest.approx((0.25 + 0 + 4) / 3)
    assert parts.total.item() == pytest.approx(1.25 / 3 + 0.5 * 4.25 / 3)
    assert REG.hard_loss(student, gold, reduction="sum").item() == pytest.approx(4.25)
    assert REG.predictions(student).tolist() == [0.5, 2.0, -1.0]


def test_classification_losses_are_unchanged() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    assert CLS.hard_loss(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert CLS.hard_loss(logits, labels, reduction="sum").item() == pytest.approx(
        F.cross_entropy(logits, labels, reduction="sum").item()
    )


def test_kind_of_a_saved_config() -> None:
    assert task_kind_of_config(tiny_config("bert", num_labels=1, problem_type="regression")) is REG
    assert task_kind_of_config(tiny_config("bert", num_labels=3)) is CLS
    assert task_kind_of_config(tiny_config("bert", num_labels=1)) is REG  # as transformers' loss reads it
    # A model in memory: its class, where it names a task head, decides over a config's architectures
    # (none until saved, or the base model's), and a wrapper's class name leaves them to decide.
    base = tiny_config("bert", num_labels=3, architectures=["BertModel"])
    assert task_kind_of_config(base).name == "classification"
    assert task_kind_of_config(base, model_class="BertForTokenClassification").name == "token-classification"
    assert task_kind_of_config(base, model_class="BertForQuestionAnswering").name == "question-answering"
    qa = tiny_config("bert", architectures=["BertForQuestionAnswering"])
    assert task_kind_of_config(qa, model_class="MyWrapper").name == "question-answering"
    assert get_task_kind("regression") is REG
    with pytest.raises(
        ValueError, match="unknown task kind 'ner'; known: classification, regression, token-classification"
    ):
        get_task_kind("ner")


def _config_with_head(head: str, **extra: object) -> transformers.PretrainedConfig:
    config = tiny_config("bert", **extra)
    config.architectures = [f"Bert{head}"]
    return config


def test_head_conflicts() -> None:
    # Base and masked-LM checkpoints get a fresh head: no conflict.
    assert head_conflict(_config_with_head("Model"), REG, 1) is None
    assert head_conflict(_config_with_head("ForMaskedLM"), CLS, 5) is None
    # The right head already: no conflict (used as the teacher).
    assert head_conflict(_config_with_head("ForSequenceClassification", num_labels=3), CLS, 3) is None
    assert (
        head_conflict(
            _config_with_head("ForSequenceClassification", num_labels=1, problem_type="regression"), REG, 1
        )
        is None
    )
    assert head_conflict(_config_with_head("ForSequenceClassification", num_labels=3), REG, 1) == (
        "has a sequence classifier with 3 labels, which cannot serve the regression task "
        "(needs a regression head (num_labels=1, problem_type=regression))"
    )
    assert head_conflict(_config_with_head("ForSequenceClassification", num_labels=3), CLS, 2) == (
        "has a sequence classifier with 3 labels, which cannot serve the classification task "
        "(needs a sequence classifier with 2 labels)"
    )
    assert head_conflict(_config_with_head("ForMultipleChoice"), CLS, 2) == (
        "has a BertForMultipleChoice head, which cannot serve the classification task "
        "(needs a sequence classifier with 2 labels)"
    )
    assert head_conflict(_config_with_head("ForTokenClassification", num_labels=2), CLS, 2) == (
        "has a token classifier with 2 tags, which cannot serve the classification task "
        "(needs a sequence classifier with 2 labels)"
    )


def test_regression_head_kwargs_build_a_regression_model() -> None:
    config = tiny_config("bert", **REG.head_kwargs(1, ()))
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    assert task_kind_of_config(model.config) is REG


@pytest.mark.parametrize(
    "name", ["classification", "regression", "token-classification", "question-answering"]
)
def test_losses_lift_half_precision_and_keep_double(name: str) -> None:
    """Losses were cast with .float(): right for bf16 logits, but a float64 model's lost its digits."""
    kind = get_task_kind(name, ["B-X", "O"] if name == "token-classification" else None)
    shape = {"classification": (4, 3), "regression": (4, 1), "token-classification": (4, 5, 2)}.get(
        name, (4, 5, 2)
    )
    labels = {
        "classification": torch.tensor([0, 2, 1, 0]),
        "regression": torch.rand(4),
        "token-classification": torch.tensor([[0, 1, -100, 1, 0]] * 4),
        "question-answering": torch.tensor([[1, 2]] * 4),
    }[name]
    for dtype, expected in (
        (torch.bfloat16, torch.float32),
        (torch.float32, torch.float32),
        (torch.float64, torch.float64),
    ):
        student = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)
        teacher = torch.randn(*shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        assert kind.hard_loss(student, labels).dtype == expected, (name, dtype)
        assert kind.logit_kd(student, teacher, 2.0).dtype == expected, (name, dtype)
    hidden = [torch.randn(2, 3, 4, dtype=torch.float64) for _ in range(2)]
    parts = distill_loss(
        hidden[0][:, 0, :2],
        hidden,
        hidden[1][:, 0, :2],
        hidden,
        None,
        None,
        LossWeights(hidden=1.0, cosine=1.0),
    )
    assert parts.total.dtype == torch.float64

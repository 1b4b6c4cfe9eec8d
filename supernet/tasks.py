"""Task kinds: one object per kind knows its head, collation, losses and metrics.

The trainer, importance scoring, search and export ask a :class:`TaskKind` instead of
branching on the kind:

==============  ==============================  =====================  ========================  ====================
kind            head (``AutoModelFor...``)      hard loss (teacher)    logit distillation term   metrics (main first)
==============  ==============================  =====================  ========================  ====================
classification  SequenceClassification          cross-entropy          soft cross-entropy        accuracy, F1 (binary)
                                                                                                 or macro-F1 (> 2)
regression      SequenceClassification,         MSE to the gold value  MSE to the teacher's      Pearson, Spearman
                ``num_labels=1``                                       prediction (DynaBERT's
                                                                       choice for STS-B)
token-          TokenClassification             cross-entropy on       soft cross-entropy per    entity F1, precision,
classification                                  first sub-tokens       real (non-padding) token  recall (conlleval),
                                                                                                 token accuracy
==============  ==============================  =====================  ========================  ====================

The hidden-state distillation term is the same for every kind (``supernet.distill.hidden_mse``).
A kind is found by name (:func:`get_task_kind`, the ``data.task_kind`` config key) or from a
saved model's config (:func:`task_kind_of_config`), which is how search and export, which only
have the run's saved supernet, know what they are ranking and exporting.
"""

from __future__ import annotations

import re
import string
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from supernet.distill import at_least_fp32, hard_cross_entropy, masked_token_mean, soft_cross_entropy

__all__ = [
    "REFERENCES",
    "TASK_KINDS",
    "Classification",
    "MetricColumn",
    "QuestionAnswering",
    "Regression",
    "TaskKind",
    "TokenClassification",
    "answer_question",
    "batch_to",
    "best_span",
    "check_labelled",
    "entity_scores",
    "entities",
    "get_task_kind",
    "head_conflict",
    "macro_f1",
    "model_inputs",
    "normalize_answer",
    "output_logits",
    "pearson",
    "squad_scores",
    "spearman",
    "task_kind_of_config",
    "task_kind_of_model",
]


@dataclass(frozen=True)
class MetricColumn:
    """One metric column of the eval table."""

    key: str
    """Key in the metrics dict (dev) and, prefixed with ``test_``, in eval rows (test)."""
    header: str
    """Short column title (e.g. "acc %", "Pearson")."""
    scaled: bool = True
    """Shown times 100 (accuracy in %, correlations as GLUE reports them); else as a fraction."""


class TaskKind(ABC):
    """What differs between task kinds; the pipeline asks this object instead of branching."""

    name: ClassVar[str]
    """The ``data.task_kind`` value."""
    main_metric: ClassVar[str]
    """The metric search ranks by and the trainer reports first; higher is better."""
    auto_class: ClassVar[Any]
    """The ``AutoModelFor...`` class of this kind's head."""

    def head_kwargs(self, num_labels: int, label_names: tuple[str, ...]) -> dict[str, Any]:
        """Config overrides that give a fresh model this kind's head.

        Args:
            num_labels: output units of the head.
            label_names: class names (empty where outputs have no names).
        """
        id2label = dict(enumerate(label_names))
        return {
            "num_labels": num_labels,
            "id2label": id2label,
            "label2id": {v: k for k, v in id2label.items()},
        }

    def serves(self, model_config: Any, num_labels: int) -> bool:
        """Whether a checkpoint's head already serves this kind with `num_labels` outputs (a task-tuned teacher)."""
        suffix = self.auto_class.__name__.removeprefix("AutoModel")
        archs = getattr(model_config, "architectures", None) or []
        return (
            any(a.endswith(suffix) for a in archs)
            and model_config.num_labels == num_labels
            # By name: a tagger whose tags name no chunks (LABEL_0 ...) serves an NER task too.
            and task_kind_of_config(model_config).name == self.name
        )

    def describe_head(self, num_labels: int) -> str:
        """The head this kind needs, in words (for error messages)."""
        return f"a sequence classifier with {num_labels} labels"

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        """Pads a list of tokenized examples into a batch of tensors (labels included)."""
        return DataCollatorWithPadding(tokenizer=tokenizer, return_tensors="pt")

    def references(self, batch: Mapping[str, Any]) -> Any:
        """What `metrics` scores a batch's predictions against: its ``labels`` (question answering:
        the windows' ``references``)."""
        return batch["labels"]

    @abstractmethod
    def hard_loss(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        """Loss against the gold labels (the teacher's fine-tune, importance, the final fine-tune).

        Args:
            logits: the model's ``logits``.
            labels: the batch's ``labels``.
            reduction: "mean" over examples, or "sum" (importance accumulates sums).
        """

    @abstractmethod
    def logit_kd(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        temperature: float,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Distillation term between student and (detached) teacher outputs; a scalar.

        Args:
            student_logits: the student's ``logits``.
            teacher_logits: the teacher's, same shape.
            temperature: softmax temperature (kinds without a distribution ignore it).
            attention_mask: ``[batch, seq]``, 1 for real tokens (per-token kinds average over those).
        """

    @abstractmethod
    def predictions(self, logits: Tensor) -> Tensor:
        """What the metrics compare with the labels (class ids, predicted values, tag ids per token)."""

    @abstractmethod
    def metrics(self, predictions: list[Tensor], labels: list[Tensor], model_config: Any) -> dict[str, float]:
        """Dev/test metrics of per-batch predictions against per-batch labels; always holds `main_metric`.

        Args:
            predictions: `predictions` of each batch.
            labels: each batch's `references` (its ``labels`` for every kind but question answering).
            model_config: the model's config (``num_labels``, ``id2label``).
        """

    @abstractmethod
    def columns(self, num_labels: int) -> tuple[MetricColumn, ...]:
        """Eval-table columns for a task with `num_labels` outputs (main metric first)."""


class Classification(TaskKind):
    """Single-sentence or pair classification into ``num_labels >= 2`` classes."""

    name = "classification"
    main_metric = "accuracy"
    auto_class = AutoModelForSequenceClassification

    def hard_loss(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        if reduction == "mean":
            return hard_cross_entropy(logits, labels)
        return F.cross_entropy(at_least_fp32(logits), labels.long(), reduction=reduction)

    def logit_kd(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        temperature: float,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        return soft_cross_entropy(student_logits, teacher_logits, temperature)

    def predictions(self, logits: Tensor) -> Tensor:
        return logits.argmax(-1)

    def metrics(self, predictions: list[Tensor], labels: list[Tensor], model_config: Any) -> dict[str, float]:
        p, y = torch.cat(predictions).long(), torch.cat(labels).long()
        num_labels = model_config.num_labels
        out = {"accuracy": (p == y).float().mean().item()}
        if num_labels <= 2:
            out["f1"] = _f1_of_class(p, y, 1)
        else:
            out["macro_f1"] = macro_f1(p, y, num_labels)
        return out

    def columns(self, num_labels: int) -> tuple[MetricColumn, ...]:
        f1 = (
            MetricColumn("f1", "F1", False)
            if num_labels <= 2
            else MetricColumn("macro_f1", "macro-F1", False)
        )
        return (MetricColumn("accuracy", "acc %"), f1)


class Regression(TaskKind):
    """One continuous target per example (``num_labels=1``, transformers' ``problem_type="regression"``)."""

    name = "regression"
    main_metric = "pearson"
    auto_class = AutoModelForSequenceClassification

    def head_kwargs(self, num_labels: int, label_names: tuple[str, ...]) -> dict[str, Any]:
        # problem_type makes transformers' own loss an MSE and pipeline() return the raw value.
        return {"num_labels": 1, "problem_type": "regression"}

    def describe_head(self, num_labels: int) -> str:
        return "a regression head (num_labels=1, problem_type=regression)"

    def hard_loss(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        values = at_least_fp32(logits).squeeze(-1)
        return F.mse_loss(values, labels.to(values.dtype), reduction=reduction)

    def logit_kd(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        temperature: float,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        # A value has no distribution to soften: the temperature does not apply.
        _check_same_shape(student_logits, teacher_logits)
        return F.mse_loss(at_least_fp32(student_logits), at_least_fp32(teacher_logits.detach()))

    def predictions(self, logits: Tensor) -> Tensor:
        return at_least_fp32(logits).squeeze(-1)

    def metrics(self, predictions: list[Tensor], labels: list[Tensor], model_config: Any) -> dict[str, float]:
        p, y = torch.cat(predictions), torch.cat(labels)
        return {"pearson": pearson(p, y), "spearman": spearman(p, y)}

    def columns(self, num_labels: int) -> tuple[MetricColumn, ...]:
        return (MetricColumn("pearson", "Pearson"), MetricColumn("spearman", "Spearman"))


def _check_same_shape(student_logits: Tensor, teacher_logits: Tensor) -> None:
    """Distillation compares like with like: one line naming both shapes otherwise."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits shape {tuple(student_logits.shape)} does not match "
            f"teacher logits shape {tuple(teacher_logits.shape)}"
        )


IGNORE_INDEX = -100
"""Label of positions without a tag (special tokens, padding, sub-tokens after a word's first)."""


class TokenClassification(TaskKind):
    """A tag per word (NER, chunking): the tag sits on each word's first sub-token."""

    name = "token-classification"
    main_metric = "f1"
    auto_class = AutoModelForTokenClassification

    def describe_head(self, num_labels: int) -> str:
        return f"a token classifier with {num_labels} tags"

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        # Pads labels with -100 as well, so padding never counts in loss or metrics.
        return DataCollatorForTokenClassification(tokenizer=tokenizer, return_tensors="pt")

    def hard_loss(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        # Mean over tagged tokens (first sub-tokens), the unit of the metrics.
        return F.cross_entropy(
            at_least_fp32(logits).flatten(0, 1),
            labels.long().flatten(),
            ignore_index=IGNORE_INDEX,
            reduction=reduction,
        )

    def logit_kd(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        temperature: float,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        _check_same_shape(student_logits, teacher_logits)
        # Every real token, sub-tokens included: the teacher's distribution is defined on all of them.
        teacher_probs = F.softmax(at_least_fp32(teacher_logits.detach()) / temperature, dim=-1)
        student_log_probs = F.log_softmax(at_least_fp32(student_logits) / temperature, dim=-1)
        per_token = -(teacher_probs * student_log_probs).sum(dim=-1)  # [batch, seq]
        return masked_token_mean(per_token, attention_mask) * temperature**2

    def predictions(self, logits: Tensor) -> Tensor:
        return logits.argmax(-1)

    def metrics(self, predictions: list[Tensor], labels: list[Tensor], model_config: Any) -> dict[str, float]:
        id2label = {int(k): v for k, v in model_config.id2label.items()}
        gold_seqs, pred_seqs = [], []
        for p_batch, y_batch in zip(predictions, labels, strict=True):
            for p_row, y_row in zip(p_batch.tolist(), y_batch.tolist(), strict=True):
                kept = [(p, y) for p, y in zip(p_row, y_row, strict=True) if y != IGNORE_INDEX]
                gold_seqs.append([id2label[y] for _, y in kept])
                pred_seqs.append([id2label[p] for p, _ in kept])
        scores = entity_scores(gold_seqs, pred_seqs)
        tags = sum(len(seq) for seq in gold_seqs)
        correct = sum(
            g == p for gs, ps in zip(gold_seqs, pred_seqs, strict=True) for g, p in zip(gs, ps, strict=True)
        )
        return {**scores, "accuracy": correct / max(tags, 1)}

    def columns(self, num_labels: int) -> tuple[MetricColumn, ...]:
        return (
            MetricColumn("f1", "entity F1"),
            MetricColumn("precision", "precision"),
            MetricColumn("recall", "recall"),
            MetricColumn("accuracy", "token acc %"),
        )


CHUNK_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")
"""Prefixes of the IOB1/IOB2/IOBES/BILOU schemes, whose tags mark entity chunks."""


def tags_mark_chunks(label_names: Iterable[str]) -> bool:
    """True when a tag set marks chunks (an ``O`` tag, or a tag with a scheme prefix such as ``B-``).

    A set without either (part-of-speech tags and the like) labels every word for itself.
    """
    return any(tag == "O" or tag.startswith(CHUNK_PREFIXES) for tag in label_names)


class WordTagging(TokenClassification):
    """A tag per word that marks no chunks (part-of-speech and the like): ranked by token accuracy.

    Entity F1 would read runs of equal tags as one chunk (``NN NN`` as a single ``NN`` entity), a
    figure no one reports for such tags: the tables show token accuracy only (eval.jsonl keeps every
    metric).
    """

    main_metric = "accuracy"

    def columns(self, num_labels: int) -> tuple[MetricColumn, ...]:
        return tuple(c for c in super().columns(num_labels) if c.key == "accuracy")


MAX_ANSWER_TOKENS = 30
"""Longest answer span a question-answering prediction may have, in tokens (as SQuAD tooling uses)."""
N_BEST = 20
"""Start and end candidates per window whose pairs are scored (the best-scoring valid pair wins)."""
REFERENCES = "references"
"""Batch key of the question-answering windows' references (text the metrics need; never a model input)."""
_QA_FIELDS = {
    "qa_example": "example",
    "qa_offsets": "offsets",
    "qa_context": "context",
    "qa_answers": "answers",
}
"""Tokenized-split columns of a question-answering window -> keys of its reference."""


class _QuestionAnsweringCollator:
    """Pads the model inputs, stacks ``labels`` (start, end) and lists each window's references."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.pad = DataCollatorWithPadding(tokenizer=tokenizer, return_tensors="pt")

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        inputs = [{k: v for k, v in f.items() if k not in _QA_FIELDS and k != "labels"} for f in features]
        batch: dict[str, Any] = dict(self.pad(inputs))
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        batch[REFERENCES] = [{key: f[column] for column, key in _QA_FIELDS.items()} for f in features]
        return batch


class QuestionAnswering(TaskKind):
    """Extractive question answering (SQuAD v1.1): the answer is a span of the context.

    Long contexts are read in overlapping windows (``data.doc_stride``); a window is one example to the
    model, labelled with the answer's first and last token, or with ``[CLS]`` (position 0) when the
    answer lies outside it. A question's prediction is the best-scoring span over all its windows.
    """

    name = "question-answering"
    main_metric = "f1"
    auto_class = AutoModelForQuestionAnswering

    def head_kwargs(self, num_labels: int, label_names: tuple[str, ...]) -> dict[str, Any]:
        return {"num_labels": 2}

    def describe_head(self, num_labels: int) -> str:
        return "a question-answering head (start and end logits)"

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        return _QuestionAnsweringCollator(tokenizer)

    def references(self, batch: Mapping[str, Any]) -> Any:
        return batch[REFERENCES]

    def hard_loss(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        # The mean of the start and the end cross-entropies, as transformers' QA heads compute it.
        start, end = at_least_fp32(logits).unbind(-1)
        labels = labels.long()
        return (
            F.cross_entropy(start, labels[:, 0], reduction=reduction)
            + F.cross_entropy(end, labels[:, 1], reduction=reduction)
        ) / 2

    def logit_kd(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        temperature: float,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        _check_same_shape(student_logits, teacher_logits)
        student, teacher = at_least_fp32(student_logits), at_least_fp32(teacher_logits.detach())
        if attention_mask is not None:
            # Padding is no answer position: a large negative logit gives it no probability (-inf
            # would make 0 * log 0 a NaN).
            padding = (attention_mask == 0).unsqueeze(-1)
            student = student.masked_fill(padding, _NO_POSITION)
            teacher = teacher.masked_fill(padding, _NO_POSITION)
        # [batch, seq, 2] -> [batch * 2, seq]: the start and the end distributions, averaged.
        return soft_cross_entropy(
            student.transpose(1, 2).flatten(0, 1), teacher.transpose(1, 2).flatten(0, 1), temperature
        )

    def predictions(self, logits: Tensor) -> Tensor:
        return logits.detach().float().cpu()

    def metrics(self, predictions: list[Tensor], labels: list[Any], model_config: Any) -> dict[str, float]:
        best: dict[int, tuple[float, str]] = {}
        gold: dict[int, list[str]] = {}
        for batch_logits, references in zip(predictions, labels, strict=True):
            for logits, ref in zip(batch_logits, references, strict=True):
                example = int(ref["example"])
                gold[example] = list(ref["answers"])
                found = best_span(logits, ref["offsets"])
                if found is not None and (example not in best or found[0] > best[example][0]):
                    start, end = found[1], found[2]
                    best[example] = (found[0], ref["context"][start:end])
        predicted = {example: best.get(example, (0.0, ""))[1] for example in gold}
        return {**squad_scores(predicted, gold), "n": len(gold)}

    def columns(self, num_labels: int) -> tuple[MetricColumn, ...]:
        return (MetricColumn("f1", "F1"), MetricColumn("exact_match", "EM"))


_NO_POSITION = -1.0e4


def best_span(logits: Tensor, offsets: list[list[int]]) -> tuple[float, int, int] | None:
    """The best answer span of one window: (start + end score, first char, end char), or None.

    Candidates are the `N_BEST` highest start and end logits among context tokens (those whose
    offset is not ``[-1, -1]``); a pair is valid when it ends at or after its start and spans at most
    `MAX_ANSWER_TOKENS` tokens.

    Args:
        logits: ``[seq, 2]`` start and end logits of the window (it may be padded past `offsets`).
        offsets: per token of the window, ``[first char, end char)`` in the context, ``[-1, -1]`` off it.
    """
    length = len(offsets)
    context = torch.tensor([o[0] >= 0 for o in offsets])
    if not bool(context.any()):
        return None
    start_logits = logits[:length, 0].masked_fill(~context, float("-inf"))
    end_logits = logits[:length, 1].masked_fill(~context, float("-inf"))
    k = min(N_BEST, int(context.sum()))
    starts = torch.topk(start_logits, k).indices.tolist()
    ends = torch.topk(end_logits, k).indices.tolist()
    found: tuple[float, int, int] | None = None
    for s in starts:
        for e in ends:
            if e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                continue
            score = float(start_logits[s] + end_logits[e])
            if found is None or score > found[0]:
                found = (score, offsets[s][0], offsets[e][1])
    return found


@torch.no_grad()
def answer_question(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    question: str,
    context: str,
    *,
    max_length: int = 384,
    doc_stride: int = 128,
) -> dict[str, Any]:
    """The answer a question-answering model gives: the best span over the context's windows.

    transformers 5 removed the ``question-answering`` pipeline; this does its job for an exported (or any)
    extractive QA model, reading the context in windows as training did.

    Args:
        model: a model whose output has ``start_logits`` and ``end_logits``.
        tokenizer: its fast tokenizer.
        question: the question.
        context: the text the answer is taken from.
        max_length: tokens per window (question + context); use the run's ``data.max_length``.
        doc_stride: context tokens shared by consecutive windows (the run's ``data.doc_stride``).

    Returns:
        ``answer`` (the span's text), ``start`` and ``end`` (its characters in `context`) and
        ``score`` (start + end logit); an empty answer with score None when no window has a span.
    """
    encoded = tokenizer(
        question,
        context,
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        return_tensors="pt",
    )
    offsets = encoded.pop("offset_mapping").tolist()
    encoded.pop("overflow_to_sample_mapping")
    device = next(model.parameters()).device
    logits = output_logits(model(**{k: v.to(device) for k, v in encoded.items()})).float().cpu()
    best: tuple[float, int, int] | None = None
    for window, window_offsets in enumerate(offsets):
        parts = encoded.sequence_ids(window)
        spans = [o if part == 1 else [-1, -1] for o, part in zip(window_offsets, parts, strict=True)]
        found = best_span(logits[window], spans)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    if best is None:
        return {"answer": "", "start": 0, "end": 0, "score": None}
    return {"answer": context[best[1] : best[2]], "start": best[1], "end": best[2], "score": best[0]}


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _token_f1(predicted: str, gold: str) -> float:
    p, g = normalize_answer(predicted).split(), normalize_answer(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predicted: Mapping[int, str], gold: Mapping[int, list[str]]) -> dict[str, float]:
    """Exact match and F1 averaged over questions, each the best over the question's gold answers.

    Fractions in [0, 1] (the eval table shows them times 100, as SQuAD reports them).
    """
    if not gold:
        return {"f1": 0.0, "exact_match": 0.0}
    em = f1 = 0.0
    for example, answers in gold.items():
        guess = predicted.get(example, "")
        em += max(float(normalize_answer(guess) == normalize_answer(a)) for a in answers)
        f1 += max(_token_f1(guess, a) for a in answers)
    return {"f1": f1 / len(gold), "exact_match": em / len(gold)}


def output_logits(output: Any) -> Tensor:
    """A model output's logits as one tensor: ``logits``, or question answering's start and end
    logits stacked on a last axis of 2 (``[batch, seq, 2]``)."""
    logits = getattr(output, "logits", None)
    if logits is not None:
        return logits
    return torch.stack([output.start_logits, output.end_logits], dim=-1)


def batch_to(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """A collated batch with its tensors on `device` (question answering's text references stay as they are)."""
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}


def model_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """A batch without what only the losses and metrics read (``labels``, :data:`REFERENCES`)."""
    return {k: v for k, v in batch.items() if k not in ("labels", REFERENCES)}


TASK_KINDS: Mapping[str, TaskKind] = {
    kind.name: kind for kind in (Classification(), Regression(), TokenClassification(), QuestionAnswering())
}
"""Every task kind by its ``data.task_kind`` name."""


_WORD_TAGGING = WordTagging()


def get_task_kind(name: str, label_names: Iterable[str] | None = None) -> TaskKind:
    """The task kind called `name` (one of ``TASK_KINDS``).

    Args:
        name: the kind's name.
        label_names: the task's labels, when known: a token-classification tag set that marks no
            chunks (`tags_mark_chunks`) is ranked by token accuracy instead of entity F1.

    Raises:
        ValueError: naming the known kinds.
    """
    if name not in TASK_KINDS:
        raise ValueError(f"unknown task kind '{name}'; known: {', '.join(TASK_KINDS)}")
    if name == TokenClassification.name and label_names is not None and not tags_mark_chunks(label_names):
        return _WORD_TAGGING
    return TASK_KINDS[name]


def task_kind_of_config(model_config: Any, *, model_class: str | None = None) -> TaskKind:
    """The kind a saved model serves, read from its config (``problem_type``, head size).

    Args:
        model_config: a transformers config (the trained supernet's or an export's).
        model_class: the class name of the model in memory, if there is one. Where it names a task
            head (``...ForTokenClassification``), it decides over the config's ``architectures``,
            which a model built from a config lacks until it is saved, and which names the base
            model's class in one loaded from a base checkpoint.
    """
    if model_class and model_class.endswith(_TASK_HEADS):
        archs = [model_class]
    else:
        archs = getattr(model_config, "architectures", None) or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        return get_task_kind(TokenClassification.name, model_config.id2label.values())
    if any(a.endswith("ForQuestionAnswering") for a in archs):
        return TASK_KINDS["question-answering"]
    problem_type = getattr(model_config, "problem_type", None)
    # One output without a problem_type is regression too: transformers' own loss reads it that way.
    if problem_type == "regression" or (problem_type is None and model_config.num_labels == 1):
        return TASK_KINDS["regression"]
    return TASK_KINDS["classification"]


def check_labelled(batch: Any, index: int, purpose: str) -> None:
    """Raise one line where batch `index` has no "labels", or labels for another number of rows than
    its input_ids (`purpose`: what needs them, ending the message)."""
    if not isinstance(batch, Mapping) or "labels" not in batch:
        keys = ", ".join(sorted(map(str, batch))) if isinstance(batch, Mapping) else type(batch).__name__
        raise ValueError(f"batch {index} has no 'labels' ({keys}): {purpose}")
    rows, labels = batch.get("input_ids"), batch["labels"]
    if isinstance(rows, Tensor) and isinstance(labels, Tensor) and labels.dim() and len(labels) != len(rows):
        raise ValueError(
            f"batch {index}'s labels are for {len(labels)} row{'s' if len(labels) != 1 else ''}, its input_ids "
            f"have {len(rows)}: one label (or one row of labels) per row"
        )


def task_kind_of_model(model: Any) -> TaskKind:
    """The kind a model in memory serves: its class where it names a task head, else its config."""
    return task_kind_of_config(model.config, model_class=type(model).__name__)


_TASK_HEADS = (
    "ForSequenceClassification",
    "ForTokenClassification",
    "ForQuestionAnswering",
    "ForMultipleChoice",
)


def head_conflict(model_config: Any, kind: TaskKind, num_labels: int) -> str | None:
    """Why a checkpoint's task head cannot serve `kind` with `num_labels` outputs, or None if it can.

    A checkpoint without a task head (a base or masked-LM model) can always serve: a new head is
    initialised. One with a task head must already be the head `kind` needs, since its weights
    would otherwise be loaded into (or clash with) a head of another shape or meaning.

    Args:
        model_config: the checkpoint's transformers config.
        kind: the task kind to serve.
        num_labels: the task's number of outputs.
    """
    archs = getattr(model_config, "architectures", None) or []
    heads = [a for a in archs if a.endswith(_TASK_HEADS)]
    if not heads or kind.serves(model_config, num_labels):
        return None
    other = task_kind_of_config(model_config)
    has = (
        other.describe_head(model_config.num_labels)
        if any(
            a.endswith(("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering"))
            for a in heads
        )
        else f"a {heads[0]} head"
    )
    return f"has {has}, which cannot serve the {kind.name} task (needs {kind.describe_head(num_labels)})"


# --------------------------------------------------------------------------- metrics


def _f1_of_class(p: Tensor, y: Tensor, cls: int) -> float:
    tp = ((p == cls) & (y == cls)).sum().item()
    fp = ((p == cls) & (y != cls)).sum().item()
    fn = ((p != cls) & (y == cls)).sum().item()
    return 2 * tp / max(2 * tp + fp + fn, 1)


def macro_f1(predictions: Tensor, labels: Tensor, num_labels: int) -> float:
    """Unweighted mean over the classes present in labels or predictions of each class's F1.

    Classes absent from both are left out (their F1 is undefined), as scikit-learn does by
    default when ``labels`` is not given.
    """
    present = torch.unique(torch.cat([predictions.long(), labels.long()])).tolist()
    return sum(_f1_of_class(predictions.long(), labels.long(), c) for c in present) / max(len(present), 1)


def pearson(predictions: Tensor, labels: Tensor) -> float:
    """Pearson correlation; 0 when either side is constant (the correlation is undefined there)."""
    x = predictions.double().flatten() - predictions.double().mean()
    y = labels.double().flatten() - labels.double().mean()
    denominator = (x.norm() * y.norm()).item()
    return float((x * y).sum().item() / denominator) if denominator > 0 else 0.0


def _average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..n with ties given the mean of the ranks they span (as Spearman's rho needs)."""
    v = values.double().flatten()
    order = torch.argsort(v, stable=True)
    sorted_v = v[order]
    ranks = torch.empty_like(v)
    start = 0
    n = v.numel()
    while start < n:
        end = start
        while end + 1 < n and sorted_v[end + 1] == sorted_v[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(predictions: Tensor, labels: Tensor) -> float:
    """Spearman rank correlation: Pearson of the average ranks."""
    return pearson(_average_ranks(predictions), _average_ranks(labels))


# BILOU's last and unit tags are IOBES's end and single ones.
_SCHEME = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}


def _split_tag(tag: str) -> tuple[str, str]:
    """(scheme prefix, type) of a tag: ``("O", "")``, ``("B", "PER")``; a tag without a scheme
    prefix is read as ``I-`` of its own type."""
    if tag == "O":
        return "O", ""
    prefix, _, rest = tag.partition("-")
    return (_SCHEME[prefix], rest) if prefix in _SCHEME and rest else ("I", tag)


def entities(tags: list[str]) -> set[tuple[str, int, int]]:
    """Entity chunks ``(type, start, end)`` (end exclusive) of one tag sequence, as conlleval reads them.

    IOB1, IOB2, IOBES and BILOU all work (conlleval's chunk rules, which seqeval's default mode
    follows): a chunk starts at ``B-X`` or ``S-X``, or at ``I-X``/``E-X`` that does not continue a
    chunk of type X; it ends after ``E-X`` or ``S-X``, and before a ``B-``, ``S-``, ``O`` or a tag of
    another type. BILOU's ``L-``/``U-`` are read as ``E-``/``S-``. ``O`` is outside every chunk; a
    tag without a scheme prefix is read as ``I-`` of its own type.
    """
    found: set[tuple[str, int, int]] = set()
    prev, prev_type, start = "O", "", 0
    for index, tag in enumerate([*tags, "O"]):
        prefix, kind = _split_tag(tag)
        other = kind != prev_type
        ends = prev != "O" and (prev in ("E", "S") or prefix in ("B", "S", "O") or other)
        starts = (
            prefix in ("B", "S")
            or (prefix in ("I", "E") and prev in ("E", "S", "O"))
            or (prefix != "O" and other)
        )
        if ends:
            found.add((prev_type, start, index))
        if starts:
            start = index
        prev, prev_type = prefix, kind
    return found


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Micro-averaged entity precision, recall and F1 over sentences (an entity counts when type and span match).

    The same figures as conlleval and seqeval's default (non-strict) mode.
    """
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, predicted, strict=True):
        g_chunks, p_chunks = entities(g), entities(p)
        tp += len(g_chunks & p_chunks)
        n_gold += len(g_chunks)
        n_pred += len(p_chunks)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}

"""The training job on tiny runs: layout, learning, teacher reuse, resume, refusals, NaN, rotation, DDP, EMA."""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import save_tiny_model_dir, tiny_batch, tiny_model
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_post_hook

import supernet as sn
from supernet import trainer
from supernet.config import TrainConfig, load_config, save_config
from supernet.data import load_task, make_dataloader, tokenize_task
from supernet.distill import LossParts, LossWeights, teacher_hidden_targets
from supernet.profile_kit import run_identity
from supernet.trainer import RunError, TrainingError, load_supernet, train

ROOT = Path(__file__).resolve().parents[1]
GRID = [f"w{w:.2f}-d{d:.2f}" for w in (1.0, 0.75, 0.5, 0.25) for d in (1.0, 0.75, 0.5)]
W_NAMES = [f"w{w:.2f}-d1.00" for w in (1.0, 0.75, 0.5, 0.25)]
RUN_ENTRIES = {
    "config.yaml",
    "inputs.json",
    "teacher",
    "importance.safetensors",
    "checkpoints",
    "stage_w",
    "supernet",
    "train_metrics.jsonl",
    "eval.jsonl",
    "teacher_eval.json",
}

# A few seconds per run on one core: 64 training rows, 4 batches of 16 per epoch.
TINY = [
    "task=rt-sentences",
    "data.max_train_samples=64",
    "data.max_eval_samples=32",
    "data.max_length=32",
    "batch_size=16",
    "eval_batch_size=32",
    "report_to=none",
    "teacher.max_steps=2",
    "importance.num_batches=1",
    "stage_w.max_steps=2",
    "stage_wd.max_steps=2",
    "log_every=1",
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and the CI machine's 2 cores are shared.

    Module scope, so the module's cached runs use the same thread count as the runs they are
    compared with bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(tmp_path_factory, minilm_dir) -> dict[str, Path]:
    """Tiny random BERTs with the real tokenizer: a BertModel (the trainer fine-tunes a teacher) and
    2-label classifiers (used as the teacher as they are)."""
    root = tmp_path_factory.mktemp("models")
    return {
        "base": save_tiny_model_dir(root / "base", minilm_dir, head="base"),
        "seq-cls": save_tiny_model_dir(root / "seq-cls", minilm_dir, head="seq-cls"),
        # A wider init than 0.02: layers and heads change the hidden states enough that the
        # distillation losses of the subnets differ and have something to learn.
        "seq-cls-wide": save_tiny_model_dir(
            root / "seq-cls-wide", minilm_dir, head="seq-cls", initializer_range=0.2
        ),
        "seq-cls-no-dropout": save_tiny_model_dir(
            root / "seq-cls-no-dropout",
            minilm_dir,
            head="seq-cls",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        ),
    }


def _cfg(model: Path, out: Path, *overrides: str) -> TrainConfig:
    return load_config(TrainConfig, None, [f"model={model}", f"output_dir={out}", *TINY, *overrides])


def _run(model: Path, out: Path, *overrides: str) -> trainer.TrainResult:
    return train(_cfg(model, out, *overrides), progress=False)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_metrics.jsonl").read_text().splitlines()]


def _subnets_logged(row: dict, stage: str) -> set[str]:
    return {k.split("/")[1] for k in row if k.startswith(f"{stage}/") and k.endswith("/loss")}


def _params(run: Path, folder: str = "supernet") -> dict[str, torch.Tensor]:
    return load_file(str(run / folder / "model.safetensors"))


def _assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def _tmp_leftovers(run: Path) -> list[Path]:
    return [p for p in run.rglob("*") if ".tmp" in p.name or ".old-" in p.name]


# --------------------------------------------------------------------------- 1. end to end


@pytest.fixture(scope="module")
def e2e_run(models, tmp_path_factory) -> tuple[Path, trainer.TrainResult]:
    """The whole job from a BertModel: teacher fine-tune -> importance -> stage W -> stage W x D."""
    run = tmp_path_factory.mktemp("e2e") / "run"
    result = _run(models["base"], run, "checkpoint_every=1")
    return run, result


def test_end_to_end_run_dir(e2e_run) -> None:
    run, result = e2e_run
    assert result.run_dir == run
    assert {p.name for p in run.iterdir()} == RUN_ENTRIES
    assert not _tmp_leftovers(run)
    for folder in ("teacher", "stage_w", "supernet"):
        assert (run / folder / "config.json").is_file() and (run / folder / "model.safetensors").is_file()
    assert (run / "supernet" / "tokenizer.json").is_file()  # the final folder is self-contained
    meta = json.loads((run / "supernet" / "supernet.json").read_text())
    assert meta["family"] == "bert" and meta["end_step"] == 6  # 2 teacher + 2 stage W + 2 stage W x D
    assert meta["width_mults"] == [1.0, 0.75, 0.5, 0.25] and meta["depth_mults"] == [1.0, 0.75, 0.5]
    teacher_eval = json.loads((run / "teacher_eval.json").read_text())
    assert teacher_eval["dev"]["n"] == 32 and teacher_eval["test"]["n"] == 32
    assert result.teacher_accuracy == teacher_eval["dev"]["accuracy"]
    model = load_supernet(run / "supernet")
    assert sn.supernet_state(model).arch.num_layers == 4
    # Every file is readable by others (safetensors and transformers write weights 0600 themselves).
    umask = os.umask(0)
    os.umask(umask)
    modes = {str(p.relative_to(run)): p.stat().st_mode & 0o777 for p in run.rglob("*") if p.is_file()}
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)


def test_end_to_end_eval_rows(e2e_run) -> None:
    """eval.jsonl holds, for every grid subnet, what the saved supernet scores on dev, and its cost."""
    run, result = e2e_run
    rows = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [r["subnet"] for r in rows] == GRID
    assert rows == result.eval_rows
    # Each row names the weights it scored (search reuses only rows of the supernet it loads).
    assert {r["weights_sha256"] for r in rows} == {sn.io.weights_digest(run / "supernet")}
    cfg = load_config(TrainConfig, run / "config.yaml")
    model = load_supernet(run / "supernet")
    tokenizer = trainer.AutoTokenizer.from_pretrained(run / "supernet")
    tokenized = tokenize_task(trainer.task_from_config(cfg), tokenizer, cfg.data.max_length)
    dev = make_dataloader(tokenized["dev"], tokenizer, cfg.eval_batch_size, shuffle=False)
    # Counted here one sentence at a time (no padding, no batching), not by the code that wrote the rows.
    sentences = [{k: torch.tensor([v]) for k, v in ex.items() if k != "labels"} for ex in tokenized["dev"]]
    golds = [int(ex["labels"]) for ex in tokenized["dev"]]
    assert len(sentences) == 32
    model.eval()
    for row in rows:
        subnet = sn.SubnetConfig.from_name(row["subnet"])
        sn.set_active_subnet(model, subnet)
        with torch.no_grad():
            hits = sum(int(model(**x).logits.argmax(-1)) == y for x, y in zip(sentences, golds, strict=True))
        assert row["accuracy"] == pytest.approx(hits / 32, abs=1e-12)
        assert trainer.evaluate_subnet(model, subnet, dev)["accuracy"] == row["accuracy"]
        assert row["params"] == sn.count_params(model, subnet)
        assert row["flops"] == sn.count_flops(model, subnet, cfg.data.max_length)
    by_name = {r["subnet"]: r for r in rows}
    # Smaller subnets are cheaper.
    assert by_name["w0.25-d0.50"]["flops"] < by_name["w0.50-d1.00"]["flops"] < by_name["w1.00-d1.00"]["flops"]
    assert by_name["w0.25-d0.50"]["params"] < by_name["w1.00-d1.00"]["params"]


def test_evaluation_of_batches_without_labels_is_one_line() -> None:
    """It was a bare KeyError: 'labels' from inside the task kind."""
    model = sn.to_supernet(tiny_model("bert"))
    batch = tiny_batch(0)
    model.train()
    with pytest.raises(ValueError) as err:
        trainer.evaluate_subnet(
            model, sn.MAX_NET, [{**batch, "labels": torch.zeros(len(batch["input_ids"]))}, batch]
        )
    assert str(err.value) == (
        f"batch 1 has no 'labels' ({', '.join(sorted(batch))}): evaluation scores predictions against them"
    )
    assert model.training  # put back as it was, refused or not
    with pytest.raises(ValueError) as err:
        trainer.evaluate_subnet(model, sn.MAX_NET, [{**batch, "labels": torch.zeros(1)}])
    assert str(err.value) == (
        f"batch 0's labels are for 1 row, its input_ids have {len(batch['input_ids'])}: one label (or one row "
        "of labels) per row"
    )


def test_end_to_end_metrics_name_every_subnet_and_part(e2e_run) -> None:
    run, _ = e2e_run
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    keys = set().union(*rows)
    assert "teacher/teacher/hard_ce" in keys
    for name in W_NAMES:
        for part in ("loss", "logit_kd", "hidden_kd"):
            assert f"stage_w/{name}/{part}" in keys
    for name in GRID:
        for part in ("loss", "logit_kd", "hidden_kd"):
            assert f"stage_wd/{name}/{part}" in keys
    assert "stage_w/w0.50-d1.00/logit_kd" in keys and "stage_wd/w0.25-d0.50/hidden_kd" in keys
    assert all(_subnets_logged(r, "stage_w") == set(W_NAMES) for r in rows[2:4])
    assert all(_subnets_logged(r, "stage_wd") == set(GRID) for r in rows[4:6])
    assert all(v == v for r in rows for v in r.values() if isinstance(v, float))  # no NaN


# --------------------------------------------------------------------------- a model matched by layout


@pytest.mark.slow
def test_model_matched_by_layout_trains_and_says_so(minilm_dir, tmp_path, capsys) -> None:
    # XLM-RoBERTa-XL has no family table: its modules sit at BERT's paths (pre-LN).
    import transformers

    folder = tmp_path / "xl"
    config = transformers.XLMRobertaXLConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    transformers.XLMRobertaXLModel(config).save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(folder)
    run = tmp_path / "run"
    result = _run(folder, run)
    assert (
        "model: layout: bert (matched by module paths; model_type 'xlm-roberta-xl')"
        in capsys.readouterr().out
    )
    assert json.loads((run / "supernet" / "supernet.json").read_text())["family"] == "xlm-roberta-xl"
    assert [row["subnet"] for row in result.eval_rows] == GRID
    student = load_supernet(run / "supernet")
    assert sn.supernet_state(student).spec.matched_layout == "bert"
    # ... and its subnets export (through XLM-RoBERTa-XL's own stock classes).
    from supernet.export import export_subnet, load_exported

    report = export_subnet(
        student, sn.SubnetConfig(width_mult=0.5, depth_mult=0.5), tmp_path / "export", onnx=False
    )
    assert report.parity_ok and report.family == "xlm-roberta-xl" and report.layers == [0, 2]
    assert (
        type(load_exported(report.out_dir)).__name__ == "SupernetExportXLMRobertaXLForSequenceClassification"
    )


def test_task_tuned_model_is_used_as_teacher(models, tmp_path) -> None:
    run = tmp_path / "run"
    _run(models["seq-cls"], run)
    assert {p.name for p in run.iterdir()} == RUN_ENTRIES - {"teacher"}
    rows = _metrics(run)
    assert not any(k.startswith("teacher/") for r in rows for k in r)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # no teacher steps
    assert len((run / "eval.jsonl").read_text().splitlines()) == 12
    # Its head's labels named nothing (LABEL_0, LABEL_1): the supernet, and so an export of it, names
    # the task's classes (a pipeline over the export answered LABEL_1).
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(models["seq-cls"]).id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert json.loads((run / "supernet" / "config.json").read_text())["id2label"] == {
        "0": "negative",
        "1": "positive",
    }


def test_a_stage_bar_closes_before_its_last_checkpoint_is_saved(models, tmp_path, monkeypatch) -> None:
    """The bar stayed open while the stage's last checkpoint was saved (8-9 s at BERT-base size), and
    its last, persisting frame read 6.12 s/it for 3.81 s steps."""
    events: list[str] = []
    real_bar, real_save = trainer.progress_bar, trainer._Job._save_checkpoint

    def bar(*args, **kwargs):
        made = real_bar(*args, **kwargs)
        close, closed = made.close, []

        def closing() -> None:
            if not closed:  # tqdm's close is idempotent: the first one counts
                closed.append(True)
                events.append(f"close {kwargs.get('desc')}")
            close()

        made.close = closing
        return made

    def save(self, stage, stage_step, *args, **kwargs):
        events.append(f"save {stage} {stage_step}")
        return real_save(self, stage, stage_step, *args, **kwargs)

    monkeypatch.setattr(trainer, "progress_bar", bar)
    monkeypatch.setattr(trainer._Job, "_save_checkpoint", save)
    _run(models["seq-cls"], tmp_path / "run", "checkpoint_every=1")
    stage = [e for e in events if "stage_wd" in e]
    assert stage == ["save stage_wd 1", "close stage_wd", "save stage_wd 2"]


def test_a_teacher_tied_with_the_most_common_class_is_warned() -> None:
    """A random head scoring exactly the majority share, as a float32 (0.33333334 against 1/3), was
    taken for "better" and the warning skipped: every subnet then trained at chance."""
    from types import SimpleNamespace

    stub = SimpleNamespace(
        kind=SimpleNamespace(name="classification"),
        teacher_path=None,
        task=SimpleNamespace(
            splits={"dev": {"label": [0, 0, 0, 1, 1, 1, 2, 2, 2]}}, label_names=["a", "b", "c"]
        ),
    )
    warn = functools.partial(trainer._Job._untrained_teacher_warning, stub)
    assert warn(float(np.float32(1 / 3))) == (
        "warning: the teacher (model, used as it is) does no better on dev than always answering 'a' "
        "(accuracy 33.33): its head may be untrained; set teacher.finetune=true to fine-tune it first"
    )
    assert warn(4 / 9) is None  # one example better than the constant answer


def test_a_task_head_no_better_than_chance_is_warned_and_teacher_finetune_trains_it(
    models, tmp_path, capsys, monkeypatch
) -> None:
    # A checkpoint saved right after a head was added has "the task's head" and was used as the
    # teacher as it is, without a word, however badly it scored.
    evaluate = trainer.evaluate_subnet

    def chance_teacher(*args, **kwargs):
        metrics = evaluate(*args, **kwargs)
        return metrics | {"accuracy": 0.25} if args[1] is None else metrics  # the teacher (no subnet)

    monkeypatch.setattr(trainer, "evaluate_subnet", chance_teacher)
    capsys.readouterr()
    _run(models["seq-cls"], tmp_path / "as-is", "stage_w.max_steps=1", "stage_wd.max_steps=1")
    out = capsys.readouterr().out
    assert "teacher dev accuracy: 25.00\n" in out
    warning = next(line for line in out.splitlines() if line.startswith("warning: the teacher"))
    match = re.fullmatch(
        r"warning: the teacher \(model, used as it is\) does no better on dev than always answering "
        r"'(negative|positive)' \(accuracy (\d+\.\d\d)\): its head may be untrained; set "
        r"teacher\.finetune=true to fine-tune it first",
        warning,
    )
    assert match is not None and float(match[2]) >= 50.0, warning  # the larger of two classes
    # teacher.finetune=true fine-tunes it on the task first (and then says nothing).
    run = tmp_path / "tuned"
    _run(models["seq-cls"], run, "teacher.finetune=true", "stage_w.max_steps=1", "stage_wd.max_steps=1")
    out = capsys.readouterr().out
    assert "fine-tuning the teacher (the model has no task head)" not in out
    assert "fine-tuning the teacher\n" in out and "warning: the teacher" not in out
    assert (run / "teacher" / "config.json").is_file()
    assert any(k.startswith("teacher/") for r in _metrics(run) for k in r)
    with pytest.raises(RunError) as err:
        _run(
            models["seq-cls"],
            tmp_path / "none",
            "teacher.finetune=true",
            "teacher.epochs=0",
            "teacher.max_steps=null",
        )
    assert str(err.value) == (
        "teacher.finetune=true with teacher.epochs=0 and no teacher.max_steps fine-tunes nothing: give "
        "teacher.epochs or teacher.max_steps"
    )
    with pytest.raises(ValueError) as err:
        _cfg(models["seq-cls"], run, "teacher.finetune=true", f"teacher.path={models['seq-cls']}")
    assert str(err.value) == (
        "teacher.finetune fine-tunes `model`, but teacher.path names a teacher used as it is: set one of them"
    )


def test_a_teacher_of_another_shape_than_model_is_refused(models, tmp_path, minilm_dir) -> None:
    """The supernet is a copy of teacher.path: a 6-layer teacher beside a 4-layer `model` trained a
    6-layer supernet without a word, `model` giving only the tokenizer and the space check."""
    teacher = save_tiny_model_dir(tmp_path / "teacher", minilm_dir, head="seq-cls", num_layers=6)
    with pytest.raises(RunError) as err:
        _run(models["base"], tmp_path / "run", f"teacher.path={teacher}")
    assert str(err.value) == (
        f"teacher.path '{teacher}' (bert, 6 layers, 4 heads of 8, hidden 32, FFN 48) is not the shape of "
        f"model '{models['base']}' (bert, 4 layers, 4 heads of 8, hidden 32, FFN 48): the supernet starts as "
        "a copy of the teacher, so set model to the teacher's base model (or the teacher itself), or leave "
        "teacher.path empty to fine-tune model"
    )
    assert not (tmp_path / "run").exists()
    # A teacher whose embedding table was padded (30522 -> 30528 rows) has model's shape: it trains.
    padded = save_tiny_model_dir(tmp_path / "padded", minilm_dir, head="seq-cls", vocab_size=30528)
    result = _run(
        models["base"],
        tmp_path / "ok",
        f"teacher.path={padded}",
        "stage_w.max_steps=1",
        "stage_wd.max_steps=1",
    )
    assert result is not None
    # The given teacher is the one used (none fine-tuned), and the supernet is a copy of its shape.
    assert not (tmp_path / "ok" / "teacher").exists()
    saved = json.loads((tmp_path / "ok" / "supernet" / "config.json").read_text())
    assert saved["vocab_size"] == 30528


# --------------------------------------------------------------------------- 2. learning


def _stage_objective(student, teacher, batches, *, seeds=(0, 1, 2, 3)) -> dict[str, float]:
    """Stage W x D's training loss of every grid subnet on fixed batches: the student in train mode
    (dropout on, the same dropout draws for every call), its teacher the stage-W net at the same
    width and full depth, hidden states paired as the trainer pairs them."""
    weights = LossWeights(logit=1.0, hidden=0.1)
    teacher.eval()
    student.train()
    out = {}
    with torch.no_grad():
        for cfg in sn.SearchSpace().grid():
            sn.set_active_subnet(teacher, sn.SubnetConfig(width_mult=cfg.width_mult))
            sn.set_active_subnet(student, cfg)
            total = 0.0
            for seed in seeds:
                torch.manual_seed(seed)
                for batch in batches:
                    inputs = {k: v for k, v in batch.items() if k != "labels"}
                    t = teacher(**inputs, output_hidden_states=True)
                    s = student(**inputs, output_hidden_states=True)
                    t_hidden = teacher_hidden_targets(t.hidden_states, sn.active_layers(student))
                    parts = trainer.distill_loss(
                        s.logits,
                        s.hidden_states,
                        t.logits,
                        t_hidden,
                        batch["labels"],
                        batch["attention_mask"],
                        weights,
                    )
                    total += parts.total.item()
            out[cfg.name] = total / (len(seeds) * len(batches))
    return out


@pytest.mark.slow
def test_every_subnet_loss_goes_down_in_stage_wd(models, tmp_path) -> None:
    """On a fixed set of 32 examples, stage W x D lowers the distillation loss of all 12 grid subnets.

    Measured with dropout on (fixed seeds): in eval mode the full-depth subnets start *at* their
    optimum (the student is a copy of its teacher), so only the training objective can go down.
    """
    model = models["seq-cls-wide"]
    run = tmp_path / "run"
    _run(
        model,
        run,
        "data.max_train_samples=32",
        "learning_rate=1e-3",
        "stage_w.max_steps=4",
        "stage_wd.max_steps=30",
        "checkpoint_every=0",
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    task = load_task("rt-sentences", max_train_samples=32, max_eval_samples=32)
    batches = list(make_dataloader(tokenize_task(task, tokenizer, 32)["train"], tokenizer, 16, shuffle=False))
    teacher = load_supernet(run / "stage_w")
    before = _stage_objective(load_supernet(run / "stage_w"), teacher, batches)
    after = _stage_objective(load_supernet(run / "supernet"), teacher, batches)
    report = ", ".join(f"{n} {before[n]:.4f}->{after[n]:.4f}" for n in GRID)
    print("\nstage W x D loss per subnet:", report)
    not_lower = [n for n in GRID if not after[n] < 0.99 * before[n]]
    assert not not_lower, f"loss did not drop by 1% for {not_lower}: {report}"


# --------------------------------------------------------------------------- 3. teacher calls


@pytest.mark.parametrize("teacher_width", ["same", "full"])
def test_teacher_runs_once_per_batch_and_width(models, tmp_path, monkeypatch, teacher_width: str) -> None:
    from transformers import BertForSequenceClassification

    current: dict[str, object] = {}
    calls: list[tuple[str, str, bool]] = []
    run_stage = trainer._Job._run_stage

    def tracked_run_stage(self, stage, model, *args, **kwargs):
        current.update(stage=stage, student=model)
        try:
            return run_stage(self, stage, model, *args, **kwargs)
        finally:
            current.clear()

    def hook(module, args, output):
        if isinstance(module, BertForSequenceClassification) and current:
            who = "student" if module is current["student"] else "teacher"
            calls.append((current["stage"], who, torch.is_grad_enabled()))

    monkeypatch.setattr(trainer._Job, "_run_stage", tracked_run_stage)
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        _run(models["seq-cls"], tmp_path / "run", f"distill.teacher_width={teacher_width}")
    finally:
        handle.remove()

    def count(stage: str, who: str) -> int:
        return sum(1 for s, w, _ in calls if s == stage and w == who)

    steps, widths, depths = 2, 4, 3
    assert count("stage_w", "teacher") == steps  # one fixed-teacher forward per batch
    assert count("stage_w", "student") == steps * widths
    wd_teachers = widths if teacher_width == "same" else 1
    assert count("stage_wd", "teacher") == steps * wd_teachers
    assert count("stage_wd", "student") == steps * widths * depths
    assert {s for s, _, _ in calls} == {"stage_w", "stage_wd"}
    # Teachers never build a graph; students always do.
    assert all(grad == (who == "student") for _, who, grad in calls)


# --------------------------------------------------------------------------- 4. resume


RESUME = ["stage_w.max_steps=5", "stage_wd.max_steps=5", "checkpoint_every=1"]


@pytest.fixture(scope="module")
def straight_run(models, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    _run(models["seq-cls"], run, *RESUME)
    return run


def _stop_after_checkpoint(
    model_dir: Path, run: Path, stop_after: int, monkeypatch: pytest.MonkeyPatch, *overrides: str
) -> None:
    """Train into `run` and interrupt it right after the checkpoint at global step `stop_after`."""
    save = trainer._Job._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if self.global_step == stop_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer._Job, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _run(model_dir, run, *overrides)
    monkeypatch.undo()


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop_after",
    [3, 5, 8, 9],
    ids=["stage_w-mid-epoch", "stage_w-last-step", "stage_wd-mid-epoch", "stage_wd-epoch-end"],
)
def test_resume_is_bit_identical(models, straight_run, tmp_path, monkeypatch, stop_after: int) -> None:
    """Interrupted right after the checkpoint at global step k, then resumed: the same supernet, bit for bit.

    Steps 1-5 are stage W, 6-10 stage W x D; 4 batches per epoch, so step 3 is mid-epoch, 5 the end
    of stage W (before stage_w/ is written), 8 mid-epoch and 9 the end of W x D's first epoch.
    Dropout is on (the default), so the RNG state must be restored too.
    """
    run = tmp_path / "run"
    _stop_after_checkpoint(models["seq-cls"], run, stop_after, monkeypatch, *RESUME)
    assert not (run / "supernet").exists()
    assert (run / "checkpoints" / f"step-{stop_after}").is_dir()
    assert (run / "stage_w").exists() == (stop_after > 5)

    # A step the interrupted job trained past its checkpoint and logged (here a made-up row): the
    # resume trains it again, and the log must not hold it twice.
    with (run / "train_metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": stop_after + 1, "stage_w/w1.00-d1.00/loss": 123.0}) + "\n")
    _run(models["seq-cls"], run, *RESUME, "resume=true")

    _assert_bit_identical(_params(run), _params(straight_run))
    _assert_bit_identical(_params(run, "stage_w"), _params(straight_run, "stage_w"))
    assert (run / "eval.jsonl").read_text() == (straight_run / "eval.jsonl").read_text()

    # Every logged loss matches too (the interrupted run logged steps 1..k, the resumed one the rest).
    assert _losses(run) == _losses(straight_run)


def test_an_epochs_last_short_step_is_a_mean_and_is_counted() -> None:
    """5 batches an epoch, accumulation 2: steps of batches (1, 2), (3, 4) and (5); batch 5's loss is
    doubled before accelerate halves it, so that step's gradient is a mean as the others are."""
    assert [trainer._tail_scale(b, 5, 2) for b in range(1, 6)] == [1.0, 1.0, 1.0, 1.0, 2.0]
    assert [trainer._tail_scale(b, 7, 3) for b in range(1, 8)] == [1.0] * 6 + [3.0]
    assert [trainer._tail_scale(b, 6, 3) for b in range(1, 7)] == [1.0] * 6
    assert [trainer._tail_scale(b, 4, 1) for b in range(1, 5)] == [1.0] * 4
    # 2 epochs of 5 batches are 6 steps, not ceil(10 / 2) = 5 (the last batch went untrained).
    assert [trainer.optimizer_steps(e, 5, 2) for e in (1, 2, 0.5)] == [3, 6, 2]
    assert trainer.optimizer_steps(3, 4, 1) == 12


@pytest.mark.slow
def test_accumulation_over_an_epochs_short_tail_equals_the_larger_batch(tmp_path, minilm_dir) -> None:
    """40 rows: batch 16 gives batches of 16, 16 and 8; batch 8 x accumulation 2 the same rows in
    steps of 8 + 8, 8 + 8 and 8. The fine-tuned teachers agree (dropout off), as do their losses at
    each step; they were 3.8e-3 apart when the last step's gradient was halved (accelerate's own
    scaling) and the second epoch's last batch was never trained (5 steps counted, not 6)."""
    model = save_tiny_model_dir(
        tmp_path / "model", minilm_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    common = ["data.max_train_samples=40", "teacher.max_steps=null", "teacher.epochs=2",
              "teacher.learning_rate=0.01", "stage_w.max_steps=1", "stage_wd.max_steps=1"]  # fmt: skip
    _run(model, tmp_path / "big", *common, "batch_size=16")
    _run(model, tmp_path / "acc", *common, "batch_size=8", "gradient_accumulation_steps=2")
    teacher = {run: _params(tmp_path / run, "teacher") for run in ("big", "acc")}
    for name, value in teacher["big"].items():
        # Not the word embeddings: Adam turns float noise in the tiny gradients of rare tokens' rows
        # into updates of up to the learning rate.
        if "word_embeddings" not in name:
            torch.testing.assert_close(teacher["acc"][name], value, rtol=0, atol=1e-5)
    rows = {run: [r for r in _metrics(tmp_path / run) if "teacher/lr" in r] for run in ("big", "acc")}
    assert [r["step"] for r in rows["big"]] == [r["step"] for r in rows["acc"]] == [1, 2, 3, 4, 5, 6]
    for big, acc in zip(rows["big"], rows["acc"], strict=True):
        assert acc["teacher/teacher/loss"] == pytest.approx(big["teacher/teacher/loss"], rel=1e-5, abs=0)


def _losses(run: Path) -> list[dict]:
    """train_metrics.jsonl's rows without their timings."""
    return [{k: v for k, v in r.items() if not k.endswith("sec_per_step")} for r in _metrics(run)]


def test_depth_pairing_trains_as_asked_and_a_run_from_before_it_resumes_unchanged(
    models, tmp_path, monkeypatch, capsys
) -> None:
    """distill.depth_pairing=dynabert trains the shallower subnets on other teacher states; the default
    is the rule every earlier run was trained with, so a run whose config.yaml predates the key
    resumes bit for bit, says nothing, and keeps its identity."""
    overrides = (*RESUME, "stage_w.max_steps=1", "stage_wd.max_steps=3")
    paired: list[tuple[tuple[int, ...], str]] = []

    def spy(teacher_hidden, kept_layers, pairing="same-layer"):
        paired.append((tuple(kept_layers), pairing))
        return teacher_hidden_targets(teacher_hidden, kept_layers, pairing)

    monkeypatch.setattr(trainer, "teacher_hidden_targets", spy)
    straight = tmp_path / "straight"
    _run(models["seq-cls"], straight, *overrides)
    straight_pairs, paired[:] = list(paired), []
    dyna = tmp_path / "dynabert"
    _run(models["seq-cls"], dyna, *overrides, "distill.depth_pairing=dynabert")
    # The trainer hands the rule asked for to every pairing, at every depth the grid trains.
    depths = {(0, 1, 2, 3), (0, 1, 2), (0, 2)}  # the tiny model's 4 layers at depth 1, 0.75 and 0.5
    assert {kept for kept, _ in straight_pairs} == {kept for kept, _ in paired} == depths
    assert {rule for _, rule in straight_pairs} == {"same-layer"} and {rule for _, rule in paired} == {
        "dynabert"
    }
    monkeypatch.undo()
    rows, dyna_rows = _losses(straight), _losses(dyna)
    # Stage W (full depth) is the same under both rules; stage W x D's shallower subnets are not.
    assert [r for r in rows if r["step"] == 1] == [r for r in dyna_rows if r["step"] == 1]
    assert rows != dyna_rows
    assert run_identity(dyna)["config_sha256"] != run_identity(straight)["config_sha256"]
    run = tmp_path / "run"
    _stop_after_checkpoint(models["seq-cls"], run, 2, monkeypatch, *overrides)
    config = run / "config.yaml"
    lines = config.read_text().splitlines(True)
    old = "".join(line for line in lines if not line.strip().startswith("depth_pairing:"))
    assert len(old.splitlines()) == len(lines) - 1
    config.write_text(old)  # as a run of the version before wrote it
    assert run_identity(run)["config_sha256"] == run_identity(straight)["config_sha256"]
    capsys.readouterr()
    _run(models["seq-cls"], run, *overrides, "resume=true")
    assert "depth_pairing" not in capsys.readouterr().out
    assert _losses(run) == rows
    _assert_bit_identical(_params(run), _params(straight))


@pytest.mark.slow
def test_a_resume_between_two_logged_rows_logs_the_same_rows(models, tmp_path, monkeypatch) -> None:
    """log_every=2, interrupted after the checkpoint of step 3 (between the rows of steps 2 and 4):
    the checkpoint carries step 3's losses, and the resume's row of step 4 averages steps 3 and 4 as
    the uninterrupted run's does (it had averaged step 4 alone)."""
    overrides = (*RESUME, "log_every=2")
    straight = tmp_path / "straight"
    _run(models["seq-cls"], straight, *overrides)
    run = tmp_path / "run"
    _stop_after_checkpoint(models["seq-cls"], run, 3, monkeypatch, *overrides)
    window = json.loads((run / "checkpoints" / "step-3" / "trainer_state.json").read_text())["loss_window"]
    row_4 = next(r for r in _metrics(straight) if r["step"] == 4)
    assert sorted(window) == sorted(k for k in row_4 if k.count("/") == 2)
    assert all(len(values) == 1 for values in window.values())

    _run(models["seq-cls"], run, *overrides, "resume=true")
    assert _losses(run) == _losses(straight)
    _assert_bit_identical(_params(run), _params(straight))


@pytest.mark.slow
def test_resume_inside_final_finetune(models, tmp_path, monkeypatch) -> None:
    """Stopped in the final fine-tune, after stage W x D's checkpoints were rotated away: the resumed
    run goes straight back to the fine-tune (it used to retrain stage W x D from scratch first)."""
    overrides = ["final_finetune.max_steps=3", "checkpoint_every=1", "keep_last_checkpoints=2"]
    straight, run = tmp_path / "straight", tmp_path / "run"
    _run(models["seq-cls"], straight, *overrides)
    save = trainer._Job._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if self.global_step == 6:  # 2 stage W + 2 stage W x D + 2 of the 3 final steps
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer._Job, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _run(models["seq-cls"], run, *overrides)
    monkeypatch.undo()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-5", "step-6"]  # both "final"

    _run(models["seq-cls"], run, *overrides, "resume=true")
    assert [r["step"] for r in _metrics(run)] == [1, 2, 3, 4, 5, 6, 7]  # nothing ran twice
    _assert_bit_identical(_params(run), _params(straight))


# --------------------------------------------------------------------------- 5. refusals


def test_resume_with_changed_config_is_refused(e2e_run, models) -> None:
    run, _ = e2e_run
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    cfg = _cfg(models["base"], run, "checkpoint_every=1", "learning_rate=3e-4", "resume=true")
    with pytest.raises(RunError) as info:
        train(cfg, progress=False)
    message = str(info.value)
    # checkpoint_every and resume may change on a resume: not listed.
    assert message == (
        "resume refused: the config differs from the run's (learning_rate: 2e-05 -> 0.0003); undo the changes "
        "or start a new output_dir"
    )
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_existing_run_without_resume_is_refused(e2e_run, models) -> None:
    run, _ = e2e_run
    with pytest.raises(RunError) as info:
        train(_cfg(models["base"], run, "checkpoint_every=1"), progress=False)
    assert str(info.value) == (
        f"output_dir '{run}' already holds a run; pass resume=true to continue it or choose a new output_dir"
    )


def test_non_run_directory_is_refused(models, tmp_path) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(RunError, match="exists and is not a run directory; choose a new or empty output_dir"):
        _run(models["seq-cls"], other)
    assert [p.name for p in other.iterdir()] == ["thesis.tex"]
    # A desktop's hidden litter alone is an empty folder (as beside a lone config.yaml): a new run.
    litter = tmp_path / "litter"
    litter.mkdir()
    (litter / ".DS_Store").write_bytes(b"\0")
    checked = trainer._Job.__new__(trainer._Job)  # its folder check alone
    checked.cfg, checked.run = _cfg(models["seq-cls"], litter), sn.io.RunDir(litter)
    checked.check_run_dir()
    assert checked.fresh and [p.name for p in litter.iterdir()] == [".DS_Store"]
    # Other hidden entries are the user's: a git checkout is no place for a run.
    (litter / ".git").mkdir()
    with pytest.raises(RunError, match="exists and is not a run directory; choose a new or empty output_dir"):
        checked.check_run_dir()


@pytest.mark.slow
def test_resume_of_finished_run_only_re_evaluates(e2e_run, models, capsys, monkeypatch) -> None:
    run, _ = e2e_run
    params, metrics, evals, teacher_eval = (
        _params(run),
        (run / "train_metrics.jsonl").read_text(),
        (run / "eval.jsonl").read_text(),
        (run / "teacher_eval.json").read_text(),
    )
    scored: list[bool] = []  # whether each model scored is the teacher (no subnet)
    evaluate = trainer.evaluate_subnet
    monkeypatch.setattr(
        trainer, "evaluate_subnet", lambda *a, **k: scored.append(a[1] is None) or evaluate(*a, **k)
    )
    capsys.readouterr()
    _run(models["base"], run, "checkpoint_every=1", "resume=true")
    _assert_bit_identical(_params(run), params)
    assert (run / "train_metrics.jsonl").read_text() == metrics  # no step ran again
    assert (run / "eval.jsonl").read_text() == evals
    # The run's own teacher is not scored again: its scores are read back.
    accuracy = 100 * json.loads(teacher_eval)["dev"]["accuracy"]
    assert (
        f"teacher dev accuracy: {accuracy:.2f} (scored before, teacher_eval.json)" in capsys.readouterr().out
    )
    assert scored and not any(scored)  # the subnets were
    assert (run / "teacher_eval.json").read_text() == teacher_eval
    # A damaged teacher_eval.json is scored again, and written whole.
    (run / "teacher_eval.json").write_text('{"dev": {"accuracy": ')
    scored.clear()
    _run(models["base"], run, "checkpoint_every=1", "resume=true")
    assert f"teacher dev accuracy: {accuracy:.2f}\n" in capsys.readouterr().out and scored.count(True) == 2
    assert json.loads((run / "teacher_eval.json").read_text()) == json.loads(teacher_eval)


# --------------------------------------------------------------------------- 6. NaN


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_nan_loss_stops_with_the_last_good_checkpoint(models, tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    jobs: list[trainer._Job] = []
    init, real_loss, save = trainer._Job.__init__, trainer.distill_loss, trainer._Job._save_checkpoint
    digests: dict[int, dict[str, str]] = {}

    def tracked_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        jobs.append(self)

    calls_at_step_3 = []

    def nan_at_step_3(*args, **kwargs):
        parts = real_loss(*args, **kwargs)
        if jobs[-1].global_step + 1 == 3:  # the optimizer step being computed
            calls_at_step_3.append(1)
            if len(calls_at_step_3) == 2:  # the second subnet of the step: w0.75-d1.00
                parts.total = parts.total * float("nan")
        return parts

    def recorded_save(self, *args, **kwargs):
        save(self, *args, **kwargs)
        digests[self.global_step] = _tree_digest(self.run.checkpoint(self.global_step))

    monkeypatch.setattr(trainer._Job, "__init__", tracked_init)
    monkeypatch.setattr(trainer, "distill_loss", nan_at_step_3)
    monkeypatch.setattr(trainer._Job, "_save_checkpoint", recorded_save)
    with pytest.raises(TrainingError) as info:
        _run(models["seq-cls"], run, "stage_w.max_steps=4", "checkpoint_every=1")
    message = str(info.value)
    last_good = run / "checkpoints" / "step-2"
    assert message == (
        f"loss is nan at step 3 of stage_w for subnet w0.75-d1.00; the last good checkpoint is {last_good}; "
        "lower learning_rate or use mixed_precision=no"
    )
    # The checkpoint from before is intact: the same bytes as when it was written, loadable, complete.
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-1", "step-2"]
    assert _tree_digest(last_good) == digests[2]
    state = json.loads((last_good / "trainer_state.json").read_text())
    assert state["stage"] == "stage_w" and state["global_step"] == 2
    # Every tensor of the model it trains (the stock model's, converted in place).
    stock = load_file(str(models["seq-cls"] / "model.safetensors"))
    assert load_file(str(last_good / "model.safetensors")).keys() == stock.keys()
    assert not _tmp_leftovers(run)
    assert not (run / "stage_w").exists() and not (run / "supernet").exists()


# --------------------------------------------------------------------------- 7. checkpoint rotation


def test_only_newest_checkpoints_are_kept(models, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()  # an existing empty folder is a fine output_dir
    _run(models["base"], run, "checkpoint_every=1", "keep_last_checkpoints=2")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-5", "step-6"]
    for ckpt in (run / "checkpoints").iterdir():
        assert (ckpt / "trainer_state.json").is_file() and (ckpt / "model.safetensors").is_file()
    assert not _tmp_leftovers(run)


# --------------------------------------------------------------------------- 8. two processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(num_processes: int) -> list[str]:
    """accelerate launch for N CPU processes.

    accelerate 1.15's `--cpu --num_processes 2` starts ONE process (its simple launcher; multi-CPU
    needs mpirun). `--multi_gpu` goes through torchrun, and with ACCELERATE_USE_CPU=1 and no GPU the
    processes join one gloo group (DistributedType.MULTI_CPU).
    """
    return [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        str(ROOT / "train.py"),
    ]


def _cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env.pop("ACCELERATE_USE_CPU", None)
    return env | {"TOKENIZERS_PARALLELISM": "false", **extra}


@pytest.mark.slow
def test_two_processes_match_one(models, tmp_path) -> None:
    """2 CPU processes (gloo) with half the per-process batch train the same supernet as 1 process.

    What had to be equal for that, and how the test makes it so:
    - the global batches: process i takes every other batch of 8 from the same seeded order, so
      step t sees the 16 examples of the 1-process batch t (checked in passing by the loss values);
    - the learning rate at every step (the warmup used to be rounded in scheduler ticks, which
      differ by a factor of the process count: 5 steps per stage make that rounding bite);
    - dropout: each process draws its own masks, so dropout is off in this model;
    - the hidden-state MSE is a mean over each process's real tokens, so with ragged lengths two
      processes weight the half-batches equally where one process weights them by token count;
      max_length=6 truncates every example (the shortest has 7 tokens) to the same length.
    What remains is float rounding of the gradient reduction (one sum of 16 vs two sums of 8
    averaged by gloo); Adam divides by sqrt(v) + 1e-8, so for the entries whose gradient is ~1e-8
    or smaller (e.g. key biases, mathematically zero) that rounding moves the update by up to
    ~lr/2: measured max |diff| after 5 + 5 steps: 2e-5 at lr 1e-3, 1-5e-6 at 1e-4, 6e-7 at 5e-5.
    """
    model = models["seq-cls-no-dropout"]
    common = [
        f"model={model}",
        "data.max_length=6",
        "stage_w.max_steps=5",
        "stage_wd.max_steps=5",
        "checkpoint_every=0",
        "seed=7",
        "learning_rate=5e-5",
        *[o for o in TINY if not o.startswith(("data.max_length", "batch_size", "stage_"))],
    ]
    env = _cli_env(ACCELERATE_USE_CPU="1")
    one, two = tmp_path / "one", tmp_path / "two"
    said: dict[Path, list[tuple[str, str]]] = {}  # the step lines --no-progress prints
    preset = tmp_path / "tiny.yaml"
    preset.write_text("# everything is in the overrides\n")
    for cmd, out, batch in (([sys.executable, str(ROOT / "train.py")], one, 16), (_launch(2), two, 8)):
        args = [
            *cmd,
            "--config",
            str(preset),
            "--no-progress",
            *common,
            f"output_dir={out}",
            f"batch_size={batch}",
        ]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"cpu, {2 if batch == 8 else 1} process" in done.stdout
        said[out] = re.findall(r"^(\w+ step \d+/\d+): mean loss ([\d.]+)", done.stdout, re.M)
    # Two processes really ran: each saved its RNG state in the checkpoints.
    last = sorted((two / "checkpoints").iterdir(), key=lambda p: int(p.name.split("-")[1]))[-1]
    assert {p.name for p in last.glob("random_states_*.pkl")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }
    assert not list((one / "checkpoints").glob("*/random_states_1.pkl"))

    a, b = _params(one), _params(two)
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    start = _params(one, "stage_w")
    moved = max((a[k] - start[k]).abs().max().item() for k in a)
    print(f"\n1 vs 2 processes: max |param diff| {diff:.3e} (stage W x D moved params by up to {moved:.3e})")
    assert moved > 5e-5  # the runs did train
    assert diff <= 1e-5
    lrs = [[r[k] for r in _metrics(path) for k in sorted(r) if k.endswith("/lr")] for path in (one, two)]
    assert lrs[0] == lrs[1]
    # The logged losses are the global batch's (the mean of the processes' halves), not process 0's.
    rows = {path: [{k: v for k, v in r.items() if "/" in k and k.count("/") == 2} for r in _metrics(path)]
            for path in (one, two)}  # fmt: skip
    assert [sorted(r) for r in rows[one]] == [sorted(r) for r in rows[two]]
    for a_row, b_row in zip(rows[one], rows[two], strict=True):
        assert b_row == {k: pytest.approx(v, rel=1e-4) for k, v in a_row.items()}
    # So are the step lines (they had shown process 0's half).
    assert [step for step, _ in said[one]] == [step for step, _ in said[two]] and said[one]
    assert [float(loss) for _, loss in said[two]] == pytest.approx(
        [float(loss) for _, loss in said[one]], abs=2e-4
    )
    ones = [json.loads(line) for line in (one / "eval.jsonl").read_text().splitlines()]
    twos = [json.loads(line) for line in (two / "eval.jsonl").read_text().splitlines()]
    assert [r["subnet"] for r in ones] == [r["subnet"] for r in twos] == GRID
    assert [r["accuracy"] for r in ones] == [r["accuracy"] for r in twos]  # gathered over both processes


@pytest.mark.slow
def test_unconnected_processes_are_refused(models, tmp_path) -> None:
    """--multi_gpu without a GPU and without ACCELERATE_USE_CPU=1 starts 2 processes that never join
    one group; each would run the whole job into the same run directory. The trainer refuses."""
    preset = tmp_path / "tiny.yaml"
    preset.write_text("# everything is in the overrides\n")
    args = [
        *_launch(2),
        "--config",
        str(preset),
        f"model={models['seq-cls']}",
        f"output_dir={tmp_path / 'run'}",
        *TINY,
    ]
    done = subprocess.run(args, env=_cli_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode != 0
    assert (
        "error: 2 processes were launched but accelerate joined 1; on CPU set ACCELERATE_USE_CPU=1"
        in done.stderr
    )
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- 9. sampling variants


def test_sandwich_sampling_and_final_finetune(models, tmp_path) -> None:
    run = tmp_path / "run"
    _run(models["seq-cls"], run, "recipe=sandwich", "num_random_subnets=1", "final_finetune.max_steps=1")
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    for row in rows[:2]:
        names = _subnets_logged(row, "stage_w")
        assert {"w1.00-d1.00", "w0.25-d1.00"} <= names and names <= set(W_NAMES) and len(names) <= 3
    for row in rows[2:4]:
        names = _subnets_logged(row, "stage_wd")
        assert {"w1.00-d1.00", "w0.25-d0.50"} <= names and names <= set(GRID) and len(names) <= 3
    final = rows[4]
    assert _subnets_logged(final, "final") == set(GRID)
    assert all(f"final/{n}/hard_ce" in final for n in GRID)
    assert len((run / "eval.jsonl").read_text().splitlines()) == 12
    assert json.loads((run / "supernet" / "supernet.json").read_text())["end_step"] == 5


def test_layerdrop_trains_random_layer_sets(models, tmp_path) -> None:
    run = tmp_path / "run"
    _run(models["seq-cls"], run, "recipe=layerdrop", "layerdrop=0.5")
    rows = _metrics(run)
    # Stage W keeps full depth; stage W x D trains, per width, one random layer set per depth slot.
    assert all(_subnets_logged(r, "stage_w") == set(W_NAMES) for r in rows[:2])
    possible = {
        sn.SubnetConfig(width_mult=w, layers=tuple(i for i in range(4) if mask >> i & 1)).name: w
        for w in (1.0, 0.75, 0.5, 0.25)
        for mask in range(1, 16)
    }
    for row in rows[2:4]:
        names = _subnets_logged(row, "stage_wd")
        assert names and all(re.fullmatch(r"sub-[0-9a-f]{10}", n) for n in names)
        assert names <= possible.keys()
        assert {possible[n] for n in names} == {1.0, 0.75, 0.5, 0.25}
        assert len(names) <= 12
    assert [json.loads(line)["subnet"] for line in (run / "eval.jsonl").read_text().splitlines()] == GRID


def test_zero_epoch_stage_is_skipped(models, tmp_path) -> None:
    run = tmp_path / "run"
    _run(models["seq-cls"], run, "stage_w.max_steps=null", "stage_w.epochs=0")
    rows = _metrics(run)
    assert not any(k.startswith("stage_w/") for r in rows for k in r)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(_subnets_logged(r, "stage_wd") == set(GRID) for r in rows)


def test_bf16_then_fp32_in_one_process(models, tmp_path) -> None:
    """accelerate keeps process-wide state: an FP32 run after a bf16 one in the same process trains
    exactly as one before it, and the bf16 run did train in bf16 (its elastic linears' outputs)."""
    from supernet.elastic.linear import ElasticLinear

    seen: list[torch.dtype] = []

    def record(module, args, output):  # the student's training forwards (importance runs in eval mode)
        if isinstance(module, ElasticLinear) and module.training and torch.is_grad_enabled():
            seen.append(output.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        before = _run(models["seq-cls"], tmp_path / "fp32-before", "mixed_precision=no")
        dtypes = {"fp32-before": set(seen)}
        seen.clear()
        bf16 = _run(models["seq-cls"], tmp_path / "bf16", "mixed_precision=bf16")
        dtypes["bf16"] = set(seen)
        seen.clear()
        after = _run(models["seq-cls"], tmp_path / "fp32-after", "mixed_precision=no")
        dtypes["fp32-after"] = set(seen)
    finally:
        hook.remove()
    assert dtypes == {"fp32-before": {torch.float32}, "bf16": {torch.bfloat16}, "fp32-after": {torch.float32}}
    _assert_bit_identical(_params(tmp_path / "fp32-after"), _params(tmp_path / "fp32-before"))
    assert after.eval_rows == before.eval_rows and [r["subnet"] for r in bf16.eval_rows] == GRID
    losses = {
        run: [{k: v for k, v in r.items() if k.endswith("/loss")} for r in _metrics(tmp_path / run)]
        for run in ("fp32-before", "bf16", "fp32-after")
    }
    assert all(losses["bf16"])
    assert losses["fp32-after"] == losses["fp32-before"] != losses["bf16"]


def test_stage_steps_follow_epochs_accumulation_and_max_steps() -> None:
    cfg = load_config(TrainConfig, None, ["model=m", "task=t", "output_dir=o", "batch_size=32"])
    stage = sn.config.StageConfig(epochs=1.5)
    assert trainer.stage_steps(stage, 8452, cfg) == 398  # ceil(1.5 * ceil(8452 / 32))
    accum = load_config(
        TrainConfig, None, ["model=m", "task=t", "output_dir=o", "gradient_accumulation_steps=4"]
    )
    # 67 steps an epoch (66 of 4 batches, one of the last), so 1.5 epochs are 101, not ceil(1.5 * 265 / 4)
    assert trainer.stage_steps(stage, 8452, accum) == 101
    assert trainer.stage_steps(sn.config.StageConfig(epochs=3.0, max_steps=7), 8452, cfg) == 7
    # A one-stage recipe never runs stage W (3 epochs by default): only its stage WD counts.
    single = load_config(
        TrainConfig, None, ["model=m", "task=t", "output_dir=o", "recipe=single-stage", "stage_wd.epochs=1.5"]
    )
    assert trainer.elastic_steps(single, 8452) == 398
    two = load_config(TrainConfig, None, ["model=m", "task=t", "output_dir=o", "recipe=dynabert"])
    assert trainer.elastic_steps(two, 8452) == 3 * 265 + trainer.stage_steps(two.stage_wd, 8452, two)


def test_single_stage_recipe_trains_one_stage_from_the_fixed_teacher(models, tmp_path) -> None:
    run = tmp_path / "run"
    result = _run(models["seq-cls"], run, "recipe=single-stage", "num_random_subnets=1")
    rows = _metrics(run)
    # No stage W (so no stage_w/ folder): stage_wd's budget of 2 steps is the whole training.
    assert not (run / "stage_w").exists() and not any(k.startswith("stage_w/") for r in rows for k in r)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        names = _subnets_logged(row, "stage_wd")
        assert {"w1.00-d1.00", "w0.25-d0.50"} <= names <= set(GRID) | {"random-1"} and len(names) <= 3
        # Every student, the largest included, distils logits and hidden states from the fixed teacher.
        assert all(f"stage_wd/{n}/logit_kd" in row and f"stage_wd/{n}/hidden_kd" in row for n in names)
    assert [r["subnet"] for r in result.eval_rows] == GRID


def _record_backward(monkeypatch) -> list[tuple[str, float]]:
    """(subnet name, loss weight) of every backward pass the trainer runs from now on."""
    seen = []
    real = trainer._Job._backward

    def spy(job, parts, stage, subnet, weight=1.0):
        seen.append((subnet, weight))
        real(job, parts, stage, subnet, weight)

    monkeypatch.setattr(trainer._Job, "_backward", spy)
    return seen


def test_smallest_weight_scales_only_the_smallest_subnets_loss(models, tmp_path, monkeypatch) -> None:
    seen = _record_backward(monkeypatch)
    run = tmp_path / "run"
    _run(models["seq-cls"], run, "recipe=single-stage", "num_random_subnets=1", "smallest_weight=3")
    stage = [(n, w) for n, w in seen if n != "teacher"]
    # 2 steps x (largest, smallest, 1 random); a random draw of the smallest subnet weighs 1.
    assert [(n, w) for n, w in stage[:2] + stage[3:5]] == [("w1.00-d1.00", 1.0), ("w0.25-d0.50", 3.0)] * 2
    assert len(stage) == 6 and stage[2][1] == stage[5][1] == 1.0


def test_small_bias_reaches_the_recipe_the_trainer_runs(models, tmp_path, monkeypatch) -> None:
    seen = _record_backward(monkeypatch)
    _run(models["seq-cls"], tmp_path / "run", "recipe=single-stage", "num_random_subnets=1", "small_bias=50")
    # At bias 50 a multiplier of 0.5 is drawn 2**50 times as often as 1: every random draw is the
    # smallest subnet (2 steps x largest, smallest, 1 random).
    assert [n for n, _ in seen if n != "teacher"] == ["w1.00-d1.00", "w0.25-d0.50", "w0.25-d0.50"] * 2


def test_backward_scales_the_loss_by_the_weight() -> None:
    class Recorder:
        def backward(self, loss):
            self.loss = loss

    job = trainer._Job.__new__(trainer._Job)
    job.accelerator = Recorder()
    parts = LossParts(total=torch.tensor(0.75), parts={})
    job._backward(parts, "stage_wd", "w0.25-d0.50", 2.0)
    assert job.accelerator.loss.item() == 1.5
    job.loss_scale = 3.0  # the last of 3 batches an epoch, accumulation 4: accelerate divides by 4
    job._backward(parts, "stage_wd", "w0.25-d0.50", 2.0)
    assert job.accelerator.loss.item() == 4.5


def test_inplace_distillation_teaches_from_the_largest_subnet(models, tmp_path, monkeypatch) -> None:
    teachers, calls = [], []
    real = trainer._Job.teacher

    def teacher_spy(job):
        model, accuracy = real(job)
        teachers.append(model)
        # The student is a deep copy of the teacher and inherits this hook: record who ran.
        model.register_forward_hook(lambda module, *_: calls.append(module))
        return model, accuracy

    monkeypatch.setattr(trainer._Job, "teacher", teacher_spy)
    run = tmp_path / "run"
    _run(models["seq-cls"], run, "recipe=single-stage", "inplace_distill=true", "per_layer_sampling=true")
    # The fixed teacher never runs in training: the largest subnet learns from the labels and
    # teaches the others in place.
    assert calls and not any(m is teachers[0] for m in calls)
    for row in _metrics(run):
        assert row["stage_wd/w1.00-d1.00/hard_ce"] > 0 and "stage_wd/w1.00-d1.00/logit_kd" not in row
        # The smallest and the per-layer draws (logged as numbered slots) distil from it.
        for name in ("w0.25-d0.50", "random-1", "random-2"):
            assert f"stage_wd/{name}/logit_kd" in row and f"stage_wd/{name}/hidden_kd" in row


def test_group_by_length_batches_training_and_leaves_the_metrics_alone(models, tmp_path, monkeypatch) -> None:
    """data.group_by_length: training batches from windows sorted by length, evaluation longest first."""
    seen = []
    real = trainer._Job._epoch_batches

    def spy(job, stage, start_epoch, skip):
        for epoch, step, batch in real(job, stage, start_epoch, skip):
            seen.append((stage, batch["input_ids"].shape[1], batch["attention_mask"].sum(dim=1).tolist()))
            yield epoch, step, batch

    monkeypatch.setattr(trainer._Job, "_epoch_batches", spy)
    run = tmp_path / "run"
    overrides = ("recipe=single-stage", "data.group_by_length=true", "batch_size=8", "stage_wd.max_steps=8")
    cfg = _cfg(models["seq-cls"], run, *overrides)
    result = train(cfg, progress=False)
    # One epoch of 64 rows in batches of 8: 4 windows of 2 batches, each sorted longest first (bar the
    # first row of a window, which may swap to put the epoch's longest row in the first batch).
    rows = [lengths for stage, _, lengths in seen if stage == "stage_wd"]
    assert len(rows) == 8
    for start in range(0, 8, 2):
        window = rows[start] + rows[start + 1]
        assert window[1:] == sorted(window[1:], reverse=True)
    assert max(rows[0]) == max(n for lengths in rows for n in lengths)
    assert all(width == max(lengths) for _, width, lengths in seen)  # each batch padded to its longest
    # Evaluation read longest first scores exactly what the stored order scores.
    model = load_supernet(run / "supernet")
    tokenizer = trainer.AutoTokenizer.from_pretrained(models["seq-cls"])
    tokenized = tokenize_task(trainer.task_from_config(cfg), tokenizer, cfg.data.max_length)
    stored = make_dataloader(tokenized["dev"], tokenizer, cfg.eval_batch_size, shuffle=False)
    for row in result.eval_rows:
        if row["subnet"] in ("w1.00-d1.00", "w0.25-d0.50"):
            subnet = sn.SubnetConfig(**row["spec"])
            assert trainer.evaluate_subnet(model, subnet, stored)["accuracy"] == row["accuracy"]


# --------------------------------------------------------------------------- 10. weight average (ema_decay)


def _float_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


@contextlib.contextmanager
def _stage_weights(monkeypatch, stage: str) -> Iterator[tuple[list[dict], list[dict]]]:
    """The student's floating-point weights after every optimizer step of `stage`, and at its end."""
    steps: list[dict[str, torch.Tensor]] = []
    ends: list[dict[str, torch.Tensor]] = []
    current: dict[str, torch.nn.Module] = {}
    real = trainer._Job._run_stage

    def spy(job, name, model, *args, **kwargs):
        if name == stage:
            current["model"] = model
        try:
            real(job, name, model, *args, **kwargs)
        finally:
            current.clear()
        if name == stage:
            ends.append(_float_state(model))

    def after_step(optimizer, args, kwargs):
        if current:
            steps.append(_float_state(current["model"]))

    monkeypatch.setattr(trainer._Job, "_run_stage", spy)
    handle = register_optimizer_step_post_hook(after_step)
    try:
        yield steps, ends
    finally:
        handle.remove()


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


# 3 optimizer steps of the one-stage recipe; lr 1e-3 moves the weights far more than the tolerance.
EMA_STAGE = ["recipe=single-stage", "num_random_subnets=1", "stage_wd.max_steps=3", "learning_rate=1e-3"]


def test_ema_decay_ends_the_stage_with_the_average_of_its_steps(models, tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    with _stage_weights(monkeypatch, "stage_wd") as (steps, ends):
        _run(models["seq-cls"], run, *EMA_STAGE, "ema_decay=0.5")
    assert len(steps) == 3 and len(ends) == 1
    # AveragedModel's EMA: the first update copies the weights, each later one is d * ema + (1 - d) * w.
    expected = steps[0]
    for weights in steps[1:]:
        expected = {k: 0.5 * expected[k] + 0.5 * weights[k] for k in weights}
    assert _max_diff(ends[0], expected) <= 1e-6
    # The last step's weights are far from the average, so the check above tells them apart.
    assert _max_diff(steps[-1], expected) > 1e-4
    # The saved supernet (which the grid evaluation also ran) holds the average.
    saved = _params(run)
    assert saved.keys() <= ends[0].keys()
    _assert_bit_identical(saved, {k: ends[0][k] for k in saved})


def test_without_ema_the_stage_ends_with_its_last_step(models, tmp_path, monkeypatch) -> None:
    with _stage_weights(monkeypatch, "stage_wd") as (steps, ends):
        _run(models["seq-cls"], tmp_path / "run", *EMA_STAGE, "ema_decay=0")
    assert len(steps) == 3 and len(ends) == 1
    _assert_bit_identical(ends[0], steps[-1])


# Two stages (stage W: 2 steps, stage W x D: 3), so the second stage registers its own average.
EMA_RESUME = [
    "recipe=sandwich",
    "num_random_subnets=1",
    "stage_wd.max_steps=3",
    "checkpoint_every=1",
    "learning_rate=1e-3",
    "ema_decay=0.5",
]


@pytest.fixture(scope="module")
def ema_straight_run(models, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ema-straight") / "run"
    _run(models["seq-cls"], run, *EMA_RESUME)
    return run


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [2, 4], ids=["stage_w-last-step", "stage_wd-mid-stage"])
def test_resume_continues_the_weight_average(
    models, ema_straight_run, tmp_path, monkeypatch, stop_after: int
) -> None:
    """Stopped right after the checkpoint at global step k (2: the end of stage W, before stage_w/ is
    written; 4: the second of stage W x D's 3 steps), then resumed: the same stage_w/ and supernet/ as
    the run that was not stopped, so the checkpoint carried the average and the resumed stage went on
    with it (a restarted average would differ by about a quarter of a step)."""
    run = tmp_path / "run"
    _stop_after_checkpoint(models["seq-cls"], run, stop_after, monkeypatch, *EMA_RESUME)
    # The checkpoint holds this stage's average only (stage W's is not carried into stage W x D).
    ckpt = run / "checkpoints" / f"step-{stop_after}"
    assert [p.name for p in ckpt.glob("custom_checkpoint_*")] == ["custom_checkpoint_0.pkl"]
    assert (run / "stage_w").exists() == (stop_after > 2)

    _run(models["seq-cls"], run, *EMA_RESUME, "resume=true")

    for folder in ("stage_w", "supernet"):
        _assert_bit_identical(_params(run, folder), _params(ema_straight_run, folder))


# --------------------------------------------------------------------------- one job per run folder


def test_a_run_folder_in_use_is_refused(models, tmp_path) -> None:
    """A second job in a folder that one is training (a resume started too early, workers a killed
    launcher left behind) overwrote its checkpoints and interleaved its metrics."""
    run = tmp_path / "run"
    run.mkdir()
    held = trainer._lock_run_dir(run)  # another job trains this folder
    try:
        with pytest.raises(RunError) as info:
            _run(models["seq-cls"], run)
        assert str(info.value) == (
            f"output_dir '{run}' is being trained by {Path(sys.argv[0]).name} (pid {os.getpid()} on "
            f"{socket.gethostname()}); "
            "wait for that job to end or stop it (two jobs in one run folder overwrite each other's checkpoints)"
        )
        assert [p.name for p in run.iterdir()] == [trainer.LOCK_FILE]
    finally:
        held.close()
    # Released (as when a job ends or is killed): the folder trains, and the lock file goes with the job.
    _run(models["seq-cls"], run)
    assert (run / "supernet").is_dir() and not (run / trainer.LOCK_FILE).exists()


def test_a_run_folder_in_use_is_named_before_the_data_is_loaded(models, tmp_path, monkeypatch) -> None:
    """A second job on a folder in training was refused only after loading the data (14 s on the
    quickstart), and without resume=true it was told the folder "already holds a run; pass
    resume=true" - the very thing that would have made two jobs."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 1\n")  # a run in progress, as far as this job can tell
    held = trainer._lock_run_dir(run)
    monkeypatch.setattr(trainer._Job, "load_data", lambda self: pytest.fail("the data was loaded"))
    try:
        for resume in ([], ["resume=true"]):
            with pytest.raises(RunError) as info:
                _run(models["seq-cls"], run, *resume)
            assert str(info.value) == (
                f"output_dir '{run}' is being trained by {Path(sys.argv[0]).name} (pid {os.getpid()} on "
                f"{socket.gethostname()}); wait for that job to end or stop it (two jobs in one run folder "
                "overwrite each other's checkpoints)"
            )
    finally:
        held.close()
    assert trainer._held_by(run) is None  # released: the check itself holds nothing


def test_a_run_another_job_wrote_while_the_data_loaded_is_refused(models, tmp_path, monkeypatch) -> None:
    """The folder is checked before the data is loaded and locked after: a job that trained a run
    there in between (a small task beside a large one) had it adopted, its config.yaml and
    inputs.json replaced by this job's and its weights scored on this job's task."""
    run = tmp_path / "run"
    real_load = trainer._Job.load_data

    def load_while_another_job_trains(self) -> None:
        real_load(self)
        run.mkdir(exist_ok=True)
        (run / "config.yaml").write_text("seed: 1\n")
        (run / "supernet").mkdir()

    monkeypatch.setattr(trainer._Job, "load_data", load_while_another_job_trains)
    with pytest.raises(RunError) as info:
        _run(models["seq-cls"], run)
    assert str(info.value) == (
        f"output_dir '{run}' holds a run another job wrote while this one loaded its data; choose a new "
        "output_dir (or resume=true to continue that run)"
    )
    assert (run / "config.yaml").read_text() == "seed: 1\n" and sorted(p.name for p in run.iterdir()) == [
        "config.yaml",
        "supernet",
    ]


def test_a_lock_on_a_lock_file_unlinked_meanwhile_is_taken_again(tmp_path, monkeypatch) -> None:
    """A job ending unlinks its lock file, then closes it: a job that opened the file just before the
    unlink locked a file no path names, and a third job then locked a new one: two jobs trained."""
    real_open = Path.open
    raced: list[Path] = []

    def open_then_lose_the_race(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        if self.name == trainer.LOCK_FILE and not raced:
            raced.append(self)
            self.unlink()  # the job before ends between this open and the flock
        return handle

    monkeypatch.setattr(Path, "open", open_then_lose_the_race)
    held = trainer._lock_run_dir(tmp_path)
    monkeypatch.undo()
    try:
        assert raced == [tmp_path / trainer.LOCK_FILE]
        assert os.fstat(held.fileno()).st_ino == os.stat(tmp_path / trainer.LOCK_FILE).st_ino
        with pytest.raises(RunError) as info:
            trainer._lock_run_dir(tmp_path)  # the third job
        assert str(info.value) == (
            f"output_dir '{tmp_path}' is being trained by {Path(sys.argv[0]).name} (pid {os.getpid()} on "
            f"{socket.gethostname()}); wait for that job to end or stop it (two jobs in one run folder "
            "overwrite each other's checkpoints)"
        )
    finally:
        held.close()


def test_a_resume_with_another_process_count_is_refused_between_stages(models, tmp_path) -> None:
    """Only a checkpoint of the stage in progress was checked: a run stopped after stage W (its
    stage-end folder, no checkpoint of W x D) resumed on 2 processes trained W x D with a global batch
    of 32 instead of 16, without a word."""
    run = tmp_path / "run"
    _run(models["seq-cls"], run)
    inputs = json.loads((run / "inputs.json").read_text())
    assert inputs["processes"] == 1
    shutil.rmtree(run / "supernet")  # as if stopped before the end of stage W x D
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    (run / "inputs.json").write_text(json.dumps(inputs | {"processes": 2}))  # started on 2 processes
    with pytest.raises(RunError) as info:
        _run(models["seq-cls"], run, "resume=true")
    assert str(info.value) == (
        f"resume refused: run '{run}' was started with 2 processes and this job has 1: resume it with 2 "
        "(accelerate launch --multi_gpu --num_processes 2 train.py ...); the global batch is batch_size x "
        "gradient_accumulation_steps x processes"
    )
    # No weights kept at all (results without them, or stopped before a first checkpoint): it trains
    # from its first step, on this job's processes, which inputs.json then records.
    for folder in ("teacher", "stage_w"):
        shutil.rmtree(run / folder, ignore_errors=True)
    _run(models["seq-cls"], run, "resume=true")
    assert json.loads((run / "inputs.json").read_text())["processes"] == 1 and (run / "supernet").is_dir()


def test_checkpoint_of_another_process_count_is_refused(tmp_path) -> None:
    """Resumed by another count, the schedule (stepped per process) and data position went wrong,
    or process 1 called an intact 1-process checkpoint corrupt and advised deleting it."""
    ckpt = tmp_path / "checkpoints" / "step-6"
    ckpt.mkdir(parents=True)
    for i in (0, 1):
        (ckpt / f"random_states_{i}.pkl").write_bytes(b"")
    trainer._check_process_count(ckpt, 2)  # the same count: fine
    with pytest.raises(RunError) as info:
        trainer._check_process_count(ckpt, 1)
    assert str(info.value) == (
        f"checkpoint '{ckpt}' was written by 2 processes and this run has 1: resume it with 2 "
        "(accelerate launch --multi_gpu --num_processes 2 train.py ...); the learning-rate schedule and "
        "the data position are counted per process"
    )
    (ckpt / "random_states_1.pkl").unlink()
    with pytest.raises(RunError) as info:
        trainer._check_process_count(ckpt, 2)
    assert str(info.value) == (
        f"checkpoint '{ckpt}' was written by 1 process and this run has 2: resume it with 1 (python train.py "
        "...); the learning-rate schedule and the data position are counted per process"
    )


def test_resumed_steps_replace_their_first_rows(tmp_path) -> None:
    """Steps after the checkpoint are trained again on resume: their first rows would be doubles."""
    from supernet.tracking import drop_steps_after

    path = tmp_path / "train_metrics.jsonl"
    rows = [{"step": s, "loss": float(s)} for s in (2, 4, 6, 8)]
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9, "lo'
    )  # a killed job's half line
    drop_steps_after(path, 4)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows[:2]
    drop_steps_after(path, 10)  # nothing after step 10: unchanged
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows[:2]


@pytest.mark.parametrize(
    "rank, err, printed",
    [
        ("0", "config", "error: unknown config key 'learning_rat'"),
        ("1", "config", ""),  # every process meets it: process 0 says it
        ("1", "process", "[process 1] error: checkpoint 'c' is corrupt"),  # its own files: it says it
        # An input check's message-only FileNotFoundError was said by each process.
        ("1", "input", ""),
        ("1", "system", "[process 1] error: [Errno 13] Permission denied: 'ckpt/random_states_1.pkl'"),
        # Process 0 of a second machine: inputs on that machine's own disk may be missing there alone.
        ("2:0", "input", "[process 2] error: model 'm' is neither a packaged model nor an existing folder"),
    ],
)
def test_multi_process_errors_are_said_once(rank, err, printed, monkeypatch, capsys) -> None:
    from supernet.cli import run_cli
    from supernet.config import ConfigError

    def main(args):
        raise {
            "config": ConfigError("unknown config key 'learning_rat'"),
            "process": trainer.ProcessRunError("checkpoint 'c' is corrupt"),
            "input": FileNotFoundError("model 'm' is neither a packaged model nor an existing folder"),
            "system": PermissionError(13, "Permission denied", "ckpt/random_states_1.pkl"),
        }[err]

    rank, _, local = rank.partition(":")
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("LOCAL_RANK", local or rank)
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert run_cli(main, argparse.ArgumentParser(), []) == 2
    assert capsys.readouterr().err.strip() == printed
    # A RANK left over in a shell, in a single-process run: the error is said.
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert run_cli(main, argparse.ArgumentParser(), []) == 2
    said = {
        "config": "unknown config key 'learning_rat'",
        "process": "checkpoint 'c' is corrupt",
        "input": "model 'm' is neither a packaged model nor an existing folder",
        "system": "[Errno 13] Permission denied: 'ckpt/random_states_1.pkl'",
    }
    assert capsys.readouterr().err.strip() == f"error: {said[err]}"


@pytest.mark.parametrize("rank, printed", [("0", "interrupted; rerun"), ("1", "")])
def test_multi_process_interrupt_is_said_once(rank, printed, monkeypatch, capsys) -> None:
    """Ctrl-C reaches every process of a launch: the line was printed once per process."""
    from supernet.cli import run_cli

    def main(args):
        raise KeyboardInterrupt

    rank, _, local = rank.partition(":")
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("LOCAL_RANK", local or rank)
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert run_cli(main, argparse.ArgumentParser(), [], interrupted="interrupted; rerun") == 130
    assert capsys.readouterr().err.strip() == printed


def test_a_folder_that_cannot_be_locked_still_trains(models, tmp_path, monkeypatch, capsys) -> None:
    """NFS without lockd or a noflock mount: flock fails with ENOLCK, and training there was refused
    as 'not writable'."""
    import errno
    import fcntl

    real = fcntl.flock

    def no_locks(handle, operation):
        if str(getattr(handle, "name", "")).endswith(trainer.LOCK_FILE):  # the run folder's mount only
            raise OSError(errno.ENOLCK, "No locks available")
        return real(handle, operation)

    monkeypatch.setattr(fcntl, "flock", no_locks)
    run = tmp_path / "run"
    _run(models["seq-cls"], run)
    assert (run / "supernet").is_dir() and not (run / trainer.LOCK_FILE).exists()
    assert (
        f"note: output_dir '{run}' cannot be locked (No locks available): nothing stops a second job from "
        "training it at the same time"
    ) in capsys.readouterr().err


def test_head_label_order_rules() -> None:
    from supernet.trainer import head_label_order

    task = ("negative", "neutral", "positive")
    assert head_label_order(("positive", "neutral", "negative"), task) == ("positive", "neutral", "negative")
    assert head_label_order(("NEGATIVE", "NEUTRAL", "POSITIVE"), task) is None  # same order, other case
    assert head_label_order(("LABEL_0", "LABEL_1", "LABEL_2"), task) is None  # unnamed: by position
    assert head_label_order(("POSITIVE", "NEGATIVE"), ("0", "1")) is None  # class ids in the data
    assert head_label_order(("A", "a"), ("a", "A")) == ("A", "a")  # names differing only in case
    with pytest.raises(ValueError):
        head_label_order(("bad", "meh", "good"), task)


@pytest.mark.parametrize("script", ["search.py", "export.py"])
def test_search_and_export_refuse_a_multi_process_launch(script, monkeypatch, capsys, tmp_path) -> None:
    from supernet.cli import export_main, search_main

    monkeypatch.setenv("WORLD_SIZE", "2")
    main = search_main if script == "search.py" else export_main
    args = ["--run", str(tmp_path)] + (["--subnet", "best"] if script == "export.py" else [])
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {script} runs in one process (2 were launched, each would time and write the same files): "
        f"run it as python {script} ..."
    )


# --------------------------------------------------------------------------- a task-tuned head's labels


def _three_class_task(path: Path) -> Path:
    rows = ["text,label"] + [
        f"{word} film number {i},{label}"
        for i in range(12)
        for word, label in (("awful", "negative"), ("fine", "neutral"), ("great", "positive"))
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "head, expected",
    [
        (("positive", "neutral", "negative"), ("positive", "neutral", "negative")),  # followed
        (("NEGATIVE", "NEUTRAL", "POSITIVE"), ("negative", "neutral", "positive")),  # same order, other case
        (("LABEL_0", "LABEL_1", "LABEL_2"), ("negative", "neutral", "positive")),  # unnamed: by position
    ],
)
def test_a_task_tuned_head_keeps_its_label_order(head, expected, minilm_dir, tmp_path, capsys) -> None:
    """A 3-class teacher saved with its labels in another order read 33% on its own task: the head's
    output i was scored as the task's class i."""
    model = save_tiny_model_dir(
        tmp_path / "model", minilm_dir, head="seq-cls", num_labels=3, id2label=dict(enumerate(head))
    )
    job = trainer._Job(
        _cfg(model, tmp_path / "run", f"task={_three_class_task(tmp_path / 'three.csv')}"), progress=False
    )
    job.load_data()
    assert job.task.label_names == expected
    for split in job.task.splits.values():  # every example keeps its class
        names = [expected[label] for label in split["label"]]
        assert names == [
            {"awful": "negative", "fine": "neutral", "great": "positive"}[t.split()[0]] for t in split["text"]
        ]
    followed = head[0] == "positive"
    assert (
        "note: model's head orders the labels ['positive', 'neutral', 'negative']" in capsys.readouterr().out
    ) == followed


def test_a_head_tuned_on_other_labels_is_refused(minilm_dir, tmp_path) -> None:
    model = save_tiny_model_dir(
        tmp_path / "model", minilm_dir, head="seq-cls", num_labels=3, id2label={0: "bad", 1: "meh", 2: "good"}
    )
    job = trainer._Job(
        _cfg(model, tmp_path / "run", f"task={_three_class_task(tmp_path / 'three.csv')}"), progress=False
    )
    with pytest.raises(RunError) as info:
        job.load_data()
    assert str(info.value) == (
        f"model '{model}' has a head tuned on the labels ['bad', 'meh', 'good'], the task's are "
        "['negative', 'neutral', 'positive']: pass its base model (a new head is trained), or give the data "
        "the head's labels"
    )


@pytest.mark.slow
def test_a_stage_restarted_without_its_own_checkpoint_logs_each_step_once(
    models, straight_run, tmp_path
) -> None:
    """Killed in stage W x D before its first checkpoint, a run resumes from stage_w/: the rows the
    killed attempt logged for W x D steps stayed, beside the new ones."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight_run, run)
    shutil.rmtree(run / "supernet")
    for ckpt in (run / "checkpoints").iterdir():
        if json.loads((ckpt / "trainer_state.json").read_text())["stage"] == "stage_wd":
            shutil.rmtree(ckpt)
    _run(models["seq-cls"], run, *RESUME, "resume=true")
    assert [r["step"] for r in _metrics(run)] == [r["step"] for r in _metrics(straight_run)]


def test_search_and_export_score_in_the_head_label_order(minilm_dir, tmp_path) -> None:
    """Training followed a tuned head's label order, search and export read the data in sorted order:
    their per-layer, int8 and export scores were against the wrong classes."""
    from transformers import AutoTokenizer, BertConfig

    from supernet.trainer import tokenized_split

    head = ("positive", "neutral", "negative")
    model = save_tiny_model_dir(
        tmp_path / "model", minilm_dir, head="seq-cls", num_labels=3, id2label=dict(enumerate(head))
    )
    cfg = _cfg(model, tmp_path / "run", f"task={_three_class_task(tmp_path / 'three.csv')}")
    job = trainer._Job(cfg, progress=False)
    job.load_data()
    tokenizer = AutoTokenizer.from_pretrained(model)
    config = BertConfig(num_labels=3, id2label=dict(enumerate(head)))
    dev = tokenized_split(cfg, tokenizer, "dev", model_config=config)
    assert dev["labels"] == job.tokenized["dev"]["labels"]
    assert tokenized_split(cfg, tokenizer, "dev")["labels"] != dev["labels"]  # without it: sorted order


def test_an_unnamed_tagger_serves_an_ner_task() -> None:
    """A token classifier with LABEL_i tags was refused for an NER task ('has a token classifier with
    3 tags, which cannot serve ... (needs a token classifier with 3 tags)')."""
    from transformers import BertConfig

    from supernet.tasks import get_task_kind, head_conflict

    config = BertConfig(architectures=["BertForTokenClassification"], num_labels=3)
    ner = get_task_kind("token-classification", ["B-PER", "I-PER", "O"])
    assert head_conflict(config, ner, 3) is None and ner.serves(config, 3)


@pytest.mark.parametrize("failure", ["no key", "not installed"])
def test_wandb_that_cannot_start_is_one_line(models, tmp_path, monkeypatch, failure: str) -> None:
    """report_to=wandb with WANDB_MODE=online and no API key, or without wandb installed, was a
    30-50 line traceback (exit 1)."""
    import wandb

    def no_key(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    if failure == "no key":
        monkeypatch.setenv("WANDB_MODE", "online")
        monkeypatch.setattr(wandb, "init", no_key)
        reason = "No API key configured. Use `wandb login` to log in.; WANDB_MODE=online"
        hint = "run `wandb login`, or set WANDB_MODE=offline (the default when unset)"
    else:
        monkeypatch.delenv("WANDB_MODE", raising=False)
        monkeypatch.setitem(sys.modules, "wandb", None)
        reason, hint = "import of wandb halted; None in sys.modules", "pip install wandb"
    with pytest.raises(RunError) as info:
        _run(models["seq-cls"], tmp_path / "run", "report_to=wandb")
    assert (
        str(info.value)
        == f"report_to=wandb: wandb cannot start ({reason}): {hint}, or train with report_to=none"
    )


def test_without_progress_bars_training_says_its_steps(models, tmp_path, monkeypatch, capsys) -> None:
    """--no-progress (as in CI logs) was silent from the importance line to the results table: on a
    real preset, tens of minutes without a line. Now a line per logged step, at most every 30 s."""
    capsys.readouterr()
    _run(models["base"], tmp_path / "run", "teacher.max_steps=3", "stage_w.max_steps=3")
    lines = capsys.readouterr().out.splitlines()
    # The task line names the classes (a label column read wrong shows there).
    assert [line.split(", train")[0] for line in lines if line.startswith("task ")] == [
        "task rt-sentences: 2 classes (negative, positive)"
    ]
    steps = [line for line in lines if re.match(r"(teacher|stage_w|stage_wd) step ", line)]
    # Within 30 s of the stage's first line only its last step is said again.
    assert [line.split(":")[0] for line in steps] == [
        "teacher step 1/3",
        "teacher step 3/3",
        "stage_w step 1/3",
        "stage_w step 3/3",
        "stage_wd step 1/2",
        "stage_wd step 2/2",
    ]
    assert re.fullmatch(r"teacher step 3/3: loss \d+\.\d{4}, \d+\.\d\d s/step, 0:00 left", steps[1]), steps[1]
    assert re.fullmatch(
        r"stage_wd step 1/2: mean loss \d+\.\d{4} over \d+ subnets, \d+\.\d\d s/step, \d+:\d\d left", steps[4]
    ), steps[4]
    # The grid's scoring, the bar's stand-in, is said before it starts (after the last stage).
    scoring = lines.index("scoring the 12 grid subnets on dev and test")
    assert scoring > lines.index(steps[-1])
    monkeypatch.setattr(trainer, "STEP_LINE_INTERVAL_S", 0.0)
    capsys.readouterr()
    _run(models["base"], tmp_path / "run2", "teacher.max_steps=3", "stage_w.max_steps=3")
    steps = [line for line in capsys.readouterr().out.splitlines() if " step " in line and "/3:" in line]
    assert [line.split(":")[0] for line in steps] == [
        f"{s} step {i}/3" for s in ("teacher", "stage_w") for i in (1, 2, 3)
    ]
    # With log_every 2 the first step is not logged, and said anyway: its time, no losses (a process
    # knows only its own share between logged steps); it does not hold back the first line with
    # losses for 30 s.
    monkeypatch.setattr(trainer, "STEP_LINE_INTERVAL_S", 30.0)
    capsys.readouterr()
    _run(models["base"], tmp_path / "run3", "teacher.max_steps=3", "stage_w.max_steps=3", "log_every=2")
    steps = [line for line in capsys.readouterr().out.splitlines() if line.startswith("teacher step ")]
    assert [line.split(":")[0] for line in steps] == [
        "teacher step 1/3",
        "teacher step 2/3",
        "teacher step 3/3",
    ]
    assert re.fullmatch(r"teacher step 1/3: \d+\.\d\d s/step, 0:\d\d left", steps[0]), steps[0]
    assert steps[1].startswith("teacher step 2/3: loss ")


def test_a_resume_may_change_what_is_saved_and_logged(e2e_run, models) -> None:
    """A run out of disk could not resume with fewer checkpoints: checkpoint_every and
    keep_last_checkpoints were refused as config changes, like log_every and report_to."""
    run, _ = e2e_run
    changed = _cfg(
        models["base"],
        run,
        "checkpoint_every=5",
        "keep_last_checkpoints=1",
        "log_every=3",
        "report_to=wandb",
        "wandb_project=other",
        "resume=true",
    )
    assert trainer.config_changes(sn.io.RunDir(run), changed) == []
    assert trainer.config_changes(
        sn.io.RunDir(run), _cfg(models["base"], run, "checkpoint_every=1", "seed=3")
    ) == ["seed: 42 -> 3"]


def test_keep_last_checkpoints_0_drops_them_once_the_supernet_is_saved(
    models, tmp_path, monkeypatch, capsys
) -> None:
    """A finished run kept its last checkpoint (1.3 GB with BERT-base, most of it optimizer state)
    and no setting dropped it. With 0, one is kept while training and none after."""
    save = trainer._Job._save_checkpoint
    on_disk: list[list[str]] = []

    def save_and_list(self, *args, **kwargs):
        save(self, *args, **kwargs)
        on_disk.append([p.name for p in self.run.list_checkpoints()])

    monkeypatch.setattr(trainer._Job, "_save_checkpoint", save_and_list)
    run = tmp_path / "run"
    _run(models["base"], run, "checkpoint_every=1", "keep_last_checkpoints=0")
    assert on_disk == [[f"step-{n}"] for n in range(1, len(on_disk) + 1)] and len(on_disk) >= 4
    assert list((run / "checkpoints").iterdir()) == []
    assert (
        f"removed 1 checkpoint(s) from {run / 'checkpoints'}: the supernet is saved (keep_last_checkpoints=0)"
        in (capsys.readouterr().out.splitlines())
    )
    assert (run / "supernet" / "model.safetensors").is_file() and (run / "eval.jsonl").is_file()


def test_a_checkpoint_that_cannot_be_removed_is_named_not_fatal(
    models, tmp_path, monkeypatch, capsys
) -> None:
    """An rmtree error (EBUSY from NFS's .nfs* files) raised on the main process alone, at a barrier the
    others waited at, and eval.jsonl was never written."""
    import shutil

    real = shutil.rmtree

    def busy(path, ignore_errors=False, **kwargs):
        if Path(path).parent.name == "checkpoints" and Path(path).name.startswith("step-"):
            if not ignore_errors:
                raise OSError(16, "Device or resource busy")
            return None
        return real(path, ignore_errors=ignore_errors, **kwargs)

    run = tmp_path / "run"
    monkeypatch.setattr(trainer.shutil, "rmtree", busy)
    _run(models["base"], run, "checkpoint_every=0", "keep_last_checkpoints=0")
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left and (run / "eval.jsonl").is_file()
    assert (
        f"warning: could not remove {', '.join(left)} from {run / 'checkpoints'}: delete by hand"
        in capsys.readouterr().out.splitlines()
    )


def test_typed_paths_reach_the_files_trained_on_and_an_edited_split_is_caught(
    models, tmp_path, monkeypatch, capsys
) -> None:
    """task=rel.csv and model=./folder are saved as typed in config.yaml (the run's identity), and
    search.py and export.py load the data by it: from any folder but the one train.py ran in they
    failed ("task 'rel.csv' is neither a packaged task ..."); output_dir=~/runs/x made a folder named
    '~'. And a data file edited after training gave search, export and a resume another split unnoticed:
    search ranked new subnets on it beside eval.jsonl's scores of the old one."""
    from supernet.cli import export_main, search_main
    from supernet.data import reorder_labels, split_digest

    work, home, elsewhere = tmp_path / "work", tmp_path / "home", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    rows = [f"review number {i},{'pos' if i % 2 else 'neg'}" for i in range(60)]
    (work / "rel.csv").write_text("\n".join(["text,label", *rows]) + "\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    model = os.path.relpath(models["base"], work)
    overrides = [f"model={model}", "output_dir=~/runs/rel", *TINY, "task=rel.csv"]
    result = train(load_config(TrainConfig, None, overrides), progress=False)
    run = sn.io.RunDir(result.run_dir)
    assert run.root == home / "runs" / "rel" and sorted(p.name for p in work.iterdir()) == ["rel.csv"]
    saved = load_config(TrainConfig, run.config)
    assert (saved.model, saved.task) == (model, "rel.csv")
    inputs = json.loads(run.inputs.read_text())
    task = trainer.task_from_config(saved)
    assert inputs == {
        "paths": {
            "model": {"typed": model, "path": str(models["base"])},
            "task": {"typed": "rel.csv", "path": str(work / "rel.csv")},
        },
        "split_sha256": {split: split_digest(task, split) for split in ("dev", "test")},
        "group_repeats": True,
        "processes": 1,
        "length_windows": "global batch",
    }
    # The classes in another order are the same split.
    assert split_digest(reorder_labels(task, task.label_names[::-1]), "dev") == inputs["split_sha256"]["dev"]
    # The same files typed another way are not a change of config.
    again = load_config(
        TrainConfig, None, [f"model=./{model}", f"output_dir={run.root}", *TINY, f"task={work}/rel.csv"]
    )
    assert trainer.config_changes(run, again) == []

    # From another folder: the recorded files.
    monkeypatch.chdir(elsewhere)
    assert (
        export_main(
            ["--run", str(run.root), "--subnet", "w0.50-d1.00", "--out", "out", "--no-onnx", "--no-progress"]
        )
        == 0
    )
    capsys.readouterr()

    # One dev sentence relabelled in the file: search refuses, export warns, a resume refuses.
    dev_text = task.splits["dev"]["text"][0]
    edited = [
        f"{t},{'neg' if label == 'pos' else 'pos'}" if t == dev_text else f"{t},{label}"
        for t, label in (r.split(",") for r in rows)
    ]
    (work / "rel.csv").write_text("\n".join(["text,label", *edited]) + "\n", encoding="utf-8")
    changed = (
        f"the dev split of task '{work / 'rel.csv'}' is not the one run '{run.root}' was trained on (its rows or "
        "labels changed since)"
    )
    fast = ["--repeats", "2", "--warmup", "1", "--threads", "1", "--no-progress"]
    assert search_main(["--run", str(run.root), "--latency-budget-ms", "1000", "--per-layer", *fast]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {changed}: scores of the two would mix; train a new run on the data as it is now"
    )
    # A grid search reads training's scores: it goes on, saying whose split they are, before timing.
    assert search_main(["--run", str(run.root), "--latency-budget-ms", "1000", *fast]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert (
        printed[0] == f"note: {changed}: the dev scores below are those training took on the split as it was"
    )
    out = [
        "--run",
        str(run.root),
        "--subnet",
        "w0.50-d1.00",
        "--out",
        "out",
        "--overwrite",
        "--no-onnx",
        "--no-progress",
    ]
    assert export_main(out) == 0
    assert (
        f"warning: {changed}: the scores below are of the split as it is now"
        in capsys.readouterr().err.splitlines()
    )
    monkeypatch.chdir(work)
    with pytest.raises(RunError) as info:
        train(load_config(TrainConfig, None, [*overrides, "resume=true"]), progress=False)
    assert (
        str(info.value) == f"{changed}: scores of the two would mix; train a new run on the data as it is now"
    )

    # The project moved (the recorded file is gone): the path is read as typed, from the new folder, and
    # a resume there records the new place.
    (work / "rel.csv").write_text("\n".join(["text,label", *rows]) + "\n", encoding="utf-8")
    moved = tmp_path / "moved"
    work.rename(moved)
    monkeypatch.chdir(moved)
    assert trainer.recorded_paths(saved, run).task == "rel.csv"
    train(load_config(TrainConfig, None, [*overrides, "resume=true"]), progress=False)
    assert json.loads(run.inputs.read_text())["paths"]["task"] == {
        "typed": "rel.csv",
        "path": str(moved / "rel.csv"),
    }


def test_a_run_started_before_inputs_were_recorded_keeps_its_split_and_gets_them_on_resume(
    models, tmp_path, monkeypatch, capsys
) -> None:
    """Runs started before 2026-12-01 split a file's repeated texts without keeping their copies
    together, and record no inputs.json. Read with today's rule, a resume trained on other dev and test
    rows than the run's, and search scored eval.jsonl's old-split figures beside new-split ones, all
    without a word; a relative task path was read from whatever folder the command ran in."""
    from supernet.data import load_task, split_digest

    work, other = tmp_path / "work", tmp_path / "other"
    work.mkdir()
    other.mkdir()
    rows = [f"review number {i % 45},{'pos' if i % 2 else 'neg'}" for i in range(60)]  # 15 texts twice
    (work / "rel.csv").write_text("\n".join(["text,label", *rows]) + "\n", encoding="utf-8")
    monkeypatch.chdir(work)
    run = sn.io.RunDir(tmp_path / "run")
    _run(models["base"], run.root, "task=rel.csv", "keep_last_checkpoints=1", "checkpoint_every=1")
    # As such a run is on disk: no inputs.json, and (as it is now trained again) stopped before the end.
    run.inputs.unlink()
    shutil.rmtree(run.supernet)
    saved = load_config(TrainConfig, run.config)

    def digests(task) -> dict[str, str]:
        return {split: split_digest(task, split) for split in ("dev", "test")}

    old_split = load_task("rel.csv", max_train_samples=64, max_eval_samples=32, group_repeats=False)
    then = digests(old_split)
    assert then != digests(trainer.task_from_config(saved))  # today's rule: another split
    texts = [set(old_split.splits[split]["text"]) for split in ("train", "dev", "test")]
    shared = len((texts[0] & texts[1]) | (texts[0] & texts[2]) | (texts[1] & texts[2]))
    assert shared > 0
    capsys.readouterr()
    assert digests(trainer.task_from_config(saved, run)) == then
    assert digests(trainer.task_from_config(saved, run)) == then  # read again: said once
    assert capsys.readouterr().err.splitlines() == [
        f"note: run '{run.root}' was started before 2026-12-01 and its task is split as then: {shared} text(s) "
        "of rel.csv have copies in more than one split, so its dev and test scores are not fully held out; a "
        "new run keeps each text's copies in one split"
    ]
    # From another folder holding another rel.csv, the relative path is said to be read from there.
    (other / "rel.csv").write_text("text,label\nsomething else,pos\n", encoding="utf-8")
    monkeypatch.chdir(other)
    assert trainer.recorded_paths(saved, run) == saved
    assert capsys.readouterr().err.splitlines() == [
        f"note: run '{run.root}' records no absolute paths (started before 2026-12-01): task 'rel.csv' is read "
        f"from {other / 'rel.csv'}, relative to this folder; if it was trained on another file, run this from "
        "the folder it was trained in"
    ]
    # Had its output_dir been typed relative ("run", from tmp_path), its paths are read from there.
    save_config(replace(saved, output_dir="run"), run.config)
    shutil.copy(work / "rel.csv", tmp_path / "rel.csv")
    trainer._SAID_OLD_RUN.clear()
    assert trainer.recorded_paths(saved, run).task == str(tmp_path / "rel.csv")
    assert capsys.readouterr().err.splitlines() == [
        f"note: task 'rel.csv' is read from {tmp_path / 'rel.csv'}, beside the folder run '{run.root}' was "
        f"trained from, not {other / 'rel.csv'}"
    ]
    save_config(saved, run.config)
    # Resumed from where its relative output_dir was typed, it finishes on its own split and records
    # it from now on, paths as typed beside the files read.
    save_config(replace(saved, output_dir="run"), run.config)
    monkeypatch.chdir(tmp_path)
    resume = ["task=rel.csv", "keep_last_checkpoints=1", "checkpoint_every=1", "resume=true"]
    _run(models["base"], Path("run"), *resume)
    assert json.loads(run.inputs.read_text()) == {
        "paths": {
            "model": {"typed": str(models["base"]), "path": str(models["base"])},
            "task": {"typed": "rel.csv", "path": str(tmp_path / "rel.csv")},
        },
        "split_sha256": then,
        "group_repeats": False,
    }
    monkeypatch.chdir(other)  # and from any folder, the file it was trained on
    saved = load_config(TrainConfig, run.config)
    assert trainer.recorded_paths(saved, run).task == str(tmp_path / "rel.csv")
    assert digests(trainer.task_from_config(trainer.recorded_paths(saved, run), run)) == then


@pytest.mark.parametrize(
    ("typed", "named_as", "folder"),
    [
        ("runs/x", "proj/runs/x", "proj"),
        ("./runs/x", "proj/runs/x", "proj"),
        ("runs/x/", "proj/runs/x", "proj"),
        (".", "proj", "proj"),
        ("runs/x", "proj/links/x", None),  # renamed since: not told
        ("../x", "x", None),
        ("ABS", "proj/runs/x", None),
        # A symlinked runs/ keeps the project it was typed in, not the link's target.
        ("runs/x", "proj/runs/x@", "proj"),
    ],
)
def test_the_folder_an_older_run_was_trained_from(tmp_path, typed, named_as, folder) -> None:
    root = tmp_path / named_as.rstrip("@")
    if named_as.endswith("@"):
        (tmp_path / "scratch" / "runs" / "x").mkdir(parents=True)
        (tmp_path / "proj").mkdir()
        (tmp_path / "proj" / "runs").symlink_to(tmp_path / "scratch" / "runs")
    else:
        root.mkdir(parents=True)
    output_dir = str(root) if typed == "ABS" else typed
    cfg = load_config(TrainConfig, None, ["model=m", "task=t.csv", f"output_dir={output_dir}"])
    save_config(cfg, root / "config.yaml")
    found = trainer._training_folder(sn.io.RunDir(root))
    assert found == (None if folder is None else tmp_path / folder)


def test_a_fresh_start_replaces_inputs_a_killed_start_left(models, tmp_path, capsys) -> None:
    """A first start killed after writing config.yaml and inputs.json left them; the next start in that
    folder (fresh: nothing was trained) kept the old inputs.json, and a resume read the old file."""
    run = sn.io.RunDir(tmp_path / "run")
    run.root.mkdir()
    save_config(_cfg(models["base"], run.root, "seed=7"), run.config)
    run.inputs.write_text(
        json.dumps({"paths": {"task": {"typed": "rt-sentences", "path": "/elsewhere.csv"}}})
    )
    _run(models["base"], run.root)
    assert json.loads(run.inputs.read_text())["paths"] == {
        "model": {"typed": str(models["base"]), "path": str(models["base"])}
    }
    # A damaged one is said and ignored, not a traceback.
    run.inputs.write_text("[]")
    saved = load_config(TrainConfig, run.config)
    capsys.readouterr()
    assert trainer.recorded_paths(saved, run) == saved
    trainer.check_split(trainer.task_from_config(saved), "dev", run)  # read again: said once
    assert capsys.readouterr().err.splitlines() == [
        f"warning: ignoring '{run.inputs}' (not what train.py writes): the config's paths are read as typed and "
        "the splits are not checked"
    ]


def test_a_resume_from_another_folder_reads_the_recorded_files(
    e2e_run, models, tmp_path, monkeypatch
) -> None:
    run = tmp_path / "run"
    shutil.copytree(e2e_run[0], run)
    monkeypatch.chdir(models["base"].parent)
    saved = load_config(TrainConfig, run / "config.yaml")
    save_config(replace(saved, model=models["base"].name), run / "config.yaml")  # typed relative
    inputs = json.loads((run / "inputs.json").read_text())
    inputs["paths"] = {"model": {"typed": models["base"].name, "path": str(models["base"])}}
    (run / "inputs.json").write_text(json.dumps(inputs))
    identity = run_identity(run)
    monkeypatch.chdir(tmp_path)  # where models["base"].name names nothing
    cfg = load_config(
        TrainConfig,
        None,
        [f"model={models['base'].name}", f"output_dir={run}", *TINY, "checkpoint_every=1", "resume=true"],
    )
    train(cfg, progress=False)
    assert run_identity(run) == identity  # config.yaml as saved: searches and kits of the run still match


def test_a_checkpoint_that_fills_the_disk_is_one_line_and_removed(models, tmp_path, monkeypatch) -> None:
    """torch.save on a full disk said 'unexpected pos ...' in a 40-line traceback, and the half
    checkpoint (hidden, ~140 MB for MiniLM) stayed, keeping the disk full."""
    import shutil
    from collections import namedtuple

    from accelerate import Accelerator

    real_save = Accelerator.save_state
    calls: list[str] = []

    def fills_the_disk(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        if len(calls) < 3:
            return real_save(self, output_dir, **kwargs)
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "model.safetensors").write_bytes(b"half")
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10, 10, 0))
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 46906560 vs 46906448")

    monkeypatch.setattr(Accelerator, "save_state", fills_the_disk)
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        _run(models["seq-cls"], run, "checkpoint_every=1")
    assert str(info.value) == (
        f"No space left on device writing checkpoint '{run / 'checkpoints' / 'step-3'}' (the last good one is "
        f"{run / 'checkpoints' / 'step-2'}): free space, then rerun with resume=true"
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-1", "step-2"]  # no .step-3.tmp
    # Space freed, the run resumes; a half checkpoint a killed job left (hidden) is cleared first.
    monkeypatch.undo()
    (run / "checkpoints" / ".step-7.tmp").mkdir()
    (run / "checkpoints" / ".step-7.tmp" / "optimizer.bin").write_bytes(b"half")
    _run(models["seq-cls"], run, "checkpoint_every=1", "resume=true")
    assert not (run / "checkpoints" / ".step-7.tmp").exists() and (run / "supernet").is_dir()


def test_a_lock_file_that_keeps_changing_is_given_up_after_five_tries(tmp_path, monkeypatch, capsys) -> None:
    """A filesystem whose stat and fstat never agree made the lock retry until RecursionError."""
    monkeypatch.setattr(trainer, "_same_file", lambda handle, path: False)
    assert trainer._lock_run_dir(tmp_path) is None
    assert capsys.readouterr().err == (
        f"note: output_dir '{tmp_path}' cannot be locked (its lock file changes under it): nothing stops a second "
        "job from training it at the same time\n"
    )


@pytest.mark.parametrize(
    "env, rank",
    [
        ({}, 0),
        ({"RANK": "1"}, 0),
        ({"RANK": "1", "WORLD_SIZE": "2"}, 1),
        ({"RANK": "0", "WORLD_SIZE": "2"}, 0),
    ],
)
def test_process_rank_ignores_a_rank_left_in_a_shell(env: dict, rank: int, monkeypatch) -> None:
    from supernet.cli import process_rank

    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert process_rank() == rank


def test_notes_on_an_older_run_come_from_the_main_process_alone(tmp_path, monkeypatch, capsys) -> None:
    run = sn.io.RunDir(tmp_path / "run")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    trainer._say_once(run, "task", "note: one")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    trainer._say_once(run, "task", "note: one")
    trainer._say_once(run, "task", "note: one")
    assert capsys.readouterr().err == "note: one\n"


def test_process_mean_keeps_the_training_order() -> None:
    """Averaged over 2 processes, the window came back sorted by name: the progress bar's loss readout
    showed w0.25-... and w0.50-... subnets, not the first ones trained (w1.00-d1.00 first)."""
    from types import SimpleNamespace

    reduced: list[list[float]] = []

    def reduce(tensor, reduction):
        reduced.append(tensor.tolist())
        return tensor / 2  # as if the other process's values were all 0

    acc = SimpleNamespace(num_processes=2, device=torch.device("cpu"), reduce=reduce)
    window = {"w1.00-d1.00": [4.0, 2.0], "w0.25-d0.50": [8.0], "w0.50-d1.00": [6.0, 6.0]}
    out = trainer._process_mean(acc, window)
    assert list(out) == list(window)  # the order the subnets train in
    assert out == {"w1.00-d1.00": [2.0, 1.0], "w0.25-d0.50": [4.0], "w0.50-d1.00": [3.0, 3.0]}
    assert reduced == [[8.0, 6.0, 6.0, 4.0, 2.0]]  # reduced in one sorted order in every process


def test_length_windows_of_a_run_started_before_the_global_batch_rule(tmp_path) -> None:
    """group_by_length's windows are sized by the global batch from the run that records it; a run
    started before kept the per-process batch, or its resume mid-epoch would skip into another
    order (some examples trained twice in the epoch, others never)."""
    from types import SimpleNamespace

    run = sn.io.RunDir(tmp_path)
    cfg = SimpleNamespace(batch_size=8, gradient_accumulation_steps=2)
    job = SimpleNamespace(cfg=cfg, run=run, accelerator=SimpleNamespace(num_processes=2))
    size = trainer._Job._length_window_batch.func
    (tmp_path / "inputs.json").write_text(
        json.dumps({"paths": {}, "split_sha256": {}, "group_repeats": True})
    )
    assert size(job) == 8  # recorded before the rule: per-process batch
    trainer.record_inputs(TrainConfig(model="m", task="t", output_dir=str(tmp_path)), run, None, processes=2)
    assert size(job) == 32 and json.loads(run.inputs.read_text())["length_windows"] == "global batch"


def test_a_trained_runs_scores_reach_wandb(models, tmp_path, monkeypatch, wandb_env) -> None:
    """report_to=wandb: only the losses reached wandb; the grid's dev and test scores (eval.jsonl) and
    the teacher's now go to its run summary."""
    from supernet import tracking

    sent: list[dict] = []
    monkeypatch.setattr(tracking._WandbLogger, "summary", lambda self, metrics: sent.append(metrics))
    result = _run(models["seq-cls"], tmp_path / "run", "report_to=wandb")
    rows = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    assert sent == [tracking.eval_summary(rows, {"accuracy": result.teacher_accuracy})]
    assert (
        sent[0]["eval/w0.25-d0.50/accuracy"] == rows[-1]["accuracy"] and rows[-1]["subnet"] == "w0.25-d0.50"
    )

"""Gradient importance of heads and neurons, layer importance, score files, and a real-model check."""

from __future__ import annotations

import copy
import functools
import re
import time
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
import transformers
from conftest import FAMILY_NAMES, tiny_batch, tiny_model

import supernet as sn
from supernet.importance import (
    ImportanceScores,
    compute_importance,
    head_importance,
    layer_importance,
    neuron_importance,
)
from supernet.reorder import reorder_by_importance
from supernet.tasks import TASK_KINDS

FD_EPS = 1e-3
FD_RTOL = 1e-6


def _labelled(seed: int, labels: list[int], seq: int = 11) -> dict[str, torch.Tensor]:
    return {**tiny_batch(seed=seed, batch=len(labels), seq=seq), "labels": torch.tensor(labels)}


@torch.no_grad()
def _sum_loss(model, batch) -> float:
    """The importance loss: summed cross-entropy of one batch (float64 model)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return F.cross_entropy(model(**inputs).logits, batch["labels"], reduction="sum").item()


def _double_supernet(family: str, seed: int = 0):
    # A wider init than the default 0.02 gives gradients well above the float64 round-off of the loss.
    return sn.to_supernet(tiny_model(family, seed=seed, initializer_range=0.2)).double().eval()


def _close(got: float, want: float, scale: float) -> bool:
    """Relative check; `scale` (the largest score of the tensor) guards the near-zero scores."""
    return abs(got - want) <= FD_RTOL * max(abs(want), 1e-3 * scale)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and the CI machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- finite differences


@torch.no_grad()
def _scaled(tensors_and_slices, factor: float, fn):
    """Run fn() with each (tensor, index) region multiplied by factor, then restore exactly."""
    saved = [(t, idx, t[idx].clone()) for t, idx in tensors_and_slices]
    for t, idx, _ in saved:
        t[idx] = t[idx] * factor
    try:
        return fn()
    finally:
        for t, idx, old in saved:
            t[idx] = old


def _central_difference(regions, loss) -> float:
    """d loss / d g at g = 1 when every region is scaled by g.

    Central differences at eps and eps/2 combined by one Richardson step: the O(eps^2) error is
    gone, so even scores 1e-4 times the largest one match to ~1e-6 relative.
    """

    def central(eps: float) -> float:
        return (_scaled(regions, 1 + eps, loss) - _scaled(regions, 1 - eps, loss)) / (2 * eps)

    return (4 * central(FD_EPS / 2) - central(FD_EPS)) / 3


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_head_importance_matches_finite_difference(family: str) -> None:
    model = _double_supernet(family)
    batch = _labelled(seed=1, labels=[0, 2, 1, 1])
    scores = head_importance(model, [batch])
    state = sn.supernet_state(model)
    L, H, d = state.arch.num_layers, state.arch.num_heads, state.arch.head_dim
    assert scores.shape == (L, H)
    scale = scores.abs().max().item()
    assert scale > 0
    loss = lambda: _sum_loss(model, batch)  # noqa: E731
    for layer, attn in enumerate(state.attentions):
        for head in range(H):
            # Scaling head h's input columns of O by g is exactly the gate g on that head.
            cols = (slice(None), slice(head * d, (head + 1) * d))
            fd = _central_difference([(attn.out.weight, cols)], loss)
            got = scores[layer, head].item()
            assert _close(got, abs(fd), scale), (layer, head, got, fd)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_neuron_importance_matches_finite_difference(family: str) -> None:
    model = _double_supernet(family)
    batch = _labelled(seed=2, labels=[1, 0, 2])
    scores = neuron_importance(model, [batch])
    state = sn.supernet_state(model)
    assert scores.shape == (state.arch.num_layers, state.arch.ffn_dim)
    scale = scores.abs().max().item()
    loss = lambda: _sum_loss(model, batch)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    for layer, ffn in enumerate(state.ffns):
        for n in torch.randperm(state.arch.ffn_dim, generator=g)[:6].tolist():
            up_regions = [(ffn.up.weight, (n, slice(None)))]
            if ffn.up.bias is not None:
                up_regions.append((ffn.up.bias, n))
            up = _central_difference(up_regions, loss)  # dL/d alpha
            down = _central_difference([(ffn.down.weight, (slice(None), n))], loss)  # dL/d beta
            got = scores[layer, n].item()
            assert _close(got, abs(up) + abs(down), scale), (layer, n, got, up, down)


def test_gradient_scores_accumulate_over_batches() -> None:
    model = _double_supernet("bert")
    a, b = _labelled(seed=3, labels=[0, 1]), _labelled(seed=4, labels=[2, 2, 0])
    torch.testing.assert_close(
        head_importance(model, [a, b]), head_importance(model, [a]) + head_importance(model, [b])
    )
    torch.testing.assert_close(
        neuron_importance(model, [a, b]), neuron_importance(model, [a]) + neuron_importance(model, [b])
    )


# --------------------------------------------------------------------------- layer importance


def _loss_increases_by_hand(model, mean_loss) -> list[float]:
    """`mean_loss()` with each of the 4 layers skipped, minus the full model's; leaves the max net."""
    sn.set_max_net(model)
    full = mean_loss()
    increases = []
    for skip in range(4):
        sn.set_active_subnet(model, sn.SubnetConfig(layers=tuple(i for i in range(4) if i != skip)))
        increases.append(mean_loss() - full)
    sn.set_max_net(model)
    return increases


@pytest.mark.parametrize("family", ["bert", "distilbert", "electra"])
def test_layer_importance_is_loss_increase_when_skipped(family: str) -> None:
    model = sn.to_supernet(tiny_model(family))
    batches = [_labelled(seed=5, labels=[0, 1, 2]), _labelled(seed=6, labels=[2, 1], seq=7)]

    @torch.no_grad()
    def mean_loss() -> float:
        total = sum(_sum_loss(model, b) for b in batches)
        return total / sum(len(b["labels"]) for b in batches)

    want = _loss_increases_by_hand(model, mean_loss)
    got = layer_importance(model, batches)
    assert got.shape == (4,)
    torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-6)
    assert len(set(got.tolist())) == 4  # a real signal per layer, not a constant


def test_layer_importance_of_tagged_tokens_is_per_tagged_token() -> None:
    """The summed loss was divided by every label position, untagged ones (-100) included: 15 of 33
    tagged tokens read 0.497 for a mean of 1.094 over the tagged ones."""
    from supernet.tasks import TASK_KINDS

    kind = TASK_KINDS["token-classification"]
    model = sn.to_supernet(tiny_model("bert", head="token-cls"))
    batch = tiny_batch(seed=3, batch=3, seq=11)
    labels = torch.randint(0, 3, (3, 11), generator=torch.Generator().manual_seed(0))
    labels[:, ::2] = -100  # later sub-tokens, special tokens and padding are untagged
    batch["labels"] = labels
    tagged = int((labels != -100).sum())
    assert 0 < tagged < labels.numel()

    @torch.no_grad()
    def mean_loss() -> float:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return kind.hard_loss(model(**inputs).logits, labels, reduction="sum").item() / tagged

    want = _loss_increases_by_hand(model, mean_loss)
    got = layer_importance(model, [batch], functools.partial(kind.hard_loss, reduction="sum"))
    torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-6)


def test_layer_importance_of_single_layer_model_is_infinite() -> None:
    model = sn.to_supernet(tiny_model("bert", num_layers=1))
    assert layer_importance(model, [_labelled(seed=0, labels=[0, 1])]).tolist() == [float("inf")]


# --------------------------------------------------------------------------- no side effects


def test_importance_leaves_model_state_alone() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    batch = _labelled(seed=7, labels=[0, 1, 2])
    frozen = {n for n, _ in model.named_parameters() if "embeddings" in n}
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    sub = sn.SubnetConfig(width_mult=0.5, depth_mult=0.75)
    sn.set_active_subnet(model, sub)
    model.train()
    model.bert.encoder.eval()  # a mixed train/eval state must come back as it was
    modes = {n: m.training for n, m in model.named_modules()}
    state = sn.supernet_state(model)
    active_before = ([a.active_heads for a in state.attentions], [f.active_neurons for f in state.ffns])
    layers_before = sn.active_layers(model)

    def check() -> None:
        assert all(p.grad is None for p in model.parameters())
        assert {n for n, p in model.named_parameters() if not p.requires_grad} == frozen
        assert sn.active_subnet(model) == sub
        assert sn.active_layers(model) == layers_before
        assert ([a.active_heads for a in state.attentions], [f.active_neurons for f in state.ffns]) == (
            active_before
        )
        assert {n: m.training for n, m in model.named_modules()} == modes
        assert all(not a.out._forward_pre_hooks for a in state.attentions)  # gates removed

    head = head_importance(model, [batch])
    check()
    neuron = neuron_importance(model, [batch])
    check()
    layer = layer_importance(model, [batch])
    check()
    scores = compute_importance(model, iter([batch]))  # an iterator is consumed once, that is enough
    check()
    # Scores are properties of the max net, whatever subnet was active.
    torch.testing.assert_close(scores.head, head)
    torch.testing.assert_close(scores.neuron, neuron)
    torch.testing.assert_close(scores.layer, layer)
    sn.set_max_net(model)
    torch.testing.assert_close(head_importance(model, [batch]), head)
    # Frozen parameters still get scored (the embeddings do not matter here, but FFN/heads do).
    model.requires_grad_(False)
    torch.testing.assert_close(head_importance(model, [batch]), head)
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())


def test_importance_restores_existing_gradients() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    params = list(model.parameters())
    for p in params:
        p.grad = torch.full_like(p, 0.5)
    saved = [p.grad for p in params]
    head_importance(model, [_labelled(seed=8, labels=[1, 1])])
    assert all(p.grad is g for p, g in zip(params, saved, strict=True))
    assert all(torch.all(p.grad == 0.5) for p in params)


# --------------------------------------------------------------------------- score files


def _scores() -> ImportanceScores:
    g = torch.Generator().manual_seed(0)
    return ImportanceScores(
        head=torch.rand(4, 4, generator=g),
        neuron=torch.rand(4, 48, generator=g),
        layer=torch.rand(4, generator=g),
    )


def test_scores_round_trip(tmp_path) -> None:
    scores = _scores()
    path = tmp_path / "importance.safetensors"
    scores.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["importance.safetensors"]  # no tmp file left
    loaded = ImportanceScores.load(path)
    for name in ("head", "neuron", "layer"):
        assert torch.equal(getattr(loaded, name), getattr(scores, name))
        assert getattr(loaded, name).dtype == torch.float32
    # Overwriting an existing file works (atomic replace).
    ImportanceScores(head=scores.head * 2, neuron=scores.neuron, layer=scores.layer).save(path)
    assert torch.equal(ImportanceScores.load(path).head, scores.head * 2)


@pytest.mark.parametrize("keep", [0, 5, 20, -10], ids=["empty", "5-bytes", "20-bytes", "minus-10"])
def test_truncated_scores_file_gives_clear_error(tmp_path, keep: int) -> None:
    good = tmp_path / "good.safetensors"
    _scores().save(good)
    data = good.read_bytes()
    bad = tmp_path / "importance.safetensors"
    bad.write_bytes(data[:keep])
    with pytest.raises(ValueError) as info:
        ImportanceScores.load(bad)
    # The reason in brackets is safetensors' own wording (e.g. "Error while deserializing header: header
    # too small"), which is not pinned: the rest of the line is asserted.
    message = str(info.value)
    assert re.fullmatch(
        rf"{re.escape(str(bad))} is not a readable importance file \([^\n]+\); delete it to recompute the scores",
        message,
    ), message


def test_scores_file_missing_tensor(tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "partial.safetensors"
    save_file({"head": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ValueError) as info:
        ImportanceScores.load(path)
    assert str(info.value) == f"{path} lacks importance tensors ['layer', 'neuron']"


# --------------------------------------------------------------------------- the real model


REAL_STEPS, REAL_BATCH, REAL_LENGTH, REAL_LR = 60, 32, 64, 1e-4


def _length_batches(split, tokenizer, batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Batches of similar-length examples (about half the padding of random batches: ~2x faster)."""
    order = sorted(range(len(split)), key=lambda i: (len(split[i]["input_ids"]), i))
    return [
        tokenizer.pad([split[i] for i in order[start : start + batch_size]], return_tensors="pt")
        for start in range(0, len(order), batch_size)
    ]


@contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tuned_minilm(minilm_dir):
    """The packaged MiniLM-L6 fine-tuned briefly on rt-sentences, with its dev batches.

    60 AdamW steps of 32 examples (1000 training rows, max_length 64) with the embeddings frozen
    and length-bucketed batches: about 50 s on one busy core. One thread, because the CI machine's
    2 cores are shared and oversubscribed threads made each step 5x slower.
    """
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    from supernet.data import load_task, tokenize_task

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    task = load_task("rt-sentences", max_train_samples=1000, max_eval_samples=128)
    tokenized = tokenize_task(task, tokenizer, REAL_LENGTH)
    train_batches = _length_batches(tokenized["train"], tokenizer, REAL_BATCH)
    dev = _length_batches(tokenized["dev"], tokenizer, 64)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)
    model.base_model.embeddings.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=REAL_LR)
    schedule = get_linear_schedule_with_warmup(optimizer, REAL_STEPS // 10, REAL_STEPS)
    g = torch.Generator().manual_seed(0)
    model.train()
    with _threads(1):
        for step in range(REAL_STEPS):
            if step % len(train_batches) == 0:
                order = torch.randperm(len(train_batches), generator=g).tolist()
            model(**train_batches[order[step % len(train_batches)]]).loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
    model.eval().requires_grad_(False)
    print(f"\nfine-tuned MiniLM-L6 for {REAL_STEPS} steps in {time.perf_counter() - started:.1f}s")
    return model, dev


@torch.no_grad()
def _mean_dev_loss(model, batches) -> float:
    total, count = 0.0, 0
    for batch in batches:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        total += F.cross_entropy(logits, batch["labels"], reduction="sum").item()
        count += len(batch["labels"])
    return total / count


@pytest.mark.slow
def test_real_model_reorder_keeps_function_and_helps_narrow_subnets(tuned_minilm) -> None:
    tuned, dev = tuned_minilm  # the autouse fixture runs this test on one thread too
    supernet = sn.to_supernet(copy.deepcopy(tuned)).eval()
    scores = compute_importance(supernet, dev)
    assert scores.head.shape == (6, 12) and scores.neuron.shape == (6, 1536) and scores.layer.shape == (6,)
    assert torch.isfinite(scores.head).all() and (scores.head > 0).any()

    original = copy.deepcopy(supernet)
    reverse = copy.deepcopy(supernet)
    reorder_by_importance(supernet, scores)
    reorder_by_importance(
        reverse, ImportanceScores(head=-scores.head, neuron=-scores.neuron, layer=scores.layer)
    )

    # (a) the full network computes the same function on real dev batches.
    worst = 0.0
    with torch.no_grad():
        for batch in dev:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            worst = max(worst, (supernet(**inputs).logits - tuned(**inputs).logits).abs().max().item())
    print(f"max |logit change| of the full network after reorder: {worst:.2e}")
    assert worst <= 1e-5

    # (b) at width 0.5, keeping the important half beats keeping the unimportant half.
    half = sn.SubnetConfig(width_mult=0.5)
    losses = {}
    for name, model in (("reordered", supernet), ("original order", original), ("reverse", reverse)):
        sn.set_active_subnet(model, half)
        losses[name] = _mean_dev_loss(model, dev)
    sn.set_max_net(supernet)
    full = _mean_dev_loss(supernet, dev)
    print(
        f"mean dev loss: full {full:.4f}; w0.50: "
        + ", ".join(f"{name} {value:.4f}" for name, value in losses.items())
    )
    assert losses["reordered"] < losses["reverse"]


# --------------------------------------------------------------------------- micro-batches


def test_micro_batches_group_by_length_and_trim_only_padding() -> None:
    from supernet.importance import micro_batches

    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    ids = torch.arange(25).view(5, 5) * mask
    tags = torch.where(mask.bool(), 1, -100)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": tags, "refs": ["a", "b", "c", "d", "e"]}
    got = micro_batches(batch, size=2)
    # Longest first (rows 1, 3 | 4, 0 | 2), each trimmed to its own longest, per-token labels too.
    assert [m["refs"] for m in got] == [["b", "d"], ["e", "a"], ["c"]]
    assert [tuple(m["input_ids"].shape) for m in got] == [(2, 5), (2, 3), (1, 1)]
    assert got[1]["input_ids"].tolist() == [[20, 21, 22], [0, 1, 0]]
    assert got[1]["labels"].tolist() == [[1, 1, 1], [1, 1, -100]]
    # A per-token label on padding (not -100) would be lost by trimming: that micro-batch keeps its width.
    tags[2, 3] = 0
    assert [m["labels"].shape[1] for m in micro_batches({**batch, "labels": tags}, size=2)] == [5, 3, 5]
    # Left padding: nothing can be trimmed from the right.
    left = mask.flip(1)
    assert {
        m["input_ids"].shape[1]
        for m in micro_batches({"input_ids": ids, "attention_mask": left, "labels": torch.zeros(5)}, size=2)
    } == {5}
    # One label per example (classification) is only reordered.
    plain = micro_batches(
        {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 3, 4])}, size=3
    )
    assert [m["labels"].tolist() for m in plain] == [[1, 3, 4], [0, 2]]


def test_scores_do_not_depend_on_micro_batch_size(monkeypatch) -> None:
    import supernet.importance as imp

    model = _double_supernet("bert")
    batches = [_labelled(seed=s, labels=[0, 1, 1, 0, 1, 0, 0], seq=15) for s in (0, 1)]
    monkeypatch.setattr(imp, "MICRO_BATCH_SIZE", 100)  # one micro-batch per batch
    whole = compute_importance(model, batches)
    monkeypatch.setattr(imp, "MICRO_BATCH_SIZE", 2)  # four, of 2, 2, 2 and 1 rows, widths 15, 11, 7, 3
    split = compute_importance(model, batches)
    for name in ("head", "neuron", "layer"):
        torch.testing.assert_close(getattr(split, name), getattr(whole, name), rtol=1e-10, atol=1e-12)


def test_importance_refuses_what_it_cannot_score_in_one_line() -> None:
    """One batch dict was an AttributeError ('str' object has no attribute 'get'), a batch without
    labels a bare KeyError, and no batches at all gave all-zero scores a reorder then ignored."""
    model = sn.to_supernet(tiny_model("bert"))
    batch = _labelled(0, [0, 1])
    with pytest.raises(TypeError) as err:
        sn.compute_importance(model, batch)
    assert str(err.value) == "batches must be an iterable of batches (dicts); one batch is [batch]"
    with pytest.raises(ValueError) as err:
        sn.compute_importance(model, [])
    assert str(err.value) == "batches is empty: importance needs at least one dev batch with labels"
    unlabelled = {k: v for k, v in batch.items() if k != "labels"}
    with pytest.raises(ValueError) as err:
        sn.compute_importance(model, [batch, unlabelled])
    assert str(err.value) == (
        f"batch 1 has no 'labels' ({', '.join(sorted(unlabelled))}): importance is a loss's gradient on dev"
    )
    short = {**batch, "labels": batch["labels"][:1]}
    with pytest.raises(ValueError) as err:
        sn.compute_importance(model, [short])
    assert str(err.value) == (
        "batch 0's labels are for 1 row, its input_ids have 2: one label (or one row of labels) per row"
    )
    scores = sn.compute_importance(model, [batch])
    assert scores.head.abs().sum() > 0 and scores.neuron.abs().sum() > 0


def test_importance_takes_the_loss_of_the_models_task_kind() -> None:
    """The default loss was classification's for every model: a tagger built in memory failed deep in
    torch ('Expected target size [6, 3], got [6, 12]'), and one output (regression) scored nothing."""
    config = tiny_model("bert").config
    torch.manual_seed(0)
    tagger = sn.to_supernet(transformers.BertForTokenClassification(config))
    batch = tiny_batch(0)
    tags = torch.randint(
        0, config.num_labels, batch["input_ids"].shape, generator=torch.Generator().manual_seed(1)
    )
    tagged = {**batch, "labels": tags.masked_fill(batch["attention_mask"] == 0, -100)}
    by_default = sn.compute_importance(tagger, [tagged])
    token_ce = sn.compute_importance(
        tagger, [tagged], functools.partial(TASK_KINDS["token-classification"].hard_loss, reduction="sum")
    )
    for name in ("head", "neuron", "layer"):
        torch.testing.assert_close(getattr(by_default, name), getattr(token_ce, name), rtol=0, atol=0)
    assert by_default.head.abs().sum() > 0
    # The per-kind functions take the same default (they kept classification's).
    torch.testing.assert_close(head_importance(tagger, [tagged]), by_default.head, rtol=0, atol=0)
    torch.testing.assert_close(neuron_importance(tagger, [tagged]), by_default.neuron, rtol=0, atol=0)
    torch.testing.assert_close(layer_importance(tagger, [tagged]), by_default.layer, rtol=0, atol=0)
    # One output: MSE, whose gradient is not zero (cross-entropy over one class is 0 for any weights).
    scorer = sn.to_supernet(
        transformers.BertForSequenceClassification(config.__class__(**{**config.to_dict(), "num_labels": 1}))
    )
    scores = sn.compute_importance(scorer, [{**batch, "labels": torch.rand(len(batch["input_ids"]))}])
    assert scores.head.abs().sum() > 0 and scores.neuron.abs().sum() > 0

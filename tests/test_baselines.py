"""Baselines of the accuracy-latency benchmark: pruning, students, the fine-tune loop, checks, markdown."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from conftest import tiny_batch, tiny_model

from supernet import is_supernet
from supernet.baselines import (
    DISTILBERT_LOSS,
    HARD_LABELS,
    BenchRow,
    aggregate_rows,
    check_dominance,
    check_targets,
    distilbert_student,
    finetune,
    format_markdown,
    layers_to_keep,
    measure_models,
    normalise_head_importance,
    prune_heads,
    prune_layers,
    replace_section,
    skip_layers,
    source_subnet,
    top_heads,
)
from supernet.distill import distill_loss
from supernet.importance import ImportanceScores
from supernet.latency import LatencySetting
from supernet.subnet import SubnetConfig

HEAD_DIM = 8  # tiny configs: hidden 32, 4 heads


def _layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    return model.base_model.encoder.layer


def _scores(head: torch.Tensor, layers: int = 4) -> ImportanceScores:
    return ImportanceScores(head=head, neuron=torch.rand(layers, 48), layer=torch.rand(layers))


def _rows(lin: torch.nn.Linear, head: int) -> torch.Tensor:
    return lin.weight[head * HEAD_DIM : (head + 1) * HEAD_DIM]


def test_normalised_head_importance_is_unit_l2_per_layer() -> None:
    head = torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    norm = normalise_head_importance(head)
    assert torch.allclose(norm.norm(dim=1), torch.ones(3))
    assert torch.allclose(norm[0], torch.tensor([0.6, 0.8, 0.0, 0.0]))
    # Ties keep the lower index first; order inside a layer is the raw order.
    assert top_heads(head, 2).tolist() == [[1, 0], [1, 0], [0, 1]]


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_prune_heads_keeps_exactly_the_top_k_heads_with_their_weights(keep: int) -> None:
    teacher = tiny_model("bert", seed=1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    head = torch.tensor(
        [[0.1, 0.9, 0.5, 0.3], [4.0, 1.0, 3.0, 2.0], [0.0, 0.0, 7.0, 0.5], [0.2, 0.1, 0.4, 0.3]]
    )
    dense = prune_heads(teacher, _scores(head), keep)

    expected = [sorted(range(4), key=lambda h, row=row: -float(row[h]))[:keep] for row in head]
    assert top_heads(head, keep).tolist() == expected
    assert dense.config.num_attention_heads_per_layer == [keep] * 4
    for layer, kept in enumerate(expected):
        src, dst = _layers(teacher)[layer].attention, _layers(dense)[layer].attention
        for name in ("query", "key", "value"):
            s, d = getattr(src.self, name), getattr(dst.self, name)
            assert d.weight.shape == (keep * HEAD_DIM, 32)
            for i, h in enumerate(kept):
                assert torch.equal(_rows(d, i), _rows(s, h)), (layer, name, i, h)
                assert torch.equal(
                    d.bias[i * HEAD_DIM : (i + 1) * HEAD_DIM], s.bias[h * HEAD_DIM : (h + 1) * HEAD_DIM]
                )
        cols = torch.cat([torch.arange(h * HEAD_DIM, (h + 1) * HEAD_DIM) for h in kept])
        assert torch.equal(dst.output.dense.weight, src.output.dense.weight[:, cols])
        assert torch.equal(dst.output.dense.bias, src.output.dense.bias)
        # The FFN is untouched and keeps its order.
        assert torch.equal(
            _layers(dense)[layer].intermediate.dense.weight, _layers(teacher)[layer].intermediate.dense.weight
        )
        assert torch.equal(
            _layers(dense)[layer].output.dense.weight, _layers(teacher)[layer].output.dense.weight
        )
    assert source_subnet(dense) == SubnetConfig(heads=(keep,) * 4, ffn=(48,) * 4)
    # The teacher is neither converted nor changed.
    assert not is_supernet(teacher)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_prune_heads_keeps_all_heads_equals_the_teacher() -> None:
    teacher = tiny_model("bert", seed=2)
    dense = prune_heads(teacher, _scores(torch.rand(4, 4)), 4)
    batch = tiny_batch()
    with torch.no_grad():
        assert torch.allclose(dense(**batch).logits, teacher(**batch).logits, atol=1e-5)


def test_layers_to_keep_picks_the_most_important_in_order() -> None:
    scores = torch.tensor([0.3, -0.1, 0.9, 0.2, 0.05, 0.9])
    assert layers_to_keep(scores, 4) == (0, 2, 3, 5)
    assert layers_to_keep(scores, 3) == (0, 2, 5)
    assert layers_to_keep(scores, 1) == (2,)  # tie: the lower index first
    with pytest.raises(ValueError) as info:
        layers_to_keep(scores, 7)
    assert str(info.value) == "keep must be in [1, 6] layers, got 7"


@pytest.mark.parametrize("keep", [(0, 2, 3), (1, 3)])
def test_prune_layers_keeps_exactly_those_layers(keep: tuple[int, ...]) -> None:
    teacher = tiny_model("bert", seed=3)
    dense = prune_layers(teacher, keep)
    assert len(_layers(dense)) == len(keep)
    assert dense.config.supernet_source["layers"] == list(keep)
    for i, src in enumerate(keep):
        src_state = _layers(teacher)[src].state_dict()
        for k, v in _layers(dense)[i].state_dict().items():
            assert torch.equal(v, src_state[k]), (i, src, k)
    assert torch.equal(dense.classifier.weight, teacher.classifier.weight)
    assert not is_supernet(teacher)


def test_distilbert_student_copies_teacher_layers_0_2_4() -> None:
    teacher = tiny_model("bert", seed=4, num_layers=6)
    student = distilbert_student(teacher)
    assert len(_layers(student)) == 3
    for i, src in enumerate((0, 2, 4)):
        src_state = _layers(teacher)[src].state_dict()
        for k, v in _layers(student)[i].state_dict().items():
            assert torch.equal(v, src_state[k]), (i, src, k)
    for k, v in student.base_model.embeddings.state_dict().items():
        assert torch.equal(v, teacher.base_model.embeddings.state_dict()[k])
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    # It is the DynaBERT depth-0.5 structure, which layer skipping also gives.
    skipped = skip_layers(teacher, 0.5)
    assert skipped.config.supernet_source["layers"] == [0, 2, 4]


def _labelled(seed: int) -> dict[str, torch.Tensor]:
    batch = tiny_batch(seed, batch=8, seq=9)
    batch["labels"] = torch.randint(0, 3, (8,), generator=torch.Generator().manual_seed(seed))
    return batch


def test_finetune_lowers_the_training_loss() -> None:
    model = prune_layers(tiny_model("bert", seed=5), (0, 2))
    batches = [_labelled(s) for s in range(3)]
    result = finetune(
        model, itertools.cycle(batches), steps=40, learning_rate=3e-3, weights=HARD_LABELS, seed=0
    )
    assert result.steps == 40 and len(result.losses) == 40
    assert result.mean_loss(first=False) < 0.5 * result.mean_loss(first=True)
    assert not model.training


def test_finetune_with_distilbert_losses_trains_the_student() -> None:
    teacher = tiny_model("bert", seed=6, num_layers=6)
    student = distilbert_student(teacher)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    batches = [_labelled(s) for s in range(3)]
    # The first step's loss, from the same forward (dropout seeded as finetune seeds it): DistilBERT's
    # weighted sum of soft CE, hard CE and the last hidden states' cosine, not the gold labels' alone.
    probe = copy.deepcopy(student).train()
    inputs = {k: v for k, v in batches[0].items() if k != "labels"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = probe(**inputs, output_hidden_states=True)
    with torch.no_grad():
        t_out = teacher.eval()(**inputs, output_hidden_states=True)
    terms = distill_loss(
        out.logits,
        [out.hidden_states[-1]],
        t_out.logits,
        [t_out.hidden_states[-1]],
        batches[0]["labels"],
        batches[0]["attention_mask"],
        DISTILBERT_LOSS,
    ).parts
    assert set(terms) == {"logit_kd", "hard_ce", "cosine"}
    first = float(terms["logit_kd"] + terms["hard_ce"] + terms["cosine"])  # DistilBERT's weights are 1, 1, 1
    assert abs(first - float(terms["hard_ce"])) > 1e-3
    result = finetune(
        student,
        itertools.cycle(batches),
        steps=30,
        learning_rate=3e-3,
        teacher=teacher,
        weights=DISTILBERT_LOSS,
    )
    assert result.losses[0] == pytest.approx(first, abs=1e-5)
    assert result.mean_loss(first=False) < result.mean_loss(first=True)
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())


def test_finetune_refuses_teacher_terms_without_a_teacher_and_short_data() -> None:
    model = tiny_model("bert")
    with pytest.raises(ValueError) as info:
        finetune(model, [_labelled(0)], steps=1, learning_rate=1e-3, weights=DISTILBERT_LOSS)
    assert str(info.value) == "a teacher is needed when the logit, hidden or cosine loss weight is nonzero"
    with pytest.raises(ValueError) as info:
        finetune(model, [_labelled(0)], steps=2, learning_rate=1e-3)
    assert str(info.value) == "batches ran out after 1 of 2 steps"


def test_measure_models_times_every_model_and_restores_modes() -> None:
    a, b = tiny_model("bert", seed=0), prune_layers(tiny_model("bert", seed=0), (0,))
    b.train()
    setting = LatencySetting(seq_len=16, num_threads=1, warmup=1, repeats=4)
    results = measure_models({"a": a, "b": b}, setting, rounds=2)
    assert list(results) == ["a", "b"]
    assert all(r.repeats == 4 and r.median_ms > 0 for r in results.values())
    assert b.training and not a.training


# --------------------------------------------------------------------------- checks and markdown


def _row(method: str, model: str, test: float, latency: float, dev: float | None = None, **kw) -> BenchRow:
    return BenchRow(
        method=method,
        model=model,
        dev_accuracy=test if dev is None else dev,
        test_accuracy=test,
        latency_ms=latency,
        params=1_000_000,
        flops=2_000_000_000,
        train_seconds=kw.pop("train_seconds", 60.0),
        **kw,
    )


def _hand_made() -> list[BenchRow]:
    return [
        _row("teacher", "teacher", 0.900, 20.0),
        _row("dynabert", "w1.00-d1.00", 0.895, 20.1),  # exactly teacher - 0.5 pt: PASS
        _row("dynabert", "w0.50-d1.00", 0.884, 11.0),  # needs 0.885: MISS
        _row("dynabert", "w0.25-d0.50", 0.851, 4.0),  # needs 0.850: PASS
        _row("dynabert", "w1.00-d0.50", 0.880, 10.0),
        _row("head-pruning", "heads-6", 0.870, 14.0),  # dominated by w0.50-d1.00 (0.884, 11 ms)
        _row(
            "distilbert", "layers-0-2-4", 0.879, 9.8
        ),  # w1.00-d0.50: 10.0 ms is within 3 % and 0.880 >= 0.879
        _row("layer-skipping", "d0.50", 0.870, 3.0),  # nothing is as fast
        _row("layer-pruning", "layers-3", 0.890, 10.0),  # as-fast subnets are all less accurate
    ]


def test_targets_pass_and_miss_on_hand_made_numbers() -> None:
    checks = check_targets(_hand_made())
    assert [c.status for c in checks] == ["PASS", "MISS", "PASS"]
    assert "w0.50-d1.00" in checks[1].name and "88.40 vs 88.50" in checks[1].detail
    missing = check_targets([r for r in _hand_made() if r.model != "w0.25-d0.50"])
    assert [c.status for c in missing] == ["PASS", "MISS", "N/A"]


def test_dominance_pass_and_miss_on_hand_made_numbers() -> None:
    checks = {c.name: c for c in check_dominance(_hand_made())}
    assert checks["DynaBERT dominates head-pruning heads-6"].status == "PASS"
    assert checks["DynaBERT dominates head-pruning heads-6"].detail == (
        "w0.50-d1.00: 88.40% at 11.00 ms vs 87.00% at 14.00 ms"
    )
    assert checks["DynaBERT dominates distilbert layers-0-2-4"].status == "PASS"
    # A PASS resting on the slack says so: 10.0 ms against 9.8 ms is 2% slower.
    assert checks["DynaBERT dominates distilbert layers-0-2-4"].detail == (
        "w1.00-d0.50: 88.00% at 10.00 ms (+2.0% latency, within the 3% tolerance) vs 87.90% at 9.80 ms"
    )
    assert checks["DynaBERT dominates layer-skipping d0.50"].status == "MISS"
    assert "no DynaBERT subnet is as fast" in checks["DynaBERT dominates layer-skipping d0.50"].detail
    assert checks["DynaBERT dominates layer-pruning layers-3"].status == "MISS"
    assert len(checks) == 4  # teacher and DynaBERT rows are not baselines
    strict = {c.name: c.status for c in check_dominance(_hand_made(), latency_tolerance=0.0)}
    assert strict["DynaBERT dominates distilbert layers-0-2-4"] == "MISS"


def test_markdown_table_and_checks() -> None:
    rows = _hand_made()
    checks = check_targets(rows) + check_dominance(rows)
    md = format_markdown(
        rows, checks, title="rt-sentences", notes=["a note"], labels={"dynabert": "DynaBERT"}
    )
    assert md.startswith("### rt-sentences\n\na note\n")
    assert "| DynaBERT | w0.50-d1.00 | 88.40 | 88.40 | 11.00 | 1.00 | 2.00 | 60 s |" in md
    assert "| DynaBERT w0.50-d1.00 test acc >= teacher - 1.5 pt | **MISS** |" in md
    assert "| DynaBERT w1.00-d1.00 test acc >= teacher - 0.5 pt | **PASS** |" in md
    assert f"Checks: 4/{len(checks)} PASS" in md


def test_aggregate_rows_gives_mean_and_std_over_seeds() -> None:
    rows = [
        _row("dynabert", "w1.00-d1.00", 0.80, 10.0, seed=42, train_seconds=100.0),
        _row("dynabert", "w1.00-d1.00", 0.90, 12.0, seed=43, train_seconds=140.0),
        _row("layer-skipping", "d0.50", 0.70, 5.0, seed=42, train_seconds=None, detail="layers 0,2"),
        _row("layer-skipping", "d0.50", 0.70, 5.0, seed=43, train_seconds=None, detail="layers 1,2"),
    ]
    agg = aggregate_rows(rows)
    assert [r.key for r in agg] == [("dynabert", "w1.00-d1.00"), ("layer-skipping", "d0.50")]
    first = agg[0]
    assert first.n_seeds == 2 and first.seed is None
    assert first.test_accuracy == pytest.approx(0.85) and first.test_accuracy_std == pytest.approx(
        0.0707107, rel=1e-5
    )
    assert first.latency_ms == pytest.approx(11.0) and first.train_seconds == pytest.approx(120.0)
    assert agg[1].train_seconds is None
    md = format_markdown(agg, [], title="t")
    assert "| dynabert | w1.00-d1.00 | 85.00 ± 7.07 | 85.00 ± 7.07 | 11.00 ± 1.41 |" in md
    assert agg[1].detail == "layers 0,2 / layers 1,2"
    assert (
        "| layer-skipping | d0.50 (layers 0,2 / layers 1,2) | 70.00 ± 0.00 | 70.00 ± 0.00 | 5.00 ± 0.00 | 1.00 | 2.00 | – |"
        in md
    )
    assert BenchRow.from_json(first.to_json()) == first


def test_replace_section_between_markers() -> None:
    doc = "# Benchmarks\n\nintro\n"
    once = replace_section(doc, "trec", "table v1")
    assert once == "# Benchmarks\n\nintro\n\n<!-- results:trec -->\ntable v1\n<!-- /results:trec -->\n"
    twice = replace_section(once + "\nafter\n", "trec", "table v2\n")
    assert (
        twice == "# Benchmarks\n\nintro\n\n<!-- results:trec -->\ntable v2\n<!-- /results:trec -->\n\nafter\n"
    )
    other = replace_section(twice, "rt-sentences", "rt")
    assert "table v2" in other and other.endswith(
        "<!-- results:rt-sentences -->\nrt\n<!-- /results:rt-sentences -->\n"
    )
    with pytest.raises(ValueError) as info:
        replace_section("<!-- /results:trec --> <!-- results:trec -->", "trec", "x")
    assert str(info.value) == (
        "malformed results markers for 'trec': need '<!-- results:trec -->' before '<!-- /results:trec -->'"
    )

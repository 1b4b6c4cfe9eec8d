"""Permutation helpers and importance reordering: the full network's function never changes."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import FAMILY_NAMES, LAYOUT_NAMES, tiny_batch, tiny_model
from torch import nn

import supernet as sn
from supernet.importance import ImportanceScores, head_importance
from supernet.reorder import head_rows, permute_in, permute_out, reorder_by_importance

TOL = 1e-5


def _outputs(model, batch):
    with torch.no_grad():
        return model(**batch, output_hidden_states=True)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and the CI machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- pure helpers


def test_head_rows_expands_head_order() -> None:
    rows = head_rows(torch.tensor([2, 0, 1]), 2)
    assert rows.tolist() == [4, 5, 0, 1, 2, 3]
    assert head_rows(torch.tensor([0]), 3).tolist() == [0, 1, 2]


def test_permute_pair_preserves_mlp() -> None:
    torch.manual_seed(0)
    up, down = nn.Linear(5, 7).double(), nn.Linear(7, 3).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    hidden_before = torch.relu(up(x))
    before = down(hidden_before)
    index = torch.randperm(7)
    permute_out(up, index)
    permute_in(down, index)
    hidden_after = torch.relu(up(x))
    # The hidden units are moved (bit for bit on most BLAS paths; a single-threaded GEMM may block
    # the permuted rows differently, so allow float64 rounding) ...
    torch.testing.assert_close(hidden_after, hidden_before[:, index], rtol=0, atol=1e-14)
    # ... and the output only differs by the order of the 7-term sums.
    torch.testing.assert_close(down(hidden_after), before, rtol=0, atol=1e-12)


def test_permute_without_bias_and_identity() -> None:
    torch.manual_seed(1)
    up = nn.Linear(3, 4, bias=False)
    weight = up.weight.detach().clone()
    permute_out(up, torch.arange(4))
    assert torch.equal(up.weight, weight)
    index = torch.tensor([3, 1, 0, 2])
    permute_out(up, index)
    assert torch.equal(up.weight, weight[index])
    assert up.weight.grad is None and up.weight.requires_grad  # still a plain trainable parameter


def test_permute_rejects_wrong_length() -> None:
    lin = nn.Linear(3, 4)
    with pytest.raises(ValueError) as info:
        permute_out(lin, torch.arange(3))
    assert str(info.value) == "index has 3 entries, linear has 4 outputs"
    with pytest.raises(ValueError) as info:
        permute_in(lin, torch.arange(4))
    assert str(info.value) == "index has 4 entries, linear has 3 inputs"


# --------------------------------------------------------------------------- reorder_by_importance


def _random_scores(model, seed: int, *, ties: bool = False) -> ImportanceScores:
    arch = sn.supernet_state(model).arch
    g = torch.Generator().manual_seed(seed)
    shape_h, shape_n = (arch.num_layers, arch.num_heads), (arch.num_layers, arch.ffn_dim)
    if ties:  # few distinct values, so the stable tie-break is exercised
        head = torch.randint(0, 2, shape_h, generator=g).float()
        neuron = torch.randint(0, 4, shape_n, generator=g).float()
    else:
        head, neuron = torch.rand(shape_h, generator=g), torch.rand(shape_n, generator=g)
    return ImportanceScores(head=head, neuron=neuron, layer=torch.rand(arch.num_layers, generator=g))


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("family", FAMILY_NAMES + LAYOUT_NAMES)
def test_reorder_keeps_max_net_function(family: str, ties: bool) -> None:
    stock = tiny_model(family)
    model = sn.to_supernet(copy.deepcopy(stock))
    scores = _random_scores(model, seed=3, ties=ties)
    batch = tiny_batch(seed=2)
    want = _outputs(stock, batch)

    head_order, neuron_order = reorder_by_importance(model, scores)

    got = _outputs(model, batch)
    assert (got.logits - want.logits).abs().max().item() <= TOL
    assert len(got.hidden_states) == len(want.hidden_states)
    for g, w in zip(got.hidden_states, want.hidden_states, strict=True):
        assert (g - w).abs().max().item() <= TOL
    # The orders are descending, stable argsorts of the scores ...
    arch = sn.supernet_state(model).arch
    assert head_order.shape == (arch.num_layers, arch.num_heads)
    assert neuron_order.shape == (arch.num_layers, arch.ffn_dim)
    assert torch.equal(head_order, torch.sort(scores.head, dim=1, descending=True, stable=True).indices)
    assert torch.equal(neuron_order, torch.sort(scores.neuron, dim=1, descending=True, stable=True).indices)
    for layer in range(arch.num_layers):
        permuted_h = scores.head[layer][head_order[layer]]
        permuted_n = scores.neuron[layer][neuron_order[layer]]
        assert torch.all(permuted_h[:-1] >= permuted_h[1:])
        assert torch.all(permuted_n[:-1] >= permuted_n[1:])
        if ties:  # equal scores keep their original relative order
            for scores_row, order in ((permuted_h, head_order[layer]), (permuted_n, neuron_order[layer])):
                same = scores_row[:-1] == scores_row[1:]
                assert torch.all(order[:-1][same] < order[1:][same])


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_reorder_moves_weights_as_documented(family: str) -> None:
    """order[l, i] is the old index of the unit now at position i (checked on the raw weights)."""
    model = sn.to_supernet(tiny_model(family))
    state = sn.supernet_state(model)
    d = state.arch.head_dim
    before = copy.deepcopy(model)
    head_order, neuron_order = reorder_by_importance(model, _random_scores(model, seed=4))
    old = sn.supernet_state(before)
    for layer, (attn, ffn) in enumerate(zip(state.attentions, state.ffns, strict=True)):
        old_attn, old_ffn = old.attentions[layer], old.ffns[layer]
        for i, h in enumerate(head_order[layer].tolist()):
            new_rows, old_rows = slice(i * d, (i + 1) * d), slice(h * d, (h + 1) * d)
            assert torch.equal(attn.query.weight[new_rows], old_attn.query.weight[old_rows])
            assert torch.equal(attn.value.bias[new_rows], old_attn.value.bias[old_rows])
            assert torch.equal(attn.out.weight[:, new_rows], old_attn.out.weight[:, old_rows])
        idx = neuron_order[layer]
        assert torch.equal(ffn.up.weight, old_ffn.up.weight[idx])
        assert torch.equal(ffn.down.weight, old_ffn.down.weight[:, idx])
        assert torch.equal(ffn.down.bias, old_ffn.down.bias)  # output side is untouched


def test_reorder_permutes_importance_consistently() -> None:
    """Importance recomputed after the reorder is the old importance, permuted by the returned order."""
    model = sn.to_supernet(tiny_model("bert")).double()
    batch = {**tiny_batch(seed=5), "labels": torch.tensor([0, 2, 1])}
    before = head_importance(model, [batch])
    head_order, _ = reorder_by_importance(
        model, ImportanceScores(head=before, neuron=torch.zeros(4, 48), layer=torch.zeros(4))
    )
    after = head_importance(model, [batch])
    torch.testing.assert_close(after, torch.gather(before, 1, head_order), rtol=1e-5, atol=1e-7)
    assert torch.all(after[:, :-1] >= after[:, 1:] - 1e-7)


def test_reorder_makes_narrow_subnet_keep_top_heads() -> None:
    """After the reorder, width 0.5 runs exactly the top-scoring half of the heads of every layer."""
    stock = tiny_model("bert")
    model = sn.to_supernet(copy.deepcopy(stock))
    scores = _random_scores(model, seed=6)
    head_order, neuron_order = reorder_by_importance(model, scores)
    top_heads = torch.topk(scores.head, 2, dim=1).indices
    top_neurons = torch.topk(scores.neuron, 24, dim=1).indices
    assert torch.equal(head_order[:, :2].sort(dim=1).values, top_heads.sort(dim=1).values)
    assert torch.equal(neuron_order[:, :24].sort(dim=1).values, top_neurons.sort(dim=1).values)


def test_reorder_rejects_wrong_shapes() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    good = _random_scores(model, seed=0)
    with pytest.raises(ValueError) as info:
        reorder_by_importance(
            model, ImportanceScores(head=good.head[:, :3], neuron=good.neuron, layer=good.layer)
        )
    assert str(info.value) == "head scores have shape (4, 3), expected (4, 4)"
    with pytest.raises(ValueError) as info:
        reorder_by_importance(
            model, ImportanceScores(head=good.head, neuron=good.neuron[:3], layer=good.layer)
        )
    assert str(info.value) == "neuron scores have shape (3, 48), expected (4, 48)"
    with pytest.raises(TypeError) as info:  # was AttributeError: 'Tensor' object has no attribute 'head'
        reorder_by_importance(model, good.head)
    assert str(info.value) == (
        "scores must be ImportanceScores (compute_importance's, or ImportanceScores.load), got Tensor"
    )

"""Cost model: params against dense references and a hand count; FLOPs against torch's counter."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers
from conftest import FAMILY_NAMES, LAYOUT_NAMES, tiny_config, tiny_model
from reference import reference_subnet
from torch.utils.flop_counter import FlopCounterMode

import supernet as sn


@pytest.mark.parametrize("family", FAMILY_NAMES + LAYOUT_NAMES)
@pytest.mark.parametrize(
    "cfg",
    [
        sn.MAX_NET,
        sn.SubnetConfig(width_mult=0.5, depth_mult=0.5),
        sn.SubnetConfig(heads=(4, 1, 3, 2), ffn=(48, 7, 20, 33), layers=(0, 1, 3)),
    ],
    ids=lambda c: c.name,
)
def test_count_params_equals_dense_reference(family: str, cfg: sn.SubnetConfig) -> None:
    stock = tiny_model(family)
    model = sn.to_supernet(copy.deepcopy(stock))
    r = sn.resolve_subnet(sn.supernet_state(model).arch, cfg)
    ref = reference_subnet(stock, list(r.heads), list(r.ffn), list(r.layers))
    assert sn.count_params(model, cfg) == sum(p.numel() for p in ref.parameters())


def test_count_params_hand_count() -> None:
    # BERT, vocab 99, positions 64, types 2, e=32, H=4 (d=8), F=48, L=4, 3 labels.
    model = sn.to_supernet(tiny_model("bert"))
    e, F = 32, 48
    embeddings = 99 * e + 64 * e + 2 * e + 2 * e  # word, position, token type, LayerNorm
    head = (e * e + e) + (e * 3 + 3)  # pooler, classifier

    def layer(w: int, m: int) -> int:
        return 3 * (e * w + w) + (w * e + e) + 2 * e + (e * m + m) + (m * e + e) + 2 * e

    assert sn.count_params(model, sn.MAX_NET) == embeddings + head + 4 * layer(32, 48)
    assert sn.count_params(model, sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)) == (
        embeddings + head + 2 * layer(16, 24)
    )
    assert sn.count_params(model, sn.MAX_NET) == sum(p.numel() for p in model.parameters())
    del F


def test_count_flops_hand_count() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    s, e = 10, 32
    per_layer = lambda w, m: 3 * 2 * s * e * w + 2 * 2 * s * s * w + 2 * s * w * e + 2 * 2 * s * e * m  # noqa: E731
    assert sn.count_flops(model, sn.MAX_NET, s) == 4 * per_layer(32, 48)
    assert sn.count_flops(model, sn.SubnetConfig(width_mult=0.25, depth_mult=0.75), s) == 3 * per_layer(8, 12)


@pytest.mark.parametrize("family", ["bert", "electra", "distilbert"])
@pytest.mark.parametrize(
    "cfg",
    [
        sn.MAX_NET,
        sn.SubnetConfig(width_mult=0.5, depth_mult=0.75),
        sn.SubnetConfig(heads=(4, 1, 3, 2), ffn=(48, 7, 20, 33)),
    ],
    ids=lambda c: c.name,
)
def test_count_flops_matches_torch_flop_counter(family: str, cfg: sn.SubnetConfig) -> None:
    config = tiny_config(family, attn_implementation="eager")
    torch.manual_seed(0)
    if family == "bert":
        model = transformers.BertModel(config, add_pooling_layer=False)
    else:
        model = transformers.AutoModel.from_config(config)
    model = sn.to_supernet(model.eval())
    sn.set_active_subnet(model, cfg)
    seq = 13
    ids = torch.randint(5, 99, (1, seq))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(input_ids=ids)
    assert sn.count_flops(model, cfg, seq) == counter.get_total_flops()


def test_count_flops_of_electra_without_an_embedding_projection() -> None:
    """ELECTRA-base and -large embed at hidden_size, so transformers builds no embeddings_project:
    count_flops raised AttributeError at the end of training (evaluate_grid) and in every search."""
    config = tiny_config("electra", attn_implementation="eager")
    config.embedding_size = config.hidden_size
    torch.manual_seed(0)
    model = sn.to_supernet(transformers.AutoModel.from_config(config).eval())
    assert not hasattr(model, "embeddings_project")
    cfg = sn.SubnetConfig(heads=(4, 1, 3, 2), ffn=(48, 7, 20, 33))
    sn.set_active_subnet(model, cfg)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(input_ids=torch.randint(5, 99, (1, 13)))
    assert sn.count_flops(model, cfg, 13) == counter.get_total_flops()

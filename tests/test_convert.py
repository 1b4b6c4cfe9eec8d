"""Converter: parity with the stock model, unchanged keys, unsupported models."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers
from conftest import FAMILY_NAMES, REAL_SENTENCES, tiny_batch, tiny_model

import supernet as sn
from supernet.elastic import ElasticLinear, LayerSkipList

TOL = 1e-5


def _max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def _outputs(model, batch):
    with torch.no_grad():
        return model(**batch, output_hidden_states=True)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("head", ["seq-cls", "token-cls", "mlm", "base"])
def test_converted_at_max_equals_stock(family: str, head: str) -> None:
    stock = tiny_model(family, head)
    model = sn.to_supernet(copy.deepcopy(stock))
    batch = tiny_batch()
    got, want = _outputs(model, batch), _outputs(stock, batch)
    main = "last_hidden_state" if head == "base" else "logits"
    assert _max_diff(got[main], want[main]) <= TOL
    assert len(got.hidden_states) == len(want.hidden_states) == 5
    for g, w in zip(got.hidden_states, want.hidden_states, strict=True):
        assert _max_diff(g, w) <= TOL


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_state_dict_keys_and_round_trip(family: str, tmp_path) -> None:
    stock = tiny_model(family)
    model = sn.to_supernet(copy.deepcopy(stock))
    assert list(model.state_dict()) == list(stock.state_dict())
    model.save_pretrained(tmp_path)
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    batch = tiny_batch(seed=1)
    assert _max_diff(_outputs(reloaded, batch).logits, _outputs(stock, batch).logits) <= TOL


def test_convert_swaps_exactly_the_table_modules() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    elastic = sorted(n for n, m in model.named_modules() if isinstance(m, ElasticLinear))
    expected = sorted(
        f"bert.encoder.layer.{i}.{p}"
        for i in range(4)
        for p in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "intermediate.dense",
            "output.dense",
        )
    )
    assert elastic == expected
    assert isinstance(model.bert.encoder.layer, LayerSkipList)
    # The pooler and classifier stay plain.
    assert type(model.bert.pooler.dense) is torch.nn.Linear
    assert type(model.classifier) is torch.nn.Linear


def test_convert_is_idempotent_and_in_place() -> None:
    model = tiny_model("bert")
    weight = model.bert.encoder.layer[0].attention.self.query.weight
    assert sn.to_supernet(model) is model
    assert sn.to_supernet(model) is model
    assert model.bert.encoder.layer[0].attention.self.query.weight is weight


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: transformers.GPT2Model(
                transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)
            ),
            "GPT2Model (model_type 'gpt2') is not supported; supported families: "
            "bert, distilbert, electra, ernie, roberta, xlm-roberta",
        ),
        (
            lambda: transformers.T5Model(
                transformers.T5Config(num_layers=1, d_model=16, d_ff=32, num_heads=2, vocab_size=50, d_kv=8)
            ),
            "T5Model (model_type 't5') is not supported; supported families: "
            "bert, distilbert, electra, ernie, roberta, xlm-roberta",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 2)),
            "Sequential (no transformers config) is not supported; supported families: "
            "bert, distilbert, electra, ernie, roberta, xlm-roberta",
        ),
    ],
)
def test_unsupported_model_error(make, message: str) -> None:
    with pytest.raises(sn.UnsupportedModelError) as err:
        sn.to_supernet(make())
    assert str(err.value) == message


def test_not_a_supernet_error() -> None:
    with pytest.raises(TypeError, match=r"^BertForSequenceClassification is not a supernet: call supernet"):
        sn.set_max_net(tiny_model("bert"))


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_attention_implementations(impl: str) -> None:
    stock = tiny_model("bert", attn_implementation=impl)
    model = sn.to_supernet(copy.deepcopy(stock))
    batch = tiny_batch()
    assert _max_diff(_outputs(model, batch).logits, _outputs(stock, batch).logits) <= TOL


@pytest.mark.slow
def test_packaged_model_converted_at_max_parity(minilm_dir) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    stock = transformers.AutoModel.from_pretrained(minilm_dir).eval()
    assert stock.config.num_hidden_layers == 6 and stock.config.num_attention_heads == 12
    model = sn.to_supernet(copy.deepcopy(stock))
    batch = dict(tokenizer(REAL_SENTENCES, padding=True, return_tensors="pt"))
    got, want = _outputs(model, batch), _outputs(stock, batch)
    assert _max_diff(got.last_hidden_state, want.last_hidden_state) <= TOL
    assert len(got.hidden_states) == 7
    for g, w in zip(got.hidden_states, want.hidden_states, strict=True):
        assert _max_diff(g, w) <= TOL

"""Converter: parity with the stock model, unchanged keys, layout matching, unsupported models."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers
from conftest import FAMILY_NAMES, LAYOUT_NAMES, REAL_SENTENCES, tiny_batch, tiny_config, tiny_model

import supernet as sn
from supernet.convert import arch_from_config
from supernet.elastic import ElasticLinear, LayerSkipList
from supernet.families import family_of

TOL = 1e-6


def _max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def _outputs(model, batch):
    with torch.no_grad():
        return model(**batch, output_hidden_states=True)


@pytest.mark.parametrize("family", FAMILY_NAMES + LAYOUT_NAMES)
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


@pytest.mark.parametrize("family", FAMILY_NAMES + LAYOUT_NAMES)
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


def test_a_slice_of_the_layer_list_runs_its_layers() -> None:
    """`encoder.layer[:2]` (ModuleList slicing, a common way to truncate an encoder) built a
    LayerSkipList without its active layers: iterating it raised AttributeError."""
    model = sn.to_supernet(tiny_model("bert"))
    layers = model.bert.encoder.layer
    assert list(layers[:2]) == [layers[0], layers[1]]
    sn.set_active_subnet(model, sn.SubnetConfig(layers=(0, 3)))
    assert list(layers) == [layers[0], layers[3]] and list(layers[1:3]) == [layers[1], layers[2]]


def test_convert_is_idempotent_and_in_place() -> None:
    model = tiny_model("bert")
    weight = model.bert.encoder.layer[0].attention.self.query.weight
    assert sn.to_supernet(model) is model
    assert sn.to_supernet(model) is model
    assert model.bert.encoder.layer[0].attention.self.query.weight is weight


SUPPORTED = (
    "supported families: bert, camembert, data2vec-text, distilbert, electra, ernie, roberta, "
    "roberta-prelayernorm, xlm-roberta"
)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: transformers.GPT2Model(
                transformers.GPT2Config(
                    n_layer=1, n_embd=16, n_head=2, vocab_size=50, bos_token_id=0, eos_token_id=0
                )
            ),
            "GPT2Model (model_type 'gpt2') is not supported: it has no family table and no known layout "
            f"(base_model has no module encoder.layer); {SUPPORTED}",
        ),
        (
            lambda: transformers.T5Model(
                transformers.T5Config(num_layers=1, d_model=16, d_ff=32, num_heads=2, vocab_size=50, d_kv=8)
            ),
            "T5Model (model_type 't5') is not supported: it has no family table and no known layout "
            f"(base_model has no module encoder.layer); {SUPPORTED}",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 2)),
            f"Sequential (no transformers config) is not supported; {SUPPORTED}",
        ),
    ],
)
def test_unsupported_model_error(make, message: str) -> None:
    with pytest.raises(sn.UnsupportedModelError) as err:
        sn.to_supernet(make())
    assert str(err.value) == message


# --------------------------------------------------------------------------- layout matching

_TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=64,
)


@pytest.mark.parametrize("family", LAYOUT_NAMES)
def test_layout_matched_model_says_which_table_it_matched(family: str, caplog) -> None:
    model = tiny_model(family)
    with caplog.at_level("INFO", logger="supernet.convert"):
        sn.to_supernet(model)
    state = sn.supernet_state(model)
    assert state.spec.matched_layout == "bert"
    assert state.spec.name == family and state.spec.model_types == (family,)
    assert state.arch == sn.Arch(
        family=family, num_layers=4, num_heads=4, head_dim=8, hidden_size=32, ffn_dim=48
    )
    line = f"layout: bert (matched by module paths; model_type '{family}')"
    assert state.spec.describe() == line
    assert [r.getMessage() for r in caplog.records] == [f"{type(model).__name__}: {line}"]
    # Same paths as the BERT table, so the same modules become elastic.
    bert = family_of(tiny_model("bert"))
    for part in ("layers", "query", "key", "value", "attn_out", "ffn_in", "ffn_out"):
        assert getattr(state.spec, part) == getattr(bert, part)
    assert len([m for m in model.modules() if isinstance(m, ElasticLinear)]) == 4 * 6


def test_layout_with_an_embedding_projection_matches_electra() -> None:
    class OwnElectraConfig(transformers.ElectraConfig):
        model_type = "own-electra"

    class OwnElectra(transformers.ElectraForSequenceClassification):
        config_class = OwnElectraConfig

    torch.manual_seed(0)
    stock = OwnElectra(OwnElectraConfig(**_TINY, embedding_size=16)).eval()
    model = sn.to_supernet(copy.deepcopy(stock))
    spec = sn.supernet_state(model).spec
    assert (spec.name, spec.matched_layout, spec.embed_project) == (
        "own-electra",
        "electra",
        "embeddings_project",
    )
    # The projection is counted: parameters at the max net are the stock model's.
    assert sn.count_params(model, sn.MAX_NET) == sum(p.numel() for p in stock.parameters())
    batch = tiny_batch()
    assert _max_diff(_outputs(model, batch).logits, _outputs(stock, batch).logits) <= TOL
    # Without a projection (embedding size = hidden size) the same classes match BERT's layout.
    plain = sn.to_supernet(OwnElectra(OwnElectraConfig(**_TINY, embedding_size=32)))
    assert sn.supernet_state(plain).spec.matched_layout == "bert"


def test_named_families_are_matched_by_name() -> None:
    spec = sn.supernet_state(sn.to_supernet(tiny_model("camembert"))).spec
    assert spec.name == "camembert" and spec.matched_layout is None
    assert spec.describe() == "family: camembert"


def test_arch_from_config_matches_layout_on_a_meta_skeleton() -> None:
    arch = arch_from_config(transformers.XLMRobertaXLConfig(**_TINY))
    assert arch == sn.Arch(
        family="xlm-roberta-xl", num_layers=2, num_heads=4, head_dim=8, hidden_size=32, ffn_dim=48
    )
    assert arch_from_config(tiny_config("camembert")).family == "camembert"


def test_arch_from_config_of_a_model_type_transformers_cannot_build() -> None:
    class OwnConfig(transformers.PretrainedConfig):
        model_type = "own-encoder"

    with pytest.raises(sn.UnsupportedModelError) as err:
        arch_from_config(OwnConfig())
    assert (
        str(err.value)
        == f"model_type 'own-encoder' is not supported: transformers has no model class for it; {SUPPORTED}"
    )


_REASONS = {
    "mpnet": "MPNet adds a relative attention bias, shared by all layers, to every head's scores; "
    "the supernet slices stock BERT attention, which has none",
    "deberta-v2": "DeBERTa's disentangled attention adds content-to-position and position-to-content scores "
    "from separate position projections, which the supernet's head slicing of stock attention does not cover",
    "albert": "ALBERT shares one set of layer weights across all its layers, so layers cannot be "
    "dropped or narrowed one at a time",
    # Matched BERT's layout, converted and trained, then failed at export: the contact head's input
    # size is layers x heads.
    "esm": "ESM's contact-prediction head reads the attention maps of every layer and head "
    "(layers x heads inputs), so no narrower or shallower subnet can keep it",
}


@pytest.mark.parametrize(
    "config_class, model_class",
    [
        (transformers.MPNetConfig, "MPNetForSequenceClassification"),
        (transformers.DebertaV2Config, "DebertaV2ForSequenceClassification"),
        (transformers.AlbertConfig, "AlbertForSequenceClassification"),
        (transformers.EsmConfig, "EsmForSequenceClassification"),
    ],
)
def test_models_that_do_not_fit_are_refused_with_the_reason(config_class, model_class: str) -> None:
    config = config_class(**_TINY)
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    assert type(model).__name__ == model_class
    reason = _REASONS[config.model_type]
    with pytest.raises(sn.UnsupportedModelError) as err:
        sn.to_supernet(model)
    # Each refusal names the families that are supported, as the layout refusals do.
    assert str(err.value) == (
        f"{model_class} (model_type '{config.model_type}') is not supported: {reason}; {SUPPORTED}"
    )
    with pytest.raises(sn.UnsupportedModelError) as err:
        arch_from_config(config)
    assert str(err.value) == f"model_type '{config.model_type}' is not supported: {reason}; {SUPPORTED}"
    assert not sn.is_supernet(model)


def _refused(model) -> str:
    with pytest.raises(sn.UnsupportedModelError) as err:
        sn.to_supernet(model)
    assert "\n" not in str(err.value)
    assert not sn.is_supernet(model)
    prefix = f"{type(model).__name__} (model_type '{model.config.model_type}') is not supported: "
    assert str(err.value).startswith(prefix) and str(err.value).endswith(f"; {SUPPORTED}")
    return str(err.value).removeprefix(prefix).removesuffix(f"; {SUPPORTED}")


def test_layout_check_refuses_extra_attention_parameters() -> None:
    model = tiny_model("domain-bert", num_layers=2)
    # A relative-position table on the attention module: its scores would not be sliced.
    model.bert.encoder.layer[1].attention.self.distance_embedding = torch.nn.Embedding(7, 8)
    assert _refused(model) == (
        "it has no family table and no known layout (base_model.encoder.layer.1.attention.self has "
        "parameters besides Q/K/V (distance_embedding.weight), so it is not the stock attention that "
        "head slicing relies on)"
    )


def test_layout_check_refuses_attention_outside_the_attention_interface() -> None:
    # Megatron-BERT keeps BERT's paths, but its attention reshapes to a fixed width.
    model = transformers.AutoModelForSequenceClassification.from_config(
        transformers.MegatronBertConfig(**_TINY)
    )
    assert _refused(model) == (
        "it has no family table and no known layout (its attention does not run through transformers' "
        "attention interface, which head slicing relies on)"
    )


def test_layout_check_refuses_other_layer_parameters() -> None:
    config = transformers.XmodConfig(**_TINY, languages=("en_XX",), default_language="en_XX")
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    assert _refused(model) == (
        "it has no family table and no known layout (base_model.encoder.layer.0 holds parameters besides "
        "its attention and FFN linears and LayerNorms (output.adapter_modules.en_XX.dense1.weight, ...))"
    )


def test_layout_check_refuses_shared_layers() -> None:
    model = tiny_model("domain-bert", num_layers=2)
    model.bert.encoder.layer[1] = model.bert.encoder.layer[0]
    assert _refused(model) == (
        "it has no family table and no known layout (layers 0 and 1 share parameters, "
        "so they cannot be cut one at a time)"
    )


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            lambda m: setattr(m.bert.encoder.layer[1].intermediate, "dense", torch.nn.Linear(32, 40)),
            "base_model.encoder.layer.1.intermediate.dense has shape (out=40, in=32), the config implies (48, 32)",
        ),
        (
            lambda m: setattr(m.bert.encoder.layer[0].attention.output, "dense", torch.nn.Identity()),
            "base_model.encoder.layer.0.attention.output.dense is Identity, not nn.Linear",
        ),
        (
            lambda m: setattr(m.config, "num_hidden_layers", 3),
            "base_model.encoder.layer is not a list of 3 layers (2)",
        ),
        (
            lambda m: setattr(m.config, "_attn_implementation", "flex_attention"),
            "it runs the 'flex_attention' attention kernel; layout matching accepts eager or sdpa",
        ),
    ],
)
def test_layout_check_compares_each_layer_with_the_config(change, reason: str) -> None:
    model = tiny_model("domain-bert", num_layers=2)
    change(model)
    assert _refused(model) == f"it has no family table and no known layout ({reason})"


def test_not_a_supernet_error() -> None:
    with pytest.raises(
        TypeError,
        match=r"^BertForSequenceClassification is not a supernet: call supernet\.to_supernet\(model\) first$",
    ):
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


def test_a_config_is_not_a_model() -> None:
    with pytest.raises(sn.UnsupportedModelError) as err:
        sn.to_supernet(tiny_config("bert"))
    assert str(err.value) == (
        "BertConfig is a config, not a model: build the model first, e.g. "
        "transformers.AutoModelForSequenceClassification.from_config(config)"
    )


def test_a_stock_model_type_over_other_modules_is_refused_in_one_line() -> None:
    """Remote-code BERTs (JinaBERT, MosaicBERT) keep model_type 'bert' over other modules: a gated
    MLP was an AttributeError from deep in the conversion, and a per-head parameter on the attention
    was accepted and left unsliced. A model matched by its model_type is checked as one matched by
    layout is."""
    model = tiny_model("bert", num_layers=2)
    for layer in model.bert.encoder.layer:
        del layer.intermediate
        layer.mlp = torch.nn.Module()
        layer.mlp.gated_layers = torch.nn.Linear(32, 96)
    with pytest.raises(sn.UnsupportedModelError) as err:
        sn.to_supernet(model)
    assert str(err.value) == (
        "BertForSequenceClassification (model_type 'bert') is not supported: its modules are not those "
        "of transformers' bert (base_model.encoder.layer.0 has no module intermediate.dense): a remote-code "
        f"or modified model, or an option the package does not slice (e.g. add_cross_attention); {SUPPORTED}"
    )
    model = tiny_model("bert", num_layers=2)
    model.bert.encoder.layer[1].attention.self.head_bias = torch.nn.Parameter(torch.zeros(4))
    with pytest.raises(sn.UnsupportedModelError) as err:
        sn.to_supernet(model)
    assert "(base_model.encoder.layer.1.attention.self has parameters besides Q/K/V (head_bias)" in str(
        err.value
    )
    assert not sn.is_supernet(model)


def test_a_model_type_that_needs_a_missing_library_is_refused_in_one_line() -> None:
    """LayoutLMv2 needs detectron2 to be built: its ImportError escaped family_of_config."""
    pytest.importorskip("transformers.models.layoutlmv2")
    from supernet.families import family_of_config

    try:
        import detectron2  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover
        pytest.skip("detectron2 is installed here")
    with pytest.raises(sn.UnsupportedModelError) as err:
        family_of_config(transformers.LayoutLMv2Config())
    assert str(err.value).startswith(
        "model_type 'layoutlmv2' is not supported: transformers cannot build it from its config ("
    )
    assert "detectron2" in str(err.value) and str(err.value).endswith(f"; {SUPPORTED}")

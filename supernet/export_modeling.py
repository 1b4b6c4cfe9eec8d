"""Dense models of a subnet cut from a supernet: stock transformers classes with per-layer widths.

This module is copied verbatim into every export folder as
`modeling_supernet_export.py`, and `config.json`'s `auto_map` points at it, so
`AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)`
loads an export without the `supernet` package. It must therefore stay
self-contained: it imports only torch, transformers and huggingface_hub, and it
does no network or process I/O.

An exported subnet keeps the family's stock modules. Its config carries, for
the layers it kept (in order),

* `num_attention_heads_per_layer`: heads that run in each layer;
* `intermediate_size_per_layer`: FFN neurons in each layer;
* `attention_head_size`: the size of one head (unchanged by slicing).

`num_attention_heads` stays `hidden_size // attention_head_size`, because the
stock attention derives its head size from it; `intermediate_size` (DistilBERT:
`hidden_dim`) is the widest layer's. Each model class subclasses the stock
class, builds the stock model, then (in `post_init`, before weights are
initialised or loaded) swaps each layer's Q/K/V/O and FFN `nn.Linear`s for
ones of the subnet's real shapes. The stock attention reshapes with
`view(b, s, -1, head_size)`, so narrower projections run fewer heads of the
same size with no other change.

A model that the supernet matched by layout rather than by family (e.g.
XLM-RoBERTa-XL at BERT's paths) has no entry in `LAYOUTS`: its export config
carries the layout itself (`supernet_layout`), and its classes, named
`SupernetExport<stock class name>` like all others, are built on first use
(module `__getattr__`, which is how `auto_map` looks them up).
"""

import os
import shutil
from typing import Any, NamedTuple

import transformers
from huggingface_hub.dataclasses import strict
from torch import nn


class _Layout(NamedTuple):
    """Where one family keeps what a subnet resizes (mirrors supernet.families)."""

    prefix: str
    """Class-name prefix of the family in transformers, e.g. "XLMRoberta"."""
    layers: str
    """Path of the layer list, relative to `model.base_model`."""
    query: str
    key: str
    value: str
    attn_out: str
    ffn_in: str
    ffn_out: str
    ffn_attr: str
    """Config attribute of the FFN width."""


_BERT_PATHS: dict[str, str] = dict(
    layers="encoder.layer",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    ffn_attr="intermediate_size",
)

LAYOUTS: dict[str, _Layout] = {
    "bert": _Layout(prefix="Bert", **_BERT_PATHS),
    "roberta": _Layout(prefix="Roberta", **_BERT_PATHS),
    "xlm-roberta": _Layout(prefix="XLMRoberta", **_BERT_PATHS),
    "electra": _Layout(prefix="Electra", **_BERT_PATHS),
    "ernie": _Layout(prefix="Ernie", **_BERT_PATHS),
    "camembert": _Layout(prefix="Camembert", **_BERT_PATHS),
    "data2vec-text": _Layout(prefix="Data2VecText", **_BERT_PATHS),
    "roberta-prelayernorm": _Layout(prefix="RobertaPreLayerNorm", **_BERT_PATHS),
    "distilbert": _Layout(
        prefix="DistilBert",
        layers="transformer.layer",
        query="attention.q_lin",
        key="attention.k_lin",
        value="attention.v_lin",
        attn_out="attention.out_lin",
        ffn_in="ffn.lin1",
        ffn_out="ffn.lin2",
        ffn_attr="hidden_dim",
    ),
}
"""Family name -> layout. The export's `model_type` is `supernet-export-<family>`."""

HEADS: tuple[str, ...] = (
    "Model",
    "ForSequenceClassification",
    "ForTokenClassification",
    "ForMaskedLM",
    "ForQuestionAnswering",
    "ForMultipleChoice",
)
"""Stock class suffixes that get an export subclass (when the family has them)."""

MODEL_TYPE_PREFIX = "supernet-export-"
MODELING_FILE = "modeling_supernet_export.py"
"""This file's name inside an export folder (what `auto_map` points at)."""


EXPORT_PREFIX = "SupernetExport"
"""Export classes are named this + the stock class's name."""


def layout_of(config: Any) -> _Layout | None:
    """The layout of an export config: its family's, else the one it carries, else None.

    Args:
        config: an export config.
    """
    family = str(config.model_type)[len(MODEL_TYPE_PREFIX) :]
    if family in LAYOUTS:
        return LAYOUTS[family]
    fields = getattr(config, "supernet_layout", None)
    return _Layout(**fields) if fields else None


def _fill_and_check(config: Any) -> None:
    """Default the per-layer fields to the full width and check they fit the config."""
    layout = layout_of(config)
    num_layers = int(config.num_hidden_layers)
    hidden = int(config.hidden_size)
    if config.attention_head_size is None:
        config.attention_head_size = hidden // int(config.num_attention_heads)
    head_size = int(config.attention_head_size)
    if head_size < 1 or hidden % head_size:
        raise ValueError(f"attention_head_size={head_size} must divide hidden_size={hidden}")
    # The stock attention computes its head size as hidden_size / num_attention_heads.
    if int(config.num_attention_heads) * head_size != hidden:
        raise ValueError(
            f"num_attention_heads must be hidden_size // attention_head_size = {hidden // head_size}, "
            f"got {config.num_attention_heads}"
        )
    if config.num_attention_heads_per_layer is None:
        config.num_attention_heads_per_layer = [int(config.num_attention_heads)] * num_layers
    # A default-constructed config of a layout-matched family (transformers builds
    # one to diff against when saving) has no layout, so no FFN attribute to read.
    if config.intermediate_size_per_layer is None and layout is not None:
        config.intermediate_size_per_layer = [int(getattr(config, layout.ffn_attr))] * num_layers
    for name, values, top in (
        ("num_attention_heads_per_layer", config.num_attention_heads_per_layer, hidden // head_size),
        ("intermediate_size_per_layer", config.intermediate_size_per_layer, None),
    ):
        if values is None:
            continue
        if len(values) != num_layers:
            raise ValueError(f"{name} must list one value per layer ({num_layers}), got {len(values)}")
        for v in values:
            if v < 1 or (top is not None and v > top):
                raise ValueError(f"{name} values must be in [1, {top or 'inf'}], got {v}")


def _make_config_class(stock: type) -> type:
    family = stock.model_type

    # Stock configs are strict dataclasses in transformers 5, so the new
    # fields are declared as dataclass fields (typed, validated, serialised).
    @strict
    class ExportConfig(stock):
        model_type = MODEL_TYPE_PREFIX + family

        num_attention_heads_per_layer: list[int] | None = None
        intermediate_size_per_layer: list[int] | None = None
        attention_head_size: int | None = None
        supernet_source: dict | None = None
        """Where the subnet came from: its name and spec, and the supernet layers it kept."""
        supernet_layout: dict | None = None
        """For a family not in LAYOUTS (matched by layout): the `_Layout` fields."""

        def __post_init__(self, **kwargs: Any) -> None:
            super().__post_init__(**kwargs)
            _fill_and_check(self)

    name = EXPORT_PREFIX + stock.__name__
    ExportConfig.__name__ = ExportConfig.__qualname__ = name
    ExportConfig.__module__ = __name__
    return ExportConfig


def _resized(old: nn.Linear, *, out_features: int | None = None, in_features: int | None = None) -> nn.Linear:
    out_features = old.out_features if out_features is None else out_features
    in_features = old.in_features if in_features is None else in_features
    if (out_features, in_features) == (old.out_features, old.in_features):
        return old
    # Same device and dtype as the stock layer: on `meta` while from_pretrained builds the model.
    return nn.Linear(
        in_features,
        out_features,
        bias=old.bias is not None,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )


def resize_layers(model: nn.Module) -> None:
    """Give each encoder layer of `model` the widths its config lists.

    Args:
        model: a stock-family model whose config is an export config.
    """
    config = model.config
    layout = layout_of(config)
    if layout is None:
        raise ValueError(
            f"model_type '{config.model_type}' is not a family here and its config has no layout"
        )
    layers = model.base_model.get_submodule(layout.layers)
    head_size = int(config.attention_head_size)
    heads = config.num_attention_heads_per_layer
    ffn = config.intermediate_size_per_layer
    for layer, h, m in zip(layers, heads, ffn, strict=True):
        width = h * head_size
        changes = {
            layout.query: dict(out_features=width),
            layout.key: dict(out_features=width),
            layout.value: dict(out_features=width),
            layout.attn_out: dict(in_features=width),
            layout.ffn_in: dict(out_features=m),
            layout.ffn_out: dict(in_features=m),
        }
        for path, sizes in changes.items():
            parent_path, _, attr = path.rpartition(".")
            parent = layer.get_submodule(parent_path)
            setattr(parent, attr, _resized(getattr(parent, attr), **sizes))
        attention = layer.get_submodule(layout.query.rpartition(".")[0])
        if getattr(attention, "attention_head_size", head_size) != head_size:
            raise ValueError(
                f"the stock attention uses head size {attention.attention_head_size}, "
                f"the config says {head_size}"
            )
        # Keep the stock module's bookkeeping true (forward itself reads the shapes).
        for attr in ("num_attention_heads", "n_heads"):
            if hasattr(attention, attr):
                setattr(attention, attr, h)
        if hasattr(attention, "all_head_size"):
            attention.all_head_size = width


class _PerLayerWidths:
    """Mixin before a stock model class: per-layer widths, and a folder that ships this file."""

    def post_init(self) -> None:
        # post_init ends the outermost __init__ and is where transformers
        # initialises weights; from_pretrained loads weights after it, so the
        # real-shape linears exist by then and load with no mismatch.
        resize_layers(self)  # type: ignore[arg-type]
        super().post_init()  # type: ignore[misc]

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        """`save_pretrained`, plus this file beside config.json (whose auto_map names it)."""
        # Copied first, so a push_to_hub done by save_pretrained uploads it too.
        os.makedirs(save_directory, exist_ok=True)
        target = os.path.join(save_directory, MODELING_FILE)
        if not os.path.exists(target) or not os.path.samefile(__file__, target):
            shutil.copyfile(__file__, target)
        return super().save_pretrained(save_directory, *args, **kwargs)  # type: ignore[misc]


def _make_model_class(stock: type, config_class: type) -> type:
    name = EXPORT_PREFIX + stock.__name__
    return type(name, (_PerLayerWidths, stock), {"config_class": config_class, "__module__": __name__})


CONFIG_CLASSES: dict[str, type] = {}
"""Family (the stock config's model_type) -> export config class."""
MODEL_CLASSES: dict[str, type] = {}
"""Stock class name (e.g. "BertForSequenceClassification") -> export model class."""


def export_class(stock: type) -> type:
    """The export subclass of a stock transformers model or config class, built once.

    Args:
        stock: e.g. `transformers.BertForSequenceClassification` or `transformers.BertConfig`.
    """
    name = EXPORT_PREFIX + stock.__name__
    built = globals().get(name)
    if isinstance(built, type):
        return built
    if issubclass(stock, transformers.PretrainedConfig):
        built = _make_config_class(stock)
        CONFIG_CLASSES[stock.model_type] = built
    else:
        built = _make_model_class(stock, export_class(stock.config_class))
        MODEL_CLASSES[stock.__name__] = built
    # auto_map resolves classes by module attribute name.
    globals()[name] = built
    return built


def __getattr__(name: str) -> type:
    """Build `SupernetExport<stock class>` on first use (families matched by layout)."""
    stock = (
        getattr(transformers, name[len(EXPORT_PREFIX) :], None) if name.startswith(EXPORT_PREFIX) else None
    )
    if not isinstance(stock, type) or not issubclass(stock, (transformers.PretrainedConfig, nn.Module)):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return export_class(stock)


for _family, _layout in LAYOUTS.items():
    export_class(getattr(transformers, f"{_layout.prefix}Config"))
    for _head in HEADS:
        _stock = getattr(transformers, f"{_layout.prefix}{_head}", None)
        if _stock is not None:
            export_class(_stock)


def auto_map(family: str, prefix: str | None = None) -> dict[str, str]:
    """The `auto_map` entry of an export config of `family`.

    Args:
        family: a key of LAYOUTS, or the model_type of a family matched by layout.
        prefix: the stock classes' name prefix (e.g. "XLMRobertaXL"); default LAYOUTS[family].prefix.
    """
    module = MODELING_FILE.removesuffix(".py")
    prefix = LAYOUTS[family].prefix if prefix is None else prefix
    out = {"AutoConfig": f"{module}.{EXPORT_PREFIX}{prefix}Config"}
    for head in HEADS:
        if hasattr(transformers, f"{prefix}{head}"):
            out[f"AutoModel{'' if head == 'Model' else head}"] = f"{module}.{EXPORT_PREFIX}{prefix}{head}"
    return out

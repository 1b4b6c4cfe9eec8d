"""Per-family tables: where a model family keeps its layers, attention and FFN.

A `FamilySpec` is data, not code: module paths (for `nn.Module.get_submodule`)
and config attribute names. Adding a family means adding one table in
`bert_like.py`-style modules and registering it in `FAMILIES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["FAMILIES", "FamilySpec", "UnsupportedModelError", "family_of", "family_of_config"]


@dataclass(frozen=True, kw_only=True)
class FamilySpec:
    """Where one model family keeps the parts the supernet slices."""

    name: str
    """Short family name shown to users, e.g. "bert"."""
    model_types: tuple[str, ...]
    """`config.model_type` values handled by this table."""
    layers: str
    """Path of the encoder's layer ModuleList, relative to `model.base_model`."""
    query: str
    """Path of the query projection, relative to one layer."""
    key: str
    """Path of the key projection, relative to one layer."""
    value: str
    """Path of the value projection, relative to one layer."""
    attn_out: str
    """Path of the attention output projection (O), relative to one layer."""
    ffn_in: str
    """Path of the FFN up-projection (hidden -> intermediate), relative to one layer."""
    ffn_out: str
    """Path of the FFN down-projection (intermediate -> hidden), relative to one layer."""
    num_layers_attr: str = "num_hidden_layers"
    """Config attribute holding L."""
    num_heads_attr: str = "num_attention_heads"
    """Config attribute holding H."""
    hidden_attr: str = "hidden_size"
    """Config attribute holding the hidden size."""
    ffn_attr: str = "intermediate_size"
    """Config attribute holding the FFN width F."""
    embed_project: str | None = None
    """Path (relative to base_model) of a projection from embedding to hidden size, if any."""


class UnsupportedModelError(TypeError):
    """The model is not of a family the supernet converter knows."""


def _registry() -> dict[str, FamilySpec]:
    from supernet.families.bert_like import BERT, ELECTRA, ERNIE, ROBERTA, XLM_ROBERTA
    from supernet.families.distilbert import DISTILBERT

    table: dict[str, FamilySpec] = {}
    for spec in (BERT, ROBERTA, XLM_ROBERTA, ELECTRA, ERNIE, DISTILBERT):
        for model_type in spec.model_types:
            table[model_type] = spec
    return table


FAMILIES: dict[str, FamilySpec] = _registry()


def _lookup(config: object) -> FamilySpec | None:
    model_type = getattr(config, "model_type", None)
    return FAMILIES.get(model_type) if isinstance(model_type, str) else None


def _supported() -> str:
    return ", ".join(sorted({s.name for s in FAMILIES.values()}))


def family_of(model: nn.Module) -> FamilySpec:
    """The family table for `model`.

    Raises:
        UnsupportedModelError: the model has no config or its model_type is not in FAMILIES.
    """
    config = getattr(model, "config", None)
    spec = _lookup(config)
    if spec is None:
        model_type = getattr(config, "model_type", None)
        what = f"model_type '{model_type}'" if model_type else "no transformers config"
        raise UnsupportedModelError(
            f"{type(model).__name__} ({what}) is not supported; supported families: {_supported()}"
        )
    return spec


def family_of_config(config: object) -> FamilySpec:
    """The family table for a transformers config (checked before any model is built).

    Raises:
        UnsupportedModelError: its model_type is not in FAMILIES.
    """
    spec = _lookup(config)
    if spec is None:
        model_type = getattr(config, "model_type", None)
        raise UnsupportedModelError(
            f"model_type '{model_type}' is not supported; supported families: {_supported()}"
        )
    return spec

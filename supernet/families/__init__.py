"""Per-family tables: where a model family keeps its layers, attention and FFN.

A `FamilySpec` is data, not code: module paths (for `nn.Module.get_submodule`)
and config attribute names. Adding a family means adding one table in
`bert_like.py`-style modules and registering it in `FAMILIES`.

A model is matched by its `config.model_type` first. A model_type listed in
`refused.REFUSED` is refused with its reason; any other model_type without a
table is matched by layout (`layout.py`): accepted when its modules sit at a
table's paths with the shapes its config implies, and the spec returned says
which table it matched (`FamilySpec.matched_layout`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
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
    matched_layout: str | None = None
    """For a model matched by module paths rather than by model_type: the name of the table it matched."""

    def describe(self) -> str:
        """One line for users: the family, and how the model was matched to it."""
        if self.matched_layout is None:
            return f"family: {self.name}"
        return f"layout: {self.matched_layout} (matched by module paths; model_type '{self.name}')"


class UnsupportedModelError(TypeError):
    """The model is not of a family the supernet converter knows."""


def _registry() -> dict[str, FamilySpec]:
    from supernet.families.bert_like import (
        BERT,
        CAMEMBERT,
        DATA2VEC_TEXT,
        ELECTRA,
        ERNIE,
        ROBERTA,
        ROBERTA_PRELAYERNORM,
        XLM_ROBERTA,
    )
    from supernet.families.distilbert import DISTILBERT

    table: dict[str, FamilySpec] = {}
    # BERT first: a model matched by layout takes the first table with its paths.
    for spec in (
        BERT,
        ROBERTA,
        XLM_ROBERTA,
        ELECTRA,
        ERNIE,
        CAMEMBERT,
        DATA2VEC_TEXT,
        ROBERTA_PRELAYERNORM,
        DISTILBERT,
    ):
        for model_type in spec.model_types:
            table[model_type] = spec
    return table


FAMILIES: dict[str, FamilySpec] = _registry()


def _lookup(config: object) -> FamilySpec | None:
    model_type = getattr(config, "model_type", None)
    return FAMILIES.get(model_type) if isinstance(model_type, str) else None


def supported_families() -> str:
    """The families with a table, for error messages: "bert, camembert, ..."."""
    return ", ".join(sorted({s.name for s in FAMILIES.values()}))


def _refusal(model_type: object) -> str | None:
    from supernet.families.refused import REFUSED

    return REFUSED.get(model_type) if isinstance(model_type, str) else None


def family_of(model: nn.Module) -> FamilySpec:
    """The family table for `model`: by its model_type, else by its module layout.

    Args:
        model: a transformers model (bare encoder or with a task head).

    Returns:
        The table for its model_type; for a model_type without one, a copy of
        the table whose layout it has, named after its model_type, with
        `matched_layout` set.

    Raises:
        UnsupportedModelError: the model has no config, its model_type is
            refused (MPNet, DeBERTa, ALBERT, ESM), or its modules fit no table's layout.
    """
    config = getattr(model, "config", None)
    spec = _lookup(config)
    if spec is not None:
        return spec
    model_type = getattr(config, "model_type", None)
    name = type(model).__name__
    if config is None and isinstance(getattr(model, "model_type", None), str):  # a config, not a model
        raise UnsupportedModelError(
            f"{name} is a config, not a model: build the model first, e.g. "
            f"transformers.AutoModelForSequenceClassification.from_config(config)"
        )
    if not model_type:
        raise UnsupportedModelError(
            f"{name} (no transformers config) is not supported; supported families: {supported_families()}"
        )
    refusal = _refusal(model_type)
    if refusal is not None:
        raise UnsupportedModelError(
            f"{name} (model_type '{model_type}') is not supported: {refusal}; supported families: {supported_families()}"
        )
    return _by_layout(model, f"{name} (model_type '{model_type}')")


def _by_layout(model: nn.Module, subject: str) -> FamilySpec:
    from supernet.families.layout import match_layout

    spec, why = match_layout(model, dict.fromkeys(FAMILIES.values()))
    if spec is None:
        raise UnsupportedModelError(
            f"{subject} is not supported: it has no family table and no known layout ({why}); "
            f"supported families: {supported_families()}"
        )
    return spec


def family_of_config(config: object) -> FamilySpec:
    """The family table for a transformers config, before the model's weights exist.

    A model_type without a table is matched by layout on a skeleton built on
    the `meta` device (no memory, no weights).

    Args:
        config: a transformers `PretrainedConfig`.

    Raises:
        UnsupportedModelError: its model_type is refused, transformers cannot
            build it, or it fits no table's layout.
    """
    spec = _lookup(config)
    if spec is not None:
        return spec
    model_type = getattr(config, "model_type", None)
    refusal = _refusal(model_type)
    if refusal is not None:
        raise UnsupportedModelError(
            f"model_type '{model_type}' is not supported: {refusal}; supported families: {supported_families()}"
        )
    from transformers import AutoModel

    try:
        with torch.device("meta"):
            skeleton = AutoModel.from_config(config)
    except ValueError as err:  # AutoModel knows no class for this config
        raise UnsupportedModelError(
            f"model_type '{model_type}' is not supported: transformers has no model class for it; "
            f"supported families: {supported_families()}"
        ) from err
    except (KeyError, TypeError, AttributeError, ImportError) as err:  # ImportError: detectron2, timm...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnsupportedModelError(
            f"model_type '{model_type}' is not supported: transformers cannot build it from its config "
            f"({first}); supported families: {supported_families()}"
        ) from err
    return _by_layout(skeleton, f"model_type '{model_type}'")

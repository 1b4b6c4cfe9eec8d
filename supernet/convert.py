"""HF model -> supernet, in place, using the per-family tables in `families/`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from supernet.elastic import ElasticAttention, ElasticFFN, ElasticLinear, LayerSkipList
from supernet.families import (
    FamilySpec,
    UnsupportedModelError,
    family_of,
    family_of_config,
    supported_families,
)
from supernet.families.layout import layers_mismatch

if TYPE_CHECKING:
    from supernet.subnet import SubnetConfig

__all__ = ["Arch", "SupernetState", "arch_from_config", "is_supernet", "supernet_state", "to_supernet"]

_STATE_ATTR = "_supernet_state"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Arch:
    """Dimensions of the full (max) network."""

    family: str
    """Family name from the table, e.g. "bert"; for a model matched by layout, its model_type."""
    num_layers: int
    """L, encoder layers."""
    num_heads: int
    """H, attention heads per layer."""
    head_dim: int
    """d, size of one head (unchanged by width slicing)."""
    hidden_size: int
    """e, model width (never sliced)."""
    ffn_dim: int
    """F, FFN intermediate neurons per layer."""


@dataclass(eq=False)
class SupernetState:
    """What `to_supernet` attaches to a converted model."""

    spec: FamilySpec
    arch: Arch
    layers: LayerSkipList
    attentions: list[ElasticAttention]
    ffns: list[ElasticFFN]
    active: SubnetConfig | None = field(default=None)
    """The active subnet as last set (None = max net)."""


def is_supernet(model: nn.Module) -> bool:
    """Whether `to_supernet` has converted `model`."""
    return isinstance(getattr(model, _STATE_ATTR, None), SupernetState)


def supernet_state(model: nn.Module) -> SupernetState:
    """The supernet state of a converted model.

    Raises:
        TypeError: the model was not converted.
    """
    state = getattr(model, _STATE_ATTR, None)
    if not isinstance(state, SupernetState):
        raise TypeError(f"{type(model).__name__} is not a supernet: call supernet.to_supernet(model) first")
    return state


def arch_from_config(config: object, spec: FamilySpec | None = None) -> Arch:
    """The full network's dimensions from a transformers config, without building the model.

    Args:
        config: a transformers `PretrainedConfig`.
        spec: its family table, when already known (else looked up, by layout if need be).

    Raises:
        UnsupportedModelError: the family is not supported.
    """
    spec = family_of_config(config) if spec is None else spec
    num_heads = int(getattr(config, spec.num_heads_attr))
    hidden = int(getattr(config, spec.hidden_attr))
    if hidden % num_heads:
        raise ValueError(f"hidden size {hidden} is not a multiple of the head count {num_heads}")
    return Arch(
        family=spec.name,
        num_layers=int(getattr(config, spec.num_layers_attr)),
        num_heads=num_heads,
        head_dim=hidden // num_heads,
        hidden_size=hidden,
        ffn_dim=int(getattr(config, spec.ffn_attr)),
    )


def _linear(layer: nn.Module, path: str, *, shape: tuple[int, int], where: str) -> ElasticLinear:
    module = layer.get_submodule(path)
    if not isinstance(module, nn.Linear):
        raise TypeError(f"{where}.{path} is {type(module).__name__}, expected nn.Linear")
    # Surgery is checked: a table pointing at the wrong module fails here, loudly.
    if (module.out_features, module.in_features) != shape:
        raise ValueError(
            f"{where}.{path} has shape (out={module.out_features}, in={module.in_features}), expected {shape}"
        )
    return ElasticLinear.from_linear(module)


def to_supernet(model: nn.Module) -> nn.Module:
    """Convert a stock transformers model into an elastic supernet, in place.

    Q/K/V/O and the FFN linears become `ElasticLinear` (width-sliceable by
    heads and neurons); the encoder's layer list becomes a `LayerSkipList`
    (depth-skippable). Parameters are the same objects, so state-dict keys and
    `save_pretrained` / `from_pretrained` are unchanged. Calling it twice is a
    no-op. The converted model starts at the max net and computes exactly what
    the stock model computes.

    Args:
        model: a transformers 5.x model (bare encoder or with a task head) of
            a family with a table (BERT, RoBERTa, XLM-RoBERTa, ELECTRA, ERNIE,
            CamemBERT, Data2VecText, RoBERTa-PreLayerNorm, DistilBERT), or of
            another model_type whose modules have one of those layouts (the
            match is logged and kept in `supernet_state(model).spec`).

    Returns:
        The same model object.

    Raises:
        UnsupportedModelError: the family is not supported.
    """
    if is_supernet(model):
        return model
    spec = family_of(model)
    if spec.matched_layout is not None:
        logger.info("%s: %s", type(model).__name__, spec.describe())
    arch = arch_from_config(model.config, spec)  # type: ignore[attr-defined]
    num_layers, num_heads, head_dim = arch.num_layers, arch.num_heads, arch.head_dim
    hidden, ffn_dim = arch.hidden_size, arch.ffn_dim

    base = model.base_model  # type: ignore[attr-defined]
    module_list = base.get_submodule(spec.layers)
    if not isinstance(module_list, nn.ModuleList) or len(module_list) != num_layers:
        raise ValueError(
            f"{spec.name}: expected {num_layers} layers at base_model.{spec.layers}, found "
            f"{type(module_list).__name__} of length {len(module_list) if hasattr(module_list, '__len__') else '?'}"
        )

    if spec.matched_layout is None:  # matched by its model_type: its modules are checked here
        reason = layers_mismatch(module_list, spec, hidden=hidden, num_heads=num_heads, ffn_dim=ffn_dim)
        if reason is not None:
            model_type = getattr(model.config, "model_type", None)  # type: ignore[attr-defined]
            raise UnsupportedModelError(
                f"{type(model).__name__} (model_type '{model_type}') is not supported: its modules are "
                f"not those of transformers' {spec.name} ({reason}): a remote-code or modified model, or "
                f"an option the package does not slice (e.g. add_cross_attention); supported families: "
                f"{supported_families()}"
            )

    attentions: list[ElasticAttention] = []
    ffns: list[ElasticFFN] = []
    width = num_heads * head_dim
    for i, layer in enumerate(module_list):
        where = f"base_model.{spec.layers}.{i}"
        attentions.append(
            ElasticAttention(
                query=_linear(layer, spec.query, shape=(width, hidden), where=where),
                key=_linear(layer, spec.key, shape=(width, hidden), where=where),
                value=_linear(layer, spec.value, shape=(width, hidden), where=where),
                out=_linear(layer, spec.attn_out, shape=(hidden, width), where=where),
                num_heads=num_heads,
                head_dim=head_dim,
            )
        )
        ffns.append(
            ElasticFFN(
                up=_linear(layer, spec.ffn_in, shape=(ffn_dim, hidden), where=where),
                down=_linear(layer, spec.ffn_out, shape=(hidden, ffn_dim), where=where),
            )
        )
    layers = LayerSkipList.from_module_list(module_list)
    # A plain attribute (not a Module/Parameter), so it adds no state-dict keys.
    object.__setattr__(
        model,
        _STATE_ATTR,
        SupernetState(spec=spec, arch=arch, layers=layers, attentions=attentions, ffns=ffns),
    )
    return model

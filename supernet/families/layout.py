"""Match a model to a family table by where its modules sit, not by its model_type.

A checkpoint whose `model_type` has no table (a domain BERT with its own
type, XLM-RoBERTa-XL, ...) is still a supernet if every encoder layer keeps
stock attention and FFN linears at a table's paths. `layout_mismatch` checks
that module by module, against the shapes the config implies:

* the config holds the table's L, H, hidden size and FFN width, and H divides the hidden size;
* `base_model.<layers>` is a ModuleList of L layers that share no parameters;
* Q/K/V are `nn.Linear(hidden, H*d)`, O is `nn.Linear(H*d, hidden)`, the FFN is
  `nn.Linear(hidden, F)` then `nn.Linear(F, hidden)`;
* the module holding Q/K/V has no parameters of its own beyond them (relative
  position embeddings or biases would add scores that head slicing ignores), and
  each layer holds nothing but those six linears and LayerNorms;
* the model routes attention through transformers' attention interface
  (`_supports_attention_backend`) and runs its eager or sdpa kernel: Q/K/V are
  reshaped with `view(b, s, -1, d)`, so narrower projections run fewer heads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from torch import nn

from supernet.families import FamilySpec

__all__ = ["layout_mismatch", "match_layout"]

_LINEARS = ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")
_KERNELS = ("eager", "sdpa")


def _names(names: list[str]) -> str:
    return names[0] + (", ..." if len(names) > 1 else "")


def _config_int(config: object, attr: str) -> int | None:
    value = getattr(config, attr, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _layer_mismatch(
    layer: nn.Module, spec: FamilySpec, where: str, shapes: dict[str, tuple[int, int]], head_dim: int
) -> str | None:
    """Why one layer does not fit `spec`; None if it does."""
    owned: set[int] = set()
    for part in _LINEARS:
        path = getattr(spec, part)
        try:
            module = layer.get_submodule(path)
        except AttributeError:
            return f"{where} has no module {path}"
        if not isinstance(module, nn.Linear):
            return f"{where}.{path} is {type(module).__name__}, not nn.Linear"
        got = (module.out_features, module.in_features)
        if got != shapes[part]:
            return f"{where}.{path} has shape (out={got[0]}, in={got[1]}), the config implies {shapes[part]}"
        owned.update(id(p) for p in module.parameters())
    attn_path = spec.query.rpartition(".")[0]
    attention = layer.get_submodule(attn_path)
    extra = [n for n, p in attention.named_parameters() if id(p) not in owned]
    if extra:
        return (
            f"{where}.{attn_path} has parameters besides Q/K/V ({_names(extra)}), "
            "so it is not the stock attention that head slicing relies on"
        )
    size = getattr(attention, "attention_head_size", head_dim)
    if size != head_dim:
        return f"{where}.{attn_path} uses head size {size}, the config implies {head_dim}"
    for module in layer.modules():
        if isinstance(module, nn.LayerNorm):
            owned.update(id(p) for p in module.parameters())
    extra = [n for n, p in layer.named_parameters() if id(p) not in owned]
    if extra:
        return (
            f"{where} holds parameters besides its attention and FFN linears and LayerNorms ({_names(extra)})"
        )
    return None


def layout_mismatch(model: nn.Module, spec: FamilySpec) -> str | None:
    """Why `model` does not have `spec`'s layout, in a few words; None if it has.

    Args:
        model: a transformers model (bare encoder or with a task head).
        spec: the table whose paths and config attributes to check.
    """
    base = getattr(model, "base_model", None)
    if not isinstance(base, nn.Module):
        return "it has no base_model"
    try:
        layers = base.get_submodule(spec.layers)
    except AttributeError:
        return f"base_model has no module {spec.layers}"
    config = getattr(model, "config", None)
    dims = {
        attr: _config_int(config, attr)
        for attr in (spec.num_layers_attr, spec.num_heads_attr, spec.hidden_attr, spec.ffn_attr)
    }
    missing = [attr for attr, value in dims.items() if value is None]
    if missing:
        return f"its config has no positive integer {missing[0]}"
    num_layers, num_heads = dims[spec.num_layers_attr], dims[spec.num_heads_attr]
    hidden, ffn_dim = dims[spec.hidden_attr], dims[spec.ffn_attr]
    assert num_layers and num_heads and hidden and ffn_dim  # checked above; for the type checker
    if hidden % num_heads:
        return f"{spec.hidden_attr}={hidden} is not a multiple of {spec.num_heads_attr}={num_heads}"
    # Models that route attention through transformers' attention interface say so
    # with this flag; its eager and sdpa kernels take Q/K/V already split by head
    # size, so they run fewer heads when the projections are narrower. Older
    # attention code reshapes to a fixed all_head_size and breaks when sliced.
    if not getattr(type(model), "_supports_attention_backend", False):
        return "its attention does not run through transformers' attention interface, which head slicing relies on"
    kernel = getattr(config, "_attn_implementation", None)
    if kernel is not None and kernel not in _KERNELS:
        return f"it runs the '{kernel}' attention kernel; layout matching accepts {' or '.join(_KERNELS)}"
    if not isinstance(layers, nn.ModuleList) or len(layers) != num_layers:
        size = len(layers) if isinstance(layers, nn.ModuleList) else type(layers).__name__
        return f"base_model.{spec.layers} is not a list of {num_layers} layers ({size})"
    if spec.embed_project is not None:
        try:
            base.get_submodule(spec.embed_project)
        except AttributeError:
            return f"base_model has no module {spec.embed_project}"
    return layers_mismatch(layers, spec, hidden=hidden, num_heads=num_heads, ffn_dim=ffn_dim)


def layers_mismatch(
    layers: Iterable[nn.Module], spec: FamilySpec, *, hidden: int, num_heads: int, ffn_dim: int
) -> str | None:
    """Why the encoder's `layers` do not have `spec`'s layer layout (its linears at their paths and
    shapes, no other parameters in the attention or the layer, no parameter shared between layers);
    None if they have. `to_supernet` checks this for a model matched by its model_type too: a
    remote-code model can keep a stock model_type ("bert") over other modules."""
    head_dim = hidden // num_heads
    width = num_heads * head_dim
    shapes = dict(
        query=(width, hidden),
        key=(width, hidden),
        value=(width, hidden),
        attn_out=(hidden, width),
        ffn_in=(ffn_dim, hidden),
        ffn_out=(hidden, ffn_dim),
    )
    owner: dict[int, int] = {}
    for i, layer in enumerate(layers):
        where = f"base_model.{spec.layers}.{i}"
        reason = _layer_mismatch(layer, spec, where, shapes, head_dim)
        if reason is not None:
            return reason
        for p in layer.parameters():
            if id(p) in owner:
                return f"layers {owner[id(p)]} and {i} share parameters, so they cannot be cut one at a time"
            owner[id(p)] = i
    return None


def match_layout(model: nn.Module, tables: Iterable[FamilySpec]) -> tuple[FamilySpec | None, str]:
    """The first table whose layout `model` has, as a spec named after its model_type.

    Tables with an embedding projection are tried first and only when the model
    has that module (ELECTRA's layout is BERT's plus a projection). Tables with
    the same paths are tried once.

    Args:
        model: a transformers model whose model_type has no table.
        tables: the family tables, in registry order.

    Returns:
        (spec, "") on a match: a copy of the table with `name` and
        `model_types` set to the model's type and `matched_layout` to the
        table's name; else (None, why the closest table did not fit).
    """
    model_type = str(getattr(getattr(model, "config", None), "model_type", ""))
    seen: set[tuple[object, ...]] = set()
    candidates: list[FamilySpec] = []
    for spec in sorted(tables, key=lambda s: s.embed_project is None):
        key = (spec.layers, *(getattr(spec, p) for p in _LINEARS), spec.embed_project, spec.ffn_attr)
        if key not in seen:
            seen.add(key)
            candidates.append(spec)
    reasons: list[tuple[int, str]] = []
    base = getattr(model, "base_model", None)
    for spec in candidates:
        if spec.embed_project is not None and not (
            isinstance(base, nn.Module) and _has(base, spec.embed_project)
        ):
            continue  # a refinement of another layout, not a candidate of its own
        reason = layout_mismatch(model, spec)
        if reason is None:
            return replace(spec, name=model_type, model_types=(model_type,), matched_layout=spec.name), ""
        # The closest table is one whose layer list exists; report its reason.
        has_layers = isinstance(base, nn.Module) and _has(base, spec.layers)
        reasons.append((0 if has_layers else 1, reason))
    reasons.sort(key=lambda r: r[0])
    return None, reasons[0][1] if reasons else "no family table has its layout"


def _has(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True

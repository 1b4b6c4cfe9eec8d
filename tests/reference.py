"""An independent reference for a subnet: the same weights copied into a stock model.

It shares no code with `supernet.elastic`: plain `nn.Linear`s of the
subnet's real shapes replace the stock ones, and the encoder's layer list
holds only the kept layers. transformers' attention reshapes with
`view(b, s, -1, head_size)`, so a stock model runs narrower projections as
fewer heads of the same size.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from supernet.families import family_of


def _set(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def _sliced(lin: nn.Linear, out: int | None = None, inp: int | None = None) -> nn.Linear:
    out = lin.out_features if out is None else out
    inp = lin.in_features if inp is None else inp
    new = nn.Linear(inp, out, bias=lin.bias is not None)
    with torch.no_grad():
        new.weight.copy_(lin.weight[:out, :inp])
        if lin.bias is not None:
            new.bias.copy_(lin.bias[:out])
    return new


def reference_subnet(stock: nn.Module, heads: list[int], ffn: list[int], layers: list[int]) -> nn.Module:
    """A deep copy of the unconverted `stock` model cut down to the subnet."""
    ref = copy.deepcopy(stock)
    spec = family_of(ref)
    config = ref.config
    head_dim = getattr(config, spec.hidden_attr) // getattr(config, spec.num_heads_attr)
    layer_list = ref.base_model.get_submodule(spec.layers)
    kept = []
    for i in layers:
        layer = layer_list[i]
        w = heads[i] * head_dim
        for path in (spec.query, spec.key, spec.value):
            _set(layer, path, _sliced(layer.get_submodule(path), out=w))
        _set(layer, spec.attn_out, _sliced(layer.get_submodule(spec.attn_out), inp=w))
        _set(layer, spec.ffn_in, _sliced(layer.get_submodule(spec.ffn_in), out=ffn[i]))
        _set(layer, spec.ffn_out, _sliced(layer.get_submodule(spec.ffn_out), inp=ffn[i]))
        kept.append(layer)
    _set(ref.base_model, spec.layers, nn.ModuleList(kept))
    return ref.eval()

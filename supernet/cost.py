"""Analytic cost model of a subnet: parameters and FLOPs.

FLOPs count 2 per multiply-accumulate of the matrix products of one sequence
of `seq_len` tokens through the encoder (batch 1), for each layer that runs
with h heads of size d, m FFN neurons and model width e:

    Q, K, V projections      3 * 2*s*e*(h*d)
    scores Q K^T             2*s*s*(h*d)
    context P V              2*s*s*(h*d)
    output projection O      2*s*(h*d)*e
    FFN up and down          2 * 2*s*e*m

plus ELECTRA's embedding projection (2*s*E*e) when present. Softmax,
LayerNorm, GELU, bias adds, embedding lookups and the task head (pooler and
classifier act on one token: < 0.1% of the total) are not counted. This is the
count `torch.utils.flop_counter.FlopCounterMode` reports for the bare encoder
with eager attention (`attn_implementation="eager"`); tests check the two agree
exactly. With SDPA attention on CPU the counter sees no FLOPs in the attention
kernel and reports less (the scores and context products), not a cheaper model.
"""

from __future__ import annotations

import numbers

from torch import nn

from supernet.convert import supernet_state
from supernet.subnet import SubnetConfig, resolve_subnet

__all__ = ["count_flops", "count_params"]


def count_params(model: nn.Module, cfg: SubnetConfig) -> int:
    """Parameters the subnet `cfg` uses: everything outside the encoder layers,
    plus, for each layer that runs, its sliced Q/K/V/O and FFN and its other
    (unsliced) parameters such as LayerNorms.

    Args:
        model: a converted model.
        cfg: the subnet.
    """
    state = supernet_state(model)
    arch = state.arch
    resolved = resolve_subnet(arch, cfg)
    e, d = arch.hidden_size, arch.head_dim
    in_layers = {id(p) for p in state.layers.parameters()}
    total = sum(p.numel() for p in model.parameters() if id(p) not in in_layers)
    for i in resolved.layers:
        attn, ffn = state.attentions[i], state.ffns[i]
        sliced = {
            id(p)
            for lin in (attn.query, attn.key, attn.value, attn.out, ffn.up, ffn.down)
            for p in lin.parameters()
        }
        total += sum(p.numel() for p in state.layers[i].parameters() if id(p) not in sliced)
        w, m = resolved.heads[i] * d, resolved.ffn[i]
        total += 3 * (e * w + (w if attn.query.bias is not None else 0))
        total += w * e + (e if attn.out.bias is not None else 0)
        total += e * m + (m if ffn.up.bias is not None else 0)
        total += m * e + (e if ffn.down.bias is not None else 0)
    return total


def count_flops(model: nn.Module, cfg: SubnetConfig, seq_len: int) -> int:
    """Encoder FLOPs of `cfg` for one sequence of `seq_len` tokens (formula in the module doc).

    Args:
        model: a converted model.
        cfg: the subnet.
        seq_len: tokens per sequence.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral):
        raise TypeError(f"seq_len must be an integer, got {type(seq_len).__name__} {seq_len!r}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    seq_len = int(seq_len)
    state = supernet_state(model)
    arch = state.arch
    resolved = resolve_subnet(arch, cfg)
    s, e, d = seq_len, arch.hidden_size, arch.head_dim
    flops = 0
    # ELECTRA projects its embeddings only where they are narrower than hidden_size: ELECTRA-base
    # and -large have no such module.
    try:
        proj = model.base_model.get_submodule(state.spec.embed_project) if state.spec.embed_project else None  # type: ignore[attr-defined]
    except AttributeError:
        proj = None
    if isinstance(proj, nn.Linear):
        flops += 2 * s * proj.in_features * proj.out_features
    for i in resolved.layers:
        w, m = resolved.heads[i] * d, resolved.ffn[i]
        flops += 3 * 2 * s * e * w  # Q, K, V
        flops += 2 * 2 * s * s * w  # scores and context
        flops += 2 * s * w * e  # O
        flops += 2 * 2 * s * e * m  # FFN up and down
    return flops

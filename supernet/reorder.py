"""Pure permutation helpers, and applying an importance order to a supernet.

Permutations come in pairs: a unit (head or neuron) moved in the output rows
of one linear must move the same way in the input columns of the next, so the
network computes exactly the same function. After `reorder_by_importance`,
"the first k heads / m neurons" of every layer are its k / m most important.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from supernet.convert import supernet_state
from supernet.importance import ImportanceScores

__all__ = ["head_rows", "permute_in", "permute_out", "reorder_by_importance"]


@torch.no_grad()
def permute_out(linear: nn.Linear, index: torch.Tensor) -> None:
    """Reorder `linear`'s output features: new row i = old row index[i] (weight and bias)."""
    if index.numel() != linear.out_features:
        raise ValueError(f"index has {index.numel()} entries, linear has {linear.out_features} outputs")
    linear.weight.copy_(linear.weight[index])
    if linear.bias is not None:
        linear.bias.copy_(linear.bias[index])


@torch.no_grad()
def permute_in(linear: nn.Linear, index: torch.Tensor) -> None:
    """Reorder `linear`'s input features: new column j = old column index[j]."""
    if index.numel() != linear.in_features:
        raise ValueError(f"index has {index.numel()} entries, linear has {linear.in_features} inputs")
    linear.weight.copy_(linear.weight[:, index])


def head_rows(head_order: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Expand a head permutation [h] to the row permutation [h*d] of the head-major Q/K/V layout."""
    rows = head_order[:, None] * head_dim + torch.arange(head_dim, device=head_order.device)  # [h, d]
    return rearrange(rows, "h d -> (h d)")


def reorder_by_importance(model: nn.Module, scores: ImportanceScores) -> tuple[torch.Tensor, torch.Tensor]:
    """Permute every layer's heads and FFN neurons into descending importance, in place.

    The function computed by the full network does not change (tests check
    logits to 1e-5). Ties keep their original order (stable sort).

    Args:
        model: a converted supernet.
        scores: importance of heads [L, H] and neurons [L, F].

    Returns:
        (head_order [L, H], neuron_order [L, F]): order[l, i] is the old index
        of the unit now at position i.
    """
    state = supernet_state(model)
    arch = state.arch
    if not isinstance(scores, ImportanceScores):
        raise TypeError(
            f"scores must be ImportanceScores (compute_importance's, or ImportanceScores.load), got "
            f"{type(scores).__name__}"
        )
    if tuple(scores.head.shape) != (arch.num_layers, arch.num_heads):
        raise ValueError(
            f"head scores have shape {tuple(scores.head.shape)}, expected {(arch.num_layers, arch.num_heads)}"
        )
    if tuple(scores.neuron.shape) != (arch.num_layers, arch.ffn_dim):
        raise ValueError(
            f"neuron scores have shape {tuple(scores.neuron.shape)}, expected {(arch.num_layers, arch.ffn_dim)}"
        )
    head_orders, neuron_orders = [], []
    for layer, (attn, ffn) in enumerate(zip(state.attentions, state.ffns, strict=True)):
        head_order = torch.sort(scores.head[layer].float().cpu(), descending=True, stable=True).indices
        rows = head_rows(head_order, attn.head_dim).to(attn.query.weight.device)
        for lin in (attn.query, attn.key, attn.value):
            permute_out(lin, rows)
        permute_in(attn.out, rows)
        neuron_order = torch.sort(scores.neuron[layer].float().cpu(), descending=True, stable=True).indices
        idx = neuron_order.to(ffn.up.weight.device)
        permute_out(ffn.up, idx)
        permute_in(ffn.down, idx)
        head_orders.append(head_order)
        neuron_orders.append(neuron_order)
    return torch.stack(head_orders), torch.stack(neuron_orders)

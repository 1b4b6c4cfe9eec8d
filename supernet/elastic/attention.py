"""Head-sliceable self-attention and per-head gates for importance.

Glossary of dimension letters used in shapes below:
    b batch, s sequence, h heads, d head size, e hidden size (= model width)

transformers 5.x attention modules reshape projections with
`view(b, s, -1, d)`, so the number of heads follows from the width of Q/K/V.
Slicing Q/K/V to their first k*d output rows and O to its first k*d input
columns therefore runs exactly the first k heads, with no change to the
attention code itself. Masks exist only as gates for importance gradients,
applied by `head_gates` as a temporary hook on O's input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from einops import rearrange

from supernet.elastic.linear import ElasticLinear

__all__ = ["ElasticAttention", "head_gates"]


@dataclass(eq=False)
class ElasticAttention:
    """The four projections of one attention block, sliced together by heads."""

    query: ElasticLinear
    key: ElasticLinear
    value: ElasticLinear
    out: ElasticLinear
    num_heads: int
    head_dim: int

    def __post_init__(self) -> None:
        width = self.num_heads * self.head_dim
        for name in ("query", "key", "value"):
            lin: ElasticLinear = getattr(self, name)
            if lin.out_features != width:
                raise ValueError(
                    f"{name}.out_features is {lin.out_features}, expected heads*head_dim={width}"
                )
        if self.out.in_features != width:
            raise ValueError(f"out.in_features is {self.out.in_features}, expected heads*head_dim={width}")

    @property
    def active_heads(self) -> int:
        return self.query.active_out_features // self.head_dim

    def set_active_heads(self, heads: int) -> None:
        """Run the first `heads` heads."""
        if not 1 <= heads <= self.num_heads:
            raise ValueError(f"heads must be in [1, {self.num_heads}], got {heads}")
        width = heads * self.head_dim
        for lin in (self.query, self.key, self.value):
            lin.set_active(out_features=width)
        self.out.set_active(in_features=width)


@contextmanager
def head_gates(
    attentions: Sequence[ElasticAttention], *, requires_grad: bool = True
) -> Iterator[torch.Tensor]:
    """Multiply each head's context by a gate while the context is open.

    Yields a tensor `gates` of shape [num_layers, num_heads], all ones; the
    gradient d loss / d gates[l, h] is the head importance signal of Michel et
    al. (2019), "Are Sixteen Heads Really Better than One?". The model's
    outputs are unchanged while gates are ones.

    Args:
        attentions: one ElasticAttention per layer (all with the same head count).
        requires_grad: whether the gates collect gradients.
    """
    num_heads = {a.num_heads for a in attentions}
    if len(num_heads) != 1:
        raise ValueError(f"all layers must have the same number of heads, got {sorted(num_heads)}")
    weight = attentions[0].out.weight
    gates = torch.ones(len(attentions), num_heads.pop(), device=weight.device, dtype=weight.dtype)
    gates.requires_grad_(requires_grad)
    handles = []
    for layer_idx, attn in enumerate(attentions):

        def gate_context(
            _module: object, args: tuple[torch.Tensor, ...], *, _l: int = layer_idx, _d: int = attn.head_dim
        ) -> tuple[torch.Tensor, ...]:
            (context,) = args  # [b, s, h*d] with h the active heads
            heads = context.shape[-1] // _d
            per_head = rearrange(context, "b s (h d) -> b s h d", d=_d)
            gated = per_head * gates[_l, :heads, None]
            return (rearrange(gated, "b s h d -> b s (h d)"),)

        handles.append(attn.out.register_forward_pre_hook(gate_context))
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()

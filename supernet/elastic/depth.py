"""Depth control: which encoder layers run for a depth multiplier.

The encoder's `nn.ModuleList` of layers becomes a `LayerSkipList`, whose
iteration yields only the active layers. transformers 5.x encoders loop with
`for layer in self.layer`, so skipped layers are never called (no compute),
and hidden states, which transformers records with hooks on each layer, come
out as the embedding output plus one entry per executed layer. Indexing,
`len`, `state_dict` and `named_modules` still see every layer, so parameter
names do not change.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from torch import nn

__all__ = ["LayerSkipList", "kept_layers"]


def kept_layers(num_layers: int, depth_mult: float) -> list[int]:
    """Indices of the layers DynaBERT keeps for `depth_mult`.

    Rule (Hou et al., 2020, DynaBERT, Sec. 3.2 and its released code): keep
    layer floor(i / d) for i in range(round(L * d)). `round` is Python's
    (round half to even), as in the released code.

    L=12: d=0.5 -> [0, 2, 4, 6, 8, 10]; d=0.75 -> [0, 1, 2, 4, 5, 6, 8, 9, 10].
    L=6 (all-MiniLM-L6-v2): d=0.75 -> [0, 1, 2, 4]  (round(4.5) = 4);
    d=0.5 -> [0, 2, 4]; d=0.25 -> [0, 4]  (round(1.5) = 2).

    Args:
        num_layers: L, the number of layers of the full model.
        depth_mult: d in (0, 1].

    Raises:
        ValueError: d outside (0, 1] or giving no layer.
    """
    if not 0.0 < depth_mult <= 1.0:
        raise ValueError(f"depth_mult must be in (0, 1], got {depth_mult}")
    depth = round(num_layers * depth_mult)
    if depth < 1:  # round() is half-to-even: one layer needs L * d > 0.5
        raise ValueError(
            f"depth_mult={depth_mult} keeps 0 of {num_layers} layers; "
            f"use depth_mult > {least_multiplier(num_layers)} (1 layer)"
        )
    # The epsilon keeps i/d from landing a hair under an integer (e.g. 3/0.75).
    return [math.floor(i / depth_mult + 1e-9) for i in range(depth)]


def least_multiplier(n: int) -> str:
    """The bound a multiplier of `n` units must exceed to keep one (round() is half-to-even: n * m >
    0.5), in 4 digits rounded up, so that every value above the printed one keeps a unit."""
    bound = 0.5 / n
    scale = 10.0 ** (math.floor(math.log10(bound)) - 3)  # the 4th significant digit's place
    steps = bound / scale
    steps = round(steps) if abs(steps - round(steps)) < 1e-9 else math.ceil(steps)  # 0.125 stays 0.125
    return f"{steps * scale:.4g}"


class LayerSkipList(nn.ModuleList):
    """A ModuleList whose iteration yields only its active members."""

    # A class default: ModuleList's slicing (`layers[:2]`) builds a new list through __init__, which
    # `from_module_list` does not run; such a slice runs every one of its layers.
    active_indices: tuple[int, ...] | None = None

    @classmethod
    def from_module_list(cls, layers: nn.ModuleList) -> LayerSkipList:
        """Turn `layers` into a LayerSkipList in place (same children, same keys)."""
        if isinstance(layers, cls):
            return layers
        if type(layers) is not nn.ModuleList:
            raise TypeError(f"expected an nn.ModuleList, got {type(layers).__name__}")
        layers.__class__ = cls
        assert isinstance(layers, cls)
        layers.active_indices = None
        return layers

    def set_active(self, indices: Sequence[int] | None) -> None:
        """Run only `indices` (ascending, unique), or every layer when None."""
        if indices is None:
            self.active_indices = None
            return
        idx = tuple(int(i) for i in indices)
        n = len(self)
        if not idx:
            raise ValueError("layers must keep at least one layer")
        for i in idx:
            if not 0 <= i < n:
                raise ValueError(f"layers: index {i} is out of range [0, {n - 1}]")
        if len(set(idx)) != len(idx):
            raise ValueError(f"layers: indices must not repeat, got {list(idx)}")
        if list(idx) != sorted(idx):
            raise ValueError(f"layers: indices must be ascending, got {list(idx)}")
        self.active_indices = None if idx == tuple(range(n)) else idx

    def __iter__(self) -> Iterator[nn.Module]:
        if self.active_indices is None:
            return super().__iter__()
        return iter([self[i] for i in self.active_indices])

"""Width-sliceable linear layer.

`ElasticLinear` is an `nn.Linear` whose forward uses only the first
`active_out_features` rows and the first `active_in_features` columns of its
weight. It keeps `weight` and `bias` as they are, so a pretrained state dict
loads unchanged and `save_pretrained` writes the same keys.

Inference cache. Slicing input columns (`w[:, :k]`, as for the attention
output and FFN down projections) gives a strided view, and the matrix
multiply on a strided weight, plus building the views on every call, made a
sliced supernet 3-4% slower than the same subnet built from dense
`nn.Linear`s (bench/convert_overhead.py). So when autograd is off
(`torch.no_grad()` / `torch.inference_mode()`), the forward keeps a
contiguous copy of the active block, reused while the active sizes, the
parameter objects, their storage and their version counters (bumped by every
in-place update: optimizer steps, `copy_`, `load_state_dict`) are unchanged.
With autograd on (training, importance scores) the forward uses views, so
gradients reach the full weight, and drops any cached copy. The copy costs
memory equal to the active block while a subnet is served; the full width
uses the weight itself and never caches. Writes through `param.data` bypass
version counters (as they bypass autograd): after one, call `clear_cache()`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ElasticLinear"]


class ElasticLinear(nn.Linear):
    """An `nn.Linear` that can run on a leading slice of its inputs and outputs."""

    active_in_features: int
    active_out_features: int
    _active_cache: tuple[tuple[object, ...], torch.Tensor, torch.Tensor | None] | None
    """(key, contiguous active weight, active bias) for inference; see the module doc."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kwargs: object) -> None:
        super().__init__(in_features, out_features, bias=bias, **kwargs)  # type: ignore[arg-type]
        self.active_in_features = in_features
        self.active_out_features = out_features
        self._active_cache = None

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> ElasticLinear:
        """Turn `linear` into an ElasticLinear in place (no copy) and return it.

        The class swap keeps the parameter objects, so optimizers, tied
        weights and hooks that already reference them stay valid.
        """
        if isinstance(linear, cls):
            return linear
        if type(linear) is not nn.Linear:
            raise TypeError(f"expected a plain nn.Linear, got {type(linear).__name__}")
        linear.__class__ = cls
        assert isinstance(linear, cls)
        linear.active_in_features = linear.in_features
        linear.active_out_features = linear.out_features
        linear._active_cache = None
        return linear

    def set_active(self, *, in_features: int | None = None, out_features: int | None = None) -> None:
        """Choose how many leading input columns / output rows run.

        Args:
            in_features: active input width (None leaves it unchanged).
            out_features: active output width (None leaves it unchanged).
        """
        if in_features is not None:
            if not 0 < in_features <= self.in_features:
                raise ValueError(f"in_features must be in [1, {self.in_features}], got {in_features}")
            self.active_in_features = in_features
        if out_features is not None:
            if not 0 < out_features <= self.out_features:
                raise ValueError(f"out_features must be in [1, {self.out_features}], got {out_features}")
            self.active_out_features = out_features
        cache = self.__dict__.get("_active_cache")
        if cache is not None and cache[0][:2] != (self.active_out_features, self.active_in_features):
            self._active_cache = None  # free the stale copy now rather than at the next forward

    def clear_cache(self) -> None:
        """Drop the inference copy of the active weight (rebuilt on the next no-grad forward)."""
        self._active_cache = None

    def active_weight(self) -> torch.Tensor:
        """The active block of the weight, [active_out, active_in] (a view)."""
        return self.weight[: self.active_out_features, : self.active_in_features]

    def active_bias(self) -> torch.Tensor | None:
        """The active part of the bias, [active_out] (a view), or None."""
        return None if self.bias is None else self.bias[: self.active_out_features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active_in_features == self.in_features and self.active_out_features == self.out_features:
            if self.__dict__.get("_active_cache") is not None:
                self._active_cache = None
            return F.linear(x, self.weight, self.bias)
        if torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            # Views, so gradients flow into the full weight (and tracers see the
            # slicing of the parameter, not a constant copy).
            if self.__dict__.get("_active_cache") is not None:
                self._active_cache = None
            # The input arrives already narrowed by the previous sliced layer, so
            # x.shape[-1] == active_in_features; slicing views the weight, no copy.
            return F.linear(x, self.active_weight(), self.active_bias())
        weight, bias = self._inference_weights()
        return F.linear(x, weight, bias)

    def _inference_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The active weight (contiguous) and bias, cached until anything they depend on changes."""
        try:
            key = (
                self.active_out_features,
                self.active_in_features,
                *_identity(self.weight),
                *(() if self.bias is None else _identity(self.bias)),
            )
        except RuntimeError:
            # Parameters created under inference_mode have no version counter, so
            # a cache could not notice in-place updates: use views.
            return self.active_weight(), self.active_bias()
        cache = self.__dict__.get("_active_cache")
        if cache is not None and cache[0] == key:
            return cache[1], cache[2]
        weight = self.active_weight().detach().contiguous()
        bias = self.active_bias()
        bias = None if bias is None else bias.detach()
        self._active_cache = (key, weight, bias)
        return weight, bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"active_in={self.active_in_features}, active_out={self.active_out_features}, "
            f"bias={self.bias is not None}"
        )


def _identity(t: torch.Tensor) -> tuple[int, int, int]:
    """What changes when `t` is replaced, moved or updated in place: object, storage, version."""
    return id(t), t.data_ptr(), t._version

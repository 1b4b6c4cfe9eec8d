"""Width-sliceable linear layer.

`ElasticLinear` is an `nn.Linear` whose forward uses only the first
`active_out_features` rows and the first `active_in_features` columns of its
weight. It keeps `weight` and `bias` as they are, so a pretrained state dict
loads unchanged and `save_pretrained` writes the same keys.

Inference cache. Slicing input columns (`w[:, :k]`, as for the attention
output and FFN down projections) gives a strided view; the matrix multiply on
a strided weight, plus building the views on every call, made a sliced
supernet 3-4% slower than the same subnet built from dense `nn.Linear`s
(bench/convert_overhead.py, BERT-base and MiniLM, b1 s128, 1 thread). So when
autograd is off (`torch.no_grad()` / `torch.inference_mode()`), the forward
keeps the active block in contiguous form (a copy for column slices; for row
slices the view already is contiguous and is kept as is), reused while the
active sizes, the parameter objects (held by the cache, so their identity
cannot be recycled), their storage and their version counters (bumped by
every in-place update: optimizer steps, `copy_`, `load_state_dict`) are
unchanged. With autograd on (training, importance scores) the forward uses
views, so gradients reach the full weight, and drops any cached copy. The
copies cost memory equal to the active blocks of column-sliced layers while a
subnet is served; the full width uses the weight itself and never caches.
Writes through `param.data` bypass version counters (as they bypass
autograd): after one, call `clear_cache()`.
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
    _active_cache: _Cache | None
    """Inference copy of the active weight and bias; see the module doc."""

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
        if cache is not None and cache.sizes != (self.active_out_features, self.active_in_features):
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
        # Parameters straight from the dict: `self.weight` goes through
        # nn.Module.__getattr__, which costs more than the rest of this check.
        params = self._parameters
        weight, bias = params["weight"], params["bias"]
        out_f, in_f = self.active_out_features, self.active_in_features
        if out_f == self.out_features and in_f == self.in_features:
            if self.__dict__.get("_active_cache") is not None:
                self._active_cache = None
            return F.linear(x, weight, bias)  # type: ignore[arg-type]
        if torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            # Views, so gradients flow into the full weight (and tracers see the
            # slicing of the parameter, not a constant copy).
            if self.__dict__.get("_active_cache") is not None:
                self._active_cache = None
            # The input arrives already narrowed by the previous sliced layer, so
            # x.shape[-1] == active_in_features; slicing views the weight, no copy.
            return F.linear(x, weight[:out_f, :in_f], None if bias is None else bias[:out_f])  # type: ignore[index]
        cache = self.__dict__.get("_active_cache")
        if cache is None or not cache.valid(weight, bias, (out_f, in_f)):  # type: ignore[arg-type]
            cache = _Cache.build(weight, bias, (out_f, in_f))  # type: ignore[arg-type]
            if cache is None:
                # Parameters created under inference_mode have no version counter,
                # so a copy could not notice in-place updates: use views.
                return F.linear(x, weight[:out_f, :in_f], None if bias is None else bias[:out_f])  # type: ignore[index]
            self._active_cache = cache
        return F.linear(x, cache.weight, cache.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"active_in={self.active_in_features}, active_out={self.active_out_features}, "
            f"bias={self.bias is not None}"
        )


class _Cache:
    """A contiguous copy of an ElasticLinear's active block and what it was copied from."""

    __slots__ = ("bias", "sizes", "source_bias", "source_weight", "stamp", "weight")

    def __init__(
        self,
        source_weight: torch.Tensor,
        source_bias: torch.Tensor | None,
        sizes: tuple[int, int],
        stamp: tuple[int, ...],
    ) -> None:
        out_f, in_f = sizes
        # Holding the source parameters keeps their ids from being reused by new objects.
        self.source_weight = source_weight
        self.source_bias = source_bias
        self.sizes = sizes
        self.stamp = stamp
        self.weight = source_weight.detach()[:out_f, :in_f].contiguous()
        self.bias = None if source_bias is None else source_bias.detach()[:out_f]

    @staticmethod
    def stamp_of(weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[int, ...]:
        """Storage address and version counter of each parameter (RuntimeError for inference tensors)."""
        if bias is None:
            return (weight.data_ptr(), weight._version)
        return (weight.data_ptr(), weight._version, bias.data_ptr(), bias._version)

    @classmethod
    def build(cls, weight: torch.Tensor, bias: torch.Tensor | None, sizes: tuple[int, int]) -> _Cache | None:
        try:
            stamp = cls.stamp_of(weight, bias)
        except RuntimeError:
            return None
        return cls(weight, bias, sizes, stamp)

    def valid(self, weight: torch.Tensor, bias: torch.Tensor | None, sizes: tuple[int, int]) -> bool:
        return (
            self.source_weight is weight
            and self.source_bias is bias
            and self.sizes == sizes
            and self.stamp == self.stamp_of(weight, bias)
        )

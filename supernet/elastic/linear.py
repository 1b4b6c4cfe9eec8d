"""Width-sliceable linear layer.

`ElasticLinear` is an `nn.Linear` whose forward uses only the first
`active_out_features` rows and the first `active_in_features` columns of its
weight. It keeps `weight` and `bias` as they are, so a pretrained state dict
loads unchanged and `save_pretrained` writes the same keys.
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

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kwargs: object) -> None:
        super().__init__(in_features, out_features, bias=bias, **kwargs)  # type: ignore[arg-type]
        self.active_in_features = in_features
        self.active_out_features = out_features

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

    def active_weight(self) -> torch.Tensor:
        """The active block of the weight, [active_out, active_in] (a view)."""
        return self.weight[: self.active_out_features, : self.active_in_features]

    def active_bias(self) -> torch.Tensor | None:
        """The active part of the bias, [active_out] (a view), or None."""
        return None if self.bias is None else self.bias[: self.active_out_features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active_in_features == self.in_features and self.active_out_features == self.out_features:
            return F.linear(x, self.weight, self.bias)
        # The input arrives already narrowed by the previous sliced layer, so
        # x.shape[-1] == active_in_features; slicing views the weight, no copy.
        return F.linear(x, self.active_weight(), self.active_bias())

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"active_in={self.active_in_features}, active_out={self.active_out_features}, "
            f"bias={self.bias is not None}"
        )

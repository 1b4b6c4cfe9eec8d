"""Subnets as values, and the verbs that activate them (Once-for-All's names).

A `SubnetConfig` says which part of the supernet runs:

* uniform: `width_mult` (fraction of heads and FFN neurons in every layer) and
  `depth_mult` (fraction of layers, DynaBERT's rule, see `kept_layers`);
* per layer: `heads` and `ffn` give one count per layer of the full model, and
  `layers` lists the layers that run explicitly.

Width w keeps round(H*w) heads (head size unchanged) and round(F*w) FFN
neurons; the first ones run, which after reordering are the most important.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import numbers
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from supernet.config import mult_name, name_clashes
from supernet.convert import Arch, supernet_state
from supernet.elastic.depth import kept_layers, least_multiplier

__all__ = [
    "MAX_NET",
    "ResolvedSubnet",
    "SearchSpace",
    "SubnetConfig",
    "active_layers",
    "active_subnet",
    "iter_grid",
    "random_subnet",
    "resolve_subnet",
    "sample_active_subnet",
    "set_active_subnet",
    "set_max_net",
]

_NAME_RE = re.compile(r"^w(?P<w>\d*\.?\d+)-d(?P<d>\d*\.?\d+)$")


def _check_mult(name: str, value: float | None) -> None:
    if value is None:
        return
    # numbers.Real: numpy floats (a multiplier read from an array) are numbers too; bools are not.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")


def _int_tuple(name: str, value: Sequence[int] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    # numbers.Integral: numpy integer scalars (from an argsort, an array's iteration) are integers
    # too; bools are not.
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Iterable)
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in value)
    ):
        raise ValueError(f"{name} must be a list of integers, got {value!r}")
    return tuple(int(v) for v in value)


@dataclass(frozen=True, kw_only=True)
class SubnetConfig:
    """One subnet of the supernet: immutable, hashable, with a stable name.

    Width comes from `width_mult`, or from per-layer `heads` and `ffn` (both
    given, length L); depth from `depth_mult` or an explicit `layers` list.
    Unset width means full width; unset depth means every layer.
    """

    width_mult: float | None = None
    """Fraction of heads and FFN neurons kept in every layer, in (0, 1]."""
    depth_mult: float | None = None
    """Fraction of layers kept (DynaBERT's rule), in (0, 1]."""
    heads: tuple[int, ...] | None = None
    """Per-layer head counts, one per layer of the full model."""
    ffn: tuple[int, ...] | None = None
    """Per-layer FFN neuron counts, one per layer of the full model."""
    layers: tuple[int, ...] | None = None
    """The layer indices that run (stored ascending: layers run in the model's order)."""

    def __post_init__(self) -> None:
        _check_mult("width_mult", self.width_mult)
        _check_mult("depth_mult", self.depth_mult)
        object.__setattr__(self, "heads", _int_tuple("heads", self.heads))
        object.__setattr__(self, "ffn", _int_tuple("ffn", self.ffn))
        layers = _int_tuple("layers", self.layers)
        # Sorted, so that one subnet has one name and one cache entry whatever order it was listed in.
        object.__setattr__(self, "layers", None if layers is None else tuple(sorted(layers)))
        if self.width_mult is not None and (self.heads is not None or self.ffn is not None):
            raise ValueError("give either width_mult or per-layer heads/ffn, not both")
        if (self.heads is None) != (self.ffn is None):
            raise ValueError("per-layer heads and ffn must be given together")
        if self.depth_mult is not None and self.layers is not None:
            raise ValueError("give either depth_mult or layers, not both")
        if self.width_mult is not None:
            object.__setattr__(self, "width_mult", float(self.width_mult))
        if self.depth_mult is not None:
            object.__setattr__(self, "depth_mult", float(self.depth_mult))

    @property
    def is_uniform(self) -> bool:
        """True when the subnet is given by multipliers only (a grid point)."""
        return self.heads is None and self.layers is None

    @property
    def name(self) -> str:
        """Stable name: `w0.50-d0.75` for multipliers, `sub-<hash>` for per-layer specs."""
        if self.is_uniform:
            w = 1.0 if self.width_mult is None else self.width_mult
            d = 1.0 if self.depth_mult is None else self.depth_mult
            return f"w{mult_name(w)}-d{mult_name(d)}"
        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
        return f"sub-{digest[:10]}"

    def to_dict(self) -> dict[str, object]:
        """The full spec as a JSON-able dict (None fields left out)."""
        out: dict[str, object] = {}
        for key in ("width_mult", "depth_mult", "heads", "ffn", "layers"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, spec: dict[str, object]) -> SubnetConfig:
        """Inverse of `to_dict`; unknown keys are an error."""
        allowed = {"width_mult", "depth_mult", "heads", "ffn", "layers"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(f"unknown subnet field(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**spec)  # type: ignore[arg-type]

    @classmethod
    def from_name(cls, name: str, space: SearchSpace | None = None) -> SubnetConfig:
        """Parse a grid name such as `w0.50-d0.75`.

        Args:
            name: the name.
            space: the space the name comes from: a multiplier of it that the name writes to 2
                decimals is taken exactly (`w0.62-d0.67` of widths [1, 0.625] and depths [1, 2/3]
                is width 0.625, depth 2/3, not 0.62 and 0.67: other heads and layers).
        """
        match = _NAME_RE.match(name)
        if not match:
            raise ValueError(f"subnet name '{name}' is not of the form w<width>-d<depth>, e.g. w0.50-d0.75")
        width, depth = float(match["w"]), float(match["d"])
        if space is not None:
            width = next((m for m in space.width_mults if mult_name(m) == mult_name(width)), width)
            depth = next((m for m in space.depth_mults if mult_name(m) == mult_name(depth)), depth)
        return cls(width_mult=width, depth_mult=depth)

    def __str__(self) -> str:
        return self.name


MAX_NET = SubnetConfig()


@dataclass(frozen=True, kw_only=True)
class ResolvedSubnet:
    """A SubnetConfig made concrete for one architecture."""

    heads: tuple[int, ...]
    """Heads per layer of the full model (entries of skipped layers are kept but unused)."""
    ffn: tuple[int, ...]
    """FFN neurons per layer of the full model."""
    layers: tuple[int, ...]
    """Indices of the layers that run, ascending."""


def resolve_subnet(arch: Arch, cfg: SubnetConfig) -> ResolvedSubnet:
    """Concrete head/neuron counts and layer list of `cfg` on `arch`.

    Raises:
        TypeError: `cfg` is not a SubnetConfig (a grid name: `SubnetConfig.from_name`).
        ValueError: naming the field and the allowed range.
    """
    if not isinstance(cfg, SubnetConfig):  # a name or None got as far as cfg.heads before
        hint = " (a grid name: SubnetConfig.from_name(name))" if isinstance(cfg, str) else ""
        raise TypeError(f"cfg must be a SubnetConfig{hint}, got {type(cfg).__name__} {cfg!r}")
    L, H, F = arch.num_layers, arch.num_heads, arch.ffn_dim
    if cfg.heads is not None and cfg.ffn is not None:
        for name, values, top in (("heads", cfg.heads, H), ("ffn", cfg.ffn, F)):
            if len(values) != L:
                raise ValueError(f"{name} must list one value per layer ({L}), got {len(values)}")
            for v in values:
                if not 1 <= v <= top:
                    raise ValueError(f"{name} values must be in [1, {top}], got {v}")
        heads, ffn = cfg.heads, cfg.ffn
    else:
        w = 1.0 if cfg.width_mult is None else cfg.width_mult
        n_heads, n_ffn = round(H * w), round(F * w)
        if n_heads < 1:
            raise ValueError(
                f"width_mult={w} gives 0 of {H} heads; use width_mult > {least_multiplier(H)} (1 head)"
            )
        if n_ffn < 1:
            raise ValueError(
                f"width_mult={w} gives 0 of {F} FFN neurons; use width_mult > {least_multiplier(F)} (1 neuron)"
            )
        heads, ffn = (n_heads,) * L, (n_ffn,) * L
    if cfg.layers is not None:
        layers = cfg.layers
        if not layers:
            raise ValueError(f"layers must list at least one index in [0, {L - 1}]")
        for i in layers:
            if not 0 <= i < L:
                raise ValueError(f"layers: index {i} is out of range [0, {L - 1}]")
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers: indices must not repeat, got {list(layers)}")
    else:
        layers = tuple(kept_layers(L, 1.0 if cfg.depth_mult is None else cfg.depth_mult))
    return ResolvedSubnet(heads=tuple(heads), ffn=tuple(ffn), layers=layers)


def set_active_subnet(model: nn.Module, cfg: SubnetConfig) -> ResolvedSubnet:
    """Make `cfg` the subnet that `model` runs.

    Args:
        model: a model converted by `to_supernet`.
        cfg: the subnet.

    Returns:
        The resolved per-layer counts and layer list.
    """
    state = supernet_state(model)
    resolved = resolve_subnet(state.arch, cfg)  # a cfg of another type refused there
    for attn, ffn, h, m in zip(state.attentions, state.ffns, resolved.heads, resolved.ffn, strict=True):
        attn.set_active_heads(h)
        ffn.set_active_neurons(m)
    state.layers.set_active(resolved.layers)
    state.active = cfg
    return resolved


def set_max_net(model: nn.Module) -> None:
    """Run the full network (every head, neuron and layer)."""
    set_active_subnet(model, MAX_NET)


def active_subnet(model: nn.Module) -> SubnetConfig:
    """The subnet `model` currently runs (MAX_NET if none was set)."""
    active = supernet_state(model).active
    return MAX_NET if active is None else active


def active_layers(model: nn.Module) -> list[int]:
    """Indices of the layers that currently run."""
    state = supernet_state(model)
    idx = state.layers.active_indices
    return list(range(state.arch.num_layers)) if idx is None else list(idx)


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """The width and depth multipliers a supernet is trained for."""

    width_mults: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    """Width multipliers, each in (0, 1]."""
    depth_mults: tuple[float, ...] = (1.0, 0.75, 0.5)
    """Depth multipliers, each in (0, 1]."""

    def __post_init__(self) -> None:
        for name in ("width_mults", "depth_mults"):
            given = getattr(self, name)
            if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
                raise ValueError(f"{name} must be a list of numbers in (0, 1], got {given!r}")
            given = tuple(given)
            if not given:
                raise ValueError(f"{name} must not be empty")
            for v in given:
                _check_mult(name, v)
            values = tuple(float(v) for v in given)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must not repeat values, got {list(values)}")
            if clash := name_clashes(values):
                raise ValueError(
                    f"{name} must not hold values that are the same to 2 decimals ({', '.join(clash)}), "
                    f"got {list(values)}"
                )
            object.__setattr__(self, name, tuple(sorted(values, reverse=True)))

    def grid(self) -> list[SubnetConfig]:
        """Every (width, depth) pair, widest and deepest first."""
        return list(iter_grid(self))

    @property
    def largest(self) -> SubnetConfig:
        """The widest, deepest subnet of the space (the max net when both lists hold 1.0)."""
        return SubnetConfig(width_mult=max(self.width_mults), depth_mult=max(self.depth_mults))

    @property
    def smallest(self) -> SubnetConfig:
        """The narrowest, shallowest subnet of the space."""
        return SubnetConfig(width_mult=min(self.width_mults), depth_mult=min(self.depth_mults))


def iter_grid(space: SearchSpace) -> Iterator[SubnetConfig]:
    """Iterate the width x depth grid of `space`, widest and deepest first."""
    for w, d in itertools.product(space.width_mults, space.depth_mults):
        yield SubnetConfig(width_mult=w, depth_mult=d)


def _draw(rng: random.Random, mults: Sequence[float], small_bias: float) -> float:
    # bias 0 keeps rng.choice, so runs from before the option draw the same subnets.
    if small_bias == 0:
        return rng.choice(mults)
    return rng.choices(mults, weights=[m**-small_bias for m in mults])[0]


def random_subnet(
    arch: Arch,
    space: SearchSpace,
    rng: random.Random,
    *,
    per_layer: bool = False,
    small_bias: float = 0.0,
) -> SubnetConfig:
    """A random subnet of `space` on `arch` (not activated).

    Args:
        arch: the architecture the counts come from.
        space: the multipliers to draw from.
        rng: the random source (seed it for reproducibility).
        per_layer: draw each layer's head and FFN counts independently (from the counts the width
            multipliers give) instead of one width multiplier; depth stays a multiplier.
        small_bias: draw each multiplier m with probability proportional to m ** -small_bias:
            0 is uniform, 1 draws width 0.25 four times as often as width 1.
    """
    depth = _draw(rng, space.depth_mults, small_bias)
    if not per_layer:
        return SubnetConfig(width_mult=_draw(rng, space.width_mults, small_bias), depth_mult=depth)
    heads, ffn = [], []
    for _ in range(arch.num_layers):
        heads.append(round(arch.num_heads * _draw(rng, space.width_mults, small_bias)))
        ffn.append(round(arch.ffn_dim * _draw(rng, space.width_mults, small_bias)))
    return SubnetConfig(heads=tuple(heads), ffn=tuple(ffn), layers=tuple(kept_layers(arch.num_layers, depth)))


def sample_active_subnet(
    model: nn.Module, space: SearchSpace, rng: random.Random, *, per_layer: bool = False
) -> SubnetConfig:
    """Draw a random subnet from `space` (`random_subnet`), activate it on `model` and return it.

    Args:
        model: a converted model.
        space: the multipliers to draw from.
        rng: the random source (seed it for reproducibility).
        per_layer: draw each layer's width independently (heads and FFN from the
            counts the width multipliers give) instead of one multiplier.
    """
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random (e.g. random.Random(seed)), got {type(rng).__name__}")
    cfg = random_subnet(supernet_state(model).arch, space, rng, per_layer=per_layer)
    set_active_subnet(model, cfg)
    return cfg

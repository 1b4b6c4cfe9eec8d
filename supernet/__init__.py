"""supernet: train one elastic BERT-family model, cut many subnets.

The names below are imported on first use (PEP 562): `import supernet.cli` for train.py's,
search.py's and export.py's options stays free of torch and transformers, so `--help` and a
refused option answer at once instead of after seconds of imports.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Arch": "convert",
    "is_supernet": "convert",
    "supernet_state": "convert",
    "to_supernet": "convert",
    "count_flops": "cost",
    "count_params": "cost",
    "ElasticLinear": "elastic",
    "kept_layers": "elastic",
    "FAMILIES": "families",
    "UnsupportedModelError": "families",
    "ImportanceScores": "importance",
    "compute_importance": "importance",
    "reorder_by_importance": "reorder",
    "MAX_NET": "subnet",
    "SearchSpace": "subnet",
    "SubnetConfig": "subnet",
    "active_layers": "subnet",
    "active_subnet": "subnet",
    "iter_grid": "subnet",
    "resolve_subnet": "subnet",
    "sample_active_subnet": "subnet",
    "set_active_subnet": "subnet",
    "set_max_net": "subnet",
}

__all__ = [
    "FAMILIES",
    "MAX_NET",
    "Arch",
    "ElasticLinear",
    "ImportanceScores",
    "SearchSpace",
    "SubnetConfig",
    "UnsupportedModelError",
    "active_layers",
    "active_subnet",
    "count_flops",
    "compute_importance",
    "count_params",
    "is_supernet",
    "iter_grid",
    "kept_layers",
    "reorder_by_importance",
    "resolve_subnet",
    "sample_active_subnet",
    "set_active_subnet",
    "set_max_net",
    "supernet_state",
    "to_supernet",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        # A submodule (supernet.io, supernet.subnet): reachable as an attribute, as when this file
        # imported them all.
        if importlib.util.find_spec(f"supernet.{name}") is None:
            raise AttributeError(f"module 'supernet' has no attribute {name!r}")
        return importlib.import_module(f"supernet.{name}")
    value = getattr(importlib.import_module(f"supernet.{module}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


if TYPE_CHECKING:  # what type checkers and editors see
    from supernet.convert import Arch, is_supernet, supernet_state, to_supernet
    from supernet.cost import count_flops, count_params
    from supernet.elastic import ElasticLinear, kept_layers
    from supernet.families import FAMILIES, UnsupportedModelError
    from supernet.importance import ImportanceScores, compute_importance
    from supernet.reorder import reorder_by_importance
    from supernet.subnet import (
        MAX_NET,
        SearchSpace,
        SubnetConfig,
        active_layers,
        active_subnet,
        iter_grid,
        resolve_subnet,
        sample_active_subnet,
        set_active_subnet,
        set_max_net,
    )

"""supernet: train one elastic BERT-family model, cut many subnets."""

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

"""Width-sliceable modules and depth control."""

from supernet.elastic.attention import ElasticAttention, head_gates
from supernet.elastic.depth import LayerSkipList, kept_layers
from supernet.elastic.ffn import ElasticFFN
from supernet.elastic.linear import ElasticLinear

__all__ = ["ElasticAttention", "ElasticFFN", "ElasticLinear", "LayerSkipList", "head_gates", "kept_layers"]

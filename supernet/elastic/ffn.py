"""Neuron-sliceable feed-forward block (intermediate up-projection + down-projection)."""

from __future__ import annotations

from dataclasses import dataclass

from supernet.elastic.linear import ElasticLinear

__all__ = ["ElasticFFN"]


@dataclass(eq=False)
class ElasticFFN:
    """The FFN's two projections, sliced together by intermediate neurons."""

    up: ElasticLinear
    """hidden -> intermediate; its first m output rows run."""
    down: ElasticLinear
    """intermediate -> hidden; its first m input columns run."""

    def __post_init__(self) -> None:
        if self.up.out_features != self.down.in_features:
            raise ValueError(
                f"FFN up.out_features ({self.up.out_features}) != down.in_features ({self.down.in_features})"
            )

    @property
    def num_neurons(self) -> int:
        return self.up.out_features

    @property
    def active_neurons(self) -> int:
        return self.up.active_out_features

    def set_active_neurons(self, neurons: int) -> None:
        """Run the first `neurons` intermediate neurons."""
        if not 1 <= neurons <= self.num_neurons:
            raise ValueError(f"ffn neurons must be in [1, {self.num_neurons}], got {neurons}")
        self.up.set_active(out_features=neurons)
        self.down.set_active(in_features=neurons)

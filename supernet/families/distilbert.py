"""DistilBERT: its own names for layers, attention, FFN and config fields."""

from __future__ import annotations

from supernet.families import FamilySpec

DISTILBERT = FamilySpec(
    name="distilbert",
    model_types=("distilbert",),
    layers="transformer.layer",
    query="attention.q_lin",
    key="attention.k_lin",
    value="attention.v_lin",
    attn_out="attention.out_lin",
    ffn_in="ffn.lin1",
    ffn_out="ffn.lin2",
    num_layers_attr="n_layers",
    num_heads_attr="n_heads",
    hidden_attr="dim",
    ffn_attr="hidden_dim",
)

"""BERT and the families that share its module layout in transformers 5.x."""

from __future__ import annotations

from supernet.families import FamilySpec

_BERT_PATHS = dict(
    layers="encoder.layer",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
)

BERT = FamilySpec(name="bert", model_types=("bert",), **_BERT_PATHS)
ROBERTA = FamilySpec(name="roberta", model_types=("roberta",), **_BERT_PATHS)
XLM_ROBERTA = FamilySpec(name="xlm-roberta", model_types=("xlm-roberta",), **_BERT_PATHS)
# ELECTRA may embed at a smaller size and project up to hidden_size.
ELECTRA = FamilySpec(
    name="electra", model_types=("electra",), embed_project="embeddings_project", **_BERT_PATHS
)
ERNIE = FamilySpec(name="ernie", model_types=("ernie",), **_BERT_PATHS)

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
# RoBERTa's layout under other names. CamemBERT is RoBERTa with a French vocabulary.
CAMEMBERT = FamilySpec(name="camembert", model_types=("camembert",), **_BERT_PATHS)
DATA2VEC_TEXT = FamilySpec(name="data2vec-text", model_types=("data2vec-text",), **_BERT_PATHS)
# Pre-LN: LayerNorm moves to the start of the attention and FFN blocks (and one
# after the encoder), but the linears the supernet slices keep BERT's paths,
# and a skipped layer still leaves its input unchanged.
ROBERTA_PRELAYERNORM = FamilySpec(
    name="roberta-prelayernorm", model_types=("roberta-prelayernorm",), **_BERT_PATHS
)

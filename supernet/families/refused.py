"""Encoders that look like BERT but that the supernet cannot slice, and why.

Data, keyed by `config.model_type` like the family tables: the reason ends
the one-line `UnsupportedModelError`. Their modules sit elsewhere than any
table's paths, so the layout check would refuse them too, but only with a
path it did not find; these say what actually stands in the way.
"""

from __future__ import annotations

__all__ = ["REFUSED"]

_DEBERTA = (
    "DeBERTa's disentangled attention adds content-to-position and position-to-content scores "
    "from separate position projections, which the supernet's head slicing of stock attention does not cover"
)

REFUSED: dict[str, str] = {
    "mpnet": (
        "MPNet adds a relative attention bias, shared by all layers, to every head's scores; "
        "the supernet slices stock BERT attention, which has none"
    ),
    "deberta": _DEBERTA,
    "deberta-v2": _DEBERTA,
    "esm": (
        "ESM's contact-prediction head reads the attention maps of every layer and head "
        "(layers x heads inputs), so no narrower or shallower subnet can keep it"
    ),
    "albert": (
        "ALBERT shares one set of layer weights across all its layers, so layers cannot be "
        "dropped or narrowed one at a time"
    ),
}
"""model_type -> why the supernet refuses it."""

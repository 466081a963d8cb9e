"""Shared fixtures: the real offline models, loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def bi_model():
    from explorer.engine.catalog import DEFAULT_BI_ENCODER
    from explorer.engine.loading import load_model

    return load_model(DEFAULT_BI_ENCODER, "bi")


@pytest.fixture(scope="session")
def cross_model():
    from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
    from explorer.engine.loading import load_model

    return load_model(DEFAULT_CROSS_ENCODER, "cross")


@pytest.fixture(scope="session")
def attention_model():
    """The cross-encoder with eager attention, which returns attention weights."""
    from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
    from explorer.engine.loading import load_model

    return load_model(DEFAULT_CROSS_ENCODER, "cross", eager_attention=True)


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """`python app.py` in a subprocess on 127.0.0.1 and a free port; its URL once it answers."""
    from explorer.tools.app_process import running_app

    log_path = tmp_path_factory.mktemp("app") / "app.log"
    with log_path.open("wb") as log:
        try:
            # A generous limit: model warm-up on a busy 2-core machine.
            with running_app(timeout_s=600, extra_env={"HF_HUB_OFFLINE": "1"}, log=log) as app:
                yield app.url
        except RuntimeError as error:
            pytest.fail(f"{error}:\n{log_path.read_text()[-4000:]}")

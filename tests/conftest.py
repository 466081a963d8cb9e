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


def _free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """`python app.py` in a subprocess on 127.0.0.1 and a free port; its URL once it answers."""
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    port = _free_loopback_port()
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = dict(
        os.environ,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 600  # model warm-up on a busy 2-core machine
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with code {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer on {url}:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

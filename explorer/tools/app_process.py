"""Start `app.py` in a child process on a free loopback port, wait until it serves, stop it.

The benchmark times the app's cold start with it and the tests serve the app with it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from explorer.paths import REPO_ROOT



def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it; another process may still take it
    before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningApp:
    """An app process started for a benchmark or load test: its URL, the process, and its start-up time in
    seconds."""
    url: str
    process: subprocess.Popen
    startup_s: float  # from starting the process until the page answered HTTP 200


@contextmanager
def running_app(timeout_s: float = 600.0, extra_env: dict | None = None, log=subprocess.DEVNULL) -> Iterator[RunningApp]:
    """The app serving on 127.0.0.1; raises RuntimeError if it exits or does not answer in time."""
    port = free_loopback_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", **(extra_env or {}))
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with code {process.returncode} before serving")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"app.py did not answer on {url} within {timeout_s:.0f} s")
            time.sleep(0.1)
        yield RunningApp(url, process, time.perf_counter() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

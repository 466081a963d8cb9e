"""Where files live: the cache folder the app writes to, and data files inside installed packages."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from explorer.errors import ExplorerError

# The checkout: app.py, assets/ and corpora/ sit beside the package.
REPO_ROOT = Path(__file__).resolve().parent.parent


def package_dir(module: str, needed_for: str, distribution: str) -> Path:
    """The folder of an installed package; a clear error naming what to install if it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ExplorerError(
            f"{needed_for} needs the Python package {distribution} (pip install -r requirements.txt)."
        )
    return Path(list(spec.submodule_search_locations)[0])


def cache_dir() -> Path:
    """Root of everything the app writes: `EXPLORER_CACHE`, else the user's cache folder."""
    configured = os.environ.get("EXPLORER_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cross-encoder-explorer"

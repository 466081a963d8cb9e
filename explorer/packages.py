"""Finding data files that installed packages carry (model weights, JavaScript libraries)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ExplorerError


def package_dir(module: str, needed_for: str, distribution: str) -> Path:
    """The folder of an installed package; a clear error naming what to install if it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ExplorerError(
            f"{needed_for} needs the Python package {distribution} (pip install -r requirements.txt)."
        )
    return Path(list(spec.submodule_search_locations)[0])

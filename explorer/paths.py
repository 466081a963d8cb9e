"""Where files live: the cache folder the app writes to, and data files inside installed packages."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path

from explorer.errors import ExplorerError

LOG = logging.getLogger(__name__)

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


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_checked(path: Path, data: bytes) -> None:
    """Write a cache file and its SHA-256 beside it; each lands whole (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, content in ((path, data), (checksum_path(path), hashlib.sha256(data).hexdigest().encode())):
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        temporary.write_bytes(content)
        os.replace(temporary, target)


def read_checked(path: Path) -> bytes | None:
    """A cache file's bytes if they match the SHA-256 written beside them; None (and a log line) if not."""
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
        expected = checksum_path(path).read_text().strip()
    except OSError:
        data, expected = b"", ""
    if hashlib.sha256(data).hexdigest() != expected:
        LOG.warning("cache file %s failed its checksum; it is rebuilt", path)
        return None
    return data

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


def data_dir() -> Path:
    """Where the app keeps what users save (the workbench's cases database): `EXPLORER_DATA`, else
    `$XDG_DATA_HOME/cross-encoder-explorer` or `~/.local/share/cross-encoder-explorer`; made on first use.

    Unlike `cache_dir()`, nothing here can be rebuilt: on a Space it lasts only as long as the disk
    (persistent storage, or export the cases). Raises ExplorerError when the folder cannot be made.
    """
    configured = os.environ.get("EXPLORER_DATA")
    if configured:
        folder = Path(configured).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        folder = Path(base) / "cross-encoder-explorer"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExplorerError(f"Cannot make the data folder {folder}: {error.strerror or error}. "
                            "Set EXPLORER_DATA to a folder the app may write.") from None
    return folder


def checksum_path(path: Path) -> Path:
    """Where the SHA-256 of `path` is kept: the same folder, the name plus ".sha256"."""
    return path.with_name(path.name + ".sha256")


# The on-disk embedding cache (`cache_dir()/embeddings`, one .npy per corpus, model and precision:
# about 29 MB for 20,000 passages at 384 dimensions) keeps at most this many bytes; past it the
# least recently used files go first. Operators set EXPLORER_MAX_EMBEDDING_DISK_MB.
MAX_EMBEDDING_DISK_BYTES = int(os.environ.get("EXPLORER_MAX_EMBEDDING_DISK_MB", "1024")) * 2**20


def mark_used(path: Path) -> None:
    """Record a read of a cache file for least-recently-used eviction (its mtime; atime is often off)."""
    try:
        os.utime(path)
    except OSError:
        pass


def trim_to_size(folder: Path, max_bytes: int, pattern: str = "*.npy") -> list[Path]:
    """Delete the least recently used `pattern` files of `folder` (with their .sha256) until the rest
    fit in `max_bytes`; returns what was deleted, oldest first. The newest file always stays, so a
    cap smaller than one file still keeps the file just written.

    Recency is the mtime: `write_checked` sets it, `mark_used` refreshes it on every read.
    """
    entries = []
    for path in folder.glob(pattern):
        try:
            size = path.stat().st_size + (checksum_path(path).stat().st_size if checksum_path(path).exists() else 0)
            entries.append((path.stat().st_mtime, size, path))
        except OSError:  # removed meanwhile by another process
            continue
    entries.sort()
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, path in entries[:-1]:
        if total <= max_bytes:
            break
        for target in (path, checksum_path(path)):
            target.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    if removed:
        LOG.info("embedding cache over %d MB: removed %d least recently used file(s)", max_bytes // 2**20, len(removed))
    return removed


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

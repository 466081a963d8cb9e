"""Files made for one request (downloads, runs zips, a labelled corpus for Compare): where they go
and when they are removed, so a server that runs for weeks does not fill its disk.

Each request's files get a fresh folder inside gradio's own cache folder (`GRADIO_TEMP_DIR`, else
the system's temporary folder + /gradio). gradio serves a file from there without copying it and
tracks it, so the Blocks' `delete_cache` policy (`delete_cache()` below) removes it after
`SERVED_FILES_MAX_AGE_S`. A file that was never served (a labelled corpus nobody opened in
Compare) and the emptied folders are removed by `sweep()`, which runs at every new request
folder and every `SERVED_FILES_SWEEP_S` in a background thread: after gradio has had its turn.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from gradio.utils import get_upload_folder

LOG = logging.getLogger(__name__)

# How long a per-request file stays: a visitor downloads results, or opens an evaluated labelled
# corpus in Compare, within half an hour. Files on disk are bounded by the requests of that window.
SERVED_FILES_MAX_AGE_S = int(os.environ.get("EXPLORER_SERVED_FILES_MAX_AGE_S", "1800"))
# How often gradio's delete_cache and our sweep run.
SERVED_FILES_SWEEP_S = int(os.environ.get("EXPLORER_SERVED_FILES_SWEEP_S", "300"))
PREFIX = "explorer-"  # our folders: explorer-results-*, explorer-runs-*, explorer-labels-*, explorer-cases-*
KINDS = ("results", "runs", "labels", "cases")  # cases: exported zips, a case's corpus and labels


def served_root() -> Path:
    """gradio's cache folder (where uploads land and served files are kept), created if missing."""
    root = Path(get_upload_folder())
    root.mkdir(parents=True, exist_ok=True)
    return root


def delete_cache() -> tuple[int, int]:
    """`gr.Blocks(delete_cache=...)`: every SERVED_FILES_SWEEP_S, files gradio served or received
    (ours and visitors' uploads) older than SERVED_FILES_MAX_AGE_S are deleted."""
    return (SERVED_FILES_SWEEP_S, SERVED_FILES_MAX_AGE_S)


def request_folder(kind: str) -> Path:
    """A new, empty folder for one request's files (`kind` in KINDS); sweeps old ones first."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of per-request file {kind!r}")
    sweep()
    # The creation time is in the name: the folder's mtime moves whenever gradio deletes a file in it.
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{int(time.time())}-", dir=served_root()))


def sweep(now: float | None = None) -> int:
    """Remove our request folders older than the age plus two sweep periods (gradio deletes the
    files it served first, and would otherwise find them gone); returns how many were removed."""
    limit = (time.time() if now is None else now) - SERVED_FILES_MAX_AGE_S - 2 * SERVED_FILES_SWEEP_S
    removed = 0
    for folder in served_root().glob(f"{PREFIX}*"):
        created = folder.name.split("-")[2] if folder.name.count("-") >= 3 else ""
        if folder.is_dir() and created.isdigit() and int(created) < limit:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def count_files(root: Path | None = None) -> dict[str, int]:
    """Per-request files on disk now: in our request folders, in the rest of gradio's cache (its
    copies of uploads), and old-style folders in the system temporary folder (none expected).
    `root`: another process's gradio cache folder (its GRADIO_TEMP_DIR); else this one's."""
    root = served_root() if root is None else Path(root)
    ours = sum(1 for folder in root.glob(f"{PREFIX}*") for path in folder.rglob("*") if path.is_file())
    # gradio keeps each upload (and each file it copies to serve) in a folder named by the file's
    # SHA-256; its own state (an edit history, a scratch folder) lives beside them and stays.
    gradio = sum(1 for folder in root.iterdir() if folder.is_dir() and len(folder.name) == 64
                 and all(c in "0123456789abcdef" for c in folder.name)
                 for path in folder.rglob("*") if path.is_file())
    stray = sum(1 for kind in KINDS for _ in Path(tempfile.gettempdir()).glob(f"{PREFIX}{kind}-*"))
    return {"request_files": ours, "request_folders": sum(1 for _ in root.glob(f"{PREFIX}*")),
            "gradio_cache_files": gradio, "temp_folders": stray}


_sweeper: threading.Thread | None = None


def start_sweeper() -> None:
    """Sweep every SERVED_FILES_SWEEP_S in a daemon thread (once per process), so folders go even
    when no new request comes."""
    global _sweeper
    if _sweeper is not None:
        return

    def loop() -> None:
        while True:
            time.sleep(SERVED_FILES_SWEEP_S)  # a schedule, not synchronisation
            try:
                sweep()
            except Exception:  # never let the sweeper die: log and try again next period
                LOG.exception("sweeping per-request files failed")

    _sweeper = threading.Thread(target=loop, name="served-files-sweeper", daemon=True)
    _sweeper.start()

"""A server that runs for weeks: per-request files are removed, the on-disk embedding cache keeps
to its size, and what one request may ask is budgeted by the work it causes."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from explorer.data.corpus import corpus_from_text
from explorer.paths import checksum_path, trim_to_size, write_checked


def _cache_file(folder, name: str, size: int, mtime: float):
    path = folder / name
    write_checked(path, b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_trim_removes_least_recently_used_first_until_under_the_cap(tmp_path):
    # Four 1,000-byte files (+ 64-byte checksums), used in the order b, d, a, c (oldest first).
    paths = {name: _cache_file(tmp_path, f"{name}.npy", 1000, mtime)
             for name, mtime in {"a": 300, "b": 100, "c": 400, "d": 200}.items()}
    removed = trim_to_size(tmp_path, max_bytes=2200)  # room for two files and their checksums (2 x 1064)
    assert removed == [paths["b"], paths["d"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.npy.sha256", "c.npy", "c.npy.sha256"]


def test_trim_keeps_the_newest_file_even_past_the_cap(tmp_path):
    old = _cache_file(tmp_path, "old.npy", 5000, 100)
    new = _cache_file(tmp_path, "new.npy", 5000, 200)
    assert trim_to_size(tmp_path, max_bytes=10) == [old]
    assert new.is_file() and checksum_path(new).is_file() and not checksum_path(old).exists()


def test_embedding_disk_cache_evicts_the_least_recently_used_corpus(bi_model, tmp_path, monkeypatch):
    """Three corpora through the real encoder with room for two files: reading corpus A again makes
    B the least recently used, so writing C removes B's file and keeps A's."""
    from explorer.rankers import bi_encoder
    from explorer.caches import CORPUS_INDEXES as EMBEDDING_CACHE
    from explorer.rankers.bi_encoder import BiEncoder, _disk_path

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    encoder = BiEncoder(bi_model, "fp32")
    corpora = {name: corpus_from_text(f"{name} one about cats.\n{name} two about dogs.\n{name} three about birds.")
               for name in "ABC"}
    one_file = 3 * encoder.dimension * 4 + 128 + 64  # float32 rows, the .npy header, the checksum
    monkeypatch.setattr(bi_encoder, "MAX_EMBEDDING_DISK_BYTES", 2 * one_file + 100)
    EMBEDDING_CACHE.clear()
    paths = {}
    for clock, name in enumerate("AB"):
        encoder.index_corpus(corpora[name].texts, corpora[name].fingerprint, persist=True)
        paths[name] = _disk_path(encoder, corpora[name].fingerprint)
        os.utime(paths[name], (1000 + clock, 1000 + clock))  # A written before B
    EMBEDDING_CACHE.clear()  # the next read of A comes from disk and marks it used
    again, from_disk = encoder.index_corpus(corpora["A"].texts, corpora["A"].fingerprint, persist=True)
    assert from_disk
    EMBEDDING_CACHE.clear()
    encoder.index_corpus(corpora["C"].texts, corpora["C"].fingerprint, persist=True)
    paths["C"] = _disk_path(encoder, corpora["C"].fingerprint)
    assert paths["A"].is_file() and paths["C"].is_file()
    assert not paths["B"].exists() and not checksum_path(paths["B"]).exists()
    np.testing.assert_allclose(again.embeddings, encoder.encode(corpora["A"].texts), atol=1e-6)
    EMBEDDING_CACHE.clear()


def test_request_folders_live_in_gradios_cache_and_old_ones_are_swept(tmp_path, monkeypatch):
    from explorer.ui import served_files

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    folders = [served_files.request_folder(kind) for kind in served_files.KINDS]
    for folder in folders:
        (folder / "file.txt").write_text("x")
        assert folder.parent == tmp_path and folder.name.startswith("explorer-")
    assert served_files.count_files()["request_files"] == 3
    keep = served_files.SERVED_FILES_MAX_AGE_S + 2 * served_files.SERVED_FILES_SWEEP_S
    # Just inside the age, nothing goes; a second past it, all three go (their creation time is in the name).
    assert served_files.sweep(now=time.time() + keep - 5) == 0
    assert served_files.sweep(now=time.time() + keep + 5) == 3
    left = served_files.count_files()
    assert (left["request_files"], left["request_folders"], left["gradio_cache_files"]) == (0, 0, 0)


def test_the_app_deletes_gradios_cached_files_on_the_served_files_schedule():
    from explorer.ui import served_files
    from explorer.ui.app import build_app

    assert build_app().delete_cache == (served_files.SERVED_FILES_SWEEP_S, served_files.SERVED_FILES_MAX_AGE_S)

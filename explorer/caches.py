"""Every in-memory cache the process keeps, each bounded and named here.

A public Space is one process serving every visitor, so nothing may grow without end: each cache
is a `cachetools.LRUCache` (least recently used out first) bounded by a count, or by bytes where
one entry's size varies (`getsizeof`). Gradio answers requests on worker threads, and cachetools'
caches are not thread-safe, so each one sits behind its own lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

Value = TypeVar("Value")

MB = 1024 * 1024


class BoundedCache(Generic[Value]):
    """A locked `cachetools.LRUCache`: `get` / `put` / `clear`, safe from gradio's worker threads.

    `maxsize` is a count of entries, or a number of bytes when `getsizeof(value)` is given. A value
    larger than the whole cache is not kept (cachetools refuses it), so the caller computes it again
    next time rather than the cache evicting everything else for it.
    """

    def __init__(self, name: str, maxsize: int, getsizeof: Callable[[Value], int] | None = None):
        self.name = name
        self._cache: LRUCache = LRUCache(maxsize=maxsize, getsizeof=getsizeof)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Value | None:
        """The value kept for `key` (now the most recently used), or None."""
        with self._lock:
            return self._cache.get(key)

    def put(self, key: Hashable, value: Value) -> None:
        """Keep `value` under `key`, dropping the least recently used entries past the bound."""
        with self._lock:
            try:
                self._cache[key] = value
            except ValueError:  # larger than the whole cache
                self._cache.pop(key, None)

    def clear(self) -> None:
        """Drop every entry (a benchmark timing a cold path, a test)."""
        with self._lock:
            self._cache.clear()

    @property
    def currsize(self) -> int:
        """What the entries take now, in the bound's unit."""
        with self._lock:
            return int(self._cache.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._cache


def _env_mb(name: str, default_mb: int) -> int:
    return int(os.environ.get(name, str(default_mb))) * MB


# Every cache, its bound and what one entry costs. Byte bounds are what a 2-core, 16 GB Space can
# spare beside the models; counts are for entries of a few hundred kB at most.

# Corpus embeddings and their FAISS index per (bi-encoder, precision, corpus), sized by embedding bytes
# (a CorpusIndex's `embeddings`; the flat FAISS index holds a copy of the same size).
CORPUS_INDEXES = BoundedCache(
    "corpus embeddings and FAISS indexes", _env_mb("EXPLORER_EMBEDDING_CACHE_MB", 512),
    getsizeof=lambda entry: entry.embeddings.nbytes,
)


def late_vectors_size(entry: tuple) -> int:
    """Bytes of one document's late-interaction entry, (token vectors, whether it was cut)."""
    return entry[0].nbytes


# Documents' late-interaction token vectors, kept between queries as a ColBERT index keeps them (about
# 1,500 passages of 150 tokens at 384 floats), sized by array bytes.
LATE_DOCUMENT_VECTORS = BoundedCache(
    "late-interaction document token vectors",
    int(os.environ.get("EXPLORER_MAX_LATE_CACHE_BYTES", str(384 * MB))), getsizeof=late_vectors_size,
)
# BM25 indexes per corpus fingerprint; a small corpus's sparse matrix is a few hundred kB.
BM25_INDEXES = BoundedCache("BM25 indexes", 8)
# Per-word attributions of the last documents explained: after an edit only A changes, so B is
# found here; an undo, or switching back to a method already shown, finds both.
KEPT_ATTRIBUTIONS = BoundedCache("per-word attributions", 16)
# The last pairs inspected: the bound model, the pair tokenized once and its attention. One 512-token
# pair's attention weights are ~150 MB, so two; a visitor's session keeps only the pair's key.
INSPECTED_PAIRS = BoundedCache("inspected pairs", 2)
# Finished evaluation reports on shipped sets, per (set, top-k, whole-corpus stage on or off).
EVAL_REPORTS = BoundedCache("evaluation reports", 16)
# Measured first-stage indexing cost per document, per (model, precision): the cost projection's
# figure when this request's corpus index came from a cache and was not timed.
INDEXING_COSTS = BoundedCache("indexing cost per document", 64)
# Re-rankers' scores of (query, document) pairs from the last comparisons, so the "why not this
# document" panel re-scores only what no comparison scored: (score, probability) per pair, keyed
# by the bound re-ranker, the query and the document's SHA-256. A few hundred bytes each.
PAIR_SCORES = BoundedCache("re-ranker pair scores", 20_000)

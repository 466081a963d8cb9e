"""Lexical retrieval: BM25 over exact (stemmed) words, with the `bm25s` package.

Settings, stated wherever BM25 appears: Lucene's BM25 variant with k1 = 1.5 and b = 0.75,
lower-cased words of two or more letters or digits (bm25s's default token pattern),
bm25s's English stopword list, and the Snowball English stemmer (PyStemmer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import Stemmer

from explorer import caches
from explorer.rankers.base import ProgressCallback, RankerInfo, Retriever

K1, B, METHOD, STOPWORDS = 1.5, 0.75, "lucene", "en"
SETTINGS = (
    f"BM25 ({METHOD} variant, k1 {K1}, b {B}); lower-cased words, English stopwords removed, "
    "Snowball English stemmer"
)
_STEMMER = Stemmer.Stemmer("english")


def _bm25s():
    # Imported on first use: bm25s brings numba, which costs the app ~1.4 s and ~55 MB at start.
    import bm25s

    return bm25s


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Each text's words as BM25 sees them (lower-cased, stopwords removed, stemmed)."""
    return _bm25s().tokenize(
        list(texts), stopwords=STOPWORDS, stemmer=_STEMMER, return_ids=False, show_progress=False
    )


@dataclass
class BM25Index:
    """A corpus's BM25 index (bm25s's sparse score matrix)."""

    retriever: object  # bm25s.BM25
    size: int


class BM25(Retriever):
    """BM25 over the corpus; the score is bm25s's BM25 score (0 when no query word occurs)."""

    def __init__(self):
        self.info = RankerInfo(
            model_id="bm25", name="BM25 (bm25s)", kind="lexical", score_name="BM25 score",
            precision="n/a", engine=SETTINGS,
        )

    def index_corpus(self, texts, fingerprint, persist=False, progress: ProgressCallback | None = None):
        # Every BM25 has the same settings, so an index is shared by fingerprint (caches.BM25_INDEXES).
        key = (SETTINGS, fingerprint)
        if (cached := caches.BM25_INDEXES.get(key)) is not None:
            return cached, True
        bm25s = _bm25s()
        retriever = bm25s.BM25(k1=K1, b=B, method=METHOD)
        retriever.index(bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_STEMMER, show_progress=False),
                        show_progress=False)
        if progress:
            progress(len(texts), len(texts))
        index = BM25Index(retriever, len(texts))
        caches.BM25_INDEXES.put(key, index)
        return index, False

    def encode_queries(self, queries: Sequence[str]) -> list[list[str]]:
        return tokenize(queries)

    def search(self, index: BM25Index, encoded_queries, depth: int):
        depth = min(depth, index.size)
        scores = np.zeros((len(encoded_queries), depth), dtype=np.float32)
        positions = np.zeros((len(encoded_queries), depth), dtype=np.int64)
        for row, words in enumerate(encoded_queries):
            all_scores = index.retriever.get_scores(words) if words else np.zeros(index.size, dtype=np.float32)
            # Stable: documents with equal scores (often all zero) keep corpus order.
            order = np.argsort(-all_scores, kind="stable")[:depth]
            positions[row] = order
            scores[row] = all_scores[order]
        return scores, positions

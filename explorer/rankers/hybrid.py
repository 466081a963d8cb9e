"""Hybrid first stage: BM25 and a bi-encoder fused by reciprocal rank fusion (RRF).

score(d) = sum over the two rankings of 1 / (k + rank(d)), with k = 60 (Cormack, Clarke and
Büttcher's constant) and ranks 1-based over the WHOLE corpus: both rankers order every
document (BM25 documents with equal scores, often zero, keep corpus order), so every
document gets a contribution from each. Fused ties keep corpus order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explorer.rankers.base import ProgressCallback, RankerInfo, Retriever
from explorer.rankers.bi_encoder import BiEncoder, CorpusIndex
from explorer.rankers.bm25 import BM25, BM25Index

RRF_K = 60


def rrf_scores(orders: Sequence[Sequence[int]], size: int, k: int = RRF_K) -> np.ndarray:
    """Fused score per corpus position: sum over `orders` (positions, best first) of 1 / (k + rank)."""
    fused = np.zeros(size, dtype=np.float64)
    for order in orders:
        fused[np.asarray(order, dtype=np.int64)] += 1.0 / (k + np.arange(1, len(order) + 1, dtype=np.float64))
    return fused


@dataclass
class HybridIndex:
    lexical: BM25Index
    dense: CorpusIndex
    size: int

    @property
    def cache_note(self) -> str | None:  # the pipeline tells the user once, then clears it
        return self.dense.cache_note

    @cache_note.setter
    def cache_note(self, value: str | None) -> None:
        self.dense.cache_note = value


class Hybrid(Retriever):
    """BM25 + a bi-encoder, fused by RRF over both full rankings; the score is the RRF score."""

    def __init__(self, lexical: BM25, dense: BiEncoder, k: int = RRF_K):
        self.lexical, self.dense, self.k = lexical, dense, k
        self.info = RankerInfo(
            model_id=f"bm25+{dense.info.model_id}",
            name=f"Hybrid: BM25 + {dense.info.name}, reciprocal rank fusion (k={k})",
            kind="hybrid", score_name="RRF score", precision=dense.info.precision, device=dense.info.device,
            engine=f"RRF (k={k}) over BM25 [{lexical.info.engine}] and the bi-encoder [{dense.info.engine}]",
        )

    def index_corpus(self, texts, fingerprint, persist=False, progress: ProgressCallback | None = None):
        lexical, _ = self.lexical.index_corpus(texts, fingerprint)
        dense, cached = self.dense.index_corpus(texts, fingerprint, persist=persist, progress=progress)
        # "cached" is the bi-encoder's: encoding the corpus is the cost worth reporting.
        return HybridIndex(lexical, dense, len(texts)), cached

    def encode_queries(self, queries: Sequence[str]):
        return self.lexical.encode_queries(queries), self.dense.encode_queries(queries)

    def full_orders(self, index: HybridIndex, encoded_queries, row: int) -> tuple[list[int], list[int]]:
        """BM25's and the bi-encoder's order of the whole corpus for one query (positions, best first)."""
        words, vectors = encoded_queries
        _, lexical = self.lexical.search(index.lexical, [words[row]], index.size)
        _, dense = self.dense.search(index.dense, vectors[row: row + 1], index.size)
        return [int(p) for p in lexical[0]], [int(p) for p in dense[0]]

    def search(self, index: HybridIndex, encoded_queries, depth: int):
        depth = min(depth, index.size)
        count = len(encoded_queries[0])
        scores = np.zeros((count, depth), dtype=np.float32)
        positions = np.zeros((count, depth), dtype=np.int64)
        for row in range(count):
            fused = rrf_scores(self.full_orders(index, encoded_queries, row), index.size, self.k)
            order = np.argsort(-fused, kind="stable")[:depth]
            positions[row], scores[row] = order, fused[order]
        return scores, positions

"""Hybrid first stage: BM25 and a bi-encoder fused by reciprocal rank fusion (RRF).

score(d) = sum over the two rankings that hold d of 1 / (k + rank(d)), with k = 60 (Cormack,
Clarke and Büttcher's constant) and ranks 1-based over the whole corpus. Two rules keep the
fusion from inventing an order:

* BM25 holds only the documents it scored (those with a query token, BM25 score > 0); the rest
  get nothing from BM25, as in Elasticsearch's and OpenSearch's RRF, which fuse only what each
  retriever returned. When BM25 matches no query term it sits out, the fusion is the
  bi-encoder's order, and the search says so (`search_notes`).
* Documents with exactly equal scores in one ranking share its best rank ("min" ranking, as
  `scipy.stats.rankdata(method="min")`), so they get equal contributions; a corpus position
  never decides a contribution.

Fused ties are shown in corpus order and marked as ties by the results (`pipeline/results.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from explorer.rankers.base import ProgressCallback, RankerInfo, Retriever
from explorer.rankers.bi_encoder import BiEncoder, CorpusIndex
from explorer.rankers.bm25 import BM25, BM25Index, no_match_note

RRF_K = 60


def shared_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, highest first; equal scores share the best of their ranks (1, 1, 3)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.searchsorted(np.sort(-scores), -scores, side="left") + 1


def rrf_scores(rankings: Sequence[tuple[np.ndarray, np.ndarray]], size: int, k: int = RRF_K) -> np.ndarray:
    """Fused score per corpus position: over `rankings` of (positions, scores), each ranking the
    documents it holds, sum 1 / (k + shared rank)."""
    fused = np.zeros(size, dtype=np.float64)
    for positions, scores in rankings:
        positions = np.asarray(positions, dtype=np.int64)
        fused[positions] += 1.0 / (k + shared_ranks(scores))
    return fused


@dataclass
class HybridIndex:
    """The two indexes a hybrid search fuses: BM25's and the bi-encoder's, over the same `size` documents."""
    lexical: BM25Index
    dense: CorpusIndex
    size: int

    @property
    def cache_note(self) -> str | None:  # the pipeline tells the user once, then clears it
        """The bi-encoder index's note about its cache (read from the corpus cache, or why not), or None; the
        pipeline tells the user once, then clears it."""
        return self.dense.cache_note

    @cache_note.setter
    def cache_note(self, value: str | None) -> None:
        self.dense.cache_note = value


@dataclass
class RRFSource:
    """One ranking in the fusion, for one document: its rank there (None: that ranking does not hold it,
    as BM25 holds no document without a query term) and its share 1 / (k + rank)."""

    name: str
    score_name: str
    rank: int | None  # 1-based, shared by equal scores
    score: float | None
    share: float
    holds: int  # documents this ranking holds


@dataclass
class HybridExplanation:
    """Why a document has its RRF score: the sum of its sources' shares."""

    k: int
    sources: list[RRFSource]
    score: float  # sum of the shares (float64)
    rank: int  # the fused rank (shared by equal scores)
    index_score: float  # the score `search` reports (float32)

    def to_dict(self) -> dict:
        """Every field, JSON-ready."""
        return asdict(self)


class Hybrid(Retriever):
    """BM25 + a bi-encoder, fused by RRF (rules above); the score is the RRF score."""

    def __init__(self, lexical: BM25, dense: BiEncoder, k: int = RRF_K):
        self.lexical, self.dense, self.k = lexical, dense, k
        self.info = RankerInfo(
            model_id=f"bm25+{dense.info.model_id}",
            name=f"Hybrid: BM25 + {dense.info.name}, reciprocal rank fusion (k={k})",
            kind="hybrid", score_name="RRF score", precision=dense.info.precision, device=dense.info.device,
            engine=f"RRF (k={k}) over BM25 [{lexical.info.engine}] and the bi-encoder [{dense.info.engine}]",
            precision_note=dense.info.precision_note,
        )

    def index_corpus(self, texts, fingerprint, persist=False, progress: ProgressCallback | None = None):
        """Both indexes of `texts`: returns (HybridIndex, cached) where `cached` is the bi-encoder's (encoding
        the corpus is the cost worth reporting; BM25 is rebuilt or shared freely)."""
        lexical, _ = self.lexical.index_corpus(texts, fingerprint)
        dense, cached = self.dense.index_corpus(texts, fingerprint, persist=persist, progress=progress)
        # "cached" is the bi-encoder's: encoding the corpus is the cost worth reporting.
        return HybridIndex(lexical, dense, len(texts)), cached

    def encode_queries(self, queries: Sequence[str]):
        """Each query encoded for both halves: (BM25 token lists, bi-encoder embeddings of shape
        (len(queries), dimension))."""
        return self.lexical.encode_queries(queries), self.dense.encode_queries(queries)

    def fused_parts(self, index: HybridIndex, encoded_queries, row: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """What is fused for one query: (positions, scores) of the documents BM25 scored, then of the
        whole corpus by the bi-encoder."""
        words, vectors = encoded_queries
        lexical = self.lexical.all_scores(index.lexical, words[row])
        matched = np.flatnonzero(lexical > 0)
        dense_scores, dense_positions = self.dense.search(index.dense, vectors[row: row + 1], index.size)
        return [(matched, lexical[matched]), (dense_positions[0], dense_scores[0])]

    def search(self, index: HybridIndex, encoded_queries, depth: int):
        """(scores, positions), each (queries, depth): reciprocal rank fusion, sum over BM25's and the
        bi-encoder's full rankings of 1 / (60 + rank), best first."""
        depth = min(depth, index.size)
        count = len(encoded_queries[0])
        scores = np.zeros((count, depth), dtype=np.float32)
        positions = np.zeros((count, depth), dtype=np.int64)
        for row in range(count):
            fused = rrf_scores(self.fused_parts(index, encoded_queries, row), index.size, self.k)
            order = np.argsort(-fused, kind="stable")[:depth]
            positions[row], scores[row] = order, fused[order]
        return scores, positions

    def explain(self, index: HybridIndex, query: str, position: int, encoded=None) -> HybridExplanation:
        """Document `position`'s RRF score for `query`: each source's rank, score and 1/(k + rank) share,
        by the same fusion rules as `search` (BM25 holds only what it scored; equal scores share a rank).
        `encoded`: the query as `encode_queries([query])` gives it, when already at hand."""
        encoded = self.encode_queries([query]) if encoded is None else encoded
        parts = self.fused_parts(index, encoded, 0)
        sources = []
        for name, score_name, (positions, scores) in zip(
                ("BM25", self.dense.info.name), ("BM25 score", self.dense.score_name), parts):
            where = np.flatnonzero(np.asarray(positions) == position)
            if not where.size:
                sources.append(RRFSource(name, score_name, None, None, 0.0, len(positions)))
                continue
            rank = int(shared_ranks(scores)[where[0]])
            sources.append(RRFSource(name, score_name, rank, float(scores[where[0]]), 1.0 / (self.k + rank),
                                     len(positions)))
        fused = rrf_scores(parts, index.size, self.k)
        return HybridExplanation(self.k, sources, float(sum(s.share for s in sources)), shared_ranks(fused)[position].item(),
                                 float(np.float32(fused[position])))

    def search_notes(self, index: HybridIndex, encoded_queries) -> dict[int, str]:
        """A note for each query (by row) for which BM25 matched no token: the fusion then had only the bi-
        encoder's ranking."""
        words = encoded_queries[0]
        return {row: no_match_note(words[row], "BM25 sat out the fusion, so the hybrid's order is the bi-encoder's")
                for row in self.lexical.search_notes(index.lexical, words)}

"""The pipeline: bi-encoder retrieval, then cross-encoder re-ranking, with timings.

`compare()` is what the UI, the CLI, the API and the tests all call. It returns plain
dataclasses that turn into JSON with `to_dict()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from .corpus import Corpus
from .errors import ExplorerError
from .models import (
    DEFAULT_BI_ENCODER,
    DEFAULT_CROSS_ENCODER,
    Precision,
    load_model,
    resolve_precision,
)
from .rerank import rerank
from .retrieval import corpus_index, encode_texts, search

# (fraction done 0..1, what is happening) for progress bars; UI-agnostic.
StageProgress = Callable[[float, str], None]
MAX_QUERY_CHARS = 2000


@dataclass
class BiHit:
    id: str
    text: str
    score: float  # cosine similarity
    rank: int  # 1-based


@dataclass
class CrossHit:
    id: str
    text: str
    score: float  # cross-encoder logit
    probability: float  # sigmoid(logit)
    rank: int  # 1-based, by the cross-encoder
    bi_rank: int  # 1-based rank of the same document by the bi-encoder (over the whole corpus)
    bi_score: float  # its cosine
    in_bi_top_k: bool  # was it among the bi-encoder's top-k candidates?

    @property
    def move(self) -> int:
        """Places gained by re-ranking (positive = moved up)."""
        return self.bi_rank - self.rank

    @property
    def move_kind(self) -> str:
        """"new" (outside the bi-encoder's top-k), "up", "down" or "same": what the views colour."""
        if not self.in_bi_top_k:
            return "new"
        return "up" if self.move > 0 else "down" if self.move < 0 else "same"


@dataclass
class Comparison:
    query: str
    top_k: int
    corpus_name: str
    corpus_size: int
    models: dict[str, str]
    precision: dict[str, str]
    bi_encoder: list[BiHit]
    cross_encoder: list[CrossHit]
    cross_encoder_full: list[CrossHit] | None
    timings_ms: dict[str, float]
    corpus_embeddings_cached: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("cross_encoder", "cross_encoder_full"):
            if data[key] is not None:
                for row, hit in zip(data[key], getattr(self, key)):
                    row["move"] = hit.move
        return data


class Stopwatch:
    """Collects per-stage wall times in milliseconds (time.perf_counter)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - start) * 1000.0, 3)


def check_query(query: str) -> str:
    query = (query or "").strip()
    if not query:
        raise ExplorerError("The query is empty: type a question or a few words to search for.")
    if len(query) > MAX_QUERY_CHARS:
        raise ExplorerError(f"The query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}.")
    return query


def check_top_k(top_k, corpus_size: int) -> tuple[int, list[str]]:
    """A whole number in 1..corpus_size; a larger one is clamped, and the returned note says so."""
    try:
        top_k = int(top_k)
    except (TypeError, ValueError):
        raise ExplorerError(f"top-k must be a whole number, not {top_k!r}.") from None
    if top_k < 1:
        raise ExplorerError(f"top-k must be at least 1 (got {top_k}).")
    if top_k > corpus_size:
        return corpus_size, [f"top-k {top_k} is larger than the corpus; clamped to {corpus_size} documents."]
    return top_k, []


def compare(
    query: str,
    corpus: Corpus,
    top_k: int = 10,
    bi_encoder: str = DEFAULT_BI_ENCODER,
    cross_encoder: str = DEFAULT_CROSS_ENCODER,
    score_all: bool = False,
    precision: Precision = "auto",
    persist_embeddings: bool = False,
    allow_local_models: bool = False,
    progress: StageProgress | None = None,
) -> Comparison:
    """Rank `corpus` for `query` with the bi-encoder, re-rank its top-k with the cross-encoder.

    With `score_all`, the cross-encoder also scores every document, to show what the
    first stage missed. Raises ExplorerError for anything the user can fix.
    """
    query = check_query(query)
    if len(corpus) == 0:
        raise ExplorerError("The corpus is empty: give at least one document.")
    top_k, notes = check_top_k(top_k, len(corpus))
    dtype = resolve_precision(precision)
    report = progress or (lambda fraction, message: None)
    clock = Stopwatch()

    with clock.stage("model_loading"):
        report(0.0, "Loading models")
        bi_model = load_model(bi_encoder, "bi", allow_local_path=allow_local_models)
        cross_model = load_model(cross_encoder, "cross", allow_local_path=allow_local_models)

    with clock.stage("corpus_encoding"):
        entry, cached = corpus_index(
            bi_model,
            corpus.texts,
            corpus.fingerprint,
            dtype,
            persist=persist_embeddings,
            progress=lambda done, total: report(0.05 + 0.45 * done / total, f"Encoding corpus {done}/{total}"),
        )
    with clock.stage("query_encoding"):
        query_vector = encode_texts(bi_model, [query], precision=dtype)
    with clock.stage("search"):
        # The exact index makes the full bi-encoder order cheap; we need it for rank moves.
        depth = len(corpus) if score_all else top_k
        scores, positions = search(entry.index, query_vector, depth)
    bi_order = [int(p) for p in positions[0]]
    bi_scores = {p: float(s) for p, s in zip(bi_order, scores[0])}
    bi_rank = {p: rank for rank, p in enumerate(bi_order, start=1)}
    documents = corpus.documents
    bi_hits = [
        BiHit(documents[p].id, documents[p].text, bi_scores[p], bi_rank[p]) for p in bi_order[:top_k]
    ]

    candidates = bi_order[:top_k]
    with clock.stage("rerank"):
        scored = rerank(
            cross_model,
            query,
            [documents[p].text for p in candidates],
            precision=dtype,
            progress=lambda done, total: report(0.5 + 0.3 * done / total, f"Re-ranking {done}/{total} pairs"),
        )
    cross_hits = _cross_hits(candidates, scored.logits, scored.probabilities, documents, bi_rank, bi_scores, top_k)
    truncated = scored.truncated

    full_hits = None
    if score_all:
        everything = list(range(len(documents)))
        with clock.stage("rerank_full_corpus"):
            scored_all = rerank(
                cross_model,
                query,
                corpus.texts,
                precision=dtype,
                progress=lambda done, total: report(0.8 + 0.2 * done / total, f"Scoring corpus {done}/{total}"),
            )
        full_hits = _cross_hits(
            everything, scored_all.logits, scored_all.probabilities, documents, bi_rank, bi_scores, top_k
        )
        truncated = max(truncated, scored_all.truncated)
    if truncated:
        notes.append(
            f"{truncated} document(s) were longer than the cross-encoder's limit of "
            f"{cross_model.max_length} tokens and were truncated."
        )
    clock.ms["total"] = round(sum(clock.ms.values()), 3)
    report(1.0, "Done")
    return Comparison(
        query=query,
        top_k=top_k,
        corpus_name=corpus.name,
        corpus_size=len(corpus),
        models={"bi_encoder": bi_model.name, "cross_encoder": cross_model.name},
        precision={"bi_encoder": f"{dtype} on cpu", "cross_encoder": f"{dtype} on cpu"},
        bi_encoder=bi_hits,
        cross_encoder=cross_hits,
        cross_encoder_full=full_hits,
        timings_ms=clock.ms,
        corpus_embeddings_cached=cached,
        notes=notes,
    )


def _cross_hits(positions, logits, probabilities, documents, bi_rank, bi_scores, top_k) -> list[CrossHit]:
    # Stable sort: ties keep the bi-encoder's order, so results are reproducible.
    order = np.argsort(-np.asarray(logits), kind="stable")
    hits = []
    for rank, i in enumerate(order, start=1):
        p = positions[i]
        hits.append(
            CrossHit(
                id=documents[p].id,
                text=documents[p].text,
                score=float(logits[i]),
                probability=float(probabilities[i]),
                rank=rank,
                bi_rank=bi_rank[p],
                bi_score=bi_scores[p],
                in_bi_top_k=bi_rank[p] <= top_k,
            )
        )
    return hits

"""The one pipeline: a first stage ranks the corpus, re-rankers re-order its top-k, each timed.

`compare` (one query, shown side by side) and the evaluation runner (`experiment.run_experiment`,
every labelled query, scored) both run `run_pipeline`; there is no second copy of this flow.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from explorer import caches
from explorer.budgets import MAX_QUERY_CHARS, check_encodable, check_whole_number, is_blank
from explorer.errors import ExplorerError
from explorer.rankers.base import PairScorer, PairScores, RankerInfo, Retriever

# (fraction done 0..1, what is happening) for progress bars; UI-agnostic.
StageProgress = Callable[[float, str], None]

# Timing keys per first-stage kind: (index the corpus, prepare the query, search).
FIRST_STAGE_TIMINGS = {
    "bi": ("corpus_encoding", "query_encoding", "search"),
    "lexical": ("corpus_indexing", "query_tokenizing", "search"),
    "hybrid": ("corpus_indexing", "query_encoding", "search"),  # BM25 index + corpus encoding; both queries; both searches + fusion
}
RERANK_TIMING = {"cross": "rerank", "late": "rerank_late"}


def rerank_timing_keys(rerankers: Sequence[PairScorer]) -> list[str]:
    """Each re-ranker's timing key: "rerank" / "rerank_late" for the first of its kind, then
    "<that>_<precision>" (e.g. "rerank_int8", "rerank_int8_packed") for the same kind again at another precision."""
    keys: list[str] = []
    for reranker in rerankers:
        key = RERANK_TIMING[reranker.info.kind]
        if getattr(reranker, "aggregate", None):  # a cross-encoder by passages: "rerank_maxp"
            key = f"{key}_{reranker.aggregate}"
        if key in keys:
            key = f"{key}_{reranker.info.precision_key}"
        while key in keys:
            key += "_again"
        keys.append(key)
    return keys
FULL_CORPUS_TIMING = "rerank_full_corpus"
RERANKER_NAMES = {"cross": "cross-encoder", "late": "late-interaction model"}


class Stopwatch:
    """Collects per-stage wall times in milliseconds (time.perf_counter)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        """Time the `with` block (time.perf_counter) into `ms[name]`, in milliseconds, even if it raises."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - start) * 1000.0, 3)

    def total(self) -> float:
        """The sum of every stage's ms but "total"."""
        return round(sum(ms for name, ms in self.ms.items() if name != "total"), 3)


def check_query(query: str) -> str:
    """The query stripped, or ExplorerError when it is blank, unreadable or over MAX_QUERY_CHARS."""
    query = check_encodable(query or "", "query").strip()
    if is_blank(query):
        raise ExplorerError("The query is empty: type a question or a few words to search for.")
    if len(query) > MAX_QUERY_CHARS:
        raise ExplorerError(f"The query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}.")
    return query


def check_top_k(top_k, corpus_size: int) -> tuple[int, list[str]]:
    """A whole number in 1..corpus_size; a larger one is clamped, and the returned note says so."""
    top_k = check_whole_number(top_k, "top-k")
    if top_k < 1:
        raise ExplorerError(f"top-k must be at least 1 (got {top_k}).")
    if top_k > corpus_size:
        return corpus_size, [f"top-k {top_k} is larger than the corpus; clamped to {corpus_size} documents."]
    return top_k, []


@dataclass
class Pipeline:
    """A first stage and the re-rankers that re-order its top-k, all bound once."""

    first_stage: Retriever
    rerankers: list[PairScorer]

    @property
    def name(self) -> str:
        """e.g. "bi+cross", "bm25+cross"."""
        first = "bm25" if self.first_stage.info.kind == "lexical" else self.first_stage.info.kind
        return "+".join([first, *(r.info.kind for r in self.rerankers)])


@dataclass
class StageOutput:
    """One stage's ranking for every query: positions into the corpus and scores, best first."""

    info: RankerInfo
    positions: list[list[int]]
    scores: list[list[float]]
    probabilities: list[list[float]] | None = None
    notes: dict[int, str] = field(default_factory=dict)  # by query row: e.g. "BM25 matched no query term"


@dataclass
class PipelineRun:
    """Every stage's output for a batch of queries (`run_pipeline`), whether the index was cached, and notes."""

    first_stage: StageOutput  # `depth` deep for every query
    reranked: list[StageOutput]  # per re-ranker: the first stage's top-k, re-ordered
    full_corpus: StageOutput | None  # the last re-ranker over every document, when asked
    index_cached: bool  # the first stage's corpus index came from a cache
    notes: list[str]  # what the user should be told (a damaged cache file rebuilt, ...)
    rerank_timings: list[str] | None = None  # each re-ranker's key in the Stopwatch (`rerank_timing_keys`)


def _reorder(candidates: Sequence[int], scores: np.ndarray, probabilities: np.ndarray | None):
    # Stable: ties keep the first stage's order, so results are reproducible.
    order = np.argsort(-scores, kind="stable")
    return (
        [candidates[i] for i in order],
        [float(scores[i]) for i in order],
        None if probabilities is None else [float(probabilities[i]) for i in order],
    )


def score_whole_corpus(scorer: PairScorer, texts: Sequence[str], queries: Sequence[str], clock: Stopwatch,
                       progress: StageProgress | None = None):
    """Every (query, document) pair scored by `scorer` in one batch, timed as FULL_CORPUS_TIMING.

    Returns the raw PairScores (query-major: pair q * len(texts) + d) and a StageOutput with every
    document ranked per query, best first (stable: ties keep corpus order).
    """
    report = progress or (lambda fraction, message: None)
    n = len(texts)
    with clock.stage(FULL_CORPUS_TIMING):
        scored = scorer.score(
            [q for q in queries for _ in range(n)], [text for _ in queries for text in texts],
            progress=lambda done, total: report(0.7 + 0.3 * done / total, f"Scoring the whole corpus {done}/{total}"),
        )
    rows = [_reorder(range(n), scored.scores[q * n:(q + 1) * n],
                     None if scored.probabilities is None else scored.probabilities[q * n:(q + 1) * n])
            for q in range(len(queries))]
    return scored, StageOutput(scorer.info, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def truncation_note(truncated: int, scorer: PairScorer, queries: int) -> str:
    """What to tell the user when `truncated` texts were cut to the scorer's token limit."""
    what = "document(s)" if queries == 1 else "(query, document) pair(s)"
    return (f"{truncated} {what} were longer than the {RERANKER_NAMES[scorer.info.kind]}'s limit of "
            f"{scorer.max_length} tokens and were truncated.")


def run_pipeline(
    pipeline: Pipeline,
    texts: Sequence[str],
    fingerprint: str,
    queries: Sequence[str],
    top_k: int,
    depth: int,
    clock: Stopwatch,
    score_all: bool = False,
    persist: bool = False,
    progress: StageProgress | None = None,
) -> PipelineRun:
    """Rank `texts` for every query: first stage to `depth`, re-rankers over its top-`top_k`.

    With `score_all` the last re-ranker also scores every document, after the re-ranking, so
    each stage's time is its own (evaluation shares pairs across pipelines with `CachedScorer`).
    """
    report = progress or (lambda fraction, message: None)
    first = pipeline.first_stage
    index_key, query_key, search_key = FIRST_STAGE_TIMINGS[first.info.kind]
    with clock.stage(index_key):
        index, cached = first.index_corpus(
            texts, fingerprint, persist=persist,
            progress=lambda done, total: report(0.05 + 0.35 * done / total, f"Indexing corpus {done}/{total}"),
        )
    with clock.stage(query_key):
        encoded = first.encode_queries(list(queries))
    with clock.stage(search_key):
        scores, positions = first.search(index, encoded, depth)
    first_output = StageOutput(first.info, [[int(p) for p in row] for row in positions],
                               [[float(s) for s in row] for row in scores], notes=first.search_notes(index, encoded))

    last = pipeline.rerankers[-1] if pipeline.rerankers else None
    candidates = [row[:top_k] for row in first_output.positions]
    full_output, truncated = None, 0

    reranked = []
    timing_keys = rerank_timing_keys(pipeline.rerankers)
    for reranker, timing_key in zip(pipeline.rerankers, timing_keys):
        with clock.stage(timing_key):
            scored = reranker.score(
                [q for q, row in zip(queries, candidates) for _ in row], [texts[p] for row in candidates for p in row],
                progress=lambda done, total: report(0.4 + 0.3 * done / total, f"Re-ranking {done}/{total} pairs"),
            )
        truncated = max(truncated, scored.truncated)
        if len(queries) == 1:  # a comparison: its scores are what the why panel shows for these pairs
            remember_pair_scores(reranker, queries[0], [texts[p] for p in candidates[0]], scored)
        bounds = np.cumsum([0] + [len(row) for row in candidates])
        pieces = [(scored.scores[a:b], None if scored.probabilities is None else scored.probabilities[a:b])
                  for a, b in zip(bounds[:-1], bounds[1:])]
        ordered = [_reorder(row, s, p) for row, (s, p) in zip(candidates, pieces)]
        reranked.append(StageOutput(reranker.info, [o[0] for o in ordered], [o[1] for o in ordered],
                                    [o[2] for o in ordered]))

    if score_all and last is not None:
        full_scores, full_output = score_whole_corpus(last, texts, queries, clock, report)
        truncated = max(truncated, full_scores.truncated)
    report(1.0, "Done")
    notes = []
    if len(queries) == 1:
        notes.extend(first_output.notes.values())
    elif first_output.notes:
        shown = "; ".join(repr(queries[row][:60]) for row in sorted(first_output.notes)[:5])
        notes.append(f"BM25 matched no query term for {len(first_output.notes)} of {len(queries)} queries "
                     f"({shown}{' ...' if len(first_output.notes) > 5 else ''}): there it scores every document 0.")
    if getattr(index, "cache_note", None):
        notes.append(index.cache_note)
        index.cache_note = None  # the user is told once
    if truncated:
        notes.append(truncation_note(truncated, last, len(queries)))
    return PipelineRun(first_output, reranked, full_output, cached, notes, timing_keys)


def _pair_key(scorer: PairScorer, query: str, text: str) -> tuple:
    info = scorer.info
    return (type(scorer).__name__, info.model_id, info.name, info.precision, info.engine, info.score_name, query,
            hashlib.sha256(text.encode()).hexdigest())


def remember_pair_scores(scorer: PairScorer, query: str, texts: Sequence[str], scored: PairScores) -> None:
    """Keep a comparison's re-ranker scores of (query, text) pairs in caches.PAIR_SCORES."""
    for i, text in enumerate(texts):
        probability = None if scored.probabilities is None else float(scored.probabilities[i])
        caches.PAIR_SCORES.put(_pair_key(scorer, query, text), (float(scored.scores[i]), probability))


def score_pairs_once(scorer: PairScorer, query: str, texts: Sequence[str]) -> tuple[np.ndarray, list[float | None]]:
    """(scores (n,) float64, probabilities) of `query` with each text: the ones a comparison already scored
    from caches.PAIR_SCORES (so they are the scores its columns show), the rest scored now in one batch."""
    kept = [caches.PAIR_SCORES.get(_pair_key(scorer, query, text)) for text in texts]
    missing = [i for i, entry in enumerate(kept) if entry is None]
    if missing:
        scored = scorer.score_query(query, [texts[i] for i in missing])
        remember_pair_scores(scorer, query, [texts[i] for i in missing], scored)
        for k, i in enumerate(missing):
            kept[i] = (float(scored.scores[k]), None if scored.probabilities is None else float(scored.probabilities[k]))
    return np.array([entry[0] for entry in kept], dtype=np.float64), [entry[1] for entry in kept]

"""What one comparison's stages cost per item, and what that projects to for N documents.

Every figure is measured (ms by time.perf_counter in `stages.Stopwatch`), per document indexed,
per query through the first stage, and per (query, document) pair through each re-ranker; the
projection multiplies them out (`projection_rows`). Views draw them (`views/comparison_plots.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer import caches
from explorer.pipeline.results import Comparison
from explorer.pipeline.stages import FIRST_STAGE_TIMINGS, FULL_CORPUS_TIMING


@dataclass
class UnitCosts:
    """Measured cost of one item at each stage of the pipeline that ran, in milliseconds."""

    first_stage: str  # "bi-encoder", "BM25", "hybrid (BM25 + bi-encoder, RRF)"
    index_ms: float  # indexing one document for the first stage (embedding, BM25 terms, or both)
    index_measured_on: str  # where index_ms came from, said next to the projection
    query_ms: float  # one query through the first stage: encode or tokenize, then search
    top_k: int
    rerankers: list  # [name, ms per pair] of each re-ranker, in the order they ran
    pair_ms: float  # one pair through the model that could score the whole corpus (the cross-encoder if it ran)
    pair_model: str  # that model's name in the rows ("cross-encoder", "late interaction")
    first_stage_embeds: bool = True  # False for BM25 alone: nothing to cluster with


RERANKER_SHORT_NAMES = {"cross": "cross-encoder", "late": "late interaction"}


def unit_costs(result: Comparison) -> UnitCosts:
    """Per-item costs measured by this comparison (ms, time.perf_counter), for the projection to N.

    Indexing a document is measured only when the corpus was indexed now; a cached corpus takes
    the last cost measured for the same first-stage model and precision in this process
    (`caches.INDEXING_COSTS`), else the query's own cost, an upper bound. The source is named.
    """
    timings = result.timings_ms
    index_key, query_key, _ = FIRST_STAGE_TIMINGS[result.first_stage_kind]
    memory_key = (result.models["first_stage"], result.runs_on["first_stage"])
    if not result.corpus_index_cached:
        caches.INDEXING_COSTS.put(memory_key, timings[index_key] / result.corpus_size)
    remembered_index_ms = caches.INDEXING_COSTS.get(memory_key)
    rerankers = [[RERANKER_SHORT_NAMES.get(stage.kind, stage.kind), stage.ms / max(1, len(stage.ranking))]
                 for stage in result.stages[1:]]
    # The model that scores "all N": the cross-encoder when it ran, else the last re-ranker.
    chosen = next((i for i, stage in enumerate(result.stages[1:]) if stage.kind == "cross"), len(rerankers) - 1)
    pair_model, pair_ms = rerankers[chosen] if rerankers else ("cross-encoder", 0.0)
    if FULL_CORPUS_TIMING in timings and result.corpus_size > len(result.reranked):
        pair_model = RERANKER_SHORT_NAMES.get(result.reranker_kind, pair_model)
        pair_ms = timings[FULL_CORPUS_TIMING] / result.corpus_size
    if not result.corpus_index_cached:
        index_ms, source = timings[index_key] / result.corpus_size, "this corpus"
    elif remembered_index_ms:
        index_ms, source = remembered_index_ms, "an earlier indexing (this corpus was cached)"
    else:  # nothing better: one query's encoding overstates a document's batched cost
        index_ms, source = timings[query_key], "the query's own cost (an upper bound)"
    return UnitCosts(
        first_stage=result.first_stage_label, index_ms=index_ms, index_measured_on=source,
        query_ms=result.stages[0].ms, top_k=result.top_k, rerankers=rerankers, pair_ms=pair_ms,
        pair_model=pair_model, first_stage_embeds=result.first_stage_kind != "lexical",
    )


def per_query_parts(costs: UnitCosts) -> list[tuple[str, float]]:
    """(stage, ms) of one query through the pipeline as it ran: first-stage search, then each re-ranking of top-k."""
    parts = [(f"{costs.first_stage} search", costs.query_ms)]
    parts += [(f"{name} on top-{costs.top_k}", costs.top_k * ms) for name, ms in costs.rerankers]
    return parts


def dominant_stage(costs: UnitCosts) -> tuple[str, float]:
    """The stage that takes most of one query's time, and its share (0..1)."""
    parts = per_query_parts(costs)
    total = sum(ms for _, ms in parts) or 1.0
    name, ms = max(parts, key=lambda part: part[1])
    return name, ms / total


def projection_rows(costs: UnitCosts, n: int) -> list[tuple[str, str, float]]:
    """(task, work, seconds) for N documents, from the measured per-item costs.

    The first-stage search is projected at its measured cost: a flat index scan grows with N,
    but stays in milliseconds up to about a million vectors on this class of machine.
    """
    pairs_all = n * (n - 1) // 2
    rows = [(f"Index N documents: {costs.first_stage} (once)", f"{n:,} documents", n * costs.index_ms / 1000)]
    rows += [(f"One query: {name}", "1 query" if i == 0 else f"{costs.top_k:,} pairs", ms / 1000)
             for i, (name, ms) in enumerate(per_query_parts(costs))]
    if costs.rerankers:
        rows.append(("One query: the whole pipeline", "per query", sum(ms for _, ms in per_query_parts(costs)) / 1000))
    rows.append((f"One query: {costs.pair_model} over all N", f"{n:,} pairs", n * costs.pair_ms / 1000))
    if costs.first_stage_embeds:
        rows.append((f"Cluster N sentences: {costs.first_stage}", f"{n:,} documents", n * costs.index_ms / 1000))
    rows.append((f"Cluster N sentences: {costs.pair_model} on every pair", f"{pairs_all:,} pairs", pairs_all * costs.pair_ms / 1000))
    return rows

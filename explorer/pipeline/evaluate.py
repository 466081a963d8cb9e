"""Metrics over a labelled corpus, for both stages and for the cross-encoder alone.

Three rankings per query, each scored with nDCG@10, RR@10 and R@N (N = top-k):

(a) ``bi_encoder``: the bi-encoder's cosine order over the whole corpus (exact FAISS index).
(b) ``rerank``: the bi-encoder's top-k re-ordered by cross-encoder logit; documents below
    the top-k keep the bi-encoder's order beneath them, so R@N of (a) and (b) is the same
    by construction and nDCG@10 still sees ten documents when top-k < 10.
(c) ``cross_encoder_full``: every document scored by the cross-encoder (slow: queries x
    documents pairs); optional.

Only the first max(10, N) places of a ranking affect these measures, so that is how deep
each run goes. The measures come from trec_eval (via ir_measures' pytrec_eval backend);
nothing here re-implements them. trec_eval's conventions apply: nDCG's gain is the grade
itself (0, 1, 2), and RR and recall count grade >= 1 as relevant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG

from explorer.data.corpus import Corpus, Query
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.engine.precision import Precision
from explorer.errors import ExplorerError
from explorer.pipeline.results import CHANGE_EPSILON
from explorer.pipeline.stages import Pipeline, StageProgress, Stopwatch, check_top_k, run_pipeline
from explorer.rankers.base import PairScorer
from explorer.rankers.bi_encoder import load_bi_encoder
from explorer.rankers.cross_encoder import load_cross_encoder

STAGES = ("bi_encoder", "rerank", "cross_encoder_full")
STAGE_LABELS = {
    "bi_encoder": "(a) bi-encoder alone",
    "rerank": "(b) bi-encoder top-k, re-ranked by the cross-encoder",
    "cross_encoder_full": "(c) cross-encoder over the whole corpus",
}
Qrels = dict[str, dict[str, int]]


def measure_names(top_k: int) -> list[str]:
    return ["nDCG@10", "RR@10", f"R@{top_k}"]


def score_rankings(rankings: dict[str, Sequence[str]], qrels: Qrels, top_k: int) -> dict[str, dict[str, float]]:
    """Per-query {measure: value} for ranked lists of doc ids (best first), by trec_eval.

    RR@10 is trec_eval's reciprocal rank on the run cut to ten places (trec_eval's
    recip_rank has no cutoff of its own). Queries without labels are left out.
    """
    # Scores that fall with rank make trec_eval's order exactly ours (it sorts by score).
    run = {
        qid: {doc: float(len(docs) - place) for place, doc in enumerate(docs)} for qid, docs in rankings.items()
    }
    top_ten = {
        qid: {doc: float(len(docs) - place) for place, doc in enumerate(docs[:10])} for qid, docs in rankings.items()
    }
    labelled = {qid: grades for qid, grades in qrels.items() if qid in rankings}
    results: dict[str, dict[str, float]] = {qid: {} for qid in rankings if qid in labelled}
    for measures, which_run in (([nDCG @ 10, R @ top_k], run), ([RR], top_ten)):
        evaluator = ir_measures.pytrec_eval.evaluator(measures, labelled)
        for metric in evaluator.iter_calc(which_run):
            name = "RR@10" if metric.measure == RR else str(metric.measure)
            results[metric.query_id][name] = float(metric.value)
    for qid, values in results.items():  # a query whose run is empty still scores zero
        for name in measure_names(top_k):
            values.setdefault(name, 0.0)
    return results


def mean_metrics(per_query: dict[str, dict[str, float]], names: Sequence[str]) -> dict[str, float]:
    if not per_query:
        return {name: 0.0 for name in names}
    return {name: float(np.mean([values[name] for values in per_query.values()])) for name in names}


def rerank_order(bi_order: Sequence[int], logits: Sequence[float], top_k: int) -> list[int]:
    """The top-k of `bi_order` by logit (ties keep bi order), then the rest in bi order."""
    head = list(bi_order[:top_k])
    by_logit = np.argsort(-np.asarray(logits[: len(head)], dtype=np.float64), kind="stable")
    return [head[i] for i in by_logit] + list(bi_order[top_k:])


@dataclass
class QueryRow:
    query_id: str
    query: str
    bi_encoder: dict[str, float]
    rerank: dict[str, float]
    cross_encoder_full: dict[str, float] | None
    change: dict[str, float]  # rerank minus bi_encoder, per measure
    first_relevant_rank: dict[str, int | None]  # 1-based, within the evaluated depth
    top_ids: dict[str, list[str]]  # each stage's first ten document ids, best first


@dataclass
class EvalReport:
    corpus_name: str
    corpus_size: int
    query_count: int
    top_k: int
    depth: int
    models: dict[str, str]
    precision: str
    metrics: dict[str, dict[str, float]]
    per_query: list[QueryRow]
    timings_ms: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def measures(self) -> list[str]:
        return measure_names(self.top_k)


def _labelled_queries(corpus: Corpus, queries: Sequence[Query], qrels: Qrels) -> tuple[list[Query], list[str]]:
    """Queries that have at least one relevant document, and notes about what was left out."""
    known = {doc.id for doc in corpus.documents}
    missing_docs = sorted({doc for grades in qrels.values() for doc in grades if doc not in known})
    notes = []
    if missing_docs:
        shown = ", ".join(missing_docs[:5]) + (" ..." if len(missing_docs) > 5 else "")
        notes.append(f"{len(missing_docs)} labelled document id(s) are not in the corpus: {shown}")
    kept = [q for q in queries if any(g > 0 for g in qrels.get(q.id, {}).values())]
    if len(kept) < len(queries):
        notes.append(f"{len(queries) - len(kept)} query(ies) have no relevant document in the labels and were skipped.")
    if not kept:
        raise ExplorerError(
            "No query has a relevant document in the labels: check that the qrels' query ids match "
            "the ids in the queries file and that some grades are above 0."
        )
    return kept, notes


def evaluate(
    corpus: Corpus,
    queries: Sequence[Query],
    qrels: Qrels,
    top_k: int = 20,
    bi_encoder: str = DEFAULT_BI_ENCODER,
    cross_encoder: str = DEFAULT_CROSS_ENCODER,
    precision: Precision = "auto",
    score_all: bool = True,
    persist_embeddings: bool = True,
    allow_local_models: bool = False,
    progress: StageProgress | None = None,
    cross_encoder_runner: Callable[[PairScorer], PairScorer] | None = None,
    cross_label: str | None = None,
) -> EvalReport:
    """Rank the corpus for every labelled query three ways and score each ranking.

    `cross_encoder_runner` wraps the bound cross-encoder in what scores the pairs instead of
    this process (`eval --ray`: `indexing/ray_scoring.py:RayPairScorer`); the measures are the same.
    """
    top_k, top_k_notes = check_top_k(top_k, len(corpus))
    kept, notes = _labelled_queries(corpus, queries, qrels)
    notes.extend(top_k_notes)
    depth = min(len(corpus), max(10, top_k))
    report = progress or (lambda fraction, message: None)
    clock = Stopwatch()

    report(0.0, "Loading models")
    with clock.stage("model_loading"):
        scorer = load_cross_encoder(cross_encoder, precision, allow_local_path=allow_local_models, label=cross_label)
        pipeline = Pipeline(
            load_bi_encoder(bi_encoder, precision, allow_local_path=allow_local_models),
            [cross_encoder_runner(scorer) if cross_encoder_runner else scorer],
        )
    # (c) scores every pair once, and (b) takes its candidates' logits from that same pass.
    run = run_pipeline(
        pipeline, corpus.texts, corpus.fingerprint, [q.text for q in kept], top_k, depth, clock,
        score_all=score_all, share_full_scores=True, persist=persist_embeddings, progress=report,
    )
    if run.index_cached:
        notes.append("Corpus embeddings came from the cache.")
    reranker = pipeline.rerankers[0]
    notes.extend(run.notes)

    ids = [doc.id for doc in corpus.documents]
    rankings: dict[str, dict[str, list[str]]] = {stage: {} for stage in STAGES}
    for qi, query in enumerate(kept):
        order = run.first_stage.positions[qi]
        rankings["bi_encoder"][query.id] = [ids[p] for p in order]
        logit_of = dict(zip(run.reranked[0].positions[qi], run.reranked[0].scores[qi]))
        head_logits = [logit_of[p] for p in order[:top_k]]
        rankings["rerank"][query.id] = [ids[p] for p in rerank_order(order, head_logits, top_k)]
        if score_all:
            rankings["cross_encoder_full"][query.id] = [ids[p] for p in run.full_corpus.positions[qi][:depth]]

    report(0.97, "Computing measures")
    names = measure_names(top_k)
    per_stage = {stage: score_rankings(rankings[stage], qrels, top_k) for stage in STAGES if rankings[stage]}
    metrics = {stage: mean_metrics(values, names) for stage, values in per_stage.items()}
    if not score_all:
        metrics["cross_encoder_full"] = None
        notes.append("The cross-encoder did not score the whole corpus (stage c skipped).")
    rows = []
    for query in kept:
        bi, rr = per_stage["bi_encoder"][query.id], per_stage["rerank"][query.id]
        full = per_stage["cross_encoder_full"][query.id] if score_all else None
        rows.append(
            QueryRow(
                query_id=query.id,
                query=query.text,
                bi_encoder=bi,
                rerank=rr,
                cross_encoder_full=full,
                change={name: rr[name] - bi[name] for name in names},
                first_relevant_rank={
                    stage: _first_relevant(rankings[stage][query.id], qrels[query.id])
                    for stage in STAGES
                    if query.id in rankings[stage]
                },
                top_ids={stage: rankings[stage][query.id][:10] for stage in STAGES if query.id in rankings[stage]},
            )
        )
    report(1.0, "Done")
    return EvalReport(
        corpus_name=corpus.name,
        corpus_size=len(corpus),
        query_count=len(kept),
        top_k=top_k,
        depth=depth,
        models={"bi_encoder": pipeline.first_stage.info.name, "cross_encoder": reranker.info.name},
        precision=reranker.info.runs_on,
        metrics=metrics,
        per_query=rows,
        timings_ms=clock.ms,
        notes=notes,
    )


def _first_relevant(ranking: Sequence[str], grades: dict[str, int]) -> int | None:
    for place, doc in enumerate(ranking, start=1):
        if grades.get(doc, 0) > 0:
            return place
    return None


def format_report(report: EvalReport) -> str:
    """A readable summary: one row per stage, then the queries re-ranking moved."""
    names = report.measures
    lines = [
        f"Corpus: {report.corpus_name} ({report.corpus_size} documents, {report.query_count} labelled queries), "
        f"top-k {report.top_k}",
        f"Bi-encoder: {report.models['bi_encoder']}; cross-encoder: {report.models['cross_encoder']} "
        f"[{report.precision}]",
        "",
        f"{'stage':<56}" + "".join(f"{name:>10}" for name in names),
    ]
    for stage in STAGES:
        values = report.metrics.get(stage)
        cells = "".join(f"{values[name]:>10.3f}" for name in names) if values else f"{'(skipped)':>10}"
        lines.append(f"{STAGE_LABELS[stage]:<56}{cells}")
    improved = [row for row in report.per_query if row.change["nDCG@10"] > CHANGE_EPSILON]
    hurt = [row for row in report.per_query if row.change["nDCG@10"] < -CHANGE_EPSILON]
    lines += ["", f"Re-ranking improved nDCG@10 on {len(improved)} queries, hurt {len(hurt)}, "
              f"left {report.query_count - len(improved) - len(hurt)} unchanged."]
    for row in sorted(improved + hurt, key=lambda r: r.change["nDCG@10"]):
        lines.append(
            f"  {row.change['nDCG@10']:+.3f}  [{row.query_id}] {row.query[:60]}  "
            f"(nDCG@10 {row.bi_encoder['nDCG@10']:.3f} -> {row.rerank['nDCG@10']:.3f})"
        )
    lines.append("")
    lines.append("Timings (ms): " + ", ".join(f"{name} {ms:.1f}" for name, ms in report.timings_ms.items()))
    lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(lines)

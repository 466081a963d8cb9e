"""The three classic stages of retrieve-and-re-rank, as three pipelines of the one runner.

(a) ``bi_encoder``: pipeline ``bi``, the bi-encoder's cosine order over the whole corpus.
(b) ``rerank``: pipeline ``bi+cross``, the bi-encoder's top-k re-ordered by cross-encoder logit;
    documents below the top-k keep the bi-encoder's order beneath them, so R@k of (a) and (b) is
    the same by construction and nDCG@10 still sees ten documents when top-k < 10.
(c) ``cross_encoder_full``: pipeline ``cross``, every document scored by the cross-encoder (slow:
    queries x documents pairs); optional. (b) takes its logits from the same pass (each pair is
    scored once).

`evaluate` runs them with `experiment.run_experiment` and returns its `ExperimentReport`;
`three_stage_dict` and `format_report` show that report the way `eval` always has (the JSON
keys and the text table below), and `evaluate_shipped_set` keeps the Evaluate tab's finished
reports (caches.EVAL_REPORTS).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from explorer import caches
from explorer.budgets import check_whole_corpus_tokens, every_pair_tokens
from explorer.data.builtin_corpora import load_set
from explorer.data.corpus import Corpus, Query
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.engine.precision import Precision
from explorer.pipeline.experiment import ExperimentReport, run_experiment
from explorer.pipeline.measures import Qrels, mean_label
from explorer.pipeline.results import CHANGE_EPSILON
from explorer.pipeline.stages import StageProgress
from explorer.rankers.base import PairScorer

# Each stage's key in the report's JSON, and the pipeline that computes it.
STAGE_PIPELINES = {"bi_encoder": "bi", "rerank": "bi+cross", "cross_encoder_full": "cross"}
STAGES = tuple(STAGE_PIPELINES)
STAGE_LABELS = {
    "bi_encoder": "(a) bi-encoder alone",
    "rerank": "(b) bi-encoder top-k, re-ranked by the cross-encoder",
    "cross_encoder_full": "(c) cross-encoder over the whole corpus",
}
SKIPPED_NOTE = "The cross-encoder did not score the whole corpus (stage c skipped)."


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
) -> ExperimentReport:
    """Rank the corpus for every labelled query by the three stages' pipelines and score each.

    `score_all=False` leaves out (c). `cross_encoder_runner` wraps the bound cross-encoder in what
    scores the pairs instead of this process (`eval --ray`: `indexing/ray_scoring.py:RayPairScorer`);
    the measures are the same. Raises ExplorerError for labels no query can use.
    """
    pipelines = [STAGE_PIPELINES[stage] for stage in STAGES if score_all or stage != "cross_encoder_full"]
    report = run_experiment(
        corpus, queries, qrels, pipelines, top_k=top_k, bi_encoder=bi_encoder, cross_encoder=cross_encoder,
        precision=precision, persist_embeddings=persist_embeddings, allow_local_models=allow_local_models,
        progress=progress, cross_encoder_runner=cross_encoder_runner, cross_label=cross_label,
    )
    if not score_all:
        report.notes.append(SKIPPED_NOTE)
    return report


def shipped_report_is_kept(name: str, top_k: int, score_all: bool) -> bool:
    """Whether `evaluate_shipped_set(name, top_k, score_all)` would answer from its kept reports
    (no model work: the page need not measure the request or queue it as a long job)."""
    return (name, top_k, score_all) in caches.EVAL_REPORTS


def evaluate_shipped_set(name: str, top_k: int, score_all: bool, progress: StageProgress | None = None) -> ExperimentReport:
    """`evaluate` on a shipped labelled set, named after it; finished reports are kept by (set, k, c).

    Raises ExplorerError when (c) would read more tokens than the app allows (MAX_WHOLE_CORPUS_TOKENS).
    """
    key = (name, top_k, score_all)
    if (cached := caches.EVAL_REPORTS.get(key)) is not None:
        return cached
    labelled = load_set(name)
    if score_all:
        from explorer.pipeline.compare import reranker  # the cross-encoder stage (c) runs

        scorer = reranker("cross", DEFAULT_CROSS_ENCODER, "auto", False)
        check_whole_corpus_tokens(
            every_pair_tokens(scorer.tokenizer, scorer.max_length, [q.text for q in labelled.queries],
                              labelled.corpus.texts),
            len(labelled.corpus) * len(labelled.queries), name,
            "Untick stage (c), or run `python -m explorer eval` from the command line.",
        )
    report = evaluate(labelled.corpus, labelled.queries, labelled.qrels, top_k=top_k, score_all=score_all,
                      persist_embeddings=True, progress=progress)
    report = dataclasses.replace(report, corpus_name=name)
    caches.EVAL_REPORTS.put(key, report)
    return report


def stage_metrics(report: ExperimentReport) -> dict[str, dict[str, float] | None]:
    """{stage: {measure: mean}}, None for a stage that did not run."""
    return {stage: report.metrics.get(pipeline) for stage, pipeline in STAGE_PIPELINES.items()}


def query_rows(report: ExperimentReport) -> list[dict]:
    """Per labelled query, in the queries' order: each stage's measures, (b) minus (a) per measure
    (`change`), the 1-based place of the first relevant document and the first ten ids per stage."""
    ran = {stage: pipeline for stage, pipeline in STAGE_PIPELINES.items() if pipeline in report.per_query}
    rows = []
    for qid, text in report.queries.items():
        values = {stage: report.per_query[pipeline][qid] for stage, pipeline in ran.items()}
        rows.append({
            "query_id": qid,
            "query": text,
            "bi_encoder": values["bi_encoder"],
            "rerank": values["rerank"],
            "cross_encoder_full": values.get("cross_encoder_full"),
            "change": {m: values["rerank"][m] - values["bi_encoder"][m] for m in report.measures},
            "first_relevant_rank": {stage: report.first_relevant_rank[pipeline][qid] for stage, pipeline in ran.items()},
            "top_ids": {stage: report.rankings[pipeline][qid][:10] for stage, pipeline in ran.items()},
        })
    return rows


def three_stage_dict(report: ExperimentReport) -> dict:
    """The JSON of plain `eval` (and the Evaluate tab's three stages), as it has always been."""
    return {
        "corpus_name": report.corpus_name,
        "corpus_size": report.corpus_size,
        "query_count": report.query_count,
        "top_k": report.top_k,
        "depth": report.depth,
        "models": {"bi_encoder": report.models["bi"], "cross_encoder": report.models["cross"]},
        "precision": report.runs_on["cross"],  # the cross-encoder's precision and device, e.g. "fp32 on cpu"
        "metrics": stage_metrics(report),
        "per_query": query_rows(report),
        "timings_ms": report.timings_ms,
        "notes": report.notes,
    }


def format_report(report: ExperimentReport) -> str:
    """A readable summary: one row per stage, then the queries re-ranking moved."""
    names = report.measures
    metrics, rows = stage_metrics(report), query_rows(report)
    lines = [
        f"Corpus: {report.corpus_name} ({report.corpus_size} documents, {report.query_count} labelled queries), "
        f"top-k {report.top_k}",
        f"Bi-encoder: {report.models['bi']}; cross-encoder: {report.models['cross']} [{report.runs_on['cross']}]",
        "",
        f"{'stage':<56}" + "".join(f"{mean_label(name):>10}" for name in names),
    ]
    for stage in STAGES:
        values = metrics[stage]
        cells = "".join(f"{values[name]:>10.3f}" for name in names) if values else f"{'(skipped)':>10}"
        lines.append(f"{STAGE_LABELS[stage]:<56}{cells}")
    improved = [row for row in rows if row["change"]["nDCG@10"] > CHANGE_EPSILON]
    hurt = [row for row in rows if row["change"]["nDCG@10"] < -CHANGE_EPSILON]
    lines += ["", f"Re-ranking improved nDCG@10 on {len(improved)} queries, hurt {len(hurt)}, "
              f"left {report.query_count - len(improved) - len(hurt)} unchanged."]
    for row in sorted(improved + hurt, key=lambda r: r["change"]["nDCG@10"]):
        lines.append(
            f"  {row['change']['nDCG@10']:+.3f}  [{row['query_id']}] {row['query'][:60]}  "
            f"(nDCG@10 {row['bi_encoder']['nDCG@10']:.3f} -> {row['rerank']['nDCG@10']:.3f})"
        )
    lines.append("")
    lines.append("Timings (ms): " + ", ".join(f"{name} {ms:.1f}" for name, ms in report.timings_ms.items()))
    lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(lines)

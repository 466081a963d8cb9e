"""Measures over labelled queries, by trec_eval: nDCG@10, MRR@10 (reported as "RR@10") and R@k.

Only the first max(10, k) places of a ranking affect these measures, so that is how deep each
ranking goes. The measures come from trec_eval (via ir_measures' pytrec_eval backend); nothing
here re-implements them. trec_eval's conventions apply: nDCG's gain is the grade itself (0, 1,
2), and RR and recall count grade >= 1 as relevant. Per query the value is the reciprocal rank;
its mean over the queries is the MRR.
"""

from __future__ import annotations

from collections.abc import Sequence

import ir_measures
import numpy as np
from ir_measures import RR, P, R, nDCG

from explorer.data.corpus import Corpus, Query
from explorer.errors import ExplorerError

Qrels = dict[str, dict[str, int]]  # query id -> document id -> relevance grade


def measure_names(top_k: int) -> list[str]:
    """The measures of every evaluation, in the order shown: nDCG@10, RR@10 (per query; its mean is MRR@10), R@k."""
    return ["nDCG@10", "RR@10", f"R@{top_k}"]


def mean_label(name: str) -> str:
    """How a measure's mean over the queries is called: the mean of RR@10 is MRR@10; others keep their name."""
    return "MRR@10" if name == "RR@10" else name


def evaluation_depth(top_k: int, corpus_size: int) -> int:
    """How deep each ranking goes: the measures read at most max(10, k) places."""
    return min(corpus_size, max(10, top_k))


def score_rankings(rankings: dict[str, Sequence[str]], qrels: Qrels, top_k: int) -> dict[str, dict[str, float]]:
    """Per-query {measure: value} for ranked lists of doc ids (best first), by trec_eval.

    RR@10 is trec_eval's reciprocal rank on the run cut to ten places (trec_eval's
    recip_rank has no cutoff of its own). Queries without labels are left out.
    """
    run, top_ten = trec_run(rankings), trec_run(rankings, depth=10)
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


def trec_run(rankings: dict[str, Sequence[str]], depth: int | None = None) -> dict[str, dict[str, float]]:
    """Ranked lists (best first, cut to `depth` places) as a run for trec_eval: scores that fall with rank
    make trec_eval's order exactly ours (it sorts by score)."""
    return {qid: {doc: float(len(docs) - place) for place, doc in enumerate(docs[:depth])}
            for qid, docs in rankings.items()}


def precision_measures(rankings: dict[str, Sequence[str]], qrels: Qrels, k: int = 10) -> dict[str, dict[str, float]]:
    """Per-query {"nDCG@k", "P@k", "RR@k"} by trec_eval, for the workbench's judgments so far.

    P@k counts grade >= 1 over k places (trec_eval divides by k even when fewer are ranked); RR@k is
    trec_eval's reciprocal rank on the run cut to k places. A query whose ranking is empty scores 0;
    queries without labels are left out.
    """
    labelled = {qid: grades for qid, grades in qrels.items() if qid in rankings}
    results: dict[str, dict[str, float]] = {qid: {} for qid in rankings if qid in labelled}
    names = {nDCG @ k: f"nDCG@{k}", P @ k: f"P@{k}", RR: f"RR@{k}"}
    cut = trec_run(rankings, depth=k)
    for measures in ([nDCG @ k, P @ k], [RR]):
        for metric in ir_measures.pytrec_eval.evaluator(measures, labelled).iter_calc(cut):
            results[metric.query_id][names[metric.measure]] = float(metric.value)
    for values in results.values():
        for name in names.values():
            values.setdefault(name, 0.0)
    return results


def mean_metrics(per_query: dict[str, dict[str, float]], names: Sequence[str]) -> dict[str, float]:
    """The mean of each measure over the queries (all zero when there are none)."""
    if not per_query:
        return {name: 0.0 for name in names}
    return {name: float(np.mean([values[name] for values in per_query.values()])) for name in names}


def rerank_order(first_order: Sequence[int], scores: Sequence[float], top_k: int) -> list[int]:
    """The top-k of `first_order` by the re-ranker's score (ties keep the first stage's order),
    then the rest in the first stage's order; `scores[i]` belongs to `first_order[i]`."""
    head = list(first_order[:top_k])
    by_score = np.argsort(-np.asarray(scores[: len(head)], dtype=np.float64), kind="stable")
    return [head[i] for i in by_score] + list(first_order[top_k:])


def first_relevant(ranking: Sequence[str], grades: dict[str, int]) -> int | None:
    """1-based place of the first document graded above 0, or None when the ranking holds none."""
    for place, doc in enumerate(ranking, start=1):
        if grades.get(doc, 0) > 0:
            return place
    return None


def _named(ids, limit: int = 5) -> str:
    ids = list(ids)
    return ", ".join(repr(i) for i in ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def labelled_queries(corpus: Corpus, queries: Sequence[Query], qrels: Qrels) -> tuple[list[Query], list[str]]:
    """The queries the measures are over, those with at least one judged-relevant document (grade > 0),
    and notes that count and name everything else in the labels.

    Policy, trec_eval's: a judged document missing from the corpus stays in the qrels, so a
    relevant one counts as relevant and unretrievable (it lowers recall and nDCG; a run cannot
    hold it); qrels for a query absent from the queries file cannot be run and are left out.
    Raises ExplorerError when no query has a judged-relevant document.
    """
    known = {doc.id for doc in corpus.documents}
    asked = {q.id for q in queries}
    dangling = sorted({(qid, doc) for qid, grades in qrels.items() if qid in asked for doc in grades if doc not in known})
    notes = []
    if dangling:
        relevant = [(qid, doc) for qid, doc in dangling if qrels[qid][doc] > 0]
        notes.append(
            f"{len(dangling)} judgment(s) name a document that is not in the corpus "
            f"({_named(sorted({doc for _, doc in dangling}))}); the {len(relevant)} judged relevant count as "
            "relevant and unretrievable, as trec_eval counts them (they lower recall and nDCG), the others "
            "change nothing."
        )
    absent = sorted(qid for qid in qrels if qid not in asked)
    if absent:
        notes.append(f"{len(absent)} judged query id(s) are not in the queries file and were left out: {_named(absent)}.")
    kept = [q for q in queries if any(g > 0 for g in qrels.get(q.id, {}).values())]
    if len(kept) < len(queries):
        kept_ids = {q.id for q in kept}
        skipped = [q.id for q in queries if q.id not in kept_ids]
        notes.append(f"{len(skipped)} query(ies) have no judged-relevant document and were left out: {_named(skipped)}.")
    if not kept:
        raise ExplorerError(
            "No query has a relevant document in the labels: check that the qrels' query ids match "
            "the ids in the queries file and that some grades are above 0."
        )
    notes.append(f"Every mean is over {len(kept)} queries (those with at least one judged-relevant document).")
    return kept, notes

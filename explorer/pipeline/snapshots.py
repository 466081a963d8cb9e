"""Snapshots of a case's pipeline, and the current pipeline compared with any number of them.

A snapshot is every query's rankings, one per column (stage) of the page, as `compare()` gives them; it is
saved under a name (`store.cases.CaseStore.save_snapshot`). `compare_snapshots` then says, per query, how each
snapshot and the current pipeline do on the judgments made so far (nDCG@10, P@10, RR@10, plain and condensed;
`judged.py`), the change of each measure (current minus snapshot) and which documents moved how far.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from explorer.data.corpus import Corpus
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.errors import ExplorerError
from explorer.pipeline.compare import compare
from explorer.pipeline.judged import judged_measures
from explorer.pipeline.results import Comparison, Stage
from explorer.store.cases import Case, Snapshot

MEASURES = ("nDCG@10", "P@10", "RR@10", "nDCG@10 condensed", "P@10 condensed", "RR@10 condensed")


def column_names(stages: Sequence[Stage]) -> list[str]:
    """One name per stage, as the page heads its columns: the stage's name, with its precision and device where two
    stages share a name (cross@fp32 beside cross@bf16), and a number where even that repeats."""
    names = [stage.name for stage in stages]
    names = [f"{stage.name} [{stage.runs_on}]" if names.count(stage.name) > 1 else stage.name for stage in stages]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique


def snapshot_from_comparisons(name: str, comparisons: dict[str, Comparison]) -> Snapshot:
    """A snapshot of comparisons already made (query -> its Comparison): each stage's top-k ids and scores."""
    rankings, scores = {}, {}
    for query, result in comparisons.items():
        columns = column_names(result.stages)
        rankings[query] = {c: [hit.id for hit in s.ranking] for c, s in zip(columns, result.stages)}
        scores[query] = {c: [float(hit.score) for hit in s.ranking] for c, s in zip(columns, result.stages)}
    return Snapshot(name, datetime.now(timezone.utc).isoformat(timespec="seconds"), rankings, scores)


def snapshot_rankings(corpus: Corpus, queries: Sequence[str], settings: dict, name: str = "current",
                      index=None, allow_local_models: bool = False,
                      progress: Callable[[float, str], None] | None = None) -> Snapshot:
    """Run the page's pipeline (`compare()` with the case's `settings`: first_stage, rerankers, bi_encoder,
    cross_encoder, precision, top_k, cross_label, score_all) for every query; the rankings of each stage.

    `index`: the prebuilt index the case's corpus is. Raises ExplorerError as `compare` does (a bad setting, a
    query too long), naming the query.
    """
    report = progress or (lambda fraction, message: None)
    comparisons = {}
    for number, query in enumerate(queries):
        report(number / max(1, len(queries)), f"Ranking query {number + 1} of {len(queries)}")
        try:
            comparisons[query] = compare(
                query, corpus, top_k=settings.get("top_k", 10),
                bi_encoder=settings.get("bi_encoder") or DEFAULT_BI_ENCODER,
                cross_encoder=settings.get("cross_encoder") or DEFAULT_CROSS_ENCODER,
                score_all=bool(settings.get("score_all", False)), precision=settings.get("precision") or "auto",
                allow_local_models=allow_local_models, first_stage=settings.get("first_stage") or "bi",
                rerankers=settings.get("rerankers", ("cross",)), index=index, cross_label=settings.get("cross_label"),
            )
        except ExplorerError as error:
            raise ExplorerError(f"Query {query!r}: {error}") from None
    report(1.0, "Rankings done")
    return snapshot_from_comparisons(name, comparisons)


def _column(snapshot: Snapshot, query: str, column: str | None) -> list[str] | None:
    columns = snapshot.rankings.get(query)
    if not columns:
        return None
    if column is None:
        return list(columns.values())[-1]  # the pipeline's last stage: what it returns
    return columns.get(column)


def _measures(ranking: list[str] | None, grades: dict[str, int]) -> dict[str, float | None] | None:
    if ranking is None:
        return None
    return dict(zip(MEASURES, (value for _, value in judged_measures(ranking, grades).labels())))


def rank_moves(before: Sequence[str], after: Sequence[str]) -> list[dict]:
    """Each document of either ranking: its 1-based rank before and after (None where absent) and `move`, the places
    it gained (before - after; None when it is new or gone). Largest moves first, then new, then gone."""
    was = {doc: rank for rank, doc in enumerate(before, start=1)}
    now = {doc: rank for rank, doc in enumerate(after, start=1)}
    rows = [{"id": doc, "rank_before": was.get(doc), "rank_after": now.get(doc),
             "move": was[doc] - now[doc] if doc in was and doc in now else None}
            for doc in list(after) + [d for d in before if d not in now]]
    return sorted(rows, key=lambda r: (r["move"] is None, -abs(r["move"] or 0), r["rank_after"] is None,
                                       r["rank_after"] or r["rank_before"]))


def compare_snapshots(case: Case, current: Snapshot, others: list[Snapshot], column: str | None = None) -> list[dict]:
    """Per query of the case (in order): the current pipeline's and each snapshot's measures on the case's
    judgments, the change (current minus snapshot; None where either is None) and the rank moves from the
    snapshot to current. `column`: which column to compare (None: each one's last, the pipeline's answer).

    Returns [{"query", "judged": number of judgments, "current": {measure: value} or None,
              "snapshots": [{"name", "measures", "change", "moves"}]}]; a snapshot without the query or the
    column has measures None and no moves.
    """
    rows = []
    for query in case.queries:
        grades = case.grades(query)
        now_ranking = _column(current, query, column)
        now = _measures(now_ranking, grades)
        compared = []
        for snapshot in others:
            ranking = _column(snapshot, query, column)
            measures = _measures(ranking, grades)
            change = None
            if measures is not None and now is not None:
                change = {m: None if now[m] is None or measures[m] is None else now[m] - measures[m] for m in MEASURES}
            moves = rank_moves(ranking, now_ranking) if ranking is not None and now_ranking is not None else []
            compared.append({"name": snapshot.name, "measures": measures, "change": change, "moves": moves})
        rows.append({"query": query, "judged": len(grades), "current": now, "snapshots": compared})
    return rows

"""The Evaluate tab's "which moves paid" views (`pipeline/move_gains.py`): the disagreement table with
each query's moves, the sentence summed over queries, and one query's two lists beside its moves."""

from __future__ import annotations

import html

from explorer.pipeline.experiment import ExperimentReport
from explorer.pipeline.move_gains import moves_by_query, moves_sentence, summarise_moves
from explorer.views import eval_plots
from explorer.views.templating import render


def disagreement_rows_with_moves(report: ExperimentReport, rows: list[dict], queries: dict[str, str],
                                 qrels: dict[str, dict[str, int]]) -> tuple[list[str], list[list]]:
    """`eval_plots.disagreement_rows` plus, per query, the moves from a to b that paid, that cost, and the
    unjudged documents moved up the top 10."""
    header, table = eval_plots.disagreement_rows(report, rows, queries)
    if not rows:
        return header, table
    moves = moves_by_query(report.rankings[rows[0]["a"]], report.rankings[rows[0]["b"]], qrels)
    for row, line in zip(rows, table):
        mine = moves.get(row["query_id"], [])
        line += [sum(m["contribution"] > 0 for m in mine), sum(m["contribution"] < 0 for m in mine),
                 sum(m["unjudged_up"] for m in mine)]
    return header + ["moves that paid", "moves that cost", "unjudged moved up ⚑"], table


def moves_summary_markdown(report: ExperimentReport, a: str, b: str, qrels: dict[str, dict[str, int]]) -> str:
    """The sentence under the disagreement table: b's change over a, summed over queries, split over moves."""
    summary = summarise_moves(moves_by_query(report.rankings[a], report.rankings[b], qrels))
    return "**Which moves paid**: " + html.escape(moves_sentence(summary, a, b))


def moves_html(report: ExperimentReport, a: str, b: str, query_id: str, query: str, grades: dict[str, int]) -> str:
    """One query: a's and b's top 10 side by side, each moved document's contribution to the nDCG@10 change."""
    from explorer.pipeline.move_gains import move_contributions

    ranked_a, ranked_b = report.rankings[a][query_id], report.rankings[b][query_id]
    moves = move_contributions(ranked_a, ranked_b, grades)
    listing = [[(i, doc, grades.get(doc)) for i, doc in enumerate(ranked[:10], start=1)] for ranked in (ranked_a, ranked_b)]
    return render("moves.html.j2", query=query, a=a, b=b, value_a=report.per_query[a][query_id]["nDCG@10"],
                  value_b=report.per_query[b][query_id]["nDCG@10"], list_a=listing[0], list_b=listing[1], moves=moves,
                  total=sum(m["contribution"] for m in moves))

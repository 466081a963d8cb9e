"""Tables and plotly figures for the Evaluate tab, from an `EvalReport` (no gradio here)."""

from __future__ import annotations

import html
import textwrap

import plotly.graph_objects as go

from explorer.pipeline.results import CHANGE_EPSILON
from explorer.pipeline.evaluate import STAGE_LABELS, STAGES, EvalReport

IMPROVED, HURT, SAME = "#2e7d32", "#c62828", "#9e9e9e"


def metrics_rows(report: EvalReport) -> tuple[list[str], list[list]]:
    """Header and one row per stage: the mean of each measure over the labelled queries."""
    header = ["stage"] + [f"{name} (mean, 0–1)" for name in report.measures]
    rows = []
    for stage in STAGES:
        values = report.metrics.get(stage)
        if values is None:
            rows.append([STAGE_LABELS[stage] + " (skipped)"] + [None] * len(report.measures))
        else:
            rows.append([STAGE_LABELS[stage]] + [round(values[name], 4) for name in report.measures])
    return header, rows


def per_query_rows(report: EvalReport) -> tuple[list[str], list[list]]:
    """One row per query, largest nDCG@10 change from re-ranking first (hurt last)."""
    header = [
        "query id", "query", "nDCG@10 bi-encoder", "nDCG@10 re-ranked", "change in nDCG@10",
        "first relevant: bi-encoder rank", "first relevant: re-ranked rank", "RR@10 bi-encoder", "RR@10 re-ranked",
    ]
    rows = []
    for row in sorted(report.per_query, key=lambda r: -r.change["nDCG@10"]):
        rows.append([
            row.query_id, row.query,
            round(row.bi_encoder["nDCG@10"], 4), round(row.rerank["nDCG@10"], 4), round(row.change["nDCG@10"], 4),
            row.first_relevant_rank.get("bi_encoder"), row.first_relevant_rank.get("rerank"),
            round(row.bi_encoder["RR@10"], 4), round(row.rerank["RR@10"], 4),
        ])
    return header, rows


def summary_markdown(report: EvalReport) -> str:
    changes = [row.change["nDCG@10"] for row in report.per_query]
    improved = sum(c > CHANGE_EPSILON for c in changes)
    hurt = sum(c < -CHANGE_EPSILON for c in changes)
    seconds = sum(report.timings_ms.values()) / 1000.0
    lines = [
        f"**{html.escape(report.corpus_name)}**: {report.corpus_size:,} documents, {report.query_count} labelled "
        f"queries, top-k {report.top_k}. Re-ranking improved nDCG@10 on **{improved}** queries, hurt **{hurt}**, "
        f"left {report.query_count - improved - hurt} unchanged.",
        f"Measures by trec_eval (ir_measures' pytrec_eval backend): gain = grade 0/1/2; grade ≥ 1 counts as "
        f"relevant for RR and recall. Stage (b) keeps the bi-encoder's order below the top-k, so its "
        f"R@{report.top_k} equals (a)'s. Models: {html.escape(report.models['bi_encoder'])}, "
        f"{html.escape(report.models['cross_encoder'])} ({report.precision}); {seconds:.1f} s in all.",
    ]
    lines += [f"*Note: {html.escape(note)}*" for note in report.notes]
    return "\n\n".join(lines)


def change_figure(report: EvalReport) -> go.Figure:
    """Per-query change in nDCG@10 from re-ranking: bars right = improved, left = hurt."""
    rows = sorted(report.per_query, key=lambda r: r.change["nDCG@10"])
    colors = [IMPROVED if r.change["nDCG@10"] > CHANGE_EPSILON else HURT if r.change["nDCG@10"] < -CHANGE_EPSILON else SAME for r in rows]
    hover = [
        "<br>".join(textwrap.wrap(html.escape(r.query), 60))
        + f"<br>nDCG@10: {r.bi_encoder['nDCG@10']:.3f} → {r.rerank['nDCG@10']:.3f}"
        + f"<br>first relevant rank: {r.first_relevant_rank.get('bi_encoder')} → {r.first_relevant_rank.get('rerank')}"
        for r in rows
    ]
    figure = go.Figure(
        go.Bar(
            x=[r.change["nDCG@10"] for r in rows],
            y=[html.escape(r.query_id) for r in rows],
            orientation="h",
            marker_color=colors,
            hovertext=hover,
            hoverinfo="text",
        )
    )
    figure.update_layout(
        title="Change in nDCG@10 from re-ranking, per query (re-ranked minus bi-encoder)",
        xaxis_title="change in nDCG@10 (unitless, −1 to +1)",
        yaxis_title="query id",
        height=max(320, 22 * len(rows) + 120),
        margin=dict(l=10, r=10, t=50, b=40),
        template="plotly_white",
    )
    figure.add_vline(x=0, line_color="#555", line_width=1)
    return figure

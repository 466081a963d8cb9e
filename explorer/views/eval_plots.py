"""Tables and plotly figures for the Evaluate tab, from the one `ExperimentReport`: the three classic
stages (its pipelines bi, bi+cross, cross) or several pipelines against a baseline; no gradio here."""

from __future__ import annotations

import html
import math
import textwrap

import plotly.graph_objects as go

from explorer.pipeline.results import CHANGE_EPSILON
from explorer.pipeline.evaluate import STAGE_LABELS, query_rows, stage_metrics
from explorer.pipeline.measures import mean_label
from explorer.pipeline.experiment import ExperimentReport
from explorer.pipeline.significance import MIN_QUERIES_FOR_TESTS

IMPROVED, HURT, SAME = "#2e7d32", "#c62828", "#9e9e9e"


def metrics_rows(report: ExperimentReport) -> tuple[list[str], list[list]]:
    """Header and one row per classic stage (a, b, c): the mean of each measure over the labelled queries."""
    header = ["stage"] + [f"{mean_label(name)} (mean, 0–1)" for name in report.measures]
    rows = []
    for stage, values in stage_metrics(report).items():
        if values is None:
            rows.append([STAGE_LABELS[stage] + " (skipped)"] + [None] * len(report.measures))
        else:
            rows.append([STAGE_LABELS[stage]] + [round(values[name], 4) for name in report.measures])
    return header, rows


def per_query_rows(report: ExperimentReport) -> tuple[list[str], list[list]]:
    """One row per query, largest nDCG@10 change from re-ranking first (hurt last)."""
    header = [
        "query id", "query", "nDCG@10 bi-encoder", "nDCG@10 re-ranked", "change in nDCG@10",
        "first relevant: bi-encoder rank", "first relevant: re-ranked rank", "RR@10 bi-encoder", "RR@10 re-ranked",
    ]
    rows = []
    for row in sorted(query_rows(report), key=lambda r: -r["change"]["nDCG@10"]):
        rows.append([
            row["query_id"], row["query"],
            round(row["bi_encoder"]["nDCG@10"], 4), round(row["rerank"]["nDCG@10"], 4), round(row["change"]["nDCG@10"], 4),
            row["first_relevant_rank"].get("bi_encoder"), row["first_relevant_rank"].get("rerank"),
            round(row["bi_encoder"]["RR@10"], 4), round(row["rerank"]["RR@10"], 4),
        ])
    return header, rows


def summary_markdown(report: ExperimentReport) -> str:
    """The three stages in words: corpus, how many queries re-ranking helped or hurt, models, time, notes."""
    changes = [row["change"]["nDCG@10"] for row in query_rows(report)]
    improved = sum(c > CHANGE_EPSILON for c in changes)
    hurt = sum(c < -CHANGE_EPSILON for c in changes)
    seconds = sum(report.timings_ms.values()) / 1000.0
    lines = [
        f"**{html.escape(report.corpus_name)}**: {report.corpus_size:,} documents, {report.query_count} labelled "
        f"queries, top-k {report.top_k}. Re-ranking improved nDCG@10 on **{improved}** queries, hurt **{hurt}**, "
        f"left {report.query_count - improved - hurt} unchanged.",
        f"Measures by trec_eval (ir_measures' pytrec_eval backend): gain = grade 0/1/2; grade ≥ 1 counts as "
        f"relevant for RR and recall. Stage (b) keeps the bi-encoder's order below the top-k, so its "
        f"R@{report.top_k} equals (a)'s. Models: {html.escape(report.models['bi'])}, "
        f"{html.escape(report.models['cross'])} ({report.runs_on['cross']}); {seconds:.1f} s in all.",
    ]
    lines += [f"*Note: {html.escape(note)}*" for note in report.notes]
    return "\n\n".join(lines)


def change_figure(report: ExperimentReport) -> go.Figure:
    """Per-query change in nDCG@10 from re-ranking: bars right = improved, left = hurt."""
    rows = sorted(query_rows(report), key=lambda r: r["change"]["nDCG@10"])
    colors = [IMPROVED if r["change"]["nDCG@10"] > CHANGE_EPSILON else HURT if r["change"]["nDCG@10"] < -CHANGE_EPSILON
              else SAME for r in rows]
    hover = [
        "<br>".join(textwrap.wrap(html.escape(r["query"]), 60))
        + f"<br>nDCG@10: {r['bi_encoder']['nDCG@10']:.3f} → {r['rerank']['nDCG@10']:.3f}"
        + f"<br>first relevant rank: {r['first_relevant_rank'].get('bi_encoder')} → {r['first_relevant_rank'].get('rerank')}"
        for r in rows
    ]
    figure = go.Figure(
        go.Bar(
            x=[r["change"]["nDCG@10"] for r in rows],
            y=[html.escape(r["query_id"]) for r in rows],
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


# ---- several pipelines against a baseline (an `ExperimentReport`) -------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _milliseconds(ms: float) -> float:
    """One decimal, or two significant digits below 1 ms (BM25 on a small corpus: 0.03, not 0)."""
    return float(f"{ms:.2g}") if ms < 1 else round(ms, 1)


def experiment_metrics_rows(report: ExperimentReport) -> tuple[list[str], list[list]]:
    """Header and one row per pipeline (then each external run): the mean of each measure, and ms per query."""
    header = ["pipeline"] + [mean_label(name) for name in report.measures] + ["ms/query"]
    rows = []
    for name in report.pipelines:
        ms = report.ms_per_query[name]
        label = f"{name} (imported run)" if name in report.external_runs else name
        if name == report.baseline:
            label += " (baseline)"
        rows.append([label] + [round(report.metrics[name][m], 4) for m in report.measures]
                    + ["n/a" if ms is None else _milliseconds(ms)])
    return header, rows


def significance_rows(report: ExperimentReport) -> tuple[list[str], list[list]]:
    """One row per (pipeline, measure) against the baseline: mean difference, 95% bootstrap CI,
    the three p-values and win/tie/loss counts over the queries."""
    header = ["pipeline", "measure", f"mean diff (minus {report.baseline})", "95% CI (bootstrap)",
              "p_t", "p_perm", "p_holm", "W / T / L"]
    rows = [
        [row.pipeline, row.measure, f"{row.mean_diff:+.3f}", f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}]",
         _number(row.p_t), _number(row.p_perm), _number(row.p_holm), f"{row.wins} / {row.ties} / {row.losses}"]
        for row in report.significance
    ]
    return header, rows


def significance_markdown(report: ExperimentReport) -> str:
    """What the significance table means, and a plain warning when there are too few queries."""
    if report.baseline is None or not report.significance:
        return "Pick a baseline and at least two pipelines to test the differences."
    held = [r for r in report.significance if r.p_holm < 0.05]
    lines = []
    if report.query_count < MIN_QUERIES_FOR_TESTS:
        lines.append(
            f"**Only {report.query_count} labelled queries: too few for these tests to mean anything.** "
            f"With fewer than {MIN_QUERIES_FOR_TESTS}, p-values and intervals swing with a single query; "
            "read the per-query differences below instead."
        )
    lines.append(
        f"Each row: the pipeline minus **{html.escape(report.baseline)}**, per query, averaged. "
        "p_t: paired t-test; p_perm: paired randomization (sign-flip) test; p_holm: p_perm after "
        f"Holm–Bonferroni over all {len(report.significance)} comparisons. W / T / L: queries where the "
        f"pipeline wins, ties, loses. **{len(held)}** of {len(report.significance)} differences hold at "
        "p_holm < 0.05."
    )
    return "\n\n".join(lines)


def experiment_summary_markdown(report: ExperimentReport) -> str:
    """The Markdown above the Evaluate tab's pipelines table: corpus, sizes, top-k, the re-ranker pairs scored
    and reused, how measures and ms/query are computed, and the report's notes; every name from the user is
    HTML-escaped."""
    pairs = ", ".join(f"{kind}: {counts['scored']:,} pairs scored, {counts['reused']:,} reused"
                      for kind, counts in report.reranker_pairs.items())
    lines = [
        f"**{html.escape(report.corpus_name)}**: {report.corpus_size:,} documents, {report.query_count} labelled "
        f"queries, top-k {report.top_k}; {len(report.pipelines)} rankings evaluated in one run"
        + (f" ({pairs})" if pairs else "") + ".",
        "Measures by trec_eval (ir_measures' pytrec_eval backend): gain = grade; grade ≥ 1 counts as relevant "
        "for RR and recall. ms/query: first-stage search plus re-ranking time per query (indexing and model "
        "loading not included); imported runs have no timing.",
    ]
    lines += [f"*Note: {html.escape(note)}*" for note in report.notes]
    return "\n\n".join(lines)


def _cost_ranks(report: ExperimentReport, names: list[str]) -> list[int]:
    """Each pipeline's place (0 = cheapest) in the order of ms per query."""
    order = sorted(names, key=lambda name: report.ms_per_query[name])
    return [order.index(name) for name in names]


def cost_quality_figure(report: ExperimentReport) -> go.Figure:
    """nDCG@10 against ms per query, one labelled point per pipeline; an imported run (no timing)
    is a dotted horizontal line at its nDCG@10."""
    timed = [name for name in report.pipelines if report.ms_per_query[name] is not None]
    figure = go.Figure(
        go.Scatter(
            x=[max(report.ms_per_query[name], 0.001) for name in timed],  # a log axis has no 0
            y=[report.metrics[name]["nDCG@10"] for name in timed],
            mode="markers+text",
            text=[html.escape(name) for name in timed],
            # Neighbours in cost take turns above and below their point, so close labels do not overlap.
            textposition=[("top center", "bottom center")[rank % 2] for rank in _cost_ranks(report, timed)],
            marker=dict(size=12, color=["#c62828" if name == report.baseline else "#1565c0" for name in timed]),
            hovertemplate="%{text}<br>nDCG@10 %{y:.3f}<br>%{x:.1f} ms / query<extra></extra>",
            name="pipelines",
        )
    )
    for name in report.pipelines:
        if report.ms_per_query[name] is None:
            figure.add_hline(y=report.metrics[name]["nDCG@10"], line_dash="dot", line_color="#6d28d9",
                             annotation_text=f"{html.escape(name)} (imported run, no timing)",
                             annotation_position="bottom right")
    values = [report.metrics[name]["nDCG@10"] for name in report.pipelines]
    low, high = min(values, default=0.0), max(values, default=1.0)
    pad = max(0.05, (high - low) * 0.15)
    figure.update_traces(cliponaxis=False)
    figure.update_layout(
        title="Cost against quality (red: the baseline)",
        xaxis_title="ms per query, this machine (log scale)",
        yaxis_title="nDCG@10 (mean, 0 to 1)",
        yaxis_range=[max(0.0, low - pad), min(1.08, high + pad)],
        height=420,
        margin=dict(l=10, r=30, t=50, b=50),
        template="plotly_white",
        showlegend=False,
    )
    # Costs span orders of magnitude (BM25 well under a millisecond, a cross-encoder hundreds): a log
    # axis keeps every point readable; the range leaves room for the labels at both ends.
    costs = [max(report.ms_per_query[name], 0.001) for name in timed]
    if costs:
        figure.update_xaxes(type="log", dtick=1, range=[math.log10(min(costs)) - 0.3, math.log10(max(costs)) + 0.3])
    return figure


def disagreement_rows(report: ExperimentReport, rows: list[dict], queries: dict[str, str]) -> tuple[list[str], list[list]]:
    """The queries where pipelines a and b disagree most: nDCG@10 of each, b minus a, Kendall's tau."""
    if not rows:
        return ["query id"], []
    a, b = rows[0]["a"], rows[0]["b"]
    header = ["query id", "query", f"nDCG@10 {a}", f"nDCG@10 {b}", f"difference ({b} minus {a})",
              "Kendall's τ of the top 10"]
    return header, [
        [row["query_id"], queries.get(row["query_id"], ""), round(row["value_a"], 4), round(row["value_b"], 4),
         round(row["diff"], 4), "n/a" if row["kendall_tau_union"] is None else round(row["kendall_tau_union"], 3)]
        for row in rows
    ]

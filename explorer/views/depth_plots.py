"""Figures and tables for the Evaluate tab's depth panel (`pipeline/depth_study.py`): quality and cost
against the re-rank depth, score distributions and the precision/recall/F1 of a threshold, the
reliability diagram, and the context budget; plotly, no gradio here."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.pipeline.depth import TOLERANCE
from explorer.pipeline.depth_study import DepthStudy
from explorer.pipeline.thresholds import threshold_sentence

COLORS = ["#1565c0", "#c62828", "#2e7d32", "#6d28d9", "#ef6c00", "#00838f", "#5d4037", "#ad1457"]
GRADE_COLORS = {"0": "#9e9e9e", "1": "#f9a825", "2": "#2e7d32", "unjudged": "#90a4ae"}


def depth_figure(study: DepthStudy) -> go.Figure:
    """nDCG@10 (solid) and R@k (dotted) on the left axis, ms per query (dashed) on the right, against k
    (log axis), one colour per pipeline; the chosen k of each pipeline is a star."""
    sweep = study.sweep
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for i, name in enumerate(sweep.pipelines):
        color, curve = COLORS[i % len(COLORS)], sweep.curves[name]
        ks = [p.k for p in curve]
        label = html.escape(name)
        figure.add_trace(go.Scatter(x=ks, y=[p.ndcg10 for p in curve], name=f"{label} nDCG@10", mode="lines+markers",
                                    line=dict(color=color), hovertemplate="k %{x}<br>nDCG@10 %{y:.3f}<extra></extra>"))
        figure.add_trace(go.Scatter(x=ks, y=[p.recall_k for p in curve], name=f"{label} R@k (first stage)",
                                    mode="lines", line=dict(color=color, dash="dot"),
                                    hovertemplate="k %{x}<br>R@k %{y:.3f}<extra></extra>"))
        figure.add_trace(go.Scatter(x=ks, y=[p.ms_per_query for p in curve], name=f"{label} ms/query",
                                    mode="lines+markers", line=dict(color=color, dash="dash"), marker=dict(symbol="square"),
                                    hovertemplate="k %{x}<br>%{y:.1f} ms / query<extra></extra>"),
                         secondary_y=True)
        pick, _ = sweep.chosen(name)
        figure.add_trace(go.Scatter(x=[pick.k], y=[pick.ndcg10], name=f"{label} chosen k = {pick.k}", mode="markers",
                                    marker=dict(symbol="star", size=16, color=color, line=dict(color="black", width=1)),
                                    hovertemplate=f"chosen k {pick.k}<br>nDCG@10 %{{y:.3f}}<extra></extra>"))
    figure.update_xaxes(type="log", title_text="re-rank depth k (log scale)", tickvals=sweep.depths,
                        ticktext=[str(k) for k in sweep.depths])
    figure.update_yaxes(title_text="nDCG@10 and R@k (mean, 0 to 1)", range=[0, 1.05], secondary_y=False)
    figure.update_yaxes(title_text="ms per query, this machine", rangemode="tozero", secondary_y=True, showgrid=False)
    figure.update_layout(title=f"Quality and cost against re-rank depth (star: smallest k within {TOLERANCE} of the best)",
                         height=460, margin=dict(l=10, r=10, t=60, b=50), template="plotly_white",
                         legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return figure


def depth_rows(study: DepthStudy) -> tuple[list[str], list[list]]:
    """One row per (pipeline, k): nDCG@10, MRR@10, R@k, ms per query, and which k is chosen."""
    header = ["pipeline", "k", "nDCG@10", "MRR@10", "R@k (first stage)", "ms / query", "chosen"]
    rows = []
    for name in study.sweep.pipelines:
        pick, _ = study.sweep.chosen(name)
        for p in study.sweep.curves[name]:
            rows.append([name, p.k, round(p.ndcg10, 4), round(p.rr10, 4), round(p.recall_k, 4),
                         round(p.ms_per_query, 1), "◀ chosen" if p.k == pick.k and "+" in name else ""])
    return header, rows


def depth_markdown(study: DepthStudy) -> str:
    """The sweep in words: one sentence per pipeline, the pairs scored and the notes."""
    sweep = study.sweep
    lines = [f"**{html.escape(sweep.corpus_name)}**: {sweep.corpus_size:,} documents, {sweep.query_count} labelled "
             f"queries, depths {', '.join(map(str, sweep.depths))}."]
    lines += [f"- {html.escape(sweep.sentence(name))}" for name in sweep.pipelines]
    scored = ", ".join(f"{html.escape(kind)} {count:,}" for kind, count in sweep.pairs_scored.items())
    lines.append(f"\nEach pair was scored once, for the deepest k, and reused for every smaller k: {scored or 'none'} "
                 f"pairs (at most {sweep.pair_ceiling:,}); the sweep took {sweep.sweep_ms / 1000:.1f} s. "
                 "ms per query: the first stage's measured query time plus the re-ranker's measured ms per pair x k.")
    lines += [f"- Note: {html.escape(note)}" for note in sweep.notes]
    return "\n".join(lines)


def threshold_markdown(study: DepthStudy) -> str:
    """The threshold panel in words: one sentence per re-ranker."""
    if not study.thresholds:
        return "No re-ranker among these pipelines: there is no score to threshold."
    return "\n".join(f"- {html.escape(threshold_sentence(result))}" for result in study.thresholds.values())


def threshold_figure(study: DepthStudy) -> go.Figure:
    """Per re-ranker (a row): its scores' histogram per grade, and precision / recall / F1 of keeping
    scores >= the threshold, with the F1-maximising threshold marked."""
    results = list(study.thresholds.values())
    rows = max(len(results), 1)
    titles = [t for r in results for t in (f"{html.escape(r['reranker'])}: score distribution per grade",
                                           f"{html.escape(r['reranker'])}: keep score ≥ threshold")]
    figure = make_subplots(rows=rows, cols=2, subplot_titles=titles or None, horizontal_spacing=0.1)
    for row, result in enumerate(results, start=1):
        for grade, values in result["distribution"].items():
            label = "unjudged (counted 0)" if grade == "unjudged" else f"grade {grade}"
            figure.add_trace(go.Histogram(x=values["scores"], name=f"{result['reranker']} {label}", opacity=0.6,
                                          marker_color=GRADE_COLORS.get(grade, "#455a64"), nbinsx=30,
                                          histnorm="probability",  # each grade's shape, whatever its count
                                          legendgroup=f"g{row}"), row=row, col=1)
        curve = result["curve"]
        for key, color in (("precision", "#1565c0"), ("recall", "#ef6c00"), ("f1", "#2e7d32")):
            figure.add_trace(go.Scatter(x=curve["threshold"], y=curve[key], name=f"{result['reranker']} {key}",
                                        mode="lines", line=dict(color=color), legendgroup=f"c{row}",
                                        hovertemplate=f"threshold %{{x:.3f}}<br>{key} %{{y:.3f}}<extra></extra>"),
                             row=row, col=2)
        best = result["best_f1"]
        figure.add_vline(x=best["threshold"], line_dash="dash", line_color="#424242", row=row, col=2,
                         annotation_text=f"best F1 {best['f1']:.2f} at {best['threshold']:.2f}",
                         annotation_position="top left")
        figure.update_xaxes(title_text="score", row=row, col=1)
        figure.update_xaxes(title_text="threshold (score)", row=row, col=2)
        figure.update_yaxes(title_text="share of the grade's pairs", row=row, col=1)
        figure.update_yaxes(range=[0, 1.05], row=row, col=2)
    figure.update_layout(barmode="overlay", height=380 * rows, margin=dict(l=10, r=10, t=60, b=40),
                         template="plotly_white", title="Where to cut the re-ranked list")
    return figure


def reliability_figure(study: DepthStudy) -> go.Figure:
    """The reliability diagram of each re-ranker with a probability column: share relevant against mean
    probability per bin (marker size: pairs in the bin), the diagonal, and the ECE in the legend."""
    figure = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                  line=dict(color="#9e9e9e", dash="dash")))
    names = []
    for i, result in enumerate(study.thresholds.values()):
        cal = result["calibration"]
        if cal is None:
            continue
        filled = [j for j, c in enumerate(cal["count"]) if c]
        names.append(result["probability_name"])
        figure.add_trace(go.Scatter(
            x=[cal["mean_probability"][j] for j in filled], y=[cal["fraction_relevant"][j] for j in filled],
            mode="lines+markers", name=f"{html.escape(result['reranker'])} {html.escape(result['probability_name'])}: "
                                       f"ECE {cal['ece']:.3f}",
            marker=dict(size=[8 + 20 * (cal["count"][j] / max(cal["count"])) ** 0.5 for j in filled],
                        color=COLORS[i % len(COLORS)]),
            customdata=[cal["count"][j] for j in filled],
            hovertemplate="mean p %{x:.3f}<br>relevant %{y:.3f}<br>%{customdata} pairs<extra></extra>"))
    what = " / ".join(dict.fromkeys(names)) or "no probability column"
    figure.update_layout(title=f"Reliability of the {html.escape(what)} column (10 equal-width bins)",
                         xaxis_title="mean probability in the bin", yaxis_title="share relevant (grade ≥ 1)",
                         xaxis_range=[0, 1], yaxis_range=[0, 1.05], height=420, template="plotly_white",
                         margin=dict(l=10, r=10, t=60, b=50), legend=dict(orientation="h", y=-0.2, x=0))
    return figure


def context_rows(study: DepthStudy) -> tuple[list[str], list[list]]:
    """One row per (pipeline, budget): documents that fit, tokens, sum of grades, recall of grade >= 1 (means)."""
    header = ["pipeline", "budget (tokens)", "documents in", "tokens used", "sum of grades in", "recall (grade ≥ 1)"]
    rows = [[name, budget, round(v["documents"], 2), round(v["tokens"], 1), round(v["grade_sum"], 3), round(v["recall"], 4)]
            for name, by_budget in study.context.items() for budget, v in by_budget.items()]
    return header, rows

"""Plotly figures drawn from a `Comparison`: stage timings, cost projection, score scatter, rank shifts.

Each function takes plain result objects and returns a `plotly.graph_objects.Figure`; no
gradio here. Document text shown in hover labels is HTML-escaped (plotly renders a subset
of HTML in labels and decodes the entities back for display).
"""

from __future__ import annotations

import html
import textwrap

import plotly.graph_objects as go

from explorer.pipeline.results import Comparison
from explorer.pipeline.costs import UnitCosts, dominant_stage, per_query_parts, projection_rows

MOVE_COLORS = {"up": "#16a34a", "down": "#dc2626", "same": "#94a3b8", "new": "#7c3aed"}  # by RerankedHit.move_kind
MOVE_NAMES = {"up": "moved up", "down": "moved down", "same": "same rank", "new": "not in bi-encoder top-k"}
STAGE_LABELS = {
    "model_loading": "Load models",
    "corpus_encoding": "Encode corpus (bi-encoder)",
    "corpus_indexing": "Index corpus (BM25, and the bi-encoder for hybrid)",
    "query_encoding": "Encode query (bi-encoder)",
    "query_tokenizing": "Tokenize query (BM25)",
    "search": "Search (FAISS index, BM25 scores)",
    "rerank_late": "Re-rank top-k (late interaction)",
    "rerank": "Re-rank top-k (cross-encoder)",
    "rerank_full_corpus": "Score whole corpus (last re-ranker)",
}
_LAYOUT = dict(
    template="plotly_white",
    margin=dict(l=10, r=20, t=48, b=40),
    font=dict(family="Inter, system-ui, sans-serif", size=12),
    hoverlabel=dict(align="left"),
)


def hover_text(text: str, width: int = 70, lines: int = 4) -> str:
    """User text for a hover label: shortened, wrapped, HTML-escaped."""
    wrapped = textwrap.wrap(" ".join(text.split()), width=width)
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] += " …"
    return "<br>".join(html.escape(line) for line in wrapped)


def format_duration(seconds: float) -> str:
    """A duration with a unit a person reads at a glance (ms, s, min, h, days, years)."""
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _rate(count: int, ms: float, unit: str) -> str:
    return f"{count / (ms / 1000):,.0f} {unit}/s" if ms > 0 else f"n/a {unit}/s"


def timings_figure(result: Comparison) -> go.Figure:
    """Horizontal bars of each stage's wall time (ms), with pairs/s and documents/s."""
    timings = result.timings_ms
    stages = [name for name in STAGE_LABELS if name in timings]
    labels, values, notes, colors = [], [], [], []
    for name in stages:
        ms = timings[name]
        label = STAGE_LABELS[name]
        note = f"{ms:,.1f} ms"
        if name == "corpus_encoding":
            if result.corpus_index_cached:
                label += " — cached"
            else:
                note += f" · {_rate(result.corpus_size, ms, 'documents')}"
        elif name == "rerank":
            note += f" · {_rate(len(result.reranked), ms, 'pairs')}"
        elif name == "rerank_full_corpus":
            note += f" · {_rate(result.corpus_size, ms, 'pairs')}"
        labels.append(label)
        values.append(ms)
        notes.append(note)
        colors.append("#f59e0b" if "cross" in label else "#2563eb" if "bi-encoder" in label else "#94a3b8")
    figure = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            text=notes,
            textposition="auto",
            marker_color=colors,
            hovertemplate="%{y}<br>%{x:,.1f} ms<extra></extra>",
        )
    )
    precision = result.runs_on
    figure.update_layout(
        **_LAYOUT,
        title=dict(
            text=f"Time per stage — total {timings.get('total', sum(values)):,.0f} ms "
            f"<span style='font-size:11px;color:#64748b'>({html.escape(result.first_stage_label)} {html.escape(precision['first_stage'])}, "
            f"re-ranker {html.escape(precision.get('reranker', 'none'))})</span>",
            font=dict(size=14),
        ),
        xaxis_title="wall time (ms, time.perf_counter)",
        yaxis=dict(autorange="reversed"),
        height=80 + 42 * len(stages),
        showlegend=False,
    )
    return figure


def projection_markdown(costs: UnitCosts, n: int) -> str:
    """The answer to "what would this take for N documents?" as a Markdown table, and which stage dominates."""
    rerank_costs = "".join(f", {ms:.2f} ms per {name} pair" for name, ms in costs.rerankers)
    lines = [
        f"**What would this take for {n:,} documents?** Projected from measured costs on this machine: "
        f"{costs.index_ms:.3f} ms to index a document ({costs.index_measured_on}), "
        f"{costs.query_ms:.1f} ms per {costs.first_stage} query{rerank_costs}.",
    ]
    if costs.rerankers:
        name, share = dominant_stage(costs)
        queries = n * costs.index_ms / max(sum(ms for _, ms in per_query_parts(costs)), 1e-9)
        lines.append(f"Per query, **{name}** dominates ({share:.0%} of the query's time); indexing {n:,} documents "
                     f"once costs as much as {queries:,.0f} queries.")
    lines += ["", "| task | work | projected time |", "|---|---|---|"]
    lines += [f"| {task} | {work} | {format_duration(seconds)} |" for task, work, seconds in projection_rows(costs, n)]
    return "\n".join(lines)


def projection_figure(costs: UnitCosts, n: int) -> go.Figure:
    """Projected time (log-log) against corpus size for each way of using the models that ran."""
    sizes = sorted({int(10 ** (e / 4)) for e in range(4, 25)} | {n})
    per_query = sum(ms for _, ms in per_query_parts(costs)) / 1000
    series = [
        (f"{costs.first_stage}: index N (once)", [s * costs.index_ms / 1000 for s in sizes], "#2563eb", "solid"),
        ("the pipeline as run (per query)", [per_query] * len(sizes), "#16a34a", "dot"),
        (f"{costs.pair_model}: all N (per query)", [s * costs.pair_ms / 1000 for s in sizes], "#f59e0b", "solid"),
        (f"{costs.pair_model}: every pair (clustering)", [s * (s - 1) / 2 * costs.pair_ms / 1000 for s in sizes], "#dc2626", "dash"),
    ]
    figure = go.Figure()
    for name, seconds, color, dash in series:
        figure.add_trace(
            go.Scatter(
                x=sizes,
                y=[max(value, 1e-4) for value in seconds],
                name=name,
                mode="lines",
                line=dict(color=color, dash=dash, width=2.5),
                customdata=[format_duration(value) for value in seconds],
                hovertemplate="N = %{x:,}<br>%{customdata}<extra>" + html.escape(name) + "</extra>",
            )
        )
    figure.add_vline(x=n, line=dict(color="#64748b", dash="dot"), annotation_text=f"N = {n:,}")
    ticks = [1e-3, 1, 60, 3600, 86400, 365 * 86400]
    figure.update_layout(
        **_LAYOUT,
        title=dict(text="Projected time against corpus size (from measured per-item costs)", font=dict(size=14)),
        xaxis=dict(type="log", title="N documents"),
        yaxis=dict(type="log", title="projected wall time", tickvals=ticks, ticktext=["1 ms", "1 s", "1 min", "1 h", "1 day", "1 year"]),
        legend=dict(orientation="h", y=-0.25),
        height=400,
    )
    return figure


def _names(result: Comparison) -> tuple[str, str, str, str]:
    """(first stage, its score, last re-ranker, its score) as the plots label them."""
    last = result.stages[-1]
    reranker = {"cross": "cross-encoder", "late": "late interaction"}.get(last.kind, last.kind)
    first = {"lexical": "BM25", "hybrid": "hybrid"}.get(result.first_stage_kind, "bi-encoder")
    return first, result.first_score_name, reranker, last.score_name


def scatter_figure(result: Comparison) -> go.Figure:
    """First-stage score (x, e.g. cosine) against the re-ranker's (y, e.g. logit), one point per scored document."""
    first, first_score, reranker, reranker_score = _names(result)
    hits = result.scored_hits()
    figure = go.Figure()
    for kind, name in MOVE_NAMES.items():
        members = [h for h in hits if h.move_kind == kind]
        if not members:
            continue
        color = MOVE_COLORS[kind]
        figure.add_trace(
            go.Scatter(
                x=[h.first_score for h in members],
                y=[h.score for h in members],
                mode="markers",
                name=name,
                marker=dict(color=color, size=11, line=dict(width=1, color="white"), opacity=0.9),
                customdata=[
                    [html.escape(h.id), hover_text(h.text), h.first_rank, h.rank] for h in members
                ],
                hovertemplate=(
                    "<b>[%{customdata[0]}]</b> %{customdata[1]}<br>"
                    f"{first_score} %{{x:.3f}} · {reranker_score} %{{y:.2f}}<br>"
                    f"{first} #%{{customdata[2]}} → {reranker} #%{{customdata[3]}}<extra></extra>"
                ),
            )
        )
    figure.update_layout(
        **_LAYOUT,
        title=dict(text=f"Do the two agree? {first} {first_score} vs {reranker} {reranker_score}", font=dict(size=14)),
        xaxis_title=f"{first} score ({'cosine similarity' if first_score == 'cosine' else first_score})",
        yaxis_title=f"{reranker} score ({reranker_score})",
        legend=dict(orientation="h", y=-0.2),
        height=400,
    )
    return figure


def slope_figure(result: Comparison) -> go.Figure:
    """One line per document from its first-stage rank (left) to its re-ranked rank (right)."""
    first, _, reranker, _ = _names(result)
    k = result.top_k
    outside = k + 1.5  # where documents beyond the top-k sit, so one far rank does not squash the rest
    shown = result.shown_reranked()
    lines = [(h.first_rank, h.rank, h) for h in shown]
    if result.reranked_full is not None:  # bi-encoder candidates the cross-encoder pushed out
        shown_ids = {h.id for h in shown}
        lines += [(h.first_rank, h.rank, h) for h in result.reranked_full if h.in_candidates and h.id not in shown_ids]
    figure = go.Figure()
    for first_rank, cross_rank, hit in lines:
        left = first_rank if first_rank <= k else outside
        right = cross_rank if cross_rank <= k else outside
        color = MOVE_COLORS[hit.move_kind]
        label = f"[{html.escape(hit.id)}] {hover_text(hit.text, width=60, lines=2)}"
        figure.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[left, right],
                mode="lines+markers",
                line=dict(color=color, width=3 if left != right else 1.5),
                marker=dict(size=9, color=color),
                showlegend=False,
                # User text goes through customdata, never into the template itself.
                customdata=[[label, first_rank, cross_rank]] * 2,
                hovertemplate=f"%{{customdata[0]}}<br>{first} #%{{customdata[1]}} → {reranker} #%{{customdata[2]}}<extra></extra>",
            )
        )
        figure.add_annotation(x=0, y=left, text=html.escape(hit.id[:14]), xanchor="right", showarrow=False, xshift=-8, font=dict(size=10))
    ticks = list(range(1, k + 1)) + ([outside] if result.reranked_full is not None else [])
    figure.update_layout(
        **_LAYOUT,
        title=dict(text=f"Rank shift: {first} rank → {reranker} rank", font=dict(size=14)),
        xaxis=dict(tickvals=[0, 1], ticktext=[f"{first} rank", f"{reranker} rank"], range=[-0.35, 1.1]),
        yaxis=dict(
            autorange="reversed",
            tickvals=ticks,
            ticktext=[str(t) for t in range(1, k + 1)] + ([f">{k}"] if result.reranked_full is not None else []),
            title="rank (1 = best)",
        ),
        height=max(320, 60 + 30 * len(ticks)),
    )
    return figure

"""Plotly figures and HTML for one inspected pair: heatmaps, head grid, attributions.

Plotly reads a subset of HTML in labels, so every token or word from user text is
HTML-escaped first. Axes are numeric with escaped tick labels, so repeated tokens ("the",
"the") stay separate cells instead of being merged as one category.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.interpret.attribution import Attribution, GradientAttribution
from explorer.interpret.attention import AttentionBlock, PairInspection, cross_attention_matrix
from explorer.interpret.token_similarity import TokenSimilarity
from explorer.views.templating import render

DIRECTION_TITLES = {
    "query_to_doc": ("query token (attends)", "document token (attended to)"),
    "doc_to_query": ("document token (attends)", "query token (attended to)"),
}


def escape_labels(labels: list[str]) -> list[str]:
    # Only <, > and & matter to plotly's label markup; an escaped quote would show as &quot;.
    return [html.escape(label, quote=False) for label in labels]


def _layer_text(layer) -> str:
    return "mean over layers" if layer == "mean" else f"layer {layer}"


def _describe(layer, head) -> str:
    head_text = {"mean": "mean over heads", "max": "max over heads"}.get(head, f"head {head}")
    return f"{_layer_text(layer)}, {head_text}"


def _cell_size(count: int) -> int:
    return max(14, min(28, 900 // max(count, 1)))


MIN_PLOT_HEIGHT = 180
# Past this many tokens on an axis, every k-th is labelled (hover still names each cell):
# 500 labels overlap into a black band. Drag a box on the plot to zoom into a stretch.
MAX_TICK_LABELS = 80


def _ticks(labels: list[str]) -> dict:
    step = max(1, -(-len(labels) // MAX_TICK_LABELS))  # an empty axis still gets a valid step
    return {"tickvals": list(range(0, len(labels), step)), "ticktext": labels[::step]}


def _token_heatmap(
    values: np.ndarray, row_labels: list[str], col_labels: list[str], value_hover: str, title: str,
    row_title: str, col_title: str, joiner: str = "→", **colors,
) -> go.Figure:
    """One cell per (row, column) token on numeric axes, labelled with the escaped tokens."""
    rows, cols = escape_labels(row_labels), escape_labels(col_labels)
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(range(len(cols))),
            y=list(range(len(rows))),
            text=[[f"{r} {joiner} {c}" for c in cols] for r in rows],
            hovertemplate="%{text}<br>" + value_hover + "<extra></extra>",
            **colors,
        )
    )
    figure.update_layout(
        title={"text": title},
        xaxis={"title": col_title, **_ticks(cols), "tickangle": -60},
        yaxis={"title": row_title, **_ticks(rows), "autorange": "reversed"},
        # The plot area keeps at least MIN_PLOT_HEIGHT px: a two-word query would get ~40 px and
        # a colour bar too short for its labels.
        height=min(1400, 220 + max(MIN_PLOT_HEIGHT, _cell_size(len(rows)) * len(rows))),
        margin={"l": 120, "r": 20, "t": 80, "b": 140},
    )
    return figure


def attention_heatmap(block: AttentionBlock) -> go.Figure:
    """Rows attend, columns are attended to; hover gives both tokens and the weight."""
    row_title, col_title = DIRECTION_TITLES[block.direction]
    if block.word_level:
        row_title, col_title = row_title.replace("token", "word"), col_title.replace("token", "word")
    merge = " (words: sum over attended pieces, mean over attending pieces)" if block.word_level else ""
    return _token_heatmap(
        block.values, block.row_labels, block.col_labels, "%{z:.4f}",
        f"Cross-attention, {_describe(block.layer, block.head)}<br><sup>{block.unit}{merge}</sup>",
        row_title, col_title,
        colorscale="Blues", zmin=0, colorbar={"title": {"text": "weight", "side": "right"}},
    )


def head_grid(
    inspection: PairInspection, layer, direction: str = "query_to_doc", include_special: bool = False,
    renormalize: bool = False, columns: int = 4,
) -> go.Figure:
    """Small multiples: the cross-attention block of every head of one layer, on one colour scale."""
    heads = inspection.num_heads
    rows = -(-heads // columns)
    blocks = [
        cross_attention_matrix(inspection, layer, h, direction, include_special, False, renormalize) for h in range(heads)
    ]
    top = max(float(b.values.max()) for b in blocks) or 1.0
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[f"head {h}" for h in range(heads)],
                           horizontal_spacing=0.03, vertical_spacing=0.06)
    row_labels, col_labels = escape_labels(blocks[0].row_labels), escape_labels(blocks[0].col_labels)
    hover = [[f"{r} → {c}" for c in col_labels] for r in row_labels]
    for h, block in enumerate(blocks):
        figure.add_trace(
            go.Heatmap(z=block.values, text=hover, hovertemplate=f"head {h}<br>%{{text}}<br>%{{z:.4f}}<extra></extra>",
                       coloraxis="coloraxis"),
            row=h // columns + 1, col=h % columns + 1,
        )
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False, autorange="reversed")
    row_title, col_title = DIRECTION_TITLES[direction]
    figure.update_layout(
        title={"text": f"Every head of {_layer_text(layer)}: rows = {row_title}, columns = {col_title}"
                       f"<br><sup>{blocks[0].unit}; one shared colour scale</sup>"},
        coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": top, "colorbar": {"title": {"text": "weight"}}},
        height=200 * rows + 120,
        margin={"l": 20, "r": 20, "t": 90, "b": 20},
    )
    return figure


def attribution_bars(attribution: Attribution, gradient: GradientAttribution | None = None) -> go.Figure:
    """One bar per document word, in reading order: logit change when the word is removed."""
    words = escape_labels([w.word for w in attribution.words])
    deltas = np.array([w.delta for w in attribution.words], dtype=float)
    colors = ["#2e7d32" if d < 0 else "#c62828" for d in deltas]
    positions = list(range(len(words)))
    figure = go.Figure(
        go.Bar(
            x=deltas, y=positions, orientation="h", marker_color=colors, name="occlusion",
            text=words, hovertemplate="%{text}: %{x:+.3f} logit when removed<extra></extra>",
        )
    )
    if gradient is not None and len(gradient.words) == len(words):
        # Negated so both bars point the same way: left = the word pushed the score up.
        figure.add_trace(go.Bar(
            x=-gradient.scores, y=positions, orientation="h", name="−(gradient × input)",
            marker_color="rgba(90,90,90,0.45)", text=words,
            hovertemplate="%{text}: gradient × input %{customdata:+.3f} logit (first-order)<extra></extra>",
            customdata=gradient.scores,
        ))
    figure.update_layout(
        title={"text": f"Occlusion: logit change when each word is removed (full logit {attribution.full_logit:.3f})"
                       "<br><sup>green, left: removing it lowers the score (the word helped); red, right: it hurt</sup>"},
        xaxis={"title": "Δ logit (without word − full)", "zeroline": True},
        yaxis={"tickvals": positions, "ticktext": words, "autorange": "reversed"},
        barmode="group",
        height=min(2400, 160 + 20 * len(words) * (2 if gradient is not None else 1)),
        margin={"l": 120, "r": 20, "t": 80, "b": 50},
        showlegend=gradient is not None,
    )
    return figure


CUT_MARK = "✂ the model stops reading here"


def attribution_html(document: str, attribution: Attribution, cut_char: int | None = None, max_length: int = 512) -> str:
    """The document with each word shaded by its occlusion delta, and what the model never read
    (past `cut_char`) greyed after a mark; all text escaped (templates/attribution.html.j2)."""
    largest = max((abs(w.delta) for w in attribution.words), default=0.0) or 1.0
    segments, cursor = [], 0
    for word in attribution.words:
        segments.append((document[cursor : word.start], None))
        strength = min(1.0, abs(word.delta) / largest)
        segments.append((document[word.start : word.end], {
            "color": "46,125,50" if word.delta < 0 else "198,40,40", "alpha": 0.08 + 0.72 * strength,
            "title": f"{word.delta:+.3f} logit when removed"}))
        cursor = word.end
    end = len(document) if cut_char is None else max(cursor, cut_char)
    segments.append((document[cursor:end], None))
    unread = document[end:] if cut_char is not None and end < len(document) else None
    return render(
        "attribution.html.j2", segments=segments, unread=unread, unread_from=end, cut_mark=CUT_MARK,
        max_length=max_length, words_cut=attribution.words_cut, words_per_span=attribution.words_per_span,
    )


def token_similarity_heatmap(similarity: TokenSimilarity) -> go.Figure:
    """Bi-encoder: cosine of contextual token vectors from two separate passes."""
    return _token_heatmap(
        similarity.similarity, similarity.query_tokens, similarity.doc_tokens, "cosine %{z:.3f}",
        f"Bi-encoder token vectors, query and document encoded separately: pooled cosine "
        f"{similarity.pooled_cosine:.3f}<br><sup>{html.escape(similarity.model_name)}; the texts meet "
        "only in that one final cosine</sup>",
        "query token", "document token", joiner="·",
        colorscale="RdBu", reversescale=True, zmid=0, colorbar={"title": {"text": "cosine"}},
    )

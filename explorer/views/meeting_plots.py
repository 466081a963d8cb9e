"""How the texts meet, per architecture, for one pair: three narrow figures side by side, each
with the document's tokens down the rows and the query's across the columns.

- cross-encoder: query and document in one pass; its query → document attention (mean over
  layers and heads), one of many things that reach the score;
- late interaction: separate passes; each query token takes its best document token (a ring
  marks it), and the score is the sum of those best cosines (MaxSim);
- bi-encoder: separate passes; token cosines exist, but the score is one pooled cosine.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from explorer.interpret.attention import AttentionBlock
from explorer.interpret.late_alignment import LateAlignment
from explorer.interpret.token_similarity import TokenSimilarity
from explorer.views.attention_plots import _token_heatmap, escape_labels

ROW_TITLE, COL_TITLE = "document token", "query token"


def cross_encoder_meeting(block: AttentionBlock, model_name: str) -> go.Figure:
    """Heatmap of the cross-encoder's query -> document attention (`block`, mean over layers and heads;
    weights 0-1): the one pass in which query and document meet."""
    return _token_heatmap(
        block.values.T, block.col_labels, block.row_labels, "attention %{z:.4f}",
        f"Cross-encoder: one pass<br><sup>query → document attention, mean over layers and heads<br>"
        f"{html.escape(model_name)}</sup>", ROW_TITLE, COL_TITLE, joiner="←",
        colorscale="Blues", zmin=0, colorbar={"title": {"text": "weight"}},
    )


def late_interaction_meeting(alignment: LateAlignment) -> go.Figure:
    """Heatmap of late interaction's (query token, document token) cosines, each query token's best document
    token ringed; the ringed cosines sum to the MaxSim score in the title."""
    figure = _token_heatmap(
        alignment.similarity.T, alignment.doc_tokens, alignment.query_tokens, "cosine %{z:.3f}",
        f"Late interaction: MaxSim {alignment.score:.3f}<br><sup>= Σ over query tokens of the ringed best cosine<br>"
        f"{html.escape(_short(alignment.model_name))}</sup>", ROW_TITLE, COL_TITLE, joiner="·",
        colorscale="RdBu", reversescale=True, zmid=0, colorbar={"title": {"text": "cosine"}},
    )
    query = escape_labels(alignment.query_tokens)
    figure.add_trace(go.Scatter(
        x=list(range(len(query))), y=[int(b) for b in alignment.best], mode="markers",
        marker={"symbol": "circle-open", "size": 16, "color": "#000000", "line": {"width": 3}},
        customdata=[[q, float(c)] for q, c in zip(query, alignment.contributions)],
        hovertemplate="%{customdata[0]}: best match, adds %{customdata[1]:.3f} to MaxSim<extra></extra>",
        showlegend=False,
    ))
    return figure


def _short(name: str) -> str:
    """The late-interaction name up to its first colon (the title's room); the hover and the
    Compare tab carry the whole of it."""
    return name.split(":")[0]


def bi_encoder_meeting(similarity: TokenSimilarity) -> go.Figure:
    """Heatmap of the bi-encoder's contextual token cosines beside the pooled sentence cosine in the title,
    which is all retrieval uses (the token cosines are not)."""
    return _token_heatmap(
        similarity.similarity.T, similarity.doc_tokens, similarity.query_tokens, "cosine %{z:.3f}",
        f"Bi-encoder: pooled cosine {similarity.pooled_cosine:.3f}<br><sup>separate passes; these token cosines "
        f"are not used<br>{html.escape(similarity.model_name)}</sup>", ROW_TITLE, COL_TITLE,
        joiner="·", colorscale="RdBu", reversescale=True, zmid=0, colorbar={"title": {"text": "cosine"}},
    )

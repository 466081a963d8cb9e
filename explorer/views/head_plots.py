"""Figures and HTML for head importance and patching: layers x heads grids, per-layer bars, top heads.

Every number is labelled with what it is: a change in the cross-encoder's logit when a part is
removed (ablation), or B's logit move when a part is taken from A's run (patching). Cells are
numeric (layer, head); no user text reaches a label except through the autoescaped template.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.interpret.attention import PairInspection
from explorer.interpret.heads import FULL_PATCH_NOTE, MODES, POSITIONS, HeadImportance, HeadPatching
from explorer.views.templating import render

# Red: removing the part lowers the logit (it was helping the pair); blue: raises it (RdBu runs red to blue).
DIVERGING = "RdBu"


def _grid(values, title: str, colorbar: str, hover: str, symmetric: bool = True) -> go.Figure:
    z = np.asarray(values, dtype=float)
    layers, heads = z.shape
    extent = float(np.abs(z).max()) or 1.0
    colors = {"colorscale": DIVERGING, "zmin": -extent, "zmax": extent} if symmetric else {"colorscale": "Viridis"}
    figure = go.Figure(go.Heatmap(
        z=z.tolist(), x=list(range(heads)), y=list(range(layers)), colorbar={"title": colorbar},
        hovertemplate=f"layer %{{y}}, head %{{x}}<br>{hover}: %{{z:.3f}}<extra></extra>", **colors,
    ))
    figure.update_layout(
        title=title, height=80 + 30 * layers, margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis={"title": "head (0-based)", "dtick": 1}, yaxis={"title": "layer (0-based)", "dtick": 1, "autorange": "reversed"},
    )
    return figure


def head_importance_grid(result: HeadImportance) -> go.Figure:
    """Layers x heads: the logit change when each head is removed (None when only the per-layer view ran)."""
    if result.heads is None:
        return None
    return _grid(result.heads, f"Logit change when each head is removed ({result.mode}-ablation)",
                 "Δ logit", "logit change when removed")


def attention_share_grid(inspection: PairInspection) -> go.Figure:
    """Layers x heads: the attention weight the query's tokens put on the document's tokens
    (summed over document tokens, averaged over query tokens), of the same pair."""
    weights = inspection.attentions[:, :, inspection.query_index][:, :, :, inspection.doc_index]
    share = weights.sum(axis=-1).mean(axis=-1) if weights.size else np.zeros(inspection.attentions.shape[:2])
    return _grid(share, "Attention: share of each query token's weight on the document",
                 "share", "query → document attention share", symmetric=False)


def block_bars(result: HeadImportance) -> go.Figure:
    """Per layer, the logit change when its whole attention block or feed-forward block is removed."""
    layers = list(range(len(result.attention)))
    figure = go.Figure([
        go.Bar(x=layers, y=result.attention, name="attention block removed",
               hovertemplate="layer %{x}: %{y:+.3f} logit<extra>attention</extra>"),
        go.Bar(x=layers, y=result.feed_forward, name="feed-forward block removed",
               hovertemplate="layer %{x}: %{y:+.3f} logit<extra>feed-forward</extra>"),
    ])
    figure.update_layout(
        barmode="group", title=f"Per layer: logit change when a whole block is removed ({result.mode}-ablation)",
        height=320, margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis={"title": "layer (0-based)", "dtick": 1}, yaxis={"title": "Δ logit"},
    )
    return figure


def patching_grid(result: HeadPatching) -> go.Figure:
    """Layers x heads: B's logit move when that head's output at the query positions comes from A."""
    if result.heads is None:
        return None
    return _grid(result.heads, f"B's logit move when one head is taken from A (gap A − B = {result.gap:+.3f})",
                 "Δ logit of B", "B's logit move")


def head_importance_html(result: HeadImportance, k: int = 5) -> str:
    """The pair's logit, the cost, and the k heads that matter most, as an ordered list."""
    return render("heads.html.j2", result=result, mode_meaning=MODES[result.mode], top=result.top_heads(k))


def head_patching_html(result: HeadPatching, k: int = 5) -> str:
    """A's and B's logits, the whole patch's move, and the k heads that carry most of the gap."""
    return render("patching.html.j2", result=result, positions_meaning=POSITIONS[result.positions],
                  top=result.top_heads(k), everything_share=result.share(result.everything),
                  layer_shares=[result.share(move) for move in result.layers], note=FULL_PATCH_NOTE)

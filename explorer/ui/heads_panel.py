"""The Inspect tab's "Head importance" panel: which heads and blocks of the cross-encoder matter
for the inspected pair (ablation), beside where its heads looked (attention), and which heads
carry the gap between that document (A) and a second one (B) by patching.

Only arranges what `interpret/heads.py` computes, on the fp32 rescoring model, so every cell
is an exact rescoring. One grid is 169 copies of the pair in a few batched passes; the page
shows their progress, and a pair past the budget gets the per-layer view with the reason.
"""

from __future__ import annotations

import gradio as gr

from explorer.interpret.heads import grid_work, head_importance, head_patching
from explorer.interpret.pair import encode_pair, rescoring_model
from explorer.ui.lanes import by_work, event_lane, gradio_progress
from explorer.views.head_plots import (
    attention_share_grid,
    block_bars,
    head_importance_grid,
    head_importance_html,
    head_patching_html,
    patching_grid,
)

HEADS_NOTE = (
    "The attention heatmap shows where each head looked; this grid shows what each head's output did: the "
    "pair is scored again with that head removed, and the cell is the change in the logit. A head can look "
    "hard at the document and change nothing, or look a little and carry the score."
)
MODE_CHOICES = [("zero-ablation (the head's output set to 0)", "zero"),
                ("mean-ablation (set to its mean over the pair's tokens)", "mean")]
POSITION_CHOICES = [("query tokens", "query"), ("[CLS] + query + [SEP] (all heads patched gives A's logit)", "query_segment")]


def _progress_of(progress: gr.Progress, what: str):
    return lambda done, total: progress((done, total), desc=what, unit="copies of the pair")


def compute_heads(pair, mode, progress=gr.Progress()):
    """The head grid, the per-layer blocks and the top heads of the inspected pair."""
    if pair is None:
        raise gr.Error("Inspect a pair first.")
    query, document, cross_encoder = pair
    scorer = rescoring_model(cross_encoder)
    encoded = encode_pair(scorer, query, document)
    with by_work(grid_work(scorer, encoded), "a head grid", gradio_progress(progress)):
        result = head_importance(scorer, encoded, mode or "zero",
                                 progress=_progress_of(progress, "removing each head in turn"))
    return head_importance_html(result), head_importance_grid(result), block_bars(result)


def patch_heads(pair, versus, positions, progress=gr.Progress()):
    """B run with each head's output at the query positions taken from A (the inspected document)."""
    if pair is None:
        raise gr.Error("Inspect a pair first.")
    query, document, cross_encoder = pair
    scorer = rescoring_model(cross_encoder)
    encoded_b = encode_pair(scorer, query, versus)
    with by_work(grid_work(scorer, encoded_b), "patching heads", gradio_progress(progress)):
        result = head_patching(scorer, encode_pair(scorer, query, document), encoded_b, positions or "query",
                               progress=_progress_of(progress, "patching each head from A into B"))
    return head_patching_html(result), patching_grid(result)


def build_heads_panel(pair: gr.State, attention_of) -> None:
    """The panel's components and events, inside the caller's open Tab; `attention_of(pair)` gives
    the pair's kept attention (a PairInspection) for the attention grid beside the head grid.
    A newly inspected pair clears what was drawn for the last one."""
    gr.Markdown(HEADS_NOTE)
    with gr.Row():
        mode = gr.Radio(MODE_CHOICES, value="zero", label="Remove a head by", scale=3)
        run = gr.Button("Remove each head in turn (169 rescorings, batched)", elem_id="heads-run", scale=2)
    summary = gr.HTML(elem_id="heads-summary")
    with gr.Row(equal_height=False):
        grid = gr.Plot(label="Logit change when each head is removed", elem_id="heads-grid")
        attention = gr.Plot(label="Where the heads looked (same pair)", elem_id="heads-attention-grid")
    blocks = gr.Plot(label="Per layer: attention / feed-forward block removed", elem_id="heads-blocks")
    gr.Markdown("**Patching A into B.** A is the inspected document; B another document for the same query. "
                "B is scored again with one head's output at the query positions taken from A's run: how much "
                "of the gap A − B does that head carry?")
    with gr.Row():
        versus = gr.Textbox(label="Document B", lines=2, scale=4, elem_id="heads-versus")
        positions = gr.Radio(POSITION_CHOICES, value="query", label="Patch at", scale=2)
    patch_run = gr.Button("Patch each head from A into B", elem_id="heads-patch-run")
    patch_summary = gr.HTML(elem_id="heads-patch-summary")
    patch_grid = gr.Plot(label="B's logit move when one head is taken from A", elem_id="heads-patch-grid")

    def draw_attention(pair_value):
        # From the attention kept for the inspected pair: no model pass.
        return None if pair_value is None else attention_share_grid(attention_of(pair_value))

    # The attention grid first (instant), then the 169 rescorings with their progress.
    run.click(draw_attention, [pair], [attention], api_visibility="private").then(
        compute_heads, [pair, mode], [summary, grid, blocks], api_visibility="private", **event_lane("heads"))
    patch_run.click(patch_heads, [pair, versus, positions], [patch_summary, patch_grid], api_visibility="private",
                    **event_lane("heads"))
    # On the pair itself, not after the Inspect chain: that ends after occlusion, and would wipe a
    # grid computed meanwhile for the same pair.
    pair.change(lambda: ("", None, None, None, "", None), None,
                [summary, grid, attention, blocks, patch_summary, patch_grid], api_visibility="private",
                show_progress="hidden")

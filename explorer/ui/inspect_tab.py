"""The "Inspect a pair" tab: attention, attribution, how three architectures meet the texts,
long documents, and the attribution methods side by side, for one pair.

Only arranges what `interpret/` computes and `views/` draws. The model runs once per
"Inspect" click; changing layer, head or view redraws from the kept attention weights. The
slower extras (method comparison with Integrated Gradients, passage scores) run on their own
buttons.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from explorer.views import attention_plots as plots
from explorer.interpret.attribution import gradient_attribution, occlusion_attribution, occlusion_spans
from explorer.views.bertviz_views import bertviz_iframe
from explorer.errors import ExplorerError
from explorer.data.teaching_examples import INSPECT_EXAMPLE
from explorer.interpret.attention import ATTENTION_NOTE, PairInspection, cross_attention_matrix, inspected_pair
from explorer.interpret.pair import encode_pair
from explorer.rankers.bi_encoder import load_bi_encoder
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER, model_choices
from explorer.interpret.token_similarity import bi_encoder_token_similarity
from explorer.interpret.contrast import agreement_of, every_method
from explorer.interpret.late_alignment import late_alignment
from explorer.interpret.pair import rescoring_model
from explorer.interpret.passages import passage_scores
from explorer.rankers.late_interaction import load_late_interaction
from explorer.views.long_document import passage_scores_html
from explorer.views.meeting_plots import bi_encoder_meeting, cross_encoder_meeting, late_interaction_meeting
from explorer.views.methods_html import methods_html
from explorer.budgets import MAX_INSPECT_DOCUMENT_CHARS, MAX_OCCLUSION_PASSES, token_counts
from explorer.interpret.integrated_gradients import IG_STEPS
from explorer.interpret.passages import STRIDE_TOKENS, WINDOW_TOKENS
from explorer.ui.lanes import by_work, event_lane, gradio_progress
from explorer.ui.messages import shown_error
from explorer.ui.heads_panel import build_heads_panel

DIRECTIONS = [("query → document", "query_to_doc"), ("document → query", "doc_to_query")]


def layer_choices(num_layers: int) -> list[str]:
    """The layer dropdown's choices for a model of `num_layers` layers: "mean", then "0" .. str(num_layers -
    1)."""
    return ["mean"] + [str(i) for i in range(num_layers)]


def head_choices(num_heads: int) -> list[str]:
    """The head dropdown's choices for `num_heads` heads per layer: "mean", "max", then "0" .. str(num_heads -
    1)."""
    return ["mean", "max"] + [str(i) for i in range(num_heads)]


# The default cross-encoder's 12 layers of 12 heads, until a pair is inspected (see fit_choices).
LAYERS, HEADS = layer_choices(12), head_choices(12)


@dataclass
class InspectTab:
    """What the shell needs: the two text boxes, and `inspect_after` to run the whole tab after a prefill."""

    query: gr.Textbox
    document: gr.Textbox
    inspect_after: object  # (event) -> the same chain as the Inspect button: views, bertviz, fitted lists


def _views(inspection: PairInspection, layer, head, direction, special, word_level, renormalize):
    block = cross_attention_matrix(inspection, layer, head, direction, special, word_level, renormalize)
    grid = plots.head_grid(inspection, block.layer, direction, special, renormalize)
    return plots.attention_heatmap(block), grid


def _summary(inspection: PairInspection, bi_cosine: float) -> str:
    cut = " The pair was cut to the model's maximum length." if inspection.truncated else ""
    return (
        f"**Cross-encoder** {html.escape(inspection.model_name)}: score **{inspection.score:.3f} logit** "
        f"({inspection.probability_name} {inspection.probability:.3f}). **Bi-encoder** pooled cosine "
        f"**{bi_cosine:.3f}**. Input: {len(inspection.tokens)} tokens ({len(inspection.query_index)} query, "
        f"{len(inspection.doc_index)} document); attention pass {inspection.attention_ms:.0f} ms.{cut}"
    )


def _inspection(query: str, document: str, cross_encoder: str) -> PairInspection:
    return inspected_pair(query, document, cross_encoder)[2]


def pair_work(query: str, document: str, cross_encoder: str, passes: int) -> int:
    """Tokens of model work for `passes` passes over the pair (budgets.py): the pair's tokens as
    the model reads them (the document cut as Inspect cuts it) times the passes."""
    scorer = rescoring_model(cross_encoder)
    document = (document or "")[:MAX_INSPECT_DOCUMENT_CHARS]
    return passes * token_counts(scorer.tokenizer, [document], scorer.max_length, pair_with=query or "")[0]


def _inspection_passes(document: str, gradient: bool) -> int:
    """The attention pass, one occlusion pass per word (or run of words) and the full score, and
    a forward and backward (about three passes) for gradient x input."""
    words = len((document or "")[:MAX_INSPECT_DOCUMENT_CHARS].split())
    return 1 + min(words, MAX_OCCLUSION_PASSES) + 1 + (3 if gradient else 0)


def run_inspection(query, document, cross_encoder, layer, head, direction, special, word_level, renormalize, gradient,
                   progress=gr.Progress()):
    """The whole tab from one pair: one attention pass, one occlusion batch, two bi-encoder passes.

    The attention views come first (one pass); occlusion, one rescoring per word (or run of
    words), follows in a second update, so a long pair's heatmap is not held back by it and the
    layer and head lists work meanwhile. An API caller gets the final, complete result. A long
    pair (budgets.LONG_JOB_TOKENS of work) runs in the long-job lane, a short one beside it.
    """
    cross_encoder = cross_encoder or DEFAULT_CROSS_ENCODER
    key = (query, document, cross_encoder)
    try:
        work = pair_work(query, document, cross_encoder, _inspection_passes(document, gradient))
        with by_work(work, "an inspection", gradio_progress(progress)):
            scorer, encoded, inspection = inspected_pair(query, document, cross_encoder)
            heatmap, grid = _views(inspection, layer, head, direction, special, word_level, renormalize)
            similarity = bi_encoder_token_similarity(load_bi_encoder(DEFAULT_BI_ENCODER, "fp32"), query, document)
            summary, meeting = _summary(inspection, similarity.pooled_cosine), bi_encoder_meeting(similarity)
            pending = (f"<p class='pending'>⏳ Occlusion: rescoring the document with each of its "
                       f"{len(occlusion_spans(encoded)[0])} words (or runs of words) deleted…</p>")
            yield key, summary, heatmap, grid, pending, None, meeting
            attribution = occlusion_attribution(scorer, encoded)
            gradients = gradient_attribution(scorer, encoded) if gradient else None
    except ExplorerError as error:
        raise shown_error(error) from error
    yield (
        key, summary, heatmap, grid,
        plots.attribution_html(encoded.document, attribution, encoded.cut_char, scorer.max_length),
        plots.attribution_bars(attribution, gradients),
        meeting,
    )


def redraw(pair, layer, head, direction, special, word_level, renormalize):
    """Event handler: the attention views of the inspected `pair` redrawn for the chosen layer, head,
    direction and display options (the model's pass is cached); no change before a pair is inspected. An
    ExplorerError is shown in the page."""
    if pair is None:
        return gr.skip(), gr.skip()
    try:
        return _views(_inspection(*pair), layer, head, direction, special, word_level, renormalize)
    except ExplorerError as error:
        raise shown_error(error) from error


def fitted_choices(inspection: PairInspection, layer: str, head: str) -> tuple[dict, dict]:
    """Layer and head lists for the inspected model; a choice it lacks goes back to "mean"."""
    layers, heads = layer_choices(inspection.num_layers), head_choices(inspection.num_heads)
    return (
        gr.update(choices=layers, value=layer if layer in layers else "mean"),
        gr.update(choices=heads, value=head if head in heads else "mean"),
    )


def fit_choices(pair, layer, head):
    """After an inspection: offer exactly the layers and heads of the model that ran."""
    if pair is None:
        return gr.skip(), gr.skip()
    return fitted_choices(_inspection(*pair), layer, head)


def draw_meeting(pair):
    """The cross-encoder's and late interaction's side of "how the texts meet" (after the main views)."""
    if pair is None:
        return gr.skip(), gr.skip()
    query, document, _ = pair
    inspection = _inspection(*pair)
    try:
        alignment = late_alignment(load_late_interaction(precision="fp32"), query, document)
    except ExplorerError as error:
        raise shown_error(error) from error
    block = cross_attention_matrix(inspection, "mean", "mean", "query_to_doc")
    return cross_encoder_meeting(block, inspection.model_name), late_interaction_meeting(alignment)


def _rescoring_pair(pair):
    """The inspected (query, document) and the fp32 model that rescores them exactly."""
    if pair is None:
        raise gr.Error("Inspect a pair first.")
    query, document, cross_encoder = pair
    return query, document, rescoring_model(cross_encoder)


# Integrated Gradients: a forward and a backward pass (about three) per step; then occlusion
# (at most MAX_OCCLUSION_PASSES + 1) and gradient x input (three).
METHODS_PASSES = 3 * IG_STEPS + MAX_OCCLUSION_PASSES + 1 + 3


def compare_methods(pair, progress=gr.Progress()):
    """Occlusion, gradient x input and Integrated Gradients over the inspected document's words;
    a long pair in the long-job lane (two Integrated Gradients at once would share two cores)."""
    query, document, scorer = _rescoring_pair(pair)
    try:
        work = pair_work(query, document, pair[2], METHODS_PASSES)
        with by_work(work, "Integrated Gradients and two other methods", gradio_progress(progress)):
            found = every_method(scorer, encode_pair(scorer, query, document))
    except ExplorerError as error:
        raise shown_error(error) from error
    return methods_html(found, agreement_of(found))


def score_passages(pair, progress=gr.Progress()):
    """Sliding windows over the inspected document; the best window's score, labelled as such."""
    query, document, scorer = _rescoring_pair(pair)
    try:
        # Every window (a window's tokens every stride) and the whole pair once.
        windows = -(-token_counts(scorer.tokenizer, [document], 10**9)[0] // STRIDE_TOKENS)
        work = pair_work(query, document, pair[2], 1) + windows * (WINDOW_TOKENS + 3)
        with by_work(work, "passage scoring", gradio_progress(progress)):
            return passage_scores_html(document, passage_scores(scorer, query, document), scorer.max_length)
    except ExplorerError as error:
        raise shown_error(error) from error


def draw_bertviz(pair):
    """Event handler: bertviz's head view and model view (900 px high) of the inspected `pair` as iframes;
    empty before a pair is inspected."""
    if pair is None:
        return "", ""
    inspection = _inspection(*pair)
    return bertviz_iframe(inspection, "head"), bertviz_iframe(inspection, "model", height_px=900)


def build_inspect_tab() -> InspectTab:
    """Build the tab's components and events inside the caller's open Blocks / Tab."""
    # An ONNX file has no attention weights to show: only model folders can be inspected.
    cross_choices = [(c.label, c.id) for c in model_choices("cross") if c.path is None or c.path.suffix != ".onnx"]
    gr.Markdown(
        "Pick a (query, document) pair, or type one, to see how the cross-encoder's query and document "
        f"tokens interact inside the model, and which words moved its score.\n\n**{ATTENTION_NOTE}**"
    )
    with gr.Row():
        # Filled with a teaching pair, so the tab's first click shows something; "Inspect this pair" replaces it.
        query = gr.Textbox(INSPECT_EXAMPLE[0], label="Query", lines=1, scale=2, elem_id="inspect-query")
        document = gr.Textbox(INSPECT_EXAMPLE[1], label="Document", lines=4, scale=4, elem_id="inspect-document")
    with gr.Row():
        cross_encoder = gr.Dropdown(cross_choices, value=DEFAULT_CROSS_ENCODER, label="Cross-encoder",
                                    allow_custom_value=True, scale=2)
        layer = gr.Dropdown(LAYERS, value="mean", label="Layer (0-based)", scale=1)
        head = gr.Dropdown(HEADS, value="mean", label="Head (0-based)", scale=1)
        direction = gr.Radio(DIRECTIONS, value="query_to_doc", label="Direction", scale=2)
    with gr.Row():
        special = gr.Checkbox(False, label="Show [CLS] / [SEP]")
        word_level = gr.Checkbox(False, label="Words (sum over attended pieces, mean over attending pieces)")
        renormalize = gr.Checkbox(False, label="Renormalise within the block")
        gradient = gr.Checkbox(False, label="Also gradient × input")
    run = gr.Button("Inspect", variant="primary", elem_id="inspect-run")

    pair = gr.State(None)  # (query, document, cross-encoder) of the last inspection
    summary = gr.Markdown()
    with gr.Tab("Cross-attention"):
        heatmap = gr.Plot(label="Cross-attention heatmap")
        grid = gr.Plot(label="Every head of the layer")
    with gr.Tab("What moved the score"):
        attribution_text = gr.HTML(elem_id="inspect-attribution")
        attribution_plot = gr.Plot(label="Occlusion attribution")
        methods_run = gr.Button("Compare methods: occlusion, gradient × input, Integrated Gradients (50 steps)",
                                elem_id="inspect-methods-run")
        methods_view = gr.HTML(elem_id="inspect-methods")
    with gr.Tab("Head importance"):
        build_heads_panel(pair, lambda key: _inspection(*key))
    with gr.Tab("How the texts meet"):
        gr.Markdown("One pair, three architectures. The **cross-encoder** reads query and document in one pass "
                    "(its attention, left). **Late interaction** encodes them apart, then each query token takes "
                    "its best document token (ringed): the score is the sum of those cosines. The **bi-encoder** "
                    "encodes them apart too, and scores only the one pooled cosine.")
        with gr.Row(equal_height=False):
            cross_meeting = gr.Plot(label="Cross-encoder", elem_id="meet-cross")
            late_meeting = gr.Plot(label="Late interaction", elem_id="meet-late")
            similarity_plot = gr.Plot(label="Bi-encoder token cosine", elem_id="meet-bi")
    with gr.Tab("Long document"):
        gr.Markdown("The model reads at most 512 tokens of the pair: in *What moved the score* the text after the "
                    "✂ mark is greyed (never read). Passage-level scoring reads a long document window by window "
                    "and reports the best window's score.")
        passages_run = gr.Button("Score sliding windows (256 tokens, every 128)", elem_id="inspect-passages-run")
        passages_view = gr.HTML(elem_id="inspect-passages")
    with gr.Tab("bertviz"):
        gr.Markdown("bertviz's views of the same pair (drawn in your browser, no network). Query = sentence A, "
                    "document = sentence B. The model view opens on the query → document block.")
        head_view = gr.HTML(label="bertviz head view")
        model_view = gr.HTML(label="bertviz model view")

    inputs = [query, document, cross_encoder, layer, head, direction, special, word_level, renormalize, gradient]
    outputs = [pair, summary, heatmap, grid, attribution_text, attribution_plot, similarity_plot]
    def follow_up(event) -> None:
        # The bertviz views and the fitted layer/head lists come after the main views, so the
        # page shows the heatmap and attribution first; a prefill from another tab runs the same.
        # A new pair clears the extras drawn for the last one.
        event.then(lambda: ("", ""), None, [methods_view, passages_view], api_visibility="private", show_progress="hidden")
        event.then(draw_meeting, [pair], [cross_meeting, late_meeting], api_visibility="private")
        event.then(draw_bertviz, [pair], [head_view, model_view], api_visibility="private")
        # No spinner on the lists: they stay usable while the views are drawn.
        event.then(fit_choices, [pair, layer, head], [layer, head], api_visibility="private", show_progress="hidden")

    # Two at once: a short pair is answered beside a long one instead of waiting for it.
    # One group for the tab's model work: long pairs go to the long-job lane (ui/lanes.py), short
    # ones are answered beside them instead of waiting.
    follow_up(run.click(run_inspection, inputs, outputs, api_name="inspect", **event_lane("inspect")))

    def inspect_after(event):
        follow_up(event.success(run_inspection, inputs, outputs, api_visibility="private", **event_lane("inspect")))
    methods_run.click(compare_methods, [pair], methods_view, api_visibility="private", **event_lane("inspect"))
    passages_run.click(score_passages, [pair], passages_view, api_visibility="private", **event_lane("inspect"))
    view_controls = [layer, head, direction, special, word_level, renormalize]
    for control in view_controls:
        control.change(redraw, [pair, *view_controls], [heatmap, grid], api_visibility="private")
    return InspectTab(query=query, document=document, inspect_after=inspect_after)


if __name__ == "__main__":  # a look at the tab alone: python -m explorer.ui_inspect
    with gr.Blocks(title="Inspect a pair") as demo:
        tab = build_inspect_tab()
    demo.launch(server_name="127.0.0.1")

"""Why is A above B, and what would change the model's mind: click two rows of the re-ranked
list, see both documents' attributions on one colour scale, then edit A and rescore it.

Only arranges what `interpret/contrast.py` and `interpret/rescore.py` compute, with the
fp32 rescoring model, so every number here is an exact rescoring. Occlusion of two documents
takes one rescoring pass per word (seconds on two cores), so the two scores and the gap show
first, and the attributions replace them when they are ready.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.budgets import MAX_OCCLUSION_PASSES, check_edit_chars, token_counts
from explorer.errors import ExplorerError
from explorer.interpret.contrast import explain_pair_gap
from explorer.interpret.integrated_gradients import IG_STEPS
from explorer.interpret.pair import rescoring_model
from explorer.interpret.rescore import rescore_among
from explorer.views.contrast_html import contrast_html, edits_html, pending_html
from explorer.ui.lanes import by_work, event_lane, gradio_progress
from explorer.ui.messages import shown_error

METHOD_CHOICES = [("occlusion (delete each word, rescore)", "occlusion"),
                  ("Integrated Gradients (captum, 50 steps)", "ig"), ("gradient × input (first-order)", "gradxinput")]


@dataclass
class ContrastPanel:
    """The Compare tab's "why is A above B" panel: the hidden textbox the board's click script writes
    the picked ids into (the id, then a click counter, so the same row twice is still an event)."""
    pick: gr.Textbox  # written by the board's script (ui/board_script.py) when a re-ranked row is clicked


def _pair(state: dict, picks: list[str]) -> tuple[str, str]:
    """The two picked ids as (A, B): A is the one the re-ranker put higher."""
    first, second = picks
    return (first, second) if state["ranks"][first] <= state["ranks"][second] else (second, first)


# Passes per document by method: occlusion's rescorings (and the full score), a forward and a
# backward (about three passes) per Integrated Gradients step, one gradient for gradient x input.
METHOD_PASSES = {"occlusion": MAX_OCCLUSION_PASSES + 1, "ig": 3 * IG_STEPS + 1, "gradxinput": 4}


def contrast_work(state: dict, documents: list[str], method: str) -> int:
    """Tokens of model work to explain `documents` by `method` (budgets.py): each pair's tokens as
    the model reads them times the method's passes (an upper bound: kept attributions are reused)."""
    scorer = rescoring_model(state["cross_encoder"], label=state.get("cross_label"))
    counts = token_counts(scorer.tokenizer, documents, scorer.max_length, pair_with=state["query"])
    return sum(counts) * METHOD_PASSES.get(method, 1)


def _explain(state: dict, picks: list[str], edits: list[dict], method: str, first_view: bool = False, progress=None):
    """The contrast view of A and B; past LONG_JOB_TOKENS of work (not the first view) in the long-job lane."""
    id_a, id_b = _pair(state, picks)
    doc_a = edits[-1]["text_after"] if edits else state["texts"][id_a]
    work = 0 if first_view else contrast_work(state, [doc_a, state["texts"][id_b]], method)
    with by_work(work, "a contrast of two documents", progress):
        gap = explain_pair_gap(rescoring_model(state["cross_encoder"], label=state.get("cross_label")), state["query"],
                               doc_a, state["texts"][id_b], method, first_view=first_view)
    return contrast_html(gap, doc_a, state["texts"][id_b], id_a, id_b), doc_a


def on_pick(value: str, state: dict | None, picks: list[str], method: str, progress=gr.Progress()):
    """Keep the last two distinct rows clicked; with two, show both scores at once, then explain
    the gap and offer A for editing."""
    doc_id = (value or "").split("\u0001")[0]
    if not state or doc_id not in state.get("texts", {}):
        yield picks, gr.skip(), gr.skip(), gr.skip(), [], ""
        return
    picks = [p for p in picks if p != doc_id][-1:] + [doc_id]
    if len(picks) < 2:
        yield picks, f"Picked [{doc_id}]; click a second document.", gr.skip(), gr.skip(), [], ""
        return
    id_a, id_b = _pair(state, picks)
    status = f"A = [{id_a}], B = [{id_b}]: why is A above B?"
    doc_a, doc_b = state["texts"][id_a], state["texts"][id_b]
    try:
        if method == "occlusion":
            # A view in about a second (runs of words, exact rescorings), then word level.
            yield picks, status, _explain(state, picks, [], method, first_view=True)[0], doc_a, [], ""
        else:
            scores = rescoring_model(state["cross_encoder"], label=state.get("cross_label")).score_query(state["query"], [doc_a, doc_b]).logits
            yield picks, status, pending_html(float(scores[0]), float(scores[1]), id_a, id_b, method), doc_a, [], ""
        view, _ = _explain(state, picks, [], method, progress=gradio_progress(progress))
    except ExplorerError as error:
        raise shown_error(error) from None
    # The edit box and the edits were set with the first view: a visitor may be editing A by now.
    yield picks, status, view, gr.skip(), gr.skip(), gr.skip()


def on_method(state: dict | None, picks: list[str], edits: list[dict], method: str, progress=gr.Progress()):
    """Event handler: the contrast of the two picked documents again by the chosen attribution `method` (A =
    the one ranked higher, its last edit applied); skipped until two are picked. An ExplorerError is shown
    in the page."""
    if not state or len(picks) < 2:
        return gr.skip()
    try:
        return _explain(state, picks, edits, method, progress=gradio_progress(progress))[0]
    except ExplorerError as error:
        raise shown_error(error) from None


def on_rescore(state: dict | None, picks: list[str], edits: list[dict], edited: str, method: str,
               progress=gr.Progress()):
    """Score the edited A against its last version; its new rank among the other shown candidates (fp32).
    The edit row shows first, the view's attributions of the edited A after it. The edit may be as
    long as Inspect reads (budgets.MAX_EDIT_CHARS)."""
    if not state or len(picks) < 2:
        raise gr.Error("Click two documents in the re-ranked list first.")
    id_a, _ = _pair(state, picks)
    before = edits[-1]["text_after"] if edits else state["texts"][id_a]
    scorer = rescoring_model(state["cross_encoder"], label=state.get("cross_label"))
    try:
        check_edit_chars(edited or "")
        others = [text for doc_id, text in state["texts"].items() if doc_id != id_a]
        result = rescore_among(scorer, state["query"], before, edited, others)
    except ExplorerError as error:
        raise shown_error(error) from None
    edits = edits + [{**result.to_dict(), "doc_id": id_a, "text_before": before, "text_after": edited}]
    # The new score, rank and delta at once; the attributions of the edited A follow.
    yield edits, edits_html(edits), gr.skip()
    yield edits, gr.skip(), on_method(state, picks, edits, method, progress)


def on_undo(state: dict | None, picks: list[str], edits: list[dict], method: str):
    """Drop the last edit: the box and the view go back to the text before it."""
    if not edits:
        return edits, gr.skip(), gr.skip(), gr.skip()
    last, edits = edits[-1], edits[:-1]
    return edits, last["text_before"], edits_html(edits), on_method(state, picks, edits, method)


def build_contrast_panel(state: gr.State) -> ContrastPanel:
    """The panel's components and events, inside the Compare tab; `state` is the comparison's."""
    with gr.Accordion("Why is A above B? Click two documents in the re-ranked list", open=True, elem_id="contrast"):
        pick = gr.Textbox(elem_id="contrast-pick", elem_classes="visually-hidden", show_label=False, container=False)
        picks, edits = gr.State([]), gr.State([])
        with gr.Row():
            status = gr.Markdown("Click a document in the re-ranked list, then another.", elem_id="contrast-status")
            method = gr.Radio(METHOD_CHOICES, value="occlusion", label="Attribution", scale=2)
        view = gr.HTML(elem_id="contrast-view")
        with gr.Row():
            edited = gr.Textbox(label="Edit document A, then rescore it (fp32)", lines=3, scale=4, elem_id="contrast-edit")
            with gr.Column(scale=1, min_width=160):
                rescore = gr.Button("Rescore edited A", variant="primary", elem_id="contrast-rescore")
                undo = gr.Button("Undo last edit", elem_id="contrast-undo")
        edits_view = gr.HTML(elem_id="contrast-edits")
    # One group for the panel's model work: long explanations go to the long-job lane (ui/lanes.py),
    # so a short contrast is answered beside another visitor's long one.
    private = {"api_visibility": "private", **event_lane("contrast")}
    pick.change(on_pick, [pick, state, picks, method], [picks, status, view, edited, edits, edits_view], **private)
    method.change(on_method, [state, picks, edits, method], view, **private)
    rescore.click(on_rescore, [state, picks, edits, edited, method], [edits, edits_view, view], **private)
    undo.click(on_undo, [state, picks, edits, method], [edits, edited, edits_view, view], **private)
    return ContrastPanel(pick)

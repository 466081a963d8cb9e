"""The Compare tab's "Why not this document?" panel: pick any document of the corpus (click a row,
type words or an id into the finder, or take a judged-relevant one no column shows), see where it
stands in every stage, which stage lost it, and each ranker's explanation; optionally beside a
second document.

Only arranges what `interpret/why.py` computes (`why_document`) and `views/why_view.py` draws;
the JSON box holds `why_data`, exactly what `python -m explorer why --json` prints. The panel reads
the Compare settings on the page (query, corpus, pipeline, top-k, models, precision).
"""

from __future__ import annotations

import gradio as gr

from explorer.data.builtin_corpora import INDEX_CHOICE, corpus_from_source
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.errors import ExplorerError
from explorer.interpret.why import why_contrast, why_document, with_would_rank
from explorer.pipeline.compare import PAGE_ENTRIES, first_stage_ranker
from explorer.pipeline.stages import check_query
from explorer.pipeline.why import find_documents, unshown_relevant
from explorer.pipeline.work import comparison_work
from explorer.ui.lanes import by_work, event_lane, gradio_progress
from explorer.ui.messages import shown_error
from explorer.views.why_view import why_data, why_html
from explorer.views.workbench import judged_labels

# A click on a row of any ranked list on the page puts its id into the panel's row box.
ROW_JS = """
if (!window.whyRowListener) window.whyRowListener = true, document.addEventListener('click', (event) => {
  const row = event.target.closest('li.hit');
  const box = document.querySelector('#why-row textarea, #why-row input');
  if (!row || !box || !row.dataset.docId) return;
  box.value = row.dataset.docId + '\\u0001' + (Number(box.value.split('\\u0001')[1] || 0) + 1);
  box.dispatchEvent(new Event('input', {bubbles: true}));
});
"""
ATTRIBUTION_CHOICES = [("quick first view (runs of words)", "first"), ("word level (slower)", "words"),
                       ("none", "none")]
# The Compare settings `explain` reads, in its parameters' order.
SETTINGS = ("query", "source", "text", "file", "builtin", "top_k", "bi", "cross", "precision", "first_stage",
            "rerankers", "cross_label")


def _corpus(source, text, file, builtin):
    if source == "Built-in" and builtin == INDEX_CHOICE:
        raise ExplorerError("The why panel reads a corpus, not a prebuilt index: pick a built-in set, paste or upload.")
    return corpus_from_source(source, text, file, builtin)


def _choices(hits: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f"[{doc_id}] {' '.join(snippet.split())[:80]}", doc_id) for doc_id, snippet in hits]


def on_find(words, source, text, file, builtin):
    """Event handler: documents matching the typed words or id, as the pick list's choices (first picked)."""
    try:
        choices = _choices(find_documents(_corpus(source, text, file, builtin), words))
    except ExplorerError as error:
        raise shown_error(error) from None
    status = f"{len(choices)} document(s) found." if choices else "No document holds every typed word (or has that id)."
    return gr.update(choices=choices, value=choices[0][1] if choices else None), gr.update(choices=choices), status


def on_relevant(state, labels, bench, query, source, text, file, builtin, top_k, bi, precision, first_stage):
    """Event handler: the judged-relevant documents that no column shows, as choices: the workbench's judgments
    of this query where it has any, else the Evaluate tab's labels."""
    try:
        corpus = _corpus(source, text, file, builtin)
        labels = judged_labels(bench, check_query(query), corpus) or labels
        first = first_stage_ranker(first_stage or "bi", bi, precision or "auto", False)
        shown = set((state or {}).get("texts", {}))
        hits = unshown_relevant(first, corpus, check_query(query), int(top_k or 10), labels, shown)
    except ExplorerError as error:
        raise shown_error(error) from None
    choices = _choices(hits)
    status = (f"{len(choices)} judged-relevant document(s) no column shows." if choices else
              "No judged-relevant document is missing (or this query has no judgments: grade on the board, "
              "or open it from Evaluate).")
    return gr.update(choices=choices, value=choices[0][1] if choices else None), gr.update(choices=choices), status


def on_row(value: str):
    """Event handler: a clicked row's id becomes the picked document."""
    doc_id = (value or "").split("\u0001")[0]
    if not doc_id:
        return gr.skip(), gr.skip()
    return gr.update(choices=[(f"[{doc_id}] (clicked row)", doc_id)], value=doc_id), f"Picked [{doc_id}] from a list."


def explain(doc_id: str, versus: str | None = None, view: str = "first", query: str = "", corpus_source: str = "Paste",
            corpus_text: str = "", corpus_file: str | None = None, builtin_corpus: str | None = None, top_k: float = 10,
            bi_encoder: str = DEFAULT_BI_ENCODER, cross_encoder: str = DEFAULT_CROSS_ENCODER, precision: str = "auto",
            first_stage: str = "bi", rerankers: list[str] | None = None, cross_label: str | None = None,
            progress=gr.Progress()):
    """Event handler: where the picked document stands and why, beside a second one when given: first the
    quick answer (no document between top-k and it scored), then the full one with what top-k at its
    first-stage rank would give. Yields the panel's HTML and its JSON (the first document's, as `why --json`)."""
    try:
        if not doc_id:
            raise ExplorerError("Pick a document first: click a row, or find one by its words or id.")
        # In the pipeline's order; a cross-encoder by passages ("cross:maxp") is accepted from the API.
        kinds = [k for k in PAGE_ENTRIES if k in (rerankers or ["cross"])]
        corpus = _corpus(corpus_source, corpus_text, corpus_file, builtin_corpus)
        work = comparison_work(check_query(query), corpus, first_stage or "bi", kinds, bi_encoder, cross_encoder,
                               precision or "auto", False, top_k, shipped=corpus_source == "Built-in", prebuilt=False)
        ids = list(dict.fromkeys([doc_id] + ([versus] if versus else [])))
        names = (first_stage or "bi", kinds, bi_encoder, cross_encoder, precision or "auto")
        with by_work(work, "why this document", gradio_progress(progress)):
            reports = [why_document(query, corpus, d, *names[:2], int(top_k or 10), *names[2:], view or "first",
                                    cross_label or None, would_rank=False) for d in ids]
            contrast = why_contrast(reports, cross_encoder, cross_label or None)
            yield why_html(reports, contrast), gr.skip()
            reports = [with_would_rank(r, corpus, *names, cross_label or None) for r in reports]
            yield why_html(reports, contrast), why_data(reports[0])
    except ExplorerError as error:
        raise shown_error(error, title="Cannot explain this document") from None


def build_why_panel(state: gr.State, c: dict) -> None:
    """The panel, inside the Compare tab's open Blocks; `c` holds the Compare tab's components (its settings
    are read when the panel runs)."""
    settings = [c[name] for name in SETTINGS]
    corpus_inputs = [c["source"], c["text"], c["file"], c["builtin"]]
    # Outside the accordion, so a row clicked while it is closed is picked all the same.
    gr.HTML("", js_on_load=ROW_JS, elem_id="why-row-listener", padding=False)
    row = gr.Textbox(elem_id="why-row", elem_classes="visually-hidden", show_label=False, container=False)
    with gr.Accordion("Why not this document? Where any document stands in every stage, and why", open=False,
                      elem_id="why-panel"):
        with gr.Row():
            find = gr.Textbox(label="Find a document: words of its text, or its id", scale=3, elem_id="why-find")
            find_go = gr.Button("Find", scale=1, elem_id="why-find-go")
            relevant = gr.Button("Judged relevant, not shown", scale=1, elem_id="why-relevant")
        status = gr.Markdown("Click a row of a list above, or find a document.", elem_id="why-status")
        with gr.Row():
            pick = gr.Dropdown([], label="Document (or type its id)", scale=3, elem_id="why-pick", allow_custom_value=True)
            versus = gr.Dropdown([], label="Beside a second document (optional)", scale=2, elem_id="why-versus",
                                 allow_custom_value=True)
            view = gr.Radio(ATTRIBUTION_CHOICES, value="first", label="Cross-encoder's words", scale=2)
        go = gr.Button("Why? Explain this document", variant="primary", elem_id="why-go")
        html = gr.HTML(elem_id="why-html")
        with gr.Accordion("Why JSON (what `python -m explorer why --json` prints)", open=False):
            data = gr.JSON(label="why", elem_id="why-json")
    find_go.click(on_find, [find, *corpus_inputs], [pick, versus, status], api_visibility="private")
    find.submit(on_find, [find, *corpus_inputs], [pick, versus, status], api_visibility="private")
    relevant.click(on_relevant, [state, c["labels"], c["bench"], c["query"], *corpus_inputs, c["top_k"], c["bi"], c["precision"],
                                 c["first_stage"]], [pick, versus, status], api_visibility="private")
    row.change(on_row, row, [pick, status], api_visibility="private")
    go.click(explain, [pick, versus, view, *settings], [html, data], api_name="why", **event_lane("why"))

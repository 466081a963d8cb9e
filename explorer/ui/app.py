"""The app shell: the header, the three tabs, and the wiring between them.

Each tab lays out and wires itself (`compare_tab.py`, `inspect_tab.py`, `eval_tab.py`) and
hands back one handle; only the click-throughs from one tab to another live here.
"""

from __future__ import annotations

import os

import gradio as gr

from explorer.budgets import MAX_CORPUS_BYTES
from explorer.data.corpus import corpus_from_text
from explorer.engine.catalog import model_choices
from explorer.pipeline.compare import compare
from explorer.ui.compare_tab import CSS_PATH, CompareTab, build_compare_tab, corpus_input_visibility
from explorer.ui.eval_tab import EvalTab, build_eval_tab
from explorer.ui.inspect_tab import InspectTab, build_inspect_tab
from explorer.ui.messages import guard_events
from explorer.ui.lanes import event_lane
from explorer.ui.served_files import delete_cache
from explorer.ui.workbench_panel import RESTORED, after_compare, on_evaluate, on_open
from explorer.views.templating import render


def _header_html() -> str:
    return render("header.html.j2", offline=[c.label for c in model_choices() if c.offline])


def _wire_evaluate(eval_tab: EvalTab, tabs: gr.Tabs, compare_tab: CompareTab, inspect_tab: InspectTab) -> None:
    """Send the picked query to the Compare tab (and run it, with each document's relevance grade),
    or its top pair to the Inspect tab. Two ways in: "Compare this query" on the three stages, and
    one click on a disagreeing query among the pipelines."""
    def to_compare(selection):
        if not selection:
            raise gr.Error("Run an evaluation and click a query first.")
        uploaded = selection.get("corpus_file")
        return (
            selection["query"], "Upload" if uploaded else "Built-in",
            gr.update() if uploaded else selection["corpus"], uploaded if uploaded else gr.update(),
            selection["top_k"], selection.get("first_stage", "bi"), selection.get("rerankers", ["cross"]),
            selection.get("labels"), gr.Tabs(selected="compare"),
        )

    def open_in_compare(start, selection: gr.State) -> None:
        """`start` begins the chain: a button's `.click`, or `.success` after a table click."""
        filled = start(
            to_compare, selection,
            [compare_tab.query, compare_tab.source, compare_tab.builtin, compare_tab.file, compare_tab.top_k,
             compare_tab.first_stage, compare_tab.rerankers, compare_tab.labels, tabs],
            api_visibility="private",
        ).success(
            corpus_input_visibility,
            compare_tab.source, [compare_tab.text, compare_tab.file, compare_tab.builtin],
            api_visibility="private",
        )
        filled.then(compare_tab.fn, compare_tab.inputs, compare_tab.outputs, api_visibility="private",
                    **event_lane("compare"))

    # "Compare this query" on the three stages; a click on a disagreeing query among the pipelines.
    open_in_compare(eval_tab.open_compare.click, eval_tab.selection)
    open_in_compare(eval_tab.pipelines.select_event.success, eval_tab.pipelines.selection)

    def to_inspect(selection):
        if not selection:
            raise gr.Error("Run an evaluation and click a query first.")
        return selection["query"], selection["top_document"], gr.Tabs(selected="inspect")

    inspect_tab.inspect_after(eval_tab.open_inspect.click(
        to_inspect, eval_tab.selection, [inspect_tab.query, inspect_tab.document, tabs], api_visibility="private"
    ))


def _wire_inspect(compare_tab: CompareTab, tabs: gr.Tabs, inspect: InspectTab) -> None:
    """"Inspect this pair" fills the Inspect tab's query and document and switches to it."""

    def open_pair(state, doc_id):
        if not state or doc_id not in state["texts"]:
            raise gr.Error("Run a comparison first, then pick one of its results.")
        return state["query"], state["texts"][doc_id], gr.Tabs(selected="inspect")

    inspect.inspect_after(compare_tab.inspect_go.click(
        open_pair, [compare_tab.state, compare_tab.inspect_pick], [inspect.query, inspect.document, tabs],
        api_visibility="private",
    ))


def _wire_case_evaluation(compare_tab: CompareTab, evaluation: EvalTab, tabs: gr.Tabs) -> None:
    """"Evaluate this case" fills the Evaluate tab's uploaded labels with the case's files and opens it."""
    panel = evaluation.pipelines
    compare_tab.bench.evaluate.click(on_evaluate, compare_tab.bench.state,
                                     [panel.source, *panel.files, panel.three_files, tabs],
                                     api_visibility="private")


def _wire_landing(app: gr.Blocks, compare_tab: CompareTab) -> None:
    """On load: a `?case=TOKEN` link restores its case, any other visit the landing example; either
    way the comparison runs at once, so the page never opens on empty boxes."""
    c, bench = compare_tab.components, compare_tab.bench
    restored = [c[name] for name in RESTORED] + [bench.state, bench.bar, bench.snapshot_pick]
    app.load(on_open, None, restored, api_visibility="private").then(
        compare_tab.fn, compare_tab.inputs, compare_tab.outputs, api_visibility="private", **event_lane("compare"),
    ).then(after_compare, [c["state"], bench.state, c["query"]], bench.bar, api_visibility="private")


def build_app() -> gr.Blocks:
    """The whole page: header and three tabs. Call `.queue(...)` and `.launch(**launch_options())` on it."""
    # Per-request files (uploads, downloads) live in gradio's cache and go after a while: see served_files.
    with gr.Blocks(title="Cross-Encoder Explorer", delete_cache=delete_cache()) as app:
        gr.HTML(_header_html())
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id="compare"):
                compare_tab = build_compare_tab()
            with gr.Tab("Inspect a pair", id="inspect"):
                inspect = build_inspect_tab()
            _wire_inspect(compare_tab, tabs, inspect)
            with gr.Tab("Evaluate", id="evaluate"):
                evaluation = build_eval_tab()
            _wire_evaluate(evaluation, tabs, compare_tab, inspect)
            _wire_case_evaluation(compare_tab, evaluation, tabs)
        _wire_landing(app, compare_tab)
    # Every callback: a user's mistake shown as its message, the app's own fault logged and apologised for.
    return guard_events(app)


def launch_options() -> dict:
    """Settings for `launch()`: our stylesheet, the upload cap enforced by the server, and errors shown.

    `show_error` passes an exception's message (never a traceback) to the page and the API: a value
    gradio itself cannot read (top-k given as text or null) then says what was wrong instead of a
    generic "the app raised an exception". Our own callbacks never pass Python's text: `guard_events`
    turns anything but a user's mistake into a logged fault and an apology.
    """
    return {"css_paths": [CSS_PATH], "max_file_size": MAX_CORPUS_BYTES, "theme": gr.themes.Soft(), "show_error": True}


def warm_up() -> None:
    """Load both default models and run one tiny comparison, so the first real one is fast."""
    tiny = corpus_from_text("Paris is the capital of France.\nThe Eiffel Tower is in Paris.")
    precision = os.environ.get("EXPLORER_WARMUP_PRECISION", "auto")
    compare("capital of France", tiny, top_k=2, score_all=True, precision=precision)

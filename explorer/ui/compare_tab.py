"""The Compare tab: a first stage and its re-rankers side by side (bi-encoder → cross-encoder by default).

The callbacks only turn inputs into a `Corpus`, call `compare()` and hand its result to
`results_view`, `plots` and `export`. Errors a user can cause arrive as `ExplorerError`
and are shown with `gr.Error`, which leaves every output as it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from explorer.data.builtin_corpora import INDEX_CHOICE, SOURCES, corpus_from_source, list_sets
from explorer.data.teaching_examples import EXAMPLE_LABELS, EXAMPLES, EXPLANATION
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER, model_choices
from explorer.engine.loading import load_model
from explorer.errors import ExplorerError
from explorer.indexing.prebuilt import configured_index
from explorer.paths import REPO_ROOT
from explorer.pipeline.compare import PAGE_ENTRIES, Comparison, compare
from explorer.pipeline.stages import check_query
from explorer.pipeline.work import comparison_work
from explorer.pipeline.costs import UnitCosts, unit_costs
from explorer.views import comparison_plots as plots, results_html as results_view
from explorer.views.board import board_texts
from explorer.views.workbench import board_for, with_rankings
from explorer.ui.board_script import BOARD_JS
from explorer.ui.contrast_panel import build_contrast_panel
from explorer.ui.workbench_panel import after_compare, build_workbench_panel
from explorer.views.case_page import step_query
from explorer.ui.why_panel import build_why_panel
from explorer.ui.messages import shown_error
from explorer.ui.lanes import by_work, event_lane, gradio_progress
from explorer.ui.served_files import request_folder
from explorer.views.export import write_downloads

CSS_PATH = REPO_ROOT / "assets" / "style.css"
FIRST_STAGE_CHOICES = [("bi-encoder (one vector per text)", "bi"), ("BM25 (exact words)", "bm25"),
                       ("hybrid: BM25 + bi-encoder, reciprocal rank fusion", "hybrid")]
RERANKER_CHOICES = [("late interaction (token vectors, MaxSim)", "late"), ("cross-encoder (read together)", "cross"),
                    ("cross-encoder by passages, MaxP (long documents past its 512-token cut)", "cross:maxp"),
                    ("cross-encoder again at exact fp32 (the reference)", "cross@fp32"),
                    ("cross-encoder again, our int8 engine (packed, oneDNN)", "cross@int8-packed"),
                    ("cross-encoder again, onnxruntime on the shipped int8 ONNX file", "cross@int8")]
PRECISIONS = [("auto (fastest that ranks as fp32 does, on this CPU)", "auto"), ("bf16", "bf16"),
              ("int8 (packed, oneDNN)", "int8"), ("exact fp32", "fp32")]
DEFAULT_PROJECTION_N = 10_000


# ---- corpus choice -------------------------------------------------------------------------


def builtin_corpus_choices() -> list[tuple[str, str]]:
    """(title, name) of each shipped corpus, after the prebuilt index if one is configured."""
    index = configured_index()
    offered = [] if index is None else [
        (f"Prebuilt index: {index.corpus.name} ({len(index.corpus):,} documents)", INDEX_CHOICE)]
    return offered + [(f"{info.title} ({info.name})", info.name) for info in list_sets()]


def corpus_input_visibility(source: str):
    """Show only the input for the chosen corpus source (paste box, upload, or built-in picker)."""
    return tuple(gr.update(visible=source == option) for option in SOURCES)


# ---- the comparison callback -----------------------------------------------------------------


def _projection(costs: dict, n) -> tuple[str, object]:
    try:
        n = int(n)
    except (TypeError, ValueError):
        n = DEFAULT_PROJECTION_N
    n = max(2, min(n, 10**9))
    unit = UnitCosts(**costs)
    return plots.projection_markdown(unit, n), plots.projection_figure(unit, n)


def _inspect_choices(result: Comparison) -> list[tuple[str, str]]:
    choices = []
    for hit in result.shown_reranked():
        short = " ".join(hit.text.split())
        short = short if len(short) <= 70 else short[:70] + "…"
        choices.append((f"#{hit.rank} [{hit.id}] {short}", hit.id))
    return choices


def run_comparison(
    query: str,
    corpus_source: str = "Paste",
    corpus_text: str = "",
    corpus_file: str | None = None,
    builtin_corpus: str | None = None,
    top_k: float = 10,
    bi_encoder: str = DEFAULT_BI_ENCODER,
    cross_encoder: str = DEFAULT_CROSS_ENCODER,
    score_all: bool = False,
    precision: str = "auto",
    projection_n: float = DEFAULT_PROJECTION_N,
    first_stage: str = "bi",
    rerankers: list[str] | None = None,
    labels: dict | None = None,
    cross_label: str | None = None,
    bench: dict | None = None,
    progress=gr.Progress(),
):
    """Rank with the first stage, re-rank with each re-ranker; returns the page's outputs, the comparison JSON among them.

    `labels` (a gr.State, not an API parameter) are a labelled query's relevance grades set by the
    Evaluate tab: the board shows each document's grade when this comparison is that query.
    `bench` (a gr.State): the workbench's session (judgments, the open case; `ui/workbench_panel.py`):
    the board shows this query's judgments, and the comparison's rankings are kept for the progress.
    `cross_label`: for a cross-encoder with several labels (a pair classifier), the label that ranks.
    """
    try:
        # The order they run in is the pipeline's, whatever order the boxes were ticked in.
        kinds = [kind for kind in PAGE_ENTRIES if kind in (["cross"] if rerankers is None else rerankers)]
        if not kinds:
            raise ExplorerError("Pick at least one re-ranker (late interaction or the cross-encoder).")
        index = configured_index()
        corpus = corpus_from_source(corpus_source, corpus_text, corpus_file, builtin_corpus,
                                    None if index is None else index.corpus)
        prebuilt = corpus_source == "Built-in" and builtin_corpus == INDEX_CHOICE
        work = comparison_work(
            check_query(query), corpus, first_stage or "bi", kinds, bi_encoder, cross_encoder, precision or "auto",
            bool(score_all), top_k, shipped=corpus_source == "Built-in", prebuilt=prebuilt,
        )
        with by_work(work, "a comparison", gradio_progress(progress)):
            result = compare(
                query,
                corpus,
                top_k=10 if top_k is None else top_k,
                bi_encoder=bi_encoder,
                cross_encoder=cross_encoder,
                score_all=bool(score_all),
                precision=precision or "auto",
                progress=lambda fraction, message: progress(fraction, desc=message),
                first_stage=first_stage or "bi",
                rerankers=kinds,
                index=configured_index() if prebuilt else None,
                cross_label=cross_label or None,
            )
    except ExplorerError as error:
        raise shown_error(error, title="Cannot compare") from None
    costs = asdict(unit_costs(result))
    titles = {doc.id: doc.title for doc in corpus.documents if doc.title}
    projection_md, projection_fig = _projection(costs, projection_n)
    csv_path, json_path = write_downloads(result, request_folder("results"))
    data = result.to_dict()
    # Per-session state: only the shown documents (the ones "Inspect" can pick), not the corpus.
    shown = {hit.id: hit.text for hit in result.shown_reranked()}
    # The contrast panel explains the label that ranked here (a pair classifier's chosen label).
    # The board is redrawn from the kept comparison as the visitor grades (no model runs again);
    # `inputs` are what a saved case records of the page.
    state = {"query": result.query, "texts": shown, "costs": costs, "cross_encoder": cross_encoder,
             "cross_label": cross_label or None,
             "ranks": {hit.id: hit.rank for hit in result.shown_reranked()},
             "comparison": result, "board_texts": board_texts(result, corpus), "titles": titles,
             "labels": result.grades_from(labels) or {},
             "inputs": {"source": corpus_source, "text": corpus_text, "file": corpus_file, "builtin": builtin_corpus,
                        "settings": {"query": result.query, "first_stage": first_stage or "bi", "rerankers": kinds,
                                     "bi_encoder": bi_encoder, "cross_encoder": cross_encoder,
                                     "precision": precision or "auto", "top_k": result.top_k,
                                     "cross_label": cross_label or None, "score_all": bool(score_all)}}}
    choices = _inspect_choices(result)
    bench = with_rankings(bench, result)
    return (
        results_view.summary_html(result),
        board_for(state, bench),
        results_view.agreement_html(result),
        plots.timings_figure(result),
        plots.scatter_figure(result),
        plots.slope_figure(result),
        projection_md,
        projection_fig,
        [csv_path, json_path],
        data,
        state,
        gr.update(choices=choices, value=choices[0][1] if choices else None),
        bench,
    )


def label_choices(cross_encoder: str):
    """The ranking-label picker's choices for the chosen cross-encoder: its labels where it is a
    pair classifier already on this machine (offline or registered; nothing is downloaded for
    this), else none (the model's default label ranks; a label can still be typed)."""
    choice = next((c for c in model_choices("cross") if c.id == cross_encoder and c.offline), None)
    labels: list[str] = []
    if choice is not None and (choice.path is None or choice.path.suffix != ".onnx"):
        try:
            model = load_model(cross_encoder, "cross")
            labels = model.labels if model.num_labels > 1 else []
        except ExplorerError:
            labels = []
    return gr.update(choices=labels, value=None, interactive=bool(labels))


def update_projection(state: dict | None, n):
    """Event handler: the cost projection redrawn for a corpus of `n` documents from the unit costs the last
    comparison measured (`state["costs"]`); no change before any comparison ran."""
    if not state:
        return gr.update(), gr.update()
    return _projection(state["costs"], n)


# ---- layout ----------------------------------------------------------------------------------


def _model_dropdown(kind: str, label: str) -> gr.Dropdown:
    choices = [(c.label, c.id) for c in model_choices(kind)]
    return gr.Dropdown(
        choices=choices,
        value=choices[0][1],
        label=label,
        allow_custom_value=True,
        info="Offline models first; or type a hub id (needs a network).",
    )


@dataclass
class CompareTab:
    """What the shell wires to the other tabs: the inputs a click-through fills, and the run event."""

    query: gr.Textbox
    source: gr.Radio
    text: gr.Textbox
    file: gr.File
    builtin: gr.Dropdown
    top_k: gr.Slider
    state: gr.State
    inspect_pick: gr.Dropdown
    inspect_go: gr.Button
    fn: object  # the compare callback, for `.then(tab.fn, tab.inputs, tab.outputs)`
    inputs: list
    outputs: list
    # The Evaluate tab's click-through also sets the pipeline and the query's relevance labels
    # (an input of `fn`, so the lists carry grade badges).
    first_stage: gr.Radio | None = None
    rerankers: gr.CheckboxGroup | None = None
    labels: gr.State | None = None
    components: dict | None = None  # every component by name, for the workbench's restore and the landing page
    bench: object = None  # the workbench panel (`ui/workbench_panel.py`)


def build_compare_tab() -> CompareTab:
    """Build the tab's components and events inside the caller's open Blocks / Tab."""
    c: dict = {}
    # Made first (drawn in the settings column): the examples beside the corpus fill it too.
    c["top_k"] = gr.Slider(1, 50, value=10, step=1, label="top-k: candidates the cross-encoder re-ranks", elem_id="top-k",
                           render=False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            c["query"] = gr.Textbox(label="Query", placeholder="e.g. python snake", lines=1, elem_id="query")
            c["source"] = gr.Radio(SOURCES, value="Paste", label="Corpus", elem_id="corpus-source")
            c["text"] = gr.Textbox(
                value="", label="Documents, one per line", lines=4, max_lines=4, elem_id="corpus-text",
                placeholder="Paste documents here, one per line",
            )
            c["file"] = gr.File(
                label="Corpus file (.txt one per line, .jsonl with id/text, .csv with a text column)",
                file_types=[".txt", ".jsonl", ".csv"], type="filepath", visible=False, elem_id="corpus-file",
            )
            shipped = builtin_corpus_choices()
            c["builtin"] = gr.Dropdown(
                shipped, value=shipped[0][1] if shipped else None, label="Built-in corpus", visible=False, elem_id="corpus-builtin"
            )
            c["examples"] = gr.Examples(
                [[q, "Paste", corpus, k] for q, corpus, k in EXAMPLES],
                [c["query"], c["source"], c["text"], c["top_k"]],
                label="Classic differences: click one to run it",
                example_labels=EXAMPLE_LABELS,
                api_visibility="private",
                cache_examples=False,
            )
        with gr.Column(scale=2, elem_classes="settings"):
            with gr.Row():
                c["bi"] = _model_dropdown("bi", "Bi-encoder (retrieve)")
                c["cross"] = _model_dropdown("cross", "Cross-encoder (re-rank)")
            c["top_k"].render()
            c["precision"] = gr.Radio(PRECISIONS, value="auto", label="Precision (CPU)", elem_id="precision")
            c["score_all"] = gr.Checkbox(label="Also score the whole corpus with the cross-encoder", value=False,
                                         elem_id="score-all")
            with gr.Accordion("Pipeline: first stage, re-rankers, ranking label", open=False, elem_id="pipeline"):
                c["first_stage"] = gr.Radio(FIRST_STAGE_CHOICES, value="bi", label="First stage (ranks the whole corpus)",
                                            elem_id="first-stage")
                c["rerankers"] = gr.CheckboxGroup(RERANKER_CHOICES, value=["cross"], elem_id="rerankers",
                                                  label="Re-rankers (each re-orders the same top-k, in this order)")
                c["preset"] = gr.Button("Teacher's preset: all four ways at once", size="sm", elem_id="preset-all")
                c["cross_label"] = gr.Dropdown(
                    [], value=None, label="Label that ranks (pair classifiers only)", allow_custom_value=True,
                    interactive=False, elem_id="cross-label",
                    info="A cross-encoder with several labels (NLI) ranks by one label's probability; empty: its default.",
                )
            c["run"] = gr.Button("Compare", variant="primary", size="lg", elem_id="run-compare")
    # Exact words and one vector per text, fused (hybrid), then token vectors matched late, then both texts read together.
    c["preset"].click(lambda: ("hybrid", ["late", "cross"]), None, [c["first_stage"], c["rerankers"]],
                      queue=False, api_visibility="private")
    c["source"].change(
        corpus_input_visibility,
        c["source"], [c["text"], c["file"], c["builtin"]], queue=False, api_visibility="private",
    )
    c["summary"] = gr.HTML(label="Summary", elem_id="summary")
    # One board for every pipeline: a column per ranking; its script grades, picks and lights rows up.
    c["board"] = gr.HTML(label="Rankings", elem_id="board", js_on_load=BOARD_JS)
    c["state"] = gr.State(None)  # the last comparison (kept to redraw the board), per visitor
    c["labels"] = gr.State(None)  # relevance grades of one labelled query, set by the Evaluate tab
    bench = build_workbench_panel(c)
    c["bench"] = bench.state  # the why panel lists judged-relevant documents no column shows
    build_contrast_panel(c["state"])
    build_why_panel(c["state"], c)
    with gr.Row(elem_classes="inspect-row"):
        c["inspect_pick"] = gr.Dropdown([], label="Look inside one pair", scale=4, elem_id="inspect-pick")
        c["inspect_go"] = gr.Button("Inspect this pair →", scale=1)
    with gr.Tabs(elem_id="board-tabs"):
        with gr.Tab("Timings", id="timings"):
            c["timings"] = gr.Plot(label="Timings", elem_id="timing-plot")
        with gr.Tab("Cost projection", id="projection"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2):
                    c["projection_n"] = gr.Number(DEFAULT_PROJECTION_N, label="Project the cost for N documents",
                                                  precision=0, minimum=2)
                    c["projection_md"] = gr.Markdown(label="Cost projection table", elem_id="projection")
                with gr.Column(scale=3):
                    c["projection_plot"] = gr.Plot(label="Cost projection", elem_id="projection-plot")
        with gr.Tab("Agreement", id="agreement"):
            c["agreement"] = gr.HTML(elem_id="agreement")
        with gr.Tab("Plots", id="plots"):
            with gr.Row(equal_height=False):
                c["scatter"] = gr.Plot(label="First-stage score vs re-ranker score", elem_id="scatter-plot")
                c["slope"] = gr.Plot(label="Rank shift", elem_id="slope-plot")
        with gr.Tab("Downloads", id="downloads"):
            c["downloads"] = gr.File(label="Download results (CSV, JSON)", file_count="multiple", interactive=False)
            with gr.Accordion("Comparison JSON", open=False):
                c["json"] = gr.JSON(label="comparison")

    with gr.Accordion("Bi-encoder or cross-encoder? (a short explanation)", open=False):
        gr.Markdown(EXPLANATION)

    inputs = [c[k] for k in ("query", "source", "text", "file", "builtin", "top_k", "bi", "cross", "score_all", "precision", "projection_n", "first_stage", "rerankers", "labels", "cross_label")] + [bench.state]
    outputs = [c[k] for k in ("summary", "board", "agreement", "timings", "scatter", "slope", "projection_md", "projection_plot", "downloads", "json", "state", "inspect_pick")] + [bench.state]
    # One concurrency group for every way into a comparison; long ones go to the long-job lane.
    # After each, an open case keeps the settings and the case bar is redrawn.
    def then_bar(event):
        return event.then(after_compare, [c["state"], bench.state, c["query"]], bench.bar, api_visibility="private")

    c["compare_event"] = c["run"].click(run_comparison, inputs, outputs, api_name="compare", **event_lane("compare"))
    then_bar(c["compare_event"])
    c["submit_event"] = c["query"].submit(run_comparison, inputs, outputs, api_visibility="private",
                                          **event_lane("compare"))
    then_bar(c["submit_event"])
    then_bar(c["examples"].load_input_event.then(run_comparison, inputs, outputs, api_visibility="private",
                                                 **event_lane("compare")))
    for button, step in ((bench.previous, -1), (bench.next, 1)):
        then_bar(button.click(lambda b, q, s=step: step_query(b, q, s), [bench.state, c["query"]], c["query"],
                              api_visibility="private").then(run_comparison, inputs, outputs, api_visibility="private",
                                                             **event_lane("compare")))
    c["cross"].change(label_choices, c["cross"], c["cross_label"], api_visibility="private")
    c["projection_n"].change(
        update_projection, [c["state"], c["projection_n"]], [c["projection_md"], c["projection_plot"]],
        api_visibility="private",
    )

    return CompareTab(
        c["query"], c["source"], c["text"], c["file"], c["builtin"], c["top_k"], c["state"], c["inspect_pick"],
        c["inspect_go"], run_comparison, inputs, outputs,
        first_stage=c["first_stage"], rerankers=c["rerankers"], labels=c["labels"], components=c, bench=bench,
    )

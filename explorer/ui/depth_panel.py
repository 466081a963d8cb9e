"""The Evaluate tab's "How deep to re-rank" panel: the depth sweep (quality and cost against k, the
chosen k), where to cut (score threshold, calibration) and the context budget, on a shipped set or
uploaded labels. The computation is `pipeline/depth_study.py`; the figures `views/depth_plots.py`.
"""

from __future__ import annotations

import gradio as gr

from explorer.data.builtin_corpora import list_sets
from explorer.data.labels import labels_from_inputs
from explorer.errors import ExplorerError
from explorer.pipeline.context_budget import DEFAULT_BUDGETS, parse_budgets
from explorer.pipeline.depth import parse_depths
from explorer.pipeline.depth_study import depth_study
from explorer.pipeline.experiment import check_page_pairs, parse_pipelines
from explorer.pipeline.work import labelled_work
from explorer.ui.lanes import by_work, event_lane, gradio_progress
from explorer.store.cases import default_store
from explorer.store.labelled import labels_from_link
from explorer.ui.messages import shown_error
from explorer.ui.tables import filled, results_table
from explorer.views import depth_plots

DEPTH_PIPELINES = ["bi", "bm25", "hybrid", "bi+cross", "bm25+cross", "hybrid+cross", "bi+late", "hybrid+late+cross"]
DEFAULT_DEPTH_PIPELINES = ["bi+cross", "hybrid+cross"]
CASE_SOURCE = "Case link"  # a workbench case: its corpus, queries and judgments
PAGE_DEPTHS = "5,10,20,50"  # the page's default; 100 and 200 on python_docs are the command line's (MAX_PAGE_EVAL_PAIRS)


def run_depth(label_source: str = "Built-in set", builtin_corpus: str | None = None, labels_zip: str | None = None,
              pipelines: list[str] | None = None, depths: str = PAGE_DEPTHS,
              budgets: str = ",".join(map(str, DEFAULT_BUDGETS)), case_link: str = "", progress=gr.Progress()):
    """Sweep the ticked pipelines over the depths; returns the summary, depth chart and table, threshold
    words, threshold and reliability figures, context-budget table and the JSON. `case_link` (with the
    source "Case link"): a workbench case's edit or read-only link, whose judgments are the labels."""
    try:
        chosen = [p for p in DEPTH_PIPELINES if p in (pipelines or [])]
        if not chosen:
            raise ExplorerError("Tick at least one pipeline.")
        parsed = parse_pipelines(chosen)
        swept, token_budgets = parse_depths(depths or ""), parse_budgets(budgets or "")
        data = (labels_from_link(default_store(), case_link) if label_source == CASE_SOURCE else
                labels_from_inputs(label_source, builtin_corpus, labels_zip, None, None, None))
        deepest = min(max(swept), len(data.corpus))
        check_page_pairs(chosen, len(data.queries), deepest, len(data.corpus))
        work = labelled_work(data.corpus, data.queries, deepest, len({(f, k) for f, kinds in parsed for k in kinds}),
                             False, encodes=any(first in ("bi", "hybrid") for first, _ in parsed),
                             uploaded=label_source != "Built-in set")
        with by_work(work, "a depth sweep", gradio_progress(progress)):
            study = depth_study(data.corpus, data.queries, data.qrels, chosen, swept, token_budgets,
                                progress=lambda fraction, message: progress(fraction, desc=message),
                                persist_embeddings=True)
        study.sweep.notes[:0] = data.notes
    except ExplorerError as error:
        raise shown_error(error, "Cannot sweep") from None
    depth_header, depth_table = depth_plots.depth_rows(study)
    context_header, context_table = depth_plots.context_rows(study)
    return (
        depth_plots.depth_markdown(study),
        depth_plots.depth_figure(study),
        filled(depth_header, depth_table),
        depth_plots.threshold_markdown(study),
        depth_plots.threshold_figure(study),
        depth_plots.reliability_figure(study),
        filled(context_header, context_table),
        study.to_dict(),
    )


def _toggle(source: str):
    return (gr.update(visible=source == "Built-in set"), gr.update(visible=source == "Upload"),
            gr.update(visible=source == CASE_SOURCE))


def build_depth_panel() -> object:
    """The panel's components in the current context; returns the run event."""
    sets = list_sets()
    gr.Markdown(
        "**How deep to re-rank, and where to cut.** Each pipeline re-ranks its first stage's top k for every k "
        "(each pair is scored once, for the deepest k): nDCG@10, the first stage's R@k (the ceiling re-ranking "
        "works under) and ms per query. Then each re-ranker's scores over judged documents, the threshold that "
        "maximises F1, the calibration of its probability column, and how much relevant text fits an LLM's "
        "context. The command line's `eval --depths 5,10,20,50,100` does the same without the page's limits."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            source = gr.Radio(["Built-in set", "Upload", CASE_SOURCE], value="Built-in set", label="Labelled data",
                              elem_id="depth-source")
            with gr.Group(visible=True) as builtin_group:
                builtin = gr.Dropdown([(f"{info.title} ({info.name})", info.name) for info in sets],
                                      value=sets[0].name, label="Shipped set", elem_id="depth-builtin")
            with gr.Group(visible=False) as upload_group:
                labels_zip = gr.File(label="One BEIR zip: corpus.jsonl, queries.jsonl, qrels/test.tsv",
                                     file_types=[".zip"], type="filepath", elem_id="depth-zip")
            with gr.Group(visible=False) as case_group:
                case_link = gr.Textbox(label="A workbench case's link (edit or read-only): its judgments are the labels",
                                       placeholder="http://…/?case=…", elem_id="depth-case")
        with gr.Column(scale=2):
            pipelines = gr.CheckboxGroup(DEPTH_PIPELINES, value=DEFAULT_DEPTH_PIPELINES, label="Pipelines",
                                         elem_id="depth-pipelines")
            depths = gr.Textbox(PAGE_DEPTHS, label="Re-rank depths k (comma-separated; clipped to the corpus)",
                                elem_id="depth-depths")
            budgets = gr.Textbox(",".join(map(str, DEFAULT_BUDGETS)), label="Context budgets (tokens)",
                                 elem_id="depth-budgets")
            run = gr.Button("Sweep depths", variant="primary", elem_id="run-depth")
    summary = gr.Markdown(elem_id="depth-summary")
    chart = gr.Plot(label="Quality and cost against re-rank depth", elem_id="depth-chart")
    table = results_table("Per pipeline and depth", "depth-table")
    gr.Markdown("**Where to cut**: a score threshold on the re-ranked list, and is the probability honest?")
    threshold_words = gr.Markdown(elem_id="threshold-summary")
    threshold_chart = gr.Plot(label="Score distributions and a threshold's precision / recall / F1",
                              elem_id="threshold-chart")
    reliability = gr.Plot(label="Reliability diagram", elem_id="reliability-chart")
    context = results_table("Context budget: top documents that fit (means over queries)", "context-table")
    with gr.Accordion("Sweep JSON", open=False):
        report_json = gr.JSON(label="sweep")
    source.change(_toggle, source, [builtin_group, upload_group, case_group], queue=False, api_visibility="private")
    return run.click(
        run_depth, [source, builtin, labels_zip, pipelines, depths, budgets, case_link],
        [summary, chart, table, threshold_words, threshold_chart, reliability, context, report_json],
        api_name="evaluate_depths", **event_lane("evaluate_depths"),
    )

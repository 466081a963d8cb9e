"""The Evaluate tab: metrics of both stages on a shipped labelled corpus, per-query changes.

`build_eval_tab()` lays the tab out inside the caller's `gr.Tab`; the shell (`app.py`)
connects a chosen query to the Compare and Inspect tabs.
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from dataclasses import dataclass

import gradio as gr

from explorer.views import eval_plots
from explorer.data.builtin_corpora import get_set, list_sets, load_set
from explorer.budgets import MAX_EVAL_TOP_K, check_whole_corpus_pairs
from explorer.errors import ExplorerError
from explorer.pipeline.evaluate import EvalReport, evaluate

_REPORTS: OrderedDict[tuple, EvalReport] = OrderedDict()  # finished reports, newest last
_REPORTS_LOCK = threading.Lock()


@dataclass
class EvalTab:
    corpus: gr.Dropdown
    top_k: gr.Slider
    score_all: gr.Checkbox
    run: gr.Button
    metrics: gr.Dataframe
    chart: gr.Plot
    per_query: gr.Dataframe
    # {"corpus", "query_id", "query", "top_document", "first_relevant_document"} of the row clicked.
    selection: gr.State
    open_compare: gr.Button
    open_inspect: gr.Button
    run_event: object


def _describe(name: str) -> str:
    info = get_set(name)
    return f"**{html.escape(info.title)}**: {html.escape(info.teaches)}"


def corpus_changed(name: str):
    """Description, the set's usual top-k, and stage (c) on only where it is affordable."""
    info = get_set(name)
    affordable = not info.generated
    return _describe(name), gr.update(value=info.default_top_k), gr.update(value=affordable)


def _report_for(name: str, top_k: int, score_all: bool, progress) -> EvalReport:
    key = (name, top_k, score_all)
    with _REPORTS_LOCK:
        if key in _REPORTS:
            return _REPORTS[key]
    labelled = load_set(name)
    pairs = len(labelled.corpus) * len(labelled.queries)
    if score_all:
        check_whole_corpus_pairs(
            pairs, name, "Untick stage (c), or run `python -m explorer eval` from the command line."
        )
    report = evaluate(
        labelled.corpus, labelled.queries, labelled.qrels, top_k=top_k, score_all=score_all,
        persist_embeddings=True, progress=lambda fraction, message: progress(fraction, desc=message),
    )
    report.corpus_name = name
    with _REPORTS_LOCK:
        _REPORTS[key] = report
        while len(_REPORTS) > 16:
            _REPORTS.popitem(last=False)
    return report


def run_evaluation(corpus_name: str, top_k: float = 5, score_all: bool = True, progress=gr.Progress()):
    """Evaluate one shipped corpus; returns summary, metrics table, chart, per-query table, report JSON."""
    try:
        get_set(corpus_name)  # only names from the list, never a path
        top_k = int(top_k or 5)
        if not 1 <= top_k <= MAX_EVAL_TOP_K:
            raise ExplorerError(f"top-k must be between 1 and {MAX_EVAL_TOP_K} (got {top_k}).")
        report = _report_for(corpus_name, top_k, bool(score_all), progress)
    except ExplorerError as error:
        raise gr.Error(str(error)) from None
    metrics_header, metrics_rows = eval_plots.metrics_rows(report)
    query_header, query_rows = eval_plots.per_query_rows(report)
    return (
        eval_plots.summary_markdown(report),
        gr.update(value=metrics_rows, headers=metrics_header),
        eval_plots.change_figure(report),
        gr.update(value=query_rows, headers=query_header),
        report.to_dict(),
    )


def select_query(report: dict | None, event: gr.SelectData):
    """The clicked row's query, with the documents a click-through would open."""
    if not report or event is None or not event.row_value:
        return None, "Click a query in the table to open it in the other tabs."
    query_id = str(event.row_value[0])
    row = next((r for r in report["per_query"] if r["query_id"] == query_id), None)
    if row is None:
        return None, "That query is not in the last evaluation; run it again."
    texts = load_set(report["corpus_name"]).corpus.by_id()
    top = row["top_ids"]["rerank"][0]
    first_relevant = row["first_relevant_rank"].get("rerank")
    relevant_id = row["top_ids"]["rerank"][first_relevant - 1] if first_relevant and first_relevant <= 10 else None
    selection = {
        "corpus": report["corpus_name"],
        "top_k": report["top_k"],
        "query_id": query_id,
        "query": row["query"],
        "top_document": texts[top].text,
        "first_relevant_document": texts[relevant_id].text if relevant_id else None,
    }
    message = (
        f"Selected **{html.escape(query_id)}**: “{html.escape(row['query'])}”. Re-ranked first: "
        f"`{html.escape(top)}`; nDCG@10 {row['bi_encoder']['nDCG@10']:.3f} → {row['rerank']['nDCG@10']:.3f}."
    )
    return selection, message


def build_eval_tab() -> EvalTab:
    """The tab's components, laid out in the current gradio context (the caller's Tab)."""
    sets = list_sets()
    first = sets[0]
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            corpus = gr.Dropdown(
                [(f"{info.title} ({info.name})", info.name) for info in sets], value=first.name,
                label="Labelled corpus", elem_id="eval-corpus",
            )
            description = gr.Markdown(_describe(first.name), elem_id="eval-description")
        with gr.Column(scale=2):
            top_k = gr.Slider(1, MAX_EVAL_TOP_K, value=first.default_top_k, step=1, elem_id="eval-top-k",
                              label="top-k: bi-encoder candidates the cross-encoder re-ranks")
            score_all = gr.Checkbox(value=True, elem_id="eval-score-all",
                                    label="(c) also score the whole corpus with the cross-encoder (slow on large corpora)")
            run = gr.Button("Evaluate", variant="primary", elem_id="run-eval")
    summary = gr.Markdown(elem_id="eval-summary")
    metrics = gr.Dataframe(label="Mean over queries (trec_eval measures, 0 to 1)", interactive=False,
                           elem_id="eval-metrics")
    chart = gr.Plot(label="Per-query change", elem_id="eval-chart")
    per_query = gr.Dataframe(label="Per query (click a row to pick it)", interactive=False, wrap=True,
                             elem_id="eval-per-query")
    chosen = gr.Markdown("Click a query in the table to open it in the other tabs.", elem_id="eval-chosen")
    with gr.Row():
        open_compare = gr.Button("Compare this query →", elem_id="eval-open-compare")
        open_inspect = gr.Button("Inspect query + top re-ranked document →", elem_id="eval-open-inspect")
    report_state = gr.State(None)
    selection = gr.State(None)

    corpus.change(corpus_changed, corpus, [description, top_k, score_all], api_visibility="private")
    run_event = run.click(
        run_evaluation, [corpus, top_k, score_all], [summary, metrics, chart, per_query, report_state],
        api_name="evaluate",
    )
    per_query.select(select_query, [report_state], [selection, chosen], api_visibility="private")
    return EvalTab(corpus, top_k, score_all, run, metrics, chart, per_query, selection, open_compare,
                   open_inspect, run_event)

"""The Evaluate tab: several pipelines against a baseline on a shipped set or your own labels
(significance, cost against quality, TREC runs, where two pipelines disagree), and the three
stages (bi-encoder, re-ranked, cross-encoder over all) on a shipped set, per-query changes.

`build_eval_tab()` lays the tab out inside the caller's `gr.Tab`; the shell (`app.py`)
connects a chosen query to the Compare and Inspect tabs.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from explorer.views import eval_plots, moves_views
from explorer.ui.moves_panel import moves_summary, show_moves
from explorer.data.builtin_corpora import get_set, list_sets, load_set
from explorer.budgets import MAX_EVAL_TOP_K, check_uploaded_runs, check_whole_number
from explorer.data.labels import LabelledData, labels_from_inputs, write_corpus_jsonl
from explorer.data.trec_runs import read_named_runs, write_runs_zip
from explorer.errors import ExplorerError
from explorer.pipeline.compare import FIRST_STAGES
from explorer.pipeline.evaluate import evaluate_shipped_set, shipped_report_is_kept, three_stage_dict
from explorer.pipeline.experiment import ExperimentReport, check_page_pairs, disagreements, parse_pipelines, run_experiment
from explorer.pipeline.work import labelled_work
from explorer.ui.lanes import by_work, event_lane, gradio_progress
from explorer.ui.messages import shown_error
from explorer.ui.tables import filled, results_table
from explorer.ui.served_files import request_folder



@dataclass
class EvalTab:
    """The Evaluate tab's components and events the app shell wires to the other tabs (the clicked query row
    opens in Compare or Inspect)."""
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
    pipelines: "PipelinesPanel"  # several pipelines against a baseline, your own labels


def _describe(name: str) -> str:
    info = get_set(name)
    return f"**{html.escape(info.title)}**: {html.escape(info.teaches)}"


def corpus_changed(name: str):
    """Description, the set's usual top-k, and stage (c) on only where it is affordable."""
    info = get_set(name)
    affordable = not info.generated
    return _describe(name), gr.update(value=info.default_top_k), gr.update(value=affordable)


def run_evaluation(corpus_name: str, top_k: float = 5, score_all: bool = True, progress=gr.Progress()):
    """Evaluate one shipped corpus; returns summary, metrics table, chart, per-query table, report JSON."""
    try:
        get_set(corpus_name)  # only names from the list, never a path
        top_k = int(top_k or 5)
        if not 1 <= top_k <= MAX_EVAL_TOP_K:
            raise ExplorerError(f"top-k must be between 1 and {MAX_EVAL_TOP_K} (got {top_k}).")
        if shipped_report_is_kept(corpus_name, top_k, bool(score_all)):
            work = 0  # answered from the kept report: nothing to measure or queue
        else:
            labelled = load_set(corpus_name)
            work = labelled_work(labelled.corpus, labelled.queries, top_k, 1, bool(score_all), encodes=True,
                                 uploaded=False)
        with by_work(work, "an evaluation", gradio_progress(progress)):
            report = evaluate_shipped_set(corpus_name, top_k, bool(score_all),
                                          progress=lambda fraction, message: progress(fraction, desc=message))
    except ExplorerError as error:
        raise shown_error(error) from None
    metrics_header, metrics_rows = eval_plots.metrics_rows(report)
    query_header, query_rows = eval_plots.per_query_rows(report)
    return (
        eval_plots.summary_markdown(report),
        filled(metrics_header, metrics_rows),
        eval_plots.change_figure(report),
        filled(query_header, query_rows),
        three_stage_dict(report),
    )


def select_query(report: dict | None, event: gr.SelectData):
    """The clicked row's query, with the documents a click-through would open."""
    if not report or event is None or not event.row_value:
        return None, "Click a query in the table to open it in the other tabs."
    query_id = str(event.row_value[0])
    row = next((r for r in report["per_query"] if r["query_id"] == query_id), None)
    if row is None:
        return None, "That query is not in the last evaluation; run it again."
    labelled = load_set(report["corpus_name"])
    texts = labelled.corpus.by_id()
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
        # The query's relevance labels, so Compare can show each document's grade.
        "labels": {"corpus_name": labelled.corpus.name, "corpus_size": len(labelled.corpus), "query": row["query"],
                   "grades": labelled.qrels.get(query_id, {})},
    }
    message = (
        f"Selected **{html.escape(query_id)}**: “{html.escape(row['query'])}”. Re-ranked first: "
        f"`{html.escape(top)}`; nDCG@10 {row['bi_encoder']['nDCG@10']:.3f} → {row['rerank']['nDCG@10']:.3f}."
    )
    return selection, message


def build_eval_tab() -> EvalTab:
    """The tab's components, laid out in the current gradio context (the caller's Tab): two inner
    tabs, several pipelines against a baseline (any labels) and the three stages (shipped sets)."""
    with gr.Tabs(elem_id="eval-modes"):
        with gr.Tab("Pipelines against a baseline", id="eval-pipelines"):
            panel = build_pipelines_panel()
        with gr.Tab("Three stages on a shipped set", id="eval-stages"):
            tab = _build_three_stages()
        with gr.Tab("How deep to re-rank, where to cut", id="eval-depth"):
            from explorer.ui.depth_panel import build_depth_panel

            build_depth_panel()
    tab.pipelines = panel
    return tab


def _build_three_stages() -> EvalTab:
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
    metrics = results_table("Mean over queries (trec_eval measures, 0 to 1)", "eval-metrics")
    chart = gr.Plot(label="Per-query change", elem_id="eval-chart")
    per_query = results_table("Per query (click a row to pick it)", "eval-per-query", wrap=True)
    chosen = gr.Markdown("Click a query in the table to open it in the other tabs.", elem_id="eval-chosen")
    with gr.Row():
        open_compare = gr.Button("Compare this query →", elem_id="eval-open-compare")
        open_inspect = gr.Button("Inspect query + top re-ranked document →", elem_id="eval-open-inspect")
    report_state = gr.State(None)
    selection = gr.State(None)

    corpus.change(corpus_changed, corpus, [description, top_k, score_all], api_visibility="private")
    run_event = run.click(
        run_evaluation, [corpus, top_k, score_all], [summary, metrics, chart, per_query, report_state],
        api_name="evaluate", **event_lane("evaluate"),
    )
    per_query.select(select_query, [report_state], [selection, chosen], api_visibility="private")
    return EvalTab(corpus, top_k, score_all, run, metrics, chart, per_query, selection, open_compare,
                   open_inspect, run_event, pipelines=None)


# ---- several pipelines against a baseline, on a shipped set or your own labels ------------------

LABEL_SOURCES = ["Built-in set", "Upload"]
PIPELINE_CHOICES = ["bm25", "bi", "hybrid", "bi+late", "bi+cross", "bi+cross:maxp", "bm25+cross", "hybrid+cross", "hybrid+late+cross"]
DEFAULT_PIPELINES = ["bm25", "bi", "bi+cross"]
DEFAULT_BASELINE = "bi"
COMPARE_MAX_TOP_K = 50  # the Compare tab's top-k slider stops here


@dataclass
class PipelinesPanel:
    """The Evaluate tab's several-pipelines panel: the disagreement row clicked and the events the shell
    chains "open in Compare" to."""
    # {"query", "corpus" (a shipped set's name) or "corpus_file", "top_k", "first_stage", "rerankers",
    #  "labels": {"corpus_name", "corpus_size", "query", "grades"}} of the disagreement row clicked.
    selection: gr.State
    select_event: object  # the click on a disagreement row; the shell chains "open in Compare" to it
    run_event: object
    # The labelled data's inputs, which "Evaluate this case" fills with the case's corpus, queries and qrels.
    source: gr.Radio | None = None
    files: tuple | None = None  # (corpus, queries, qrels) file inputs
    three_files: gr.Accordion | None = None  # the accordion they sit in, opened when they are filled


def _labelled_corpus_for_compare(data: LabelledData, source: str, builtin: str | None, upload_name: str) -> dict:
    """Where the Compare tab finds this corpus: a shipped set by name, or the uploaded corpus written
    once as JSON lines (a zip cannot be opened there)."""
    if source != "Upload":
        return {"corpus": builtin, "corpus_file": None, "corpus_name": data.corpus.name}
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(upload_name).stem).strip(".-") or "labelled"
    path = write_corpus_jsonl(data.corpus, request_folder("labels") / f"{stem}-corpus.jsonl")
    return {"corpus": None, "corpus_file": str(path), "corpus_name": path.name}


def _default_pair(report: ExperimentReport) -> tuple[str, str]:
    names = report.pipelines
    a = report.baseline if report.baseline in names else names[0]
    others = [n for n in names if n != a]
    return a, (others[-1] if others else a)


def run_pipelines(
    label_source: str = "Built-in set",
    builtin_corpus: str | None = None,
    labels_zip: str | None = None,
    corpus_file: str | None = None,
    queries_file: str | None = None,
    qrels_file: str | None = None,
    pipelines: list[str] | None = None,
    baseline: str | None = DEFAULT_BASELINE,
    run_files: list[str] | None = None,
    top_k: float = 10,
    progress=gr.Progress(),
):
    """Evaluate every pipeline (and uploaded run) in one run; returns summary, metrics, significance,
    cost-quality chart, the runs zip, the disagreement pickers and table, and the report JSON."""
    try:
        top_k = check_whole_number(top_k, "top-k")
        if not 1 <= top_k <= MAX_EVAL_TOP_K:
            raise ExplorerError(f"top-k must be between 1 and {MAX_EVAL_TOP_K} (got {top_k}).")
        pipelines = [p for p in PIPELINE_CHOICES if p in (pipelines or [])] + \
            [p for p in (pipelines or []) if p not in PIPELINE_CHOICES]
        if not pipelines:
            raise ExplorerError("Tick at least one pipeline.")
        check_uploaded_runs([Path(path).stat().st_size for path in run_files or []])
        external = read_named_runs(run_files)
        data = labels_from_inputs(label_source, builtin_corpus, labels_zip, corpus_file, queries_file, qrels_file)
        check_page_pairs(pipelines, len(data.queries), min(top_k, len(data.corpus)), len(data.corpus))
        baseline = baseline or None
        if baseline is not None and baseline not in pipelines and baseline not in external:
            raise ExplorerError(f"The baseline {baseline!r} is not ticked; tick it or pick another baseline.")
        parsed = parse_pipelines(pipelines)
        work = labelled_work(data.corpus, data.queries, top_k, len({(f, k) for f, kinds in parsed for k in kinds}),
                             False, encodes=any(first in ("bi", "hybrid") for first, _ in parsed),
                             uploaded=label_source == "Upload")
        with by_work(work, "an evaluation of pipelines", gradio_progress(progress)):
            report = run_experiment(
                data.corpus, data.queries, data.qrels, pipelines, top_k=top_k, baseline=baseline,
                external_runs=external, persist_embeddings=True,
                progress=lambda fraction, message: progress(fraction, desc=message),
            )
        report.notes[:0] = data.notes
        if label_source == "Upload":  # name the set after what was uploaded, not the member inside the zip
            report.corpus_name = Path(labels_zip or corpus_file).name
        where = _labelled_corpus_for_compare(data, label_source, builtin_corpus, labels_zip or corpus_file or "labels")
    except ExplorerError as error:
        raise shown_error(error, "Cannot evaluate") from None
    labelled = where | {
        "corpus_size": len(data.corpus),
        "top_k": top_k,
        "queries": {q.id: q.text for q in data.queries},
        "qrels": {q.id: data.qrels.get(q.id, {}) for q in data.queries},
    }
    metrics_header, metrics_rows = eval_plots.experiment_metrics_rows(report)
    sig_header, sig_rows = eval_plots.significance_rows(report)
    a, b = _default_pair(report)
    dis_header, dis_rows = moves_views.disagreement_rows_with_moves(report, disagreements(report, a, b),
                                                                    labelled["queries"], labelled["qrels"])
    choices = list(report.pipelines)
    return (
        eval_plots.experiment_summary_markdown(report),
        filled(metrics_header, metrics_rows),
        eval_plots.significance_markdown(report),
        filled(sig_header, sig_rows),
        eval_plots.cost_quality_figure(report),
        write_runs_zip({name: report.rankings[name] for name in report.pipelines if name not in report.external_runs},
                       request_folder("runs") / "runs.zip"),
        gr.update(choices=choices, value=a),
        gr.update(choices=choices, value=b),
        filled(dis_header, dis_rows),
        report.to_dict(),
        report,
        labelled,
    )


def update_disagreements(report: ExperimentReport | None, labelled: dict | None, a: str | None, b: str | None):
    """The disagreement table for another pair of pipelines from the last run."""
    if report is None or not labelled or not a or not b:
        return gr.update()
    try:
        rows = disagreements(report, a, b)
    except ExplorerError as error:
        raise shown_error(error) from None
    header, rows = moves_views.disagreement_rows_with_moves(report, rows, labelled["queries"], labelled["qrels"])
    return filled(header, rows)


def _pipeline_for_compare(a: str, b: str) -> tuple[str, list[str]]:
    """The Compare tab shows one pipeline: b's if it re-ranks, else a's, else the first stage of
    b (or a; an imported run has none) followed by the cross-encoder."""
    for name in (b, a):
        first, *kinds = name.split("+")
        if kinds and first in FIRST_STAGES:
            return first, [k.split("@")[0] for k in kinds]
    firsts = [name.split("+")[0] for name in (b, a) if name.split("+")[0] in FIRST_STAGES]
    return (firsts[0] if firsts else "bi"), ["cross"]


def select_disagreement(labelled: dict | None, a: str | None, b: str | None, event: gr.SelectData):
    """The clicked query, with the corpus, pipeline and relevance grades Compare opens it with."""
    if not labelled or event is None or not event.row_value:
        raise gr.Error("Run an evaluation first, then click a query in the disagreement table.")
    query_id = str(event.row_value[0])
    if query_id not in labelled["queries"]:
        raise gr.Error("That query is not in the last evaluation; run it again.")
    query = labelled["queries"][query_id]
    first_stage, rerankers = _pipeline_for_compare(a or "bi", b or "bi")
    selection = {
        "query": query,
        "corpus": labelled["corpus"],
        "corpus_file": labelled["corpus_file"],
        "top_k": min(labelled["top_k"], COMPARE_MAX_TOP_K),
        "first_stage": first_stage,
        "rerankers": rerankers,
        "labels": {"corpus_name": labelled["corpus_name"], "corpus_size": labelled["corpus_size"],
                   "query": query, "grades": labelled["qrels"].get(query_id, {})},
    }
    return selection


def _toggle_upload(source: str):
    return gr.update(visible=source != "Upload"), gr.update(visible=source == "Upload")


def _baseline_choices(pipelines: list[str] | None, run_files: list[str] | None, current: str | None):
    names = list(pipelines or [])
    for path in run_files or []:
        names.append(Path(path).stem)
    value = current if current in names else (DEFAULT_BASELINE if DEFAULT_BASELINE in names else (names[0] if names else None))
    return gr.update(choices=names, value=value)


def build_pipelines_panel() -> PipelinesPanel:
    """Bring your own labels, tick pipelines and a baseline, evaluate; laid out in the current context."""
    sets = list_sets()
    gr.Markdown(
        "Evaluate several pipelines in one run, on a shipped set or **your own labels**, and test each "
        "against a baseline. Pipelines are `FIRST[+RERANKER...]` as the command line's `--pipelines` takes them."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            source = gr.Radio(LABEL_SOURCES, value=LABEL_SOURCES[0], label="Labelled data", elem_id="pipe-source")
            with gr.Group(visible=True) as builtin_group:
                builtin = gr.Dropdown([(f"{info.title} ({info.name})", info.name) for info in sets],
                                      value=sets[0].name, label="Shipped set", elem_id="pipe-builtin")
            with gr.Group(visible=False) as upload_group:
                labels_zip = gr.File(label="One BEIR zip: corpus.jsonl, queries.jsonl, qrels/test.tsv",
                                     file_types=[".zip"], type="filepath", elem_id="pipe-zip")
                with gr.Accordion("…or three files: corpus, queries, qrels (with a zip, queries or qrels here "
                                  "replace the zip's)", open=False, elem_id="pipe-three-files") as three_files:
                    with gr.Row():
                        corpus_file = gr.File(label="corpus (.jsonl/.csv/.txt)", type="filepath",
                                              file_types=[".jsonl", ".csv", ".txt"], elem_id="pipe-corpus")
                        queries_file = gr.File(label="queries (.jsonl/.csv/.txt)", type="filepath",
                                               file_types=[".jsonl", ".csv", ".txt"], elem_id="pipe-queries")
                        qrels_file = gr.File(label="qrels (TREC, .jsonl or BEIR .tsv)", type="filepath",
                                             elem_id="pipe-qrels")
            with gr.Accordion("External TREC runs to evaluate beside them (optional)", open=False, elem_id="pipe-runs-box"):
                run_files = gr.File(label="TREC runs, six columns 'qid Q0 docid rank score tag'; each is named after "
                                    "its file (prod.run → prod)", file_count="multiple", type="filepath",
                                    elem_id="pipe-runs")
        with gr.Column(scale=2):
            pipelines = gr.CheckboxGroup(PIPELINE_CHOICES, value=DEFAULT_PIPELINES, label="Pipelines",
                                         elem_id="pipe-pipelines")
            baseline = gr.Dropdown(DEFAULT_PIPELINES, value=DEFAULT_BASELINE, label="Baseline (the others are tested against it)",
                                   elem_id="pipe-baseline")
            top_k = gr.Slider(1, MAX_EVAL_TOP_K, value=10, step=1, elem_id="pipe-top-k",
                              label="top-k: first-stage candidates each re-ranker re-orders")
            run = gr.Button("Evaluate pipelines", variant="primary", elem_id="run-pipelines")
    summary = gr.Markdown(elem_id="pipe-summary")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            metrics = results_table("Mean over queries (trec_eval measures, 0 to 1) and ms per query",
                                    "pipe-metrics")
            runs_zip = gr.File(label="Every pipeline's TREC run (a zip of PIPELINE.run files)", interactive=False,
                               elem_id="pipe-runs-zip", height=80)
        with gr.Column(scale=1):
            chart = gr.Plot(label="Cost against quality", elem_id="pipe-cost-quality")
    significance_note = gr.Markdown(elem_id="pipe-significance-note")
    significance = results_table("Against the baseline", "pipe-significance")
    gr.Markdown("**Where two pipelines disagree**: queries with the largest difference in nDCG@10 first "
                "(then the lowest Kendall's τ). Click a query to open it in Compare, with each document's grade.")
    with gr.Row():
        disagree_a = gr.Dropdown([], label="Pipeline A", elem_id="pipe-disagree-a")
        disagree_b = gr.Dropdown([], label="Pipeline B", elem_id="pipe-disagree-b")
    disagreement = results_table("Queries, most disagreeing first (click one)", "pipe-disagreements", wrap=True)
    moves_words = gr.Markdown(elem_id="pipe-moves-summary")
    moves_panel = gr.HTML(elem_id="pipe-moves")
    with gr.Accordion("Report JSON", open=False):
        report_json = gr.JSON(label="report")
    report_state = gr.State(None)
    labelled_state = gr.State(None)
    selection = gr.State(None)

    source.change(_toggle_upload, source, [builtin_group, upload_group], queue=False, api_visibility="private")
    for trigger in (pipelines.change, run_files.change):
        trigger(_baseline_choices, [pipelines, run_files, baseline], baseline, queue=False, api_visibility="private")
    run_event = run.click(
        run_pipelines,
        [source, builtin, labels_zip, corpus_file, queries_file, qrels_file, pipelines, baseline, run_files, top_k],
        [summary, metrics, significance_note, significance, chart, runs_zip, disagree_a, disagree_b, disagreement,
         report_json, report_state, labelled_state],
        api_name="evaluate_pipelines", **event_lane("evaluate_pipelines"),
    )
    pair_inputs = [report_state, labelled_state, disagree_a, disagree_b]
    run_event.then(moves_summary, pair_inputs, moves_words, api_visibility="private")
    for picker in (disagree_a, disagree_b):
        picker.input(update_disagreements, [report_state, labelled_state, disagree_a, disagree_b], disagreement,
                     api_visibility="private").then(moves_summary, pair_inputs, moves_words, api_visibility="private")
    disagreement.select(show_moves, pair_inputs, moves_panel, api_visibility="private")
    select_event = disagreement.select(select_disagreement, [labelled_state, disagree_a, disagree_b], selection,
                                       api_visibility="private")
    return PipelinesPanel(selection, select_event, run_event, source, (corpus_file, queries_file, qrels_file),
                          three_files)

"""The Compare tab's workbench: grade on the board, save the page as a case, open a case link, walk the
case's queries.

Grades arrive from the board's script (`ui/board_script.py`) in a hidden textbox; the callback checks
them (`views/workbench.py:parse_grade`), records them (in the session, and with an edit link in the
store at once) and redraws the board from the kept comparison: no model runs again. The data work
is in `views/case_page.py` and `explorer/store`; this file lays out and wires.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.data.teaching_examples import EXAMPLES
from explorer.errors import ExplorerError
from explorer.store.cases import default_store
from explorer.ui.lanes import event_lane
from explorer.ui.messages import shown_error
from explorer.ui.served_files import request_folder
from explorer.views import case_page
from explorer.views.workbench import (board_for, case_links_html, case_panel_html, judged_queries, new_bench,
                                      parse_grade)

PRIVATE = {"api_visibility": "private"}


@dataclass
class WorkbenchPanel:
    """What the tab and the shell wire further: the session, the case bar, the query-list buttons and
    "Evaluate this case" (the shell sends its files to the Evaluate tab)."""
    state: gr.State  # the workbench session (views/workbench.py:new_bench)
    bar: gr.HTML
    previous: gr.Button
    next: gr.Button
    evaluate: gr.Button
    snapshot_pick: gr.Dropdown


def case_bar(bench: dict | None, query: str) -> str:
    """The case bar's HTML for `bench` with `query` current."""
    bench = bench or new_bench()
    access = bench.get("access")
    return case_panel_html(bench.get("name", ""), bench.get("queries", []), query,
                           judged_queries(bench.get("queries", []), bench.get("judgments"), bench.get("rankings", {})),
                           None if access is None else access.can_edit, bench.get("snapshots", []))


def on_grade(payload: str, state: dict | None, bench: dict | None):
    """A grade from the board: recorded (and committed with an edit link), the board and the bar redrawn."""
    if not state or not payload:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    try:
        doc_id, grade, reason = parse_grade(payload, set(state["board_texts"]))
        bench = case_page.record_grade(default_store(), bench, state["query"], doc_id, grade, reason)
    except ExplorerError as error:
        raise shown_error(error, title="Grade not saved") from None
    return bench, board_for(state, bench), case_bar(bench, state["query"]), ""


def _base_url(request: gr.Request | None) -> str:
    headers = dict(request.headers) if request is not None else {}
    scheme = headers.get("x-forwarded-proto", "http").split(",")[0]
    return f"{scheme}://{headers.get('host', '127.0.0.1:7860')}/"


def on_save(name: str, state: dict | None, bench: dict | None, request: gr.Request = None):
    """"Save as case": every session grade written, the two links shown once, the edit link kept open."""
    try:
        links, bench = case_page.save_case(default_store(), name, state, bench)
    except ExplorerError as error:
        raise shown_error(error, title="Case not saved") from None
    base = _base_url(request)
    return bench, case_links_html(base, links.edit_token, links.read_token), case_bar(bench, state["query"])


def on_queries(action: str, query: str, bench: dict | None):
    """Add the current query to the case's list, or remove it."""
    change = case_page.add_query if action == "add" else case_page.remove_query
    try:
        bench = change(default_store(), bench, query)
    except ExplorerError as error:
        raise shown_error(error) from None
    return bench, case_bar(bench, query)


def after_compare(state: dict | None, bench: dict | None, query: str):
    """After a comparison: an edit link's case keeps the page's settings and rankings; the bar is redrawn."""
    if state and bench and bench.get("access") is not None:
        try:
            case_page.keep_settings(default_store(), state, bench)
        except ExplorerError as error:
            raise shown_error(error) from None
    return case_bar(bench, query)


# The landing page: the seed's ambiguous "python snake", compared as the page opens.
LANDING = {"query": EXAMPLES[0][0], "source": "Paste", "text": EXAMPLES[0][1], "top_k": EXAMPLES[0][2]}
RESTORED = ("query", "source", "text", "file", "builtin", "top_k", "bi", "cross", "score_all", "precision",
            "first_stage", "rerankers", "cross_label")


def on_open(request: gr.Request):
    """Page load: a `?case=TOKEN` link restores its case (inputs, judgments, access); anything else, or
    a link the store does not know (one message for every bad token), opens on the landing example."""
    token = (request.query_params.get("case") if request is not None else None) or ""
    values, bench = dict(LANDING), new_bench()
    if token:
        try:
            opened = case_page.open_case(default_store(), token)
            values, bench = opened.inputs, opened.bench
            if opened.corpus_jsonl is not None:
                path = request_folder("cases") / "case-corpus.jsonl"
                path.write_text(opened.corpus_jsonl, encoding="utf-8")
                values["file"] = str(path)
        except ExplorerError as error:
            gr.Warning(str(error))
    return [*(values[name] if name in values else gr.update() for name in RESTORED), bench,
            case_bar(bench, values["query"]), gr.update(choices=bench["snapshots"])]


def on_snapshot(name: str, bench: dict | None, state: dict | None, progress=gr.Progress()):
    """"Save snapshot": every query of the case ranked by the page's pipeline, kept under `name`."""
    try:
        bench = case_page.save_snapshot(default_store(), bench, name, state, progress=lambda f, m: progress(f, desc=m))
    except ExplorerError as error:
        raise shown_error(error, title="Snapshot not saved") from None
    return bench, gr.update(choices=bench["snapshots"]), case_bar(bench, state["query"] if state else "")


def on_compare_snapshots(names: list[str], bench: dict | None, state: dict | None, progress=gr.Progress()):
    """The current pipeline against the picked snapshots, per query of the case."""
    try:
        return case_page.snapshots_html(default_store(), bench, names or [], state,
                                        progress=lambda f, m: progress(f, desc=m))
    except ExplorerError as error:
        raise shown_error(error) from None


def on_export(bench: dict | None):
    """"Export case": the case as a zip to download."""
    try:
        path = case_page.export_zip(default_store(), bench, request_folder("cases"))
    except ExplorerError as error:
        raise shown_error(error) from None
    return gr.update(value=str(path), visible=True)


def on_import(path: str | None, request: gr.Request = None):
    """"Import case": a case zip becomes a new case; its two links are shown once."""
    try:
        links = case_page.import_zip(default_store(), path)
    except ExplorerError as error:
        raise shown_error(error, title="Case not imported") from None
    return case_links_html(_base_url(request), links.edit_token, links.read_token)


def on_evaluate(bench: dict | None):
    """"Evaluate this case": the case's corpus, queries and judgments as the Evaluate tab's uploaded labels."""
    try:
        files = case_page.evaluation_files(default_store(), bench, request_folder("cases"))
    except ExplorerError as error:
        raise shown_error(error) from None
    return ("Upload", *files, gr.Accordion(open=True), gr.Tabs(selected="evaluate"))


def build_workbench_panel(c: dict) -> WorkbenchPanel:
    """The grade box and reason under the board, then the case bar and its controls; `c` holds the
    Compare tab's components (board, state, query)."""
    bench = gr.State(new_bench())
    with gr.Row(elem_id="judge-row"):
        judge_box = gr.Textbox(interactive=True, elem_id="judge-box", elem_classes="visually-hidden", show_label=False, container=False)
        reason = gr.Textbox(label="Reason for the next grade (optional)", max_lines=1, elem_id="judge-reason", scale=3,
                            interactive=True,
                            placeholder="e.g. about the snake, not the language")
    with gr.Accordion("Case: save, share, queries", open=True, elem_id="case"):
        bar = gr.HTML(case_bar(None, ""), elem_id="case-bar")
        with gr.Row(elem_classes="case-controls"):
            name = gr.Textbox(label="Case name", max_lines=1, elem_id="case-name", scale=3)
            save = gr.Button("Save as case", elem_id="save-case", scale=1)
            add = gr.Button("Add this query", elem_id="add-query", size="sm", scale=1)
            remove = gr.Button("Remove this query", elem_id="remove-query", size="sm", scale=1)
            previous = gr.Button("← Previous query", elem_id="previous-query", size="sm", scale=1)
            following = gr.Button("Next query →", elem_id="next-query", size="sm", scale=1)
        links = gr.HTML(elem_id="case-links")
        with gr.Row(elem_classes="case-controls"):
            snapshot_name = gr.Textbox(label="Snapshot name", max_lines=1, elem_id="snapshot-name", scale=2)
            snapshot = gr.Button("Save snapshot", elem_id="save-snapshot", size="sm", scale=1)
            pick = gr.Dropdown([], multiselect=True, label="Snapshots to compare with", elem_id="snapshot-pick", scale=3)
            compare = gr.Button("Compare with snapshots", elem_id="compare-snapshots", size="sm", scale=1)
        snapshots = gr.HTML(elem_id="snapshot-view")
        with gr.Row(equal_height=False):
            # The download box appears once there is a zip; an empty one only took room from the upload box,
            # whose drop-zone text was clipped at a smaller height.
            with gr.Column(scale=1, min_width=200):
                export = gr.Button("Export case (zip)", elem_id="export-case", size="sm")
                exported = gr.File(label="Case zip", interactive=False, elem_id="case-zip", visible=False)
            upload = gr.File(label="Import case (zip)", file_types=[".zip"], type="filepath", elem_id="import-case",
                             height=130, scale=2)
            evaluate = gr.Button("Evaluate this case →", elem_id="evaluate-case", size="sm", scale=1, min_width=200)
    judge_box.change(on_grade, [judge_box, c["state"], bench], [bench, c["board"], bar, reason], **PRIVATE)
    save.click(on_save, [name, c["state"], bench], [bench, links, bar], **PRIVATE)
    add.click(lambda q, b: on_queries("add", q, b), [c["query"], bench], [bench, bar], **PRIVATE)
    remove.click(lambda q, b: on_queries("remove", q, b), [c["query"], bench], [bench, bar], **PRIVATE)
    long_work = {**PRIVATE, **event_lane("snapshots")}
    snapshot.click(on_snapshot, [snapshot_name, bench, c["state"]], [bench, pick, bar], **long_work)
    compare.click(on_compare_snapshots, [pick, bench, c["state"]], snapshots, **long_work)
    export.click(on_export, bench, exported, **PRIVATE)
    upload.upload(on_import, upload, links, **PRIVATE)
    return WorkbenchPanel(bench, bar, previous, following, evaluate, pick)

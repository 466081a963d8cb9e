"""What the page does with a case, as plain data: record a grade, save the session as a case, open a
link, keep the query list; the store (`explorer/store`) does the writing and checks every token.

`state` is the kept comparison (`ui/compare_tab.py:run_comparison`), `bench` the workbench session
(`views/workbench.py:new_bench`). Each function returns the new `bench`; the old one is not changed.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from explorer.data.builtin_corpora import INDEX_CHOICE, corpus_from_source
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.errors import ExplorerError
from explorer.indexing.prebuilt import configured_index
from explorer.pipeline.snapshots import compare_snapshots, snapshot_rankings
from explorer.store.case_zip import CORPUS, QRELS, QUERIES, export_case, import_case
from explorer.store.cases import READ_ONLY, CaseLinks, CaseStore
from explorer.store.records import Judgment
from explorer.views.templating import render
from explorer.views.workbench import (case_judgments, corpus_jsonl, corpus_source_of, judgment_rows, new_bench,
                                      pasted_text, with_grade)

NO_COMPARISON = "Run a comparison first: a case keeps the page's query, corpus and pipeline."


def record_grade(store: CaseStore, bench: dict | None, query: str, doc_id: str, grade: int | None,
                 reason: str) -> dict:
    """`bench` with one grade set; with a case open it is first committed to the store (a read-only
    or stale link raises the store's ExplorerError and nothing changes)."""
    bench = {**new_bench(), **(bench or {})}
    if bench["access"] is not None:
        store.judge(bench["access"], query, doc_id, grade, reason)
        if query not in bench["queries"]:  # the store adds a graded query to the case's list too
            bench = {**bench, "queries": [*bench["queries"], query]}
    return {**bench, "judgments": with_grade(bench["judgments"], query, doc_id, grade, reason)}


def kept_corpus(state: dict):
    """The corpus of the kept comparison, rebuilt from the inputs that made it."""
    inputs = state["inputs"]
    index = configured_index()
    return corpus_from_source(inputs["source"], inputs["text"], inputs["file"], inputs["builtin"],
                              None if index is None else index.corpus)


def save_case(store: CaseStore, name: str, state: dict | None, bench: dict | None) -> tuple[CaseLinks, dict]:
    """Save the page as a new case: its corpus, settings, query list (the current query first when it
    is not on the list yet) and every judgment made in this session. Returns the links (shown once)
    and `bench` with the edit link's access open. Raises ExplorerError before any comparison ran,
    or the store's for a cap or a bad name."""
    if not state or "inputs" not in state:
        raise ExplorerError(NO_COMPARISON)
    bench = {**new_bench(), **(bench or {})}
    corpus = kept_corpus(state)
    inputs = state["inputs"]
    queries = list(dict.fromkeys([*bench["queries"], state["query"]]))
    judgments = [Judgment(query, doc_id, grade, reason) for query, doc_id, grade, reason in judgment_rows(bench["judgments"])]
    queries += [j.query for j in judgments if j.query not in queries]
    settings = {**inputs["settings"], "rankings": bench["rankings"]}
    links = store.create_case(name, corpus, corpus_source_of(inputs["source"], inputs["builtin"], corpus), settings,
                              queries, judgments)
    access = store.open(links.edit_token)
    return links, {**bench, "access": access, "name": (name or "").strip(), "queries": queries}


@dataclass
class OpenedCase:
    """A link opened: the page's inputs to restore (`inputs`, by component name in compare_tab) and the bench."""
    inputs: dict
    bench: dict
    corpus_jsonl: str | None  # a stored corpus that the paste box cannot hold, for the upload box


def open_case(store: CaseStore, token: str) -> OpenedCase:
    """Open a case link: what the page's inputs become and the workbench session (its judgments, query
    list and access). Raises the store's ExplorerError(UNKNOWN_LINK) for any token it does not know."""
    access = store.open(token)
    case = store.case(access)
    settings = dict(case.settings)
    inputs = {"query": settings.get("query") or (case.queries[0] if case.queries else ""),
              "top_k": settings.get("top_k", 10), "bi": settings.get("bi_encoder") or DEFAULT_BI_ENCODER,
              "cross": settings.get("cross_encoder") or DEFAULT_CROSS_ENCODER,
              "score_all": bool(settings.get("score_all")), "precision": settings.get("precision", "auto"),
              "first_stage": settings.get("first_stage", "bi"), "rerankers": settings.get("rerankers", ["cross"]),
              "cross_label": settings.get("cross_label")}
    source = case.corpus_source
    jsonl = None
    if source.get("kind") in ("builtin", "index"):
        inputs.update(source="Built-in", builtin=INDEX_CHOICE if source["kind"] == "index" else source["name"])
    else:
        corpus = store.corpus(access)
        text = pasted_text(corpus)
        inputs.update(source="Paste" if text is not None else "Upload", text=text or "")
        jsonl = None if text is not None else corpus_jsonl(corpus)
    bench = {**new_bench(), "access": access, "name": case.name, "judgments": case_judgments(case),
             "queries": list(case.queries), "rankings": dict(settings.get("rankings") or {}),
             "snapshots": list(case.snapshot_names)}
    return OpenedCase(inputs, bench, jsonl)


def keep_settings(store: CaseStore, state: dict, bench: dict) -> None:
    """With an edit link open, the case keeps the page's settings and every query's last rankings
    (what reopening restores and the progress counts); a read-only link writes nothing."""
    access = bench.get("access")
    if access is not None and access.can_edit:
        store.set_settings(access, {**state["inputs"]["settings"], "rankings": bench["rankings"]})


def add_query(store: CaseStore, bench: dict | None, query: str) -> dict:
    """`bench` with `query` at the end of the list (written to an open case first)."""
    bench = {**new_bench(), **(bench or {})}
    query = (query or "").strip()
    if not query:
        raise ExplorerError("Type a query first, then add it to the case.")
    if bench["access"] is not None:
        store.add_query(bench["access"], query)
    return {**bench, "queries": list(dict.fromkeys([*bench["queries"], query]))}


def remove_query(store: CaseStore, bench: dict | None, query: str) -> dict:
    """`bench` without `query` in its list (removed from an open case first; its judgments stay in the store)."""
    bench = {**new_bench(), **(bench or {})}
    if bench["access"] is not None:
        store.remove_query(bench["access"], query)
    return {**bench, "queries": [q for q in bench["queries"] if q != query]}


def step_query(bench: dict | None, current: str, step: int) -> str:
    """The query `step` places from `current` in the case's list (wrapping round); `current` itself when
    the list is empty. Raises nothing: next on the last query goes to the first."""
    queries = (bench or {}).get("queries") or []
    if not queries:
        return current
    place = queries.index(current) if current in queries else (-1 if step > 0 else 0)
    return queries[(place + step) % len(queries)]


NO_CASE = "Save the page as a case first (or open a case link): snapshots, export and evaluation work on a case."


def _open_access(bench: dict | None):
    access = (bench or {}).get("access")
    if access is None:
        raise ExplorerError(NO_CASE)
    return access


def _case_index(case):
    """The prebuilt index a case's corpus is, when it is one (snapshots rank with it as the page does)."""
    return configured_index() if case.corpus_source.get("kind") == "index" else None


def _page_settings(state: dict | None, case) -> dict:
    """The pipeline on the page (the last comparison's settings), else the case's."""
    return state["inputs"]["settings"] if state and "inputs" in state else case.settings


def save_snapshot(store: CaseStore, bench: dict | None, name: str, state: dict | None = None, progress=None) -> dict:
    """Rank every query of the open case with the page's pipeline and keep the rankings under `name`; returns
    `bench` with the name listed. Raises ExplorerError without a case, for a read-only link or a bad name."""
    access = _open_access(bench)
    if not access.can_edit:  # the store's own words for a read-only link, said before any ranking runs
        raise ExplorerError(READ_ONLY)
    case = store.case(access)
    snapshot = snapshot_rankings(store.corpus(access), case.queries, _page_settings(state, case), name=(name or "").strip(),
                                 index=_case_index(case), progress=progress)
    store.save_snapshot(access, snapshot)
    return {**bench, "snapshots": list(dict.fromkeys([*bench.get("snapshots", []), snapshot.name]))}


def snapshots_html(store: CaseStore, bench: dict | None, names: list[str], state: dict | None, progress=None) -> str:
    """The current pipeline (the page's settings) against the picked snapshots, per query of the case:
    nDCG@10, P@10 and RR@10 of the last column, their change, and the largest rank moves."""
    access = _open_access(bench)
    if not names:
        raise ExplorerError("Pick one or more snapshots to compare the current pipeline with.")
    case = store.case(access)
    current = snapshot_rankings(store.corpus(access), case.queries, _page_settings(state, case), name="current",
                                index=_case_index(case), progress=progress)
    rows = compare_snapshots(case, current, [store.snapshot(access, name) for name in names])
    return render("snapshots.html.j2", rows=rows, names=names)


def export_zip(store: CaseStore, bench: dict | None, folder: Path) -> Path:
    """The open case as a zip in `folder` (`store/case_zip.py`: corpus, queries, TREC qrels, runs, manifest)."""
    access = _open_access(bench)
    return export_case(store, access, folder / "case.zip")


def import_zip(store: CaseStore, path: str) -> CaseLinks:
    """A case zip imported as a new case; its two new links. Raises ExplorerError naming what is wrong."""
    if not path:
        raise ExplorerError("Choose a case zip (made by Export case) to import.")
    return import_case(store, path)


def evaluation_files(store: CaseStore, bench: dict | None, folder: Path) -> tuple[str, str, str]:
    """(corpus, queries, qrels) files of the open case, for the Evaluate tab: the judgments are the labels."""
    exported = export_zip(store, bench, folder)
    with zipfile.ZipFile(exported) as archive:
        paths = []
        for member in (CORPUS, QUERIES, QRELS):
            target = folder / member
            target.write_bytes(archive.read(member))
            paths.append(str(target))
    if not Path(paths[2]).read_text(encoding="utf-8").strip():
        raise ExplorerError("This case has no judgments yet: grade some documents, then evaluate it.")
    return paths[0], paths[1], paths[2]

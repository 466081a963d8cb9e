"""Plain data behind the Compare tab's workbench: the session's judgments, a grade the board's script
sent, the page settings a case keeps, and the case's progress and query list as the page shows them.

The session's judgments are `{query: {doc id: {"grade": 0..3, "reason": str}}}`: before a case exists
they live only here (a gr.State); with an edit link open every grade is also written to the store
(`explorer/store`) at once. Nothing here touches gradio or sqlite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from explorer.data.builtin_corpora import INDEX_CHOICE
from explorer.data.corpus import Corpus
from explorer.errors import ExplorerError
from explorer.views.board import board_html, column_rankings
from explorer.views.templating import render

SessionJudgments = dict[str, dict[str, dict]]
GRADES = range(4)

# A query counts as judged when every column's top-k, as last compared, is fully judged: said on the page.
JUDGED_RULE = ("a query counts as judged when every column's top-k, as it was last compared here, "
               "has a grade for each document")


def parse_grade(payload: str, shown: set[str]) -> tuple[str, int | None, str]:
    """(doc id, grade or None to remove, reason) from the board script's JSON payload.

    Raises ExplorerError for a document the board does not show or a grade outside 0..3: what the
    script sends is checked like any visitor's input (the store caps a reason's length).
    """
    try:
        data = json.loads(payload or "")
        doc_id, grade, reason = str(data["doc_id"]), data.get("grade"), str(data.get("reason") or "").strip()
    except (ValueError, TypeError, KeyError):
        raise ExplorerError("That grade could not be read; grade a document with its 0–3 buttons.") from None
    if doc_id not in shown:
        raise ExplorerError("That document is not on the board; run the comparison again and grade one it shows.")
    if grade is not None and (not isinstance(grade, int) or grade not in GRADES):
        raise ExplorerError("A grade is 0, 1, 2 or 3.")
    return doc_id, grade, reason


def with_grade(judgments: SessionJudgments | None, query: str, doc_id: str, grade: int | None,
               reason: str) -> SessionJudgments:
    """A copy of `judgments` with one grade set (None removes it); the old dict is left as it was."""
    updated = {q: dict(docs) for q, docs in (judgments or {}).items()}
    docs = updated.setdefault(query, {})
    if grade is None:
        docs.pop(doc_id, None)
    else:
        docs[doc_id] = {"grade": grade, "reason": reason}
    return updated


def query_grades(judgments: SessionJudgments | None, query: str) -> tuple[dict[str, int], dict[str, str]]:
    """({doc id: grade}, {doc id: reason}) of one query's judgments."""
    docs = (judgments or {}).get(query, {})
    return ({doc_id: j["grade"] for doc_id, j in docs.items()},
            {doc_id: j["reason"] for doc_id, j in docs.items() if j.get("reason")})


def judged_labels(bench: dict | None, query: str, corpus) -> dict | None:
    """This query's workbench grades in the shape of the Evaluate tab's labels ({"query", "corpus_name",
    "corpus_size", "grades"}), for the why panel's judged-relevant list; None when nothing is judged."""
    grades, _ = query_grades((bench or {}).get("judgments"), query)
    if not grades:
        return None
    return {"query": query, "corpus_name": corpus.name, "corpus_size": len(corpus), "grades": grades}


def case_judgments(case) -> SessionJudgments:
    """The session's shape of a stored case's judgments (`Case.judgments`: query -> doc id -> Judgment)."""
    return {query: {doc_id: {"grade": j.grade, "reason": j.reason} for doc_id, j in docs.items()}
            for query, docs in case.judgments.items()}


def judgment_rows(judgments: SessionJudgments | None) -> list[tuple[str, str, int, str]]:
    """(query, doc id, grade, reason) of every judgment, in the session's order."""
    return [(query, doc_id, j["grade"], j.get("reason", "")) for query, docs in (judgments or {}).items()
            for doc_id, j in docs.items()]


def corpus_source_of(source: str, builtin: str | None, corpus: Corpus) -> dict:
    """What a case records of its corpus: a built-in one or the operator's index by name (and
    fingerprint, to notice a change), anything pasted or uploaded stored in the case."""
    if source == "Built-in":
        kind = "index" if builtin == INDEX_CHOICE else "builtin"
        return {"kind": kind, "name": corpus.name if kind == "index" else builtin, "fingerprint": corpus.fingerprint}
    return {"kind": "stored", "name": corpus.name, "fingerprint": corpus.fingerprint}


def pasted_text(corpus: Corpus) -> str | None:
    """The corpus as the paste box holds it (one document per line, ids 1..n, no titles), or None
    when it cannot be (its own ids, titles or line breaks): then it is restored as an uploaded file."""
    plain = all(doc.id == str(place) and not doc.title and "\n" not in doc.text
                for place, doc in enumerate(corpus.documents, start=1))
    return "\n".join(doc.text for doc in corpus.documents) if plain else None


def corpus_jsonl(corpus: Corpus) -> str:
    """The corpus as JSON lines (id, text, title where there is one): how a stored case's corpus
    comes back into the page's upload box."""
    return "".join(json.dumps({"id": d.id, "text": d.text, **({"title": d.title} if d.title else {})},
                              ensure_ascii=False) + "\n" for d in corpus.documents)


def judged_queries(queries: list[str], judgments: SessionJudgments | None,
                   rankings: Mapping[str, Mapping[str, list[str]]]) -> list[str]:
    """The queries that count as judged (JUDGED_RULE): compared here at least once, and every
    column of their last comparison fully graded. `rankings`: query -> column -> doc ids."""
    judged = []
    for query in queries:
        columns = rankings.get(query)
        grades = (judgments or {}).get(query, {})
        if columns and all(doc_id in grades for ids in columns.values() for doc_id in ids):
            judged.append(query)
    return judged


def case_panel_html(name: str, queries: list[str], current: str, judged: list[str], can_edit: bool | None,
                    snapshots: list[str] = ()) -> str:
    """The case bar: its name, whether this link may write, the query list with the current one
    marked and each judged one ticked, "judged N of M" with the rule that counts it, and its snapshots."""
    return render("case_panel.html.j2", name=name, queries=queries, current=current, judged=set(judged),
                  count=len(judged), can_edit=can_edit, rule=JUDGED_RULE, snapshots=list(snapshots))


def case_links_html(base_url: str, edit_token: str, read_token: str) -> str:
    """The two links "Save as case" gives, shown once (only their hashes are kept)."""
    return render("case_links.html.j2", edit=f"{base_url}?case={edit_token}", read=f"{base_url}?case={read_token}")


def new_bench() -> dict:
    """A fresh workbench session: no case open, no judgments, no queries compared yet.

    Keys: "access" (the open case's `CaseAccess`, or None), "name" (the case's), "judgments"
    (SessionJudgments), "queries" (the case's list, in order), "rankings" (query -> column -> doc
    ids, as last compared here: what the progress counts), "snapshots" (the case's snapshot names).
    """
    return {"access": None, "name": "", "judgments": {}, "queries": [], "rankings": {}, "snapshots": []}


def with_rankings(bench: dict | None, result) -> dict:
    """`bench` with `result`'s column rankings kept under its query (the progress counts them)."""
    bench = {**new_bench(), **(bench or {})}
    return {**bench, "rankings": {**bench["rankings"], result.query: column_rankings(result)}}


def can_grade(bench: dict | None) -> bool:
    """Whether this page may grade: no case open (grades stay in the session) or an edit link."""
    access = (bench or {}).get("access")
    return access is None or bool(access.can_edit)


def board_for(state: dict, bench: dict | None) -> str:
    """The board of the kept comparison (`state`, as `run_comparison` keeps it) with this query's
    judgments; a labelled query's grades from the Evaluate tab show where nothing was judged."""
    grades, reasons = query_grades((bench or {}).get("judgments"), state["query"])
    return board_html(state["comparison"], state["board_texts"], {**state.get("labels", {}), **grades}, reasons,
                      state.get("titles"), editable=can_grade(bench))

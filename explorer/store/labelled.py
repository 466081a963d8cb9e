"""A case's judgments as a labelled set: what `eval --case` and "Evaluate this case" measure with."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from explorer.data.corpus import Query
from explorer.data.labels import LabelledData, labelled_in_memory
from explorer.store.cases import CaseAccess, CaseStore
from explorer.store.records import Case


def query_ids(case: Case, more: list[str] = ()) -> dict[str, str]:
    """Query text -> id ("q1", "q2", ... in the case's order, then any of `more` not among them): the ids the case's
    qrels, runs and queries files use."""
    ids: dict[str, str] = {}
    for query in list(case.queries) + list(more):
        ids.setdefault(query, f"q{len(ids) + 1}")
    return ids


def case_labels(store: CaseStore, access: CaseAccess) -> tuple[LabelledData, list[Query]]:
    """The case's corpus, its judged queries and qrels (query id -> doc id -> grade), checked as labelled files are
    (`labels.labelled_in_memory`), and every query of the case (judged or not) with its id. Raises ExplorerError
    when nothing is judged yet."""
    case = store.case(access)
    ids = query_ids(case)
    queries = [Query(ids[q], q) for q in case.queries]
    qrels = {ids[q]: case.grades(q) for q in case.queries if case.grades(q)}
    return labelled_in_memory(store.corpus(access), queries, qrels, f"case {case.name!r}"), queries


def token_of(link: str) -> str:
    """The token of a case link as the page shows it ("http://host:port/?case=TOKEN"), or a bare token as given.
    A link without a `case` parameter gives "" (which `CaseStore.open` refuses like any unknown token)."""
    link = (link or "").strip()
    if "?" not in link and "/" not in link:
        return link
    return (parse_qs(urlsplit(link).query).get("case") or [""])[0]


def labels_from_link(store: CaseStore, link: str) -> LabelledData:
    """The labelled set of the case a link (or its bare token) opens, read-only links included, as `case_labels`
    gives it. Raises ExplorerError: UNKNOWN_LINK for a link that opens nothing, or nothing judged yet."""
    return case_labels(store, store.open(token_of(link)))[0]

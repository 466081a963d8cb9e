"""What a case is made of (links, accesses, judgments, snapshots, the case) and the checks every value passes
before it is stored. Plain data: no database here (`cases.py` stores them)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from explorer import budgets
from explorer.budgets import MAX_CASE_NAME_CHARS, MAX_SETTINGS_CHARS, check_case_text
from explorer.data.corpus import Corpus
from explorer.errors import ExplorerError

GRADES = (0, 1, 2, 3)


@dataclass
class CaseLinks:
    """What "Save as case" returns; the tokens are shown once, only their hashes are kept."""
    case_id: str  # a public random id (not secret)
    edit_token: str
    read_token: str


@dataclass
class CaseAccess:
    """An opened link: the case and whether it may write. Checked again by every CaseStore call, so one made
    by hand (without `token_hash`) can do nothing."""
    case_id: str
    can_edit: bool
    token_hash: str = field(default="", repr=False)


@dataclass
class Judgment:
    """One grade (0..3) of one document for one query of a case, with an optional reason."""
    query: str
    doc_id: str
    grade: int
    reason: str = ""


@dataclass
class Snapshot:
    """Every query's rankings of a pipeline, saved under a name."""
    name: str
    created: str  # ISO time, UTC
    rankings: dict[str, dict[str, list[str]]]  # query -> column name -> doc ids best first
    scores: dict[str, dict[str, list[float]]]  # same shape: the scores shown


@dataclass
class Case:
    """A case as stored: its corpus source ({"kind": "stored"|"builtin"|"index", "name", "fingerprint"}), the
    page's settings, its queries in order, judgments (query -> doc id -> Judgment) and snapshot names."""
    case_id: str
    name: str
    corpus_source: dict
    settings: dict
    queries: list[str]
    judgments: dict[str, dict[str, Judgment]]
    snapshot_names: list[str]

    def grades(self, query: str) -> dict[str, int]:
        """doc id -> grade of one query's judgments (what `pipeline/judged.py` takes)."""
        return {doc: j.grade for doc, j in self.judgments.get(query, {}).items()}


def now_iso() -> str:
    """The time now, UTC, ISO 8601 to the second: when a case, judgment or snapshot was made."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def corpus_key(corpus: Corpus) -> str:
    """SHA-256 of the documents' ids, texts and titles, in order: a stored corpus's identity (the name is per case)."""
    digest = hashlib.sha256()
    for doc in corpus.documents:
        digest.update(json.dumps([doc.id, doc.text, doc.title], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def check_query_text(query) -> str:
    """A case's query: non-blank text of at most MAX_QUERY_CHARS, stripped as the pipeline strips it."""
    if not isinstance(query, str):
        raise ExplorerError(f"A query must be text, not {type(query).__name__}.")
    return check_case_text(query.strip(), "query", budgets.MAX_QUERY_CHARS)


def check_grade(grade) -> int:
    """0, 1, 2 or 3 (an int; bools and other numbers are refused)."""
    if isinstance(grade, bool) or not isinstance(grade, int) or grade not in GRADES:
        raise ExplorerError(f"A grade is 0, 1, 2 or 3, not {grade!r}.")
    return grade


def check_settings(settings) -> str:
    """The page's settings as JSON text (a JSON object of at most MAX_SETTINGS_CHARS characters)."""
    if not isinstance(settings, dict):
        raise ExplorerError("The case's settings must be a mapping of names to values.")
    try:
        text = json.dumps(settings, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ExplorerError(f"The case's settings cannot be saved: {error}.") from None
    if len(text) > MAX_SETTINGS_CHARS:
        raise ExplorerError(f"The case's settings are {len(text):,} characters as JSON; the limit is {MAX_SETTINGS_CHARS:,}.")
    return text


def check_snapshot(snapshot: Snapshot) -> tuple[str, str]:
    """The snapshot's rankings and scores as JSON, checked: same shape, doc ids text, scores numbers."""
    check_case_text(snapshot.name, "snapshot name", MAX_CASE_NAME_CHARS)
    if not isinstance(snapshot.rankings, dict) or not isinstance(snapshot.scores, dict):
        raise ExplorerError("A snapshot's rankings and scores must be mappings of query to columns.")
    for query, columns in snapshot.rankings.items():
        scores = snapshot.scores.get(query, {})
        if not isinstance(query, str) or not isinstance(columns, dict) or not isinstance(scores, dict):
            raise ExplorerError("A snapshot maps each query to {column name: document ids}.")
        for column, ids in columns.items():
            if not isinstance(column, str) or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ExplorerError(f"Snapshot {snapshot.name!r}, query {query!r}: a column's ranking is a list of document ids.")
            values = scores.get(column, [])
            if len(values) != len(ids) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ExplorerError(f"Snapshot {snapshot.name!r}, query {query!r}, column {column!r}: one score per document.")
    if set(snapshot.scores) != set(snapshot.rankings) or any(
            set(snapshot.scores[q]) != set(snapshot.rankings[q]) for q in snapshot.rankings):
        raise ExplorerError(f"Snapshot {snapshot.name!r}: its scores and rankings name different queries or columns.")
    return (json.dumps(snapshot.rankings, ensure_ascii=False),
            json.dumps(snapshot.scores, ensure_ascii=False))

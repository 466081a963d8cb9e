"""Cases of the relevance workbench: a corpus, queries, the page's settings, judgments and snapshots,
opened by link tokens.

Every case has two links: an edit token and a read-only token, each `secrets.token_urlsafe(32)` (256 bits),
shown once; the database keeps only their SHA-256 (compared with `hmac.compare_digest`). Every call takes
the `CaseAccess` that `open(token)` returned and checks it against the database again, so an access made
by hand, a read-only one, or one whose link expired meanwhile cannot write (or read). A wrong, forged, cut
or expired token gets UNKNOWN_LINK, the same words as one never issued. Nothing here lists cases.

Corpora: a pasted or uploaded corpus is stored in the database, once per content (the key is the SHA-256 of
its documents' ids, texts and titles); a built-in set or the operator's prebuilt index is referenced by
name and `Corpus.fingerprint`, and checked against it when opened. Caps: budgets.py (MAX_CASES, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from explorer import budgets
from explorer.budgets import MAX_CASE_NAME_CHARS, MAX_DOC_ID_CHARS, MAX_REASON_CHARS, check_case_text
from explorer.data.corpus import Corpus, Document
from explorer.errors import ExplorerError
from explorer.paths import data_dir
from explorer.store.database import FILE_NAME, Database
from explorer.store.records import (  # noqa: F401  (Case ... Snapshot: the names callers import from here)
    Case,
    CaseAccess,
    CaseLinks,
    Judgment,
    Snapshot,
    now_iso,
    check_grade,
    check_query_text,
    check_settings,
    check_snapshot,
    corpus_key,
)

UNKNOWN_LINK = ("This case link is not known here: it may be mistyped, cut short or expired. "
                "Ask whoever shared it for the link again.")
READ_ONLY = "This is a read-only link to the case: it shows the case but cannot change it. Open the edit link to judge."
CORPUS_KINDS = ("stored", "builtin", "index")
_TOKEN_BYTES = 32  # 256 bits from secrets
_MAX_TOKEN_CHARS = 200  # a longer "token" is not one of ours: refused unhashed


def _new_token() -> str:
    """`secrets.token_urlsafe(_TOKEN_BYTES)`, drawn again while it starts with "-": a command line reads a
    token like "-x..." as an option (`eval --case -x...` failed, 1 link in 64). It costs 1/64 of one
    character's choices, 0.02 bits of 256."""
    while (token := secrets.token_urlsafe(_TOKEN_BYTES)).startswith("-"):
        pass
    return token


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class CaseStore:
    """The cases in one SQLite file (default `data_dir()/workbench.sqlite3`); safe to share between threads and
    processes. Raises ExplorerError at open for a damaged file (left as it was; see `store/database.py`)."""

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path is not None else data_dir() / FILE_NAME
        self.db = Database(self.path)
        self._clock = clock  # unix seconds: when links expire

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    # ---- links -------------------------------------------------------------------------------------

    def _lookup(self, cursor, token_hash: str) -> tuple[str, bool] | None:
        row = cursor.execute("SELECT token_hash, case_id, can_edit, expires FROM tokens WHERE token_hash = ?",
                             (token_hash,)).fetchone()
        if row is None or not hmac.compare_digest(row[0], token_hash):
            return None
        if row[3] is not None and self._clock() >= row[3]:
            return None
        return row[1], bool(row[2])

    def open(self, token: str) -> CaseAccess:
        """The case a link's token opens, and whether it may edit. Raises ExplorerError(UNKNOWN_LINK) for any token
        that is not a live one of this database (wrong, forged, cut short, expired, not text)."""
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
            raise ExplorerError(UNKNOWN_LINK)
        token_hash = _hash(token.strip())
        with self.db.read() as cursor:
            found = self._lookup(cursor, token_hash)
        if found is None:
            raise ExplorerError(UNKNOWN_LINK)
        return CaseAccess(found[0], found[1], token_hash)

    def _check(self, cursor, access: CaseAccess, write: bool) -> str:
        """The case id of a live access; UNKNOWN_LINK for a stale or hand-made one, READ_ONLY for a write by a
        read-only link."""
        found = self._lookup(cursor, getattr(access, "token_hash", "") or "")
        if found is None or found[0] != getattr(access, "case_id", None):
            raise ExplorerError(UNKNOWN_LINK)
        if write and not found[1]:
            raise ExplorerError(READ_ONLY)
        return found[0]

    def _new_tokens(self, cursor, case_id: str) -> CaseLinks:
        days = budgets.CASE_LINK_DAYS
        expires = self._clock() + days * 86400 if days > 0 else None
        links = CaseLinks(case_id, _new_token(), _new_token())
        for token, can_edit in ((links.edit_token, 1), (links.read_token, 0)):
            cursor.execute("INSERT INTO tokens (token_hash, case_id, can_edit, expires) VALUES (?, ?, ?, ?)",
                           (_hash(token), case_id, can_edit, expires))
        return links

    # ---- writing ---------------------------------------------------------------------------------------

    def _check_room(self) -> None:
        budgets.check_database_size(self.db.size_bytes())

    def create_case(self, name: str, corpus: Corpus, corpus_source: dict, settings: dict,
                    queries: list[str], judgments: Iterable[Judgment] = ()) -> CaseLinks:
        """Save a new case and return its two links (the only time the tokens exist in the clear).

        `corpus_source["kind"]`: "stored" (the corpus is kept in the database), "builtin" (a shipped set, by
        `name`) or "index" (the operator's prebuilt index, by name); its fingerprint is `corpus.fingerprint`.
        A judgment whose query is not in `queries` adds it. Raises ExplorerError for bad input or a cap.
        """
        name = check_case_text(name, "case name", MAX_CASE_NAME_CHARS)
        source = self._check_source(corpus, corpus_source)
        settings_json = check_settings(settings)
        ordered: list[str] = []
        for query in queries:
            query = check_query_text(query)
            if query not in ordered:
                ordered.append(query)
        rows = {}
        for judgment in judgments:
            query, doc_id, grade, reason = self._check_judgment(judgment.query, judgment.doc_id, judgment.grade,
                                                                judgment.reason)
            if query not in ordered:
                ordered.append(query)
            if grade is not None:  # "no grade" in a new case is nothing to keep
                rows[(query, doc_id)] = (grade, reason)
        budgets.check_case_queries(len(ordered))
        budgets.check_case_judgments(len(rows))
        self._check_room()
        case_id = secrets.token_hex(8)
        key = corpus_key(corpus) if source["kind"] == "stored" else None
        with self.db.write() as cursor:
            budgets.check_case_count(cursor.execute("SELECT COUNT(*) FROM cases").fetchone()[0])
            if key is not None and cursor.execute("SELECT 1 FROM corpora WHERE key = ?", (key,)).fetchone() is None:
                cursor.execute("INSERT INTO corpora (key, fingerprint, documents) VALUES (?, ?, ?)",
                               (key, corpus.fingerprint, len(corpus)))
                cursor.executemany(
                    "INSERT INTO corpus_documents (corpus_key, position, id, text, title) VALUES (?, ?, ?, ?, ?)",
                    ((key, position, doc.id, doc.text, doc.title) for position, doc in enumerate(corpus.documents)))
            cursor.execute(
                "INSERT INTO cases (case_id, name, corpus_kind, corpus_name, corpus_fingerprint, corpus_key, settings, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (case_id, name, source["kind"], source["name"], source["fingerprint"], key, settings_json, now_iso()))
            cursor.executemany("INSERT INTO queries (case_id, position, text) VALUES (?, ?, ?)",
                               ((case_id, position, query) for position, query in enumerate(ordered)))
            now = now_iso()
            cursor.executemany(
                "INSERT INTO judgments (case_id, query, doc_id, grade, reason, updated) VALUES (?, ?, ?, ?, ?, ?)",
                ((case_id, query, doc_id, grade, reason, now) for (query, doc_id), (grade, reason) in rows.items()))
            return self._new_tokens(cursor, case_id)

    def _check_source(self, corpus: Corpus, source) -> dict:
        if not isinstance(corpus, Corpus) or len(corpus) == 0:
            raise ExplorerError("A case needs a corpus with at least one document.")
        kind = (source or {}).get("kind") if isinstance(source, dict) else None
        if kind not in CORPUS_KINDS:
            raise ExplorerError(f"A case's corpus is one of {', '.join(CORPUS_KINDS)}, not {kind!r}.")
        given = source.get("fingerprint")
        if given and given != corpus.fingerprint:
            raise ExplorerError("The corpus given is not the one its source names (their fingerprints differ).")
        name = source.get("name") or corpus.name
        check_case_text(name, "corpus name", MAX_CASE_NAME_CHARS)
        if kind == "builtin":
            from explorer.data.builtin_corpora import load_set

            if load_set(name).corpus.fingerprint != corpus.fingerprint:
                raise ExplorerError(f"The corpus given is not the built-in set {name!r} (their fingerprints differ).")
        return {"kind": kind, "name": name, "fingerprint": corpus.fingerprint}

    @staticmethod
    def _check_judgment(query, doc_id, grade, reason) -> tuple[str, str, int | None, str]:
        query = check_query_text(query)
        doc_id = check_case_text(doc_id, "document id", MAX_DOC_ID_CHARS)
        if grade is not None:
            grade = check_grade(grade)
        reason = check_case_text(reason if reason is not None else "", "reason", MAX_REASON_CHARS, blank_ok=True)
        return query, doc_id, grade, reason

    def judge(self, access: CaseAccess, query: str, doc_id: str, grade: int | None, reason: str = "") -> None:
        """Grade one document (0..3, with an optional reason) for one query, or remove its grade (`grade` None);
        committed to disk before this returns. A query not yet in the case is added at the end. Raises
        ExplorerError for a read-only or stale access, bad input or a cap."""
        query, doc_id, grade, reason = self._check_judgment(query, doc_id, grade, reason)
        if grade is not None:
            self._check_room()
        with self.db.write() as cursor:
            case_id = self._check(cursor, access, write=True)
            if grade is None:
                cursor.execute("DELETE FROM judgments WHERE case_id = ? AND query = ? AND doc_id = ?",
                               (case_id, query, doc_id))
                return
            exists = cursor.execute("SELECT 1 FROM judgments WHERE case_id = ? AND query = ? AND doc_id = ?",
                                    (case_id, query, doc_id)).fetchone()
            if exists is None:
                count = cursor.execute("SELECT COUNT(*) FROM judgments WHERE case_id = ?", (case_id,)).fetchone()[0]
                budgets.check_case_judgments(count + 1)
            self._append_query(cursor, case_id, query)
            cursor.execute(
                "INSERT INTO judgments (case_id, query, doc_id, grade, reason, updated) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (case_id, query, doc_id) DO UPDATE SET grade = excluded.grade, reason = excluded.reason, "
                "updated = excluded.updated",
                (case_id, query, doc_id, grade, reason, now_iso()))

    @staticmethod
    def _append_query(cursor, case_id: str, query: str) -> None:
        if cursor.execute("SELECT 1 FROM queries WHERE case_id = ? AND text = ?", (case_id, query)).fetchone():
            return
        count, last = cursor.execute("SELECT COUNT(*), MAX(position) FROM queries WHERE case_id = ?", (case_id,)).fetchone()
        budgets.check_case_queries(count + 1)
        cursor.execute("INSERT INTO queries (case_id, position, text) VALUES (?, ?, ?)",
                       (case_id, (last if last is not None else -1) + 1, query))

    def add_query(self, access: CaseAccess, query: str) -> None:
        """Add a query at the end of the case's list (nothing happens when it is there already)."""
        query = check_query_text(query)
        self._check_room()
        with self.db.write() as cursor:
            self._append_query(cursor, self._check(cursor, access, write=True), query)

    def remove_query(self, access: CaseAccess, query: str) -> None:
        """Remove a query and its judgments from the case (snapshots keep their rankings of it)."""
        query = check_query_text(query)
        with self.db.write() as cursor:
            case_id = self._check(cursor, access, write=True)
            cursor.execute("DELETE FROM queries WHERE case_id = ? AND text = ?", (case_id, query))
            cursor.execute("DELETE FROM judgments WHERE case_id = ? AND query = ?", (case_id, query))

    def set_settings(self, access: CaseAccess, settings: dict) -> None:
        """Replace the page's settings kept with the case."""
        text = check_settings(settings)
        with self.db.write() as cursor:
            case_id = self._check(cursor, access, write=True)
            cursor.execute("UPDATE cases SET settings = ? WHERE case_id = ?", (text, case_id))

    def save_snapshot(self, access: CaseAccess, snapshot: Snapshot) -> None:
        """Save (or replace, by name) a snapshot of the case's rankings."""
        rankings, scores = check_snapshot(snapshot)
        self._check_room()
        with self.db.write() as cursor:
            case_id = self._check(cursor, access, write=True)
            names = {row[0] for row in cursor.execute("SELECT name FROM snapshots WHERE case_id = ?", (case_id,))}
            budgets.check_case_snapshots(len(names | {snapshot.name}))
            cursor.execute(
                "INSERT INTO snapshots (case_id, name, created, rankings, scores) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (case_id, name) DO UPDATE SET created = excluded.created, rankings = excluded.rankings, "
                "scores = excluded.scores",
                (case_id, snapshot.name, snapshot.created or now_iso(), rankings, scores))

    # ---- reading ---------------------------------------------------------------------------------------

    def case(self, access: CaseAccess) -> Case:
        """The whole case (without its corpus's documents and the snapshots' rankings: `corpus`, `snapshot`)."""
        with self.db.read() as cursor:
            case_id = self._check(cursor, access, write=False)
            name, kind, corpus_name, fingerprint, settings = cursor.execute(
                "SELECT name, corpus_kind, corpus_name, corpus_fingerprint, settings FROM cases WHERE case_id = ?",
                (case_id,)).fetchone()
            queries = [row[0] for row in cursor.execute(
                "SELECT text FROM queries WHERE case_id = ? ORDER BY position", (case_id,))]
            judgments: dict[str, dict[str, Judgment]] = {}
            for query, doc_id, grade, reason in cursor.execute(
                    "SELECT query, doc_id, grade, reason FROM judgments WHERE case_id = ? ORDER BY rowid", (case_id,)):
                judgments.setdefault(query, {})[doc_id] = Judgment(query, doc_id, grade, reason)
            snapshots = [row[0] for row in cursor.execute(
                "SELECT name FROM snapshots WHERE case_id = ? ORDER BY created, rowid", (case_id,))]
        source = {"kind": kind, "name": corpus_name, "fingerprint": fingerprint}
        return Case(case_id, name, source, json.loads(settings), queries, judgments, snapshots)

    def snapshot(self, access: CaseAccess, name: str) -> Snapshot:
        """One snapshot by name; ExplorerError when the case has none of that name."""
        with self.db.read() as cursor:
            case_id = self._check(cursor, access, write=False)
            row = cursor.execute("SELECT name, created, rankings, scores FROM snapshots WHERE case_id = ? AND name = ?",
                                 (case_id, name)).fetchone()
        if row is None:
            raise ExplorerError(f"This case has no snapshot named {name!r}.")
        return Snapshot(row[0], row[1], json.loads(row[2]), json.loads(row[3]))

    def corpus(self, access: CaseAccess) -> Corpus:
        """The case's corpus: the stored documents (checked against their key), or the built-in set or prebuilt
        index it names, checked against the fingerprint saved with the case. Raises ExplorerError when the
        referenced corpus changed or is not offered here, or the stored one was damaged."""
        with self.db.read() as cursor:
            case_id = self._check(cursor, access, write=False)
            kind, name, fingerprint, key = cursor.execute(
                "SELECT corpus_kind, corpus_name, corpus_fingerprint, corpus_key FROM cases WHERE case_id = ?",
                (case_id,)).fetchone()
            rows = [] if key is None else cursor.execute(
                "SELECT id, text, title FROM corpus_documents WHERE corpus_key = ? ORDER BY position", (key,)).fetchall()
        if kind == "stored":
            corpus = Corpus([Document(*row) for row in rows], name=name)
            if corpus_key(corpus) != key:
                raise ExplorerError(f"The stored corpus of this case does not match its checksum: the database "
                                    f"{self.path} is damaged. Restore a backup or import the case's zip.")
            return corpus
        if kind == "builtin":
            from explorer.data.builtin_corpora import load_set

            corpus = load_set(name).corpus
            where = f"the built-in set {name!r}"
        else:
            from explorer.indexing.prebuilt import configured_index

            index = configured_index()
            if index is None:
                raise ExplorerError(f"This case's corpus is the prebuilt index {name!r}, which this server does not "
                                    "offer (start it with --index). Import the case's zip to get its documents.")
            corpus, where = index.corpus, f"the prebuilt index {name!r}"
        if corpus.fingerprint != fingerprint:
            raise ExplorerError(f"This case was saved on {where} as it was then (fingerprint {fingerprint[:12]}…); "
                                f"it has changed since (now {corpus.fingerprint[:12]}…), so the judgments may not fit.")
        return corpus


_DEFAULT: CaseStore | None = None
_DEFAULT_LOCK = threading.Lock()


def default_store() -> CaseStore:
    """The process's store on `data_dir()/workbench.sqlite3`, opened (and checked) on first use."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = CaseStore()
        return _DEFAULT


def check_default_store() -> str | None:
    """Open the process's store now, so a damaged or newer-version file is found at start (`PRAGMA integrity_check`
    at open) rather than at a visitor's first grade: None when it opened, else the problem's message (the file is left
    as it is; every later use of the store repeats the message, and the rest of the app runs without saved cases)."""
    try:
        default_store()
    except ExplorerError as error:
        return str(error)
    return None

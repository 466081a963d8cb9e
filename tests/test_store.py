"""The workbench's case store: links, writes that survive a kill -9, two writers, a damaged file, caps."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from explorer import budgets
from explorer.data.builtin_corpora import load_set
from explorer.data.corpus import Corpus, Document, corpus_from_text
from explorer.errors import ExplorerError
from explorer.store.cases import READ_ONLY, UNKNOWN_LINK, CaseAccess, CaseStore, Judgment, Snapshot

REPO = Path(__file__).resolve().parent.parent
SNAKES = corpus_from_text("Ball pythons are pet snakes.\nPython is a programming language.\nThe snake shed its skin.")
SETTINGS = {"first_stage": "bm25", "rerankers": [], "precision": "fp32", "top_k": 3, "query": "python snake"}


@pytest.fixture
def store(tmp_path):
    opened = CaseStore(tmp_path / "cases.sqlite3")
    yield opened
    opened.close()


def new_case(store, **changes):
    arguments = dict(name="lesson", corpus=SNAKES, corpus_source={"kind": "stored"}, settings=SETTINGS,
                     queries=["python snake"], judgments=[Judgment("python snake", "1", 3, "a pet python")])
    arguments.update(changes)
    return store.create_case(**arguments)


def test_no_link_token_starts_with_a_dash(store, monkeypatch):
    """A token "-x..." reads as an option on a command line (`eval --case -x...`): such draws are drawn again,
    and the tokens handed out still open the case."""
    import explorer.store.cases as cases

    draws = iter(["-leading-dash-edit", "--two", "edit-token-x", "-leading-dash-read", "read-token-y"])
    monkeypatch.setattr(cases.secrets, "token_urlsafe", lambda n: next(draws))
    links = new_case(store)
    assert (links.edit_token, links.read_token) == ("edit-token-x", "read-token-y")
    assert store.open(links.edit_token).can_edit and not store.open(links.read_token).can_edit


def file_bytes(path: Path) -> bytes:
    """The database and its write-ahead log, as they are on disk."""
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def test_a_case_comes_back_as_saved(store):
    links = new_case(store, queries=["python snake", "ball python"])
    access = store.open(links.edit_token)
    assert access.case_id == links.case_id and access.can_edit
    case = store.case(access)
    assert case.name == "lesson" and case.settings == SETTINGS
    assert case.queries == ["python snake", "ball python"]
    assert case.judgments["python snake"]["1"] == Judgment("python snake", "1", 3, "a pet python")
    assert case.corpus_source == {"kind": "stored", "name": SNAKES.name, "fingerprint": SNAKES.fingerprint}
    corpus = store.corpus(access)
    assert corpus.documents == SNAKES.documents and corpus.fingerprint == SNAKES.fingerprint
    read = store.open(links.read_token)
    assert not read.can_edit and store.case(read) == case


def test_tokens_are_long_random_and_only_their_hashes_are_kept(store):
    links = new_case(store)
    for token in (links.edit_token, links.read_token):
        assert len(token) >= 43  # token_urlsafe(32): 256 bits in base64
    assert len({links.edit_token, links.read_token, new_case(store).edit_token}) == 3
    stored = file_bytes(store.path)
    for token in (links.edit_token, links.read_token):
        assert token.encode() not in stored
        assert hashlib.sha256(token.encode()).hexdigest().encode() in stored


def refused(call) -> str:
    with pytest.raises(ExplorerError) as caught:
        call()
    return str(caught.value)


def test_wrong_forged_cut_and_expired_tokens_read_alike(tmp_path, monkeypatch):
    clock = [1_000_000.0]
    store = CaseStore(tmp_path / "cases.sqlite3", clock=lambda: clock[0])
    monkeypatch.setattr(budgets, "CASE_LINK_DAYS", 1.0)
    links = new_case(store)
    unknown = refused(lambda: store.open("x" * 43))
    assert unknown == UNKNOWN_LINK
    forged = links.edit_token[:-1] + ("A" if links.edit_token[-1] != "A" else "B")
    for token in (forged, links.edit_token[:20], links.edit_token + "x", "", "é" * 43, "a" * 10_000,
                  hashlib.sha256(links.edit_token.encode()).hexdigest()):
        assert refused(lambda: store.open(token)) == unknown
    assert store.open(links.edit_token).can_edit
    clock[0] += 2 * 86400  # two days later: past the one-day links
    assert refused(lambda: store.open(links.edit_token)) == unknown
    assert refused(lambda: store.open(links.read_token)) == unknown
    store.close()


def write_calls(store, access):
    snapshot = Snapshot("before", "2026-01-01T00:00:00+00:00", {"python snake": {"BM25": ["1"]}},
                        {"python snake": {"BM25": [1.5]}})
    return [lambda: store.judge(access, "python snake", "2", 1), lambda: store.judge(access, "python snake", "1", None),
            lambda: store.add_query(access, "another"), lambda: store.remove_query(access, "python snake"),
            lambda: store.set_settings(access, {}), lambda: store.save_snapshot(access, snapshot)]


def test_a_read_only_or_hand_made_access_cannot_write(store):
    links = new_case(store)
    case = store.case(store.open(links.edit_token))
    read = store.open(links.read_token)
    for call in write_calls(store, read):
        assert refused(call) == READ_ONLY
    # A read-only access with its edit flag forced on still cannot write.
    promoted = CaseAccess(links.case_id, True, token_hash=read.token_hash)
    for call in write_calls(store, promoted):
        assert refused(call) == READ_ONLY
    # An access made by hand (a case id and edit flag, no live token) reads and writes nothing.
    for forged in (CaseAccess(links.case_id, True), CaseAccess(links.case_id, True, token_hash="0" * 64)):
        for call in write_calls(store, forged) + [lambda: store.case(forged), lambda: store.corpus(forged)]:
            assert refused(call) == UNKNOWN_LINK
    # An edit access of one case cannot touch another.
    stolen = store.open(new_case(store).edit_token)
    for call in write_calls(store, CaseAccess(links.case_id, True, stolen.token_hash))[:1]:
        assert refused(call) == UNKNOWN_LINK
    # Every refused write above changed nothing.
    assert store.case(store.open(links.edit_token)) == case


def test_judgments_edit_remove_and_add_their_query(store):
    access = store.open(new_case(store).edit_token)
    store.judge(access, "python snake", "1", 0, "changed my mind")
    store.judge(access, "  new query ", "3", 2)
    store.judge(access, "python snake", "2", 1)
    store.judge(access, "python snake", "2", None)
    case = store.case(access)
    assert case.queries == ["python snake", "new query"]
    assert case.grades("python snake") == {"1": 0} and case.judgments["python snake"]["1"].reason == "changed my mind"
    assert case.grades("new query") == {"3": 2}
    store.remove_query(access, "python snake")
    assert store.case(access).queries == ["new query"] and "python snake" not in store.case(access).judgments
    for grade in (4, -1, 1.0, True, "2"):
        refused(lambda: store.judge(access, "q", "1", grade))


def test_a_grade_is_on_disk_when_judge_returns(store):
    access = store.open(new_case(store).edit_token)
    store.judge(access, "python snake", "2", 2, "seen by another connection")
    other = sqlite3.connect(store.path)
    rows = other.execute("SELECT doc_id, grade, reason FROM judgments WHERE doc_id = '2'").fetchall()
    other.close()
    assert rows == [("2", 2, "seen by another connection")]


HOSTILE = ["<script>alert('x')</script>", "\" ' ` & <b>", "nul\x00inside", "😀 naïve 中文 עברית \u202e", "x" * 200,
           "line\nbreak\ttab", "'; DROP TABLE judgments; --"]


def test_hostile_strings_are_kept_exactly(store):
    documents = [Document(text, f"text of {text}") for text in HOSTILE]
    corpus = Corpus(documents, name="<i>corpus</i>")
    queries = [q for q in HOSTILE if q.strip() == q]
    judgments = [Judgment(queries[i % len(queries)], text, i % 4, text) for i, text in enumerate(HOSTILE)]
    links = store.create_case(HOSTILE[0], corpus, {"kind": "stored"}, {"note": HOSTILE[2], "top_k": 3}, queries,
                              judgments)
    access = store.open(links.read_token)
    case = store.case(access)
    assert case.name == HOSTILE[0] and case.settings == {"note": HOSTILE[2], "top_k": 3}
    assert case.queries == queries
    assert {(j.query, j.doc_id, j.grade, j.reason) for by_doc in case.judgments.values() for j in by_doc.values()} == \
        {(j.query, j.doc_id, j.grade, j.reason) for j in judgments}
    assert store.corpus(access).documents == documents and case.corpus_source["name"] == "<i>corpus</i>"
    edit = store.open(links.edit_token)
    store.save_snapshot(edit, Snapshot(HOSTILE[3], "2026-01-01T00:00:00+00:00", {HOSTILE[0]: {HOSTILE[1]: HOSTILE[:3]}},
                                       {HOSTILE[0]: {HOSTILE[1]: [1.0, -2.5, 3e-8]}}))
    saved = store.snapshot(access, HOSTILE[3])
    assert saved.rankings == {HOSTILE[0]: {HOSTILE[1]: HOSTILE[:3]}} and saved.scores[HOSTILE[0]][HOSTILE[1]][2] == 3e-8


def test_caps_hold_with_their_messages(store, monkeypatch):
    monkeypatch.setattr(budgets, "MAX_CASES", 1)
    access = store.open(new_case(store).edit_token)
    assert "EXPLORER_MAX_CASES" in refused(lambda: new_case(store))
    monkeypatch.setattr(budgets, "MAX_CASE_QUERIES", 2)
    store.add_query(access, "second")
    assert "at most 2 queries" in refused(lambda: store.add_query(access, "third"))
    assert "at most 2 queries" in refused(lambda: store.judge(access, "third", "1", 1))
    monkeypatch.setattr(budgets, "MAX_CASE_JUDGMENTS", 2)
    store.judge(access, "second", "1", 1)
    assert "at most 2 judgments" in refused(lambda: store.judge(access, "second", "2", 1))
    store.judge(access, "second", "1", 3)  # changing a grade adds no judgment
    monkeypatch.setattr(budgets, "MAX_CASE_SNAPSHOTS", 1)
    snapshot = Snapshot("one", "", {}, {})
    store.save_snapshot(access, snapshot)
    store.save_snapshot(access, snapshot)  # the same name replaces it
    assert "at most 1 snapshots" in refused(lambda: store.save_snapshot(access, Snapshot("two", "", {}, {})))
    assert "limit is 200" in refused(lambda: store.save_snapshot(access, Snapshot("n" * 201, "", {}, {})))
    assert "limit is 2,000" in refused(lambda: store.judge(access, "second", "1", 1, "r" * 2001))
    assert "case name" in refused(lambda: new_case(store, name="n" * 201)) and "case name" in refused(
        lambda: new_case(store, name=" \u200b "))
    monkeypatch.setattr(budgets, "MAX_DATABASE_MB", 0)
    assert "database is full" in refused(lambda: store.judge(access, "second", "2", 1))
    store.judge(access, "second", "1", None)  # removing still works when full
    assert store.case(access).grades("second") == {}


def test_the_same_corpus_is_stored_once_and_builtin_sets_by_reference(store):
    new_case(store)
    new_case(store, corpus=corpus_from_text("\n".join(d.text for d in SNAKES.documents)))
    shipped = load_set("ambiguity").corpus
    links = new_case(store, corpus=shipped, corpus_source={"kind": "builtin", "name": "ambiguity"}, judgments=[])
    raw = sqlite3.connect(store.path)
    assert raw.execute("SELECT COUNT(*) FROM corpora").fetchone()[0] == 1
    assert raw.execute("SELECT COUNT(*) FROM corpus_documents").fetchone()[0] == len(SNAKES)
    raw.close()
    access = store.open(links.read_token)
    assert store.case(access).corpus_source == {"kind": "builtin", "name": "ambiguity", "fingerprint": shipped.fingerprint}
    assert store.corpus(access) is shipped
    assert "fingerprints differ" in refused(
        lambda: new_case(store, corpus=SNAKES, corpus_source={"kind": "builtin", "name": "ambiguity"}))


# ---- the file: kill -9, two processes, damage, migration ---------------------------------------------

WRITER = """
import sys
from explorer.store.cases import CaseStore
store = CaseStore(sys.argv[1])
access = store.open(sys.argv[2])
print("ready", flush=True)
for i in range(int(sys.argv[4])):
    sys.stdin.readline()  # "go": the test says when each grade is written
    store.judge(access, "python snake", f"{sys.argv[3]}{i}", i % 4, f"reason {i}")
    print(f"committed {i}", flush=True)
"""


def writers(path, token, prefixes, count):
    """One writer process per prefix, each grading documents PREFIX0, PREFIX1, ... (up to `count`), one per "go"
    line it reads, printing "committed I" after each; returned once all have opened the store."""
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), token, prefix, str(count)], cwd=REPO,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for prefix in prefixes]
    for process in processes:
        assert process.stdout.readline() == "ready\n", process.stderr.read()
    return processes


def go(*processes) -> None:
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()


def test_kill_9_right_after_a_grade_loses_nothing_committed(store):
    links = new_case(store, judgments=[])
    store.close()  # the killed process is the only one with the file open: reopening must recover its log
    (process,) = writers(store.path, links.edit_token, ["k"], 1_000_000)
    committed = []
    while len(committed) < 25:
        go(process)
        committed.append(int(process.stdout.readline().split()[1]))
    go(process)
    process.send_signal(signal.SIGKILL)  # right after the 25th "committed", while the 26th is being written
    process.wait()
    assert process.returncode == -signal.SIGKILL
    reopened = CaseStore(store.path)
    grades = reopened.case(reopened.open(links.read_token)).judgments["python snake"]
    for i in committed:
        assert grades[f"k{i}"].grade == i % 4 and grades[f"k{i}"].reason == f"reason {i}"
    reopened.close()


def test_two_processes_grading_one_case_lose_nothing(store):
    links = new_case(store, judgments=[])
    pair = writers(store.path, links.edit_token, ["a", "b"], 100)
    for i in range(100):  # each round both write at once, contending for the file's write lock
        go(*pair)
        for process in pair:
            assert process.stdout.readline() == f"committed {i}\n", process.stderr.read()
    for process in pair:
        assert process.wait(timeout=600) == 0, process.stderr.read()
    grades = store.case(store.open(links.read_token)).grades("python snake")
    assert grades == {f"{p}{i}": i % 4 for p in ("a", "b") for i in range(100)}


def test_threads_sharing_one_store_lose_nothing(store):
    """Two browser tabs on one app: the page's threads share the process's store."""
    links = new_case(store, judgments=[])
    access = store.open(links.edit_token)
    errors = []

    def grade(prefix):
        try:
            for i in range(50):
                store.judge(access, "python snake", f"{prefix}{i}", i % 4)
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=grade, args=(prefix,)) for prefix in "wxyz"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.case(access).grades("python snake") == {f"{p}{i}": i % 4 for p in "wxyz" for i in range(50)}


def test_a_damaged_file_is_reported_and_left_as_it_was(tmp_path):
    path = tmp_path / "cases.sqlite3"
    store = CaseStore(path)
    big = corpus_from_text("\n".join(f"document {i} about pythons and other snakes, number {i}" for i in range(3000)))
    new_case(store, corpus=big)
    store.close()
    assert not path.with_name(path.name + "-wal").exists() or path.with_name(path.name + "-wal").stat().st_size == 0
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3 * 4096] = bytes(range(256)) * 48
    path.write_bytes(bytes(data))
    with pytest.raises(ExplorerError) as caught:
        CaseStore(path)
    assert str(path) in str(caught.value) and "damaged" in str(caught.value) and "Move it aside" in str(caught.value)
    assert path.read_bytes() == bytes(data)
    # Not a database at all: the same report, the file untouched.
    other = tmp_path / "notes.sqlite3"
    other.write_bytes(b"these are my notes, not a database\n" * 200)
    assert "damaged" in refused(lambda: CaseStore(other))
    assert other.read_bytes() == b"these are my notes, not a database\n" * 200


# The schema as version 1 of the app wrote it (frozen here: a migration must work on files as they are).
VERSION_1 = [
    "CREATE TABLE corpora (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, documents INTEGER NOT NULL)",
    "CREATE TABLE corpus_documents (corpus_key TEXT NOT NULL REFERENCES corpora(key), position INTEGER NOT NULL, "
    "id TEXT NOT NULL, text TEXT NOT NULL, title TEXT NOT NULL, PRIMARY KEY (corpus_key, position))",
    "CREATE TABLE cases (case_id TEXT PRIMARY KEY, name TEXT NOT NULL, corpus_kind TEXT NOT NULL, "
    "corpus_name TEXT NOT NULL, corpus_fingerprint TEXT NOT NULL, corpus_key TEXT REFERENCES corpora(key), "
    "settings TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases(case_id), "
    "can_edit INTEGER NOT NULL)",
    "CREATE TABLE queries (case_id TEXT NOT NULL REFERENCES cases(case_id), position INTEGER NOT NULL, "
    "text TEXT NOT NULL, PRIMARY KEY (case_id, text))",
    "CREATE TABLE judgments (case_id TEXT NOT NULL REFERENCES cases(case_id), query TEXT NOT NULL, "
    "doc_id TEXT NOT NULL, grade INTEGER NOT NULL CHECK (grade BETWEEN 0 AND 3), reason TEXT NOT NULL, "
    "PRIMARY KEY (case_id, query, doc_id))",
]


def test_a_version_1_file_is_migrated_and_keeps_its_case(tmp_path):
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path)
    for statement in VERSION_1:
        raw.execute(statement)
    fingerprint = load_set("ambiguity").corpus.fingerprint
    raw.execute("INSERT INTO cases VALUES ('c1', 'old lesson', 'builtin', 'ambiguity', ?, NULL, ?, '2026-01-01')",
                (fingerprint, json.dumps({"top_k": 5})))
    raw.execute("INSERT INTO tokens VALUES (?, 'c1', 1)", (hashlib.sha256(b"old-edit-token").hexdigest(),))
    raw.execute("INSERT INTO queries VALUES ('c1', 0, 'python snake')")
    raw.execute("INSERT INTO judgments VALUES ('c1', 'python snake', 'd1', 2, 'kept')")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    store = CaseStore(path)
    access = store.open("old-edit-token")
    case = store.case(access)
    assert case.name == "old lesson" and case.settings == {"top_k": 5} and case.judgments["python snake"]["d1"].reason == "kept"
    store.save_snapshot(access, Snapshot("after migration", "", {}, {}))  # version 2's table
    assert store.case(access).snapshot_names == ["after migration"]
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_a_file_from_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "new.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE future (x)")
    raw.execute("PRAGMA user_version = 99")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    assert "newer version" in refused(lambda: CaseStore(path))
    assert path.read_bytes() == before


def test_data_dir_follows_explorer_data(tmp_path, monkeypatch):
    from explorer.paths import data_dir

    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path / "here"))
    assert data_dir() == tmp_path / "here" and (tmp_path / "here").is_dir()
    opened = CaseStore()
    assert opened.path == tmp_path / "here" / "workbench.sqlite3" and opened.path.is_file()
    opened.close()
    monkeypatch.delenv("EXPLORER_DATA")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "cross-encoder-explorer"
    assert os.path.isdir(tmp_path / "xdg" / "cross-encoder-explorer")


def test_a_case_link_as_the_page_shows_it_opens_its_labels(store):
    """The depth panel takes a case's link as pasted from the page (edit or read-only) or its bare token; the labels
    are the grades written, under the case's query ids; any other link reads as unknown."""
    from explorer.store.labelled import labels_from_link

    links = new_case(store, queries=["python snake", "unjudged query"],
                     judgments=[Judgment("python snake", "1", 3, ""), Judgment("python snake", "2", 0, "")])
    for link in (f"http://127.0.0.1:7860/?case={links.read_token}", f"https://a.space/?x=1&case={links.edit_token}",
                 links.read_token):
        data = labels_from_link(store, link)
        assert data.qrels == {"q1": {"1": 3, "2": 0}}
        assert [(q.id, q.text) for q in data.queries] == [("q1", "python snake")]
    for wrong in (f"http://127.0.0.1:7860/?case={links.read_token[:-3]}", "http://127.0.0.1:7860/", ""):
        assert refused(lambda: labels_from_link(store, wrong)) == UNKNOWN_LINK


def test_the_app_checks_its_store_at_start_and_reports_a_damaged_file(tmp_path, monkeypatch):
    """app.py opens the store before serving: a damaged file is reported then (not at a visitor's first grade), left
    as it was, and every later use says the same; a sound file opens."""
    from explorer.store import cases
    from explorer.store.database import FILE_NAME

    path = tmp_path / FILE_NAME
    sound = CaseStore(path)
    big = corpus_from_text("\n".join(f"document {i} about pythons and other snakes, number {i}" for i in range(3000)))
    new_case(sound, corpus=big)
    sound.close()
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path))
    monkeypatch.setattr(cases, "_DEFAULT", None)
    assert cases.check_default_store() is None
    cases._DEFAULT.close()
    monkeypatch.setattr(cases, "_DEFAULT", None)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3 * 4096] = bytes(range(256)) * 48
    path.write_bytes(bytes(data))
    problem = cases.check_default_store()
    assert problem is not None and str(path) in problem and "damaged" in problem
    assert "damaged" in refused(cases.default_store)  # the store stays closed: each use repeats the report
    assert path.read_bytes() == bytes(data)

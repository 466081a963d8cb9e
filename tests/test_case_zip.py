"""Case zips: an exact round trip, files other tools read as they are, and hostile zips refused whole."""

from __future__ import annotations

import json
import sqlite3
import zipfile

import ir_measures
import pytest
from ir_measures import P, nDCG

from explorer import budgets
from explorer.data.builtin_corpora import load_set
from explorer.data.corpus import Corpus, Document
from explorer.errors import ExplorerError
from explorer.pipeline.judged import judged_measures
from explorer.store.case_zip import export_case, import_case
from explorer.store.cases import CaseStore, Judgment, Snapshot

HOSTILE = ["<script>alert(1)</script>", "\" ' &amp;", "nul\x00id", "😀 中文 \u202e", "with space", "x" * 300]
DOCS = [Document(f"d{i}", f"document {i} about snakes", "") for i in range(12)] + \
       [Document(text, f"hostile {i}", "a <b>title</b>") for i, text in enumerate(HOSTILE)]


@pytest.fixture
def store(tmp_path):
    opened = CaseStore(tmp_path / "cases.sqlite3")
    yield opened
    opened.close()


def full_case(store):
    queries = ["python snake", "<img src=x onerror=alert(1)>", "naïve query"]
    judgments = [Judgment(queries[i % 3], doc.id, i % 4, HOSTILE[i % len(HOSTILE)] if i % 2 else "")
                 for i, doc in enumerate(DOCS)]
    links = store.create_case("lesson <1> \"quoted\"", Corpus(DOCS, name="snakes & <co>"), {"kind": "stored"},
                              {"first_stage": "bm25", "rerankers": ["cross"], "top_k": 10, "query": queries[1]},
                              queries, judgments)
    access = store.open(links.edit_token)
    for n, name in enumerate(["baseline", "after <tuning> / v2"]):
        rankings = {q: {"BM25": [d.id for d in DOCS[n:n + 10]], "Cross-encoder": [d.id for d in DOCS[::-1][n:n + 10]]}
                    for q in queries}
        scores = {q: {c: [10.0 - i + 0.125 * n for i in range(10)] for c in cols} for q, cols in rankings.items()}
        store.save_snapshot(access, Snapshot(name, f"2026-11-30T10:0{n}:00+00:00", rankings, scores))
    return links


def everything(store, token):
    access = store.open(token)
    case = store.case(access)
    snapshots = [store.snapshot(access, name) for name in case.snapshot_names]
    corpus = store.corpus(access)
    case.case_id = ""
    return case, snapshots, corpus.documents, corpus.name


def members(path):
    with zipfile.ZipFile(path) as archive:
        found = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(found.pop("manifest.json"))
    manifest.pop("exported")
    return manifest, found


def test_a_case_round_trips_exactly(store, tmp_path):
    links = full_case(store)
    first = export_case(store, store.open(links.read_token), tmp_path / "case.zip")
    again = import_case(store, first)
    assert again.case_id != links.case_id and again.edit_token != links.edit_token
    assert everything(store, again.edit_token) == everything(store, links.edit_token)
    second = export_case(store, store.open(again.read_token), tmp_path / "again.zip")
    assert members(first) == members(second)
    # Into another database too (the way off an ephemeral disk).
    elsewhere = CaseStore(tmp_path / "other.sqlite3")
    moved = import_case(elsewhere, first)
    assert everything(elsewhere, moved.read_token) == everything(store, links.edit_token)
    elsewhere.close()


def test_a_builtin_case_stays_a_reference(store, tmp_path):
    shipped = load_set("ambiguity")
    query = shipped.queries[0].text
    links = store.create_case("built-in", shipped.corpus, {"kind": "builtin", "name": "ambiguity"}, {"top_k": 5},
                              [query], [Judgment(query, shipped.corpus.documents[0].id, 2, "")])
    again = import_case(store, export_case(store, store.open(links.read_token), tmp_path / "case.zip"))
    assert store.case(store.open(again.read_token)).corpus_source == {
        "kind": "builtin", "name": "ambiguity", "fingerprint": shipped.corpus.fingerprint}


def test_exported_qrels_and_runs_give_the_measures_ir_measures_gives(store, tmp_path):
    links = full_case(store)
    access = store.open(links.read_token)
    path = export_case(store, access, tmp_path / "case.zip")
    manifest, files = members(path)
    folder = tmp_path / "out"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    qrels = list(ir_measures.read_trec_qrels(str(folder / "qrels.txt")))
    assert any("white space" in note for note in manifest["notes"])
    case = store.case(access)
    for snapshot in manifest["snapshots"]:
        for column, run_file in snapshot["runs"].items():
            per_query = {m.query_id: m.value for m in ir_measures.iter_calc(
                [nDCG @ 10, P(judged_only=True) @ 10], qrels, list(ir_measures.read_trec_run(str(folder / run_file))))
                if m.measure == nDCG @ 10}
            for query in case.queries:
                qid = manifest["query_ids"][query]
                # TREC lines cannot hold an id with white space or NUL: the files leave those out.
                safe = {d: g for d, g in case.grades(query).items() if " " not in d and "\x00" not in d}
                ranking = [d for d in snapshot["rankings"][query][column] if " " not in d and "\x00" not in d]
                expected = judged_measures(ranking, safe).ndcg
                assert per_query.get(qid, 0.0) == pytest.approx(expected), (column, query)


def cases_in(store) -> int:
    raw = sqlite3.connect(store.path)
    count = raw.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    raw.close()
    return count


def rewritten(source, target, change):
    """A copy of the zip at `source` with `change(members)` applied."""
    with zipfile.ZipFile(source) as archive:
        found = {name: archive.read(name) for name in archive.namelist()}
    change(found)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in found.items():
            archive.writestr(name, data)
    return target


def manifest_change(edit):
    def change(found):
        manifest = json.loads(found["manifest.json"])
        edit(manifest)
        found["manifest.json"] = json.dumps(manifest).encode()
    return change


HOSTILE_ZIPS = {
    "not a zip": (lambda found: None, "not a readable zip"),
    "no manifest": (lambda found: found.pop("manifest.json"), "lacks manifest.json"),
    "manifest not JSON": (lambda found: found.update({"manifest.json": b"{nope"}), "not valid JSON"),
    "manifest nested deep": (lambda found: found.update({"manifest.json": b"[" * 100_000}), "manifest.json"),
    "another format": (manifest_change(lambda m: m.update(format="something else")), "not a case exported"),
    "grade 7": (manifest_change(lambda m: m["judgments"][0].update(grade=7)), "grade is 0, 1, 2 or 3"),
    "grade as text": (manifest_change(lambda m: m["judgments"][0].update(grade="2")), "each judgment"),
    "corpus edited": (lambda found: found.update({"corpus.jsonl": found["corpus.jsonl"].replace(b"snakes", b"lizards")}),
                      "do not match the fingerprint"),
    "qrels edited": (lambda found: found.update({"qrels.txt": found["qrels.txt"].replace(b" 3\n", b" 2\n")}),
                     "differ from manifest"),
    "run edited": (lambda found: found.update({n: b"" for n in found if n.startswith("runs/")}), "run differs"),
    "path outside": (lambda found: found.update({"../../etc/evil": b"x"}), "plain relative names"),
    "long name": (manifest_change(lambda m: m.update(name="n" * 5000)), "limit is 200"),
    "settings not an object": (manifest_change(lambda m: m.update(settings=[1])), "settings"),
    "unknown query id": (manifest_change(lambda m: m["judgments"][0].update(query_id="q999")), "query id 'q999'"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ZIPS))
def test_a_hostile_or_malformed_zip_is_refused_whole(store, tmp_path, name):
    good = export_case(store, store.open(full_case(store).read_token), tmp_path / "good.zip")
    change, message = HOSTILE_ZIPS[name]
    bad = tmp_path / "bad.zip"
    if name == "not a zip":
        bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    else:
        rewritten(good, bad, change)
    before = cases_in(store)
    with pytest.raises(ExplorerError) as caught:
        import_case(store, bad)
    assert message in str(caught.value)
    assert cases_in(store) == before


def test_sizes_are_capped(store, tmp_path, monkeypatch):
    good = export_case(store, store.open(full_case(store).read_token), tmp_path / "good.zip")
    monkeypatch.setattr(budgets, "MAX_CASE_ZIP_UNPACKED_BYTES", 2**20)
    bomb = rewritten(good, tmp_path / "bomb.zip", lambda found: found.update({"padding.bin": b"\0" * (4 * 2**20)}))
    assert bomb.stat().st_size < 2**20  # small packed, large unpacked
    with pytest.raises(ExplorerError, match="unpacks to more than 1 MB"):
        import_case(store, bomb)
    monkeypatch.setattr(budgets, "MAX_CASE_ZIP_BYTES", 100)
    with pytest.raises(ExplorerError, match="EXPLORER_MAX_CASE_ZIP_BYTES"):
        import_case(store, good)
    monkeypatch.setattr(budgets, "MAX_CASE_ZIP_MEMBERS", 3)
    monkeypatch.setattr(budgets, "MAX_CASE_ZIP_BYTES", 2**30)
    with pytest.raises(ExplorerError, match="at most 3"):
        import_case(store, good)
